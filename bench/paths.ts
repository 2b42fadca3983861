/**
 * The write paths the bench runs for a workload (docs/PERFORMANCE.md): the original design's
 * (the baseline), this project's standard and FIFO paths, and the extras measured once per
 * run (raw ceiling, handler CPU without the SDK, subscription, bundle).
 */
import { METRICS_NAMESPACE, SERVICE_NAME } from '../core/metrics.ts';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient, type DynamoDBClient as DynamoDBClientType } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { createIngestHandler, IngestMetric } from '../handlers/ingest.ts';
import { createEventTable, createQueues } from '../local/provision.ts';
import { loadDefinitions } from '../local/template.ts';
import { createBaselineTable, runBaseline, type PathResult } from './baseline.ts';
import { emptyCounts, meterCapacity, type CapacityCounts } from './capacity.ts';
import { measureCeiling, type CeilingResult } from './ceiling.ts';
import { driveHandlers, type ConsumerRequests, type SqsHandler } from './direct.ts';
import { runEndToEnd } from './e2e.ts';
import { BENCH_CREDENTIALS, BENCH_REGION, onFreshEngine, type Engine } from './engines.ts';
import { writeHistory } from './history.ts';
import type { Preset } from './presets.ts';
import { checkStored, projectResult } from './project-path.ts';
import { benchSubscription, type SubscriptionBenchResult } from './subscription.ts';
import { UncheckedMemoryAppender } from './unchecked-memory-appender.ts';
import type { Workload, WorkloadMessage } from './workload.ts';

/** What every path of one bench run shares. */
export interface BenchContext {
  /** A prefix for table and queue names, unique to this run. */
  readonly run: string;
  readonly sqs: SQSClient;
  /** SQS requests made on `sqs` so far, by operation (bench/capacity.ts, meterRequests). */
  readonly sqsRequests: Readonly<Record<string, number>>;
  readonly sqsEndpoint: string;
  /** Dead-letter queues for the direct mode's handlers (nothing is rejected in these workloads). */
  readonly dlq: { readonly standard: string; readonly fifo: string };
  readonly mode: 'direct' | 'e2e';
  /** Conditional puts that warm up every fresh engine before anything is timed. */
  readonly warmUpPuts: number;
  readonly log: (line: string) => void;
}

/**
 * The handler's metrics, counted as they are added: `AppendConflicts` is the store's
 * onConflict callback summed per invocation by the handler (handlers/ingest.ts). Publishing
 * stays off (POWERTOOLS_METRICS_DISABLED).
 */
class CountingMetrics extends Metrics {
  public readonly totals: Record<string, number> = {};

  public override addMetric(...args: Parameters<Metrics['addMetric']>): this {
    const [name, , value] = args;
    this.totals[name] = (this.totals[name] ?? 0) + value;
    return super.addMetric(...args);
  }
}

/** The original design's write path on the workload's standard order, on an engine of its own. */
export async function runBaselinePath(context: BenchContext, preset: Preset, workload: Workload): Promise<PathResult> {
  const result = await onFreshEngine(context.run, workload, context.warmUpPuts, async ({ client, admin }) => {
    const tableName = `${context.run}-${preset.name}-baseline`;
    await createBaselineTable(admin, tableName);
    return runBaseline(client(), admin, tableName, workload, {
      concurrency: preset.containers,
      batchSize: preset.batchSize,
    });
  });
  context.log(
    `  baseline: ${result.itemsStored} items for ${workload.uniqueEvents} events in ${(result.wallMs / 1000).toFixed(1)} s`,
  );
  return result;
}

interface Driven {
  readonly wallMs: number;
  readonly invocations: number;
  readonly invocationMsTotal: number;
  readonly retriedRecords: number;
  readonly handlerErrors: number;
  readonly cpuMicros: number;
  readonly exhausted: readonly string[];
  readonly containersStarted?: number;
  readonly consumerRequests: ConsumerRequests;
  readonly sentAt: ReadonlyMap<string, number>;
}

