/**
 * The metric names, namespace, service names and dimensions the functions emit and the
 * dashboard, alarms and tests read (docs/OPERATIONS.md, "The consumer and what it shows"). One source: the
 * emitters (handlers/) and the readers (infra/constructs/monitoring.ts,
 * infra/constructs/event-subscription.ts) import these, so a renamed metric cannot leave an
 * alarm watching nothing. eslint.config.js forbids the strings anywhere else.
 */

/** The CloudWatch namespace of every metric the stack's functions emit (POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'EventStore';

/**
 * The ingest function's Powertools service name when POWERTOOLS_SERVICE_NAME is not set. The
 * deployed stack sets that variable to the stack name (infra/constructs/ingest-function.ts).
 */
export const SERVICE_NAME = 'event-store';

/** The subscription function's Powertools service name (and its `service` dimension). */
export const SUBSCRIPTION_SERVICE_NAME = 'event-store-subscription';

/** The ingest function's metrics (docs/OPERATIONS.md, "The consumer and what it shows"). */
export const IngestMetric = {
  eventsStored: 'EventsStored',
  eventsRejected: 'EventsRejected',
  duplicateEvents: 'DuplicateEvents',
  appendConflicts: 'AppendConflicts',
} as const;
export type IngestMetric = (typeof IngestMetric)[keyof typeof IngestMetric];

/** A subscription function's metrics (docs/ARCHITECTURE.md, "Subscriptions"). */
export const SubscriptionMetric = {
  eventsDelivered: 'EventsDelivered',
  /** Newest version seen minus delivered, the largest over the streams of a batch. */
  lag: 'SubscriptionLag',
  /** Streams parked by this batch, plus parked streams that received new events. */
  streamsParked: 'StreamsParked',
  replayStreams: 'ReplayStreams',
} as const;
export type SubscriptionMetric = (typeof SubscriptionMetric)[keyof typeof SubscriptionMetric];

/** The dimensions the metrics carry. */
export const MetricDimension = {
  /**
   * Powertools Metrics' default dimension, whose value it reads from POWERTOOLS_SERVICE_NAME:
   * it keeps two stacks' metrics apart.
   */
  service: 'service',
  /** `EventsRejected`: the rejection reason (core/reasons.ts). */
  reason: 'Reason',
  /** A subscription's metrics: the subscription's name. */
  subscription: 'Subscription',
} as const;
