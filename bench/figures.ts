/**
 * From a path's raw result to the figures the bench reports, and each figure against its
 * target (bench/targets.ts). Pure functions: test/unit/bench-figures.test.ts checks them.
 */
import type { QueueMode } from '../core/queue-mode.ts';
import type { PathResult } from './baseline.ts';
import { totalRequests } from './capacity.ts';
import { percentile } from './records.ts';
import {
  FLOOR_WRITE_UNITS_PER_EVENT,
  GroupWriteUnitTargets,
  LAMBDA_MEMORY_GB,
  MAX_COST_OVER_FLOOR,
  MAX_DUPLICATES,
  MAX_LOST,
  Prices,
  SQS_BATCH,
  TRANSACTIONAL_FLOOR_WRITE_UNITS_PER_EVENT,
  UnitTargetsByWorkload,
  type UnitTargets,
} from './targets.ts';

export type PathMode = 'baseline' | QueueMode;

/** How producers send: one SendMessage per event, or SendMessageBatch of 10 (the CLI's `publish`). */
export type ProducerStyle = 'single' | 'batched';

export interface CostBreakdown {
  readonly dynamoDb: number;
  readonly sqs: number;
  readonly lambda: number;
  readonly total: number;
}

/** SQS requests per event: the producer's sends, the consumer's receives and deletes. */
export interface SqsRequests {
  readonly sends: number;
  readonly receives: number;
  readonly deletes: number;
  readonly perEvent: number;
}

export interface PathFigures {
  readonly label: string;
  readonly mode: PathMode;
  /**
   * The `groups` workload: events per message on this path (1: the single-event path of the
   * same run; 2, 5, 20: one transaction per message). Undefined elsewhere.
   */
  readonly groupSize?: number;
  readonly stored: number;
  readonly valid: number;
  readonly lost: number;
  readonly duplicatesStored: number;
  /** Undefined for the baseline: its items have no versions. */
  readonly gapless: boolean | undefined;
  readonly writeUnitsPerEvent: number;
  readonly readUnitsPerEvent: number;
  readonly requestsPerEvent: number;
  readonly requestsByOperation: Record<string, number>;
  /** Conditional puts the store reported lost (onConflict), per 1,000 events. Undefined for the baseline. */
  readonly failedPutsPer1000: number | undefined;
  /** Every ConditionalCheckFailed (a lost race, or a redelivery recognised by the put), per 1,000 events. */
  readonly conditionFailuresPer1000: number;
  readonly eventsPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly invocations: number;
  readonly retriedRecords: number;
  readonly containersStarted: number | undefined;
  readonly meanInvocationMs: number;
  /** DynamoDB Local's mean time per PutItem in this run (ms). */
  readonly meanPutMs: number;
  /** DynamoDB Local's mean time per TransactWriteItems in this run (ms); undefined without transactions. */
  readonly meanTransactionMs?: number;
  /** Transactions cancelled (a lost race or a redelivery in the way), per 1,000 events; undefined without transactions. */
  readonly cancelledTransactionsPer1000?: number;
  readonly cpuMicrosPerEvent: number | undefined;
  readonly sqs: Readonly<Record<ProducerStyle, SqsRequests>>;
  /** All-in cost per million events, by producer style. */
  readonly cost: Readonly<Record<ProducerStyle, CostBreakdown>>;
  /** The floor: 1 write unit per event and no reads, plus the same SQS and Lambda share. */
  readonly floor: Readonly<Record<ProducerStyle, number>>;
  readonly notes: readonly string[];
}

/** The SQS requests of a run per producer style: sends as counted from the messages, receives and deletes as the run made them. */
export function sqsRequests(
  messages: number,
  validEvents: number,
  consumer: { receives: number; deletes: number },
): Record<ProducerStyle, SqsRequests> {
  const style = (sends: number): SqsRequests => ({
    sends,
    receives: consumer.receives,
    deletes: consumer.deletes,
    perEvent: (sends + consumer.receives + consumer.deletes) / validEvents,
  });
  return { single: style(messages), batched: style(Math.ceil(messages / SQS_BATCH)) };
}

