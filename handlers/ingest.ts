/**
 * The ingest Lambda function: SQS records in, events appended to their streams, a partial
 * batch response out. This file is wiring (environment, SDK clients, Powertools Logger,
 * Metrics and Tracer, the invocation's deadline); what happens to each record is in
 * handlers/ingest-batch.ts (docs/ARCHITECTURE.md, "One fate per record", "Deadlines").
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as v from 'valibot';
import { DynamoDbEventStore } from '../adapters/dynamodb-store.ts';
import { SqsRejecter } from '../adapters/sqs-rejecter.ts';
import { ConfigurationError } from '../core/errors.ts';
import { Limits } from '../core/keys.ts';
import {
  IngestMetric,
  METRICS_NAMESPACE as DEFAULT_METRICS_NAMESPACE,
  MetricDimension,
  SERVICE_NAME as DEFAULT_SERVICE_NAME,
} from '../core/metrics.ts';
import { ResendWindow, type EventStore } from '../core/store.ts';
import { emptyTally, errorText, isFifoRecord, processIngestBatch, type Tally } from './ingest-batch.ts';

/** The ingest function's handler: an SQS event in, a partial batch response out. */
export type IngestHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** What the handler is built from. Clients are used as given (the tracer captures them). */
export interface IngestDependencies {
  readonly dynamo: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly tableName: string;
  /** The dead-letter queue rejected events are sent to; a `.fifo` URL makes FIFO sends. */
  readonly dlqUrl: string;
  /** Standard queues: how many recent events of a stream are checked for duplicates. @default Limits.defaultDedupWindow */
  readonly dedupWindow?: number;
  /**
   * How long after a first copy was recorded a producer's resend (a new message with the same
   * EventId) is still recognised, in seconds: the duplicate window's time bound
   * (docs/ARCHITECTURE.md, "Appending and idempotency"). @default ResendWindow.defaultSeconds (300)
   */
  readonly resendWindowSeconds?: number;
  /**
   * The source queue's `maxReceiveCount`: on a standard queue, a stream still behind
   * `ExpectedVersion` on this delivery is dead-lettered with its reason. @default unknown:
   * retried until SQS moves it to the DLQ (without a reason)
   */
  readonly maxReceiveCount?: number;
  /** The DLQ's MaximumMessageSize in bytes. @default 1 MiB */
  readonly dlqMaxMessageBytes?: number;
  /** Conditional-put attempts per event before it is reported failed. @default the store's */
  readonly maxAttempts?: number;
  /** Streams whose head this container remembers. @default the store's */
  readonly cacheSize?: number;
  /** @default a Logger for service `event-store` (core/metrics.ts) */
  readonly logger?: Logger;
  /** @default a Metrics for namespace `EventStore` (or POWERTOOLS_METRICS_NAMESPACE) */
  readonly metrics?: Metrics;
  /** @default a Tracer (POWERTOOLS_TRACE_ENABLED=false turns it off) */
  readonly tracer?: Tracer;
  /** @default a DynamoDbEventStore on `dynamo` and `tableName` */
  readonly store?: EventStore;
}

/** Metric names (core/metrics.ts): the dashboard and alarms use the same names. */
export { IngestMetric };

/** The `EventsRejected` dimension. */
export const REASON_DIMENSION = MetricDimension.reason;

/** Powertools' own variables (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE) win over these. */
const SERVICE_NAME = process.env['POWERTOOLS_SERVICE_NAME'] || DEFAULT_SERVICE_NAME;
const METRICS_NAMESPACE = process.env['POWERTOOLS_METRICS_NAMESPACE'] || DEFAULT_METRICS_NAMESPACE;

/** Per attempt, so a hung connection fails and is retried instead of holding the batch. */
export const SDK_TIMEOUTS = { connectionTimeout: 3_000, requestTimeout: 5_000, throwOnRequestTimeout: true } as const;

/**
 * How much of the invocation's remaining time is kept back from the SDK calls, so that a
 * hung call is abandoned, logged and reported in `batchItemFailures` before Lambda's timeout.
 */
