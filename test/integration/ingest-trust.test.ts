/**
 * The ingest path's promises under the faults AWS really produces (docs/DEVELOPMENT.md,
 * "Guarantees, and the tests that try to break them"): one test per way the first version
 * broke them. Each runs the real handler and store on DynamoDB Local and fauxqs; faults a real
 * engine cannot produce on demand (a DLQ send that fails once, a connection that never
 * answers) are injected by SDK middleware or a loopback socket, and say so.
 */
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { SQSServiceException } from '@aws-sdk/client-sqs';
import { createServer, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { parseEvent, type ValidEvent } from '../../core/event.ts';
import { ExactNumber } from '../../core/json.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  createIngestHandler,
  SDK_TIMEOUTS,
  type IngestDependencies,
  type IngestHandler,
} from '../../handlers/ingest.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/defaults.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient, uniqueName } from '../support/engines.ts';
import { drainQueue, lambdaContext, sqsEvent, sqsRecord, validEvent, type EventBody } from '../support/factories.ts';
import { attribute, quietLogger } from './ingest-helpers.ts';

/** A body as the store takes it, after the contract. */
function valid(body: EventBody): ValidEvent {
  const parsed = parseEvent(body);
  if (!parsed.ok) throw new Error(`test event is invalid: ${parsed.detail}`);
  if (parsed.kind !== 'event') throw new Error('expected one event, got a group');
  return parsed.event;
}

