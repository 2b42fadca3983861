import type { RejectionReason } from './reasons.ts';
import type { ValidEvent, ValidGroup } from './event.ts';
import type { ExactNumber } from './json.ts';

/** How duplicates are found (docs/ARCHITECTURE.md, "Appending and idempotency"). */
export type { QueueMode } from './queue-mode.ts';

/** An event as the store keeps it. */
export interface StoredEvent {
  readonly ID: string;
  readonly Version: number;
  readonly EventId: string;
  readonly EventType: string;
  /** Numbers a double cannot hold come back as ExactNumber, with DynamoDB's digits (core/json.ts). */
  readonly Timestamp: number | string | ExactNumber;
  readonly EmitterId: string;
  readonly EmitterType: string;
  /** As sent: numbers a double cannot hold are ExactNumber; `null` when the producer sent null. */
  readonly Data?: Record<string, unknown> | null;
  /** ISO time the store wrote it. */
  readonly RecordedAt: string;
  /** FIFO (group = ID): the SQS sequence number of the message it came in. */
  readonly SourceSequence?: string;
  /** Stored from a group message (docs/ARCHITECTURE.md, "Groups"): how many events the group has. */
  readonly GroupSize?: number;
  /** Stored from a group message: this event's place in it, from 0 (`Version - GroupIndex` is the group's first version). */
  readonly GroupIndex?: number;
}

/** What became of one event handed to `appendToStream`, in the order they were given. */
export type AppendOutcome =
  /** A group's outcome (`appendGroup`): `version` is its first event's, `count` how many it has. */
  | { readonly status: 'stored'; readonly version: number; readonly count?: number }
  /** Already in the stream (same `EventId`, same content): acknowledged, not written again. */
  | { readonly status: 'duplicate'; readonly version: number; readonly count?: number }
  /**
   * A later message of the same FIFO group is already stored, so an earlier delivery of this
   * one decided its fate (stored, or dead-lettered): acknowledge it, write and send nothing.
   */
  | { readonly status: 'decided'; readonly headSequence: string }
  /** Can never be stored: goes to the DLQ with this reason. */
  | { readonly status: 'rejected'; readonly reason: RejectionReason; readonly detail: string }
  /**
   * `ExpectedVersion = n` and the stream, read strongly consistently, is below n. Not proof of
   * anything on a standard queue (the events before it may still be on their way); on a FIFO
   * queue only an earlier rejected event explains it. The caller decides (docs/ARCHITECTURE.md,
   * "One fate per record").
   */
  | { readonly status: 'behind'; readonly expected: number; readonly actual: number; readonly detail: string }
  /**
   * Not stored for a reason that may pass (throttling, network, contention that outlasted the
   * retries), or not attempted because an earlier event of the same stream failed so
   * (`cause` says which). SQS must deliver it again.
   */
  | { readonly status: 'failed'; readonly error: Error };

export interface AppendOptions {
  /**
   * The duplicate window's count cap: at most this many of the stream's newest events are
   * searched for the `EventId`, by a container that has the stream cached and by one that
   * reads it (at most 1000). The ingest handler passes `dedupWindow` (default 50); on FIFO
   * queues at least a full FIFO batch (10).
   */
  readonly dedupWindow?: number;
  /**
   * Epoch ms: events recorded before this end the duplicate window (with `dedupWindow` as the
   * count cap; {@link duplicateWindow} in core/stream-cache.ts is the rule). The ingest handler
   * sets it per record to `SentTimestamp - resendWindow - CLOCK_SKEW_MS` (docs/ARCHITECTURE.md,
   * "Appending and idempotency"). @default no time bound: the newest `dedupWindow` events
   */
  readonly notBefore?: number | undefined;
  /** Aborts every DynamoDB call, SDK retry and back-off of this append: the invocation's deadline. */
  readonly signal?: AbortSignal;
  /**
   * Whether this is the first append to the stream in this batch. A stream other writers are
   * busy on is brought up to date (one read) before the first put of a batch only. @default true
   */
  readonly firstInBatch?: boolean;
  /**
   * FIFO queues whose message group is the stream id: the message's SQS `SequenceNumber` and its
   * queue's tag (core/fifo.ts `sourceSequence`), stored with the event. A redelivery whose number
   * is below that of the stream's newest event, of the same queue and recorded after this message
   * was sent, was decided by an earlier delivery (outcome `decided`).
   */
  readonly sourceSequence?: string;
  /** The message's `SentTimestamp` (epoch ms): no copy of it can have been recorded before. */
  readonly sentAt?: number | undefined;
  /**
   * SQS delivered this message before (`ApproximateReceiveCount` above 1). With `sentAt`, its
   * duplicate window also holds every event recorded since it was sent, however many
   * (core/stream-cache.ts `duplicateWindow`, `since`): a copy an earlier delivery stored, and
   * every event the first delivery's window held, are found.
   */
  readonly redelivery?: boolean;
}

/**
 * How long after a first copy of an event was recorded a producer's resend of it (a new
 * message with the same `EventId`) is still recognised (docs/ARCHITECTURE.md, "Appending and
 * idempotency"): the `resendWindow` context key and `RESEND_WINDOW_SECONDS`.
 */
export const ResendWindow = {
  defaultSeconds: 300,
  maxSeconds: 86_400,
} as const;

/**
 * How far the duplicate window's time bound is widened for clocks: each writer's clock (which
 * stamps `RecordedAt`) within 1 s of SQS's (which stamps `SentTimestamp`), so two writers of
 * one stream may differ by 2 s, and the window ends at the first event recorded before the bound.
 */
export const CLOCK_SKEW_MS = 2_000;

export interface ReadStreamOptions {
  /** First version to return (inclusive): forward from it, or backward from it. */
  readonly fromVersion?: number;
  /** @default 'forward' */
  readonly direction?: 'forward' | 'backward';
  /** At most this many events. @default all */
  readonly limit?: number;
}

export interface ReadStreamResult {
  readonly events: StoredEvent[];
  /** The stream's current version (0 when it has no events). */
  readonly version: number;
}

/** The event store's two verbs. Every implementation runs `test/contract/event-store-contract.ts`. */
export interface EventStore {
  /**
   * Append events to one stream in order. Never throws for an event's own problem: every
   * event gets an outcome. Events after a `failed` one are `failed` too (order is kept).
   */
  appendToStream(streamId: string, events: readonly ValidEvent[], options?: AppendOptions): Promise<AppendOutcome[]>;
  /**
   * Append a group's events all or nothing, at consecutive versions (docs/ARCHITECTURE.md,
   * "Groups"): one outcome for the whole group. `stored` and `duplicate` give the first
   * version and the count; a rejection's detail names the event (`Events[i]`) that caused it.
   */
  appendGroup(group: ValidGroup, options?: AppendOptions): Promise<AppendOutcome>;
  readStream(streamId: string, options?: ReadStreamOptions): Promise<ReadStreamResult>;
}
