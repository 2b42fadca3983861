import * as v from 'valibot';
import { ConfigurationError } from '../core/errors.ts';
import { Limits } from '../core/keys.ts';
import { ResendWindow } from '../core/store.ts';
import { QueueMode } from '../core/queue-mode.ts';
import { DEFAULT_STACK_NAME } from '../core/stack-outputs.ts';

/**
 * CDK context -> validated stack configuration.
 *
 * Every key the app reads is parsed here with valibot before anything is synthesized. Values
 * arrive as strings from the CLI (`-c batchSize=5`) and as numbers or booleans from cdk.json:
 * both are accepted. A wrong value stops synth with a {@link ConfigError} that names the key,
 * the value and what is allowed.
 */

export { QueueMode };

export const BillingMode = { onDemand: 'on-demand', provisioned: 'provisioned' } as const;
export type BillingMode = (typeof BillingMode)[keyof typeof BillingMode];

/** Powertools Logger levels. */
export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Limits of the context values (each from the AWS service that enforces it). */
export const ConfigLimits = {
  /** Lambda's SQS event source: standard queues take up to 10,000 records a batch. */
  maxStandardBatchSize: 10_000,
  /** SQS FIFO and its event source mapping: at most 10 records a batch. */
  maxFifoBatchSize: Limits.maxFifoBatchSize,
  /** Without a batching window Lambda accepts at most 10 records a batch. */
  maxBatchSizeWithoutWindow: Limits.maxBatchSizeWithoutWindow,
  maxBatchingWindowSeconds: 300,
  /** Lambda's rule for `MaximumConcurrency` on an SQS event source. */
  minMaxConcurrency: 2,
  maxMaxConcurrency: 1000,
  maxReceiveCount: Limits.maxReceiveCount,
  maxDedupWindow: Limits.maxDedupWindow,
  /** The duplicate window's time bound: at most a day. */
  maxResendWindowSeconds: ResendWindow.maxSeconds,
  /** Lambda's timeout limit. */
  maxFunctionTimeoutSeconds: 900,
  /** SQS's limit on a queue's visibility timeout: 12 hours. */
  maxVisibilityTimeoutSeconds: 43_200,
  /**
   * Lambda's guidance for SQS event sources ("Creating and configuring an Amazon SQS event source
   * mapping", AWS Lambda Developer Guide): the visibility timeout at least 6 x the function
   * timeout, plus the maximum batching window, so a batch throttled while the previous one runs
   * is not received twice or moved to the DLQ early.
   */
  visibilityTimeoutFactor: 6,
  /** SQS's longest message retention: 14 days (the DLQs keep that long). */
  maxRetentionSeconds: 1_209_600,
  /** SQS's default message retention, 4 days: the ingest queues keep at least this. */
  minIngestRetentionSeconds: 345_600,
  /**
   * Time between the oldest-message alarm (a message as old as the longest retry path) and the
   * ingest queue deleting it: a day to notice and act (docs/OPERATIONS.md, "What is deployed").
   */
  retentionMarginSeconds: 86_400,
  /**
   * A standard DLQ deletes a message 14 days after it was first sent to the ingest queue, not after
   * it was dead-lettered (SQS: "For standard queues, the expiration of a message is always based on
   * its original enqueue timestamp"), so the ingest queues keep messages at most 14 - 7 days and a
   * dead letter always has at least 7 days in the DLQ.
   */
  maxIngestRetentionSeconds: 604_800,
  minMemorySize: 128,
  maxMemorySize: 10_240,
  maxCapacity: 40_000,
  /** SQS queue names: 80 characters, the `.fifo` suffix included. */
  maxSqsQueueNameChars: 80,
  /**
   * `queueName` is a base name: the longest name the app makes from it, `<base>-dlq.fifo`, must
   * fit SQS's 80 characters, so the same base name works in both modes (and across a switch).
   */
  maxQueueNameChars: 80 - '-dlq.fifo'.length,
} as const;

