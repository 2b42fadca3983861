/**
 * The bench's output: per-workload tables with a target and a met/missed column, and the
 * documents regenerated from bench/results.json (docs/PERFORMANCE.md, the figures of the
 * README's "Performance and cost" section).
 */
import type { QueueMode } from '../core/queue-mode.ts';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { BundleResult } from './bundle.ts';
import type { CeilingResult } from './ceiling.ts';
import { checkTargets, type OneStreamFigures, type PathFigures, type TargetCheck } from './figures.ts';
import type { SubscriptionFigures } from './paths.ts';
import type { PresetName } from './presets.ts';
import { LAMBDA_MEMORY_GB, MAX_COST_OVER_FLOOR, Prices, SubscriptionWriteUnitTargets } from './targets.ts';

/** One workload's figures, as bench/results.json keeps them. */
export interface WorkloadResult {
  readonly name: PresetName;
  readonly description: string;
  readonly containers: number;
  /** Null: containers stay warm for the whole run. */
  readonly containerInvocations: number | null;
  readonly batchSize: number;
  readonly cacheSize: number;
  readonly historyPerStream: number;
  readonly workload: {
    readonly messages: number;
    readonly uniqueEvents: number;
    readonly streams: number;
    readonly distinctStreamSeconds: number;
    readonly largestItemBytes: number;
    readonly duplicateShare: number;
    readonly sameSecondShare: number;
    readonly seed: number;
  };
  readonly columns: readonly PathFigures[];
  readonly checks: readonly TargetCheck[];
  readonly ceilings?: readonly CeilingResult[];
  readonly oneStream?: OneStreamFigures;
  readonly wallSeconds: number;
  /**
   * Set when this workload was measured in another run than the file's (`--merge`): that
   * run's time, command and scale. Undefined: the file's run.
   */
  readonly run?: { readonly recordedAt: string; readonly command: string; readonly scale: number };
}

export interface BenchResults {
  readonly recordedAt: string;
  readonly command: string;
  readonly scale: number;
  readonly mode: 'direct' | 'e2e';
  readonly wallMinutes: number;
  readonly workloads: readonly WorkloadResult[];
  readonly memoryCpuMicrosPerEvent?: number;
  readonly bundle?: BundleResult;
  readonly subscription?: SubscriptionFigures;
}

const fixed = (value: number, digits = 2) => value.toFixed(digits);
const count = (value: number) => Math.round(value).toLocaleString('en-US');
const money = (value: number) => `$${value.toFixed(3)}`;
const result = (met: boolean) => (met ? 'met' : '**missed**');
const modeLabel = (mode: string) => (mode === 'fifo' ? 'FIFO' : mode);
/** A path of the groups workload: how many events each message carries. */
const shapeLabel = (groupSize: number | undefined) =>
  groupSize === undefined ? '' : groupSize === 1 ? 'single events' : `groups of ${groupSize}`;
/** `standard`, or `standard, groups of 5` for a path of the groups workload. */
const pathLabel = (mode: string, groupSize: number | undefined) =>
  [modeLabel(mode), shapeLabel(groupSize)].filter(Boolean).join(', ');

/** How often the path reads, and what a read costs (a consistent Query bills at least 1 unit). */
function queries(f: PathFigures): string {
  const count = f.requestsByOperation['Query'] ?? 0;
  if (count === 0) return '0 / n/a';
  return `${fixed(count / f.valid, 3)} / ${fixed((f.readUnitsPerEvent * f.stored) / count, 2)}`;
}

type Row = readonly [name: string, value: (f: PathFigures) => string, figure?: string];

