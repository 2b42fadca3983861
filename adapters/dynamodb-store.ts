import {
  ConditionalCheckFailedException,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  type AttributeValue,
  type DynamoDBClient,
  type Put,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { marshall, NumberValueImpl, unmarshall } from '@aws-sdk/util-dynamodb';
import { EventStoreError, TransientStoreError } from '../core/errors.ts';
import {
  checkGroupStorable,
  eventFingerprint,
  eventItem,
  LARGEST_VERSION,
  PLACEHOLDER_RECORDED_AT,
  PLACEHOLDER_SEQUENCE,
  type ValidEvent,
  type ValidGroup,
} from '../core/event.ts';
import { ExactNumber, numberFromLiteral } from '../core/json.ts';
import { Limits, TableKeys } from '../core/keys.ts';
import { laterMessage, parseSourceSequence, sequenceBefore } from '../core/fifo.ts';
import { RejectionReason } from '../core/reasons.ts';
import { checkStorable } from '../core/storable.ts';
import {
  CLOCK_SKEW_MS,
  type AppendOptions,
  type AppendOutcome,
  type EventStore,
  type ReadStreamOptions,
  type ReadStreamResult,
  type StoredEvent,
} from '../core/store.ts';
import { duplicateWindow, StreamHeadCache, type CachedEvent, type StreamHead } from '../core/stream-cache.ts';

export interface DynamoDbEventStoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Streams whose head this container remembers. @default 1000 */
  readonly cacheSize?: number;
  /** Conditional-put attempts per event before it is reported failed. @default 8 */
  readonly maxAttempts?: number;
  /** Called for every conditional put that lost to another writer or a stale cache. */
  readonly onConflict?: (streamId: string) => void;
}

const { partitionKey: PK, sortKey: SK } = TableKeys;
/** How many events per stream the cache keeps: the largest duplicate window (`dedupWindow` 1000). */
const CACHE_WINDOW = 1000;
const QUERY_PAGE = 1000;
/**
 * The first read of a stream's newest events (newest first) asks for this many; each further
 * page for twice as many as the last. 4 items of about 1 KB are one read unit, so a quiet
 * stream costs one (docs/ARCHITECTURE.md, "Appending and idempotency").
 */
const FIRST_PAGE = 4;
/** A contended stream goes back to optimistic puts after this many read-first catch-ups in a row found nothing new. */
const QUIET_CATCH_UPS = 3;

/** The outcome of one attempt to write one event, or a group. */
type Attempt =
  | { readonly kind: 'done'; readonly outcome: AppendOutcome }
  /** The condition failed and the item in the way was not this event: read and try again. */
  | { readonly kind: 'retry' }
  /** A group's transaction was cancelled for a reason that may pass (`BUSY_CODES`): back off and try again. */
  | { readonly kind: 'busy'; readonly reason: string };

/**
 * Cancellation reasons of a transaction that may pass (docs/ARCHITECTURE.md, "Groups"): another
 * transaction or write on one of its items at the same moment, or throttling.
 */
const BUSY_CODES: ReadonlySet<string> = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
]);

/** The busy reason of a group seen in part while its transaction commits (`#partlySeen`). */
const COMMITTING = 'a group being committed was seen in part';

/** The put's table and condition, shared by `PutItem` and a transaction's puts. */
type Condition = Omit<Put, 'Item'>;

/**
 * What one append writes: one event (`appendToStream`, once per event) or a group's events all
 * or nothing (`appendGroup`, docs/ARCHITECTURE.md "Groups"). Every rule of "Appending and
 * idempotency" applies to it as a whole.
 */
interface Unit {
  readonly streamId: string;
  /** One event, or a group's events in order (ExpectedVersion, if any, is `expected`). */
  readonly events: readonly ValidEvent[];
  /** `eventFingerprint` of each event, by index. */
  readonly fingerprints: readonly string[];
  readonly expected: number | undefined;
  /** A group: one transaction, items with `GroupSize`/`GroupIndex`, details naming `Events[i]`. */
  readonly group: boolean;
}

/** A wait that ends early when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Full jitter: a random wait up to 10 ms x 2^attempt, at most 1 s. */
function backoff(attempt: number, signal: AbortSignal | undefined): Promise<void> {
  return sleep(Math.random() * Math.min(1000, 10 * 2 ** attempt), signal);
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/** Read an item back: every number as the value it was sent as (core/json.ts), beyond 2^53 and 17 digits included. */
export function fromItem(item: Record<string, AttributeValue>): StoredEvent {
  return unmarshall(item, { wrapNumbers: numberFromLiteral }) as StoredEvent;
}

/** ExactNumber -> the SDK's NumberValue, so the literal reaches DynamoDB as sent. */
function toSdkNumbers(value: unknown): unknown {
  if (value instanceof ExactNumber) return NumberValueImpl.from(value.text);
  if (Array.isArray(value)) return value.map(toSdkNumbers);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, toSdkNumbers(inner)]));
  }
  return value;
}

/** What one append call carries down to every request it makes. */
interface Call {
  /** The duplicate window's count cap. */
  readonly window: number;
  /** The duplicate window's time bound (epoch ms), if any. */
  readonly notBefore: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly firstInBatch: boolean;
  /** The message's `SourceSequence` (core/fifo.ts), FIFO with group = stream. */
  readonly sequence: string | undefined;
  /** The message's `SentTimestamp` (epoch ms). */
  readonly sentAt: number | undefined;
  /** A redelivery's window start (see `duplicateWindow`): `sentAt - CLOCK_SKEW_MS`; undefined for a first delivery. */
  readonly since: number | undefined;
  /**
   * Set once an attempt of this call may have landed unseen (a group's transaction cancelled
   * as busy, perhaps on the SDK's retry of one that landed with its answer lost): the duplicate
   * window also holds everything recorded since this call began, so a later attempt finds its
   * own copy however many events came since (docs/ARCHITECTURE.md, "Groups").
   */
  readonly ownSince?: number | undefined;
}