/** The validated configuration the stack is built from. */
export interface EventStoreConfig {
  /** CloudFormation stack name. @default 'EventStore' */
  readonly stackName: string;
  /** @default 'standard' */
  readonly queue: QueueMode;
  /** Physical table name. @default - CloudFormation names it */
  readonly tableName: string | undefined;
  /** Base name of the ingest queue and its DLQ (`-dlq`, `.fifo` added). @default - CloudFormation names them */
  readonly queueName: string | undefined;
  /** Records per Lambda invocation. @default 10 */
  readonly batchSize: number;
  /** Standard queues only. @default 0 */
  readonly maxBatchingWindowSeconds: number;
  /** Event source mapping's maximum concurrency. @default - no limit */
  readonly maxConcurrency: number | undefined;
  /** Receives before SQS moves a message to the DLQ. @default 5 */
  readonly maxReceiveCount: number;
  /** Standard mode duplicate window. @default Limits.defaultDedupWindow (50) */
  readonly dedupWindow: number;
  /**
   * How long after a first copy was recorded a producer's resend of the event (a new message,
   * same EventId) is still recognised, in seconds (docs/ARCHITECTURE.md, "Appending and
   * idempotency"). @default ResendWindow.defaultSeconds (300)
   */
  readonly resendWindow: number;
  /** Keep the table (RETAIN, deletion protection) when the stack goes. @default true */
  readonly retainTable: boolean;
  /** Email subscribed to the alarm topic. @default - no subscription */
  readonly alarmEmail: string | undefined;
  /** @default 30 */
  readonly functionTimeoutSeconds: number;
  /**
   * The ingest queue's visibility timeout: at least 6 x functionTimeoutSeconds +
   * maxBatchingWindowSeconds. @default exactly that minimum
   */
  readonly visibilityTimeoutSeconds: number;
  /**
   * The queue mode the stack ran in before a mode switch: its queues stay in the stack, drained
   * by the function, alarmed and redrivable, until this key is dropped. @default - none
   */
  readonly previousQueue: QueueMode | undefined;
  /** @default 512 */
  readonly memorySize: number;
  /** @default 'INFO' */
  readonly logLevel: LogLevel;
  /** @default 'on-demand' */
  readonly billing: BillingMode;
  /** Provisioned billing only. @default 5 */
  readonly readCapacity: number | undefined;
  /** Provisioned billing only. @default 5 */
  readonly writeCapacity: number | undefined;
  /** Log the redrive workflow's state inputs and outputs (stream ids, rejection details, the fix). @default false */
  readonly redriveLogExecutionData: boolean;
  /** Deploy the example projection (README "Subscriptions"). @default false */
  readonly exampleProjection: boolean;
}

/** A context value that cannot work. `key`, `value` and `allowed` say which, what and why. */
export class ConfigError extends ConfigurationError {
  public readonly key: string;
  public readonly value: unknown;
  public readonly allowed: string;

  public constructor(key: string, value: unknown, allowed: string, options?: ErrorOptions) {
    super(`Invalid context ${key}=${JSON.stringify(value)}: allowed ${allowed}.`, options);
    this.name = 'ConfigError';
    this.key = key;
    this.value = value;
    this.allowed = allowed;
  }
}

// --- schemas for raw context values -------------------------------------------------------

const IntegerTextSchema = v.pipe(v.string(), v.trim(), v.regex(/^-?\d+$/), v.transform(Number));
const IntegerSchema = v.pipe(v.union([v.number(), IntegerTextSchema]), v.integer());
const BooleanSchema = v.union([
  v.boolean(),
  v.pipe(
    v.string(),
    v.trim(),
    v.toLowerCase(),
    v.picklist(['true', 'false']),
    v.transform((s) => s === 'true'),
  ),
]);

function integerIn(min: number, max: number) {
  return v.pipe(IntegerSchema, v.minValue(min), v.maxValue(max));
}