/** The figures of one path, in the order the tables show them; `figure` names the TargetCheck a row is held to. */
function rows(mode: 'direct' | 'e2e'): Row[] {
  return [
    ['events stored / valid events sent', (f) => `${count(f.stored)} / ${count(f.valid)}`],
    ['events lost (overwritten or missing)', (f) => count(f.lost), 'events lost'],
    ['duplicates stored', (f) => count(f.duplicatesStored), 'duplicates stored'],
    [
      'versions gapless per stream',
      (f) => (f.gapless === undefined ? 'n/a (no versions)' : f.gapless ? 'yes' : 'no'),
      'versions gapless per stream',
    ],
    ['write units per event', (f) => fixed(f.writeUnitsPerEvent, 3), 'write units per event'],
    ['read units per event', (f) => fixed(f.readUnitsPerEvent, 3), 'read units per event'],
    [
      'failed conditional puts per 1,000 events (onConflict)',
      (f) => (f.failedPutsPer1000 === undefined ? 'n/a' : fixed(f.failedPutsPer1000, 1)),
    ],
    ['DynamoDB requests per event', (f) => fixed(f.requestsPerEvent, 3)],
    ['Queries per event / read units per Query', (f) => queries(f)],
    [
      'SQS requests per event: SendMessage each / SendMessageBatch of 10',
      (f) => `${fixed(f.sqs.single.perEvent, 3)} / ${fixed(f.sqs.batched.perEvent, 3)}`,
    ],
    [
      'containers started (each with an empty cache)',
      (f) => (f.containersStarted === undefined ? 'n/a' : count(f.containersStarted)),
    ],
    [
      mode === 'e2e' ? 'events/s, send to stored' : 'events/s, handler to store (no queue)',
      (f) => fixed(f.eventsPerSecond, 0),
    ],
    ['p50 / p99 latency, ms', (f) => `${fixed(f.latencyP50Ms, 0)} / ${fixed(f.latencyP99Ms, 0)}`],
    ["DynamoDB Local's mean PutItem time, ms", (f) => fixed(f.meanPutMs, 1)],
    [
      'cost per million events, SendMessage each / SendMessageBatch',
      (f) => `${money(f.cost.single.total)} / ${money(f.cost.batched.total)}`,
    ],
    [
      'cost / floor (producers batch)',
      (f) => fixed(f.cost.batched.total / f.floor.batched, 3),
      'cost per million events / floor (producers batch)',
    ],
  ];
}

/** One project path of a workload, with the same run's baseline next to every figure, the target and the result. */
export function pathTable(workload: WorkloadResult, mode: QueueMode, benchMode: 'direct' | 'e2e'): string {
  const project = workload.columns.find((column) => column.mode === mode);
  if (!project) return '';
  const baseline = workload.columns.find((column) => column.mode === 'baseline');
  const checks = workload.checks.filter((check) => check.mode === mode);
  const lines = [
    `| figure | this project, ${modeLabel(mode)} | original design (same run) | target | result |`,
    '| --- | --- | --- | --- | --- |',
  ];
  for (const [name, value, figure] of rows(benchMode)) {
    const check = figure === undefined ? undefined : checks.find((candidate) => candidate.figure === figure);
    lines.push(
      `| ${name} | ${value(project)} | ${baseline ? value(baseline) : 'not run'} | ${check?.target ?? ''} | ${check ? result(check.met) : ''} |`,
    );
  }
  return lines.join('\n');
}

/** The groups workload's rows: a path's figures, `figure` naming the TargetCheck a row is held to. */
function groupRows(mode: 'direct' | 'e2e'): Row[] {
  const all = rows(mode);
  const [stored, lost, duplicates, gapless, writeUnits, readUnits, , requests, queried, sqs] = all as Row[];
  const rate = all.find(([name]) => name.startsWith('events/s')) as Row;
  const [latency, , costs, floor] = all.slice(-4) as Row[];
  return [
    stored!,
    lost!,
    duplicates!,
    gapless!,
    writeUnits!,
    readUnits!,
    [
      'failed conditional puts (single events) / cancelled transactions (groups) per 1,000 events',
      (f) =>
        f.groupSize !== undefined && f.groupSize > 1
          ? fixed(f.cancelledTransactionsPer1000 ?? 0, 1)
          : f.failedPutsPer1000 === undefined
            ? 'n/a'
            : fixed(f.failedPutsPer1000, 1),
    ],
    requests!,
    queried!,
    sqs!,
    [rate[0], rate[1], 'events/s'],
    latency!,
    [
      "DynamoDB Local's mean write request, ms (PutItem / TransactWriteItems)",
      (f) => fixed(f.groupSize !== undefined && f.groupSize > 1 ? (f.meanTransactionMs ?? 0) : f.meanPutMs, 1),
    ],
    costs!,
    ["cost / floor (producers batch; a group's floor: 2 write units per event)", floor![1], floor![2]],
  ];
}

/**
 * One mode of the groups workload: the single-event path and each group size of the same run
 * side by side, with the targets each is held to and the result (docs/PERFORMANCE.md).
 */