/** Lambda-shaped batches handed to the containers by the bench itself (bench/direct.ts). */
async function driveDirect(
  context: BenchContext,
  preset: Preset,
  fifo: boolean,
  messages: readonly WorkloadMessage[],
  newContainer: (dlqUrl: string) => SqsHandler,
  counts: CapacityCounts,
): Promise<Driven> {
  const ran = await driveHandlers(messages, {
    fifo,
    concurrency: preset.containers,
    batchSize: Math.min(preset.batchSize, fifo ? 10 : preset.batchSize),
    newContainer: () => newContainer(fifo ? context.dlq.fifo : context.dlq.standard),
    containerInvocations: preset.containerInvocations,
    progressEvery: Math.max(2000, Math.round(messages.length / 5)),
    onProgress: (done, ms) =>
      context.log(
        `    ${fifo ? 'FIFO' : 'standard'}: ${done} records acknowledged, ${((done / ms) * 1000).toFixed(0)}/s so far; ${JSON.stringify(counts.requests)}`,
      ),
  });
  return { ...ran, sentAt: ran.handedAt };
}

/** The whole path through fauxqs queues made from the stack's template and the local mode's pollers (bench/e2e.ts). */
async function driveEndToEnd(
  context: BenchContext,
  preset: Preset,
  fifo: boolean,
  messages: readonly WorkloadMessage[],
  newContainer: (dlqUrl: string) => SqsHandler,
): Promise<Driven> {
  const definitions = await loadDefinitions(fifo ? 'fifo' : 'standard');
  const queues = await createQueues(context.sqs, context.sqsEndpoint, definitions, {
    name: `${context.run}-${preset.name}-${fifo ? 'fifo' : 'standard'}`,
    visibilityTimeout: 20,
  });
  const handlers = Array.from({ length: preset.containers }, () => newContainer(queues.deadLetterQueueUrl));
  const before = { ...context.sqsRequests };
  const ran = await runEndToEnd(messages, {
    sqs: context.sqs,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    fifo,
    handlers,
    batchSize: Math.min(preset.batchSize, fifo ? 10 : preset.batchSize),
    producers: 4,
    timeoutMs: 30 * 60_000,
  });
  const made = (operations: readonly string[]) =>
    operations.reduce((sum, operation) => sum + (context.sqsRequests[operation] ?? 0) - (before[operation] ?? 0), 0);
  return {
    ...ran,
    exhausted: [],
    containersStarted: preset.containers,
    // What the pollers really asked fauxqs, empty long polls included.
    consumerRequests: { receives: made(['ReceiveMessage']), deletes: made(['DeleteMessageBatch', 'DeleteMessage']) },
  };
}

function pathNotes(mode: BenchContext['mode'], driven: Driven, historyItems: number): string[] {
  return [
    ...(mode === 'e2e'
      ? [
          "end to end: SendMessageBatch to fauxqs -> the local mode's pollers -> the handler; queue made from the stack's template; containers stay warm",
          "latency: SendMessageBatch called -> the item's RecordedAt",
        ]
      : [
          'driven directly: Lambda-shaped batches from an in-memory SQS model, no queue server',
          "latency: batch handed to the handler -> the item's RecordedAt",
        ]),
    ...(historyItems > 0 ? [`${historyItems} history items written before the run (not counted)`] : []),
    ...(driven.exhausted.length > 0
      ? [`${driven.exhausted.length} records failed 5 times (would go to the DLQ without a reason)`]
      : []),
    ...(driven.handlerErrors > 0 ? [`${driven.handlerErrors} invocations threw`] : []),
  ];
}

/**
 * This project's path (standard or FIFO) on an engine of its own: history first, then the run,
 * then the table checked. `groupSize`: the groups workload's path (1 for its single events).
 */
export async function runProjectPath(
  context: BenchContext,
  preset: Preset,
  workload: Workload,
  fifo: boolean,
  groupSize?: number,
): Promise<PathResult & { gapless: boolean }> {
  const shape = groupSize === undefined ? '' : groupSize === 1 ? ', single events' : `, groups of ${groupSize}`;
  const label = `${fifo ? 'this project, FIFO' : 'this project, standard'}${shape}`;
  return onFreshEngine(context.run, workload, context.warmUpPuts, async (engine: Engine) => {
    const tableName = `${context.run}-${preset.name}-${fifo ? 'fifo' : 'standard'}${groupSize === undefined ? '' : `-${groupSize}`}`;
    await createEventTable(engine.admin, tableName);
    const historyItems = await writeHistory(engine.admin, tableName, workload.options, preset.historyPerStream, fifo);
    if (historyItems > 0) context.log(`    ${historyItems} history items written`);
    const client = engine.client();
    const counts = meterCapacity(client, emptyCounts());
    const metrics = new CountingMetrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
    const newContainer = (dlqUrl: string) =>
      createIngestHandler({
        dynamo: client,
        sqs: context.sqs,
        tableName,
        dlqUrl,
        cacheSize: preset.cacheSize,
        metrics,
      });
    const messages = fifo ? workload.fifoOrder : workload.standardOrder;
    const driven =
      context.mode === 'e2e'
        ? await driveEndToEnd(context, preset, fifo, messages, newContainer)
        : await driveDirect(context, preset, fifo, messages, newContainer, counts);
    const check = await checkStored(engine.admin, tableName, messages, driven.sentAt, {
      perStream: preset.historyPerStream,
      streamIds: workload.streamIds,
    });
    context.log(
      `  ${label}: ${check.distinctEvents} distinct events stored, ${check.duplicatesStored} duplicates, ${check.missing} missing, ` +
        `gapless ${check.gapless}, in ${(driven.wallMs / 1000).toFixed(1)} s`,
    );
    const conflicts = metrics.totals[IngestMetric.appendConflicts] ?? 0;
    const result = projectResult(
      label,
      workload,
      messages,
      check,
      counts,
      driven,
      conflicts,
      pathNotes(context.mode, driven, historyItems),
    );
    return { ...result, gapless: check.gapless };
  });
}

