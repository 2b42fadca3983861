import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../core/errors.ts';
import { Limits } from '../../core/keys.ts';
import { DEFAULT_STACK_NAME } from '../../core/stack-outputs.ts';
import {
  ConfigError,
  ConfigLimits,
  ingestRetentionSeconds,
  longestRetryPathSeconds,
  parseConfig,
} from '../../infra/config.ts';

/** Run parseConfig and return the ConfigError it throws (fails the test when it does not). */
function configErrorOf(context: Record<string, unknown>): ConfigError {
  try {
    parseConfig(context);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(context)}`);
}

describe('parseConfig', () => {
  it('gives the documented defaults for an empty context', () => {
    // Act
    const config = parseConfig({});

    // Assess
    expect(config).toEqual({
      stackName: DEFAULT_STACK_NAME,
      queue: 'standard',
      tableName: undefined,
      queueName: undefined,
      batchSize: 10,
      maxBatchingWindowSeconds: 0,
      maxConcurrency: undefined,
      maxReceiveCount: 5,
      dedupWindow: Limits.defaultDedupWindow,
      resendWindow: 300,
      retainTable: true,
      alarmEmail: undefined,
      functionTimeoutSeconds: 30,
      visibilityTimeoutSeconds: 6 * 30,
      previousQueue: undefined,
      memorySize: 512,
      logLevel: 'INFO',
      billing: 'on-demand',
      readCapacity: undefined,
      writeCapacity: undefined,
      redriveLogExecutionData: false,
      exampleProjection: false,
    });
  });

  it('sets the visibility timeout to 6 x the function timeout + the batching window, or higher when asked', () => {
    // Act
    const withWindow = parseConfig({ functionTimeoutSeconds: '1', maxBatchingWindowSeconds: '300' });
    const atTheLimits = parseConfig({ functionTimeoutSeconds: '900', maxBatchingWindowSeconds: '300' });
    const higher = parseConfig({ functionTimeoutSeconds: '10', visibilityTimeoutSeconds: '43200' });
    const exactly = parseConfig({
      functionTimeoutSeconds: '10',
      maxBatchingWindowSeconds: '5',
      visibilityTimeoutSeconds: '65',
    });

    // Assess
    expect(withWindow.visibilityTimeoutSeconds).toBe(6 * 1 + 300);
    expect(atTheLimits.visibilityTimeoutSeconds).toBe(6 * 900 + 300);
    expect(higher.visibilityTimeoutSeconds).toBe(43_200);
    expect(exactly.visibilityTimeoutSeconds).toBe(65);
  });

  it('ignores the keys the CDK CLI writes into cdk.context.json (cdk acknowledge, cdk cli-telemetry)', () => {
    // Act
    const config = parseConfig({ 'acknowledged-issue-numbers': [32775, 34892], 'cli-telemetry': false, queue: 'fifo' });

    // Assess
    expect(config.queue).toBe('fifo');
  });

  it('accepts previousQueue for the other mode only', () => {
    // Act
    const config = parseConfig({ queue: 'fifo', previousQueue: 'standard' });

    // Assess
    expect(config.previousQueue).toBe('standard');
    expect(configErrorOf({ previousQueue: 'standard' }).message).toBe(
      'Invalid context previousQueue="standard": allowed one of standard, fifo, and not the current queue mode ' +
        '(queue=standard).',
    );
  });

  it('accepts numbers and booleans as CLI strings (-c key=value) and as JSON values (cdk.json) alike', () => {
    // Prepare
    const fromCli = {
      queue: 'fifo',
      batchSize: '5',
      maxConcurrency: '20',
      maxReceiveCount: '3',
      dedupWindow: '100',
      resendWindow: '600',
      retainTable: 'false',
      functionTimeoutSeconds: '60',
      memorySize: '1024',
      logLevel: 'debug',
      billing: 'provisioned',
      readCapacity: '7',
      writeCapacity: '9',
      redriveLogExecutionData: 'true',
    };
    const fromJson = {
      ...fromCli,
      batchSize: 5,
      maxConcurrency: 20,
      maxReceiveCount: 3,
      dedupWindow: 100,
      resendWindow: 600,
      retainTable: false,
      functionTimeoutSeconds: 60,
      memorySize: 1024,
      readCapacity: 7,
      writeCapacity: 9,
      redriveLogExecutionData: true,
    };

    // Act
    const cli = parseConfig(fromCli);
    const json = parseConfig(fromJson);

    // Assess
    expect(cli).toEqual(json);
    expect(cli).toMatchObject({
      queue: 'fifo',
      batchSize: 5,
      maxConcurrency: 20,
      maxReceiveCount: 3,
      dedupWindow: 100,
      resendWindow: 600,
      retainTable: false,
      functionTimeoutSeconds: 60,
      memorySize: 1024,
      logLevel: 'DEBUG',
      billing: 'provisioned',
      readCapacity: 7,
      writeCapacity: 9,
    });
  });

  it('allows a standard batch above 10 with a batching window, and provisioned capacity defaults of 5', () => {
    // Act
    const config = parseConfig({ batchSize: '10000', maxBatchingWindowSeconds: '300', billing: 'provisioned' });

    // Assess
    expect(config).toMatchObject({
      batchSize: 10_000,
      maxBatchingWindowSeconds: 300,
      readCapacity: 5,
      writeCapacity: 5,
    });
  });

  it('ignores the keys CDK itself puts in the context', () => {
    // Act
    const config = parseConfig({
      'aws:cdk:bundling-stacks': [],
      '@aws-cdk/core:newStyleStackSynthesis': true,
      'availability-zones:account=1:region=x': ['a'],
    });

    // Assess
    expect(config.queue).toBe('standard');
  });

  it.each([
    [{ queue: 'fof' }, 'Invalid context queue="fof": allowed one of standard, fifo.'],
    [
      { queue: 'fifo', batchSize: '11' },
      'Invalid context batchSize="11": allowed an integer from 1 to 10 with queue=fifo.',
    ],
    [
      { queue: 'fifo', batchSize: 20000 },
      'Invalid context batchSize=20000: allowed an integer from 1 to 10 with queue=fifo.',
    ],
    [
      { batchSize: '11' },
      'Invalid context batchSize="11": allowed an integer from 1 to 10 unless maxBatchingWindowSeconds is at least 1 ' +
        '(a Lambda rule for standard queues).',
    ],
    [
      { batchSize: '10001', maxBatchingWindowSeconds: '1' },
      'Invalid context batchSize="10001": allowed an integer from 1 to 10000.',
    ],
    [{ batchSize: '2.5' }, 'Invalid context batchSize="2.5": allowed an integer from 1 to 10000.'],
    [{ batchSize: 'ten' }, 'Invalid context batchSize="ten": allowed an integer from 1 to 10000.'],
    [
      { maxConcurrency: '1' },
      'Invalid context maxConcurrency="1": allowed an integer from 2 to 1000 (Lambda requires at least 2).',
    ],
    [
      { queue: 'fifo', maxBatchingWindowSeconds: '5' },
      'Invalid context maxBatchingWindowSeconds="5": allowed only with queue=standard ' +
        '(Lambda has no batching window for FIFO queues).',
    ],
    [
      { maxBatchingWindowSeconds: '301' },
      'Invalid context maxBatchingWindowSeconds="301": allowed an integer from 0 to 300.',
    ],
    [{ maxReceiveCount: '0' }, 'Invalid context maxReceiveCount="0": allowed an integer from 1 to 1000.'],
    [
      { visibilityTimeoutSeconds: '43200', maxReceiveCount: '13' },
      'Invalid context maxReceiveCount="13": allowed an integer from 1 to 12 with visibilityTimeoutSeconds=43200 ' +
        '(visibilityTimeoutSeconds x maxReceiveCount at most 518400 s, so a failing message reaches the DLQ a day ' +
        'before the ingest queue would delete it and then keeps at least 7 days there).',
    ],
    [
      { functionTimeoutSeconds: '900', maxReceiveCount: '1000' },
      'Invalid context maxReceiveCount="1000": allowed an integer from 1 to 96 with visibilityTimeoutSeconds=5400 ' +
        '(visibilityTimeoutSeconds x maxReceiveCount at most 518400 s, so a failing message reaches the DLQ a day ' +
        'before the ingest queue would delete it and then keeps at least 7 days there).',
    ],
    [{ dedupWindow: 1001 }, 'Invalid context dedupWindow=1001: allowed an integer from 1 to 1000.'],
    [{ resendWindow: 86_401 }, 'Invalid context resendWindow=86401: allowed an integer from 0 to 86400 (seconds).'],
    [{ resendWindow: '-5' }, 'Invalid context resendWindow="-5": allowed an integer from 0 to 86400 (seconds).'],
    [{ retainTable: 'maybe' }, 'Invalid context retainTable="maybe": allowed true or false.'],
    [{ redriveLogExecutionData: 'yes' }, 'Invalid context redriveLogExecutionData="yes": allowed true or false.'],
    [{ alarmEmail: 'nope' }, 'Invalid context alarmEmail="nope": allowed an email address.'],
    [
      { functionTimeoutSeconds: '901' },
      'Invalid context functionTimeoutSeconds="901": allowed an integer from 1 to 900.',
    ],
    [{ memorySize: '64' }, 'Invalid context memorySize="64": allowed an integer from 128 to 10240 (MB).'],
    [
      { functionTimeoutSeconds: '1', maxBatchingWindowSeconds: '300', visibilityTimeoutSeconds: '305' },
      'Invalid context visibilityTimeoutSeconds="305": allowed an integer from 306 to 43200 ' +
        '(at least 6 x functionTimeoutSeconds + maxBatchingWindowSeconds).',
    ],
    [
      { visibilityTimeoutSeconds: '43201' },
      'Invalid context visibilityTimeoutSeconds="43201": allowed an integer from 1 to 43200.',
    ],
    [
      { queue: 'fifo', previousQueue: 'fifo' },
      'Invalid context previousQueue="fifo": allowed one of standard, fifo, and not the current queue mode (queue=fifo).',
    ],
    [
      { queue: 'fifo', queueName: 'q'.repeat(72) },
      `Invalid context queueName="${'q'.repeat(72)}": allowed an SQS queue base name (1 to 71 characters: letters, ` +
        'digits, _ -; the app adds -dlq and .fifo itself).',
    ],
    [
      { stackName: `S${'s'.repeat(128)}` },
      `Invalid context stackName="S${'s'.repeat(128)}": allowed a CloudFormation stack name (a letter, then letters, digits and ` +
        'hyphens, at most 128 characters).',
    ],
    [
      { logLevel: 'verbose' },
      'Invalid context logLevel="verbose": allowed one of TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL, SILENT.',
    ],
    [
      { tableName: 'a' },
      'Invalid context tableName="a": allowed a DynamoDB table name (3 to 255 characters: letters, digits, _ . -).',
    ],
    [
      { queueName: 'events.fifo' },
      'Invalid context queueName="events.fifo": allowed an SQS queue base name (1 to 71 characters: letters, ' +
        'digits, _ -; the app adds -dlq and .fifo itself).',
    ],
    [
      { stackName: '1st' },
      'Invalid context stackName="1st": allowed a CloudFormation stack name (a letter, then letters, digits and ' +
        'hyphens, at most 128 characters).',
    ],
    [{ billing: 'free' }, 'Invalid context billing="free": allowed one of on-demand, provisioned.'],
    [{ readCapacity: '5' }, 'Invalid context readCapacity="5": allowed only with billing=provisioned.'],
    [
      { billing: 'provisioned', writeCapacity: '0' },
      'Invalid context writeCapacity="0": allowed an integer from 1 to 40000.',
    ],
  ])('rejects %j', (context, message) => {
    // Act
    const error = configErrorOf(context);

    // Assess
    expect(error.message).toBe(message);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.name).toBe('ConfigError');
  });

  it('rejects an unknown key, so that a typo is not silently ignored', () => {
    // Act
    const error = configErrorOf({ batchsize: '5' });

    // Assess
    expect(error.key).toBe('batchsize');
    expect(error.value).toBe('5');
    expect(error.message).toBe(
      'Invalid context batchsize="5": allowed context keys: stackName, queue, tableName, queueName, batchSize, ' +
        'maxBatchingWindowSeconds, maxConcurrency, maxReceiveCount, dedupWindow, resendWindow, retainTable, alarmEmail, ' +
        'functionTimeoutSeconds, visibilityTimeoutSeconds, previousQueue, memorySize, logLevel, billing, readCapacity, ' +
        'writeCapacity, redriveLogExecutionData, exampleProjection (unknown key).',
    );
  });
});

describe('ingest queue retention: a failing message reaches the DLQ before it could expire', () => {
  it.each([
    ['defaults', 180, 5, 345_600],
    ['a long retry path', 5400, 50, 5400 * 50 + 86_400],
    ['the longest accepted', 43_200, 12, 604_800],
    ['the longest with maxReceiveCount 1000', 518, 1000, 518_000 + 86_400],
  ])('%s: visibility %i s x %i receives -> %i s', (_case, visibility, receives, retention) => {
    // Act
    const config = parseConfig({ visibilityTimeoutSeconds: String(visibility), maxReceiveCount: String(receives) });
    const kept = ingestRetentionSeconds(config.visibilityTimeoutSeconds, config.maxReceiveCount);
    const path = longestRetryPathSeconds(config.visibilityTimeoutSeconds, config.maxReceiveCount);

    // Assess: at least a day after the last receive (the oldest-message alarm's threshold is the
    // path), and 7 days short of the DLQ's 14, which a standard DLQ counts from the first send.
    expect(kept).toBe(retention);
    expect(kept - path).toBeGreaterThanOrEqual(ConfigLimits.retentionMarginSeconds);
    expect(kept).toBeGreaterThanOrEqual(ConfigLimits.minIngestRetentionSeconds);
    expect(ConfigLimits.maxRetentionSeconds - kept).toBeGreaterThanOrEqual(7 * 86_400);
  });
});