export function groupsTable(workload: WorkloadResult, mode: QueueMode, benchMode: 'direct' | 'e2e'): string {
  const columns = workload.columns
    .filter((column) => column.mode === mode && column.groupSize !== undefined)
    .sort((a, b) => (a.groupSize ?? 0) - (b.groupSize ?? 0));
  if (columns.length === 0) return '';
  const checks = workload.checks.filter((check) => check.mode === mode);
  const header = columns.map((column) =>
    column.groupSize === 1 ? `${modeLabel(mode)}, single events (same run)` : shapeLabel(column.groupSize),
  );
  const lines = [
    `| figure | ${header.join(' | ')} | target | result |`,
    `| --- | ${columns.map(() => '---').join(' | ')} | --- | --- |`,
  ];
  for (const [name, value, figure] of groupRows(benchMode)) {
    const held = figure === undefined ? [] : checks.filter((candidate) => candidate.figure === figure);
    // Each target once, with the paths it applies to.
    const targets = new Map<string, string[]>();
    for (const check of held)
      targets.set(check.target, [...(targets.get(check.target) ?? []), shapeLabel(check.groupSize)]);
    const target = [...targets]
      .map(([text, paths]) =>
        targets.size === 1 && paths.length === columns.length ? text : `${paths.join(', ')}: ${text}`,
      )
      .join('; ');
    const missed = held.filter((check) => !check.met);
    const verdict =
      held.length === 0
        ? ''
        : missed.length === 0
          ? 'met'
          : `**missed**: ${missed.map((check) => `${shapeLabel(check.groupSize)} ${check.value}`).join(', ')}`;
    lines.push(`| ${name} | ${columns.map((column) => value(column)).join(' | ')} | ${target} | ${verdict} |`);
  }
  return lines.join('\n');
}

const CORRECTNESS = new Set(['events lost', 'duplicates stored', 'versions gapless per stream']);

/** The targets without the correctness ones, which one line sums up (the README's short form). */
export function shortSummary(results: BenchResults): string {
  const checks = results.workloads.flatMap((workload) => workload.checks);
  const correctness = checks.filter((check) => CORRECTNESS.has(check.figure));
  const failed = correctness.filter((check) => !check.met);
  const paths = new Set(correctness.map((check) => `${check.workload} ${pathLabel(check.mode, check.groupSize)}`)).size;
  const line =
    failed.length === 0
      ? `Every path (${paths}): 0 events lost, 0 duplicates stored, versions gapless: **met**.`
      : `Correctness **missed**: ${failed.map((check) => `${check.workload} ${pathLabel(check.mode, check.groupSize)} ${check.figure} ${check.value}`).join('; ')}.`;
  const rest = {
    ...results,
    workloads: results.workloads.map((workload) => ({
      ...workload,
      checks: workload.checks.filter((check) => !CORRECTNESS.has(check.figure)),
    })),
  };
  return `${line}\n\n${summaryTable(rest)}`;
}

/** Every target of the run, one line each. */
export function summaryTable(results: BenchResults): string {
  const lines = [
    '| workload | mode | figure | value | target | result | made of (when missed) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const workload of results.workloads) {
    for (const check of workload.checks) {
      lines.push(
        `| ${check.workload} | ${pathLabel(check.mode, check.groupSize)} | ${check.figure} | ${check.value} | ${check.target} | ${result(check.met)} | ${check.why ?? ''} |`,
      );
    }
  }
  return lines.join('\n');
}

