import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { seededRandom } from '../../bench/workload.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient, uniqueName } from '../support/engines.ts';
import { injectFaults, randomFaults } from './fault-injection.ts';
import {
  deliverUntilDone,
  drainDeadLetters,
  eventBody,
  exactlyOnceProblems,
  expectedEvents,
  type TestMessage,
} from './harness.ts';

// FAULT INJECTION: DynamoDB Local never throttles and never answers 500; an SDK middleware on
// the handler's client makes it do both, before the request reaches the engine (nothing
// written) and after (written, but the response lost), inside the SDK's retry loop.

const seed = Number(process.env['FC_SEED'] ?? Date.now() % 2 ** 31);
const admin = dynamoClient();
const sqs = sqsClient();
const faulty: DynamoDBClient[] = [];
let tableName = '';

beforeAll(async () => {
  tableName = await createTestTable(admin, 'faults-throttle');
});

afterAll(() => {
  admin.destroy();
  sqs.destroy();
  for (const client of faulty) client.destroy();
});

function workload(streams: number, perStream: number): TestMessage[] {
  const prefix = uniqueName('throttled');
  const messages: TestMessage[] = [];
  for (let n = 0; n < perStream; n += 1) {
    for (let s = 0; s < streams; s += 1) {
      messages.push({ messageId: `${prefix}-m-${s}-${n}`, body: eventBody(`${prefix}-s${s}`, n) });
    }
  }
  return messages;
}

describe.each([
  { mode: 'standard', fifo: false },
  { mode: 'FIFO', fifo: true },
])('throttling and 5xx on the $mode path', ({ fifo }) => {
  it('retries and stores every event exactly once, with gapless versions and nothing dead-lettered', async () => {
    // Prepare
    const client = dynamoClient({ maxAttempts: 2 });
    faulty.push(client);
    const log = injectFaults(
      client,
      randomFaults(seededRandom(seed), { 'throttle-before': 0.15, 'error-before': 0.05, 'error-after': 0.1 }),
    );
    const dlqUrl = await createTestQueue(sqs, 'faults-throttle-dlq', { fifo });
    const handler = createIngestHandler({ dynamo: client, sqs, tableName, dlqUrl, maxAttempts: 4 });
    const messages = workload(8, 15);

    // Act
    const delivered = await deliverUntilDone(handler, messages, { fifo, batchSize: 10, maxBatches: 500 });

    // Assess
    const problems = await exactlyOnceProblems(admin, tableName, expectedEvents(messages));
    const deadLetters = await drainDeadLetters(sqs, dlqUrl);
    console.log(
      `faults/throttling ${fifo ? 'fifo' : 'standard'} seed ${seed}: injected ${JSON.stringify(log.injected)} over ${JSON.stringify(log.attempts)} attempts; ` +
        `${delivered.failedRecords} records redelivered in ${delivered.batches} batches; checked ${messages.length} events stored once, versions gapless, DLQ empty`,
    );
    expect(log.injected['throttle-before'] + log.injected['error-after']).toBeGreaterThan(0);
    expect(delivered.pending).toEqual([]);
    expect(problems).toEqual([]);
    expect(deadLetters).toEqual([]);
  }, 180_000);
});
