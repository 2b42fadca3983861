/**
 * Subscriptions (README "Subscriptions"): hand a projection each stream's events exactly in
 * version order, skipping what was delivered, filling gaps with a strongly consistent read,
 * with a checkpoint per subscription and stream, parking a stream whose projection keeps
 * failing, and a replay from version 1 for a new or reset subscription.
 *
 * No AWS here: the checkpoint store, the event reader and the table scan are ports that
 * adapters/dynamodb-subscription.ts implements.
 */
import { EventStoreError } from './errors.ts';
import { MetricDimension, SubscriptionMetric } from './metrics.ts';
import type { StoredEvent } from './store.ts';

/** Names the checkpoint table, its items and the metrics share. Never rename one. */
export const CheckpointKeys = {
  /** Partition key (S): `stream:<ID>` for a stream's checkpoint, `replay` for the replay state. */
  partitionKey: 'Key',
  streamPrefix: 'stream:',
  replayKey: 'replay',
} as const;

export { SubscriptionMetric };
/** A subscription's metrics carry its name in this dimension. */
export const SUBSCRIPTION_DIMENSION = MetricDimension.subscription;

/** The environment the EventSubscription construct (and the local mode) sets. */
export const SubscriptionEnvironment = {
  name: 'SUBSCRIPTION_NAME',
  eventTable: 'EVENT_TABLE_NAME',
  checkpointTable: 'CHECKPOINT_TABLE_NAME',
  maxAttempts: 'MAX_ATTEMPTS',
  eventTypes: 'EVENT_TYPES',
  replayReadUnits: 'REPLAY_READ_UNITS_PER_SECOND',
} as const;

export const SubscriptionDefaults = {
  /** Failed attempts at one version before its stream is parked. */
  maxAttempts: 5,
  /** How long a replay worker or a live batch may hold a stream while replay work is pending. */
  leaseMs: 5 * 60_000,
  /** Read units per second a replay may consume (Scan + Query). */
  replayReadUnitsPerSecond: 50,
  /** Events read per catch-up Query page. */
  catchUpPage: 100,
  /** Items per replay Scan page. */
  scanPage: 500,
} as const;

/** A stream that stopped: the projection failed `maxAttempts` times at `version`. */
export interface Parked {
  readonly version: number;
  readonly error: string;
  readonly at: string;
  /** A user asked to resume (eventstore subscriptions resume): the replay worker retries it. */
  readonly resumeRequested: boolean;
}

/** What a subscription delivered of one stream. */
export interface Checkpoint {
  readonly streamId: string;
  /** Last version handed to the projection (0: none). */
  readonly delivered: number;
  /** Newest version this subscription has seen of the stream (for lag). */
  readonly head: number;
  /** Failed attempts at version `delivered + 1`. */
  readonly attempts: number;
  readonly parked: Parked | undefined;
  readonly lastError: string | undefined;
  /** Bumped by every write; writes are conditioned on it (0: no item yet). */
  readonly revision: number;
  readonly lease: { readonly owner: string; readonly until: number } | undefined;
}

export function emptyCheckpoint(streamId: string): Checkpoint {
  return {
    streamId,
    delivered: 0,
    head: 0,
    attempts: 0,
    parked: undefined,
    lastError: undefined,
    revision: 0,
    lease: undefined,
  };
}

/** The replay of a subscription: a Scan of the event table, then `pending` resumed streams. */
export interface ReplayState {
  /** `pending`: not started (a new or reset subscription). */
  readonly status: 'pending' | 'running' | 'done';
  /** The Scan's position (opaque, from the adapter). */
  readonly cursor: string | undefined;
  /** The last stream caught up: a stream's items are contiguous in a Scan, so the next page skips it. */
  readonly lastStream: string | undefined;
  readonly streams: number;
  readonly events: number;
  readonly startedAt: string | undefined;
  readonly updatedAt: string | undefined;
  readonly finishedAt: string | undefined;
  /** Streams whose resume was asked for. */
  readonly resume: readonly string[];
  readonly revision: number;
  readonly lease: { readonly owner: string; readonly until: number } | undefined;
}

export function initialReplayState(): ReplayState {
  return {
    status: 'pending',
    cursor: undefined,
    lastStream: undefined,
    streams: 0,
    events: 0,
    startedAt: undefined,
    updatedAt: undefined,
    finishedAt: undefined,
    resume: [],
    revision: 0,
    lease: undefined,
  };
}