/** One line per workload and path: the figures a reader compares first. */
export function overviewTable(results: BenchResults): string {
  const lines = [
    '| workload | path | write / read units per event | failed conditional puts per 1,000 events | SQS requests per event (SendMessage / SendMessageBatch) | cost per million events (producers batch) |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const workload of results.workloads) {
    for (const f of workload.columns) {
      const path = f.mode === 'baseline' ? 'original design' : pathLabel(f.mode, f.groupSize);
      lines.push(
        `| ${workload.name} | ${path} | ${fixed(f.writeUnitsPerEvent, 3)} / ${fixed(f.readUnitsPerEvent, 3)} | ${f.failedPutsPer1000 === undefined ? 'n/a' : fixed(f.failedPutsPer1000, 1)} | ` +
          `${fixed(f.sqs.single.perEvent, 2)} / ${fixed(f.sqs.batched.perEvent, 2)} | ${money(f.cost.batched.total)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Recompute the checks (the targets may have changed since the results were written). */
export function withChecks(results: BenchResults): BenchResults {
  return {
    ...results,
    workloads: results.workloads.map((workload) => ({
      ...workload,
      checks: workload.columns.flatMap((column) => checkTargets(workload.name, column, workload.columns)),
    })),
  };
}

export function oneStreamLines(figures: OneStreamFigures): string {
  return [
    `- measured: **${fixed(figures.eventsPerSecond, 0)} events/s** on one FIFO stream; DynamoDB Local took ${fixed(figures.meanPutMs, 1)} ms per PutItem in the same run ` +
      `(${fixed(figures.putsPerEvent, 2)} puts per event), everything else ${fixed(figures.otherMsPerEvent, 2)} ms per event`,
    `- projected on DynamoDB: about **${fixed(figures.projectedEventsPerSecond, 0)} events/s**, assuming ${figures.assumedPutMs} ms per conditional PutItem ` +
      `(DynamoDB's single-digit milliseconds, in region; an assumption, not measured here) and the same other time per event; ` +
      `DynamoDB allows ${count(figures.partitionWritesPerSecond)} writes/s per partition key; the event source mapping's receive and delete between batches are not included`,
  ].join('\n');
}

/** The run a workload was measured in when it is not the file's (`--merge`): its time, command and scale. */
export function separateRun(workload: WorkloadResult): string {
  const run = workload.run;
  if (run === undefined) return '';
  const scale = run.scale >= 1 ? 'full size' : `scale ${run.scale}`;
  return `${run.recordedAt.slice(0, 16).replace('T', ' ')} UTC, \`${run.command}\` (${scale})`;
}

function workloadHeader(workload: WorkloadResult): string {
  const w = workload.workload;
  const life =
    workload.containerInvocations === null
      ? 'warm for the whole run'
      : `replaced every ${workload.containerInvocations} invocations`;
  const sizes = workload.columns.flatMap((column) =>
    column.groupSize !== undefined && column.groupSize > 1 ? [column.groupSize] : [],
  );
  const grouped =
    sizes.length === 0
      ? ''
      : `; the same events also sent in groups of ${[...new Set(sizes)].join(', ')} (as many messages divided by the group size, ${fixed(w.duplicateShare * 100, 0)} % of them redelivered)`;
  return [
    `### ${workload.name}: ${workload.description}`,
    '',
    ...(workload.run === undefined ? [] : [`Measured in a separate run: ${separateRun(workload)}.`, '']),
    `${count(w.messages)} messages${sizes.length === 0 ? '' : ' of single events'} (${count(w.uniqueEvents)} distinct events, ${fixed(w.duplicateShare * 100, 0)} % redelivered) over ${count(w.streams)} stream${w.streams === 1 ? '' : 's'}` +
      grouped +
      (workload.historyPerStream > 0 ? `, each with ${workload.historyPerStream} events written before the run` : '') +
      `; ${workload.containers} containers (${life}, each caching ${count(workload.cacheSize)} streams), batches of ${workload.batchSize}; ` +
      `items up to ${w.largestItemBytes} B; seed ${w.seed}; ${fixed(workload.wallSeconds, 0)} s for the workload.`,
  ].join('\n');
}

/** One workload's section: the header, a table per mode, the one-stream projection and the ceiling. */
export function workloadSection(workload: WorkloadResult, benchMode: 'direct' | 'e2e'): string {
  const parts = [workloadHeader(workload)];
  const grouped = workload.columns.some((column) => column.groupSize !== undefined);
  for (const mode of ['standard', 'fifo'] as const) {
    const table = grouped ? groupsTable(workload, mode, benchMode) : pathTable(workload, mode, benchMode);
    if (table) parts.push(table);
  }
  if (workload.oneStream) parts.push(oneStreamLines(workload.oneStream));
  if (workload.ceilings && workload.ceilings.length > 0) {
    parts.push(
      `- raw ceiling (conditional PutItem alone, a fresh engine each): ${workload.ceilings
        .map((ceiling) => `${fixed(ceiling.eventsPerSecond, 0)}/s with ${ceiling.inFlight} in flight`)
        .join(', ')}`,
    );
  }
  return parts.join('\n\n');
}

export function extrasLines(results: BenchResults): string {
  const lines: string[] = [];
  if (results.memoryCpuMicrosPerEvent !== undefined) {
    lines.push(
      `- handler CPU per event with an in-memory appender (no SDK, no network): ${fixed(results.memoryCpuMicrosPerEvent, 0)} µs`,
    );
  }
  if (results.bundle) {
    const b = results.bundle;
    lines.push(
      `- ingest bundle (esbuild as the CDK app bundles it): ${fixed(b.bytes / 1024, 0)} KB (${fixed(b.gzipBytes / 1024, 0)} KB gzipped); ` +
        `cold import in a fresh Node process p50 ${fixed(b.coldImportMsP50, 0)} ms, max ${fixed(b.coldImportMsMax, 0)} ms over ${b.runs} runs`,
    );
  }
  for (const [mix, figures] of Object.entries(results.subscription ?? {})) {
    const target = SubscriptionWriteUnitTargets[mix as keyof typeof SubscriptionWriteUnitTargets];
    const verdict =
      target === undefined
        ? ''
        : `, target ≤ ${target} (${figures.live.writeUnitsPerEvent <= target ? 'met' : 'missed'})`;
    // Results recorded before the baseline existed lack it.
    const baseline =
      figures.unheldWriteUnitsPerEvent === undefined
        ? ''
        : `; baseline (a runtime that holds no stream: one checkpoint write per stream per batch) ${fixed(figures.unheldWriteUnitsPerEvent, 3)} WU`;
    lines.push(
      `- subscription (${mix}: ${figures.live.events} events, batches of ${figures.batchSize}): live ${fixed(figures.live.readUnitsPerEvent, 3)} RU + ` +
        `${fixed(figures.live.writeUnitsPerEvent, 3)} WU per delivered event${verdict}${baseline}; replay ${fixed(figures.replay.readUnitsPerEvent, 3)} RU + ${fixed(figures.replay.writeUnitsPerEvent, 3)} WU`,
    );
  }
  return lines.join('\n');
}

export const COST_ASSUMPTIONS = [
  `DynamoDB on demand $${Prices.dynamoWritePerMillion} per million write units and $${Prices.dynamoReadPerMillion} per million read units`,
  `SQS $${Prices.sqsStandardPerMillion} (standard) / $${Prices.sqsFifoPerMillion} (FIFO) per million requests, counted per run: the producer's sends ` +
    '(one SendMessage per message, or SendMessageBatch of 10), and in direct mode one ReceiveMessage per batch handed over and one DeleteMessageBatch ' +
    'per batch with a record acknowledged (empty long polls left out), in e2e mode the receives and deletes the local pollers made',
  `Lambda arm64, ${LAMBDA_MEMORY_GB * 1024} MB, $${Prices.lambdaArmPerGbSecond} per GB-second at the invocation time measured against DynamoDB Local ` +
    `(which overstates it), $${Prices.lambdaPerMillionRequests} per million invocations`,
  `the floor: 1 write unit per event and no reads, plus the same SQS and Lambda share; the target is at most ${MAX_COST_OVER_FLOOR} x the floor with producers that batch`,
].join('; ');

/** Print the run's tables to the terminal (Markdown reads well there too). */
export function printResults(results: BenchResults): void {
  for (const workload of results.workloads) console.log(`\n${workloadSection(workload, results.mode)}`);
  console.log(`\n${extrasLines(results)}\n\n## Targets\n\n${summaryTable(results)}\n`);
}

export function readResults(file: string): BenchResults {
  if (!existsSync(file))
    throw new Error(`${file} does not exist: run the bench first (npm run bench -- --workload all)`);
  return withChecks(JSON.parse(readFileSync(file, 'utf8')) as BenchResults);
}

/**
 * `--merge`: the workloads of `ran` in place of the same workloads of `base` (the others kept,
 * in `base`'s order, new ones at the end), each marked with `ran`'s run; everything else of
 * `base` kept, its own run's time, command and scale included.
 */
export function mergeResults(base: BenchResults, ran: BenchResults): BenchResults {
  const marked = ran.workloads.map((workload) => ({
    ...workload,
    run: { recordedAt: ran.recordedAt, command: ran.command, scale: ran.scale },
  }));
  const kept = base.workloads.map((workload) => marked.find((fresh) => fresh.name === workload.name) ?? workload);
  const added = marked.filter((workload) => !base.workloads.some((old) => old.name === workload.name));
  return { ...base, workloads: [...kept, ...added] };
}

/** Results as JSON: Infinity (warm containers) becomes null. */
export function writeResults(file: string, results: BenchResults): void {
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
}
