import {
  CreateTableCommand,
  ScanCommand,
  waitUntilTableExists,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { claimsTableDefinition } from '../../adapters/dynamodb-subscription.ts';
import type { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import type { ValidEvent } from '../../core/event.ts';
import { CheckpointKeys } from '../../core/subscription.ts';
import { uniqueName } from './engines.ts';
import { parsedEvent } from './factories.ts';

/** A fresh checkpoint table with the key the EventSubscription construct gives it (its template test pins the same). */
export async function createCheckpointTable(client: DynamoDBClient, prefix = 'checkpoints'): Promise<string> {
  const tableName = uniqueName(prefix);
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: CheckpointKeys.partitionKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: CheckpointKeys.partitionKey, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: tableName });
  return tableName;
}

/**
 * A fresh claims table with the key docs/ARCHITECTURE.md ("Subscriptions") gives it: every claim
 * under one partition, sorted by deadline (TTL is left off: DynamoDB Local would not run it anyway).
 */
export async function createClaimsTable(client: DynamoDBClient, prefix = 'claims'): Promise<string> {
  const tableName = uniqueName(prefix);
  await client.send(new CreateTableCommand(claimsTableDefinition(tableName)));
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: tableName });
  return tableName;
}

/** Every item of a (small) table, strongly consistent: what is left in a claims table. */
export async function allItems(client: DynamoDBClient, tableName: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: startKey }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

export function event(
  streamId: string,
  eventType = 'EVENT_EXAMPLE',
  data: Record<string, unknown> = { n: 1 },
): ValidEvent {
  return parsedEvent({ ID: streamId, EventType: eventType, Data: data });
}

/** Append `count` events to each stream through the real store; returns the stream ids in order. */
export async function seedStreams(
  store: DynamoDbEventStore,
  streams: Readonly<Record<string, number>>,
  types = ['EVENT_EXAMPLE'],
): Promise<void> {
  await Promise.all(
    Object.entries(streams).map(async ([streamId, count]) => {
      const events = Array.from({ length: count }, (_, index) =>
        event(streamId, types[index % types.length], { index }),
      );
      for (let start = 0; start < events.length; start += 25) {
        const outcomes = await store.appendToStream(streamId, events.slice(start, start + 25));
        const bad = outcomes.find((outcome) => outcome.status !== 'stored');
        if (bad) throw new Error(`seed: ${JSON.stringify(bad)}`);
      }
    }),
  );
}
