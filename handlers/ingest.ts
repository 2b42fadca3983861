/**
 * The ingest Lambda function (DESIGN section 5): SQS records in, events appended to their
 * streams, a partial batch response out.
 *
 * 1. Parse every record body against the event contract (core/event.ts).
 * 2. Group the valid events by `ID`, keeping record order, and append the streams in parallel
 *    (one `appendToStream` per stream, its events in order). Duplicate window: DEDUP_WINDOW for
 *    standard queues; for FIFO queues a full FIFO batch (10), which makes it exact.
 * 3. Hand each record's outcome to Powertools' batch processor (`BatchProcessor`, or
 *    `SqsFifoPartialProcessorAsync` with `skipGroupOnError` for FIFO, new for every
 *    invocation): stored or duplicate -> done; rejected or invalid -> original body to the DLQ
 *    with the reason, then done; failed (or a failed DLQ send) -> `batchItemFailures`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  BatchProcessor,
  EventType,
  SqsFifoPartialProcessorAsync,
  processPartialResponse,
} from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as v from 'valibot';
import { DynamoDbEventStore } from '../adapters/dynamodb-store.ts';
import { SqsRejecter } from '../adapters/sqs-rejecter.ts';
import { ConfigurationError, TransientStoreError } from '../core/errors.ts';
import { parseEventBody, type ValidEvent } from '../core/event.ts';
import { Limits } from '../core/keys.ts';
import type { RejectionReason } from '../core/reasons.ts';
import type { AppendOutcome, EventStore } from '../core/store.ts';

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
  /** Conditional-put attempts per event before it is reported failed. @default the store's */
  readonly maxAttempts?: number;
  /** Streams whose head this container remembers. @default the store's */
  readonly cacheSize?: number;
  /** @default a Logger for service `event-store` */
  readonly logger?: Logger;
  /** @default a Metrics for namespace `EventStore` (or POWERTOOLS_METRICS_NAMESPACE) */
  readonly metrics?: Metrics;
  /** @default a Tracer (POWERTOOLS_TRACE_ENABLED=false turns it off) */
  readonly tracer?: Tracer;
  /** @default a DynamoDbEventStore on `dynamo` and `tableName` */
  readonly store?: EventStore;
}

/** Metric names (namespace `EventStore`). The dashboard and alarms use the same names. */
export const IngestMetric = {
  eventsStored: 'EventsStored',
  eventsRejected: 'EventsRejected',
  duplicateEvents: 'DuplicateEvents',
  appendConflicts: 'AppendConflicts',
} as const;

/** The `EventsRejected` dimension. */
export const REASON_DIMENSION = 'Reason';

const SERVICE_NAME = 'event-store';
const METRICS_NAMESPACE = 'EventStore';

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
  DEDUP_WINDOW: v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.regex(/^\d+$/, (issue) => `DEDUP_WINDOW: ${JSON.stringify(issue.input)} is not an integer from 1 to 1000`),
      v.transform(Number),
      v.number(),
      v.minValue(1, (issue) => `DEDUP_WINDOW: ${issue.input} is not an integer from 1 to 1000`),
      v.maxValue(1000, (issue) => `DEDUP_WINDOW: ${issue.input} is not an integer from 1 to 1000`),
    ),
  ),
});

export interface IngestConfig {
  readonly tableName: string;
  readonly dlqUrl: string;
  readonly dedupWindow: number;
}

/**
 * Read the handler's configuration from the environment: `TABLE_NAME` and `DLQ_URL` are
 * required, `DEDUP_WINDOW` is an integer from 1 to 1000 (default 50).
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
  };
}

/** What became of one record before the batch processor looks at it. */
type Verdict =
  | AppendOutcome
  | { readonly status: 'invalid'; readonly reason: RejectionReason; readonly detail: string };

interface Decision {
  readonly verdict: Verdict;
  /** The stream the body names, when it names one. */
  readonly streamId: string | undefined;
}

/** Per-invocation counts, for the metrics and the summary log line. */
interface Tally {
  stored: number;
  duplicates: number;
  conflicts: number;
  rejected: Partial<Record<RejectionReason, number>>;
  dlqFailures: number;
}