/** One context key: its schema and the words that say what it allows. */
interface KeySpec<T> {
  readonly schema: v.GenericSchema<unknown, T>;
  readonly allowed: string;
}

function spec<T>(schema: v.GenericSchema<unknown, T>, allowed: string): KeySpec<T> {
  return { schema, allowed };
}

const range = (min: number, max: number): string => `an integer from ${min} to ${max}`;

const Keys = {
  stackName: spec(
    v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/)),
    'a CloudFormation stack name (a letter, then letters, digits and hyphens, at most 128 characters)',
  ),
  queue: spec(v.picklist(Object.values(QueueMode)), `one of ${Object.values(QueueMode).join(', ')}`),
  tableName: spec(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{3,255}$/)),
    'a DynamoDB table name (3 to 255 characters: letters, digits, _ . -)',
  ),
  queueName: spec(
    v.pipe(v.string(), v.regex(new RegExp(`^[A-Za-z0-9_-]{1,${ConfigLimits.maxQueueNameChars}}$`))),
    `an SQS queue base name (1 to ${ConfigLimits.maxQueueNameChars} characters: letters, digits, _ -; ` +
      'the app adds -dlq and .fifo itself)',
  ),
  batchSize: spec(integerIn(1, ConfigLimits.maxStandardBatchSize), range(1, ConfigLimits.maxStandardBatchSize)),
  maxBatchingWindowSeconds: spec(
    integerIn(0, ConfigLimits.maxBatchingWindowSeconds),
    range(0, ConfigLimits.maxBatchingWindowSeconds),
  ),
  maxConcurrency: spec(
    integerIn(ConfigLimits.minMaxConcurrency, ConfigLimits.maxMaxConcurrency),
    `${range(ConfigLimits.minMaxConcurrency, ConfigLimits.maxMaxConcurrency)} (Lambda requires at least 2)`,
  ),
  maxReceiveCount: spec(integerIn(1, ConfigLimits.maxReceiveCount), range(1, ConfigLimits.maxReceiveCount)),
  dedupWindow: spec(integerIn(1, ConfigLimits.maxDedupWindow), range(1, ConfigLimits.maxDedupWindow)),
  resendWindow: spec(
    integerIn(0, ConfigLimits.maxResendWindowSeconds),
    `${range(0, ConfigLimits.maxResendWindowSeconds)} (seconds)`,
  ),
  retainTable: spec(BooleanSchema, 'true or false'),
  alarmEmail: spec(v.pipe(v.string(), v.trim(), v.email()), 'an email address'),
  functionTimeoutSeconds: spec(
    integerIn(1, ConfigLimits.maxFunctionTimeoutSeconds),
    range(1, ConfigLimits.maxFunctionTimeoutSeconds),
  ),
  visibilityTimeoutSeconds: spec(
    integerIn(1, ConfigLimits.maxVisibilityTimeoutSeconds),
    range(1, ConfigLimits.maxVisibilityTimeoutSeconds),
  ),
  previousQueue: spec(
    v.picklist(Object.values(QueueMode)),
    `one of ${Object.values(QueueMode).join(', ')}, and not the current queue mode`,
  ),
  memorySize: spec(
    integerIn(ConfigLimits.minMemorySize, ConfigLimits.maxMemorySize),
    `${range(ConfigLimits.minMemorySize, ConfigLimits.maxMemorySize)} (MB)`,
  ),
  logLevel: spec(
    v.pipe(v.string(), v.trim(), v.toUpperCase(), v.picklist(LOG_LEVELS)),
    `one of ${LOG_LEVELS.join(', ')}`,
  ),
  billing: spec(v.picklist(Object.values(BillingMode)), `one of ${Object.values(BillingMode).join(', ')}`),
  readCapacity: spec(integerIn(1, ConfigLimits.maxCapacity), range(1, ConfigLimits.maxCapacity)),
  writeCapacity: spec(integerIn(1, ConfigLimits.maxCapacity), range(1, ConfigLimits.maxCapacity)),
  redriveLogExecutionData: spec(BooleanSchema, 'true or false'),
  exampleProjection: spec(BooleanSchema, 'true or false'),
} as const;