/** While the replay worker has work, a live batch must hold a stream before it delivers. */
export function replayHasWork(state: ReplayState | undefined): boolean {
  return state === undefined || state.status !== 'done' || state.resume.length > 0;
}

/** Where checkpoints and the replay state live (adapters/dynamodb-subscription.ts). */
export interface CheckpointStore {
  /** Strongly consistent: the checkpoints that exist, and the replay state (undefined: none yet). */
  load(
    streamIds: readonly string[],
  ): Promise<{ checkpoints: Map<string, Checkpoint>; replay: ReplayState | undefined }>;
  /** Write `next` if the stored revision is still `next.revision` (its lease, if any, is released). False: someone else wrote it. */
  save(next: Checkpoint): Promise<boolean>;
  /** Take the stream for `owner` until `until` unless another owner holds it past `now`: the checkpoint held, or undefined. */
  claim(streamId: string, owner: string, until: number, now: number): Promise<Checkpoint | undefined>;
  loadReplay(): Promise<ReplayState | undefined>;
  /** Conditional on `next.revision` like `save`. */
  saveReplay(next: ReplayState): Promise<boolean>;
  claimReplay(owner: string, until: number, now: number): Promise<ReplayState | undefined>;
}

/** The store's strongly consistent read path. */
export interface EventReader {
  /** Events `from`..`to` (inclusive) oldest first; `to` undefined: to the end, at most `limit`. */
  read(streamId: string, from: number, to: number | undefined, limit: number): Promise<StoredEvent[]>;
}

/** One page of the event table's Scan: the stream ids on it, in order, and where to go on. */
export interface ScanPage {
  readonly streamIds: readonly string[];
  readonly cursor: string | undefined;
}

export interface StreamScanner {
  scan(cursor: string | undefined, limit: number): Promise<ScanPage>;
}

/** The user's function: one stored event, in version order per stream. Throw to have it retried. */
export type Projection = (event: StoredEvent) => Promise<void> | void;

/** A live record: the event from the stream record's new image, and where it is in the shard. */
export interface LiveRecord {
  readonly event: StoredEvent;
  readonly sequenceNumber: string;
}

/** A read of the stream that did not return a version the table must have (gapless versions). */
export class GapNotFilledError extends EventStoreError {
  public readonly streamId: string;
  public readonly version: number;

  public constructor(streamId: string, version: number, options?: ErrorOptions) {
    super(`stream ${streamId}: version ${version} was not found by a strongly consistent read`, options);
    this.name = 'GapNotFilledError';
    this.streamId = streamId;
    this.version = version;
  }
}

/** What became of one stream in a batch. */
export type StreamOutcome =
  /** Delivered up to `delivered` (maybe nothing new: every record was a redelivery). */
  | {
      readonly status: 'delivered';
      readonly streamId: string;
      readonly delivered: number;
      readonly count: number;
      readonly head: number;
    }
  /** The projection failed at `version`; retried on the next delivery. */
  | {
      readonly status: 'failed';
      readonly streamId: string;
      readonly version: number;
      readonly count: number;
      readonly error: string;
      readonly head: number;
      readonly delivered: number;
    }
  /** Parked now (after `attempts` failures) or already parked: skipped. */
  | {
      readonly status: 'parked';
      readonly streamId: string;
      readonly version: number;
      readonly count: number;
      readonly newlyParked: boolean;
      readonly head: number;
      readonly delivered: number;
    }
  /** Another run holds or wrote the checkpoint, or the infrastructure failed: retried. */
  | { readonly status: 'retry'; readonly streamId: string; readonly reason: string };