describe('ingest promises under faults', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  let tableName = '';
  let reader: DynamoDbEventStore;

  beforeAll(async () => {
    tableName = await createTestTable(dynamo, 'trust');
    reader = new DynamoDbEventStore({ client: dynamo, tableName });
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  async function container(
    options: { fifoDlq?: boolean; dlqAttributes?: Record<string, string> } & Partial<IngestDependencies> = {},
  ): Promise<{ handler: IngestHandler; dlqUrl: string }> {
    const { fifoDlq, dlqAttributes, ...deps } = options;
    const dlqUrl = await createTestQueue(sqs, 'trust-dlq', {
      fifo: fifoDlq ?? false,
      ...(dlqAttributes ? { attributes: dlqAttributes } : {}),
    });
    return { handler: createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger(), ...deps }), dlqUrl };
  }

  /** Write `count` events to a new stream through a container of its own. */
  async function streamAt(count: number): Promise<string> {
    const id = `trust-${randomUUID()}`;
    const writer = new DynamoDbEventStore({ client: dynamo, tableName });
    for (let index = 0; index < count; index += 1) {
      await writer.appendToStream(id, [valid(validEvent({ ID: id, Data: { index }, EventId: `pre-${index}` }))]);
    }
    return id;
  }

  /**
   * An SQS client whose first `failures` SendMessage calls fail with a throttling error before
   * reaching SQS (fault injection: fauxqs cannot be told to throttle one call).
   */
  function flakySqs(failures: number): SQSClient {
    const client = sqsClient();
    let left = failures;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageCommand' && left > 0) {
          left -= 1;
          throw new SQSServiceException({
            name: 'RequestThrottled',
            $fault: 'client',
            $metadata: { httpStatusCode: 403 },
            message: 'injected: throttled',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'flakySend' },
    );
    return client;
  }

  it('FIFO: a record whose DLQ send fails once stops its group before a later event is appended; the redelivery keeps send order', async () => {
    // Prepare: stream at 4; E (ExpectedVersion 5) must be rejected, F comes after it.
    const id = await streamAt(4);
    const flaky = flakySqs(1);
    const { handler, dlqUrl } = await container({ sqs: flaky, fifoDlq: true, maxAttempts: 1 });
    const e = validEvent({ ID: id, EventId: 'E', ExpectedVersion: 5 });
    const f = validEvent({ ID: id, EventId: 'F' });
    const records = () => [
      sqsRecord(e, { fifo: { groupId: id }, messageId: 'm-e' }),
      sqsRecord(f, { fifo: { groupId: id }, messageId: 'm-f' }),
    ];

    // Act: the first delivery's DLQ send is throttled; then SQS redelivers both.
    const first = await handler(sqsEvent(records()), lambdaContext());
    const afterFirst = await reader.readStream(id);
    const second = await handler(sqsEvent(records()), lambdaContext());

    // Assess
    expect(first.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(['m-e', 'm-f']);
    expect(afterFirst.version).toBe(4);
    expect(second).toEqual({ batchItemFailures: [] });
    const { events } = await reader.readStream(id);
    expect(events.map((event) => event.EventId)).toEqual(['pre-0', 'pre-1', 'pre-2', 'pre-3', 'F']);
    const dead = await drainQueue(sqs, dlqUrl);
    expect(dead.map((message) => attribute(message, MessageAttributeNames.rejectionReason))).toEqual([
      RejectionReason.WrongExpectedVersion,
    ]);
    flaky.destroy();
  });

  it('standard: a stream behind ExpectedVersion is waited for, never dead-lettered and then stored by a redelivery', async () => {
    // Prepare: stream at 4; E expects 5; version 5 is still on its way.
    const id = await streamAt(4);
    const { handler, dlqUrl } = await container({ maxReceiveCount: 5 });
    const e = validEvent({ ID: id, EventId: 'E', ExpectedVersion: 5 });

    // Act: first delivery while behind; then version 5 arrives; then SQS delivers E again.
    const first = await handler(sqsEvent([sqsRecord(e, { messageId: 'm-e', receiveCount: 1 })]), lambdaContext());
    const deadAfterFirst = await drainQueue(sqs, dlqUrl);
    await new DynamoDbEventStore({ client: dynamo, tableName }).appendToStream(id, [
      valid(validEvent({ ID: id, EventId: 'five' })),
    ]);
    const second = await handler(sqsEvent([sqsRecord(e, { messageId: 'm-e', receiveCount: 2 })]), lambdaContext());

    // Assess
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm-e' }]);
    expect(deadAfterFirst).toEqual([]);
    expect(second).toEqual({ batchItemFailures: [] });
    expect((await reader.readStream(id)).events.at(-1)).toMatchObject({ EventId: 'E', Version: 6 });
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
  });

  it('standard: still behind on the delivery SQS will not repeat (maxReceiveCount), it is dead-lettered with its reason', async () => {
    const id = await streamAt(2);
    const { handler, dlqUrl } = await container({ maxReceiveCount: 3 });
    const e = validEvent({ ID: id, EventId: 'E', ExpectedVersion: 7 });

    const response = await handler(sqsEvent([sqsRecord(e, { messageId: 'm-e', receiveCount: 3 })]), lambdaContext());

    expect(response).toEqual({ batchItemFailures: [] });
    const dead = await drainQueue(sqs, dlqUrl);
    expect(
      dead.map((message) => [
        attribute(message, MessageAttributeNames.rejectionReason),
        attribute(message, MessageAttributeNames.rejectionDetail),
      ]),
    ).toEqual([
      [
        RejectionReason.WrongExpectedVersion,
        `ExpectedVersion: 7, but stream ${JSON.stringify(id)} is at version 2 (still so at delivery 3 of 3)`,
      ],
    ]);
    expect((await reader.readStream(id)).version).toBe(2);
  });

  it('FIFO: a stream behind ExpectedVersion is final at once (only a rejected event before it explains the gap)', async () => {
    const id = await streamAt(1);
    const { handler, dlqUrl } = await container({ fifoDlq: true });

    const response = await handler(
      sqsEvent([sqsRecord(validEvent({ ID: id, ExpectedVersion: 3 }), { fifo: { groupId: id }, messageId: 'm-1' })]),
      lambdaContext(),
    );

    expect(response).toEqual({ batchItemFailures: [] });
    expect(
      (await drainQueue(sqs, dlqUrl)).map((message) => attribute(message, MessageAttributeNames.rejectionReason)),
    ).toEqual([RejectionReason.WrongExpectedVersion]);
  });

  it('a producer retry with the same EventId and a new ExpectedVersion is a duplicate; with other content, EventIdConflict', async () => {
    const id = `trust-${randomUUID()}`;
    const { handler, dlqUrl } = await container();
    const sent = validEvent({ ID: id, EventId: 'e1', ExpectedVersion: 0 });

    await handler(sqsEvent([sqsRecord(sent)]), lambdaContext());
    const retry = await handler(sqsEvent([sqsRecord({ ...sent, ExpectedVersion: 1 })]), lambdaContext());
    const fresh = await container();
    const changed = await fresh.handler(
      sqsEvent([sqsRecord({ ...sent, ExpectedVersion: 1, Data: { other: 1 } })]),
      lambdaContext(),
    );

    expect(retry).toEqual({ batchItemFailures: [] });
    expect(changed).toEqual({ batchItemFailures: [] });
    expect((await reader.readStream(id)).events.map((event) => [event.EventId, event.Version])).toEqual([['e1', 1]]);
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    expect(
      (await drainQueue(sqs, fresh.dlqUrl)).map((message) => attribute(message, MessageAttributeNames.rejectionReason)),
    ).toEqual([RejectionReason.EventIdConflict]);
  });

  it('FIFO: a dead-lettered message redelivered after a lost acknowledgement is not stored, though the stream has since reached its ExpectedVersion', async () => {
    // Found by the fault explorer: stream at 1; m5 (ExpectedVersion 2) is dead-lettered, m6 is
    // appended at 2; m5's delete is lost and SQS delivers it again.
    const id = await streamAt(1);
    const { handler, dlqUrl } = await container({ fifoDlq: true });
    const m5 = sqsRecord(validEvent({ ID: id, EventId: 'm5', ExpectedVersion: 2 }), {
      fifo: { groupId: id, sequenceNumber: '18900000000000000005' },
      messageId: 'm5',
    });
    const m6 = sqsRecord(validEvent({ ID: id, EventId: 'm6' }), {
      fifo: { groupId: id, sequenceNumber: '18900000000000000006' },
      messageId: 'm6',
    });

    const first = await handler(sqsEvent([m5, m6]), lambdaContext());
    const again = await (
      await container({ fifoDlq: true })
    ).handler(sqsEvent([{ ...m5, attributes: { ...m5.attributes, ApproximateReceiveCount: '2' } }]), lambdaContext());

    expect(first).toEqual({ batchItemFailures: [] });
    expect(again).toEqual({ batchItemFailures: [] });
    expect((await reader.readStream(id)).events.map((event) => event.EventId)).toEqual(['pre-0', 'm6']);
    expect(
      (await drainQueue(sqs, dlqUrl)).map((message) => attribute(message, MessageAttributeNames.sourceMessageId)),
    ).toEqual(['m5']);
  });

  it('FIFO: a stored message redelivered after more than a window of later events is recognised, not stored twice', async () => {
    const id = `trust-${randomUUID()}`;
    const { handler } = await container({ fifoDlq: true });
    const seq = (n: number) => String(18_900_000_000_000_000_000n + BigInt(n));
    const records = Array.from({ length: 13 }, (_, n) =>
      sqsRecord(validEvent({ ID: id, EventId: `e${n}` }), {
        fifo: { groupId: id, sequenceNumber: seq(n) },
        messageId: `m${n}`,
      }),
    );
    for (const record of records) await handler(sqsEvent([record]), lambdaContext());

    // m0's acknowledgement was lost; 12 later events (beyond a window of 10) are stored since.
    const redelivery = { ...records[0]!, attributes: { ...records[0]!.attributes, ApproximateReceiveCount: '2' } };
    const again = await (
      await container({ fifoDlq: true, dedupWindow: 10 })
    ).handler(sqsEvent([redelivery]), lambdaContext());

    expect(again).toEqual({ batchItemFailures: [] });
    const { events } = await reader.readStream(id);
    expect(events.map((event) => event.EventId)).toEqual(records.map((_, n) => `e${n}`));
    // The number, the queue's tag and the send time (core/fifo.ts).
    expect(events.at(-1)?.SourceSequence).toMatch(new RegExp(`^${seq(12)}@[\\w-]{8}@\\d+$`));
  });

  it('a redelivery of the same ExpectedVersion message after more than a window of newer events is recognised by the event at ExpectedVersion + 1 (a duplicate), never a second copy', async () => {
    const id = `trust-${randomUUID()}`;
    const { handler, dlqUrl } = await container({ maxReceiveCount: 5, dedupWindow: 5 });
    const message = sqsRecord(validEvent({ ID: id, EventId: 'e1', ExpectedVersion: 0 }), { messageId: 'm-e1' });
    await handler(sqsEvent([message]), lambdaContext());
    for (let n = 0; n < 6; n += 1)
      await handler(sqsEvent([sqsRecord(validEvent({ ID: id, EventId: `n${n}` }))]), lambdaContext());

    const cold = await container({ maxReceiveCount: 5, dedupWindow: 5 });
    const again = await cold.handler(sqsEvent([message]), lambdaContext());

    expect(again).toEqual({ batchItemFailures: [] });
    expect(
      (await reader.readStream(id)).events.filter((event) => event.EventId === 'e1').map((event) => event.Version),
    ).toEqual([1]);
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    // Outside the window (5), the conditional put at version 1 meets this very event (ALL_OLD).
    expect(await drainQueue(sqs, cold.dlqUrl)).toEqual([]);
  });

  it('FIFO with a message group other than the stream id: a stream behind ExpectedVersion waits (another group may hold the events before it)', async () => {
    const id = await streamAt(1);
    const { handler, dlqUrl } = await container({ fifoDlq: true, maxReceiveCount: 5 });

    const response = await handler(
      sqsEvent([
        sqsRecord(validEvent({ ID: id, ExpectedVersion: 3 }), { fifo: { groupId: 'tenant-7' }, messageId: 'm-1' }),
      ]),
      lambdaContext(),
    );

    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
  });

  it('gives the same verdict for an EventId just outside the window whether the container has the stream cached or not', async () => {
    // Two identical streams. FIFO window: max(10, dedupWindow) = 10. e1 is stored, then 10 more events: e1 is the 11th newest.
    const warm = await container({ fifoDlq: true, dedupWindow: 10 });
    const streams = [`trust-${randomUUID()}`, `trust-${randomUUID()}`];
    const record = (body: EventBody) => sqsRecord(body, { fifo: { groupId: String(body.ID) } });
    for (const id of streams) {
      await warm.handler(sqsEvent([record(validEvent({ ID: id, EventId: 'e1', Data: { a: 1 } }))]), lambdaContext());
      for (let n = 0; n < 10; n += 1)
        await warm.handler(sqsEvent([record(validEvent({ ID: id, EventId: `n${n}` }))]), lambdaContext());
    }
    const cold = await container({ fifoDlq: true, dedupWindow: 10 });

    // The same message (e1 with other content) reaches the warm container for one stream, a cold one for the other.
    await warm.handler(
      sqsEvent([record(validEvent({ ID: streams[0], EventId: 'e1', Data: { a: 2 } }))]),
      lambdaContext(),
    );
    await cold.handler(
      sqsEvent([record(validEvent({ ID: streams[1], EventId: 'e1', Data: { a: 2 } }))]),
      lambdaContext(),
    );

    // Outside the window an EventId is not looked for, by either container (README, "Idempotency").
    const versions = async (id: string | undefined) =>
      (await reader.readStream(id ?? '')).events
        .filter((event) => event.EventId === 'e1')
        .map((event) => event.Version);
    expect(await versions(streams[0])).toEqual([1, 12]);
    expect(await versions(streams[1])).toEqual([1, 12]);
    expect([...(await drainQueue(sqs, warm.dlqUrl)), ...(await drainQueue(sqs, cold.dlqUrl))]).toEqual([]);
  });

  it('a table with another key schema (an operator error) fails the records for a retry; it never dead-letters valid events', async () => {
    const wrongTable = uniqueName('trust-wrong-keys');
    await dynamo.send(
      new CreateTableCommand({
        TableName: wrongTable,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    const { handler, dlqUrl } = await container({ tableName: wrongTable, maxAttempts: 1 });

    const response = await handler(
      sqsEvent([sqsRecord(validEvent({ ExpectedVersion: 0 }), { messageId: 'm-1' })]),
      lambdaContext(),
    );

    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
  });

  describe('a connection that accepts and never answers', () => {
    let server: Server;
    let endpoint = '';
    const sockets = new Set<Socket>();

    beforeAll(async () => {
      // Fault injection: a loopback server that takes the connection and never replies.
      server = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address();
      endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    it('ends the invocation with every record in batchItemFailures before the function would time out', async () => {
      // The deployed handler's clients: per-attempt timeouts that throw, three attempts.
      const hung = new DynamoDBClient({
        endpoint,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        requestHandler: SDK_TIMEOUTS,
      });
      const { handler, dlqUrl } = await container({ dynamo: hung });
      const remainingMs = 4_000;
      const started = Date.now();
      const records = [sqsRecord(validEvent(), { messageId: 'a' }), sqsRecord(validEvent(), { messageId: 'b' })];

      const response = await handler(
        sqsEvent(records),
        lambdaContext({ getRemainingTimeInMillis: () => remainingMs - (Date.now() - started) }),
      );

      expect(Date.now() - started).toBeLessThan(remainingMs);
      expect(response.batchItemFailures.map((failure) => failure.itemIdentifier).sort()).toEqual(['a', 'b']);
      expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
      hung.destroy();
    });
  });

  it('a rejection whose attributes would not fit the DLQ is sent with the detail cut; a body that alone cannot fit is reported failed and stops its FIFO group', async () => {
    const limit = 2_048;
    const { handler, dlqUrl } = await container({
      fifoDlq: true,
      dlqMaxMessageBytes: limit,
      dlqAttributes: { MaximumMessageSize: String(limit) },
    });
    const id = `trust-${randomUUID()}`;
    // Invalid (unknown field) with a body just under the limit: the detail must give way.
    const nearLimit: EventBody = validEvent({ ID: id, Extra: 'x'.repeat(limit - 400) });
    const tooLarge: EventBody = validEvent({ ID: `${id}-b`, Extra: 'x'.repeat(limit + 10) });
    const after = validEvent({ ID: `${id}-b`, EventId: 'after' });

    const response = await handler(
      sqsEvent([
        sqsRecord(nearLimit, { fifo: { groupId: id }, messageId: 'near' }),
        sqsRecord(tooLarge, { fifo: { groupId: `${id}-b` }, messageId: 'large' }),
        sqsRecord(after, { fifo: { groupId: `${id}-b` }, messageId: 'after' }),
      ]),
      lambdaContext(),
    );

    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(['large', 'after']);
    const dead = await drainQueue(sqs, dlqUrl);
    expect(dead.map((message) => message.Body)).toEqual([JSON.stringify(nearLimit)]);
    expect(attribute(dead[0]!, MessageAttributeNames.rejectionReason)).toBe(RejectionReason.SchemaViolation);
    // The full detail names the field and lists the allowed ones; what fitted is its start.
    const detail = attribute(dead[0]!, MessageAttributeNames.rejectionDetail) ?? '';
    expect(detail).toMatch(/\.\.\.$/);
    expect(
      'Extra: unknown field; allowed fields are Timestamp, EventType, ID, EmitterId, EmitterType, Data, EventId, ExpectedVersion'.startsWith(
        detail.slice(0, -3),
      ),
    ).toBe(true);
    expect((await reader.readStream(`${id}-b`)).version).toBe(0);
  });

  it('stores numbers with the digits sent, reads them back exactly, and recognises a redelivery to a fresh container as a duplicate', async () => {
    const id = `trust-${randomUUID()}`;
    const body = `{"Timestamp":1596719980.123456789012345678,"EventType":"PAYMENT","ID":"${id}","EmitterId":"e","EmitterType":"SYSTEM","Data":{"amountMinor":12345678901234567890,"rate":0.1000000000000000055511151231257827,"plain":1.50}}`;
    const one = await container();
    const two = await container();

    const first = await one.handler(sqsEvent([sqsRecord(body)]), lambdaContext());
    const again = await two.handler(sqsEvent([sqsRecord(body)]), lambdaContext());

    expect(first).toEqual({ batchItemFailures: [] });
    expect(again).toEqual({ batchItemFailures: [] });
    expect(await drainQueue(sqs, two.dlqUrl)).toEqual([]);
    const raw = await dynamo.send(
      new GetItemCommand({ TableName: tableName, Key: { ID: { S: id }, Version: { N: '1' } } }),
    );
    expect(raw.Item?.['Data']?.M?.['amountMinor']).toEqual({ N: '12345678901234567890' });
    expect(raw.Item?.['Data']?.M?.['rate']).toEqual({ N: '0.1000000000000000055511151231257827' });
    expect(raw.Item?.['Timestamp']).toEqual({ N: '1596719980.123456789012345678' });
    const { events, version } = await reader.readStream(id);
    expect(version).toBe(1);
    expect(events[0]?.Data?.['amountMinor']).toBeInstanceOf(ExactNumber);
    const data = events[0]?.Data ?? {};
    expect([data['amountMinor'], data['rate'], data['plain']].map((value) => JSON.stringify(value))).toEqual([
      '12345678901234567890',
      '0.1000000000000000055511151231257827',
      '1.5',
    ]);
  });

  it('accepts Data: null (the original design does), stores it as null and reads it back as null', async () => {
    const id = `trust-${randomUUID()}`;
    const { handler, dlqUrl } = await container();

    const response = await handler(sqsEvent([sqsRecord(validEvent({ ID: id, Data: null as never }))]), lambdaContext());

    expect(response).toEqual({ batchItemFailures: [] });
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    const raw = await dynamo.send(
      new GetItemCommand({ TableName: tableName, Key: { ID: { S: id }, Version: { N: '1' } } }),
    );
    expect(raw.Item?.['Data']).toEqual({ NULL: true });
    expect((await reader.readStream(id)).events[0]?.Data).toBeNull();
  });
});
