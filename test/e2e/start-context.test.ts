import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueMode } from '../../core/queue-mode.ts';
import { ConfigError } from '../../infra/config.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { parseStartContext } from '../../local/start-context.ts';
import { scanEvents, stackClients, StackProcess } from './support.ts';

/** The `batch processed` lines the ingest handler logs (Powertools JSON, one per invocation). */
function batchesLogged(stdout: string): { records: number }[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { message?: string; records?: number })
    .filter((entry) => entry.message === 'batch processed')
    .map((entry) => ({ records: entry.records ?? -1 }));
}

function configErrorOf(pairs: string[], queue?: QueueMode): ConfigError {
  try {
    parseStartContext(pairs, queue);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`parseStartContext accepted ${JSON.stringify(pairs)}`);
}

describe('npm start -c key=value (the context keys of cdk deploy)', () => {
  it('keeps the keys that change local behaviour, names the deploy-only ones, and takes the mode from -c or --queue', () => {
    // Act
    const parsed = parseStartContext([
      'batchSize=3',
      'tableName=orders',
      'maxReceiveCount=2',
      'resendWindow=60',
      'queue=fifo',
    ]);
    const fromOption = parseStartContext(['batchSize=3'], 'fifo');

    // Assess
    expect(parsed).toEqual({
      queueMode: 'fifo',
      context: { batchSize: '3', maxReceiveCount: '2', resendWindow: '60' },
      ignored: ['tableName'],
    });
    expect(fromOption.queueMode).toBe('fifo');
  });

  it.each([
    [
      ['batchSize=11', 'queue=fifo'],
      undefined,
      'Invalid context batchSize="11": allowed an integer from 1 to 10 with queue=fifo.',
    ],
    [['batchsize=3'], undefined, 'Invalid context batchsize="3": allowed context keys: '],
    [['batchSize'], undefined, 'Invalid context -c="batchSize": allowed key=value, as cdk deploy -c takes it.'],
    [
      ['queue=fifo'],
      'standard',
      'Invalid context queue="fifo": allowed the mode --queue gives (standard), or one of them only.',
    ],
  ] as const)('refuses %j (--queue %s) as cdk deploy would', (pairs, queue, message) => {
    // Act
    const error = configErrorOf([...pairs], queue);

    // Assess
    expect(error.message.startsWith(message)).toBe(true);
  });

  describe('a local stack started with -c batchSize=3 -c maxBatchingWindowSeconds=2 -c maxReceiveCount=2', () => {
    const stack = new StackProcess();
    let dynamo: DynamoDBClient;
    let sqs: SQSClient;

    beforeAll(async () => {
      const state = await stack.start(
        [
          '-c',
          'batchSize=3',
          '-c',
          'maxBatchingWindowSeconds=2',
          '-c',
          'maxReceiveCount=2',
          '-c',
          'alarmEmail=ops@example.com',
        ],
        // The handler's per-invocation "batch processed" line is logged at INFO.
        { env: { POWERTOOLS_LOG_LEVEL: 'INFO' } },
      );
      ({ dynamo, sqs } = stackClients(state));
    }, 120_000);

    afterAll(async () => {
      dynamo?.destroy();
      sqs?.destroy();
      await stack.stop();
    });

    it('says what it applied and what it ignored', () => {
      // Assess
      const out = stack.child!.stdout;
      expect(out).toContain("Ignored locally (a deployed stack's settings): alarmEmail\n");
      expect(out).toContain('batch size 3, batching window 2 s, function timeout 30 s');
      // 6 x 30 s function timeout + 2 s batching window.
      expect(out).toContain('  queue settings  visibility timeout 182 s, maxReceiveCount 2');
      // More consumers (local/consume.ts) read it from the state file, so they batch alike.
      expect(stack.state.context).toEqual({ batchSize: '3', maxBatchingWindowSeconds: '2', maxReceiveCount: '2' });
    });

    it('the queue has the visibility timeout and maxReceiveCount the template has', async () => {
      // Act
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: stack.state.queueUrl,
          AttributeNames: ['VisibilityTimeout', 'RedrivePolicy'],
        }),
      );

      // Assess
      expect(Attributes['VisibilityTimeout']).toBe('182');
      expect(JSON.parse(Attributes['RedrivePolicy'] ?? '{}')).toMatchObject({ maxReceiveCount: 2 });
    });

    it('delivers batches of at most 3 records', { timeout: 90_000 }, async () => {
      // Act
      const published = await stack.cli([
        'publish',
        '--generate',
        '30',
        '--streams',
        '30',
        '--stream-prefix',
        'batch3',
      ]);
      await waitUntil(
        async () =>
          (await scanEvents(dynamo, stack.state.tableName)).filter((e) => e.ID.startsWith('batch3-')).length === 30,
        '30 events stored',
        60_000,
        250,
      );
      await waitUntil(
        async () => batchesLogged(stack.child!.stdout).reduce((sum, batch) => sum + batch.records, 0) >= 30,
        'the handler logged every batch',
        10_000,
      );

      // Assess
      expect(published.code).toBe(0);
      const sizes = batchesLogged(stack.child!.stdout).map((batch) => batch.records);
      expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(30);
      expect(Math.max(...sizes)).toBe(3);
      expect(sizes.every((size) => size >= 1 && size <= 3)).toBe(true);
    });
  });
});