/** `batchSize` with queue=fifo. */
const FifoBatchSize = spec(
  integerIn(1, ConfigLimits.maxFifoBatchSize),
  `${range(1, ConfigLimits.maxFifoBatchSize)} with queue=fifo`,
);

/** Every context key the app reads. */
export const CONTEXT_KEYS = Object.keys(Keys) as readonly (keyof typeof Keys)[];

/**
 * Keys the CDK CLI itself writes into cdk.context.json (`cdk acknowledge`, `cdk cli-telemetry`;
 * found in node_modules/aws-cdk: its other writes are lookups, whose keys hold `:`). Accepted
 * and ignored, so that running those commands does not break every synth.
 */
export const CDK_CLI_CONTEXT_KEYS = ['acknowledged-issue-numbers', 'cli-telemetry'] as const;

/**
 * The smallest visibility timeout Lambda's guidance allows for these settings:
 * 6 x the function timeout + the maximum batching window.
 */
export function minimumVisibilityTimeoutSeconds(
  functionTimeoutSeconds: number,
  maxBatchingWindowSeconds: number,
): number {
  return ConfigLimits.visibilityTimeoutFactor * functionTimeoutSeconds + maxBatchingWindowSeconds;
}

/**
 * The longest a failing message can be retried before SQS moves it to the DLQ: received
 * `maxReceiveCount` times, hidden for the visibility timeout each time (the oldest-message alarm's
 * threshold).
 */
export function longestRetryPathSeconds(visibilityTimeoutSeconds: number, maxReceiveCount: number): number {
  return visibilityTimeoutSeconds * maxReceiveCount;
}

/**
 * The ingest queues' message retention: the longest retry path plus a day's margin, at least SQS's
 * default 4 days. {@link parseConfig} refuses settings whose path leaves no margin within
 * `ConfigLimits.maxIngestRetentionSeconds`, so a failing message always reaches the DLQ before
 * the ingest queue could delete it.
 */
export function ingestRetentionSeconds(visibilityTimeoutSeconds: number, maxReceiveCount: number): number {
  return Math.max(
    ConfigLimits.minIngestRetentionSeconds,
    longestRetryPathSeconds(visibilityTimeoutSeconds, maxReceiveCount) + ConfigLimits.retentionMarginSeconds,
  );
}

type ContextKey = keyof typeof Keys;
type Parsed<K extends ContextKey> = v.InferOutput<(typeof Keys)[K]['schema']>;

/** The defaults, for documentation and tests. */
export const ConfigDefaults = {
  stackName: DEFAULT_STACK_NAME,
  queue: QueueMode.standard,
  batchSize: 10,
  maxBatchingWindowSeconds: 0,
  maxReceiveCount: 5,
  dedupWindow: Limits.defaultDedupWindow,
  resendWindow: ResendWindow.defaultSeconds,
  retainTable: true,
  functionTimeoutSeconds: 30,
  memorySize: 512,
  logLevel: 'INFO',
  billing: BillingMode.onDemand,
  provisionedCapacity: 5,
  redriveLogExecutionData: false,
} as const;

/**
 * Parse the CDK context (as `app.node.getAllContext()` returns it) into the stack's
 * configuration. Keys that CDK itself owns (they contain `:` or start with `@`, or are
 * {@link CDK_CLI_CONTEXT_KEYS}) are ignored;
 * any other unknown key is an error, so that a typo such as `-c batchsize=5` is not
 * silently dropped.
 *
 * @example
 * const config = parseConfig({ queue: 'fifo', batchSize: '5' });
 * // config.queue === 'fifo', config.batchSize === 5
 * @throws ConfigError naming the key, the value and what is allowed.
 */
