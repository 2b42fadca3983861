/**
 * Subscriptions (README "Subscriptions"): hand a projection each stream's events exactly in
 * version order, one hand-over at a time per stream (on every path a claim, or without a
 * claims table a lease on the stream's checkpoint, tied to the holder invocation's deadline;
 * docs/ARCHITECTURE.md, "Subscriptions"), skipping what was delivered, filling
 * gaps with a strongly consistent read, catching up in pages, counting every failure (a
 * projection that throws, an invocation that dies holding the stream) and parking a stream
 * after `maxAttempts` of them, and a replay from version 1 for a new or reset subscription.
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
  /** The subscription's claims table (docs/ARCHITECTURE.md, "Subscriptions"): set, the live path holds streams by claims. */
  claimsTable: 'CLAIMS_TABLE_NAME',
} as const;

/** Names of the claims table and its items (docs/ARCHITECTURE.md, "Subscriptions"). Never rename one. */
export const ClaimKeys = {
  /** Partition key (S): every claim of a subscription lives under `partition`. */
  partitionKey: 'Key',
  /** Sort key (S): the claim's `Until`, zero-padded to 15 digits, `#`, its owner: claims sort by deadline. */
  sortKey: 'Claim',
  partition: 'claims',
  /** TTL attribute (epoch seconds): a day after the claim's `Until`. */
  expiresAt: 'ExpiresAt',
} as const;

/**
 * A live batch's claim: the streams it will hand over (each with the highest version it will
 * hand over of it), until its invocation's hard deadline plus the clock allowance.
 */
export interface Claim {
  /** The sort key: `claimKey(until, owner, nonce)`. */
  readonly key: string;
  readonly owner: string;
  readonly until: number;
  readonly streams: ReadonlyMap<string, number>;
}

/**
 * A claim's sort key: by deadline, then owner, then `nonce` when given (docs/ARCHITECTURE.md,
 * "Subscriptions"): the claims one invocation puts one after another (the replay's catch-ups)
 * have the same deadline and owner, and a late delete of one must not delete the next.
 */
export function claimKey(until: number, owner: string, nonce?: number): string {
  const key = `${String(Math.max(0, Math.floor(until))).padStart(15, '0')}#${owner}`;
  return nonce === undefined ? key : `${key}#${nonce}`;
}

/** A claim that was to name a stream again is gone (its batch can no longer hold the stream by it). */
export class ClaimGoneError extends EventStoreError {
  public readonly key: string;

  public constructor(key: string, options?: ErrorOptions) {
    super(`claim ${key} no longer exists`, options);
    this.name = 'ClaimGoneError';
    this.key = key;
  }
}

/** Where a subscription's claims live (adapters/dynamodb-subscription.ts `DynamoDbClaimStore`). */
export interface ClaimStore {
  /** Write the claim (one PutItem; writing it again is harmless). */
  put(claim: Claim): Promise<void>;
  /** Every claim of the subscription, strongly consistent (all pages), those whose TTL passed at `now` left out. */
  read(now: number): Promise<Claim[]>;
  /** Take a stream off this claim (a waiter that gives way). */
  withdraw(key: string, streamId: string): Promise<void>;
  /** Name a stream on this claim again, with its version. */
  readd(key: string, streamId: string, version: number): Promise<void>;
  /** Take a stream off a dead claim (if the claim still exists), and delete the claim once it names nothing. */
  clearDead(key: string, streamId: string): Promise<void>;
  delete(key: string): Promise<void>;
}

export const SubscriptionDefaults = {
  /** Counted attempts at one version (the projection threw, or the invocation died holding the stream) before its stream is parked. */
  maxAttempts: 5,
  /** How long a holder may hold a stream when its invocation's deadline is unknown (and the replay lease beyond its deadline). */
  leaseMs: 5 * 60_000,
  /** A lease ends this long after its holder's deadline: other machines' clocks may be this far ahead. */
  clockAllowanceMs: 5_000,
  /** No event is handed over with less time than this left: the checkpoint write must fit before the kill. */
  handOverMarginMs: 5_000,
  /** Read units per second a replay may consume (Scan + Query). */
  replayReadUnitsPerSecond: 50,
  /** Events read per catch-up Query page. */
  catchUpPage: 100,
  /** Items per replay Scan page. */
  scanPage: 500,
  /**
   * The most a claim item may weigh (bytes, as DynamoDB counts them): a batch names only the
   * streams that fit and leaves the others to Lambda's resend (DynamoDB's limit is 400 KB; a
   * write unit is 1 KB).
   */
  claimItemBytes: 64 * 1024,
} as const;

/** What one stream adds to a claim item at most: its attribute's name (`S:` + ID, UTF-8) and a number (up to 21 bytes). */
const CLAIM_STREAM_OVERHEAD = 2 + 21;
/** A claim item without streams, besides its key and owner: attribute names and numbers. */
const CLAIM_BASE_BYTES = 128;
const utf8 = new TextEncoder();

/**
 * The longest prefix of `targets` (at least one) whose claim item stays within `limit` bytes,
 * with key `key` and owner `owner`: the rest wait for Lambda's resend, which begins at the first
 * of them (the batch's streams are in the order of their first records), so it comes back in a
 * batch without the streams held here (docs/ARCHITECTURE.md, "Subscriptions").
 */
function claimFits<T extends readonly [string, unknown]>(
  targets: readonly T[],
  key: string,
  owner: string,
  limit: number,
): number {
  let size = CLAIM_BASE_BYTES + utf8.encode(key).length + utf8.encode(owner).length;
  for (let index = 0; index < targets.length; index += 1) {
    size += utf8.encode(targets[index]![0]).length + CLAIM_STREAM_OVERHEAD;
    if (size > limit && index > 0) return index;
  }
  return targets.length;
}

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
  /**
   * Counted attempts at version `delivered + 1`: a projection that threw, and an attempt in
   * flight (taking the lease counts one; a holder that dies before it checkpoints leaves it counted).
   */
  readonly attempts: number;
  /**
   * Careful mode (docs/ARCHITECTURE.md, "Subscriptions"): versions up to this one are handed over
   * one at a time, with a checkpoint after each, because a holder failed or died somewhere among
   * them; so a death there is counted at the version it died on. 0 (or at most `delivered`): none.
   */
  readonly carefulUntil: number;
  readonly parked: Parked | undefined;
  readonly lastError: string | undefined;
  /**
   * The item's generation: bumped by every write (take, checkpoint, release, resume, reset) and
   * never reset (items are never deleted), so a stale writer's condition never matches again.
   * 0: no item yet.
   */
  readonly revision: number;
  readonly lease: { readonly owner: string; readonly until: number } | undefined;
}

