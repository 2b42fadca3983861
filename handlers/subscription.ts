/**
 * The subscription Lambda function (README "Subscriptions"): a user's projection on the event
 * table's DynamoDB stream, with the runtime of core/subscription.ts.
 *
 * - A DynamoDB stream batch: each stream's new events go to the projection in version order
 *   (redeliveries skipped, gaps filled by a strongly consistent read, long catch-ups in pages),
 *   the stream held by this invocation alone: by the batch's claim when CLAIMS_TABLE_NAME is
 *   set (one write names every stream of the batch, one deletes it, one checkpoint per stream;
 *   docs/ARCHITECTURE.md, "Subscriptions"), else one write takes each stream (until the
 *   invocation's deadline, counting an attempt) and one checkpoints and releases it; a stream whose projection
 *   fails, or that was not finished in time, is reported in `batchItemFailures` (Lambda sends
 *   the shard again from there) until it is parked.
 * - `{ "replay": true }` (the construct's schedule, every minute): the replay worker goes on
 *   with the Scan of a new or reset subscription and with asked-for resumes, until shortly
 *   before the function's timeout, holding each stream it catches up as a live batch does (by
 *   a claim of its own when CLAIMS_TABLE_NAME is set).
 *
 * Powertools' batch processor is not used: it settles records one by one, and a subscription's
 * unit of work is a stream (order, gap fill and one checkpoint across the stream's records).
 *
 * A projection file exports the handler this module builds:
 *
 * @example
 * ```ts
 * import { subscriptionHandler } from '../handlers/subscription.ts';
 * export const handler = subscriptionHandler({
 *   projection: () => async (event) => console.log(event.ID, event.Version, event.EventType),
 * });
 * ```
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import * as v from 'valibot';
import { fromItem } from '../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore, DynamoDbClaimStore, DynamoDbEventReader } from '../adapters/dynamodb-subscription.ts';
import { ConfigurationError } from '../core/errors.ts';
import {
  ReadRateLimiter,
  SUBSCRIPTION_DIMENSION,
  SubscriptionDefaults,
  SubscriptionEnvironment,
  SubscriptionMetric,
  SubscriptionRuntime,
  runReplay,
  type LiveRecord,
  type Projection,
  type ReplayState,
  type StreamOutcome,
} from '../core/subscription.ts';
import { METRICS_NAMESPACE, SUBSCRIPTION_SERVICE_NAME as SERVICE_NAME } from '../core/metrics.ts';

/** The scheduled invocation that runs the replay worker. */
export interface ReplayInvocation {
  readonly replay: true;
}

export interface ReplayReport {
  readonly busy: boolean;
  readonly state: ReplayState | undefined;
  readonly streams: number;
}

export type SubscriptionEvent = DynamoDBStreamEvent | ReplayInvocation;
export type SubscriptionResult = DynamoDBBatchResponse | ReplayReport;

export interface SubscriptionHandler {
  (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse>;
  (event: ReplayInvocation, context: Context): Promise<ReplayReport>;
  (event: SubscriptionEvent, context: Context): Promise<SubscriptionResult>;
}

const E = SubscriptionEnvironment;

const required = (name: string, what: string) =>
  v.pipe(
    v.string(`${name}: the environment variable is missing; set it to ${what}`),
    v.trim(),
    v.nonEmpty(`${name}: the environment variable is empty; set it to ${what}`),
  );
const positiveInteger = (name: string) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, (issue) => `${name}: ${JSON.stringify(issue.input)} is not a whole number >= 1`),
      v.transform(Number),
      v.minValue(1, (issue) => `${name}: ${issue.input} is not a whole number >= 1`),
    ),
  );

const EnvironmentSchema = v.object({
  [E.name]: required(E.name, "the subscription's name"),
  [E.eventTable]: required(E.eventTable, 'the event table name'),
  [E.checkpointTable]: required(E.checkpointTable, 'the checkpoint table name'),
  [E.maxAttempts]: positiveInteger(E.maxAttempts),
  [E.eventTypes]: v.optional(v.string()),
  [E.replayReadUnits]: positiveInteger(E.replayReadUnits),
  [E.claimsTable]: v.optional(v.pipe(v.string(), v.trim())),
});

export interface SubscriptionConfig {
  readonly name: string;
  readonly eventTable: string;
  readonly checkpointTable: string;
  readonly maxAttempts: number;
  /** Empty: every event type. */
  readonly eventTypes: readonly string[];
  readonly replayReadUnitsPerSecond: number;
  /** The claims table (docs/ARCHITECTURE.md, "Subscriptions"); unset: every path takes a lease per stream. */
  readonly claimsTable?: string | undefined;
}

