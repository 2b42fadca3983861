import { describe, expect, it } from 'vitest';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { createTestQueue, uniqueName } from '../support/engines.ts';
import { lambdaContext, sqsRecord } from '../support/factories.ts';
import { drainDeadLetters, eventBody, exactlyOnceProblems, expectedEvents, type TestMessage } from './harness.ts';
import { faultSuite } from './harness.ts';

// A FIFO consumer writes all events of a group's batch and dies before they are acknowledged
// (its response never reaches the event source mapping, nothing is deleted). SQS delivers the
// group's messages again, in order, but need not return them in one batch of the same size
// (fauxqs returns one message per group per receive; SQS up to 10). Each smaller redelivered
// batch must still find its events among those already written.

const { admin, sqs, tableName: suiteTable, freshClient } = faultSuite('faults-split');

describe('FIFO redelivery in smaller batches than the batch that wrote', () => {
  it.each([1, 2, 5])('stores nothing twice when the 10 events come back %i at a time', async (redeliveryBatch) => {
    // Prepare: one stream, 10 events, all written by a consumer whose every response is lost.
    const streamId = uniqueName('split');
    const messages: TestMessage[] = Array.from({ length: 10 }, (_, n) => ({
      messageId: `${streamId}-m${n}`,
      body: eventBody(streamId, n),
    }));
    const dlqUrl = await createTestQueue(sqs, 'faults-split-dlq', { fifo: true });
    const dying = freshClient();
    const records = (batch: readonly TestMessage[], receiveCount: number) =>
      batch.map((message) =>
        sqsRecord(message.body, {
          messageId: message.messageId,
          receiveCount,
          fifo: { groupId: streamId, sequenceNumber: messages.indexOf(message) },
        }),
      );
    const lost = await createIngestHandler({ dynamo: dying, sqs, tableName: suiteTable(), dlqUrl })(
      { Records: records(messages, 1) },
      lambdaContext(),
    );
    expect(lost.batchItemFailures).toEqual([]);

    // Act: a fresh container gets the same messages again, in order, `redeliveryBatch` at a time.
    const second = createIngestHandler({ dynamo: freshClient(), sqs, tableName: suiteTable(), dlqUrl });
    const failures: string[] = [];
    for (let start = 0; start < messages.length; start += redeliveryBatch) {
      const response = await second(
        { Records: records(messages.slice(start, start + redeliveryBatch), 2) },
        lambdaContext(),
      );
      failures.push(...response.batchItemFailures.map((failure) => failure.itemIdentifier));
    }

    // Assess
    const problems = await exactlyOnceProblems(admin, suiteTable(), expectedEvents(messages));
    console.log(
      `faults/fifo-redelivery-split: injected a consumer death after writing a batch of 10 of one group, before acknowledging; redelivered ${redeliveryBatch} at a time to a fresh container; checked every event stored once: ${problems.length === 0 ? 'yes' : problems.join('; ')}`,
    );
    expect(failures).toEqual([]);
    expect(problems).toEqual([]);
    expect(await drainDeadLetters(sqs, dlqUrl)).toEqual([]);
  });
});
