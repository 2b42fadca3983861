import { PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../core/store.ts';
import { createSubscriptionHandler, type SubscriptionConfig } from '../../handlers/subscription.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';
import { lambdaContext } from '../support/factories.ts';
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
});