export function invocationDeadlineMs(remainingMs: number): number {
  const reserve = Math.min(5_000, Math.max(500, remainingMs * 0.2));
  return Math.max(0, Math.floor(remainingMs - reserve));
}

function optionalInteger(name: string, min: number, max: number) {
  const message = (input: unknown) => `${name}: ${JSON.stringify(input)} is not an integer from ${min} to ${max}`;
  return v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.regex(/^\d+$/, (issue) => message(issue.input)),
      v.transform(Number),
      v.number(),
      v.minValue(min, (issue) => message(issue.input)),
      v.maxValue(max, (issue) => message(issue.input)),
    ),
  );
}

/** The environment the deployed function (and the local mode) configures the handler with. */
const EnvironmentSchema = v.object({
  TABLE_NAME: v.pipe(
    v.string('TABLE_NAME: the environment variable is missing; set it to the event table name'),
    v.trim(),
    v.nonEmpty('TABLE_NAME: the environment variable is empty; set it to the event table name'),
  ),
  DLQ_URL: v.pipe(
    v.string('DLQ_URL: the environment variable is missing; set it to the dead-letter queue URL'),
    v.trim(),
    v.nonEmpty('DLQ_URL: the environment variable is empty; set it to the dead-letter queue URL'),
    v.url((issue) => `DLQ_URL: ${JSON.stringify(issue.input)} is not a URL; set it to the dead-letter queue URL`),
  ),
  DEDUP_WINDOW: optionalInteger('DEDUP_WINDOW', 1, Limits.maxDedupWindow),
  RESEND_WINDOW_SECONDS: optionalInteger('RESEND_WINDOW_SECONDS', 0, ResendWindow.maxSeconds),
  MAX_RECEIVE_COUNT: optionalInteger('MAX_RECEIVE_COUNT', 1, Limits.maxReceiveCount),
});

export interface IngestConfig {
  readonly tableName: string;
  readonly dlqUrl: string;
  readonly dedupWindow: number;
  readonly resendWindowSeconds: number;
  /** Undefined when MAX_RECEIVE_COUNT is not set. */
  readonly maxReceiveCount: number | undefined;
}

/**
 * Read the handler's configuration from the environment: `TABLE_NAME` and `DLQ_URL` are
 * required, `DEDUP_WINDOW` is an integer from 1 to 1000 (default 50), `RESEND_WINDOW_SECONDS`
 * an integer from 0 to 86400 (default 300), `MAX_RECEIVE_COUNT` (the source queue's redrive
 * setting) an integer from 1 to 1000.
 *
 * @throws ConfigurationError naming every variable that is missing or wrong.
 *
 * @example
 * ```ts
 * const { tableName, dlqUrl, dedupWindow } = readIngestConfig(process.env);
 * ```
 */
export function readIngestConfig(env: Readonly<Record<string, string | undefined>>): IngestConfig {
  const input = {
    TABLE_NAME: env['TABLE_NAME'],
    DLQ_URL: env['DLQ_URL'],
    DEDUP_WINDOW: env['DEDUP_WINDOW'] === '' ? undefined : env['DEDUP_WINDOW'],
    RESEND_WINDOW_SECONDS: env['RESEND_WINDOW_SECONDS'] === '' ? undefined : env['RESEND_WINDOW_SECONDS'],
    MAX_RECEIVE_COUNT: env['MAX_RECEIVE_COUNT'] === '' ? undefined : env['MAX_RECEIVE_COUNT'],
  };
  const result = v.safeParse(EnvironmentSchema, input);
  if (!result.success) {
    const messages = [...new Set(result.issues.map((issue) => issue.message))];
    throw new ConfigurationError(`Ingest handler configuration: ${messages.join('; ')}`);
  }
  return {
    tableName: result.output.TABLE_NAME,
    dlqUrl: result.output.DLQ_URL,
    dedupWindow: result.output.DEDUP_WINDOW ?? Limits.defaultDedupWindow,
    resendWindowSeconds: result.output.RESEND_WINDOW_SECONDS ?? ResendWindow.defaultSeconds,
    maxReceiveCount: result.output.MAX_RECEIVE_COUNT,
  };
}