/**
 * The raw ceiling: conditional puts alone at 2.5 puts per container in flight (a batch of 10
 * touches a few streams at once), on a fresh engine. One level only: each costs an engine
 * start and a warm-up, and on a shared machine the levels were within noise of each other.
 */
export async function measureCeilings(
  context: BenchContext,
  preset: Preset,
  workload: Workload,
): Promise<CeilingResult[]> {
  const ceilings: CeilingResult[] = [];
  for (const level of [Math.ceil((preset.containers * preset.batchSize) / 4)]) {
    ceilings.push(
      await onFreshEngine(context.run, workload, context.warmUpPuts, async ({ client, admin }) => {
        const tableName = `${context.run}-ceiling-${level}`;
        await createEventTable(admin, tableName);
        return measureCeiling(client(), tableName, workload, level, context.warmUpPuts);
      }),
    );
  }
  context.log(
    `  raw ceiling: ${ceilings.map((c) => `${c.eventsPerSecond.toFixed(0)}/s with ${c.inFlight} in flight`).join(', ')}`,
  );
  return ceilings;
}

/** Handler CPU per event without the SDK: the same handler on an in-memory appender, one lane. */
export async function measureHandlerCpu(context: BenchContext, workload: Workload, batchSize: number): Promise<number> {
  const unusedClient: DynamoDBClientType = new DynamoDBClient({
    endpoint: 'http://127.0.0.1:9',
    region: BENCH_REGION,
    credentials: BENCH_CREDENTIALS,
    maxAttempts: 1,
  });
  try {
    const ran = await driveHandlers(workload.standardOrder, {
      fifo: false,
      concurrency: 1,
      batchSize,
      newContainer: () =>
        createIngestHandler({
          dynamo: unusedClient,
          sqs: context.sqs,
          tableName: 'unused',
          dlqUrl: context.dlq.standard,
          store: new UncheckedMemoryAppender(),
        }),
    });
    const micros = ran.cpuMicros / workload.uniqueEvents;
    context.log(`  handler CPU with an in-memory appender: ${micros.toFixed(0)} µs per event`);
    return micros;
  } finally {
    unusedClient.destroy();
  }
}

export interface SubscriptionFigures {
  readonly spread: SubscriptionBenchResult;
  readonly grouped: SubscriptionBenchResult;
}

/** A subscription's own cost per delivered event (README "Subscriptions"): two stream mixes. */
export async function runSubscriptionBench(context: BenchContext, workload: Workload): Promise<SubscriptionFigures> {
  const figures = await onFreshEngine(context.run, workload, context.warmUpPuts, async ({ client }) => ({
    spread: await benchSubscription(client(), { streams: 100, eventsPerStream: 10, run: `${context.run}-spread` }),
    grouped: await benchSubscription(client(), { streams: 10, eventsPerStream: 100, run: `${context.run}-grouped` }),
  }));
  for (const [mix, result] of Object.entries(figures)) {
    const { live, replay, batchSize } = result;
    context.log(
      `  subscription (${mix}: ${live.events} events, batches of ${batchSize}): live ${live.readUnitsPerEvent.toFixed(3)} RU + ${live.writeUnitsPerEvent.toFixed(3)} WU per event; ` +
        `replay ${replay.readUnitsPerEvent.toFixed(3)} RU + ${replay.writeUnitsPerEvent.toFixed(3)} WU per event`,
    );
  }
  return figures;
}
