import { describe, expect, it } from 'vitest';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { createTestQueue, uniqueName } from '../support/engines.ts';
import { lambdaContext, sqsRecord } from '../support/factories.ts';
import { injectFaults, type Fault } from './fault-injection.ts';
import {
  drainDeadLetters,
  eventBody,
  exactlyOnceProblems,
  expectedEvents,
  identityOf,
  type TestMessage,
} from './harness.ts';
import { faultSuite } from './harness.ts';

// FAULT INJECTION: a consumer that dies mid-batch cannot be produced with a real engine on
// demand. An SDK middleware on the first handler's client lets N PutItems through, then
// either "crashes" before the next one, or lets the next one write and loses its response
// (the container died between DynamoDB's write and the acknowledgement). The first
// invocation's response is thrown away, as a dead container's is; SQS then delivers the
// whole batch again, to a fresh container (new client, empty cache), with no faults.

const { admin, sqs, tableName: suiteTable, freshClient } = faultSuite('faults-crash');

/** 10 events over 3 streams (4 + 3 + 3), interleaved as a queue would hand them over. */
function batchOfTen(): TestMessage[] {
  const prefix = uniqueName('crash');
  const streams = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
  return Array.from({ length: 10 }, (_, n) => ({ messageId: `${prefix}-m${n}`, body: eventBody(streams[n % 3]!, n) }));
}

function recordsOf(messages: readonly TestMessage[], fifo: boolean, receiveCount: number) {
  return messages.map((message, sequence) =>
    sqsRecord(message.body, {
      messageId: message.messageId,
      receiveCount,
      fifo: fifo ? { groupId: identityOf(message.body).streamId, sequenceNumber: sequence } : undefined,
    }),
  );
}

const crashPoints = Array.from({ length: 10 }, (_, n) => n);

describe.each([
  { mode: 'standard', fifo: false },
  { mode: 'FIFO', fifo: true },
])('a consumer killed mid-batch, $mode queue', ({ fifo }) => {
  it.each([
    { fault: 'crash-before' as Fault, what: 'dies before the next PutItem' },
    { fault: 'error-after' as Fault, what: 'dies after the next PutItem wrote, before its response' },
  ])(
    'at every point of the batch, when it $what: redelivery stores nothing twice',
    async ({ fault }) => {
      const checked: string[] = [];
      for (const writesBefore of crashPoints) {
        // Prepare
        const messages = batchOfTen();
        const dlqUrl = await createTestQueue(sqs, 'faults-crash-dlq', { fifo });
        const dying = freshClient();
        let puts = 0;
        const log = injectFaults(dying, {
          decide(operation) {
            if (operation !== 'PutItem') return undefined;
            puts += 1;
            if (puts === writesBefore + 1) return fault;
            return puts > writesBefore + 1 ? 'crash-before' : undefined;
          },
        });
        const first = createIngestHandler({ dynamo: dying, sqs, tableName: suiteTable(), dlqUrl, maxAttempts: 1 });
        const second = createIngestHandler({ dynamo: freshClient(), sqs, tableName: suiteTable(), dlqUrl });

        // Act: the first container dies (its answer is lost), the whole batch comes again.
        await first({ Records: recordsOf(messages, fifo, 1) }, lambdaContext());
        const redelivered = await second({ Records: recordsOf(messages, fifo, 2) }, lambdaContext());

        // Assess
        expect(redelivered.batchItemFailures).toEqual([]);
        expect(await exactlyOnceProblems(admin, suiteTable(), expectedEvents(messages))).toEqual([]);
        expect(await drainDeadLetters(sqs, dlqUrl)).toEqual([]);
        checked.push(`${writesBefore}:${log.injected[fault]}`);
      }
      console.log(
        `faults/consumer-crash ${fifo ? 'fifo' : 'standard'}: injected ${fault} after N successful PutItems (N:injected = ${checked.join(' ')}); ` +
          'checked after redelivering the whole batch to a fresh container: no failures, every event stored once, versions gapless, DLQ empty',
      );
    },
    180_000,
  );
});
