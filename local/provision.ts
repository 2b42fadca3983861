import { CreateTableCommand, waitUntilTableExists, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TableKeys } from '../core/keys.ts';

/**
 * Create the event table: `ID` (S) + `Version` (N), on demand, streams with new images.
 * TODO(local mode issue): derive these properties from the synthesized CDK template.
 */
export async function createEventTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [
        { AttributeName: TableKeys.partitionKey, AttributeType: 'S' },
        { AttributeName: TableKeys.sortKey, AttributeType: 'N' },
      ],
      KeySchema: [
        { AttributeName: TableKeys.partitionKey, KeyType: 'HASH' },
        { AttributeName: TableKeys.sortKey, KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' },
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: tableName });
}
