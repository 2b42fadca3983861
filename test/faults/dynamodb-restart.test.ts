import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/defaults.ts';
import { freePort } from '../../local/engines/ports.ts';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../local/engines/dynamodb-local.ts';
import { createEventTable } from '../../local/provision.ts';
import { createTestQueue, sqsClient, uniqueName } from '../support/engines.ts';
import {
  deliverUntilDone,
  drainDeadLetters,
  eventBody,
  exactlyOnceProblems,
  expectedEvents,
  type TestMessage,
} from './harness.ts';

// A real fault: this suite's own DynamoDB Local, on disk, is killed (SIGKILL) in the middle
// of a run and started again on the same port and data folder. While it is down the handler
// reports every record failed; SQS (here, the test) delivers those again until all succeed.

const sqs = sqsClient();
const clients: DynamoDBClient[] = [];
let dataDir = '';
let port = 0;
let engine: DynamoDbLocal | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'event-store-restart-'));
  port = await freePort();
  engine = await startDynamoDbLocal({ dataDir, port });
});

afterAll(async () => {
  sqs.destroy();
  for (const client of clients) client.destroy();
  await engine?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function client(maxAttempts: number): DynamoDBClient {
  const created = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 5_000 },
  });
  clients.push(created);
  return created;
}

function workload(streams: number, perStream: number): TestMessage[] {
  const prefix = uniqueName('restart');
  const messages: TestMessage[] = [];
  for (let n = 0; n < perStream; n += 1) {
    for (let s = 0; s < streams; s += 1)
      messages.push({ messageId: `${prefix}-m-${s}-${n}`, body: eventBody(`${prefix}-s${s}`, n) });
  }
  return messages;
}

describe.each([
  { mode: 'standard', fifo: false },
  { mode: 'FIFO', fifo: true },
])('DynamoDB Local killed and restarted mid-run, $mode queue', ({ fifo }) => {
  it('ends with every event stored exactly once and gapless versions', async () => {
    // Prepare
    const admin = client(3);
    const tableName = uniqueName('faults-restart');
    await createEventTable(admin, tableName);
    const dlqUrl = await createTestQueue(sqs, 'faults-restart-dlq', { fifo });
    const dynamo = client(2);
    const handler = createIngestHandler({ dynamo, sqs, tableName, dlqUrl });
    const messages = workload(6, 20);
    const killAtPut = 45;
    let puts = 0;
    let killedInBatch: number | undefined;
    let restartedBeforeBatch: number | undefined;
    // The kill lands inside a batch: on the 45th PutItem, with other puts of the batch in flight.
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutItemCommand' && (puts += 1) === killAtPut)
          process.kill(engine!.pid!, 'SIGKILL');
        return next(args);
      },
      { step: 'initialize', name: 'killDynamoDbLocal' },
    );

    // Act: three more batches are delivered while the engine is down, then it comes back.
    const delivered = await deliverUntilDone(handler, messages, {
      fifo,
      batchSize: 10,
      maxBatches: 200,
      async beforeBatch(index) {
        if (puts >= killAtPut && killedInBatch === undefined) killedInBatch = index - 1;
        if (killedInBatch !== undefined && restartedBeforeBatch === undefined && index >= killedInBatch + 4) {
          await engine!.stop();
          engine = await startDynamoDbLocal({ dataDir, port });
          restartedBeforeBatch = index;
        }
      },
    });

    // Assess
    const problems = await exactlyOnceProblems(admin, tableName, expectedEvents(messages));
    const deadLetters = await drainDeadLetters(sqs, dlqUrl);
    console.log(
      `faults/dynamodb-restart ${fifo ? 'fifo' : 'standard'}: injected SIGKILL of DynamoDB Local at PutItem ${killAtPut} (batch ${killedInBatch}), restart (same port, same data folder) before batch ${restartedBeforeBatch}; ` +
        `${delivered.failedRecords} records reported failed and redelivered over ${delivered.batches} batches; checked ${messages.length} events stored once, versions gapless, DLQ empty`,
    );
    expect(restartedBeforeBatch).toBe((killedInBatch ?? Number.NaN) + 4);
    expect(delivered.failedRecords).toBeGreaterThanOrEqual(30);
    expect(delivered.pending).toEqual([]);
    expect(problems).toEqual([]);
    expect(deadLetters).toEqual([]);
  }, 180_000);
});
