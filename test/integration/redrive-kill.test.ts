import type { QueueMode } from '../../core/queue-mode.ts';
import { DeleteMessageCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SqsRedriveQueues } from '../../adapters/sqs-redrive-queues.ts';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { runLocalRedrive, type CfnTemplate } from '../../local/workflow-runner.ts';
import { createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { drainQueue, lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
import { InvocationKiller } from './redrive-faults.ts';
import { createRedriveQueues, deadLetterMany, queueCounts, redriveTemplate, succeeded } from './redrive-support.ts';

/** The records Lambda's event source mapping would hand the ingest for these source messages. */
function asRecord(message: Message, fifo: boolean): SQSRecord {
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (value.StringValue !== undefined) attributes[name] = value.StringValue;
  }
  return sqsRecord(message.Body!, {
    messageId: message.MessageId!,
    ...(fifo
      ? {
          fifo: {
            groupId: message.Attributes!['MessageGroupId']!,
            deduplicationId: message.Attributes!['MessageDeduplicationId']!,
            sequenceNumber: message.Attributes!['SequenceNumber']!,
          },
        }
      : {}),
    messageAttributes: attributes,
    sentTimestamp: Number(message.Attributes!['SentTimestamp']),
    receiveCount: Number(message.Attributes!['ApproximateReceiveCount']),
  });
}

/** Consume the source queue with the real ingest handler, one message at a time, until it is empty. */
async function ingestAll(
  sqs: SQSClient,
  queueUrl: string,
  handle: ReturnType<typeof createIngestHandler>,
  fifo: boolean,
): Promise<number> {
  let consumed = 0;
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 1,
        VisibilityTimeout: 60,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const [message] = Messages;
    if (!message) return consumed;
    const response = await handle(sqsEvent([asRecord(message, fifo)]), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    consumed += 1;
  }
}

describe('redrive with its Lambda killed between send and delete, and a lost receive (the synthesized definition)', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  const sqsEndpoint = inject('sqsEndpoint');
  const templates: Partial<Record<QueueMode, CfnTemplate>> = {};

  beforeAll(() => {
    templates.standard = redriveTemplate('standard');
    templates.fifo = redriveTemplate('fifo');
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  for (const mode of ['standard', 'fifo'] as const) {
    it(`${mode}: a call killed after its sends, before it holds them: the report counts each event once, the ingest stores each once`, async () => {
      // Prepare: 16 valid events of one stream and 2 invalid ones
      const fifo = mode === 'fifo';
      const tableName = await createTestTable(dynamo, 'redrive-kill');
      const queueUrls = await createRedriveQueues(sqs, fifo);
      const bodies = Array.from({ length: 18 }, (_, n) =>
        JSON.stringify(
          validEvent({ ID: 'killed', EventId: `step-${n + 1}`, ...(n >= 16 ? { EventType: 'bad type' } : {}) }),
        ),
      );
      await deadLetterMany(sqs, queueUrls.deadLetter, bodies, fifo ? 'killed' : undefined);
      const killer = new InvocationKiller({ on: 'hold', call: 1, when: 'before', error: 'Sandbox.Timedout' });

      // Act: the run (a one-second lease, so that the killed call's messages come back to it),
      // then the ingest consumes what it sent
      const result = await runLocalRedrive({
        template: templates[mode]!,
        sqsEndpoint,
        queueUrls,
        input: {},
        leaseSeconds: 1,
        retryPauseMs: 1,
        wrapQueues: (queues) => killer.queues(queues),
        wrapHandler: (handle) => killer.handler(handle),
      });
      const sentCount = (await queueCounts(sqs, queueUrls.source)).visible;
      const handle = createIngestHandler({ dynamo, sqs, tableName, dlqUrl: queueUrls.deadLetter });
      await ingestAll(sqs, queueUrls.source, handle, fifo);

      // Assess: the killed call is named; every event counted once; the resends (standard) were
      // duplicates the ingest dropped (FIFO: SQS dropped them by their deduplication id)
      expect(killer.killedAction).toBe('batch');
      const report = succeeded(result);
      // FIFO: the first invalid one stays, the second is held back behind it
      expect(report.counts).toMatchObject({
        received: 18,
        redriven: 16,
        ...(fifo ? { stillRejected: 1, heldBack: 1 } : { stillRejected: 2 }),
      });
      expect(report).toMatchObject({ failedBatches: 1, failedBatchMessagesAtMost: 10, stoppedBecause: 'queueEmpty' });
      expect(report.stayedVisibleAgain).toMatch(
        /^now, except up to 10 received by batch calls that failed: those at the latest at /,
      );
      // FIFO: SQS dropped the resends (the same deduplication id within 5 minutes); standard: the
      // killed call's sends went twice, and the ingest drops the copies (README, "Idempotency")
      if (fifo) expect(sentCount).toBe(16);
      else expect(sentCount).toBeGreaterThan(16);
      const stream = await new DynamoDbEventStore({ client: dynamo, tableName }).readStream('killed');
      expect(stream.events.map((event) => event.EventId)).toEqual(
        fifo
          ? Array.from({ length: 16 }, (_, n) => `step-${n + 1}`)
          : expect.arrayContaining(Array.from({ length: 16 }, (_, n) => `step-${n + 1}`)),
      );
      expect(stream.version).toBe(16);
      expect(await queueCounts(sqs, queueUrls.deadLetter)).toEqual({ visible: 2, hidden: 0 });
    });
  }

  it('a call killed after it deleted what the last call sent: those are counted once, by the call after it', async () => {
    // Prepare: 25 valid events, 10 a call
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(
      sqs,
      queueUrls.deadLetter,
      Array.from({ length: 25 }, (_, n) => JSON.stringify(validEvent({ ID: `deleted-${n}` }))),
    );
    const killer = new InvocationKiller({ on: 'delete', call: 1, when: 'after', error: 'Lambda.Unknown' });

    // Act
    const result = await runLocalRedrive({
      template: templates.standard!,
      sqsEndpoint,
      queueUrls,
      input: {},
      leaseSeconds: 1,
      retryPauseMs: 1,
      wrapQueues: (queues) => killer.queues(queues),
      wrapHandler: (handle) => killer.handler(handle),
    });

    // Assess: the killed call's receive never happened; its deletes were done again and counted once
    const report = succeeded(result);
    expect(report.counts).toMatchObject({ received: 25, redriven: 25 });
    expect(report.failedBatches).toBe(1);
    expect(await queueCounts(sqs, queueUrls.deadLetter)).toEqual({ visible: 0, hidden: 0 });
    expect(await drainQueue(sqs, queueUrls.source, { delete: true })).toHaveLength(25);
  });

  it('a dry run whose receive response is lost: its messages are hidden for the lease only, nothing is sent', async () => {
    // Prepare: the first receive reaches SQS (which hides 10 messages) and its answer is lost
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(
      sqs,
      queueUrls.deadLetter,
      Array.from({ length: 20 }, (_, n) => JSON.stringify(validEvent({ ID: `lost-${n}` }))),
    );
    let receives = 0;

    // Act
    const result = await runLocalRedrive({
      template: templates.standard!,
      sqsEndpoint,
      queueUrls,
      input: { dryRun: true },
      leaseSeconds: 2,
      retryPauseMs: 1,
      wrapQueues: (queues) => ({
        ...queues,
        receive: async (request) => {
          const messages = await queues.receive(request);
          if (++receives === 1) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
          return messages;
        },
        send: (message) => queues.send(message),
        delete: (handles) => queues.delete(handles),
        hold: (handles, seconds) => queues.hold(handles, seconds),
        release: (handles) => queues.release(handles),
      }),
    });

    // Assess: a report; nothing sent; within the lease every message is visible again
    const report = succeeded(result);
    expect(report).toMatchObject({ dryRun: true, hiddenUntil: null, counts: { redriven: 0 } });
    expect(report.counts.received).toBeGreaterThanOrEqual(10);
    expect(await queueCounts(sqs, queueUrls.source)).toEqual({ visible: 0, hidden: 0 });
    // (the local SQS moves an expired message back only when someone receives: so receive)
    await waitUntil(
      async () => (await drainQueue(sqs, queueUrls.deadLetter, { visibilityTimeout: 1 })).length === 20,
      'every dead letter visible again',
      15_000,
      1500,
    );
  });

  it("FIFO: the SDK's retry of a receive whose response was lost asks SQS for the same messages (ReceiveRequestAttemptId); standard queues have none", async () => {
    // Prepare: middleware inside the SDK's retry loop loses the first receive's response
    const attempts: { fifo: boolean; attemptId: string | undefined }[] = [];
    const faulty = sqsClient();
    let lost = 0;
    faulty.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'ReceiveMessageCommand') {
          const input = args.input as { QueueUrl: string; ReceiveRequestAttemptId?: string };
          attempts.push({ fifo: input.QueueUrl.endsWith('.fifo'), attemptId: input.ReceiveRequestAttemptId });
          if (lost++ % 2 === 0) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
        }
        return result;
      },
      { step: 'deserialize', name: 'loseReceiveResponse', priority: 'high' },
    );
    const fifoQueues = await createRedriveQueues(sqs, true);
    const standardQueues = await createRedriveQueues(sqs, false);

    // Act
    try {
      for (const urls of [fifoQueues, standardQueues]) {
        await new SqsRedriveQueues({
          client: faulty,
          deadLetterQueueUrl: urls.deadLetter,
          sourceQueueUrl: urls.source,
        }).receive({
          max: 10,
          visibilityTimeoutSeconds: 90,
          waitSeconds: 0,
          attemptId: `attempt-${urls.source.length}`,
        });
      }
    } finally {
      faulty.destroy();
    }

    // Assess: two attempts each; FIFO with one attempt id in both, standard with none
    const fifoId = `attempt-${fifoQueues.source.length}`;
    expect(attempts).toEqual([
      { fifo: true, attemptId: fifoId },
      { fifo: true, attemptId: fifoId },
      { fifo: false, attemptId: undefined },
      { fifo: false, attemptId: undefined },
    ]);
  });
});