/**
 * The handler's configuration from the environment.
 * @throws ConfigurationError naming every variable that is missing or wrong.
 */
export function readSubscriptionConfig(env: Readonly<Record<string, string | undefined>>): SubscriptionConfig {
  const input = Object.fromEntries(Object.values(E).map((name) => [name, env[name] === '' ? undefined : env[name]]));
  const result = v.safeParse(EnvironmentSchema, input);
  if (!result.success) {
    throw new ConfigurationError(
      `Subscription handler configuration: ${[...new Set(result.issues.map((issue) => issue.message))].join('; ')}`,
    );
  }
  const out = result.output;
  return {
    name: out[E.name],
    eventTable: out[E.eventTable],
    checkpointTable: out[E.checkpointTable],
    maxAttempts: out[E.maxAttempts] ?? SubscriptionDefaults.maxAttempts,
    eventTypes: (out[E.eventTypes] ?? '')
      .split(',')
      .map((type) => type.trim())
      .filter(Boolean),
    replayReadUnitsPerSecond: out[E.replayReadUnits] ?? SubscriptionDefaults.replayReadUnitsPerSecond,
    ...(out[E.claimsTable] ? { claimsTable: out[E.claimsTable] } : {}),
  };
}

export interface SubscriptionDependencies {
  readonly dynamo: DynamoDBClient;
  readonly config: SubscriptionConfig;
  readonly project: Projection;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  /** The replay stops this long before the function's timeout. @default 10 s */
  readonly replayMarginMs?: number;
  /** No event is handed over with less time left than this. @default SubscriptionDefaults.handOverMarginMs */
  readonly handOverMarginMs?: number;
  /** A lease ends this long after its holder's deadline. @default SubscriptionDefaults.clockAllowanceMs */
  readonly clockAllowanceMs?: number;
  /** Events per catch-up page (read, handed over, checkpointed). @default SubscriptionDefaults.catchUpPage */
  readonly pageSize?: number;
  /** The clock (tests, the fault explorer). @default Date.now */
  readonly now?: () => number;
  /** Waits (for a held stream, for the read limit). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Called with the read/write units of every checkpoint and event-table request (bench). */
  readonly onCapacity?: (units: { read: number; write: number }) => void;
}

function isReplay(event: SubscriptionEvent): event is ReplayInvocation {
  return (event as ReplayInvocation).replay === true;
}

/** The event of a stream record: the new image, read with the store's own unmarshalling. */
function liveRecord(record: DynamoDBRecord): LiveRecord | undefined {
  const image = record.dynamodb?.NewImage;
  const sequenceNumber = record.dynamodb?.SequenceNumber;
  if (record.eventName !== 'INSERT' || !image || !sequenceNumber) return undefined;
  // aws-lambda's AttributeValue and the SDK's describe the same wire shape.
  return { event: fromItem(image as Record<string, AttributeValue>), sequenceNumber };
}

/** Where a batch's or a replay's outcomes are reported. */
interface Reporting {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly config: SubscriptionConfig;
}

/** The subscription's metrics for a batch or a replay run (a failure to publish is logged, not thrown). */
function publishOutcomes(
  { metrics, logger, config }: Reporting,
  outcomes: readonly StreamOutcome[],
  replayStreams?: number,
): void {
  try {
    let delivered = 0;
    let lag = 0;
    let parked = 0;
    for (const outcome of outcomes) {
      if (outcome.status === 'retry') continue;
      delivered += outcome.count;
      lag = Math.max(lag, outcome.head - outcome.delivered);
      if (outcome.status === 'parked' && (outcome.newlyParked || outcome.head > outcome.delivered)) parked += 1;
    }
    metrics.addDimension(SUBSCRIPTION_DIMENSION, config.name);
    metrics.addMetric(SubscriptionMetric.eventsDelivered, MetricUnit.Count, delivered);
    metrics.addMetric(SubscriptionMetric.lag, MetricUnit.Count, lag);
    metrics.addMetric(SubscriptionMetric.streamsParked, MetricUnit.Count, parked);
    if (replayStreams !== undefined)
      metrics.addMetric(SubscriptionMetric.replayStreams, MetricUnit.Count, replayStreams);
    metrics.publishStoredMetrics();
  } catch (error) {
    logger.warn('metrics could not be published', { error: String(error) });
  }
}

