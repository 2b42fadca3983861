import {
  CreateTableCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  waitUntilTableExists,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { claimsTableDefinition } from '../../../adapters/dynamodb-subscription.ts';
import * as dynamodb from '@aws-sdk/client-dynamodb';
import { TableKeys } from '../../../core/keys.ts';
import { CheckpointKeys, ClaimKeys } from '../../../core/subscription.ts';
import { FakeDynamoDb } from './fake-dynamodb.ts';
import type { Backend, Item } from './world.ts';

/** The schedule's tables in memory (fake-dynamodb.ts says what of DynamoDB it keeps). */
export function memoryBackend(name: string): Backend {
  const fake = new FakeDynamoDb();
  const eventTable = `${name}-events`;
  const checkpointTable = `${name}-checkpoints`;
  const claimsTable = `${name}-claims`;
  fake.createTable({ name: eventTable, partitionKey: TableKeys.partitionKey, sortKey: TableKeys.sortKey });
  fake.createTable({ name: checkpointTable, partitionKey: CheckpointKeys.partitionKey });
  fake.createTable({ name: claimsTable, partitionKey: ClaimKeys.partitionKey, sortKey: ClaimKeys.sortKey });
  return {
    eventTable,
    checkpointTable,
    claimsTable,
    send: (command, input) => {
      try {
        return Promise.resolve(fake.execute(command, input));
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
    get: (table, key) => Promise.resolve(fake.get(table, key)),
    put: (table, item) => {
      fake.store(table, item, item);
      return Promise.resolve();
    },
    checkpointItems: () => Promise.resolve(fake.items(checkpointTable)),
  };
}

type CommandClass = new (input: never) => object;
const COMMANDS = dynamodb as unknown as Record<string, CommandClass>;

/**
 * The schedule's tables on DynamoDB Local (a fresh pair per schedule): the same requests, to the
 * real engine, one at a time as the scheduler releases them.
 */
export async function dynamoDbLocalBackend(
  client: DynamoDBClient,
  name: string,
): Promise<Backend & { drop(): Promise<void> }> {
  const eventTable = `${name}-events`;
  const checkpointTable = `${name}-checkpoints`;
  const claimsTable = `${name}-claims`;
  await client.send(new CreateTableCommand(claimsTableDefinition(claimsTable)));
  await client.send(
    new CreateTableCommand({
      TableName: eventTable,
      AttributeDefinitions: [
        { AttributeName: TableKeys.partitionKey, AttributeType: 'S' },
        { AttributeName: TableKeys.sortKey, AttributeType: 'N' },
      ],
      KeySchema: [
        { AttributeName: TableKeys.partitionKey, KeyType: 'HASH' },
        { AttributeName: TableKeys.sortKey, KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await client.send(
    new CreateTableCommand({
      TableName: checkpointTable,
      AttributeDefinitions: [{ AttributeName: CheckpointKeys.partitionKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: CheckpointKeys.partitionKey, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: eventTable });
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: checkpointTable });
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: claimsTable });
  return {
    eventTable,
    checkpointTable,
    claimsTable,
    async send(command, input) {
      const Command = COMMANDS[command];
      if (!Command) throw new Error(`unknown command ${command}`);
      // The SDK's command classes take their own input type; the world passes it through as it got it.
      const result = await client.send(new Command(input as never) as Parameters<DynamoDBClient['send']>[0]);
      return result as unknown as Record<string, unknown>;
    },
    async get(table, key) {
      const result = await client.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }));
      return result.Item;
    },
    async put(table, item) {
      await client.send(new PutItemCommand({ TableName: table, Item: item }));
    },
    async checkpointItems() {
      const items: Item[] = [];
      let startKey: Record<string, AttributeValue> | undefined;
      do {
        const page = await client.send(
          new ScanCommand({ TableName: checkpointTable, ConsistentRead: true, ExclusiveStartKey: startKey }),
        );
        items.push(...(page.Items ?? []));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      return items;
    },
    async drop() {
      await client.send(new DeleteTableCommand({ TableName: eventTable })).catch(() => undefined);
      await client.send(new DeleteTableCommand({ TableName: checkpointTable })).catch(() => undefined);
      await client.send(new DeleteTableCommand({ TableName: claimsTable })).catch(() => undefined);
    },
  };
}