export function parseConfig(context: Readonly<Record<string, unknown>>): EventStoreConfig {
  rejectUnknownKeys(context);
  const read = contextReader(context);
  // The order of the reads is the order in which wrong values are reported.
  const queue = read('queue') ?? ConfigDefaults.queue;
  const batching = parseBatching(context, read, queue);
  const capacity = parseCapacity(context, read);
  const timeouts = parseTimeouts(context, read, batching.maxBatchingWindowSeconds);
  const previousQueue = read('previousQueue');
  if (previousQueue === queue) {
    throw new ConfigError('previousQueue', context.previousQueue, `${Keys.previousQueue.allowed} (queue=${queue})`);
  }
  const maxReceiveCount = read('maxReceiveCount') ?? ConfigDefaults.maxReceiveCount;
  checkRetryPath(context, timeouts.visibilityTimeoutSeconds, maxReceiveCount);
  return {
    stackName: read('stackName') ?? ConfigDefaults.stackName,
    queue,
    tableName: read('tableName'),
    queueName: read('queueName'),
    ...batching,
    maxConcurrency: read('maxConcurrency'),
    maxReceiveCount,
    dedupWindow: read('dedupWindow') ?? ConfigDefaults.dedupWindow,
    resendWindow: read('resendWindow') ?? ConfigDefaults.resendWindow,
    retainTable: read('retainTable') ?? ConfigDefaults.retainTable,
    alarmEmail: read('alarmEmail'),
    ...timeouts,
    previousQueue,
    memorySize: read('memorySize') ?? ConfigDefaults.memorySize,
    logLevel: read('logLevel') ?? ConfigDefaults.logLevel,
    ...capacity,
    redriveLogExecutionData: read('redriveLogExecutionData') ?? ConfigDefaults.redriveLogExecutionData,
    exampleProjection: read('exampleProjection') ?? false,
  };
}