/** A log line per stream that was parked, failed or retried. */
function logStreamOutcomes(
  { logger, config }: Pick<Reporting, 'logger' | 'config'>,
  outcomes: readonly StreamOutcome[],
): void {
  for (const outcome of outcomes) {
    const keys = { subscription: config.name, streamId: outcome.streamId };
    if (outcome.status === 'parked' && outcome.newlyParked) {
      logger.error('stream parked: the projection failed too often; later events of this stream wait for a resume', {
        ...keys,
        version: outcome.version,
        maxAttempts: config.maxAttempts,
      });
    } else if (outcome.status === 'failed') {
      logger.warn('projection failed; the stream is retried from this version', {
        ...keys,
        version: outcome.version,
        error: outcome.error,
      });
    } else if (outcome.status === 'retry' && outcome.toReplay) {
      logger.info('stream far behind: caught up to here, the replay worker goes on from the checkpoint', {
        ...keys,
        delivered: outcome.delivered,
      });
    } else if (outcome.status === 'retry') {
      logger.info('stream retried', { ...keys, reason: outcome.reason });
    }
  }
}

/**
 * One runtime per invocation: its owner id and its deadline (the context's remaining time).
 * Every catch-up read is rate-limited: the replay's (one bucket per run) and the live path's
 * gap fills and long catch-ups (one bucket per container, shared by its invocations).
 */
function runtimeFactory(
  deps: SubscriptionDependencies,
  checkpoints: DynamoDbCheckpointStore,
): {
  runtime: (owner: string, context: Context, reader: DynamoDbEventReader) => SubscriptionRuntime;
  liveReader: DynamoDbEventReader;
  newReader: () => DynamoDbEventReader;
} {
  const { config, dynamo, onCapacity } = deps;
  const clock = {
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  };
  const newReader = () =>
    new DynamoDbEventReader({
      client: dynamo,
      tableName: config.eventTable,
      limiter: new ReadRateLimiter(config.replayReadUnitsPerSecond, clock),
      ...(onCapacity ? { onCapacity } : {}),
    });
  const liveReader = newReader();
  const claims = config.claimsTable
    ? new DynamoDbClaimStore({ client: dynamo, tableName: config.claimsTable, ...(onCapacity ? { onCapacity } : {}) })
    : undefined;
  const runtime = (owner: string, context: Context, reader: DynamoDbEventReader) =>
    new SubscriptionRuntime({
      checkpoints,
      claims,
      reader,
      project: deps.project,
      eventTypes: config.eventTypes,
      maxAttempts: config.maxAttempts,
      owner,
      remainingTimeMs: () => context.getRemainingTimeInMillis(),
      ...(deps.handOverMarginMs !== undefined ? { handOverMarginMs: deps.handOverMarginMs } : {}),
      ...(deps.clockAllowanceMs !== undefined ? { clockAllowanceMs: deps.clockAllowanceMs } : {}),
      ...(deps.pageSize !== undefined ? { pageSize: deps.pageSize } : {}),
      ...clock,
    });
  return { runtime, liveReader, newReader };
}

/**
 * Build the handler from explicit dependencies (tests, the local mode, bench).
 *
 * @example
 * ```ts
 * const handler = createSubscriptionHandler({ dynamo, config: readSubscriptionConfig(process.env), project });
 * const { batchItemFailures } = await handler(streamEvent, context);
 * ```
 */
