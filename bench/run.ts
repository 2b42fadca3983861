/**
 * `npm run bench`: workloads that model Lambda (bench/presets.ts), each through the original
 * design's write path and this project's (standard and FIFO) on the local engines; prints the
 * figures with their targets, writes bench/results.json and, with `--docs`, regenerates
 * docs/PERFORMANCE.md and the README's figures from it.
 */
import { METRICS_NAMESPACE, SERVICE_NAME } from '../core/metrics.ts';
import { CommanderError } from 'commander';
import { resolve } from 'node:path';
// Types only (erased): the modules themselves are imported below, once the environment is set.
import type { PathFigures } from './figures.ts';
import type { BenchOptions } from './options.ts';
import type { BenchContext } from './paths.ts';
import type { PresetName } from './presets.ts';
import type { BenchResults, WorkloadResult } from './report.ts';

// The handler's Powertools read these when built: quiet logs, no EMF output, no X-Ray.
process.env['POWERTOOLS_LOG_LEVEL'] ??= 'ERROR';
process.env['POWERTOOLS_METRICS_DISABLED'] ??= 'true';
process.env['POWERTOOLS_TRACE_ENABLED'] ??= 'false';
process.env['POWERTOOLS_SERVICE_NAME'] ??= SERVICE_NAME;
process.env['POWERTOOLS_METRICS_NAMESPACE'] ??= METRICS_NAMESPACE;
process.env['AWS_EC2_METADATA_DISABLED'] ??= 'true';
process.env['DDB_LOCAL_TELEMETRY'] = '0';

// Imported after the environment is set: the handler's modules read it when loaded.
const { CreateQueueCommand, SQSClient } = await import('@aws-sdk/client-sqs');
const { startSqsLocal, localQueueUrl } = await import('../local/engines/sqs-local.ts');
const { measureBundle } = await import('./bundle.ts');
const { writeDocs } = await import('./docs.ts');
const { meterRequests } = await import('./e2e.ts');
const { BENCH_CREDENTIALS, BENCH_REGION } = await import('./engines.ts');
const { checkTargets, figuresOf, oneStreamFigures } = await import('./figures.ts');
const { parseBenchOptions } = await import('./options.ts');
const paths = await import('./paths.ts');
const { preset } = await import('./presets.ts');
const { mergeResults, printResults, readResults, writeResults } = await import('./report.ts');
const { ASSUMED_DYNAMODB_PUT_MS, PARTITION_WRITES_PER_SECOND } = await import('./targets.ts');
const { generateGroupWorkload, generateWorkload } = await import('./workload.ts');

const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