/** Keys CDK owns are skipped; any other key the app does not read is an error (a typo is not dropped). */
function rejectUnknownKeys(context: Readonly<Record<string, unknown>>): void {
  for (const key of Object.keys(context)) {
    if (key.includes(':') || key.startsWith('@')) continue;
    if ((CDK_CLI_CONTEXT_KEYS as readonly string[]).includes(key)) continue;
    if (!(CONTEXT_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(key, context[key], `context keys: ${CONTEXT_KEYS.join(', ')} (unknown key)`);
    }
  }
}

/** Reads one key: undefined when absent, its parsed value, or a ConfigError. */
type ContextReader = <K extends ContextKey>(key: K, rule?: KeySpec<Parsed<K>>) => Parsed<K> | undefined;

function contextReader(context: Readonly<Record<string, unknown>>): ContextReader {
  return <K extends ContextKey>(key: K, rule: KeySpec<Parsed<K>> = Keys[key]): Parsed<K> | undefined => {
    const raw = context[key];
    if (raw === undefined) return undefined;
    const result = v.safeParse(rule.schema, raw);
    if (!result.success) throw new ConfigError(key, raw, rule.allowed);
    return result.output;
  };
}

/** `maxBatchingWindowSeconds` (standard queues only) and `batchSize` (its limit depends on both). */
function parseBatching(
  context: Readonly<Record<string, unknown>>,
  read: ContextReader,
  queue: QueueMode,
): Pick<EventStoreConfig, 'batchSize' | 'maxBatchingWindowSeconds'> {
  const fifo = queue === QueueMode.fifo;
  const window = read('maxBatchingWindowSeconds');
  if (fifo && window !== undefined) {
    throw new ConfigError(
      'maxBatchingWindowSeconds',
      context.maxBatchingWindowSeconds,
      'only with queue=standard (Lambda has no batching window for FIFO queues)',
    );
  }
  const maxBatchingWindowSeconds = window ?? ConfigDefaults.maxBatchingWindowSeconds;
  const batchSize = read('batchSize', fifo ? FifoBatchSize : Keys.batchSize) ?? ConfigDefaults.batchSize;
  if (!fifo && batchSize > ConfigLimits.maxBatchSizeWithoutWindow && maxBatchingWindowSeconds < 1) {
    throw new ConfigError(
      'batchSize',
      context.batchSize,
      `${range(1, ConfigLimits.maxBatchSizeWithoutWindow)} unless maxBatchingWindowSeconds is at least 1 ` +
        '(a Lambda rule for standard queues)',
    );
  }
  return { batchSize, maxBatchingWindowSeconds };
}

/** `billing`, and the read and write capacity that only provisioned billing takes. */
function parseCapacity(
  context: Readonly<Record<string, unknown>>,
  read: ContextReader,
): Pick<EventStoreConfig, 'billing' | 'readCapacity' | 'writeCapacity'> {
  const billing = read('billing') ?? ConfigDefaults.billing;
  let readCapacity = read('readCapacity');
  let writeCapacity = read('writeCapacity');
  if (billing === BillingMode.provisioned) {
    readCapacity ??= ConfigDefaults.provisionedCapacity;
    writeCapacity ??= ConfigDefaults.provisionedCapacity;
  } else {
    for (const key of ['readCapacity', 'writeCapacity'] as const) {
      if (context[key] !== undefined) {
        throw new ConfigError(key, context[key], 'only with billing=provisioned');
      }
    }
  }
  return { billing, readCapacity, writeCapacity };
}

/**
 * A message must reach the DLQ before the ingest queue's retention deletes it: the longest retry
 * path (visibility timeout x maxReceiveCount) plus the margin must fit the ingest queues' longest
 * retention ({@link ingestRetentionSeconds}).
 */
function checkRetryPath(
  context: Readonly<Record<string, unknown>>,
  visibilityTimeoutSeconds: number,
  maxReceiveCount: number,
): void {
  const longest = ConfigLimits.maxIngestRetentionSeconds - ConfigLimits.retentionMarginSeconds;
  if (longestRetryPathSeconds(visibilityTimeoutSeconds, maxReceiveCount) <= longest) return;
  throw new ConfigError(
    'maxReceiveCount',
    context.maxReceiveCount ?? maxReceiveCount,
    `an integer from 1 to ${Math.floor(longest / visibilityTimeoutSeconds)} with visibilityTimeoutSeconds=` +
      `${visibilityTimeoutSeconds} (visibilityTimeoutSeconds x maxReceiveCount at most ${longest} s, so a failing ` +
      'message reaches the DLQ a day before the ingest queue would delete it and then keeps at least 7 days there)',
  );
}

/** The function timeout and the queue's visibility timeout, which Lambda's guidance ties to it. */
function parseTimeouts(
  context: Readonly<Record<string, unknown>>,
  read: ContextReader,
  maxBatchingWindowSeconds: number,
): Pick<EventStoreConfig, 'functionTimeoutSeconds' | 'visibilityTimeoutSeconds'> {
  const functionTimeoutSeconds = read('functionTimeoutSeconds') ?? ConfigDefaults.functionTimeoutSeconds;
  const minimumVisibility = minimumVisibilityTimeoutSeconds(functionTimeoutSeconds, maxBatchingWindowSeconds);
  const visibility = read('visibilityTimeoutSeconds');
  if (visibility !== undefined && visibility < minimumVisibility) {
    throw new ConfigError(
      'visibilityTimeoutSeconds',
      context.visibilityTimeoutSeconds,
      `an integer from ${minimumVisibility} to ${ConfigLimits.maxVisibilityTimeoutSeconds} ` +
        `(at least ${ConfigLimits.visibilityTimeoutFactor} x functionTimeoutSeconds + maxBatchingWindowSeconds)`,
    );
  }
  return { functionTimeoutSeconds, visibilityTimeoutSeconds: visibility ?? minimumVisibility };
}