export function createSubscriptionHandler(deps: SubscriptionDependencies): SubscriptionHandler {
  const { config, dynamo } = deps;
  // A deployed subscription's `service` is its stack's name (infra/constructs/event-subscription.ts).
  const serviceName = process.env['POWERTOOLS_SERVICE_NAME'] || SERVICE_NAME;
  const logger = deps.logger ?? new Logger({ serviceName });
  const metrics = deps.metrics ?? new Metrics({ namespace: METRICS_NAMESPACE, serviceName });
  const onCapacity = deps.onCapacity;
  const checkpoints = new DynamoDbCheckpointStore({
    client: dynamo,
    tableName: config.checkpointTable,
    ...(onCapacity ? { onCapacity } : {}),
  });
  const { runtime, liveReader, newReader } = runtimeFactory(deps, checkpoints);

  const publish = (outcomes: readonly StreamOutcome[], replayStreams?: number) =>
    publishOutcomes({ metrics, logger, config }, outcomes, replayStreams);
  const logOutcomes = (outcomes: readonly StreamOutcome[]) => logStreamOutcomes({ logger, config }, outcomes);

  async function live(event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> {
    const records = (event.Records ?? []).flatMap((record) => liveRecord(record) ?? []);
    const { outcomes, retryFrom } = await runtime(
      context.awsRequestId || randomUUID(),
      context,
      liveReader,
    ).handleBatch(records);
    logOutcomes(outcomes);
    publish(outcomes);
    logger.info('batch delivered', {
      subscription: config.name,
      records: event.Records?.length ?? 0,
      streams: outcomes.length,
      delivered: outcomes.reduce((sum, outcome) => sum + ('count' in outcome ? outcome.count : 0), 0),
      retried: retryFrom.length,
    });
    return { batchItemFailures: retryFrom.map((itemIdentifier) => ({ itemIdentifier })) };
  }

  async function replay(context: Context): Promise<ReplayReport> {
    const margin = deps.replayMarginMs ?? 10_000;
    const owner = `replay-${context.awsRequestId || randomUUID()}`;
    const now = deps.now ?? Date.now;
    // One reader (one read-unit bucket) for the run's Scan and its catch-up reads together.
    const reader = newReader();
    const result = await runReplay({
      runtime: runtime(owner, context, reader),
      checkpoints,
      scanner: reader,
      owner,
      deadline: now() + Math.max(1_000, context.getRemainingTimeInMillis() - margin),
      now,
      onProgress: (state) => {
        if (state.status !== 'done' || state.lease)
          logger.info('replay progress', { subscription: config.name, ...progress(state) });
      },
    });
    logOutcomes(result.outcomes);
    if (result.outcomes.length > 0 || !result.busy) publish(result.outcomes, result.outcomes.length);
    if (result.state?.status === 'done' && result.outcomes.length > 0) {
      logger.info('replay done', { subscription: config.name, ...progress(result.state) });
    }
    return { busy: result.busy, state: result.state, streams: result.outcomes.length };
  }

  const handle = (event: SubscriptionEvent, context: Context): Promise<SubscriptionResult> =>
    isReplay(event) ? replay(context) : live(event, context);
  return handle as SubscriptionHandler;
}

function progress(state: ReplayState) {
  return {
    status: state.status,
    streams: state.streams,
    events: state.events,
    startedAt: state.startedAt,
    finishedAt: state.finishedAt,
  };
}

/** What a projection is built from, once per container: its environment and a DynamoDB client. */
export interface ProjectionContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly dynamo: DynamoDBClient;
}

export interface SubscriptionHandlerOptions {
  /** Build the projection (read its own environment, e.g. a read model table name). */
  readonly projection: (context: ProjectionContext) => Projection;
}

/** A Lambda entry point that builds itself from the environment on first use (once per container). */
export interface SubscriptionLambda extends SubscriptionHandler {
  /** The same projection with another environment (the local mode runs several subscriptions in one process). */
  withEnvironment(
    env: Readonly<Record<string, string | undefined>>,
    dynamo?: DynamoDBClient,
  ): SubscriptionHandler & { dispose(): void };
  /** Destroy the SDK client built from the environment (idle sockets keep a process alive). */
  dispose(): void;
}

/**
 * The entry point a projection file exports as `handler`. Configured from SUBSCRIPTION_NAME,
 * EVENT_TABLE_NAME, CHECKPOINT_TABLE_NAME, MAX_ATTEMPTS, EVENT_TYPES,
 * REPLAY_READ_UNITS_PER_SECOND and CLAIMS_TABLE_NAME, which the EventSubscription construct sets.
 */
export function subscriptionHandler(options: SubscriptionHandlerOptions): SubscriptionLambda {
  let container: { handler: SubscriptionHandler; dynamo: DynamoDBClient } | undefined;
  const build = (env: Readonly<Record<string, string | undefined>>, given?: DynamoDBClient) => {
    const config = readSubscriptionConfig(env);
    const dynamo =
      given ?? new DynamoDBClient({ requestHandler: { connectionTimeout: 3_000, requestTimeout: 10_000 } });
    return {
      handler: createSubscriptionHandler({ dynamo, config, project: options.projection({ env, dynamo }) }),
      dynamo,
    };
  };
  const lambda = ((event: SubscriptionEvent, context: Context) => {
    try {
      container ??= build(process.env);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new ConfigurationError(String(error)));
    }
    return container.handler(event, context);
  }) as SubscriptionLambda;
  lambda.withEnvironment = (env, dynamo) => {
    const built = build(env, dynamo);
    return Object.assign(built.handler, { dispose: () => (dynamo ? undefined : built.dynamo.destroy()) });
  };
  lambda.dispose = () => {
    container?.dynamo.destroy();
    container = undefined;
  };
  return lambda;
}