/** One workload: the original design, then this project's modes, each on a fresh engine. */
async function runWorkload(context: BenchContext, options: BenchOptions, name: PresetName): Promise<WorkloadResult> {
  const started = performance.now();
  const spec = preset(name, options.scale, {
    ...(options.containerInvocations !== undefined ? { containerInvocations: options.containerInvocations } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
  });
  // The groups workload: the same events one per message (size 1) and in groups of each size.
  const sizes = spec.groupSizes === undefined ? undefined : [1, ...spec.groupSizes];
  const workload = sizes === undefined ? generateWorkload(spec.workload) : generateGroupWorkload(spec.workload, 1);
  log(
    `${name}: ${workload.standardOrder.length} messages, ${workload.uniqueEvents} distinct events over ${spec.workload.streams} streams, ${spec.containers} containers` +
      (sizes === undefined ? '' : `; the same events one per message and in groups of ${sizes.slice(1).join(', ')}`),
  );
  const ceilings = name === 'hot' ? await paths.measureCeilings(context, spec, workload) : undefined;
  const columns: PathFigures[] = [];
  // The original design has no groups: the groups workload compares with single events instead.
  if (options.paths.has('baseline') && sizes === undefined)
    columns.push(figuresOf(await paths.runBaselinePath(context, spec, workload), 'baseline', undefined));
  for (const mode of spec.modes.filter((candidate) => options.paths.has(candidate))) {
    if (sizes === undefined) {
      const ran = await paths.runProjectPath(context, spec, workload, mode === 'fifo');
      columns.push(figuresOf(ran, mode, ran.gapless));
      continue;
    }
    for (const size of sizes) {
      const sized = size === 1 ? workload : generateGroupWorkload(spec.workload, size);
      const ran = await paths.runProjectPath(context, spec, sized, mode === 'fifo', size);
      columns.push(figuresOf(ran, mode, ran.gapless, size));
    }
  }
  const fifo = columns.find((column) => column.mode === 'fifo');
  return {
    name,
    description: spec.description,
    containers: spec.containers,
    containerInvocations: Number.isFinite(spec.containerInvocations) ? spec.containerInvocations : null,
    batchSize: spec.batchSize,
    cacheSize: spec.cacheSize,
    historyPerStream: spec.historyPerStream,
    workload: {
      messages: workload.standardOrder.length,
      uniqueEvents: workload.uniqueEvents,
      streams: spec.workload.streams,
      distinctStreamSeconds: workload.distinctStreamSeconds,
      largestItemBytes: workload.largestItemBytes,
      duplicateShare: spec.workload.duplicateShare,
      sameSecondShare: spec.workload.sameSecondShare,
      seed: spec.workload.seed,
    },
    columns,
    checks: columns.flatMap((column) => checkTargets(name, column, columns)),
    ...(ceilings ? { ceilings } : {}),
    ...(name === 'one-stream' && fifo
      ? { oneStream: oneStreamFigures(fifo, ASSUMED_DYNAMODB_PUT_MS, PARTITION_WRITES_PER_SECOND) }
      : {}),
    wallSeconds: (performance.now() - started) / 1000,
  };
}

/** Figures measured once per run: handler CPU without the SDK, a subscription's cost, the bundle. */
async function runExtras(context: BenchContext, options: BenchOptions): Promise<Partial<BenchResults>> {
  const workload = generateWorkload(preset('hot', options.scale).workload);
  const memoryCpuMicrosPerEvent = await paths.measureHandlerCpu(context, workload, 10);
  const subscription = options.paths.has('subscription')
    ? await paths.runSubscriptionBench(context, workload)
    : undefined;
  const bundle = options.skipBundle ? undefined : await measureBundle('handlers/ingest.ts');
  return { memoryCpuMicrosPerEvent, ...(subscription ? { subscription } : {}), ...(bundle ? { bundle } : {}) };
}

async function runBench(options: BenchOptions): Promise<BenchResults> {
  const started = performance.now();
  const sqsServer = await startSqsLocal();
  const sqs = new SQSClient({ endpoint: sqsServer.endpoint, region: BENCH_REGION, credentials: BENCH_CREDENTIALS });
  const run = `b${Date.now().toString(36)}`;
  const queue = async (name: string, fifo: boolean) => {
    const created = await sqs.send(
      new CreateQueueCommand({
        QueueName: fifo ? `${name}.fifo` : name,
        Attributes: fifo ? { FifoQueue: 'true' } : {},
      }),
    );
    return localQueueUrl(created.QueueUrl!, sqsServer.endpoint);
  };
  try {
    const context: BenchContext = {
      run,
      sqs,
      sqsRequests: meterRequests(sqs),
      sqsEndpoint: sqsServer.endpoint,
      dlq: { standard: await queue(`${run}-dlq`, false), fifo: await queue(`${run}-dlq`, true) },
      mode: options.mode,
      warmUpPuts: Math.max(500, Math.round(5000 * options.scale)),
      log,
    };
    const workloads: WorkloadResult[] = [];
    for (const name of options.workloads) workloads.push(await runWorkload(context, options, name));
    // A merge keeps the once-per-run figures of the file it merges into.
    const extras = options.merge ? {} : await runExtras(context, options);
    return {
      recordedAt: new Date().toISOString(),
      command: options.command,
      scale: options.scale,
      mode: options.mode,
      wallMinutes: (performance.now() - started) / 60_000,
      workloads,
      ...extras,
    };
  } finally {
    sqs.destroy();
    await sqsServer.stop();
  }
}

async function main(): Promise<void> {
  const options = parseBenchOptions(process.argv.slice(2));
  const out = resolve(options.out);
  if (options.docsOnly) {
    log(`written: ${writeDocs(readResults(out), process.cwd()).join(', ')}`);
    return;
  }
  // Read before the run: a merge into a file that is missing fails at once, not after it.
  const base = options.merge ? readResults(out) : undefined;
  const ran = await runBench(options);
  const results = base === undefined ? ran : mergeResults(base, ran);
  writeResults(out, results);
  log(`results written to ${options.out}`);
  printResults(readResults(out));
  if (options.docs) log(`written: ${writeDocs(readResults(out), process.cwd()).join(', ')}`);
}

await main().catch((error: unknown) => {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
