/**
 * One fate per message, with no listed exceptions (docs/DEVELOPMENT.md, "Guarantees, and the
 * tests that try to break them"): each case a reader found where a message could be both
 * stored and dead-lettered, or acknowledged and lost, run with the real handler and store on
 * DynamoDB Local and fauxqs. A lost acknowledgement is the same record handed to the handler
 * again with `ApproximateReceiveCount` 2 (its `SentTimestamp` kept, as SQS keeps it).
 */
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { createIngestHandler, type IngestDependencies, type IngestHandler } from '../../handlers/ingest.ts';
import { LOCAL_REGION } from '../../local/defaults.ts';
import { localQueueUrl } from '../../local/engines/sqs-local.ts';
import { toSqsRecord } from '../../local/poller.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient, uniqueName } from '../support/engines.ts';
import { drainQueue, lambdaContext, sqsEvent, sqsRecord, validEvent, type EventBody } from '../support/factories.ts';
import { attribute, quietLogger } from './ingest-helpers.ts';

/** The same record delivered again: SQS keeps the body, ids and SentTimestamp, and counts the receive. */
function again(record: SQSRecord, receiveCount = 2): SQSRecord {
  return { ...record, attributes: { ...record.attributes, ApproximateReceiveCount: String(receiveCount) } };
}