export interface SubscriptionOptions {
  readonly checkpoints: CheckpointStore;
  readonly reader: EventReader;
  readonly project: Projection;
  /** Only these event types reach the projection (the checkpoint still advances over the others). @default all */
  readonly eventTypes?: readonly string[] | undefined;
  /** @default SubscriptionDefaults.maxAttempts */
  readonly maxAttempts?: number;
  /** Who holds a lease (a Lambda request id, a worker id). */
  readonly owner: string;
  /** @default SubscriptionDefaults.leaseMs */
  readonly leaseMs?: number;
  /** Streams delivered at once within a batch. @default 16 */
  readonly concurrency?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Run `work` over `items`, at most `limit` at once. */
export async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/**
 * The runtime of one subscription: live batches from the table's stream (`handleBatch`) and
 * catch-up of one stream from its checkpoint to the end of the table (`catchUp`, for replay
 * and resume). Both go through the same checkpoint, so the switch from replay to live has no
 * gap and no duplicate: a live record at or below the checkpoint is skipped, one above
 * checkpoint + 1 has its gap filled first.
 *
 * @example
 * ```ts
 * const runtime = new SubscriptionRuntime({ checkpoints, reader, owner: 'req-1', project: async (event) => {
 *   console.log(event.ID, event.Version, event.EventType);
 * } });
 * const { outcomes } = await runtime.handleBatch(records);
 * ```
 */
export class SubscriptionRuntime {
  readonly #options: SubscriptionOptions;
  readonly #maxAttempts: number;
  readonly #leaseMs: number;
  readonly #now: () => number;
  readonly #types: ReadonlySet<string> | undefined;

  public constructor(options: SubscriptionOptions) {
    this.#options = options;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? SubscriptionDefaults.maxAttempts);
    this.#leaseMs = options.leaseMs ?? SubscriptionDefaults.leaseMs;
    this.#now = options.now ?? Date.now;
    this.#types = options.eventTypes && options.eventTypes.length > 0 ? new Set(options.eventTypes) : undefined;
  }

