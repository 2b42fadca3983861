import { afterAll, beforeAll } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';
import { eventStoreContract } from './event-store-contract.ts';

const client = dynamoClient();
let tableName = '';

beforeAll(async () => {
  tableName = await createTestTable(client, 'contract');
});
afterAll(() => client.destroy());

eventStoreContract('DynamoDbEventStore on DynamoDB Local', {
  create: (hooks = {}) => new DynamoDbEventStore({ client, tableName, ...hooks }),
});
