import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import {
  CreateTableCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  waitUntilTableExists,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../core/store.ts';
import {
  READ_MODEL_TABLE_VARIABLE,
  StreamSummaryAttributes,
  streamSummaryProjection,
  summaryFromItem,
} from '../../handlers/stream-summary-projection.ts';
import { createSubscriptionHandler, type SubscriptionConfig } from '../../handlers/subscription.ts';
import { createTestTable, dynamoClient, uniqueName } from '../support/engines.ts';
import { lambdaContext, parsedEvent, parsedGroup } from '../support/factories.ts';
import { createCheckpointTable } from '../support/subscriptions.ts';

/** The stream record Lambda hands the function for a stored item (its raw attribute values as NEW_IMAGE). */
function streamRecord(
  item: Record<string, AttributeValue>,
  sequence: number,
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE' = 'INSERT',
): DynamoDBRecord {
  return {
    eventName,
    eventSource: 'aws:dynamodb',
    dynamodb: {
      SequenceNumber: String(sequence).padStart(21, '0'),
      NewImage: item as NonNullable<DynamoDBRecord['dynamodb']>['NewImage'],
    },
  };
}

function item(id: string, version: number, data: Record<string, AttributeValue> = {}): Record<string, AttributeValue> {
  return {
    ID: { S: id },
    Version: { N: String(version) },
    EventId: { S: `${id}-${version}` },
    EventType: { S: 'EVENT_EXAMPLE' },
    Timestamp: { N: '1596719980' },
    EmitterId: { S: 'e' },
    EmitterType: { S: 'SYSTEM' },
    Data: { M: data },
    RecordedAt: { S: new Date().toISOString() },
  };
}

describe('subscription handler (Lambda shape) on DynamoDB Local', () => {
  let client: DynamoDBClient;
  let config: SubscriptionConfig;

  beforeAll(async () => {
    client = dynamoClient();
    const eventTable = await createTestTable(client, 'sub-handler-events');
    config = {
      name: 'test',
      eventTable,
      checkpointTable: await createCheckpointTable(client, 'sub-handler-cp'),
      maxAttempts: 3,
      eventTypes: [],
      replayReadUnitsPerSecond: 1000,
    };
    // A number no double holds, as DynamoDB keeps it (38 digits).
    const items = [
      item('a', 1, { big: { N: '12345678901234567890123456789' } }),
      item('a', 2),
      item('a', 3),
      item('b', 1),
      item('b', 2),
    ];
    for (const it of items) await client.send(new PutItemCommand({ TableName: eventTable, Item: it }));
  });

  afterAll(() => client.destroy());

  it('delivers in version order, fills a gap, ignores non-INSERT records, reports the failing stream by sequence number', async () => {
    // Prepare
    const seen: StoredEvent[] = [];
    const handler = createSubscriptionHandler({
      dynamo: client,
      config,
      project: (event) => {
        if (event.ID === 'b' && event.Version === 2) throw new Error('b@2 fails');
        seen.push(event);
      },
    });
    const raw = async (id: string) =>
      (
        await client.send(
          new QueryCommand({
            TableName: config.eventTable,
            KeyConditionExpression: 'ID = :id',
            ExpressionAttributeValues: { ':id': { S: id } },
          }),
        )
      ).Items!;
    const [a1, , a3] = await raw('a');
    const [b1, b2] = await raw('b');

    // Act: a@2 never arrives (gap), a@3 before a@1 (out of order), a MODIFY in between.
    const response = await handler(
      {
        Records: [
          streamRecord(a3!, 10),
          streamRecord(b1!, 11),
          streamRecord(a1!, 12, 'MODIFY'),
          streamRecord(a1!, 13),
          streamRecord(b2!, 14),
        ],
      },
      lambdaContext(),
    );

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: '000000000000000000014' }] });
    expect(seen.filter((e) => e.ID === 'a').map((e) => e.Version)).toEqual([1, 2, 3]);
    expect(seen.filter((e) => e.ID === 'b').map((e) => e.Version)).toEqual([1]);
    expect(seen.find((e) => e.ID === 'a' && e.Version === 1)?.Data?.['big']).toBeDefined();
  });

  it('checkpoints that cannot be read (a fault DynamoDB Local gives on a missing table): every stream retried, nothing delivered, nothing parked', async () => {
    // Prepare
    const seen: string[] = [];
    const handler = createSubscriptionHandler({
      dynamo: client,
      config: { ...config, checkpointTable: 'no-such-checkpoint-table' },
      project: (e) => void seen.push(e.ID),
    });
    const [a1] = (
      await client.send(
        new QueryCommand({
          TableName: config.eventTable,
          KeyConditionExpression: 'ID = :id',
          ExpressionAttributeValues: { ':id': { S: 'a' } },
        }),
      )
    ).Items!;

    // Act
    const response = await handler({ Records: [streamRecord(a1!, 20)] }, lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: '000000000000000000020' }] });
    expect(seen).toEqual([]);
  });

  it('{ replay: true } catches a new subscription up from version 1 and reports done', async () => {
    // Prepare
    const seen: string[] = [];
    const handler = createSubscriptionHandler({
      dynamo: client,
      config: { ...config, checkpointTable: await createCheckpointTable(client, 'sub-handler-replay') },
      project: (event) => void seen.push(`${event.ID}@${event.Version}`),
    });

    // Act
    const report = await handler({ replay: true }, lambdaContext({ getRemainingTimeInMillis: () => 60_000 }));

    // Assess
    expect(report.busy).toBe(false);
    expect(report.state).toMatchObject({ status: 'done', streams: 2, events: 5, lease: undefined });
    expect(seen.filter((s) => s.startsWith('a'))).toEqual(['a@1', 'a@2', 'a@3']);
    expect(seen.filter((s) => s.startsWith('b'))).toEqual(['b@1', 'b@2']);
    // Run again: nothing to do.
    expect(await handler({ replay: true }, lambdaContext())).toMatchObject({
      busy: false,
      streams: 0,
      state: { status: 'done' },
    });
  });

  it('a group reaches the projection as its events in version order, each with GroupSize and GroupIndex; the example projection counts each event and the group once', async () => {
    // Prepare: stream g holds a single event (1), a group of three (2 to 4) and a single event
    // (5), appended by the real store; the stream records carry the items it wrote
    const events = await createTestTable(client, 'sub-handler-groups');
    const store = new DynamoDbEventStore({ client, tableName: events });
    const single = (EventType: string) => parsedEvent({ ID: 'g', EventType });
    const appended = [
      ...(await store.appendToStream('g', [single('ORDER_CREATED')])),
      await store.appendGroup(
        parsedGroup(
          [{ EventType: 'ORDER_PLACED' }, { EventType: 'PAYMENT_RESERVED' }, { EventType: 'STOCK_RESERVED' }],
          {
            ID: 'g',
          },
        ),
      ),
      ...(await store.appendToStream('g', [single('ORDER_SHIPPED')])),
    ];
    expect(appended).toEqual([
      { status: 'stored', version: 1 },
      { status: 'stored', version: 2, count: 3 },
      { status: 'stored', version: 5 },
    ]);
    const items = (
      await client.send(
        new QueryCommand({
          TableName: events,
          KeyConditionExpression: 'ID = :id',
          ExpressionAttributeValues: { ':id': { S: 'g' } },
          ConsistentRead: true,
        }),
      )
    ).Items!;
    const readModel = uniqueName('sub-handler-summary');
    await client.send(
      new CreateTableCommand({
        TableName: readModel,
        AttributeDefinitions: [{ AttributeName: StreamSummaryAttributes.partitionKey, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: StreamSummaryAttributes.partitionKey, KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: readModel });
    const summary = streamSummaryProjection({ env: { [READ_MODEL_TABLE_VARIABLE]: readModel }, dynamo: client });
    const seen: StoredEvent[] = [];
    const handler = createSubscriptionHandler({
      dynamo: client,
      config: {
        ...config,
        eventTable: events,
        checkpointTable: await createCheckpointTable(client, 'sub-handler-groups-cp'),
      },
      project: async (event) => {
        seen.push(event);
        await summary(event);
      },
    });

    // Act: the first batch ends inside the group (version 3: 2 is read from the table), the
    // second brings 4 and 5 with version 2's record again (a Streams retry)
    const first = await handler(
      { Records: [streamRecord(items[0]!, 30), streamRecord(items[2]!, 31)] },
      lambdaContext(),
    );
    const second = await handler(
      { Records: [streamRecord(items[1]!, 32), streamRecord(items[3]!, 33), streamRecord(items[4]!, 34)] },
      lambdaContext(),
    );

    // Assess: every event once, in version order, the group's with their place in it
    expect([first, second]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(seen.map((event) => [event.Version, event.GroupIndex, event.GroupSize])).toEqual([
      [1, undefined, undefined],
      [2, 0, 3],
      [3, 1, 3],
      [4, 2, 3],
      [5, undefined, undefined],
    ]);
    // The group's first version: Version - GroupIndex
    expect(
      seen.filter((event) => event.GroupSize !== undefined).map((event) => event.Version - event.GroupIndex!),
    ).toEqual([2, 2, 2]);
    const stored = await client.send(
      new GetItemCommand({ TableName: readModel, Key: { ID: { S: 'g' } }, ConsistentRead: true }),
    );
    expect(summaryFromItem(stored.Item!)).toEqual({
      ID: 'g',
      Events: 5,
      Groups: 1,
      LastVersion: 5,
      LastEventType: 'ORDER_SHIPPED',
      Types: { ORDER_CREATED: 1, ORDER_PLACED: 1, PAYMENT_RESERVED: 1, STOCK_RESERVED: 1, ORDER_SHIPPED: 1 },
    });
    // The projection again over the same events (a redelivery after a crash): nothing changes
    for (const event of seen) await summary(event);
    const again = await client.send(
      new GetItemCommand({ TableName: readModel, Key: { ID: { S: 'g' } }, ConsistentRead: true }),
    );
    expect(summaryFromItem(again.Item!)).toMatchObject({ Events: 5, Groups: 1 });
  });
});
