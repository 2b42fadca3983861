/**
 * `npm run bench`: the original design's write path against this project's (standard and
 * FIFO) on one generated workload, on the local engines. Prints a table and writes
 * bench/results.json. See bench/README-performance.md.
 */
import { Command, InvalidArgumentError } from 'commander';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

// The handler's Powertools read these when built: quiet logs, no EMF output, no X-Ray.
process.env['POWERTOOLS_LOG_LEVEL'] ??= 'ERROR';
process.env['POWERTOOLS_METRICS_DISABLED'] ??= 'true';
process.env['POWERTOOLS_TRACE_ENABLED'] ??= 'false';
process.env['POWERTOOLS_SERVICE_NAME'] ??= 'event-store';
process.env['POWERTOOLS_METRICS_NAMESPACE'] ??= 'EventStore';
process.env['AWS_EC2_METADATA_DISABLED'] ??= 'true';
process.env['DDB_LOCAL_TELEMETRY'] = '0';

const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
const { SQSClient } = await import('@aws-sdk/client-sqs');
const { createIngestHandler } = await import('../handlers/ingest.ts');
const { startDynamoDbLocal } = await import('../local/engines/dynamodb-local.ts');
const { startSqsLocal } = await import('../local/engines/sqs-local.ts');
const { createEventTable, createQueues } = await import('../local/provision.ts');
const { loadDefinitions } = await import('../local/template.ts');
const { runEndToEnd } = await import('./e2e.ts');
const { createBaselineTable, runBaseline } = await import('./baseline.ts');
const { measureBundle } = await import('./bundle.ts');
const { emptyCounts, meterCapacity } = await import('./capacity.ts');
const { measureCeiling } = await import('./ceiling.ts');
const { driveHandlers } = await import('./direct.ts');
const { MemoryEventStore } = await import('./memory-store.ts');
const { checkStored, projectResult } = await import('./project-path.ts');
const { bundleLines, figuresOf, markdownTable, Prices } = await import('./report.ts');
const { defaultWorkload, generateWorkload } = await import('./workload.ts');
const { CreateQueueCommand } = await import('@aws-sdk/client-sqs');
const { localQueueUrl } = await import('../local/engines/sqs-local.ts');

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError(`${value} is not a whole number >= 1`);
  return parsed;
}

function share(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed >= 1) throw new InvalidArgumentError(`${value} is not a share from 0 to under 1`);
  return parsed;
}

const program = new Command('bench')
  .description('Compare the original design with this project (standard and FIFO) on one generated workload, on the local engines')
  .option('--events <n>', 'messages sent, redeliveries included', positiveInt, defaultWorkload.events)
  .option('--streams <m>', 'streams (entities) the events are spread over', positiveInt, defaultWorkload.streams)
  .option('--same-second <share>', 'share of events in the same second as their stream\'s previous one', share, defaultWorkload.sameSecondShare)
  .option('--duplicates <share>', 'share of messages that are redeliveries', share, defaultWorkload.duplicateShare)
  .option('--concurrency <n>', 'parallel consumers ("containers", each with its own store cache)', positiveInt, 4)
  .option('--batch-size <n>', 'records per invocation (FIFO at most 10)', positiveInt, 10)
  .option('--seed <n>', 'workload seed', positiveInt, defaultWorkload.seed)
  .option('--mode <mode>', 'direct: handler driven with Lambda-shaped batches, no queue server; e2e: SQS -> pollers -> handler on the local engines', 'direct')
  .option('--paths <list>', 'which paths to run, comma-separated: baseline, standard, fifo', 'baseline,standard,fifo')
  .option('--skip-bundle', 'do not build and time the ingest bundle')
  .option('--out <file>', 'where to write the results', 'bench/results.json')
  .parse();

const options = program.opts<{
  events: number;
  streams: number;
  sameSecond: number;
  duplicates: number;
  concurrency: number;
  batchSize: number;
  seed: number;
  mode: string;
  paths: string;
  skipBundle?: boolean;
  out: string;
}>();
if (options.mode !== 'direct' && options.mode !== 'e2e') {
  program.error(`--mode: ${JSON.stringify(options.mode)} is not one of direct, e2e`);
}
const endToEnd = options.mode === 'e2e';
const paths = new Set(options.paths.split(',').map((path) => path.trim()));
for (const path of paths) {
  if (!['baseline', 'standard', 'fifo'].includes(path)) program.error(`--paths: ${JSON.stringify(path)} is not one of baseline, standard, fifo`);
}