/** DynamoDB + SQS + Lambda per million events, at the list prices of bench/targets.ts. */
export function costPerMillion(
  units: { write: number; read: number },
  sqsRequestsPerEvent: number,
  lambda: { invocationsPerEvent: number; secondsPerInvocation: number },
  fifo: boolean,
): CostBreakdown {
  const dynamoDb = units.write * Prices.dynamoWritePerMillion + units.read * Prices.dynamoReadPerMillion;
  const sqs = sqsRequestsPerEvent * (fifo ? Prices.sqsFifoPerMillion : Prices.sqsStandardPerMillion);
  const lambdaCost =
    lambda.invocationsPerEvent * Prices.lambdaPerMillionRequests +
    lambda.invocationsPerEvent * 1e6 * lambda.secondsPerInvocation * LAMBDA_MEMORY_GB * Prices.lambdaArmPerGbSecond;
  return { dynamoDb, sqs, lambda: lambdaCost, total: dynamoDb + sqs + lambdaCost };
}

/** The DynamoDB share of a path's floor: 1 write unit per event, 2 for a group's events (a transaction). */
export function floorWriteUnits(groupSize: number | undefined): number {
  return groupSize !== undefined && groupSize > 1
    ? TRANSACTIONAL_FLOOR_WRITE_UNITS_PER_EVENT
    : FLOOR_WRITE_UNITS_PER_EVENT;
}

export function figuresOf(
  result: PathResult,
  mode: PathMode,
  gapless: boolean | undefined,
  groupSize?: number,
): PathFigures {
  const stored = result.distinctEventsStored;
  const perStored = (value: number) => (stored === 0 ? 0 : value / stored);
  const meanInvocationMs = result.invocations === 0 ? 0 : result.invocationMsTotal / result.invocations;
  const lambda = {
    invocationsPerEvent: result.invocations / result.validEvents,
    secondsPerInvocation: meanInvocationMs / 1000,
  };
  const units = { write: perStored(result.counts.writeUnits), read: perStored(result.counts.readUnits) };
  const sqs = sqsRequests(result.messages, result.validEvents, result.consumerRequests);
  const fifo = mode === 'fifo';
  const cost = {
    single: costPerMillion(units, sqs.single.perEvent, lambda, fifo),
    batched: costPerMillion(units, sqs.batched.perEvent, lambda, fifo),
  };
  const floorOf = (style: ProducerStyle) =>
    costPerMillion({ write: floorWriteUnits(groupSize), read: 0 }, sqs[style].perEvent, lambda, fifo).total;
  const puts = result.counts.requests['PutItem'] ?? 0;
  const transactions = result.counts.requests['TransactWriteItems'] ?? 0;
  return {
    label: result.label,
    mode,
    ...(groupSize === undefined ? {} : { groupSize }),
    stored,
    valid: result.validEvents,
    lost: result.lostEvents,
    duplicatesStored: result.duplicatesStored,
    gapless,
    writeUnitsPerEvent: units.write,
    readUnitsPerEvent: units.read,
    requestsPerEvent: totalRequests(result.counts) / result.validEvents,
    requestsByOperation: { ...result.counts.requests },
    failedPutsPer1000:
      result.appendConflicts === undefined ? undefined : (result.appendConflicts / result.validEvents) * 1000,
    conditionFailuresPer1000: (result.counts.conditionFailures / result.validEvents) * 1000,
    eventsPerSecond: (result.validEvents / result.wallMs) * 1000,
    latencyP50Ms: percentile(result.latenciesMs, 50),
    latencyP99Ms: percentile(result.latenciesMs, 99),
    invocations: result.invocations,
    retriedRecords: result.retriedRecords,
    containersStarted: result.containersStarted,
    meanInvocationMs,
    meanPutMs: puts === 0 ? 0 : (result.counts.requestMs['PutItem'] ?? 0) / puts,
    ...(transactions === 0
      ? {}
      : {
          meanTransactionMs: (result.counts.requestMs['TransactWriteItems'] ?? 0) / transactions,
          cancelledTransactionsPer1000: ((result.counts.cancelledTransactions ?? 0) / result.validEvents) * 1000,
        }),
    cpuMicrosPerEvent: result.cpuMicrosPerEvent,
    sqs,
    cost,
    floor: { single: floorOf('single'), batched: floorOf('batched') },
    notes: result.notes,
  };
}