/** What the cache keeps of a stored event. */
function cachedEvent(event: StoredEvent): CachedEvent {
  return {
    version: event.Version,
    eventId: event.EventId,
    fingerprint: eventFingerprint(event),
    recordedAt: Date.parse(event.RecordedAt),
    ...(event.SourceSequence !== undefined ? { sequence: event.SourceSequence } : {}),
    ...(event.GroupIndex !== undefined ? { groupIndex: event.GroupIndex } : {}),
    ...(event.GroupSize !== undefined ? { groupSize: event.GroupSize } : {}),
  };
}

/**
 * The event store on DynamoDB (docs/ARCHITECTURE.md, "Appending and idempotency"): one item per event keyed `ID` + `Version`,
 * versions gapless from 1, every write a `PutItem` conditioned on `attribute_not_exists`.
 *
 * @example
 * ```ts
 * const store = new DynamoDbEventStore({ client: new DynamoDBClient({}), tableName: 'events' });
 * const [outcome] = await store.appendToStream('order-1', [event]);
 * const { events, version } = await store.readStream('order-1');
 * ```
 */
export class DynamoDbEventStore implements EventStore {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;
  readonly #maxAttempts: number;
  readonly #onConflict: (streamId: string) => void;
  readonly #cache: StreamHeadCache;
  /** One append at a time per stream in this container, so its own calls never race. */
  readonly #locks = new Map<string, Promise<unknown>>();

  public constructor(options: DynamoDbEventStoreOptions) {
    this.#client = options.client;
    this.#tableName = options.tableName;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 8);
    this.#onConflict = options.onConflict ?? (() => undefined);
    this.#cache = new StreamHeadCache({ maxStreams: options.cacheSize ?? 1000, window: CACHE_WINDOW });
  }

  public async appendToStream(
    streamId: string,
    events: readonly ValidEvent[],
    options: AppendOptions = {},
  ): Promise<AppendOutcome[]> {
    return this.#locked(streamId, () => this.#appendInOrder(streamId, events, this.#call(options)));
  }

  /**
   * A group's events all or nothing (docs/ARCHITECTURE.md, "Groups"): one `TransactWriteItems` of
   * a conditional put per event at consecutive versions, decided by the same rules as one event
   * (duplicate window, `ExpectedVersion`, FIFO `decided`), applied to the group as a unit.
   *
   * @example
   * ```ts
   * const outcome = await store.appendGroup({ ID: 'order-1', ExpectedVersion: 0, events: [placed, reserved] });
   * // { status: 'stored', version: 1, count: 2 }
   * ```
   */
  public async appendGroup(group: ValidGroup, options: AppendOptions = {}): Promise<AppendOutcome> {
    const { ID: streamId, events } = group;
    if (events.length === 0 || events.length > Limits.maxGroupEvents) {
      throw new EventStoreError(
        `group of stream ${streamId}: ${events.length} events; a group has 1 to ${Limits.maxGroupEvents}`,
      );
    }
    const owners = new Map<string, number>();
    for (const [index, event] of events.entries()) {
      if (event.ID !== streamId) {
        throw new EventStoreError(`Events[${index}] (${event.EventId}) belongs to stream ${event.ID}, not ${streamId}`);
      }
      if (event.ExpectedVersion !== undefined) {
        throw new EventStoreError(
          `group of stream ${streamId}: Events[${index}] has an ExpectedVersion of its own; a group has one, next to its events`,
        );
      }
      if (owners.has(event.EventId)) {
        throw new EventStoreError(
          `group of stream ${streamId}: Events[${index}] has the EventId of Events[${owners.get(event.EventId)}] (${event.EventId})`,
        );
      }
      owners.set(event.EventId, index);
    }
    const problem = checkGroupStorable(group);
    if (problem) return { status: 'rejected', reason: problem.reason, detail: problem.detail };
    const unit: Unit = {
      streamId,
      events,
      fingerprints: events.map((event) => eventFingerprint(event)),
      expected: group.ExpectedVersion,
      group: true,
    };
    return this.#locked(streamId, () => this.#appendUnit(unit, this.#call(options)));
  }

