import { totalRequests } from './capacity.ts';
import type { PathResult } from './baseline.ts';
import type { BundleResult } from './bundle.ts';
import type { CeilingResult } from './ceiling.ts';
import { percentile } from './records.ts';

/** us-east-1 on-demand list prices used for the cost line (November 2024 DynamoDB prices). */
export const Prices = {
  dynamoWritePerMillion: 0.625,
  dynamoReadPerMillion: 0.125,
  sqsStandardPerMillion: 0.4,
  sqsFifoPerMillion: 0.5,
  lambdaArmPerGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
} as const;

export interface PathFigures {
  readonly label: string;
  readonly storedOverValid: string;
  readonly stored: number;
  readonly valid: number;
  readonly lost: number;
  readonly duplicatesStored: number;
  readonly gapless: boolean | undefined;
  readonly writeUnitsPerEvent: number;
  readonly readUnitsPerEvent: number;
  readonly requestsPerEvent: number;
  readonly requestsByOperation: Record<string, number>;
  readonly conditionFailures: number;
  readonly eventsPerSecond: number;
  readonly ceilingShare: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly invocations: number;
  readonly retriedRecords: number;
  readonly meanInvocationMs: number;
  readonly cpuMicrosPerEvent: number | undefined;
  readonly costPerMillionEvents: CostBreakdown;
  readonly notes: readonly string[];
}

export interface CostBreakdown {
  readonly dynamoDb: number;
  readonly sqs: number;
  readonly lambda: number;
  readonly total: number;
}

/** Cost assumptions, stated with the figures they produce. */
export interface CostAssumptions {
  /** SQS requests per event: 1 send (no SendMessageBatch) + receive and delete per batch. */
  readonly sqsRequestsPerEvent: number;
  readonly lambdaMemoryGb: number;
  readonly fifo: boolean;
}

export function costPerMillion(
  writeUnitsPerEvent: number,
  readUnitsPerEvent: number,
  invocationsPerEvent: number,
  secondsPerInvocation: number,
  assumptions: CostAssumptions,
): CostBreakdown {
  const dynamoDb = writeUnitsPerEvent * Prices.dynamoWritePerMillion + readUnitsPerEvent * Prices.dynamoReadPerMillion;
  const sqs = assumptions.sqsRequestsPerEvent * (assumptions.fifo ? Prices.sqsFifoPerMillion : Prices.sqsStandardPerMillion);
  const lambda =
    invocationsPerEvent * Prices.lambdaPerMillionRequests +
    invocationsPerEvent * 1e6 * secondsPerInvocation * assumptions.lambdaMemoryGb * Prices.lambdaArmPerGbSecond;
  return { dynamoDb, sqs, lambda, total: dynamoDb + sqs + lambda };
}

export function figuresOf(
  result: PathResult,
  ceiling: CeilingResult,
  assumptions: CostAssumptions,
  gapless: boolean | undefined,
): PathFigures {
  const stored = result.distinctEventsStored;
  const perStored = (value: number) => (stored === 0 ? 0 : value / stored);
  const eventsPerSecond = (result.validEvents / result.wallMs) * 1000;
  const meanInvocationMs = result.invocations === 0 ? 0 : result.invocationMsTotal / result.invocations;
  const invocationsPerEvent = result.invocations / result.validEvents;
  return {
    label: result.label,
    storedOverValid: `${stored} / ${result.validEvents}`,
    stored,
    valid: result.validEvents,
    lost: result.lostEvents,
    duplicatesStored: result.duplicatesStored,
    gapless,
    writeUnitsPerEvent: perStored(result.counts.writeUnits),
    readUnitsPerEvent: perStored(result.counts.readUnits),
    requestsPerEvent: totalRequests(result.counts) / result.validEvents,
    requestsByOperation: { ...result.counts.requests },
    conditionFailures: result.counts.conditionFailures,
    eventsPerSecond,
    ceilingShare: eventsPerSecond / ceiling.eventsPerSecond,
    latencyP50Ms: percentile(result.latenciesMs, 50),
    latencyP99Ms: percentile(result.latenciesMs, 99),
    invocations: result.invocations,
    retriedRecords: result.retriedRecords,
    meanInvocationMs,
    cpuMicrosPerEvent: result.cpuMicrosPerEvent,
    costPerMillionEvents: costPerMillion(
      perStored(result.counts.writeUnits),
      perStored(result.counts.readUnits),
      invocationsPerEvent,
      meanInvocationMs / 1000,
      assumptions,
    ),
    notes: result.notes,
  };
}

export interface Targets {
  readonly maxWriteUnitsPerEvent: number;
  readonly maxReadUnitsPerEventStandard: number;
  readonly maxReadUnitsPerEventFifo: number;
  readonly minCeilingShare: number;
}