/** A FIFO batch: from a `.fifo` queue (Lambda's ARN says so; a fair standard queue also sets MessageGroupId). */
function isFifoRecord(record: SQSRecord): boolean {
  return (
    record.eventSourceARN?.endsWith('.fifo') === true ||
    (record.attributes?.MessageGroupId !== undefined && record.attributes?.SequenceNumber !== undefined)
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
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
  const rejecter = new SqsRejecter({ client: sqs, queueUrl: deps.dlqUrl });

  /** Parse every record, append each stream's events (streams in parallel), return each record's verdict. */
  async function decide(records: readonly SQSRecord[], fifo: boolean, tally: Tally): Promise<Map<SQSRecord, Decision>> {
    const decisions = new Map<SQSRecord, Decision>();
    const streams = new Map<string, { records: SQSRecord[]; events: ValidEvent[] }>();
    for (const record of records) {
      const parsed = parseEventBody(record.body);
      if (!parsed.ok) {
        decisions.set(record, {
          verdict: { status: 'invalid', reason: parsed.reason, detail: parsed.detail },
          streamId: parsed.streamId,
        });
        continue;
      }
      const stream = streams.get(parsed.event.ID) ?? { records: [], events: [] };
      stream.records.push(record);
      stream.events.push(parsed.event);
      streams.set(parsed.event.ID, stream);
    }
    await Promise.all(
      [...streams].map(async ([streamId, stream]) => {
        // FIFO: SQS redelivers a group's unacknowledged messages before any later one, so a
        // duplicate can only be among the events of the last batch that reached the store. That
        // batch held at most 10 messages, and the redelivery may hold fewer of them than it did
        // (a receive returns "up to" its maximum): read back a full FIFO batch, or this one if larger.
        const window = fifo ? Math.max(Limits.maxFifoBatchSize, stream.events.length) : dedupWindow;
        let outcomes: AppendOutcome[];
        try {
          outcomes = await store.appendToStream(streamId, stream.events, { dedupWindow: window });
        } catch (error) {
          const failure = new TransientStoreError(`stream ${streamId}: append failed: ${errorText(error)}`, { streamId }, { cause: error });
          outcomes = stream.events.map(() => ({ status: 'failed', error: failure }));
        }
        stream.records.forEach((record, index) => {
          const outcome = outcomes[index] ?? {
            status: 'failed',
            error: new TransientStoreError(`stream ${streamId}: the store returned no outcome for event ${index + 1}`, { streamId }),
          };
          decisions.set(record, { verdict: outcome, streamId });
          if (outcome.status === 'stored') tally.stored += 1;
          if (outcome.status === 'duplicate') tally.duplicates += 1;
        });
      }),
    );
    return decisions;
  }

  /** The batch processor's record handler: act on a precomputed verdict. Throwing marks the record failed. */
  async function settle(record: SQSRecord, decision: Decision | undefined, tally: Tally): Promise<void> {
    const streamId = decision?.streamId;
    // Per-call keys, not appendKeys(): one handler instance may run several invocations at once (local mode).
    const keys = { correlation_id: record.messageId, messageId: record.messageId, streamId };
    logger.debug('record', { ...keys, body: record.body });
    if (decision === undefined) {
      throw new TransientStoreError(`message ${record.messageId}: no verdict (internal error)`, { streamId });
    }
    const { verdict } = decision;
    switch (verdict.status) {
      case 'stored':
      case 'duplicate':
        logger.debug(`event ${verdict.status}`, { ...keys, version: verdict.version });
        return;
      case 'failed':
        logger.warn('event not stored; SQS will deliver it again', { ...keys, error: errorText(verdict.error) });
        throw verdict.error;
      case 'invalid':
      case 'rejected': {
        const { reason, detail } = verdict;
        try {
          await rejecter.reject({
            body: record.body,
            reason,
            detail,
            sourceMessageId: record.messageId,
            redriveCount: record.messageAttributes?.['RedriveCount']?.stringValue,
            streamId,
            sourceGroupId: record.attributes?.MessageGroupId,
          });
        } catch (error) {
          tally.dlqFailures += 1;
          logger.error('rejected event could not be sent to the DLQ; it stays in the source queue', {
            ...keys,
            reason,
            error: errorText(error),
          });
          throw new TransientStoreError(
            `message ${record.messageId}: rejected (${reason}) but the DLQ send failed: ${errorText(error)}`,
            { streamId },
            { cause: error },
          );
        }
        tally.rejected[reason] = (tally.rejected[reason] ?? 0) + 1;
        logger.info('event rejected and sent to the DLQ', { ...keys, reason, detail });
        return;
      }
    }
  }

  function publish(tally: Tally): void {
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

  async function ingest(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
    const records = event.Records ?? [];
    const tally: Tally = { stored: 0, duplicates: 0, conflicts: 0, rejected: {}, dlqFailures: 0 };
    const fifo = records.length > 0 && records.every(isFifoRecord);
    let response: SQSBatchResponse = { batchItemFailures: [] };
    try {
      const decisions = await invocation.run(tally, () => decide(records, fifo, tally));
      // A new processor every invocation: no failed-group state survives into the next one.
      const recordHandler = (record: SQSRecord): Promise<void> => settle(record, decisions.get(record), tally);
      // Every record failed (DynamoDB down): report each one, like any partial failure.
      response = fifo
        ? await processPartialResponse({ Records: records }, recordHandler, new SqsFifoPartialProcessorAsync(), {
            context,
            skipGroupOnError: true,
            throwOnFullBatchFailure: false,
          })
        : await processPartialResponse({ Records: records }, recordHandler, new BatchProcessor(EventType.SQS), {
            context,
            throwOnFullBatchFailure: false,
          });
      return response;
    } catch (error) {
      logger.error('batch failed as a whole; Lambda will deliver it again', { error: errorText(error) });
      throw error;
    } finally {
      publish(tally);
      logger.info('batch processed', {
        requestId: context.awsRequestId,
        mode: fifo ? 'fifo' : 'standard',
        records: records.length,
        stored: tally.stored,
        duplicates: tally.duplicates,
        rejected: tally.rejected,
        conflicts: tally.conflicts,
        failed: response.batchItemFailures.length,
        dlqSendFailures: tally.dlqFailures,
      });
    }
  }

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
  // Bounded request times: a hung connection fails (and is retried by the SDK, then by SQS)
  // instead of holding the whole batch until the function times out.
  const requestHandler = { connectionTimeout: 3_000, requestTimeout: 10_000 };
  const dynamo = new DynamoDBClient({ requestHandler });
  const sqs = new SQSClient({ requestHandler });
  const handler = createIngestHandler({
    dynamo,
    sqs,
    tableName: config.tableName,
    dlqUrl: config.dlqUrl,
    dedupWindow: config.dedupWindow,
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
 * The Lambda entry point (DESIGN section 5). Configured from TABLE_NAME, DLQ_URL and
 * DEDUP_WINDOW; a missing or wrong variable fails every invocation with a ConfigurationError
 * that names it.
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