  /**
   * Deliver a batch of live records. Streams go in parallel, each in version order. Returns
   * each stream's outcome and, when a stream must be retried, the sequence number of its first
   * undelivered record (what Lambda's `batchItemFailures` wants: it resends from there).
   */
  public async handleBatch(
    records: readonly LiveRecord[],
  ): Promise<{ outcomes: StreamOutcome[]; retryFrom: string[] }> {
    const byStream = new Map<string, LiveRecord[]>();
    for (const record of records) {
      const list = byStream.get(record.event.ID) ?? [];
      list.push(record);
      byStream.set(record.event.ID, list);
    }
    if (byStream.size === 0) return { outcomes: [], retryFrom: [] };
    let loaded: Awaited<ReturnType<CheckpointStore['load']>>;
    try {
      loaded = await this.#options.checkpoints.load([...byStream.keys()]);
    } catch (error) {
      const reason = `checkpoints could not be read: ${errorText(error)}`;
      const outcomes = [...byStream.keys()].map((streamId): StreamOutcome => ({ status: 'retry', streamId, reason }));
      return { outcomes, retryFrom: [...byStream.values()].map((list) => list[0]!.sequenceNumber) };
    }
    const exclusive = replayHasWork(loaded.replay);
    const outcomes = await inParallel([...byStream], this.#options.concurrency ?? 16, async ([streamId, list]) => {
      let claimed: Checkpoint | undefined;
      try {
        let checkpoint: Checkpoint | undefined = loaded.checkpoints.get(streamId) ?? emptyCheckpoint(streamId);
        if (exclusive) {
          const now = this.#now();
          checkpoint = claimed = await this.#options.checkpoints.claim(
            streamId,
            this.#options.owner,
            now + this.#leaseMs,
            now,
          );
          if (!checkpoint)
            return { status: 'retry', streamId, reason: 'the replay worker holds the stream' } satisfies StreamOutcome;
        }
        const events = new Map(list.map((record) => [record.event.Version, record.event]));
        const target = Math.max(...events.keys());
        return await this.#advance(checkpoint, events, target, false);
      } catch (error) {
        if (claimed) await this.#releaseAfterFailure(claimed);
        return { status: 'retry', streamId, reason: errorText(error) } satisfies StreamOutcome;
      }
    });
    const retryFrom: string[] = [];
    for (const outcome of outcomes) {
      if (outcome.status !== 'failed' && outcome.status !== 'retry') continue;
      const list = byStream.get(outcome.streamId) ?? [];
      const after = outcome.status === 'failed' ? outcome.delivered : 0;
      const first = list.find((record) => record.event.Version > after) ?? list[0];
      if (first) retryFrom.push(first.sequenceNumber);
    }
    return { outcomes, retryFrom };
  }

  /**
   * Deliver one stream from its checkpoint to the end of the table (replay, resume), holding
   * the stream while doing so. A parked stream is left alone unless its resume was asked for;
   * a failing projection is retried here up to the attempt limit, then parks the stream.
   */
  public async catchUp(streamId: string): Promise<StreamOutcome> {
    const page = SubscriptionDefaults.catchUpPage;
    let total = 0;
    for (;;) {
      const now = this.#now();
      const claimed = await this.#options.checkpoints.claim(streamId, this.#options.owner, now + this.#leaseMs, now);
      if (!claimed) return { status: 'retry', streamId, reason: 'a live batch holds the stream' };
      let checkpoint = claimed;
      if (checkpoint.parked) {
        if (!checkpoint.parked.resumeRequested) {
          await this.#release(checkpoint);
          return {
            status: 'parked',
            streamId,
            version: checkpoint.parked.version,
            count: total,
            newlyParked: false,
            head: checkpoint.head,
            delivered: checkpoint.delivered,
          };
        }
        checkpoint = { ...checkpoint, parked: undefined, attempts: 0 };
      }
      let events: StoredEvent[];
      let outcome: StreamOutcome;
      try {
        events = await this.#options.reader.read(streamId, checkpoint.delivered + 1, undefined, page);
        if (events.length === 0) {
          await this.#release(checkpoint);
          return {
            status: 'delivered',
            streamId,
            delivered: checkpoint.delivered,
            count: total,
            head: checkpoint.head,
          };
        }
        const last = events[events.length - 1]!.Version;
        outcome = await this.#advance(checkpoint, new Map(events.map((event) => [event.Version, event])), last, true);
      } catch (error) {
        await this.#releaseAfterFailure(claimed);
        throw error;
      }
      if (outcome.status === 'delivered') total += outcome.count;
      if (outcome.status === 'failed') continue; // retried at once, up to the attempt limit
      if (outcome.status !== 'delivered')
        return { ...outcome, ...(outcome.status === 'parked' ? { count: total } : {}) };
      if (events.length < page) return { ...outcome, count: total };
    }
  }

  /**
   * The infrastructure failed while this run held the stream: give the lease back (best effort;
   * the write is conditioned on the revision, so it changes nothing someone else wrote).
   * Nothing was checkpointed, so the next run starts where this one did.
   */
  async #releaseAfterFailure(claimed: Checkpoint): Promise<void> {
    await this.#options.checkpoints.save(claimed).catch(() => false);
  }

  async #release(checkpoint: Checkpoint): Promise<void> {
    if (checkpoint.lease?.owner === this.#options.owner) await this.#options.checkpoints.save(checkpoint);
  }

  /**
   * Deliver versions `checkpoint.delivered + 1`..`target` in order: from `available` where it
   * has them, the rest by a strongly consistent read. Writes the checkpoint once.
   */
  async #advance(
    checkpoint: Checkpoint,
    available: Map<number, StoredEvent>,
    target: number,
    held: boolean,
  ): Promise<StreamOutcome> {
    const { streamId } = checkpoint;
    const head = Math.max(checkpoint.head, target);
    const leased = held || checkpoint.lease?.owner === this.#options.owner;
    if (checkpoint.parked) {
      // New events of a parked stream wait for the resume; keep the head for the lag.
      if (head > checkpoint.head || leased) await this.#save({ ...checkpoint, head });
      return {
        status: 'parked',
        streamId,
        version: checkpoint.parked.version,
        count: 0,
        newlyParked: false,
        head,
        delivered: checkpoint.delivered,
      };
    }
    if (target <= checkpoint.delivered) {
      if (head > checkpoint.head || leased) await this.#save({ ...checkpoint, head });
      return { status: 'delivered', streamId, delivered: checkpoint.delivered, count: 0, head };
    }
    const missing: number[] = [];
    for (let version = checkpoint.delivered + 1; version <= target; version += 1) {
      if (!available.has(version)) missing.push(version);
    }
    if (missing.length > 0) {
      const first = missing[0]!;
      const last = missing[missing.length - 1]!;
      const filled = await this.#options.reader.read(streamId, first, last, last - first + 1);
      for (const event of filled) if (!available.has(event.Version)) available.set(event.Version, event);
      const stillMissing = missing.find((version) => !available.has(version));
      if (stillMissing !== undefined) throw new GapNotFilledError(streamId, stillMissing);
    }
    let delivered = checkpoint.delivered;
    let count = 0;
    let failure: string | undefined;
    for (let version = delivered + 1; version <= target; version += 1) {
      const event = available.get(version)!;
      if (this.#types === undefined || this.#types.has(event.EventType)) {
        try {
          await this.#options.project(event);
        } catch (error) {
          failure = errorText(error);
          break;
        }
        count += 1;
      }
      delivered = version;
    }
    if (failure === undefined) {
      await this.#save({ ...checkpoint, delivered, head, attempts: 0, lastError: undefined });
      return { status: 'delivered', streamId, delivered, count, head };
    }
    const attempts = (delivered === checkpoint.delivered ? checkpoint.attempts : 0) + 1;
    const version = delivered + 1;
    if (attempts >= this.#maxAttempts) {
      const parked: Parked = {
        version,
        error: failure,
        at: new Date(this.#now()).toISOString(),
        resumeRequested: false,
      };
      await this.#save({ ...checkpoint, delivered, head, attempts, lastError: failure, parked });
      return { status: 'parked', streamId, version, count, newlyParked: true, head, delivered };
    }
    await this.#save({ ...checkpoint, delivered, head, attempts, lastError: failure });
    return { status: 'failed', streamId, version, count, error: failure, head, delivered };
  }

  /** A lost conditional write means another run wrote the checkpoint first: retry the stream. */
  async #save(next: Checkpoint): Promise<void> {
    if (!(await this.#options.checkpoints.save(next))) {
      throw new CheckpointConflictError(next.streamId);
    }
  }
}