const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

const workload = generateWorkload({
  ...defaultWorkload,
  events: options.events,
  streams: options.streams,
  sameSecondShare: options.sameSecond,
  duplicateShare: options.duplicates,
  seed: options.seed,
});
log(
  `workload: ${workload.standardOrder.length} messages, ${workload.uniqueEvents} distinct events over ${options.streams} streams, ` +
    `${workload.uniqueEvents - workload.distinctStreamSeconds} share a stream and a second with another, largest item ${workload.largestItemBytes} B, seed ${options.seed}`,
);

const sqs = await startSqsLocal();
const sqsClient = new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials });
const run = `b${Date.now().toString(36)}`;
const inFlight = options.concurrency * options.batchSize;

async function queue(name: string, fifo: boolean): Promise<string> {
  const created = await sqsClient.send(
    new CreateQueueCommand({ QueueName: fifo ? `${name}.fifo` : name, Attributes: fifo ? { FifoQueue: 'true' } : {} }),
  );
  return localQueueUrl(created.QueueUrl!, sqs.endpoint);
}

interface Engine {
  /** A new client on this engine (destroyed with the engine). */
  client(): InstanceType<typeof DynamoDBClient>;
  readonly admin: InstanceType<typeof DynamoDBClient>;
}

/**
 * Run `measure` on a DynamoDB Local of its own, warmed up first: DynamoDB Local slows down as
 * its in-memory database and stream records grow, so no path pays for another's history.
 */
async function onFreshEngine<T>(measure: (engine: Engine) => Promise<T>): Promise<T> {
  const dynamo = await startDynamoDbLocal();
  // Interrupted (Ctrl-C, kill): take this engine's Java process along.
  const killJava = () => {
    if (dynamo.pid !== undefined) process.kill(dynamo.pid, 'SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', killJava);
  process.once('SIGTERM', killJava);
  const made: InstanceType<typeof DynamoDBClient>[] = [];
  const client = () => {
    const created = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials, maxAttempts: 5 });
    made.push(created);
    return created;
  };
  try {
    const admin = client();
    const warmUp = `${run}-warmup`;
    await createEventTable(admin, warmUp);
    await measureCeiling(client(), warmUp, workload, inFlight, 5000);
    return await measure({ client, admin });
  } finally {
    for (const created of made) created.destroy();
    process.off('SIGINT', killJava);
    process.off('SIGTERM', killJava);
    await dynamo.stop();
  }
}

