import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { LOCAL_CREDENTIALS as credentials, LOCAL_REGION } from '../../local/defaults.ts';
import { localQueueUrl } from '../../local/engines/sqs-local.ts';
import { createEventTable } from '../../local/provision.ts';

/** A DynamoDB client for the run's DynamoDB Local. `destroy()` it in teardown. */
export function dynamoClient(options: { maxAttempts?: number } = {}): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: inject('dynamoDbEndpoint'),
    region: LOCAL_REGION,
    credentials,
    maxAttempts: options.maxAttempts ?? 3,
  });
}

/** An SQS client for the run's fauxqs. `destroy()` it in teardown. */
export function sqsClient(): SQSClient {
  return new SQSClient({ endpoint: inject('sqsEndpoint'), region: LOCAL_REGION, credentials });
}

/** A unique name for a suite's own table or queue. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Create a fresh event table (same definition as the stack's) and return its name. */
export async function createTestTable(client: DynamoDBClient, prefix = 'events'): Promise<string> {
  const tableName = uniqueName(prefix);
  await createEventTable(client, tableName);
  return tableName;
}

/** Create a queue and return its loopback URL. FIFO when `fifo` is set (name gets `.fifo`). */
export async function createTestQueue(
  client: SQSClient,
  prefix: string,
  options: { fifo?: boolean; attributes?: Record<string, string> } = {},
): Promise<string> {
  const name = uniqueName(prefix) + (options.fifo ? '.fifo' : '');
  const attributes: Record<string, string> = { ...options.attributes };
  if (options.fifo) attributes['FifoQueue'] = 'true';
  const created = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  return localQueueUrl(created.QueueUrl!, inject('sqsEndpoint'));
}