/** Two runs raced for one stream's checkpoint and this one lost: its records come again. */
export class CheckpointConflictError extends EventStoreError {
  public readonly streamId: string;

  public constructor(streamId: string) {
    super(`stream ${streamId}: another run wrote the checkpoint first`);
    this.name = 'CheckpointConflictError';
    this.streamId = streamId;
  }
}

/**
 * A token bucket on read units: the replay's reads wait so that a replay does not starve the
 * ingest path of read capacity (the adapter reports what each request consumed).
 */
export class ReadRateLimiter {
  readonly #perSecond: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #available: number;
  #at: number;

  public constructor(
    unitsPerSecond: number,
    clock: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    this.#perSecond = Math.max(0.1, unitsPerSecond);
    this.#now = clock.now ?? Date.now;
    this.#sleep = clock.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#available = this.#perSecond;
    this.#at = this.#now();
  }

  /** Account for `units` just consumed; waits while the bucket is in debt. */
  public async consumed(units: number): Promise<void> {
    const now = this.#now();
    this.#available = Math.min(this.#perSecond, this.#available + ((now - this.#at) / 1000) * this.#perSecond) - units;
    this.#at = now;
    if (this.#available < 0) await this.#sleep((-this.#available / this.#perSecond) * 1000);
  }
}

export interface ReplayOptions {
  readonly runtime: SubscriptionRuntime;
  readonly checkpoints: CheckpointStore;
  readonly scanner: StreamScanner;
  readonly owner: string;
  /** Stop (and save the position) once this time has passed. */
  readonly deadline: number;
  readonly scanPage?: number;
  readonly now?: () => number;
  readonly onProgress?: (state: ReplayState) => void;
  /** Waits between attempts at a stream a live batch holds. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface ReplayResult {
  readonly state: ReplayState | undefined;
  /** Another worker holds the replay. */
  readonly busy: boolean;
  readonly outcomes: StreamOutcome[];
}

/** Attempts at a stream a live batch holds, and the pause before attempt n: n x the step, at most the cap. */
const HELD_STREAM_ATTEMPTS = 50;
const HELD_STREAM_PAUSE_STEP_MS = 20;
const HELD_STREAM_PAUSE_CAP_MS = 1000;

/** A live batch holds a stream for milliseconds: wait for it (bounded), then give up for this run. */
async function catchUpWhenReleased(
  runtime: ReplayOptions['runtime'],
  streamId: string,
  sleep: (ms: number) => Promise<void>,
): Promise<StreamOutcome> {
  let outcome = await runtime.catchUp(streamId);
  for (let attempt = 1; outcome.status === 'retry' && attempt < HELD_STREAM_ATTEMPTS; attempt += 1) {
    await sleep(Math.min(HELD_STREAM_PAUSE_CAP_MS, HELD_STREAM_PAUSE_STEP_MS * attempt));
    outcome = await runtime.catchUp(streamId);
  }
  return outcome;
}

/** Save the replay's state under its revision (a lost race is a CheckpointConflictError) and report it. */
function replaySaver(options: ReplayOptions): (next: ReplayState) => Promise<ReplayState> {
  return async (next) => {
    if (!(await options.checkpoints.saveReplay(next))) throw new CheckpointConflictError('(replay)');
    const saved = { ...next, revision: next.revision + 1 };
    options.onProgress?.(saved);
    return saved;
  };
}

/**
 * One run of the replay worker: resume the streams users asked to resume, then go on with the
 * Scan of the event table from its saved position, catching every stream up from its
 * checkpoint, until the Scan ends (status `done`) or `deadline` (position saved).
 */
export async function runReplay(options: ReplayOptions): Promise<ReplayResult> {
  const now = options.now ?? Date.now;
  const leaseUntil = () => Math.max(options.deadline, now()) + SubscriptionDefaults.leaseMs;
  // Nothing to do (the usual case once caught up): one read, no write.
  const current = await options.checkpoints.loadReplay();
  if (current && !replayHasWork(current)) return { state: current, busy: false, outcomes: [] };
  const held = await options.checkpoints.claimReplay(options.owner, leaseUntil(), now());
  if (!held) return { state: await options.checkpoints.loadReplay(), busy: true, outcomes: [] };
  const outcomes: StreamOutcome[] = [];
  const stamp = () => new Date(now()).toISOString();
  const save = replaySaver(options);

  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const catchUpHeld = (streamId: string) => catchUpWhenReleased(options.runtime, streamId, sleep);
  try {
    return await replayHeld(held);
  } catch (error) {
    // Leave the position as saved and let the next run take the replay at once.
    const latest = await options.checkpoints.loadReplay();
    if (latest?.lease?.owner === options.owner) await options.checkpoints.saveReplay({ ...latest, lease: undefined });
    throw error;
  }

  async function replayHeld(start: ReplayState): Promise<ReplayResult> {
    let state = start;
    const resumed: string[] = [];
    for (const streamId of state.resume) {
      const outcome = await catchUpHeld(streamId);
      outcomes.push(outcome);
      if (outcome.status !== 'retry') resumed.push(streamId);
    }
    if (resumed.length > 0) {
      // Fresh copy: a user may have asked for more resumes meanwhile (they are kept).
      const latest = (await options.checkpoints.loadReplay()) ?? state;
      state = {
        ...latest,
        lease: state.lease,
        resume: latest.resume.filter((id) => !resumed.includes(id)),
        revision: latest.revision,
      };
      state = await save({ ...state, updatedAt: stamp() });
    }

    if (state.status !== 'done') {
      if (state.status === 'pending')
        state = await save({ ...state, status: 'running', startedAt: stamp(), updatedAt: stamp() });
      while (now() < options.deadline) {
        const page = await options.scanner.scan(state.cursor, options.scanPage ?? SubscriptionDefaults.scanPage);
        let { lastStream, streams, events } = state;
        for (const streamId of page.streamIds) {
          if (streamId === lastStream) continue;
          const outcome = await catchUpHeld(streamId);
          outcomes.push(outcome);
          if (outcome.status === 'retry') throw new ReplayRetryError(streamId, outcome.reason);
          streams += 1;
          if ('count' in outcome) events += outcome.count;
          lastStream = streamId;
        }
        const finished = page.cursor === undefined;
        state = await save({
          ...state,
          cursor: page.cursor,
          lastStream,
          streams,
          events,
          updatedAt: stamp(),
          ...(finished ? { status: 'done' as const, finishedAt: stamp() } : {}),
        });
        if (finished) break;
      }
    }
    // Release the replay lease.
    state = await save({ ...state, lease: undefined });
    return { state, busy: false, outcomes };
  }
}

/** The replay met a stream it could not take (a live batch held it): the next run goes on from the saved position. */
export class ReplayRetryError extends EventStoreError {
  public readonly streamId: string;

  public constructor(streamId: string, reason: string) {
    super(`replay: stream ${streamId} must be retried: ${reason}`);
    this.name = 'ReplayRetryError';
    this.streamId = streamId;
  }
}