export const targets: Targets = {
  maxWriteUnitsPerEvent: 1,
  maxReadUnitsPerEventStandard: 0.5,
  maxReadUnitsPerEventFifo: 0.25,
  minCeilingShare: 0.7,
};

const fixed = (value: number, digits = 2) => value.toFixed(digits);
const mark = (met: boolean) => (met ? 'met' : 'NOT MET');

/**
 * What the throughput and latency rows measure, by bench mode: `e2e` from the producer's send
 * through the queue and pollers; `direct` from a batch handed to the handler (no queue).
 */
const TimingLabels = {
  e2e: { throughput: 'throughput, events/s end to end (send to stored)', latency: 'p50 / p99 send-to-stored latency, ms' },
  direct: {
    throughput: 'throughput, events/s from handler to store (direct mode: no queue)',
    latency: 'p50 / p99 batch-handed-to-stored latency, ms (direct mode)',
  },
} as const;

/** The comparison table, as Markdown (it prints readably in a terminal too). */
export function markdownTable(
  columns: readonly PathFigures[],
  fifoLabels: ReadonlySet<string>,
  mode: keyof typeof TimingLabels = 'direct',
): string {
  const timing = TimingLabels[mode];
  const rows: [string, (f: PathFigures) => string, string, ((f: PathFigures) => boolean) | undefined][] = [
    ['events stored / events sent (valid)', (f) => f.storedOverValid, 'all', (f) => f.stored === f.valid],
    ['events lost (overwritten or missing)', (f) => String(f.lost), '0', (f) => f.lost === 0],
    ['duplicates stored', (f) => String(f.duplicatesStored), '0', (f) => f.duplicatesStored === 0],
    ['versions gapless per stream', (f) => (f.gapless === undefined ? 'n/a (no versions)' : f.gapless ? 'yes' : 'NO'), 'yes', (f) => f.gapless !== false],
    ['write units per stored event', (f) => fixed(f.writeUnitsPerEvent, 3), '<= 1', (f) => f.writeUnitsPerEvent <= targets.maxWriteUnitsPerEvent],
    [
      'read units per stored event',
      (f) => fixed(f.readUnitsPerEvent, 3),
      '<= 0.5 standard, <= 0.25 FIFO',
      (f) =>
        f.readUnitsPerEvent <=
        (fifoLabels.has(f.label) ? targets.maxReadUnitsPerEventFifo : targets.maxReadUnitsPerEventStandard),
    ],
    ['DynamoDB requests per event', (f) => fixed(f.requestsPerEvent, 3), '', undefined],
    ['conditional puts that lost a race', (f) => String(f.conditionFailures), '', undefined],
    [timing.throughput, (f) => fixed(f.eventsPerSecond, 0), '', undefined],
    ['throughput / raw conditional-PutItem ceiling', (f) => `${fixed(f.ceilingShare * 100, 0)} %`, '>= 70 %', (f) => f.ceilingShare >= targets.minCeilingShare],
    [timing.latency, (f) => `${fixed(f.latencyP50Ms, 0)} / ${fixed(f.latencyP99Ms, 0)}`, '', undefined],
    ['records redelivered (reported failed)', (f) => String(f.retriedRecords), '', undefined],
    ['handler CPU per event, µs', (f) => (f.cpuMicrosPerEvent === undefined ? 'n/a' : fixed(f.cpuMicrosPerEvent, 0)), '', undefined],
    ['cost per million events, USD (DynamoDB + SQS + Lambda)', (f) => fixed(f.costPerMillionEvents.total, 3), '', undefined],
  ];
  const header = `| figure | ${columns.map((c) => c.label).join(' | ')} | target |`;
  const rule = `| --- | ${columns.map(() => '---').join(' | ')} | --- |`;
  const body = rows.map(([name, value, target, met]) => {
    const cells = columns.map((column) => {
      const text = value(column);
      // The baseline is shown against the targets too, but it is not held to them.
      return met && target && !column.label.includes('baseline') ? `${text} (${mark(met(column))})` : text;
    });
    return `| ${name} | ${cells.join(' | ')} | ${target} |`;
  });
  return [header, rule, ...body].join('\n');
}

export function bundleLines(bundle: BundleResult | undefined): string {
  if (!bundle) return '- ingest bundle: not measured (--skip-bundle)';
  return [
    `- ingest bundle (esbuild as the CDK app: bundle, minify, ESM, node22, platform node, AWS SDK bundled): ${(bundle.bytes / 1024).toFixed(0)} KB (${(bundle.gzipBytes / 1024).toFixed(0)} KB gzipped; source map ${(bundle.sourceMapBytes / 1024).toFixed(0)} KB)`,
    `- cold import of the bundle in a fresh Node process: p50 ${bundle.coldImportMsP50.toFixed(0)} ms, max ${bundle.coldImportMsMax.toFixed(0)} ms over ${bundle.runs} runs`,
  ].join('\n');
}