export function emptyCheckpoint(streamId: string): Checkpoint {
  return {
    streamId,
    delivered: 0,
    head: 0,
    attempts: 0,
    carefulUntil: 0,
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

/** The replay worker has work: a new or reset subscription's Scan, or asked-for resumes. */
export function replayHasWork(state: ReplayState | undefined): boolean {
  return state === undefined || state.status !== 'done' || state.resume.length > 0;
}

/** A take of a stream's lease: the checkpoint as taken, or (held by another) when that lease ends. */
export type TakeResult =
  { readonly taken: Checkpoint } | { readonly taken: undefined; readonly heldUntil: number | undefined };

/** Where checkpoints and the replay state live (adapters/dynamodb-subscription.ts). */
export interface CheckpointStore {
  /** Strongly consistent: the checkpoints that exist, and the replay state (undefined: none yet). */
  load(
    streamIds: readonly string[],
  ): Promise<{ checkpoints: Map<string, Checkpoint>; replay: ReplayState | undefined }>;
  /**
   * Write `next` if the stored revision is still `next.revision` and (given `owner`) `owner`
   * still holds the lease: the fencing check. `next.lease` set keeps the lease, undefined
   * releases it. False: someone else wrote the item first.
   */
  save(next: Checkpoint, owner?: string): Promise<boolean>;
  /**
   * Take the stream for `owner` until `until` unless another owner holds it past `now`, counting
   * an attempt (`attempts` + 1) and bumping the revision, in one conditional write.
   */
  take(streamId: string, owner: string, until: number, now: number): Promise<TakeResult>;
  /** Drop `owner`'s lease, checkpoint untouched (after a lost write); nothing if another holds it. */
  release(streamId: string, owner: string): Promise<void>;
  /**
   * The stream's lease as a strongly consistent read sees it (undefined: none). A waiter polls
   * with it rather than with a take (a read, no write). Optional: without it the waiter takes again.
   */
  peek?(streamId: string): Promise<Checkpoint['lease']>;
  loadReplay(): Promise<ReplayState | undefined>;
  /** Conditional on `next.revision` like `save`; leaves the `resume` list alone. */
  saveReplay(next: ReplayState): Promise<boolean>;
  /** Add streams to the replay's `resume` list (caught up from their checkpoints); never conflicts with the worker. */
  askReplay(streamIds: readonly string[]): Promise<void>;
  /** Take caught-up streams off the `resume` list. */
  resumeDone(streamIds: readonly string[]): Promise<void>;
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
  /**
   * Not finished: another run holds or wrote the checkpoint, the infrastructure failed, or the
   * invocation's time ran short (`timeUp`); `delivered` when this run checkpointed progress. Retried.
   */
  | {
      readonly status: 'retry';
      readonly streamId: string;
      readonly reason: string;
      readonly delivered?: number;
      readonly timeUp?: boolean;
      /** Another invocation held the stream for longer than this one could wait. */
      readonly held?: boolean;
      /** Ran out of time far behind: left to the replay worker (its records acknowledged). */
      readonly toReplay?: boolean;
    };

export interface SubscriptionOptions {
  readonly checkpoints: CheckpointStore;
  /**
   * Claims (docs/ARCHITECTURE.md, "Subscriptions"): a live batch holds its streams by one claim
   * rather than a lease per stream, and a catch-up (replay, resume) its stream by a claim too.
   * @default none: every path takes the stream's lease
   */
  readonly claims?: ClaimStore | undefined;
  /** The most a claim item may weigh, in bytes. @default SubscriptionDefaults.claimItemBytes */
  readonly claimItemBytes?: number;
  readonly reader: EventReader;
  readonly project: Projection;
  /** Only these event types reach the projection (the checkpoint still advances over the others). @default all */
  readonly eventTypes?: readonly string[] | undefined;
  /** @default SubscriptionDefaults.maxAttempts */
  readonly maxAttempts?: number;
  /** Who holds a lease (a Lambda request id, a worker id): one per invocation. */
  readonly owner: string;
  /**
   * Time left before the invocation is killed (Lambda: `context.getRemainingTimeInMillis`). A
   * lease lasts until then plus `clockAllowanceMs`, so it cannot end while its holder runs; no
   * event is handed over with less than `handOverMarginMs` left. @default none: `leaseMs` per take
   */
  readonly remainingTimeMs?: () => number;
  /** A lease's length when `remainingTimeMs` is not given. @default SubscriptionDefaults.leaseMs */
  readonly leaseMs?: number;
  /** @default SubscriptionDefaults.clockAllowanceMs */
  readonly clockAllowanceMs?: number;
  /** @default SubscriptionDefaults.handOverMarginMs */
  readonly handOverMarginMs?: number;
  /** Events read, handed over and checkpointed at a time. @default SubscriptionDefaults.catchUpPage */
  readonly pageSize?: number;
  /** Streams delivered at once within a batch. @default 16 */
  readonly concurrency?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Waits for a stream another invocation holds. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
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

/** At most `limit` pieces of work at once, started in the order they come (a slot freed goes to the next in line). */
class Slots {
  readonly #limit: number;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  public constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  public async run<R>(work: () => Promise<R>): Promise<R> {
    if (this.#running < this.#limit) this.#running += 1;
    else await new Promise<void>((resolve) => this.#queue.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }
}

/** A live batch's events of one stream, and its newest version. */
type LiveTarget = { readonly events: Map<number, StoredEvent>; readonly target: number };

/**
 * The version a claim names for a stream: a live batch's newest; a catch-up's has no end (it goes
 * to the end of the table), so it competes with every other claimer until its claim is deleted.
 */
function claimedVersion(live: LiveTarget | undefined): number {
  return live?.target ?? Number.MAX_SAFE_INTEGER;
}

/** What a claimer reads: every claim, and its streams' checkpoints. */
type Look = { readonly claims: readonly Claim[]; readonly checkpoints: ReadonlyMap<string, Checkpoint> };

/** One stream as a claimer sees it. */
interface Competition {
  readonly checkpoint: Checkpoint;
  /** Nothing competes: no other live claim for a version past the checkpoint, no lease. */
  readonly free: boolean;
  /** A competing claim has a smaller key (an earlier deadline): this one gives way. */
  readonly smaller: boolean;
  /** When the last competitor ends at the latest. */
  readonly until: number;
  /** Claims naming the stream whose `Until` passed. */
  readonly dead: readonly Claim[];
}

/** A stream of a claimed batch that is not held yet. */
interface ClaimWaiter {
  /** Its place in the batch's outcomes. */
  readonly index: number;
  readonly streamId: string;
  /** Undefined: a catch-up (it names no end, see `claimedVersion`). */
  readonly live: LiveTarget | undefined;
  /** The claim names it. */
  named: boolean;
  /** A withdrawal failed: the claim may still name the stream. */
  unwithdrawn: boolean;
  /** Failed requests (each after a pause) before it gives up: a lasting failure is not waited out. */
  errors: number;
  lastError: unknown;
  /** When its last competitor ends at the latest. */
  heldUntil: number | undefined;
}

/** A request failed for a waiting stream: true while it may go on (fewer than MAX_TAKE_ERRORS so far). */
function claimFailed(waiter: ClaimWaiter, error: unknown): boolean {
  waiter.lastError = error;
  waiter.errors += 1;
  return waiter.errors < MAX_TAKE_ERRORS;
}

/** Why a waiting stream is left to Lambda's resend: the last failure, a holder, or the time left. */
function claimGaveUp(waiter: ClaimWaiter): StreamOutcome {
  const { streamId, lastError, heldUntil } = waiter;
  if (lastError !== undefined)
    return { status: 'retry', streamId, reason: `the stream could not be claimed: ${errorText(lastError)}` };
  if (heldUntil !== undefined)
    return {
      status: 'retry',
      streamId,
      reason: `another invocation holds the stream until ${new Date(heldUntil).toISOString()}`,
      held: true,
    };
  return { status: 'retry', streamId, reason: 'too little time left to take the stream', timeUp: true };
}

/** Dead claims ahead of a checkpoint: careful mode up to `carefulUntil`; `clear` takes the stream off them. */
interface DeadClaims {
  readonly carefulUntil: number;
  readonly clear: () => Promise<void>;
}

/**
 * Pauses while another invocation holds a stream: doubling from the first (a live holder is
 * usually done within milliseconds), at most the cap (a holder that died keeps the stream until
 * its deadline: each poll is a strongly consistent read, 5 s apart at most).
 */
const HELD_PAUSE_FIRST_MS = 20;
const HELD_PAUSE_CAP_MS = 5_000;
/**
 * The cap of a claimed batch's pauses between looks: the doubling goes on past 5 s, since a
 * competitor that has not let go after ten seconds or so is a long batch or dead (its claim
 * lasts until its invocation's deadline, up to 15 minutes: polled every 5 s that is 180 looks
 * per waiting batch, every 30 s about 40). A pause never runs past the competitor's end, so a
 * dead one is noticed as soon as it expires; one that lets go early, up to 30 s late.
 */
const CLAIM_PAUSE_CAP_MS = 30_000;
/** Failed requests in a row (each after a pause) before a take gives up: a lasting failure is not waited out. */
const MAX_TAKE_ERRORS = 8;

/** A checkpoint's careful range once `delivered` is checkpointed: none left once it is passed. */
function carefulFrom(carefulUntil: number, delivered: number): number {
  return carefulUntil > delivered ? carefulUntil : 0;
}

/** The parked error of a stream whose holders died (timeout, crash, out of memory) `attempts` times. */
export function diedText(attempts: number): string {
  return `the invocation ended before its checkpoint (timeout, crash or out of memory) in ${attempts} counted attempt(s)`;
}

/**
 * The runtime of one subscription: live batches from the table's stream (`handleBatch`) and
 * catch-up of one stream from its checkpoint to the end of the table (`catchUp`, for replay
 * and resume). Every path holds the stream while it delivers it (docs/ARCHITECTURE.md,
 * "Subscriptions"): with `claims`, by a claim (one item per batch or catch-up; the claim holder
 * adds the lease below only for a stream with counted attempts, careful or parked); without,
 * one conditional write takes the lease (until the invocation's deadline plus a clock
 * allowance, counting an attempt). The checkpoint write is conditioned on the revision read or
 * written (and on the owner, under a lease): a holder whose lease was taken over, or whose
 * stream was reset, cannot checkpoint. Long catch-ups go in pages, a checkpoint per
 * page, and stop handing over when the invocation's time runs short. A live record at or
 * below the checkpoint is skipped, one above checkpoint + 1 has its gap filled first.
 *
 * @example
 * ```ts
 * const runtime = new SubscriptionRuntime({ checkpoints, reader, owner: 'req-1', remainingTimeMs: () => 60_000, project: async (event) => {
 *   console.log(event.ID, event.Version, event.EventType);
 * } });
 * const { outcomes } = await runtime.handleBatch(records);
 * ```
 */
export class SubscriptionRuntime {
  readonly #options: SubscriptionOptions;
  readonly #maxAttempts: number;
  readonly #now: () => number;
  readonly #types: ReadonlySet<string> | undefined;
  readonly #page: number;
  readonly #margin: number;
  readonly #sleep: (ms: number) => Promise<void>;
  /** Claims this runtime has put: each claim's key ends with its number (`claimKey`). */
  #claimed = 0;

  public constructor(options: SubscriptionOptions) {
    this.#options = options;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? SubscriptionDefaults.maxAttempts);
    this.#now = options.now ?? Date.now;
    this.#types = options.eventTypes && options.eventTypes.length > 0 ? new Set(options.eventTypes) : undefined;
    this.#page = Math.max(1, options.pageSize ?? SubscriptionDefaults.catchUpPage);
    this.#margin = options.handOverMarginMs ?? SubscriptionDefaults.handOverMarginMs;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** When this invocation can be killed: now + its remaining time; undefined when unknown. */
  #killAt(): number | undefined {
    const remaining = this.#options.remainingTimeMs?.();
    return remaining === undefined || !Number.isFinite(remaining) ? undefined : this.#now() + remaining;
  }

  /** Whether an event may still be handed over (the checkpoint write fits before the kill). */
  #timeLeft(lease: Checkpoint['lease']): boolean {
    const now = this.#now();
    const killAt = this.#killAt();
    if (killAt !== undefined && now >= killAt - this.#margin) return false;
    // Without a known deadline, the lease's own end bounds the holding.
    const allowance = this.#options.clockAllowanceMs ?? SubscriptionDefaults.clockAllowanceMs;
    return lease === undefined || now < lease.until - allowance - this.#margin;
  }

  /**
   * Take the stream's lease, waiting (within this invocation's time) while another holds it.
   * The lease ends after this invocation's deadline, so it cannot end while this holder runs.
   * While it waits it polls the lease with a strongly consistent read (`peek`), and takes again
   * once the lease is gone or over. A request that fails (a throttle, a lost response) is not a
   * reason to give up while time is left: a take that failed is given back first (its write may
   * have taken effect, and the take condition refuses even its own owner), then tried again.
   * `wait` false (a claim holder): a lease held by another is given up on at once.
   */
  async #take(
    streamId: string,
    wait = true,
  ): Promise<{ held: Checkpoint } | { reason: string; timeUp?: true; held?: true }> {
    const allowance = this.#options.clockAllowanceMs ?? SubscriptionDefaults.clockAllowanceMs;
    const { checkpoints, owner } = this.#options;
    let pause = HELD_PAUSE_FIRST_MS;
    let errors = 0;
    let heldUntil: number | undefined;
    /** Wait `pause` (doubling) if this invocation's time allows; false: it does not. */
    const waited = async (killAt: number | undefined): Promise<boolean> => {
      const now = this.#now();
      const wait = heldUntil === undefined ? pause : Math.min(pause, Math.max(1, heldUntil - now + 1));
      if (killAt !== undefined && now + wait >= killAt - this.#margin) return false;
      await this.#sleep(wait);
      pause = Math.min(HELD_PAUSE_CAP_MS, pause * 2);
      return true;
    };
    const gaveUp = (error: unknown): { reason: string; timeUp?: true; held?: true } =>
      error !== undefined
        ? { reason: `the stream could not be taken: ${errorText(error)}` }
        : heldUntil !== undefined
          ? { reason: `another invocation holds the stream until ${new Date(heldUntil).toISOString()}`, held: true }
          : { reason: 'too little time left to take the stream', timeUp: true };
    let lastError: unknown;
    let peekFirst = false;
    for (;;) {
      const now = this.#now();
      const killAt = this.#killAt();
      if (killAt !== undefined && now >= killAt - this.#margin) return gaveUp(lastError);
      if (peekFirst && checkpoints.peek) {
        let lease: Checkpoint['lease'];
        try {
          lease = await checkpoints.peek(streamId);
          lastError = undefined;
        } catch (error) {
          lastError = error;
          errors += 1;
          if (errors >= MAX_TAKE_ERRORS || !(await waited(killAt))) return gaveUp(lastError);
          continue;
        }
        if (lease !== undefined && lease.owner !== owner && lease.until >= this.#now()) {
          heldUntil = lease.until;
          if (!(await waited(killAt))) return gaveUp(undefined);
          continue;
        }
      }
      const until = (killAt ?? now + (this.#options.leaseMs ?? SubscriptionDefaults.leaseMs)) + allowance;
      let result: TakeResult;
      try {
        result = await checkpoints.take(streamId, owner, until, now);
      } catch (error) {
        // The write may have taken effect with its response lost: give the lease back (release
        // is conditioned on this owner), then try again while time is left.
        await checkpoints.release(streamId, owner).catch(() => undefined);
        lastError = error;
        errors += 1;
        peekFirst = false;
        if (errors >= MAX_TAKE_ERRORS || !(await waited(killAt))) return gaveUp(lastError);
        continue;
      }
      lastError = undefined;
      if (result.taken) return { held: result.taken };
      // Held: wait for its release (polled with reads) or its end, if this invocation can wait that long.
      heldUntil = result.heldUntil;
      peekFirst = true;
      if (!wait || !(await waited(killAt))) return gaveUp(undefined);
    }
  }

  /**
   * Deliver a batch of live records. Streams go in parallel, each in version order, each held
   * while it is delivered. Returns each stream's outcome and, when a stream must be retried,
   * the sequence number of its first undelivered record (what Lambda's `batchItemFailures`
   * wants: it resends from there).
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
    const targets = [...byStream].map(([streamId, list]): [string, LiveTarget] => {
      const events = new Map(list.map((record) => [record.event.Version, record.event]));
      return [streamId, { events, target: Math.max(...events.keys()) }];
    });
    const outcomes = this.#options.claims
      ? await this.#claimBatch(this.#options.claims, targets)
      : await inParallel(targets, this.#options.concurrency ?? 16, ([streamId, live]) => this.#hold(streamId, live));
    await this.#leaveToReplay(outcomes);
    const retryFrom: string[] = [];
    for (const outcome of outcomes) {
      if (outcome.status === 'retry' && outcome.toReplay) continue;
      if (outcome.status !== 'failed' && outcome.status !== 'retry') continue;
      const list = byStream.get(outcome.streamId) ?? [];
      const after = outcome.delivered ?? 0;
      const first = list.find((record) => record.event.Version > after) ?? list[0];
      if (first) retryFrom.push(first.sequenceNumber);
    }
    return { outcomes, retryFrom };
  }

  /**
   * A live batch by claims (docs/ARCHITECTURE.md, "Subscriptions"): one claim names every
   * stream of the batch with the highest version it will hand over; one strongly consistent read
   * of the claims and one of the checkpoints; each stream without a competitor is held with no
   * write of its own before its checkpoint; the claim is deleted at the end.
   */
  async #claimBatch(
    claims: ClaimStore,
    all: readonly (readonly [string, LiveTarget | undefined])[],
  ): Promise<StreamOutcome[]> {
    const { owner } = this.#options;
    const allowance = this.#options.clockAllowanceMs ?? SubscriptionDefaults.clockAllowanceMs;
    const until = (this.#killAt() ?? this.#now() + (this.#options.leaseMs ?? SubscriptionDefaults.leaseMs)) + allowance;
    const key = claimKey(until, owner, (this.#claimed += 1));
    // A claim item is bounded (DynamoDB refuses items past 400 KB, every time: Lambda would resend
    // the batch forever): the streams past the bound are left to the resend.
    const fit = claimFits(all, key, owner, this.#options.claimItemBytes ?? SubscriptionDefaults.claimItemBytes);
    const targets = all.slice(0, fit);
    const left = all.slice(fit).map(([streamId]): StreamOutcome => ({
      status: 'retry',
      streamId,
      reason: `the batch's claim is full (${targets.length} streams): left for Lambda's resend`,
    }));
    return [...(await this.#claimTargets(claims, key, until, targets)), ...left];
  }

  async #claimTargets(
    claims: ClaimStore,
    key: string,
    until: number,
    targets: readonly (readonly [string, LiveTarget | undefined])[],
  ): Promise<StreamOutcome[]> {
    const { owner } = this.#options;
    // Streams another live claim names already are left off the claim (named again, and looked
    // at again, once the way is clear): a batch killed between its claim and its withdrawal
    // would otherwise keep them from everyone until its deadline, and under repeated kills
    // (Lambda resends the batch at once) such claims follow one another without a gap
    // (docs/ARCHITECTURE.md, "Subscriptions"). A failed read names them all.
    const wanted = new Set<string>();
    try {
      const now = this.#now();
      for (const other of await claims.read(now))
        if (other.until >= now) for (const streamId of other.streams.keys()) wanted.add(streamId);
    } catch {
      wanted.clear();
    }
    const claim: Claim = {
      key,
      owner,
      until,
      streams: new Map(
        targets
          .filter(([streamId]) => !wanted.has(streamId))
          .map(([streamId, live]) => [streamId, claimedVersion(live)]),
      ),
    };
    try {
      const put = await this.#retrying(() => claims.put(claim));
      if (put !== undefined)
        return targets.map(([streamId]) => ({
          status: 'retry' as const,
          streamId,
          reason: `the claim could not be written: ${errorText(put)}`,
        }));
      let first: Look | undefined;
      try {
        first = await this.#look(
          claims,
          targets.map(([streamId]) => streamId),
        );
      } catch {
        first = undefined;
      }
      return await this.#claimStreams(claims, key, targets, first, new Set(claim.streams.keys()));
    } finally {
      // Best effort: a claim left behind ends at its Until, and is then a dead claim (careful mode, nothing counted).
      await this.#retrying(() => claims.delete(key));
    }
  }

  /** Run `request`, again after a pause while it fails and time is left: undefined once it succeeds, else the last error. */
  async #retrying(request: () => Promise<void>): Promise<unknown> {
    let pause = HELD_PAUSE_FIRST_MS;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await request();
        return undefined;
      } catch (error) {
        const killAt = this.#killAt();
        if (attempt + 1 >= MAX_TAKE_ERRORS || (killAt !== undefined && this.#now() + pause >= killAt - this.#margin))
          return error;
        await this.#sleep(pause);
        pause = Math.min(HELD_PAUSE_CAP_MS, pause * 2);
      }
    }
  }

  /**
   * The claims, then these streams' checkpoints, both strongly consistent, in that order: a claim
   * gone from the first read was deleted after its batch's checkpoints, which the second then sees.
   */
  async #look(claims: ClaimStore, streamIds: readonly string[]): Promise<Look> {
    const found = await claims.read(this.#now());
    const loaded = await this.#options.checkpoints.load(streamIds);
    return { claims: found, checkpoints: loaded.checkpoints };
  }

  /**
   * Who competes with claim `key` for a stream: other claims naming it, before their `Until`,
   * for a version its checkpoint has not passed (a claim whose batch delivered its version has
   * nothing left to hand over of it), and a lease on its checkpoint (replay, careful mode).
   */
  #competition(key: string, streamId: string, seen: Look): Competition {
    const now = this.#now();
    const checkpoint = seen.checkpoints.get(streamId) ?? emptyCheckpoint(streamId);
    const others = seen.claims.filter((claim) => claim.key !== key && claim.streams.has(streamId));
    const live = others.filter((claim) => claim.until >= now && claim.streams.get(streamId)! > checkpoint.delivered);
    const lease =
      checkpoint.lease && checkpoint.lease.owner !== this.#options.owner && checkpoint.lease.until >= now
        ? checkpoint.lease
        : undefined;
    return {
      checkpoint,
      free: live.length === 0 && lease === undefined,
      smaller: live.some((claim) => claim.key < key),
      until: Math.max(0, lease?.until ?? 0, ...live.map((claim) => claim.until)),
      dead: others.filter((claim) => claim.until < now),
    };
  }

  /**
   * The streams of a claimed batch. Each is held when nothing competes (write, then read, on one
   * partition: of two claimers at least one sees the other) and handed over at once (at most
   * `concurrency` at a time); a competitor with a smaller key makes this claim give the stream
   * up while it waits (it names it again, and looks again, once the way is clear); only larger
   * ones, or a lease: wait for them. The streams that wait share one look per round (one Query
   * of the claims, one BatchGetItem of their checkpoints), not one each: a round costs the
   * claims partition once, whatever the number of streams (docs/ARCHITECTURE.md,
   * "Subscriptions"). A stream whose time runs out is left to Lambda's resend, as with a lease.
   */
  async #claimStreams(
    claims: ClaimStore,
    key: string,
    targets: readonly (readonly [string, LiveTarget | undefined])[],
    first: Look | undefined,
    named: ReadonlySet<string>,
  ): Promise<StreamOutcome[]> {
    const outcomes: Promise<StreamOutcome>[] = new Array<Promise<StreamOutcome>>(targets.length);
    const slots = new Slots(this.#options.concurrency ?? 16);
    let waiting: ClaimWaiter[] = targets.map(([streamId, live], index) => ({
      index,
      streamId,
      live,
      named: named.has(streamId),
      unwithdrawn: false,
      errors: 0,
      lastError: undefined,
      heldUntil: undefined,
    }));
    /** Leave these streams: each one's outcome is its reason for giving up. */
    const leave = (left: readonly ClaimWaiter[]): void => {
      for (const waiter of left) outcomes[waiter.index] = Promise.resolve(claimGaveUp(waiter));
    };
    const hold = (waiter: ClaimWaiter, competition: Competition): void => {
      outcomes[waiter.index] = slots.run(() => this.#holdClaimed(claims, waiter.streamId, waiter.live, competition));
    };
    let seen = first;
    let pause = HELD_PAUSE_FIRST_MS;
    while (waiting.length > 0) {
      const killAt = this.#killAt();
      if (killAt !== undefined && this.#now() >= killAt - this.#margin) {
        leave(waiting);
        break;
      }
      /** Look again at once (a stream was named again: another may have come meanwhile). */
      let again = false;
      if (seen === undefined) {
        try {
          seen = await this.#look(
            claims,
            waiting.map((waiter) => waiter.streamId),
          );
          for (const waiter of waiting) waiter.lastError = undefined;
        } catch (error) {
          leave(waiting.filter((waiter) => !claimFailed(waiter, error)));
          waiting = waiting.filter((waiter) => waiter.errors < MAX_TAKE_ERRORS);
        }
      }
      if (seen !== undefined) {
        const round = await this.#claimRound(claims, key, waiting, seen, hold, leave);
        waiting = round.waiting;
        again = round.again;
      }
      seen = undefined;
      if (waiting.length === 0 || again) continue;
      if (!(await this.#waitRound(waiting, pause))) leave(waiting.splice(0));
      pause = Math.min(CLAIM_PAUSE_CAP_MS, pause * 2);
    }
    return Promise.all(outcomes);
  }

  /**
   * One round of the waiting streams on one look: the free ones named are held, the free ones
   * not named are named again, the others wait (giving way to a smaller competitor). Returns
   * the streams still waiting, and whether to look again at once (one was named again, and no
   * request failed).
   */
  async #claimRound(
    claims: ClaimStore,
    key: string,
    waiting: readonly ClaimWaiter[],
    look: Look,
    hold: (waiter: ClaimWaiter, competition: Competition) => void,
    leave: (left: readonly ClaimWaiter[]) => void,
  ): Promise<{ waiting: ClaimWaiter[]; again: boolean }> {
    let renamed = false;
    let failures = false;
    const still: ClaimWaiter[] = [];
    for (const waiter of waiting) {
      const { streamId, live } = waiter;
      const competition = this.#competition(key, streamId, look);
      if (competition.free && waiter.named) {
        hold(waiter, competition);
        continue;
      }
      if (competition.free) {
        // The way is clear: name the stream again, then look again.
        waiter.heldUntil = undefined;
        try {
          await claims.readd(key, streamId, claimedVersion(live));
          waiter.named = true;
          waiter.unwithdrawn = false;
          waiter.lastError = undefined;
          renamed = true;
        } catch (error) {
          failures = true;
          if (!claimFailed(waiter, error)) {
            leave([waiter]);
            continue;
          }
        }
        still.push(waiter);
        continue;
      }
      waiter.heldUntil = competition.until;
      if ((waiter.named && competition.smaller) || waiter.unwithdrawn) {
        // Taken for given up even if the request fails: the stream is only held once named again.
        // A failed withdrawal is tried again at each look (REMOVE twice is harmless): the claim
        // may still name the stream, and a smaller claimer waits for it to give way.
        waiter.named = false;
        try {
          await claims.withdraw(key, streamId);
          waiter.unwithdrawn = false;
        } catch (error) {
          waiter.unwithdrawn = true;
          waiter.lastError = error;
          waiter.errors += 1;
        }
      }
      still.push(waiter);
    }
    return { waiting: still, again: renamed && !failures };
  }

  /**
   * Pause before the next look of the waiting streams: `pause`, no longer than until the first of
   * their competitors ends; false when this invocation's time does not allow it.
   */
  async #waitRound(waiting: readonly { readonly heldUntil: number | undefined }[], pause: number): Promise<boolean> {
    if (waiting.length === 0) return true;
    const now = this.#now();
    const killAt = this.#killAt();
    let wait = Math.min(
      ...waiting.map(({ heldUntil }) =>
        heldUntil === undefined ? pause : Math.min(pause, Math.max(1, heldUntil - now + 1)),
      ),
    );
    // A pause past the lease waiter's cap shrinks as this invocation's end nears (never below
    // that cap): the last look comes as late as before.
    if (killAt !== undefined && wait > HELD_PAUSE_CAP_MS)
      wait = Math.max(HELD_PAUSE_CAP_MS, Math.min(wait, killAt - this.#margin - now - HELD_PAUSE_CAP_MS));
    if (killAt !== undefined && now + wait >= killAt - this.#margin) return false;
    await this.#sleep(wait);
    return true;
  }

  /**
   * A claimed stream nothing competes for. Its checkpoint clean (nothing counted, not careful,
   * not parked, no lease) and no dead claim ahead of it: handed over with no write before its
   * checkpoint, each write conditioned on the revision read. Otherwise the lease is taken as
   * before, and dead claims ahead of the checkpoint put it in careful mode: a claim's death is
   * never counted (it may be a waiter's), the deaths in careful mode are, exactly.
   */
  async #holdClaimed(
    claims: ClaimStore,
    streamId: string,
    live: LiveTarget | undefined,
    competition: Competition,
  ): Promise<StreamOutcome> {
    const { checkpoint } = competition;
    const { carefulUntil, clear, clearBehind } = this.#deadClaims(claims, streamId, checkpoint, competition.dead);
    const clean =
      carefulUntil === 0 &&
      checkpoint.parked === undefined &&
      checkpoint.attempts === 0 &&
      checkpoint.carefulUntil <= checkpoint.delivered &&
      checkpoint.lease === undefined;
    // Nothing new (a redelivery): no write at all, clean or not. Other claimers take a claim whose
    // versions the checkpoint has passed for one that is done with the stream, so it must not
    // write it again (nor take its lease: a holder by claim may be handing it over meanwhile).
    // It hands nothing over, so dead claims ahead of the checkpoint stay for the holder that
    // does (careful mode); only those the checkpoint has passed are cleared.
    if (live !== undefined && live.target <= checkpoint.delivered) {
      await clearBehind();
      const { delivered, head, parked } = checkpoint;
      return parked
        ? { status: 'parked', streamId, version: parked.version, count: 0, newlyParked: false, head, delivered }
        : { status: 'delivered', streamId, delivered, count: 0, head };
    }
    if (!clean) return this.#hold(streamId, live, { carefulUntil, clear });
    // In memory, the attempt in flight is counted as a take would (a failure writes it); it is
    // never written while held by the claim.
    const holding: Holding = new Holding(
      this.#options,
      { ...checkpoint, attempts: 1 },
      { mayRetry: (): boolean => this.#timeLeft(undefined), sleep: this.#sleep, leased: false },
    );
    let outcome: StreamOutcome;
    try {
      outcome = await this.#deliver(holding, live);
    } catch (error) {
      return {
        status: 'retry',
        streamId,
        reason: errorText(error),
        ...(holding.current.delivered > checkpoint.delivered ? { delivered: holding.current.delivered } : {}),
      };
    }
    // Dead claims (none ahead of the checkpoint here) are cleared once the stream is handed over.
    await clear();
    // A catch-up whose projection threw: retried at once, under a lease (careful mode, counted).
    if (live === undefined && outcome.status === 'failed') {
      const next = await this.#hold(streamId, undefined, { carefulUntil: 0, clear: async () => undefined });
      return 'count' in next ? { ...next, count: next.count + outcome.count } : next;
    }
    return outcome;
  }

  /**
   * Dead claims naming a stream (their `Until` passed): careful mode up to the highest version
   * one of them named past the checkpoint (nothing counted for them), and `clear` takes the
   * stream off each (docs/ARCHITECTURE.md, "Subscriptions"); `clearBehind` only off those whose
   * versions the checkpoint has passed. A holder hands over at most a page past its last
   * checkpoint (see #start): a dead claim's holder died there at the latest, whatever version it
   * named (a catch-up names no end).
   */
  #deadClaims(
    claims: ClaimStore,
    streamId: string,
    checkpoint: Checkpoint,
    dead: readonly Claim[],
  ): DeadClaims & { readonly clearBehind: () => Promise<void> } {
    const isAhead = (claim: Claim): boolean => claim.streams.get(streamId)! > checkpoint.delivered;
    const ahead = dead.filter(isAhead);
    const clearing = (some: readonly Claim[]) => async (): Promise<void> => {
      for (const claim of some) await claims.clearDead(claim.key, streamId).catch(() => undefined);
    };
    return {
      carefulUntil: Math.min(
        Math.max(0, ...ahead.map((claim) => claim.streams.get(streamId)!)),
        checkpoint.delivered + this.#page,
      ),
      clear: clearing(dead),
      clearBehind: clearing(dead.filter((claim) => !isAhead(claim))),
    };
  }

  /**
   * A stream that ran out of time after progress is far behind: rather than have Lambda resend
   * the batch again and again (each resend counts against the mapping's retry limit), the
   * replay worker catches it up from its checkpoint, to the end of the table, so its records
   * here can be acknowledged. If that ask cannot be written, Lambda resends as usual.
   */
  async #leaveToReplay(outcomes: StreamOutcome[]): Promise<void> {
    const far = outcomes.flatMap((outcome, index) =>
      outcome.status === 'retry' && outcome.timeUp && outcome.delivered !== undefined ? [index] : [],
    );
    if (far.length === 0) return;
    try {
      await this.#options.checkpoints.askReplay(far.map((index) => outcomes[index]!.streamId));
    } catch {
      return;
    }
    for (const index of far)
      outcomes[index] = { ...(outcomes[index] as StreamOutcome & { status: 'retry' }), toReplay: true };
  }

  /**
   * Deliver one stream from its checkpoint to the end of the table (replay, resume), in pages,
   * holding the stream. A parked stream is left alone unless its resume was asked for; a
   * failing projection is retried here up to the attempt limit, then parks the stream.
   */
  public async catchUp(streamId: string): Promise<StreamOutcome> {
    // With claims, a catch-up holds the stream as a live batch does, by a claim of its own (naming
    // no end: it goes to the end of the table), so that only claims decide who holds a stream
    // (docs/ARCHITECTURE.md, "Subscriptions"); a lease is then only ever taken by a claim holder.
    if (this.#options.claims) return (await this.#claimBatch(this.#options.claims, [[streamId, undefined]]))[0]!;
    return this.#hold(streamId, undefined);
  }

  /** Take the stream, deliver (`live`: up to the batch's newest version; else to the end of the table), release. */
  async #hold(streamId: string, live: LiveTarget | undefined, dead?: DeadClaims): Promise<StreamOutcome> {
    let taken: { held: Checkpoint } | { reason: string; timeUp?: true; held?: true };
    try {
      // A claim holder does not wait for a lease: what it read when it claimed is stale by then.
      taken = await this.#take(streamId, dead === undefined);
    } catch (error) {
      // Not a request's failure (#take waits those out): a take whose response was lost may
      // still have written the lease, so give it back (conditioned on this owner).
      await this.#options.checkpoints.release(streamId, this.#options.owner).catch(() => undefined);
      return { status: 'retry', streamId, reason: `the stream could not be taken: ${errorText(error)}` };
    }
    if ('reason' in taken) return { status: 'retry', streamId, ...taken };
    const holding: Holding = new Holding(this.#options, taken.held, {
      mayRetry: (): boolean => this.#timeLeft(holding.current.lease),
      sleep: this.#sleep,
      leased: true,
    });
    try {
      const outcome = await this.#deliver(holding, live, dead);
      // Dead claims are cleared once the stream is handed over (a holder that dies before finds
      // them again: careful mode again, nothing counted), so that clearing many of them does not
      // stand between a holder and its first checkpoint.
      await dead?.clear();
      return outcome;
    } catch (error) {
      // A lost write (take-over, reset) or an infrastructure failure: give the lease back, best
      // effort; what was checkpointed stays, the rest comes again.
      await this.#options.checkpoints.release(streamId, this.#options.owner).catch(() => undefined);
      return {
        status: 'retry',
        streamId,
        reason: errorText(error),
        ...(holding.current.delivered > taken.held.delivered ? { delivered: holding.current.delivered } : {}),
      };
    }
  }

  async #deliver(holding: Holding, live: LiveTarget | undefined, dead?: DeadClaims): Promise<StreamOutcome> {
    const taken = holding.current;
    const { streamId } = taken;
    const started = await this.#start(holding, live);
    if ('outcome' in started) return started.outcome;
    /** Attempts counted before this take (restored when this run neither fails nor progresses). */
    const before = started.before;
    /** Careful mode up to this version: one event at a time, a checkpoint after each. */
    let careful = dead ? await this.#carefulAfterDeadClaims(holding, started.carefulUntil, dead) : started.carefulUntil;
    let head = Math.max(taken.head, live?.target ?? 0);
    let count = 0;
    /** Events read and not handed over yet (careful mode hands a page over one event at a time). */
    let rest: StoredEvent[] = [];
    /** The last table read returned a full page: the table may have more after `rest`. */
    let fullRead = false;
    for (;;) {
      const current = holding.current;
      const from = current.delivered + 1;
      const done = live !== undefined && from > live.target;
      const outOfTime = !done && !this.#timeLeft(current.lease);
      if (done || outOfTime) rest = [];
      else if (rest[0]?.Version !== from) {
        rest = live ? await this.#livePage(streamId, live, from) : await this.#tablePage(streamId, from);
        fullRead = !live && rest.length === this.#page;
      }
      const page = rest;
      if (page.length > 0) head = Math.max(head, page[page.length - 1]!.Version);
      const oneByOne = current.delivered < careful;
      const handed = await this.#handOver(page, current, oneByOne);
      count += handed.count;
      const { delivered, failure } = handed;
      rest = page.filter((event) => event.Version > delivered);
      if (failure !== undefined) {
        const failed = await this.#failed(holding, { delivered, head, count, failure, careful }, live !== undefined);
        if (failed) return failed;
        // Retried here (a catch-up): carefully at the version that failed, from the page already read.
        careful = Math.max(careful, delivered + 1);
        continue;
      }
      const timeUp = outOfTime || handed.timeUp;
      const more = !timeUp && page.length > 0 && (live ? delivered < live.target : rest.length > 0 || fullRead);
      if (more) {
        // A page (careful: an event) done: checkpoint it, keep the lease; the attempt at the next
        // version is in flight, and what was counted before is forgiven: the version that the
        // counted failures could have been at went through, and any later one is in careful range.
        await holding.save({
          ...current,
          delivered,
          head,
          attempts: 1,
          carefulUntil: carefulFrom(careful, delivered),
          lastError: undefined,
        });
        continue;
      }
      const progressed = delivered > taken.delivered;
      await holding.save({
        ...current,
        delivered,
        head,
        attempts: progressed ? 0 : before,
        carefulUntil: carefulFrom(careful, delivered),
        ...(progressed ? { lastError: undefined } : {}),
        lease: undefined,
      });
      if (!timeUp) return { status: 'delivered', streamId, delivered, count, head };
      return {
        status: 'retry',
        streamId,
        reason: 'the invocation is running out of time',
        timeUp: true,
        ...(progressed ? { delivered } : {}),
      };
    }
  }

  /**
   * Dead claims ahead of the checkpoint (a holder, or a waiter, that died): careful mode up to
   * the highest version they named, written before anything is handed over, so that every death
   * from here is counted where it happens; nothing is counted for the claims themselves (the
   * stream is taken off them once it is handed over). Returns the careful range.
   */
  async #carefulAfterDeadClaims(holding: Holding, careful: number, dead: DeadClaims): Promise<number> {
    let until = careful;
    if (dead.carefulUntil > until && dead.carefulUntil > holding.current.delivered) {
      until = dead.carefulUntil;
      await holding.save({ ...holding.current, carefulUntil: until });
    }
    return until;
  }

  /**
   * A parked stream: the live path only moves its head, a catch-up resumes it when asked to.
   * A stream whose last `maxAttempts` holders died is parked here, before anything is handed over.
   *
   * Careful mode (docs/ARCHITECTURE.md, "Subscriptions"): a take that finds attempts counted
   * since the last checkpoint of progress hands over one event at a time, a checkpoint after
   * each, so a holder that dies in careful mode dies at the version after its checkpoint. A
   * checkpoint whose careful range covers the next version says that every attempt counted there
   * was made in careful mode (or ended in a throw there): each is that version's. Otherwise the
   * first attempt counted there was made a page at a time (before it, nothing was counted) and
   * ended unplaced: its holder died, or gave the stream back after a failed request, somewhere in
   * its page, at most a page past the checkpoint (a holder hands over at most a page after its
   * last write; every holder of a subscription reads pages of one size: one function, one
   * `pageSize`). That attempt is not counted against the next version, and careful mode covers
   * its page, so the version it died on is handed over alone from then on.
   */
  async #start(
    holding: Holding,
    live: LiveTarget | undefined,
  ): Promise<{ outcome: StreamOutcome } | { before: number; carefulUntil: number }> {
    const taken = holding.current;
    const { streamId } = taken;
    const before = taken.attempts - 1;
    const head = Math.max(taken.head, live?.target ?? 0);
    if (taken.parked) {
      if (live || !taken.parked.resumeRequested) {
        // New events of a parked stream wait for the resume; keep the head for the lag.
        await holding.save({ ...taken, head, attempts: before, lease: undefined });
        const { version } = taken.parked;
        const delivered = taken.delivered;
        return { outcome: { status: 'parked', streamId, version, count: 0, newlyParked: false, head, delivered } };
      }
      // Resumed: its attempts count afresh, this one in flight (careful mode, if any, stays).
      await holding.save({ ...taken, parked: undefined, attempts: 1, lastError: undefined });
      return { before: 0, carefulUntil: taken.carefulUntil };
    }
    const unplaced = before > 0 && taken.carefulUntil <= taken.delivered;
    const counted = unplaced ? before - 1 : before;
    const carefulUntil = unplaced ? taken.delivered + this.#page : taken.carefulUntil;
    // What the next write stores: the count without the unplaced attempt (this one in flight), the range.
    holding.amend({ attempts: counted + 1, carefulUntil });
    if (counted < this.#maxAttempts) return { before: counted, carefulUntil };
    const error = diedText(counted);
    const version = taken.delivered + 1;
    const parked: Parked = { version, error, at: new Date(this.#now()).toISOString(), resumeRequested: false };
    await holding.save({
      ...taken,
      head,
      attempts: counted,
      carefulUntil,
      lastError: error,
      parked,
      lease: undefined,
    });
    const delivered = taken.delivered;
    return { outcome: { status: 'parked', streamId, version, count: 0, newlyParked: true, head, delivered } };
  }

  /**
   * Hand a page over in order, while the time allows; the filter's other types are passed over
   * (delivered). `oneByOne` (careful mode): stop after the first event handed over.
   */
  async #handOver(
    page: readonly StoredEvent[],
    current: Checkpoint,
    oneByOne: boolean,
  ): Promise<{ delivered: number; count: number; failure: string | undefined; timeUp: boolean }> {
    let delivered = current.delivered;
    let count = 0;
    for (const event of page) {
      if (this.#types === undefined || this.#types.has(event.EventType)) {
        if (oneByOne && count > 0) break;
        if (!this.#timeLeft(current.lease)) return { delivered, count, failure: undefined, timeUp: true };
        try {
          await this.#options.project(event);
        } catch (error) {
          return { delivered, count, failure: errorText(error), timeUp: false };
        }
        count += 1;
      }
      delivered = event.Version;
    }
    return { delivered, count, failure: undefined, timeUp: false };
  }

  /**
   * The projection threw at `delivered + 1`: park after `maxAttempts` counted attempts; a live
   * batch reports the failure (Lambda resends), a catch-up retries at once (undefined). The next
   * attempt at that version is careful (alone, checkpointed), so a death there is counted there.
   */
  async #failed(
    holding: Holding,
    at: { delivered: number; head: number; count: number; failure: string; careful: number },
    live: boolean,
  ): Promise<StreamOutcome | undefined> {
    const current = holding.current;
    const { streamId } = current;
    const { delivered, head, count, failure } = at;
    const attempts = delivered > current.delivered ? 1 : current.attempts;
    const version = delivered + 1;
    const carefulUntil = Math.max(at.careful, version);
    if (attempts >= this.#maxAttempts) {
      const parked: Parked = {
        version,
        error: failure,
        at: new Date(this.#now()).toISOString(),
        resumeRequested: false,
      };
      await holding.save({
        ...current,
        delivered,
        head,
        attempts,
        carefulUntil,
        lastError: failure,
        parked,
        lease: undefined,
      });
      return { status: 'parked', streamId, version, count, newlyParked: true, head, delivered };
    }
    // A catch-up held by a claim (no lease) does not retry here: the retry's attempt would be
    // counted before it starts, with no lease to say whose it is. It reports the failure, and
    // #holdClaimed goes on under a lease (a take counts the attempt).
    if (live || !holding.leased) {
      await holding.save({ ...current, delivered, head, attempts, carefulUntil, lastError: failure, lease: undefined });
      return { status: 'failed', streamId, version, count, error: failure, head, delivered };
    }
    // Catch-up retries at once: the next attempt is counted as it starts.
    await holding.save({ ...current, delivered, head, attempts: attempts + 1, carefulUntil, lastError: failure });
    return undefined;
  }

  /** The next page of a live stream: versions `from`.. up to the batch's newest, the batch's events where it has them, the rest read. */
  async #livePage(streamId: string, live: LiveTarget, from: number): Promise<StoredEvent[]> {
    const to = Math.min(live.target, from + this.#page - 1);
    const missing: number[] = [];
    for (let version = from; version <= to; version += 1) if (!live.events.has(version)) missing.push(version);
    const filled = new Map<number, StoredEvent>();
    if (missing.length > 0) {
      const first = missing[0]!;
      const last = missing[missing.length - 1]!;
      for (const event of await this.#options.reader.read(streamId, first, last, last - first + 1))
        filled.set(event.Version, event);
    }
    const page: StoredEvent[] = [];
    for (let version = from; version <= to; version += 1) {
      const event = live.events.get(version) ?? filled.get(version);
      if (!event) throw new GapNotFilledError(streamId, version);
      page.push(event);
    }
    return page;
  }

  async #tablePage(streamId: string, from: number): Promise<StoredEvent[]> {
    const page = await this.#options.reader.read(streamId, from, undefined, this.#page);
    page.forEach((event, index) => {
      if (event.Version !== from + index) throw new GapNotFilledError(streamId, from + index);
    });
    return page;
  }
}

/** A stream this run holds: the checkpoint as last written, and the fenced write. */
class Holding {
  readonly #options: SubscriptionOptions;
  readonly #mayRetry: () => boolean;
  readonly #sleep: (ms: number) => Promise<void>;
  /** Held by a lease on the checkpoint (every write is conditioned on it), or by a claim (on the revision alone). */
  readonly #leased: boolean;
  #current: Checkpoint;

  public constructor(
    options: SubscriptionOptions,
    taken: Checkpoint,
    retry: { mayRetry: () => boolean; sleep: (ms: number) => Promise<void>; leased: boolean },
  ) {
    this.#options = options;
    this.#current = taken;
    this.#mayRetry = retry.mayRetry;
    this.#sleep = retry.sleep;
    this.#leased = retry.leased;
  }

  public get current(): Checkpoint {
    return this.#current;
  }

  /** Held by a lease (else by a claim). */
  public get leased(): boolean {
    return this.#leased;
  }

  /** Change what the next write stores, without a write (the revision stays the one taken). */
  public amend(change: Pick<Checkpoint, 'attempts' | 'carefulUntil'>): void {
    this.#current = { ...this.#current, ...change };
  }

  /**
   * Write `next` on the revision last written and only while this owner holds the lease; a lost
   * write throws. A write that fails (a throttle, a lost response) is tried again while time is
   * left, so a passing store error is not counted as a failed attempt: when the retry finds the
   * revision moved on, a strongly consistent read tells whether it was this write that landed.
   */
  public async save(next: Checkpoint): Promise<void> {
    const written = { ...next, revision: this.#current.revision };
    const { checkpoints, owner } = this.#options;
    let failed: unknown;
    for (let attempt = 0; ; attempt += 1) {
      let saved: boolean;
      try {
        saved = await checkpoints.save(written, this.#leased ? owner : undefined);
      } catch (error) {
        if (attempt >= SAVE_RETRIES || !this.#mayRetry()) throw error;
        failed = error;
        await this.#sleep(SAVE_RETRY_PAUSE_MS * 2 ** attempt);
        continue;
      }
      if (!saved && (failed === undefined || !(await this.#landed(written))))
        throw new CheckpointConflictError(next.streamId);
      break;
    }
    this.#current = { ...written, revision: written.revision + 1 };
  }

  /** Whether the stored checkpoint is exactly `written` (a write of this run whose response was lost). */
  async #landed(written: Checkpoint): Promise<boolean> {
    const stored = (await this.#options.checkpoints.load([written.streamId])).checkpoints.get(written.streamId);
    return (
      stored !== undefined &&
      stored.revision === written.revision + 1 &&
      stored.delivered === written.delivered &&
      stored.attempts === written.attempts &&
      carefulFrom(stored.carefulUntil, stored.delivered) === carefulFrom(written.carefulUntil, written.delivered) &&
      stored.lease?.owner === written.lease?.owner &&
      stored.lease?.until === written.lease?.until
    );
  }
}

/** A checkpoint write that failed is tried this many times more, pausing this long (doubling). */
const SAVE_RETRIES = 3;
const SAVE_RETRY_PAUSE_MS = 50;

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
}

export interface ReplayResult {
  readonly state: ReplayState | undefined;
  /** Another worker holds the replay. */
  readonly busy: boolean;
  readonly outcomes: StreamOutcome[];
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

  // The runtime waits for a stream another invocation holds, within the invocation's time.
  const catchUpHeld = (streamId: string) => options.runtime.catchUp(streamId);
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
      if (now() >= options.deadline && resumed.length > 0) break;
      const outcome = await catchUpHeld(streamId);
      outcomes.push(outcome);
      if (outcome.status !== 'retry') resumed.push(streamId);
    }
    if (resumed.length > 0) {
      // A set deletion: asks added meanwhile are kept.
      await options.checkpoints.resumeDone(resumed);
      state = { ...state, resume: state.resume.filter((id) => !resumed.includes(id)) };
    }

    if (state.status !== 'done') {
      if (state.status === 'pending')
        state = await save({ ...state, status: 'running', startedAt: stamp(), updatedAt: stamp() });
      scanning: while (now() < options.deadline) {
        const page = await options.scanner.scan(state.cursor, options.scanPage ?? SubscriptionDefaults.scanPage);
        let { lastStream, streams, events } = state;
        for (const streamId of page.streamIds) {
          if (streamId === lastStream) continue;
          const outcome = await catchUpHeld(streamId);
          outcomes.push(outcome);
          // Out of time, or a live batch holds the stream longer than this run can wait (a long
          // catch-up of its own): this page is scanned again next run (streams caught up cost a take each).
          if (outcome.status === 'retry' && (outcome.timeUp || outcome.held)) break scanning;
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