  #call(options: AppendOptions): Call {
    const sentAt = options.sentAt !== undefined && Number.isFinite(options.sentAt) ? options.sentAt : undefined;
    return {
      window: Math.min(CACHE_WINDOW, Math.max(1, options.dedupWindow ?? Limits.defaultDedupWindow)),
      notBefore: options.notBefore,
      signal: options.signal,
      firstInBatch: options.firstInBatch ?? true,
      sequence: options.sourceSequence,
      sentAt,
      since: options.redelivery === true && sentAt !== undefined ? sentAt - CLOCK_SKEW_MS : undefined,
    };
  }

  /** Run `append` after every earlier append to the stream in this container has settled. */
  async #locked<T>(streamId: string, append: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(streamId) ?? Promise.resolve();
    const run = previous.then(append);
    const settled = run.catch(() => undefined);
    this.#locks.set(streamId, settled);
    try {
      return await run;
    } finally {
      if (this.#locks.get(streamId) === settled) this.#locks.delete(streamId);
    }
  }

  async #appendInOrder(streamId: string, events: readonly ValidEvent[], call: Call): Promise<AppendOutcome[]> {
    const outcomes: AppendOutcome[] = [];
    let failure: Error | undefined;
    for (const event of events) {
      if (failure) {
        outcomes.push({
          status: 'failed',
          error: new TransientStoreError(
            `not attempted: an earlier event of stream ${streamId} failed`,
            { streamId },
            { cause: failure },
          ),
        });
        continue;
      }
      const first = call.firstInBatch && outcomes.length === 0;
      const outcome = await this.#appendOne(streamId, event, { ...call, firstInBatch: first });
      if (outcome.status === 'failed') failure = outcome.error;
      outcomes.push(outcome);
    }
    return outcomes;
  }

  async #appendOne(streamId: string, event: ValidEvent, call: Call): Promise<AppendOutcome> {
    if (event.ID !== streamId) {
      throw new EventStoreError(`event ${event.EventId} belongs to stream ${event.ID}, not ${streamId}`);
    }
    const fingerprint = eventFingerprint(event);
    const problem = checkStorable(eventItem(event, LARGEST_VERSION, PLACEHOLDER_RECORDED_AT, PLACEHOLDER_SEQUENCE));
    if (problem) return { status: 'rejected', reason: problem.reason, detail: problem.detail };
    const unit: Unit = {
      streamId,
      events: [event],
      fingerprints: [fingerprint],
      expected: event.ExpectedVersion,
      group: false,
    };
    return this.#appendUnit(unit, call);
  }

  /** Attempts until a verdict: another writer won the race, or DynamoDB was busy, at most `maxAttempts` times. */
  async #appendUnit(unit: Unit, call: Call): Promise<AppendOutcome> {
    const { streamId } = unit;
    let busy: string | undefined;
    // Date.now(): the fault explorer's virtual clock serves it (test/faults/simulation).
    const began = Date.now() - CLOCK_SKEW_MS;
    let ownSince: number | undefined;
    try {
      for (let attempt = 0; attempt < this.#maxAttempts; attempt += 1) {
        if (call.signal?.aborted) throw this.#deadline(unit, call.signal);
        const attemptCall = { ...call, firstInBatch: call.firstInBatch && attempt === 0, ownSince };
        const result =
          unit.expected === undefined
            ? await this.#appendAny(unit, attemptCall)
            : await this.#appendExpected(unit, unit.expected, attemptCall);
        if (result.kind === 'done') return result.outcome;
        if (result.kind === 'busy') {
          if (unit.group && result.reason !== COMMITTING) ownSince = began;
          busy = result.reason;
          await backoff(attempt + 1, call.signal);
          continue;
        }
        busy = undefined;
        this.#onConflict(streamId);
        if (attempt > 0) await backoff(attempt, call.signal);
      }
      const message =
        busy === undefined
          ? `another writer won ${this.#maxAttempts} conditional ${unit.group ? 'writes' : 'puts'} in a row`
          : busy === COMMITTING
            ? `${busy} on ${this.#maxAttempts} reads in a row`
            : unit.group
              ? `DynamoDB cancelled the group's transaction (${busy}), the last of ${this.#maxAttempts} attempts`
              : `DynamoDB refused the put (${busy}: a transaction was in progress on its item), the last of ${this.#maxAttempts} attempts`;
      return {
        status: 'failed',
        error: new TransientStoreError(
          `stream ${streamId}: ${message}; SQS will deliver the ${unit.group ? 'group' : 'event'} again`,
          { streamId },
        ),
      };
    } catch (error) {
      return { status: 'failed', error: this.#transient(streamId, error) };
    }
  }

  /** The stream's head as this container knows it, brought up to date when a lost race or a busy stream says it is stale. */
  async #head(streamId: string, call: Call): Promise<{ head: StreamHead; fresh: boolean }> {
    const cached = this.#cache.get(streamId);
    if (cached === undefined) return { head: await this.#readNewest(streamId, call), fresh: true };
    if (cached.behind === true || (cached.contended === true && call.firstInBatch)) {
      return { head: await this.#catchUp(streamId, cached, call), fresh: true };
    }
    return { head: cached, fresh: false };
  }

  /**
   * Each EventId of the unit in the message's duplicate window (`duplicateWindow`,
   * core/stream-cache.ts), the newest copy if there are several, and the window. The cache may
   * know more events, but a verdict must not depend on which container handles the message: a
   * cached and a cold container search the same window. When the events known cannot decide the
   * window, older ones are read first (newest first, in growing pages) and kept.
   */
  async #inWindow(
    head: StreamHead,
    unit: Unit,
    call: Call,
  ): Promise<{ known: (CachedEvent | undefined)[]; window: CachedEvent[]; own?: AppendOutcome | 'busy' }> {
    if (call.ownSince !== undefined) {
      // An attempt of this call may have landed unseen: everything recorded since the call began
      // is searched for that copy only. Found whole, the unit is a duplicate; seen in part, it
      // may be committing now. Anything else found there (another group holding some of these
      // EventIds) is outside the message's window: it decides nothing, as for a cold container.
      const wide = await this.#window(unit.streamId, head, call, FIRST_PAGE);
      const copies = this.#copies(unit, wide);
      if (copies.some((copy, index) => copy !== undefined && copy.fingerprint !== unit.fingerprints[index])) {
        // Another copy with other content is no trace of this call's own write.
      } else if (copies.every((copy) => copy !== undefined)) {
        return { known: copies, window: wide, own: this.#duplicate(unit, (copies[0] as CachedEvent).version) };
      } else if (copies.some((copy) => copy !== undefined) && this.#partlySeen(unit, copies, this.#seen(head, wide))) {
        return { known: copies, window: wide, own: 'busy' };
      }
    }
    const bounds = call.ownSince === undefined ? call : { ...call, ownSince: undefined };
    const window = await this.#window(unit.streamId, head, bounds, FIRST_PAGE);
    return { known: this.#copies(unit, window), window };
  }

  /**
   * The copy of each event of the unit in `window`, by index. A stream may hold several copies
   * of an EventId (a resend outside the window is stored again, possibly with other content): a
   * copy with this content makes a duplicate, whatever other copies say; only when none has it
   * is the newest copy an EventIdConflict.
   */
  #copies(unit: Unit, window: readonly CachedEvent[]): (CachedEvent | undefined)[] {
    return unit.events.map(
      (event, index) =>
        window.find(
          (candidate) => candidate.eventId === event.EventId && candidate.fingerprint === unit.fingerprints[index],
        ) ?? window.find((candidate) => candidate.eventId === event.EventId),
    );
  }

  /**
   * The message's duplicate window, newest first, after reading what it still needs below the
   * lowest event known. A redelivery's window can hold more events than the cache keeps
   * (`CACHE_WINDOW`): those are read for this message only.
   */
  async #window(streamId: string, head: StreamHead, call: Call, firstPage: number): Promise<CachedEvent[]> {
    /** Events older than the cache keeps, oldest first, contiguous below `head.tail`. */
    let deeper: CachedEvent[] = [];
    for (let page = firstPage; ; page = Math.min(QUERY_PAGE, page * 2)) {
      const known = deeper.length === 0 ? head : { version: head.version, tail: [...deeper, ...head.tail] };
      const bounds =
        call.ownSince === undefined ? call : { ...call, since: Math.min(call.since ?? Infinity, call.ownSince) };
      const window = duplicateWindow(known, bounds);
      if (window) return window;
      // Undecided: every event known is in the window, and fewer than its count cap (a
      // redelivery's: or all recorded since it was sent), or the cap ends it inside a group.
      const below = known.tail[0]?.version ?? head.version + 1;
      const uncounted = call.window - known.tail.length;
      const wanted = bounds.since === undefined && uncounted > 0 ? Math.min(page, uncounted) : page;
      const older = (await this.#readBackward(streamId, below, wanted, call.signal)).map(cachedEvent);
      const before = head.tail.length;
      if (deeper.length === 0) this.#cache.extendDown(head, older);
      const rest = older.slice(head.tail.length - before);
      if (head.tail.length === before && rest.length === 0) {
        // Versions are never removed: only a table changed behind the store's back gets here.
        throw new EventStoreError(
          `stream ${streamId}: no event below version ${below} although the stream is at ${head.version}`,
        );
      }
      deeper = [...rest.reverse(), ...deeper];
    }
  }

  /**
   * FIFO, group = stream, a redelivery: the newest event came in a later message of the group
   * than this one, of the same queue incarnation (core/fifo.ts `laterMessage`: the tags match,
   * a higher number, sent after this one). SQS delivers a group's later message only after the
   * earlier ones were acknowledged (or handled before it in one batch), so an earlier delivery
   * decided this one, after a lost acknowledgement: stored (its copy is in the redelivery's
   * window anyway) or dead-lettered (perhaps for a stream then behind its ExpectedVersion,
   * since caught up). A first delivery is never decided. When this cannot be told, the window
   * and `#filledSinceSent` decide as for any redelivery: no second copy, no store after a
   * rejection (the rule only saves reads and a second dead letter).
   */
  #decided(head: StreamHead, call: Call): AppendOutcome | undefined {
    if (call.since === undefined) return undefined;
    const top = head.tail.at(-1);
    const mine = parseSourceSequence(call.sequence);
    const newest = parseSourceSequence(top?.sequence);
    if (top?.sequence === undefined || mine === undefined || newest === undefined) return undefined;
    return laterMessage(newest, mine) ? { status: 'decided', headSequence: top.sequence } : undefined;
  }

  /**
   * A verdict from the copies found (in the window, or at the versions `ExpectedVersion` names),
   * one per event of the unit: a duplicate when every event has a copy with its content, on any
   * head; an EventIdConflict only on a head read in this attempt (`fresh`), since a cached head
   * that missed newer events counts the window from too low and may hold a copy a cold container
   * would not see (it then reads what is newer and searches again). A group some of whose events
   * have a copy and others not is an EventIdConflict too (it can never be stored whole).
   * Undefined: no event of the unit has a copy.
   */
  #windowVerdict(
    unit: Unit,
    known: readonly (CachedEvent | undefined)[],
    fresh: boolean,
    seen?: (version: number) => boolean,
  ): AppendOutcome | 'catch-up' | 'busy' | undefined {
    const [first] = known;
    if (known.every((copy) => copy === undefined)) return undefined;
    if (first !== undefined && known.every((copy, index) => copy?.fingerprint === unit.fingerprints[index])) {
      return this.#duplicate(unit, first.version);
    }
    if (!fresh) return 'catch-up';
    if (seen !== undefined && this.#partlySeen(unit, known, seen)) return 'busy';
    return this.#conflict(unit, known);
  }

  /**
   * Some of the unit's events were found with their content, none with other content, and a
   * found copy belongs to a stored group this read did not see whole. A Query is only
   * read-committed against a transaction (AWS: "Isolation levels for DynamoDB transactions"): it
   * may see some items of a group being committed and not yet the others. Such a view is no
   * proof of a group stored in part (docs/ARCHITECTURE.md, "Groups"): read again after a pause.
   */
  #partlySeen(unit: Unit, known: readonly (CachedEvent | undefined)[], seen: (version: number) => boolean): boolean {
    if (known.some((copy, index) => copy !== undefined && copy.fingerprint !== unit.fingerprints[index])) return false;
    for (const copy of known) {
      if (copy?.groupSize === undefined || copy.groupIndex === undefined) continue;
      const start = copy.version - copy.groupIndex;
      for (let version = start; version < start + copy.groupSize; version += 1) if (!seen(version)) return true;
    }
    return false;
  }

  /** The versions a verdict rests on: the head's known tail and the message's window. */
  #seen(head: StreamHead, window: readonly CachedEvent[]): (version: number) => boolean {
    const versions = new Set([...head.tail, ...window].map((event) => event.version));
    return (version) => version <= head.version && versions.has(version);
  }

  /** No expected version: append at the head, after a duplicate check by EventId. */
  async #appendAny(unit: Unit, call: Call): Promise<Attempt> {
    let { head, fresh } = await this.#head(unit.streamId, call);
    for (;;) {
      const decided = this.#decided(head, call);
      if (decided) return { kind: 'done', outcome: decided };
      const { known, window, own } = await this.#inWindow(head, unit, call);
      if (own === 'busy') return this.#committing(unit.streamId);
      if (own !== undefined) return { kind: 'done', outcome: own };
      const verdict = this.#windowVerdict(unit, known, fresh, this.#seen(head, window));
      if (verdict === undefined) return this.#put(unit, head.version + 1, call);
      if (verdict === 'busy') return this.#committing(unit.streamId);
      if (verdict !== 'catch-up') return { kind: 'done', outcome: verdict };
      head = await this.#catchUp(unit.streamId, head, call);
      fresh = true;
    }
  }

  /**
   * `ExpectedVersion = n`: idempotency first (an EventId already in the window is a duplicate
   * or an EventIdConflict, whatever n says), then concurrency: the unit goes at n + 1 (a group:
   * n + 1 .. n + k) or nowhere. A stream already past n holds another event at n + 1 (the put's
   * ALL_OLD says which); a stream below n is `behind`, which only a strongly consistent read may say.
   */
  async #appendExpected(unit: Unit, expected: number, call: Call): Promise<Attempt> {
    const { streamId } = unit;
    let { head, fresh } = await this.#head(streamId, call);
    for (;;) {
      const decided = this.#decided(head, call);
      if (decided) return { kind: 'done', outcome: decided };
      const { known, window, own } = await this.#inWindow(head, unit, call);
      if (own === 'busy') return this.#committing(streamId);
      if (own !== undefined) return { kind: 'done', outcome: own };
      const next = this.#expectedVerdict(unit, expected, { head, fresh, known, window }, call);
      if (next === 'put') return this.#put(unit, expected + 1, call, fresh);
      if (next === 'behind') break;
      if (next === 'busy') return this.#committing(streamId);
      if (next !== 'catch-up') return { kind: 'done', outcome: next };
      // A conflict on a cached head, another event at n + 1 on a cached head (this event may
      // be stored above it: a resend with a later ExpectedVersion), or a cached head below n
      // that may only be stale: read what is newer, as a cold container would, then decide.
      head = await this.#catchUp(streamId, head, call);
      fresh = true;
    }
    return {
      kind: 'done',
      outcome: {
        status: 'behind',
        expected,
        actual: head.version,
        detail: `ExpectedVersion: ${expected}, but stream ${JSON.stringify(streamId)} is at version ${head.version}`,
      },
    };
  }

  /**
   * What `ExpectedVersion = n` decides on a head and the message's window. Only a head read in
   * this attempt (`fresh`) may give a rejection or `behind`; a cached one reads what is newer
   * first (`catch-up`). Versions are never removed, so a head at or past n is the truth even when
   * cached; when the cache holds n + 1, no write is needed to know what the put's ALL_OLD would
   * say: this very event (a duplicate, though outside the window) or another (final). A group is
   * this very group when n + 1 .. n + k hold its events.
   */
  #expectedVerdict(
    unit: Unit,
    expected: number,
    seen: {
      head: StreamHead;
      fresh: boolean;
      known: readonly (CachedEvent | undefined)[];
      window: readonly CachedEvent[];
    },
    call: Call,
  ): AppendOutcome | 'put' | 'behind' | 'catch-up' | 'busy' {
    const { head, fresh } = seen;
    const visible = this.#seen(head, seen.window);
    const verdict = this.#windowVerdict(unit, seen.known, fresh, visible);
    if (verdict !== undefined) return verdict;
    const lowest = head.tail[0]?.version ?? Infinity;
    const at = (version: number): CachedEvent | undefined =>
      head.version >= version ? head.tail[version - lowest] : undefined;
    const taken = at(expected + 1);
    if (taken?.eventId === unit.events[0]?.EventId) {
      // This unit's first event holds n + 1: its copies at n + 1 .. n + k decide.
      const copies = unit.events.map((event, index) => {
        const copy = at(expected + 1 + index);
        return copy?.eventId === event.EventId ? copy : undefined;
      });
      return this.#windowVerdict(unit, copies, fresh, visible) ?? 'catch-up';
    }
    if (taken) return fresh ? this.#wrongVersion(unit.streamId, expected) : 'catch-up';
    if (head.version < expected) return fresh ? 'behind' : 'catch-up';
    const filled =
      head.version === expected ? this.#filledSinceSent(unit.streamId, expected, seen.window, call) : undefined;
    if (filled) return fresh ? filled : 'catch-up';
    return 'put';
  }

  /**
   * FIFO, group = stream, a redelivery, and the stream exactly at `ExpectedVersion`: an earlier
   * delivery may have found it behind and dead-lettered the message, and events from elsewhere
   * (another message group, another queue) filled the gap since. Any event recorded since this
   * message was sent that is not an earlier message of its own group and queue says so: the
   * verdict is the one an earlier delivery could have given, `WrongExpectedVersion`, never a
   * store. (A redelivery's window holds every event recorded since it was sent.)
   */
  #filledSinceSent(
    streamId: string,
    expected: number,
    window: readonly CachedEvent[],
    call: Call,
  ): AppendOutcome | undefined {
    const mine = parseSourceSequence(call.sequence);
    if (call.since === undefined || mine === undefined) return undefined;
    for (const known of window) {
      if (!(known.recordedAt >= call.since)) return undefined;
      const source = parseSourceSequence(known.sequence);
      if (source !== undefined && sequenceBefore(source, mine)) continue;
      return {
        status: 'rejected',
        reason: RejectionReason.WrongExpectedVersion,
        detail: `ExpectedVersion: ${expected}: stream ${JSON.stringify(streamId)} reached it only after this message was sent, through version ${known.version} from another message group or queue; an earlier delivery may have found it behind`,
      };
    }
    return undefined;
  }

  /**
   * Write the unit at `first` (a group: `first` .. `first + k - 1`): one conditional `PutItem`,
   * or one `TransactWriteItems` of a conditional put per event of a group. `fresh`: the head the
   * write was decided on was read in this attempt (see `#lostRace`).
   */
  async #put(unit: Unit, first: number, call: Call, fresh = false): Promise<Attempt> {
    // Date.now(), not new Date(): the fault explorer's virtual clock serves Date.now (test/faults/simulation).
    // One RecordedAt for a whole group: a time bound of the duplicate window never splits it.
    const recordedAt = Date.now();
    const items = unit.events.map((event, index) => {
      const item = eventItem(
        event,
        first + index,
        new Date(recordedAt).toISOString(),
        call.sequence,
        unit.group ? { index, size: unit.events.length } : undefined,
      );
      // A double above 2^53 (e.g. 1e20) is exactly the value sent (core/json.ts keeps the
      // others as NumberValue): without this flag marshall throws for it.
      return marshall(toSdkNumbers(item) as Record<string, unknown>, {
        removeUndefinedValues: true,
        allowImpreciseNumbers: true,
      });
    });
    const condition: Condition = {
      TableName: this.#tableName,
      ConditionExpression: 'attribute_not_exists(#v)',
      ExpressionAttributeNames: { '#v': SK },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    };
    const failed = unit.group
      ? await this.#transact(unit, first, items, condition, call, fresh)
      : await this.#putItem(unit, first, items[0] as Record<string, AttributeValue>, condition, call, fresh);
    if (failed) return failed;
    const head = this.#cache.get(unit.streamId);
    if (head && head.version === first - 1) {
      for (const [index, event] of unit.events.entries()) {
        this.#cache.remember(unit.streamId, {
          version: first + index,
          eventId: event.EventId,
          fingerprint: unit.fingerprints[index] as string,
          recordedAt,
          ...(call.sequence !== undefined ? { sequence: call.sequence } : {}),
          ...(unit.group ? { groupIndex: index, groupSize: unit.events.length } : {}),
        });
      }
    } else {
      // The head is known now, but not the EventIds before it: read the tail next time.
      this.#cache.forget(unit.streamId);
    }
    return { kind: 'done', outcome: this.#stored(unit, first) };
  }

  /** One event's conditional `PutItem`; undefined when it was written. */
  async #putItem(
    unit: Unit,
    version: number,
    item: Record<string, AttributeValue>,
    condition: Condition,
    call: Call,
    fresh: boolean,
  ): Promise<Attempt | undefined> {
    try {
      await this.#client.send(new PutItemCommand({ ...condition, Item: item }), { abortSignal: call.signal });
      return undefined;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException || errorName(error) === 'ConditionalCheckFailedException') {
        const old = (error as ConditionalCheckFailedException).Item;
        return this.#lostRace(unit, version, [old ? fromItem(old) : undefined], fresh);
      }
      // A group's transaction holds the item this put aims at (AWS: PutItem's
      // TransactionConflictException, which the SDK does not retry): back off and try again, as
      // a group does for the same cause (docs/ARCHITECTURE.md, "Groups").
      if (errorName(error) === 'TransactionConflictException') return { kind: 'busy', reason: 'TransactionConflict' };
      const rejected = this.#refused(error, 'item');
      if (rejected) return { kind: 'done', outcome: rejected };
      throw error;
    }
  }

  /**
   * A group's `TransactWriteItems`, all or nothing; undefined when it was written. The SDK gives
   * the call one `ClientRequestToken` that its own retries resend, so a retry of a transaction
   * whose response was lost is answered with success and writes nothing again (DynamoDB keeps a
   * token 10 minutes; docs/ARCHITECTURE.md, "Groups"). A cancelled transaction says why, per item
   * (`CancellationReasons`, in the order of the items): a failed condition (with the item in the
   * way, ALL_OLD) is a lost race, a conflict with another transaction or throttling may pass
   * (`busy`), a validation error is DynamoDB's refusal of that event's item.
   */
  async #transact(
    unit: Unit,
    first: number,
    items: readonly Record<string, AttributeValue>[],
    condition: Condition,
    call: Call,
    fresh: boolean,
  ): Promise<Attempt | undefined> {
    try {
      await this.#client.send(
        new TransactWriteItemsCommand({ TransactItems: items.map((item) => ({ Put: { ...condition, Item: item } })) }),
        { abortSignal: call.signal },
      );
      return undefined;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException || errorName(error) === 'TransactionCanceledException')) {
        const rejected = this.#refused(error, 'Events');
        if (rejected) return { kind: 'done', outcome: rejected };
        throw error;
      }
      const reasons = (error as TransactionCanceledException).CancellationReasons ?? [];
      for (const [index, reason] of reasons.entries()) {
        if (reason.Code !== 'ValidationError') continue;
        const refusal = Object.assign(new Error(reason.Message ?? 'ValidationError'), { name: 'ValidationException' });
        const rejected = this.#refused(refusal, `Events[${index}].item`);
        if (rejected) return { kind: 'done', outcome: rejected };
      }
      if (reasons.some((reason) => reason.Code === 'ConditionalCheckFailed')) {
        const inTheWay = reasons.map((reason) =>
          reason.Code === 'ConditionalCheckFailed' && reason.Item ? fromItem(reason.Item) : undefined,
        );
        return this.#lostRace(unit, first, inTheWay, fresh);
      }
      const busy = reasons.find((reason) => reason.Code !== undefined && BUSY_CODES.has(reason.Code))?.Code;
      if (busy === undefined) throw error;
      // Another writer is on these versions right now: read what is newer before the next try.
      const head = this.#cache.get(unit.streamId);
      if (head) head.behind = true;
      return { kind: 'busy', reason: busy };
    }
  }

  /**
   * The conditional write failed; `inTheWay` holds the items that were in the way (ALL_OLD), by
   * the unit's index (a group's transaction says for each of its puts). With `ExpectedVersion = n`
   * the item in the way at n + 1 decides for ever: this very event (a duplicate, or an
   * EventIdConflict) or another one. Without, the item in the way is another writer's event, or
   * this EventId (a put whose response was lost, or a copy that may be outside this message's
   * window): either way the store reads what is newer and decides by the duplicate window, as a
   * container without the cache would (the fault explorer found a resend dead-lettered here as an
   * EventIdConflict and stored by its redelivery in a cold container). A group is stored only
   * when every one of its events is in the way at the version it aimed at (`#landedAt`); with
   * `ExpectedVersion`, a cancellation that names no item for some put is decided on a read.
   */
  #lostRace(unit: Unit, first: number, inTheWay: readonly (StoredEvent | undefined)[], fresh: boolean): Attempt {
    const { streamId } = unit;
    const [existing] = inTheWay;
    const eventId = unit.events[0]?.EventId;
    const head = this.#cache.get(streamId);
    if (unit.expected !== undefined && unit.group && inTheWay.some((item) => item === undefined)) {
      // DynamoDB's cancellation reasons did not name an item in the way for every put: decide
      // on a strongly consistent read of the versions, never on the slots it left out (it may
      // hold this very group, or another event, there).
      this.#cache.forget(streamId);
      return { kind: 'retry' };
    }
    if (unit.expected !== undefined && existing && existing.EventId === eventId) {
      this.#cache.forget(streamId);
      // This very event: a duplicate. The same EventId with other content: final when the
      // window was searched on a head read in this attempt; on a cached head a copy with this
      // content may be stored above it, so the next attempt reads first.
      const verdict = this.#windowVerdict(
        unit,
        inTheWay.map((item, index) =>
          item !== undefined && item.EventId === unit.events[index]?.EventId ? cachedEvent(item) : undefined,
        ),
        fresh,
      );
      return verdict === undefined || verdict === 'catch-up' || verdict === 'busy'
        ? { kind: 'retry' }
        : { kind: 'done', outcome: verdict };
    }
    const landed = unit.expected === undefined ? this.#landedAt(unit, first, inTheWay) : undefined;
    if (landed !== undefined) {
      // This content under this EventId holds the version this put aimed at: the SDK retried
      // a put whose response was lost (this delivery's own write) or a concurrent copy landed
      // there. Either way the event is stored once: a duplicate, never a second copy further
      // up when the window is shorter than the events that came since (docs/ARCHITECTURE.md,
      // "Appending and idempotency"; the ingest explorer's seed 20261129, schedule 1728).
      this.#cache.forget(streamId);
      return { kind: 'done', outcome: this.#duplicate(unit, landed) };
    }
    if (unit.expected !== undefined && (fresh || existing === undefined)) {
      // Another event holds n + 1 (or DynamoDB did not say which), and the window was searched
      // on a head read just before: final. (On a cached head, this event may be stored above
      // it: read first, below.)
      this.#cache.forget(streamId);
      return { kind: 'done', outcome: this.#wrongVersion(streamId, unit.expected) };
    }
    // Another event is in the way (with ExpectedVersion on a cached head too: this event may be
    // stored above it, and only a read can say so): keep what is known, read what is newer and
    // decide again.
    if (existing && head?.version === first - 1) {
      // The cache plus the items in the way is still a gapless tail, so keep it and read only
      // what is newer (not the whole window again).
      for (const item of inTheWay) {
        if (item === undefined) break;
        this.#cache.remember(streamId, cachedEvent(item));
      }
      const updated = this.#cache.get(streamId);
      if (updated) {
        updated.behind = true;
        if (existing.EventId !== eventId) {
          updated.contended = true;
          updated.quietCatchUps = 0;
        }
      }
      return { kind: 'retry' };
    }
    this.#cache.forget(streamId);
    return { kind: 'retry' };
  }

  /**
   * The first version of this unit's copy when the items in the way prove it is stored: one
   * event's EventId and content at the version it aimed at; for a group, every one of its events
   * (EventId, content, `GroupIndex`, `GroupSize`) in the way of the put at its own index, i.e. at
   * the very versions this transaction aimed at. One event of the group in the way proves
   * nothing: another group sharing some of its events (a resend with other content, a stale
   * cache) may hold it (the ingest explorer's seed 1, schedule 957). Then the store reads what
   * is newer and the window decides, as for any lost race (docs/ARCHITECTURE.md, "Groups").
   */
  #landedAt(unit: Unit, first: number, inTheWay: readonly (StoredEvent | undefined)[]): number | undefined {
    const own = unit.events.every((event, index) => {
      const item = inTheWay[index];
      return (
        item !== undefined &&
        item.EventId === event.EventId &&
        item.Version === first + index &&
        eventFingerprint(item) === unit.fingerprints[index] &&
        (!unit.group || (item.GroupIndex === index && item.GroupSize === unit.events.length))
      );
    });
    return own ? first : undefined;
  }

  /** A group seen in part (`#partlySeen`): read what is newer after a pause, as when DynamoDB is busy. */
  #committing(streamId: string): Attempt {
    const head = this.#cache.get(streamId);
    if (head) head.behind = true;
    return { kind: 'busy', reason: COMMITTING };
  }

  #stored(unit: Unit, version: number): AppendOutcome {
    return unit.group ? { status: 'stored', version, count: unit.events.length } : { status: 'stored', version };
  }

  #duplicate(unit: Unit, version: number): AppendOutcome {
    return unit.group ? { status: 'duplicate', version, count: unit.events.length } : { status: 'duplicate', version };
  }

  /**
   * The EventIdConflict of a unit some of whose events have copies (`known`, by index): the
   * first with other content; for a group with no such event, the first stored while another
   * of the group is not (a group is stored all or nothing, so this one never can be).
   */
  #conflict(unit: Unit, known: readonly (CachedEvent | undefined)[]): AppendOutcome {
    const stream = JSON.stringify(unit.streamId);
    const name = (index: number): string => (unit.group ? `Events[${index}].` : '');
    const eventIdOf = (index: number): string => JSON.stringify(unit.events[index]?.EventId);
    const changed = known.findIndex(
      (copy, index) => copy !== undefined && copy.fingerprint !== unit.fingerprints[index],
    );
    if (changed >= 0) {
      return {
        status: 'rejected',
        reason: RejectionReason.EventIdConflict,
        detail: `${name(changed)}EventId: ${eventIdOf(changed)} is already stored at version ${known[changed]?.version} of stream ${stream} with different content`,
      };
    }
    const stored = known.findIndex((copy) => copy !== undefined);
    const missing = known.findIndex((copy) => copy === undefined);
    return {
      status: 'rejected',
      reason: RejectionReason.EventIdConflict,
      detail: `${name(stored)}EventId: ${eventIdOf(stored)} is already stored at version ${known[stored]?.version} of stream ${stream}, but ${name(missing).slice(0, -1)} of this group is not stored with it: a group is stored all or nothing`,
    };
  }

  /** The stream is past n: another event holds n + 1 for ever, so this verdict is final. */
  #wrongVersion(streamId: string, expected: number): AppendOutcome {
    return {
      status: 'rejected',
      reason: RejectionReason.WrongExpectedVersion,
      detail: `ExpectedVersion: ${expected}, but stream ${JSON.stringify(streamId)} already has another event at version ${expected + 1}`,
    };
  }

  /**
   * DynamoDB's own refusals of an item: permanent, with the reason codes of the contract. Only
   * messages about the item's content count; any other ValidationException (a table with
   * another key schema, a wrong table name) is a configuration fault and stays transient, so
   * valid events are never dead-lettered for it. `what` names the item in the detail.
   */
  #refused(error: unknown, what: string): AppendOutcome | undefined {
    if (errorName(error) !== 'ValidationException') return undefined;
    const message = error instanceof Error ? error.message : String(error);
    if (/item size|maximum allowed size/i.test(message)) {
      return {
        status: 'rejected',
        reason: RejectionReason.ItemTooLarge,
        detail: `${what}: DynamoDB refused it: ${message}`,
      };
    }
    if (/missing the key|type mismatch for key|key schema|expression/i.test(message)) return undefined;
    return {
      status: 'rejected',
      reason: RejectionReason.UnstorableData,
      detail: `${what}: DynamoDB refused it: ${message}`,
    };
  }

  #deadline(unit: Unit, signal: AbortSignal): Error {
    return new TransientStoreError(
      `stream ${unit.streamId}: the invocation's deadline was reached before the ${unit.group ? 'group' : 'event'} was stored (${String(signal.reason)}); SQS will deliver it again`,
      { streamId: unit.streamId },
    );
  }

  #transient(streamId: string, error: unknown): Error {
    if (error instanceof TransientStoreError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new TransientStoreError(
      `stream ${streamId}: ${errorName(error)}: ${message}`,
      { streamId },
      { cause: error },
    );
  }

  /**
   * Bring a cached head that lost a race up to date: read the events after it (strongly
   * consistent, oldest first). When more are missing than the cache keeps, read it as a
   * container that never saw it would.
   */
  async #catchUp(streamId: string, head: StreamHead, call: Call): Promise<StreamHead> {
    const newer = await this.#query(
      {
        KeyConditionExpression: '#id = :id AND #v > :head',
        ExpressionAttributeValues: { ':id': { S: streamId }, ':head': { N: String(head.version) } },
        ScanIndexForward: true,
      },
      CACHE_WINDOW + 1,
      call.signal,
    );
    if (newer.length > CACHE_WINDOW) {
      this.#cache.forget(streamId);
      return this.#readNewest(streamId, call);
    }
    const readFirst = head.behind !== true;
    for (const item of newer) this.#cache.extend(head, cachedEvent(item));
    head.behind = false;
    // A busy stream stays read-first; one whose read-first catch-ups found nothing new
    // QUIET_CATCH_UPS times in a row goes back to optimistic puts.
    if (newer.length > 0) head.quietCatchUps = 0;
    else if (readFirst) head.quietCatchUps = (head.quietCatchUps ?? 0) + 1;
    if ((head.quietCatchUps ?? 0) >= QUIET_CATCH_UPS) {
      head.contended = false;
      head.quietCatchUps = 0;
    }
    return head;
  }

  /**
   * A stream this container has not cached: read its newest events (strongly consistent,
   * newest first) in growing pages, only as far as the duplicate window needs, and cache them.
   */
  async #readNewest(streamId: string, call: Call): Promise<StreamHead> {
    const newest = await this.#readBackward(streamId, undefined, Math.min(FIRST_PAGE, call.window), call.signal);
    const head = this.#cache.load(streamId, newest.map(cachedEvent));
    await this.#window(streamId, head, call, FIRST_PAGE * 2);
    return head;
  }

  /** At most `limit` events, newest first, below version `below` (undefined: from the newest). */
  #readBackward(
    streamId: string,
    below: number | undefined,
    limit: number,
    signal: AbortSignal | undefined,
  ): Promise<StoredEvent[]> {
    return this.#query(
      {
        KeyConditionExpression: below === undefined ? '#id = :id' : '#id = :id AND #v < :below',
        ExpressionAttributeValues: {
          ':id': { S: streamId },
          ...(below === undefined ? {} : { ':below': { N: String(below) } }),
        },
        ScanIndexForward: false,
      },
      limit,
      signal,
    );
  }

  async #headVersion(streamId: string): Promise<number> {
    const result = await this.#client.send(
      new QueryCommand({
        TableName: this.#tableName,
        KeyConditionExpression: '#id = :id',
        ExpressionAttributeNames: { '#id': PK, '#v': SK },
        ExpressionAttributeValues: { ':id': { S: streamId } },
        ProjectionExpression: '#v',
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const top = result.Items?.[0]?.[SK]?.N;
    return top === undefined ? 0 : Number(top);
  }

  /** Page through a query until `limit` items or the end of the stream. */
  async #query(
    input: Pick<QueryCommandInput, 'KeyConditionExpression' | 'ExpressionAttributeValues' | 'ScanIndexForward'>,
    limit: number,
    signal?: AbortSignal,
  ): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.#client.send(
        new QueryCommand({
          TableName: this.#tableName,
          ...input,
          ExpressionAttributeNames: {
            '#id': PK,
            ...(input.KeyConditionExpression?.includes('#v') ? { '#v': SK } : {}),
          },
          ConsistentRead: true,
          Limit: Math.min(QUERY_PAGE, limit - events.length),
          ExclusiveStartKey: startKey,
        }),
        { abortSignal: signal },
      );
      for (const item of page.Items ?? []) events.push(fromItem(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey && events.length < limit);
    return events;
  }

  public async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    const backward = options.direction === 'backward';
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new EventStoreError(`readStream: limit must be a whole number >= 1, got ${options.limit}`);
    }
    if (options.fromVersion !== undefined && (!Number.isInteger(options.fromVersion) || options.fromVersion < 0)) {
      throw new EventStoreError(`readStream: fromVersion must be a whole number >= 0, got ${options.fromVersion}`);
    }
    const from = options.fromVersion;
    const values: Record<string, AttributeValue> = { ':id': { S: streamId } };
    let condition = '#id = :id';
    if (from !== undefined) {
      condition += backward ? ' AND #v <= :from' : ' AND #v >= :from';
      values[':from'] = { N: String(from) };
    }
    const [events, version] = await Promise.all([
      this.#query(
        { KeyConditionExpression: condition, ExpressionAttributeValues: values, ScanIndexForward: !backward },
        limit,
      ),
      backward && from === undefined ? Promise.resolve(undefined) : this.#headVersion(streamId),
    ]);
    return { events, version: version ?? events[0]?.Version ?? 0 };
  }
}