/** One figure held to its target. */
export interface TargetCheck {
  readonly workload: string;
  readonly mode: PathMode;
  /** The `groups` workload: the path's events per message (1: single events). */
  readonly groupSize?: number;
  readonly figure: string;
  readonly value: string;
  readonly target: string;
  readonly met: boolean;
  /** When missed: what the figure is made of, from the run's own counts. */
  readonly why?: string;
}

const units = (value: number) => value.toFixed(3);

/** The single-event path of the same run and mode, that a group's path is held to. */
function singlePathOf(figures: PathFigures, sameRun: readonly PathFigures[]): PathFigures | undefined {
  return sameRun.find((column) => column.mode === figures.mode && column.groupSize === 1);
}

type Check = (figure: string, value: string, target: string, met: boolean, why: () => string) => TargetCheck;

/** A path's absolute unit targets: its workload's and mode's (bench/targets.ts); the groups workload's by group size. */
function unitTargetsOf(workload: string, figures: PathFigures): UnitTargets | undefined {
  if (figures.mode === 'baseline') return undefined;
  if (figures.groupSize === undefined) return UnitTargetsByWorkload[workload]?.[figures.mode];
  if (figures.groupSize > 1) return { maxWriteUnitsPerEvent: GroupWriteUnitTargets.group };
  // Single events of the groups workload: hot's read target (the same streams and containers).
  const hot = UnitTargetsByWorkload['hot']?.[figures.mode]?.maxReadUnitsPerEvent;
  return {
    maxWriteUnitsPerEvent: GroupWriteUnitTargets.single,
    ...(hot === undefined ? {} : { maxReadUnitsPerEvent: hot }),
  };
}

/** Nothing lost, nothing twice, versions gapless. */
function correctnessChecks(figures: PathFigures, check: Check): TargetCheck[] {
  return [
    check(
      'events lost',
      String(figures.lost),
      String(MAX_LOST),
      figures.lost <= MAX_LOST,
      () => `${figures.lost} distinct events not in the table`,
    ),
    check(
      'duplicates stored',
      String(figures.duplicatesStored),
      String(MAX_DUPLICATES),
      figures.duplicatesStored <= MAX_DUPLICATES,
      () => `${figures.duplicatesStored} events stored twice`,
    ),
    check(
      'versions gapless per stream',
      figures.gapless ? 'yes' : 'no',
      'yes',
      figures.gapless === true,
      () => 'a stream has a missing version',
    ),
  ];
}

/** A group's path against the single-event path of the same run: no more reads per event, no fewer events/s. */
function againstSingleEvents(figures: PathFigures, single: PathFigures, check: Check): TargetCheck[] {
  return [
    check(
      'read units per event',
      units(figures.readUnitsPerEvent),
      `<= single events' ${units(single.readUnitsPerEvent)}`,
      figures.readUnitsPerEvent <= single.readUnitsPerEvent,
      () => readsWhy(figures),
    ),
    check(
      'events/s',
      figures.eventsPerSecond.toFixed(0),
      `>= single events' ${single.eventsPerSecond.toFixed(0)}`,
      figures.eventsPerSecond >= single.eventsPerSecond,
      () =>
        `mean TransactWriteItems ${figures.meanTransactionMs?.toFixed(1) ?? '?'} ms against a PutItem's ${single.meanPutMs.toFixed(1)} ms`,
    ),
  ];
}

/**
 * Every target that applies to a project path of `workload` (bench/targets.ts): nothing lost,
 * nothing twice, gapless; the unit targets of that workload and mode; the cost over the floor
 * with producers that batch (the stricter of the two styles: SQS is a smaller share). A path
 * of the `groups` workload: its write units per event, and (a group) its read units and
 * events/s against the single-event path of `sameRun`.
 */
