import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../local/engines/dynamodb-local.ts';
import { startSqsLocal } from '../local/engines/sqs-local.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoDbEndpoint: string;
    sqsEndpoint: string;
  }
}

/**
 * Start the real engines once per run, on free loopback ports: Amazon's DynamoDB Local
 * (in memory, telemetry off) and fauxqs. Every suite makes its own tables and queues.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [dynamo, sqs] = await Promise.all([startDynamoDbLocal(), startSqsLocal()]);
  project.provide('dynamoDbEndpoint', dynamo.endpoint);
  project.provide('sqsEndpoint', sqs.endpoint);
  return async () => {
    await Promise.all([dynamo.stop(), sqs.stop()]);
  };
}