describe('one fate per message', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  let tableName = '';
  let reader: DynamoDbEventStore;

  beforeAll(async () => {
    tableName = await createTestTable(dynamo, 'fates');
    reader = new DynamoDbEventStore({ client: dynamo, tableName });
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  async function container(
    options: { fifoDlq?: boolean } & Partial<IngestDependencies> = {},
  ): Promise<{ handler: IngestHandler; dlqUrl: string }> {
    const { fifoDlq, ...deps } = options;
    const dlqUrl = await createTestQueue(sqs, 'fates-dlq', { fifo: fifoDlq ?? false });
    return { handler: createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger(), ...deps }), dlqUrl };
  }

  async function eventIds(id: string): Promise<string[]> {
    return (await reader.readStream(id)).events.map((event) => event.EventId);
  }

  async function reasons(dlqUrl: string): Promise<(string | undefined)[]> {
    return (await drainQueue(sqs, dlqUrl)).map((message) => attribute(message, MessageAttributeNames.rejectionReason));
  }

  describe('FIFO: sequence numbers of different queues are never compared', () => {
    /** Send bodies to a FIFO queue (group = stream) and receive them back as Lambda records. */
    async function sendAndReceive(
      queueUrl: string,
      queueArn: string,
      bodies: readonly EventBody[],
    ): Promise<SQSRecord[]> {
      for (let start = 0; start < bodies.length; start += 10) {
        await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: bodies.slice(start, start + 10).map((body, index) => ({
              Id: String(index),
              MessageBody: JSON.stringify(body),
              MessageGroupId: String(body.ID),
              MessageDeduplicationId: randomUUID(),
            })),
          }),
        );
      }
      return (await receive(queueUrl, bodies.length)).map((message) => toSqsRecord(message, queueArn, LOCAL_REGION));
    }

    async function receive(queueUrl: string, count: number): Promise<Message[]> {
      const messages: Message[] = [];
      for (let tries = 0; messages.length < count && tries < 50; tries += 1) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            VisibilityTimeout: 60,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
        );
        messages.push(...Messages);
      }
      expect(messages).toHaveLength(count);
      return messages;
    }

    async function fifoQueue(name: string): Promise<{ url: string; arn: string }> {
      const created = await sqs.send(
        new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', VisibilityTimeout: '60' } }),
      );
      const url = localQueueUrl(created.QueueUrl!, inject('sqsEndpoint'));
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
      );
      return { url, arn: Attributes['QueueArn']! };
    }

    /** Hand records to the handler one batch each, then delete them (what the event source mapping does). */
    async function handleAndDelete(handler: IngestHandler, queueUrl: string, records: readonly SQSRecord[]) {
      for (const record of records) {
        expect(await handler(sqsEvent([record]), lambdaContext())).toEqual({ batchItemFailures: [] });
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle }));
      }
    }

    it('a FIFO queue deleted and created again under the same name (the mode switch fifo -> standard -> fifo) numbers from 1 again: new events are stored, first deliveries and redeliveries', async () => {
      // Prepare: 12 events through the first queue; then, as the mode switch does, the FIFO
      // queue is deleted (a standard queue feeds another stream meanwhile) and created again.
      const name = `${uniqueName('fates-switch')}.fifo`;
      const id = `fates-${randomUUID()}`;
      const other = `fates-${randomUUID()}`;
      const { handler, dlqUrl } = await container({ fifoDlq: true });
      const first = await fifoQueue(name);
      const old: SQSRecord[] = [];
      for (const chunk of [0, 10]) {
        const records = await sendAndReceive(
          first.url,
          first.arn,
          Array.from({ length: chunk === 0 ? 10 : 2 }, (_, n) => validEvent({ ID: id, EventId: `old-${chunk + n}` })),
        );
        await handleAndDelete(handler, first.url, records);
        old.push(...records);
      }
      await sqs.send(new DeleteQueueCommand({ QueueUrl: first.url }));
      await handler(sqsEvent([sqsRecord(validEvent({ ID: other, EventId: 'standard' }))]), lambdaContext());
      const second = await fifoQueue(name);
      expect(second.arn).toBe(first.arn);

      // Act: 3 new events whose first delivery fails (the container dies: nothing acknowledged),
      // delivered again (receive count 2); then 2 more, delivered once.
      const failed = await sendAndReceive(
        second.url,
        second.arn,
        [0, 1, 2].map((n) => validEvent({ ID: id, EventId: `new-${n}` })),
      );
      expect(Number(failed[0]!.attributes.SequenceNumber)).toBeLessThan(Number(old[11]!.attributes.SequenceNumber));
      for (const record of failed) {
        await sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: second.url,
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: 0,
          }),
        );
      }
      const redelivered = (await receive(second.url, 3)).map((message) =>
        toSqsRecord(message, second.arn, LOCAL_REGION),
      );
      expect(redelivered.map((record) => record.attributes.ApproximateReceiveCount)).toEqual(['2', '2', '2']);
      await handleAndDelete(handler, second.url, redelivered);
      const fresh = await sendAndReceive(
        second.url,
        second.arn,
        [3, 4].map((n) => validEvent({ ID: id, EventId: `new-${n}` })),
      );
      await handleAndDelete(handler, second.url, fresh);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: second.url }));

      // Assess: nothing acknowledged and lost (before: all 3 "decided" as duplicates, nothing stored).
      expect(await eventIds(id)).toEqual([
        ...old.map((_, n) => `old-${n}`),
        'new-0',
        'new-1',
        'new-2',
        'new-3',
        'new-4',
      ]);
      expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    });

    it('two FIFO queues feeding one table at once (a renamed queue drained beside the new one): a redelivery is never judged by the other queue numbers', async () => {
      const id = `fates-${randomUUID()}`;
      const { handler, dlqUrl } = await container({ fifoDlq: true });
      const previous = await fifoQueue(`${uniqueName('fates-previous')}.fifo`);
      const current = await fifoQueue(`${uniqueName('fates-current')}.fifo`);
      // The previous queue has numbered 12 messages of the group; the current one starts at 1.
      for (const chunk of [0, 10]) {
        const early = await sendAndReceive(
          previous.url,
          previous.arn,
          Array.from({ length: chunk === 0 ? 10 : 1 }, (_, n) =>
            validEvent({ ID: id, EventId: `previous-${chunk + n}` }),
          ),
        );
        await handleAndDelete(handler, previous.url, early);
      }
      const [m] = await sendAndReceive(current.url, current.arn, [validEvent({ ID: id, EventId: 'current-0' })]);
      const [late] = await sendAndReceive(previous.url, previous.arn, [validEvent({ ID: id, EventId: 'previous-11' })]);

      // Act: m's first delivery fails; a later message of the previous queue is stored; m comes again.
      await handleAndDelete(handler, previous.url, [late!]);
      const response = await handler(sqsEvent([again(m!)]), lambdaContext());

      // Assess
      expect(response).toEqual({ batchItemFailures: [] });
      expect((await eventIds(id)).at(-1)).toBe('current-0');
      expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: previous.url }));
      await sqs.send(new DeleteQueueCommand({ QueueUrl: current.url }));
    });
  });

  it('stored, acknowledgement lost, dedupWindow newer events and a resend with other content stored: the redelivery is a duplicate, never an EventIdConflict', async () => {
    // Prepare: m1 (X, content A) stored; 5 newer events (dedupWindow 5); a producer's resend of
    // X with content B is outside the window and stored again.
    const id = `fates-${randomUUID()}`;
    const { handler, dlqUrl } = await container({ dedupWindow: 5 });
    const m1 = sqsRecord(validEvent({ ID: id, EventId: 'X', Data: { content: 'A' } }), { messageId: 'm1' });
    await handler(sqsEvent([m1]), lambdaContext());
    for (let n = 0; n < 5; n += 1)
      await handler(sqsEvent([sqsRecord(validEvent({ ID: id, EventId: `n${n}` }))]), lambdaContext());
    await handler(sqsEvent([sqsRecord(validEvent({ ID: id, EventId: 'X', Data: { content: 'B' } }))]), lambdaContext());

    // Act: m1 again, to a cold container.
    const cold = await container({ dedupWindow: 5 });
    const response = await cold.handler(sqsEvent([again(m1)]), lambdaContext());

    // Assess: before, m1 was dead-lettered (EventIdConflict) although stored at version 1.
    expect(response).toEqual({ batchItemFailures: [] });
    expect(await eventIds(id)).toEqual(['X', 'n0', 'n1', 'n2', 'n3', 'n4', 'X']);
    expect([...(await drainQueue(sqs, dlqUrl)), ...(await drainQueue(sqs, cold.dlqUrl))]).toEqual([]);
  });

  it('a cached container that missed one event gives the cold verdict: stores a resend whose first copy left the window, and its redelivery is a duplicate', async () => {
    // Prepare: container A writes X (content A) and 2 more (dedupWindow 3): its cache holds
    // versions 1 to 3. Another container appends version 4, so X is now outside the window.
    const id = `fates-${randomUUID()}`;
    const a = await container({ dedupWindow: 3 });
    await a.handler(
      sqsEvent([sqsRecord(validEvent({ ID: id, EventId: 'X', Data: { content: 'A' } }))]),
      lambdaContext(),
    );
    for (const eventId of ['n1', 'n2'])
      await a.handler(sqsEvent([sqsRecord(validEvent({ ID: id, EventId: eventId }))]), lambdaContext());
    const b = await container({ dedupWindow: 3 });
    await b.handler(sqsEvent([sqsRecord(validEvent({ ID: id, EventId: 'n3' }))]), lambdaContext());
    const resend = sqsRecord(validEvent({ ID: id, EventId: 'X', Data: { content: 'B' } }), { messageId: 'resend' });

    // Act: the resend reaches A (stale by one event); its acknowledgement is lost; a cold container gets it again.
    const first = await a.handler(sqsEvent([resend]), lambdaContext());
    const cold = await container({ dedupWindow: 3 });
    const second = await cold.handler(sqsEvent([again(resend)]), lambdaContext());

    // Assess: before, A dead-lettered it (EventIdConflict) and the cold redelivery stored it.
    expect(first).toEqual({ batchItemFailures: [] });
    expect(second).toEqual({ batchItemFailures: [] });
    expect(await eventIds(id)).toEqual(['X', 'n1', 'n2', 'n3', 'X']);
    expect([
      ...(await drainQueue(sqs, a.dlqUrl)),
      ...(await drainQueue(sqs, b.dlqUrl)),
      ...(await drainQueue(sqs, cold.dlqUrl)),
    ]).toEqual([]);
  });

  it('an EventIdConflict redelivered after more than dedupWindow newer events is rejected again, never stored', async () => {
    const id = `fates-${randomUUID()}`;
    const { handler, dlqUrl } = await container({ dedupWindow: 3 });
    await handler(sqsEvent([sqsRecord(validEvent({ ID: id, EventId: 'X', Data: { content: 'A' } }))]), lambdaContext());
    const resend = sqsRecord(validEvent({ ID: id, EventId: 'X', Data: { content: 'B' } }), { messageId: 'resend' });
    expect(await handler(sqsEvent([resend]), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(await reasons(dlqUrl)).toEqual([RejectionReason.EventIdConflict]);
    for (let n = 0; n < 4; n += 1)
      await handler(sqsEvent([sqsRecord(validEvent({ ID: id, EventId: `n${n}` }))]), lambdaContext());

    // Act: the dead-lettered resend's acknowledgement was lost; SQS delivers it again, to a cold container.
    const cold = await container({ dedupWindow: 3 });
    const response = await cold.handler(sqsEvent([again(resend)]), lambdaContext());

    // Assess: before, it was stored at version 6 (dead-lettered and stored).
    expect(response).toEqual({ batchItemFailures: [] });
    expect(await eventIds(id)).toEqual(['X', 'n0', 'n1', 'n2', 'n3']);
    expect(await reasons(cold.dlqUrl)).toEqual([RejectionReason.EventIdConflict]);
  });

  it('FIFO: a message dead-lettered for a stream behind its ExpectedVersion, redelivered after another message group filled the gap, is never stored', async () => {
    // Prepare: stream at 1; m (group = stream, ExpectedVersion 3) is behind: dead-lettered.
    const id = `fates-${randomUUID()}`;
    const { handler, dlqUrl } = await container({ fifoDlq: true });
    await handler(
      sqsEvent([sqsRecord(validEvent({ ID: id, EventId: 'v1' }), { fifo: { groupId: id } })]),
      lambdaContext(),
    );
    const m = sqsRecord(validEvent({ ID: id, EventId: 'm', ExpectedVersion: 3 }), {
      fifo: { groupId: id },
      messageId: 'm',
    });
    expect(await handler(sqsEvent([m]), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(await reasons(dlqUrl)).toEqual([RejectionReason.WrongExpectedVersion]);

    // Act: another group writes versions 2 and 3; m's acknowledgement was lost and it comes again.
    for (const eventId of ['g2', 'g3'])
      await handler(
        sqsEvent([sqsRecord(validEvent({ ID: id, EventId: eventId }), { fifo: { groupId: 'tenant-7' } })]),
        lambdaContext(),
      );
    const cold = await container({ fifoDlq: true });
    const response = await cold.handler(sqsEvent([again(m)]), lambdaContext());

    // Assess: before, it was stored at version 4 (dead-lettered and stored).
    expect(response).toEqual({ batchItemFailures: [] });
    expect(await eventIds(id)).toEqual(['v1', 'g2', 'g3']);
    expect(await reasons(cold.dlqUrl)).toEqual([RejectionReason.WrongExpectedVersion]);
  });

  it('FIFO: the duplicate window is max(10, dedupWindow): a timely resend after 11 events is a duplicate with dedupWindow 50', async () => {
    const id = `fates-${randomUUID()}`;
    const { handler, dlqUrl } = await container({ fifoDlq: true, dedupWindow: 50 });
    const record = (body: EventBody) => sqsRecord(body, { fifo: { groupId: id } });
    const e1 = validEvent({ ID: id, EventId: 'e1' });
    await handler(sqsEvent([record(e1)]), lambdaContext());
    for (let n = 0; n < 11; n += 1)
      await handler(sqsEvent([record(validEvent({ ID: id, EventId: `n${n}` }))]), lambdaContext());

    // Act: the producer sends e1 again (a new message, within resendWindow), to a cold container too.
    const warm = await handler(sqsEvent([record(e1)]), lambdaContext());
    const cold = await (
      await container({ fifoDlq: true, dedupWindow: 50 })
    ).handler(sqsEvent([record(e1)]), lambdaContext());

    // Assess: before, FIFO's window was 10 whatever dedupWindow said, and e1 was stored twice.
    expect(warm).toEqual({ batchItemFailures: [] });
    expect(cold).toEqual({ batchItemFailures: [] });
    expect((await eventIds(id)).filter((eventId) => eventId === 'e1')).toHaveLength(1);
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
  });
});
