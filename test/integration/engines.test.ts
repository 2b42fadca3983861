import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { TableKeys } from '../../core/keys.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';

describe('local engines', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  it('DynamoDB Local creates the event table with the shared key names', async () => {
    const tableName = await createTestTable(dynamo);
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: TableKeys.partitionKey, KeyType: 'HASH' },
      { AttributeName: TableKeys.sortKey, KeyType: 'RANGE' },
    ]);
  });

  it('the SQS server creates a FIFO queue reachable on loopback', async () => {
    const url = await createTestQueue(sqs, 'engines', { fifo: true });
    expect(url.startsWith(inject('sqsEndpoint'))).toBe(true);
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
    expect(Attributes?.['FifoQueue']).toBe('true');
  });
});