/**
 * Build the ingest handler from explicit dependencies (tests, the local mode). Nothing in it
 * outlives an invocation except the store's head cache, so a warm container (or several
 * invocations of one instance at once) behaves like a fresh one.
 *
 * @example
 * ```ts
 * const handler = createIngestHandler({ dynamo: new DynamoDBClient({}), sqs: new SQSClient({}),
 *   tableName: 'events', dlqUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/events-dlq' });
 * const response = await handler(sqsEvent, context);
 * ```
 */
export function createIngestHandler(deps: IngestDependencies): IngestHandler {
  const logger = deps.logger ?? new Logger({ serviceName: SERVICE_NAME });
  const metrics = deps.metrics ?? new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
  const tracer = deps.tracer ?? new Tracer({ serviceName: SERVICE_NAME });
  const dynamo = tracer.captureAWSv3Client(deps.dynamo);
  const sqs = tracer.captureAWSv3Client(deps.sqs);
  const dedupWindow = deps.dedupWindow ?? Limits.defaultDedupWindow;
  const resendWindowMs = (deps.resendWindowSeconds ?? ResendWindow.defaultSeconds) * 1000;
  /** Conflicts are reported by the store; this finds the invocation they belong to. */
  const invocation = new AsyncLocalStorage<Tally>();
  const store =
    deps.store ??
    new DynamoDbEventStore({
      client: dynamo,
      tableName: deps.tableName,
      ...(deps.cacheSize !== undefined ? { cacheSize: deps.cacheSize } : {}),
      ...(deps.maxAttempts !== undefined ? { maxAttempts: deps.maxAttempts } : {}),
      onConflict: () => {
        const tally = invocation.getStore();
        if (tally) tally.conflicts += 1;
      },
    });
  const deadLetters = new SqsRejecter({
    client: sqs,
    queueUrl: deps.dlqUrl,
    ...(deps.dlqMaxMessageBytes !== undefined ? { maxMessageBytes: deps.dlqMaxMessageBytes } : {}),
  });

  async function ingest(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
    const records = event.Records ?? [];
    const tally = emptyTally();
    const deadline = invocationDeadline(context, logger);
    let response: SQSBatchResponse = { batchItemFailures: [] };
    try {
      response = await invocation.run(tally, () =>
        processIngestBatch(
          records,
          { store, deadLetters, logger, dedupWindow, resendWindowMs, maxReceiveCount: deps.maxReceiveCount },
          { context, signal: deadline.signal, tally },
        ),
      );
      return response;
    } catch (error) {
      logger.error('batch failed as a whole; Lambda will deliver it again', { error: errorText(error) });
      throw error;
    } finally {
      deadline.dispose();
      publishTally(metrics, logger, tally);
      logBatch(logger, context, records, tally, response);
    }
  }

  return withHandlerSegment(tracer, ingest);
}

/**
 * The invocation's deadline (see `invocationDeadlineMs`) as a signal, with a warning logged when
 * it passes; none when the context cannot tell the remaining time.
 */
function invocationDeadline(
  context: Context,
  logger: Logger,
): { signal: AbortSignal | undefined; dispose: () => void } {
  const remaining =
    typeof context.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : undefined;
  const deadlineMs = remaining === undefined ? undefined : invocationDeadlineMs(remaining);
  const signal = deadlineMs === undefined ? undefined : AbortSignal.timeout(deadlineMs);
  const onDeadline = () =>
    logger.warn('invocation deadline reached: calls still running are abandoned and their records reported failed', {
      requestId: context.awsRequestId,
      deadlineMs,
      remainingMs: remaining,
    });
  signal?.addEventListener('abort', onDeadline, { once: true });
  return { signal, dispose: () => signal?.removeEventListener('abort', onDeadline) };
}

