/**
 * Every target and threshold the bench holds the project to, and the prices it costs with, in
 * one place (README "Performance and cost", docs/PERFORMANCE.md).
 */

/** us-east-1 on-demand list prices (DynamoDB: the November 2024 prices). */
export const Prices = {
  dynamoWritePerMillion: 0.625,
  dynamoReadPerMillion: 0.125,
  sqsStandardPerMillion: 0.4,
  sqsFifoPerMillion: 0.5,
  lambdaArmPerGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
} as const;

/** The stack's default function memory (infra/config.ts), what Lambda bills GB-seconds on. */
export const LAMBDA_MEMORY_GB = 0.5;

/** SQS's batch limit: SendMessageBatch, ReceiveMessage and DeleteMessageBatch take at most 10. */
export const SQS_BATCH = 10;

/** DynamoDB's per-partition limit: 1,000 write units per second for one partition key. */
export const PARTITION_WRITES_PER_SECOND = 1000;

/**
 * The latency of one conditional PutItem on DynamoDB itself (in region, item <= 1 KB), for the
 * one-stream projection: an assumption, DynamoDB's "single-digit milliseconds", taken at 5 ms.
 */
export const ASSUMED_DYNAMODB_PUT_MS = 5;

/** Per-event unit targets, by workload and queue mode. Undefined: no target for that figure. */
export interface UnitTargets {
  readonly maxWriteUnitsPerEvent?: number;
  readonly maxReadUnitsPerEvent?: number;
}

export const UnitTargetsByWorkload: Readonly<
  Record<string, { readonly standard: UnitTargets; readonly fifo: UnitTargets }>
> = {
  hot: {
    standard: { maxWriteUnitsPerEvent: 1.15, maxReadUnitsPerEvent: 0.4 },
    fifo: { maxWriteUnitsPerEvent: 1.01, maxReadUnitsPerEvent: 0.1 },
  },
  'long-cold': {
    standard: { maxReadUnitsPerEvent: 1.5 },
    fifo: { maxReadUnitsPerEvent: 1.5 },
  },
};

/**
 * The `groups` workload (issue 22): write units per event of the single-event path and of a
 * group's path. A group is one TransactWriteItems, which DynamoDB bills 2 write units per
 * started KB of each item (a prepare and a commit; AWS, "transactional write requests"), so 2.0
 * per event of 1 KB or less is the floor, and the margin is for lost transactions.
 * A group's read units per event are held to at most the single-event path's, and its
 * events/s to at least the single-event path's, in the same run.
 */
export const GroupWriteUnitTargets = { single: 1.1, group: 2.1 } as const;

/** The floor's DynamoDB share for a group's event: a transactional write, 2 units per event of 1 KB or less. */
export const TRANSACTIONAL_FLOOR_WRITE_UNITS_PER_EVENT = 2;

/** All-in cost per million events (DynamoDB + SQS + Lambda) over the floor, at most. */
export const MAX_COST_OVER_FLOOR = 1.15;

/** The floor's DynamoDB share: 1 write unit per event of 1 KB or less, no reads. */
export const FLOOR_WRITE_UNITS_PER_EVENT = 1;

/** Every path: nothing lost, nothing stored twice, versions 1..n per stream. */
export const MAX_LOST = 0;
export const MAX_DUPLICATES = 0;

/**
 * A subscription's live write units per delivered event (issue 18's goal, README "Subscriptions"):
 * every event of a batch from another stream (spread), streams ten events at a time (grouped).
 */
export const SubscriptionWriteUnitTargets = { spread: 1.2, grouped: 0.12 } as const;