try {
  const dlq = { standard: await queue(`${run}-dlq`, false), fifo: await queue(`${run}-dlq`, true) };
  log(`fauxqs ${sqs.endpoint}; every path below runs on a fresh, warmed-up DynamoDB Local, tables made from the stack's template`);

  // The raw ceiling: conditional puts alone, at 1, 2.5 and 10 puts per consumer in flight, each
  // on its own fresh engine; the best is the denominator (DynamoDB Local can slow down with
  // more requests in flight, so the most parallel is not always the fastest).
  const ceilings = [];
  for (const level of [...new Set([options.concurrency, Math.ceil(inFlight / 4), inFlight])]) {
    ceilings.push(
      await onFreshEngine(async ({ client, admin }) => {
        await createEventTable(admin, `${run}-ceiling-${level}`);
        return measureCeiling(client(), `${run}-ceiling-${level}`, workload, level, 5000);
      }),
    );
  }
  const ceiling = ceilings.reduce((best, next) => (next.eventsPerSecond > best.eventsPerSecond ? next : best));
  log(`raw ceiling: ${ceilings.map((c) => `${c.eventsPerSecond.toFixed(0)}/s with ${c.inFlight} in flight`).join(', ')}`);

  const baseline = paths.has('baseline')
    ? await onFreshEngine(async ({ client, admin }) => {
        await createBaselineTable(admin, `${run}-baseline`);
        return runBaseline(client(), admin, `${run}-baseline`, workload, { concurrency: options.concurrency, batchSize: options.batchSize });
      })
    : undefined;
  if (baseline) log(`baseline: ${baseline.itemsStored} items for ${workload.uniqueEvents} events in ${(baseline.wallMs / 1000).toFixed(1)} s`);

  const projectRuns = [];
  for (const fifo of [false, true].filter((mode) => paths.has(mode ? 'fifo' : 'standard'))) {
    projectRuns.push(
      await onFreshEngine(async ({ client: newClient, admin }) => {
        const client = newClient();
        const counts = meterCapacity(client, emptyCounts());
        const tableName = `${run}-${fifo ? 'fifo' : 'standard'}`;
        await createEventTable(admin, tableName);
        const messages = fifo ? workload.fifoOrder : workload.standardOrder;
        const batchSize = Math.min(options.batchSize, fifo ? 10 : options.batchSize);
        let driven: {
          wallMs: number;
          invocations: number;
          invocationMsTotal: number;
          retriedRecords: number;
          handlerErrors: number;
          cpuMicros: number;
          exhausted: readonly string[];
        };
        let sentAt: ReadonlyMap<string, number>;
        if (endToEnd) {
          const definitions = await loadDefinitions(fifo ? 'fifo' : 'standard');
          const queues = await createQueues(sqsClient, sqs.endpoint, definitions, {
            name: `${run}-${fifo ? 'fifo' : 'standard'}`,
            visibilityTimeout: 20,
          });
          const handlers = Array.from({ length: options.concurrency }, () =>
            createIngestHandler({ dynamo: client, sqs: sqsClient, tableName, dlqUrl: queues.deadLetterQueueUrl }),
          );
          const ran = await runEndToEnd(messages, {
            sqs: sqsClient,
            queueUrl: queues.queueUrl,
            queueArn: queues.queueArn,
            fifo,
            handlers,
            batchSize,
            producers: 4,
            timeoutMs: 30 * 60_000,
          });
          driven = { ...ran, exhausted: [] };
          sentAt = ran.sentAt;
        } else {
          const handlers = Array.from({ length: options.concurrency }, () =>
            createIngestHandler({ dynamo: client, sqs: sqsClient, tableName, dlqUrl: fifo ? dlq.fifo : dlq.standard }),
          );
          const ran = await driveHandlers(messages, {
            fifo,
            concurrency: options.concurrency,
            batchSize,
            handlers,
            onProgress: (done, ms) =>
              log(`  ${fifo ? 'FIFO' : 'standard'}: ${done} records acknowledged, ${((done / ms) * 1000).toFixed(0)}/s so far; ${JSON.stringify(counts.requests)}`),
          });
          driven = ran;
          sentAt = ran.handedAt;
        }
        const check = await checkStored(admin, tableName, messages, sentAt);
        const label = fifo ? 'this project, FIFO' : 'this project, standard';
        const notes = [
          ...(endToEnd
            ? [
                "end to end: SendMessageBatch to fauxqs -> the local mode's pollers -> the handler; queue made from the stack's template",
                "latency: SendMessageBatch called -> the item's RecordedAt",
              ]
            : [
                'driven directly: Lambda-shaped batches from an in-memory SQS model, no queue server',
                "latency: batch handed to the handler -> the item's RecordedAt",
              ]),
          "handler CPU: this process's CPU during the run / events, against DynamoDB Local (SDK marshalling and HTTP included, the bench driver too)",
          ...(driven.exhausted.length > 0 ? [`${driven.exhausted.length} records failed 5 times (would go to the DLQ without a reason)`] : []),
          ...(driven.handlerErrors > 0 ? [`${driven.handlerErrors} invocations threw`] : []),
        ];
        log(`${label}: ${check.distinctEvents} distinct events stored, ${check.duplicatesStored} duplicates, ${check.missing} missing, in ${(driven.wallMs / 1000).toFixed(1)} s`);
        return { fifo, result: projectResult(label, workload, messages, check, counts, driven, notes), gapless: check.gapless };
      }),
    );
  }

  // Handler CPU per event without the SDK: the same handler on an in-memory store, one lane.
  const unusedClient = new DynamoDBClient({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials, maxAttempts: 1 });
  const memoryHandler = createIngestHandler({
    dynamo: unusedClient,
    sqs: sqsClient,
    tableName: 'unused',
    dlqUrl: dlq.standard,
    store: new MemoryEventStore(),
  });
  const memoryRun = await driveHandlers(workload.standardOrder, {
    fifo: false,
    concurrency: 1,
    batchSize: options.batchSize,
    handlers: [memoryHandler],
  });
  unusedClient.destroy();
  const memoryCpuMicrosPerEvent = memoryRun.cpuMicros / workload.uniqueEvents;
  log(`handler CPU with an in-memory store: ${memoryCpuMicrosPerEvent.toFixed(0)} µs per event`);

  const bundle = options.skipBundle ? undefined : await measureBundle('handlers/ingest.ts');
  if (bundle) log(`bundle: ${(bundle.bytes / 1024).toFixed(0)} KB, cold import p50 ${bundle.coldImportMsP50.toFixed(0)} ms`);

  // The stack's default memorySize (infra/config.ts): 512 MB.
  const lambdaMemoryGb = 0.5;
  const sqsRequestsPerEvent = 1 + 2 / options.batchSize;
  const columns = [
    ...(baseline ? [figuresOf(baseline, ceiling, { sqsRequestsPerEvent, lambdaMemoryGb, fifo: false }, undefined)] : []),
    ...projectRuns.map(({ fifo, result, gapless }) => figuresOf(result, ceiling, { sqsRequestsPerEvent, lambdaMemoryGb, fifo }, gapless)),
  ];
  const table = markdownTable(columns, new Set(['this project, FIFO']), endToEnd ? 'e2e' : 'direct');
  const assumptions = [
    `- workload: ${options.events} messages (${workload.uniqueEvents} distinct events, ${options.duplicates * 100}% redeliveries) over ${options.streams} streams, ${options.sameSecond * 100}% of events in the same second as their stream's previous one, items <= ${workload.largestItemBytes} B; seed ${options.seed}`,
    `- ${options.concurrency} consumers x batches of ${options.batchSize}; raw ceiling (conditional PutItem alone, 5,000 puts after 5,000 to warm up, a fresh engine each): ${ceilings.map((c) => `${c.eventsPerSecond.toFixed(0)}/s with ${c.inFlight} in flight`).join(', ')}; the best is the table's denominator`,
    `- handler CPU per event with an in-memory store (no SDK): ${memoryCpuMicrosPerEvent.toFixed(0)} µs`,
    bundleLines(bundle),
    `- cost per million events: DynamoDB on demand $${Prices.dynamoWritePerMillion}/M write units, $${Prices.dynamoReadPerMillion}/M read units; SQS $${Prices.sqsStandardPerMillion}/M (standard) or $${Prices.sqsFifoPerMillion}/M (FIFO) requests, ${sqsRequestsPerEvent.toFixed(2)} per event (1 send, receive and delete per batch of ${options.batchSize}); Lambda arm64 ${lambdaMemoryGb * 1024} MB at $${Prices.lambdaArmPerGbSecond}/GB-s with the mean invocation time measured here, $${Prices.lambdaPerMillionRequests}/M invocations`,
  ].join('\n');
  console.log(`\n${table}\n\n${assumptions}\n`);
  for (const column of columns) {
    const cost = column.costPerMillionEvents;
    console.log(
      `${column.label}: cost per million events $${cost.total.toFixed(3)} (DynamoDB $${cost.dynamoDb.toFixed(3)}, SQS $${cost.sqs.toFixed(3)}, Lambda $${cost.lambda.toFixed(3)}); requests ${JSON.stringify(column.requestsByOperation)}`,
    );
  }
  writeFileSync(
    resolve(options.out),
    `${JSON.stringify(
      {
        recordedAt: new Date().toISOString(),
        options,
        workload: {
          messages: workload.standardOrder.length,
          uniqueEvents: workload.uniqueEvents,
          distinctStreamSeconds: workload.distinctStreamSeconds,
          largestItemBytes: workload.largestItemBytes,
        },
        ceiling,
        ceilings,
        columns,
        memoryCpuMicrosPerEvent,
        bundle,
        table,
      },
      null,
      2,
    )}\n`,
  );
  log(`results written to ${options.out}`);
} finally {
  sqsClient.destroy();
  await sqs.stop();
}