function publishTally(metrics: Metrics, logger: Logger, tally: Tally): void {
  try {
    for (const [reason, count] of Object.entries(tally.rejected)) {
      const single = metrics.singleMetric();
      single.addDimension(REASON_DIMENSION, reason);
      single.addMetric(IngestMetric.eventsRejected, MetricUnit.Count, count);
    }
    metrics.addMetric(IngestMetric.eventsStored, MetricUnit.Count, tally.stored);
    metrics.addMetric(IngestMetric.duplicateEvents, MetricUnit.Count, tally.duplicates);
    metrics.addMetric(IngestMetric.appendConflicts, MetricUnit.Count, tally.conflicts);
    metrics.publishStoredMetrics();
  } catch (error) {
    // Metrics must never fail a batch whose events are already stored.
    logger.warn('metrics could not be published', { error: errorText(error) });
  }
}

/** The one `batch processed` line per invocation. */
function logBatch(
  logger: Logger,
  context: Context,
  records: readonly SQSRecord[],
  tally: Tally,
  response: SQSBatchResponse,
): void {
  const fifo = records.length > 0 && records.every(isFifoRecord);
  logger.info('batch processed', {
    requestId: context.awsRequestId,
    mode: fifo ? 'fifo' : 'standard',
    records: records.length,
    stored: tally.stored,
    duplicates: tally.duplicates,
    rejected: tally.rejected,
    waiting: tally.waiting,
    conflicts: tally.conflicts,
    failed: response.batchItemFailures.length,
    dlqSendFailures: tally.dlqFailures,
  });
}

/** The handler inside a `## handler` subsegment with the cold-start and service annotations, when tracing is on. */
function withHandlerSegment(tracer: Tracer, ingest: IngestHandler): IngestHandler {
  return async (event, context) => {
    if (!tracer.isTracingEnabled()) return ingest(event, context);
    const parent = tracer.getSegment();
    const segment = parent?.addNewSubsegment('## handler');
    if (segment) {
      tracer.setSegment(segment);
      tracer.annotateColdStart();
      tracer.addServiceNameAnnotation();
    }
    try {
      return await ingest(event, context);
    } catch (error) {
      segment?.addError(error as Error);
      throw error;
    } finally {
      segment?.close();
      if (parent) tracer.setSegment(parent);
    }
  };
}

let container: { handler: IngestHandler; clients: { destroy(): void }[] } | undefined;

/** The container's handler, built on first use from the environment (once per container). */
function containerIngestHandler(): IngestHandler {
  if (container) return container.handler;
  const config = readIngestConfig(process.env);
  const logger = new Logger({ serviceName: SERVICE_NAME });
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
  const tracer = new Tracer({ serviceName: SERVICE_NAME });
  // Region, credentials and AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS come from the environment.
  // Each attempt fails on its own timeout; the invocation's deadline bounds all of them.
  const dynamo = new DynamoDBClient({ requestHandler: SDK_TIMEOUTS });
  const sqs = new SQSClient({ requestHandler: SDK_TIMEOUTS });
  const handler = createIngestHandler({
    dynamo,
    sqs,
    tableName: config.tableName,
    dlqUrl: config.dlqUrl,
    dedupWindow: config.dedupWindow,
    resendWindowSeconds: config.resendWindowSeconds,
    ...(config.maxReceiveCount !== undefined ? { maxReceiveCount: config.maxReceiveCount } : {}),
    logger,
    metrics,
    tracer,
  });
  container = { handler, clients: [dynamo, sqs] };
  return handler;
}

/**
 * Destroy the SDK clients the environment-configured `handler` created and forget it (the next
 * call builds a new one from the environment). For hosts that run the handler in a long-lived
 * process (the local mode, tests): idle keep-alive sockets would otherwise keep it alive.
 */
export function disposeIngestHandler(): void {
  for (const client of container?.clients ?? []) client.destroy();
  container = undefined;
}

/**
 * The Lambda entry point. Configured from TABLE_NAME, DLQ_URL, DEDUP_WINDOW,
 * RESEND_WINDOW_SECONDS and MAX_RECEIVE_COUNT; a missing or wrong variable fails every invocation with a
 * ConfigurationError that names it.
 */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  let ingest: IngestHandler;
  try {
    ingest = containerIngestHandler();
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new ConfigurationError(String(error)));
  }
  return ingest(event, context);
};