export function checkTargets(
  workload: string,
  figures: PathFigures,
  sameRun: readonly PathFigures[] = [],
): TargetCheck[] {
  if (figures.mode === 'baseline') return [];
  const check: Check = (figure, value, target, met, why) => ({
    workload,
    mode: figures.mode,
    ...(figures.groupSize === undefined ? {} : { groupSize: figures.groupSize }),
    figure,
    value,
    target,
    met,
    ...(met ? {} : { why: why() }),
  });
  const checks = correctnessChecks(figures, check);
  const unitTargets = unitTargetsOf(workload, figures);
  if (unitTargets?.maxWriteUnitsPerEvent !== undefined) {
    const max = unitTargets.maxWriteUnitsPerEvent;
    checks.push(
      check(
        'write units per event',
        units(figures.writeUnitsPerEvent),
        `<= ${max}`,
        figures.writeUnitsPerEvent <= max,
        () => writesWhy(figures),
      ),
    );
  }
  if (unitTargets?.maxReadUnitsPerEvent !== undefined) {
    const max = unitTargets.maxReadUnitsPerEvent;
    checks.push(
      check(
        'read units per event',
        units(figures.readUnitsPerEvent),
        `<= ${max}`,
        figures.readUnitsPerEvent <= max,
        () => readsWhy(figures),
      ),
    );
  }
  const single = figures.groupSize !== undefined && figures.groupSize > 1 ? singlePathOf(figures, sameRun) : undefined;
  if (single) checks.push(...againstSingleEvents(figures, single, check));
  const ratio = figures.cost.batched.total / figures.floor.batched;
  checks.push(
    check(
      'cost per million events / floor (producers batch)',
      `$${figures.cost.batched.total.toFixed(3)} / $${figures.floor.batched.toFixed(3)} = ${ratio.toFixed(3)}`,
      `<= ${MAX_COST_OVER_FLOOR}`,
      ratio <= MAX_COST_OVER_FLOOR,
      () =>
        `DynamoDB $${figures.cost.batched.dynamoDb.toFixed(3)} per million events against the floor's $${(floorWriteUnits(figures.groupSize) * Prices.dynamoWritePerMillion).toFixed(3)}`,
    ),
  );
  return checks;
}

/** Write units above the floor per event: failed conditional puts or cancelled transactions (billed) and items over 1 KB. */
function writesWhy(figures: PathFigures): string {
  if (figures.groupSize !== undefined && figures.groupSize > 1)
    return `${(figures.cancelledTransactionsPer1000 ?? 0).toFixed(1)} cancelled transactions per 1,000 events, each billed 2 write units per item (assumed)`;
  const failed = figures.failedPutsPer1000 ?? 0;
  return `${failed.toFixed(1)} failed conditional puts per 1,000 events, each billed a write unit`;
}

/** Read units per event: how many consistent Queries, and what each cost. */
function readsWhy(figures: PathFigures): string {
  const queries = figures.requestsByOperation['Query'] ?? 0;
  const perQuery = queries === 0 ? 0 : (figures.readUnitsPerEvent * figures.stored) / queries;
  return `${(queries / figures.valid).toFixed(3)} consistent Queries per event at ${perQuery.toFixed(2)} read units each (at least 1)`;
}

/** What one FIFO stream reaches when each event waits for the previous put (the one-stream workload). */
export interface OneStreamFigures {
  readonly eventsPerSecond: number;
  /** DynamoDB Local's mean PutItem time in the same run (ms). */
  readonly meanPutMs: number;
  readonly putsPerEvent: number;
  /** Everything else per event (handler, reads, the bench's batch hand-over), ms. */
  readonly otherMsPerEvent: number;
  readonly assumedPutMs: number;
  /** With DynamoDB's put latency instead of DynamoDB Local's, capped by the partition's write limit. */
  readonly projectedEventsPerSecond: number;
  readonly partitionWritesPerSecond: number;
}

export function oneStreamFigures(
  fifo: PathFigures,
  assumedPutMs: number,
  partitionWritesPerSecond: number,
): OneStreamFigures {
  const msPerEvent = 1000 / fifo.eventsPerSecond;
  const putsPerEvent = (fifo.requestsByOperation['PutItem'] ?? 0) / fifo.valid;
  const otherMsPerEvent = Math.max(0, msPerEvent - fifo.meanPutMs * putsPerEvent);
  const uncapped = 1000 / (assumedPutMs * putsPerEvent + otherMsPerEvent);
  return {
    eventsPerSecond: fifo.eventsPerSecond,
    meanPutMs: fifo.meanPutMs,
    putsPerEvent,
    otherMsPerEvent,
    assumedPutMs,
    projectedEventsPerSecond: Math.min(partitionWritesPerSecond, uncapped),
    partitionWritesPerSecond,
  };
}
