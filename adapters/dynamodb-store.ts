import {
  ConditionalCheckFailedException,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { marshall, NumberValueImpl, unmarshall } from '@aws-sdk/util-dynamodb';
import { EventStoreError, TransientStoreError } from '../core/errors.ts';
import {
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

/** The outcome of one attempt to put one event. */
type Attempt =
  | { readonly kind: 'done'; readonly outcome: AppendOutcome }
  /** The condition failed and the item in the way was not this event: read and try again. */
  | { readonly kind: 'retry' };

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
}

/** What the cache keeps of a stored event. */
function cachedEvent(event: StoredEvent): CachedEvent {
  return {
    version: event.Version,
    eventId: event.EventId,
    fingerprint: eventFingerprint(event),
    recordedAt: Date.parse(event.RecordedAt),
    ...(event.SourceSequence !== undefined ? { sequence: event.SourceSequence } : {}),
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
    const sentAt = options.sentAt !== undefined && Number.isFinite(options.sentAt) ? options.sentAt : undefined;
    const call: Call = {
      window: Math.min(CACHE_WINDOW, Math.max(1, options.dedupWindow ?? Limits.defaultDedupWindow)),
      notBefore: options.notBefore,
      signal: options.signal,
      firstInBatch: options.firstInBatch ?? true,
      sequence: options.sourceSequence,
      sentAt,
      since: options.redelivery === true && sentAt !== undefined ? sentAt - CLOCK_SKEW_MS : undefined,
    };
    const previous = this.#locks.get(streamId) ?? Promise.resolve();
    const run = previous.then(() => this.#appendInOrder(streamId, events, call));
    const settled = run.catch(() => undefined);
    this.#locks.set(streamId, settled);
    try {
      return await run;
    } finally {
      if (this.#locks.get(streamId) === settled) this.#locks.delete(streamId);
    }
  }

  public async appendGroup(group: ValidGroup, options: AppendOptions = {}): Promise<AppendOutcome> {
    throw new EventStoreError(`appendGroup is not built yet (stream ${group.ID}, ${String(options.dedupWindow)})`);
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
    try {
      for (let attempt = 0; attempt < this.#maxAttempts; attempt += 1) {
        if (call.signal?.aborted) throw this.#deadline(streamId, call.signal);
        const attemptCall = { ...call, firstInBatch: call.firstInBatch && attempt === 0 };
        const result =
          event.ExpectedVersion === undefined
            ? await this.#appendAny(streamId, event, fingerprint, attemptCall)
            : await this.#appendExpected(streamId, event, fingerprint, event.ExpectedVersion, attemptCall);
        if (result.kind === 'done') return result.outcome;
        this.#onConflict(streamId);
        if (attempt > 0) await backoff(attempt, call.signal);
      }
      return {
        status: 'failed',
        error: new TransientStoreError(
          `stream ${streamId}: another writer won ${this.#maxAttempts} conditional puts in a row; SQS will deliver the event again`,
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
   * The EventId in the message's duplicate window (`duplicateWindow`, core/stream-cache.ts),
   * the newest copy if there are several, and the window. The cache may know more events, but a
   * verdict must not depend on which container handles the message: a cached and a cold
   * container search the same window. When the events known cannot decide the window, older
   * ones are read first (newest first, in growing pages) and kept.
   */
  async #inWindow(
    streamId: string,
    head: StreamHead,
    event: ValidEvent,
    fingerprint: string,
    call: Call,
  ): Promise<{ known: CachedEvent | undefined; window: CachedEvent[] }> {
    const window = await this.#window(streamId, head, call, FIRST_PAGE);
    // A stream may hold several copies of an EventId (a resend outside the window is stored
    // again, possibly with other content): a copy with this content makes a duplicate, whatever
    // other copies say; only when none has it is the newest copy an EventIdConflict.
    const known =
      window.find((candidate) => candidate.eventId === event.EventId && candidate.fingerprint === fingerprint) ??
      window.find((candidate) => candidate.eventId === event.EventId);
    return { known, window };
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
      const window = duplicateWindow(known, call);
      if (window) return window;
      // Undecided: every event known is in the window, and fewer than its count cap (a
      // redelivery's: or all recorded since it was sent).
      const below = known.tail[0]?.version ?? head.version + 1;
      const wanted = call.since === undefined ? Math.min(page, call.window - known.tail.length) : page;
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
   * A verdict from the window: a duplicate on any head; an EventIdConflict only on a head read
   * in this attempt (`fresh`), since a cached head that missed newer events counts the window
   * from too low and may hold a copy a cold container would not see (it then reads what is
   * newer and searches again). Undefined: not in the window.
   */
  #windowVerdict(
    event: ValidEvent,
    fingerprint: string,
    known: CachedEvent | undefined,
    fresh: boolean,
  ): AppendOutcome | 'catch-up' | undefined {
    if (known === undefined) return undefined;
    if (known.fingerprint !== fingerprint && !fresh) return 'catch-up';
    return this.#sameOrConflict(event, fingerprint, known);
  }

  /** No expected version: append at the head, after a duplicate check by EventId. */
  async #appendAny(streamId: string, event: ValidEvent, fingerprint: string, call: Call): Promise<Attempt> {
    let { head, fresh } = await this.#head(streamId, call);
    for (;;) {
      const decided = this.#decided(head, call);
      if (decided) return { kind: 'done', outcome: decided };
      const { known } = await this.#inWindow(streamId, head, event, fingerprint, call);
      const verdict = this.#windowVerdict(event, fingerprint, known, fresh);
      if (verdict === undefined) return this.#put(streamId, event, fingerprint, head.version + 1, call);
      if (verdict !== 'catch-up') return { kind: 'done', outcome: verdict };
      head = await this.#catchUp(streamId, head, call);
      fresh = true;
    }
  }

  /**
   * `ExpectedVersion = n`: idempotency first (an EventId already in the window is a duplicate
   * or an EventIdConflict, whatever n says), then concurrency: the event goes at n + 1 or
   * nowhere. A stream already past n holds another event at n + 1 (the put's ALL_OLD says
   * which); a stream below n is `behind`, which only a strongly consistent read may say.
   */
  async #appendExpected(
    streamId: string,
    event: ValidEvent,
    fingerprint: string,
    expected: number,
    call: Call,
  ): Promise<Attempt> {
    let { head, fresh } = await this.#head(streamId, call);
    for (;;) {
      const decided = this.#decided(head, call);
      if (decided) return { kind: 'done', outcome: decided };
      const { known, window } = await this.#inWindow(streamId, head, event, fingerprint, call);
      const next = this.#expectedVerdict(streamId, event, fingerprint, expected, { head, fresh, known, window }, call);
      if (next === 'put') return this.#put(streamId, event, fingerprint, expected + 1, call, fresh);
      if (next === 'behind') break;
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
   * say: this very event (a duplicate, though outside the window) or another (final).
   */
  #expectedVerdict(
    streamId: string,
    event: ValidEvent,
    fingerprint: string,
    expected: number,
    seen: { head: StreamHead; fresh: boolean; known: CachedEvent | undefined; window: readonly CachedEvent[] },
    call: Call,
  ): AppendOutcome | 'put' | 'behind' | 'catch-up' {
    const { head, fresh } = seen;
    const verdict = this.#windowVerdict(event, fingerprint, seen.known, fresh);
    if (verdict !== undefined) return verdict;
    const taken = head.version > expected ? head.tail[expected + 1 - (head.tail[0]?.version ?? Infinity)] : undefined;
    if (taken?.eventId === event.EventId) {
      return fresh || taken.fingerprint === fingerprint ? this.#sameOrConflict(event, fingerprint, taken) : 'catch-up';
    }
    if (taken) return fresh ? this.#wrongVersion(streamId, expected) : 'catch-up';
    if (head.version < expected) return fresh ? 'behind' : 'catch-up';
    const filled = head.version === expected ? this.#filledSinceSent(streamId, expected, seen.window, call) : undefined;
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

  /** `fresh`: the head the put was decided on was read in this attempt (see `#lostRace`). */
  async #put(
    streamId: string,
    event: ValidEvent,
    fingerprint: string,
    version: number,
    call: Call,
    fresh = false,
  ): Promise<Attempt> {
    // Date.now(), not new Date(): the fault explorer's virtual clock serves Date.now (test/faults/simulation).
    const recordedAt = Date.now();
    const item = toSdkNumbers(eventItem(event, version, new Date(recordedAt).toISOString(), call.sequence)) as Record<
      string,
      unknown
    >;
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#tableName,
          // A double above 2^53 (e.g. 1e20) is exactly the value sent (core/json.ts keeps the
          // others as NumberValue): without this flag marshall throws for it.
          Item: marshall(item, { removeUndefinedValues: true, allowImpreciseNumbers: true }),
          ConditionExpression: 'attribute_not_exists(#v)',
          ExpressionAttributeNames: { '#v': SK },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
        { abortSignal: call.signal },
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException || errorName(error) === 'ConditionalCheckFailedException') {
        return this.#lostRace(
          streamId,
          event,
          fingerprint,
          version,
          (error as ConditionalCheckFailedException).Item,
          fresh,
        );
      }
      const rejected = this.#refused(error);
      if (rejected) return { kind: 'done', outcome: rejected };
      throw error;
    }
    const head = this.#cache.get(streamId);
    if (head && head.version === version - 1) {
      this.#cache.remember(streamId, {
        version,
        eventId: event.EventId,
        fingerprint,
        recordedAt,
        ...(call.sequence !== undefined ? { sequence: call.sequence } : {}),
      });
    } else {
      // The head is known now, but not the EventIds before it: read the tail next time.
      this.#cache.forget(streamId);
    }
    return { kind: 'done', outcome: { status: 'stored', version } };
  }

  /**
   * The conditional put failed. With `ExpectedVersion = n` the item in the way at n + 1 decides
   * for ever: this very event (a duplicate, or an EventIdConflict) or another one. Without, the
   * item in the way is another writer's event, or this EventId (a put whose response was lost,
   * or a copy that may be outside this message's window): either way the store reads what is
   * newer and decides by the duplicate window, as a container without the cache would (the
   * fault explorer found a resend dead-lettered here as an EventIdConflict and stored by its
   * redelivery in a cold container).
   */
  #lostRace(
    streamId: string,
    event: ValidEvent,
    fingerprint: string,
    version: number,
    oldItem: Record<string, AttributeValue> | undefined,
    fresh: boolean,
  ): Attempt {
    const existing = oldItem ? fromItem(oldItem) : undefined;
    const head = this.#cache.get(streamId);
    if (event.ExpectedVersion !== undefined && existing && existing.EventId === event.EventId) {
      this.#cache.forget(streamId);
      // This very event: a duplicate. The same EventId with other content: final when the
      // window was searched on a head read in this attempt; on a cached head a copy with this
      // content may be stored above it, so the next attempt reads first.
      if (eventFingerprint(existing) !== fingerprint && !fresh) return { kind: 'retry' };
      return {
        kind: 'done',
        outcome: this.#sameOrConflict(event, fingerprint, { version, fingerprint: eventFingerprint(existing) }),
      };
    }
    if (event.ExpectedVersion === undefined && existing?.EventId === event.EventId) {
      if (eventFingerprint(existing) === fingerprint) {
        // This content under this EventId holds the version this put aimed at: the SDK retried
        // a put whose response was lost (this delivery's own write) or a concurrent copy landed
        // there. Either way the event is stored once: a duplicate, never a second copy further
        // up when the window is shorter than the events that came since (docs/ARCHITECTURE.md,
        // "Appending and idempotency"; the ingest explorer's seed 20261129, schedule 1728).
        this.#cache.forget(streamId);
        return { kind: 'done', outcome: { status: 'duplicate', version } };
      }
    }
    if (event.ExpectedVersion !== undefined && (fresh || existing === undefined)) {
      // Another event holds n + 1 (or DynamoDB did not say which), and the window was searched
      // on a head read just before: final. (On a cached head, this event may be stored above
      // it: read first, below.)
      this.#cache.forget(streamId);
      return { kind: 'done', outcome: this.#wrongVersion(streamId, event.ExpectedVersion) };
    }
    // Another event is in the way (with ExpectedVersion on a cached head too: this event may be
    // stored above it, and only a read can say so): keep what is known, read what is newer and
    // decide again.
    if (existing && head?.version === version - 1) {
      // The cache plus the item in the way is still a gapless tail, so keep it and read only
      // what is newer (not the whole window again).
      this.#cache.remember(streamId, cachedEvent(existing));
      const updated = this.#cache.get(streamId);
      if (updated) {
        updated.behind = true;
        if (existing.EventId !== event.EventId) {
          updated.contended = true;
          updated.quietCatchUps = 0;
        }
      }
      return { kind: 'retry' };
    }
    this.#cache.forget(streamId);
    return { kind: 'retry' };
  }

  #sameOrConflict(
    event: ValidEvent,
    fingerprint: string,
    known: { readonly version: number; readonly fingerprint: string },
  ): AppendOutcome {
    if (known.fingerprint === fingerprint) return { status: 'duplicate', version: known.version };
    return {
      status: 'rejected',
      reason: RejectionReason.EventIdConflict,
      detail: `EventId: ${JSON.stringify(event.EventId)} is already stored at version ${known.version} of stream ${JSON.stringify(event.ID)} with different content`,
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
   * valid events are never dead-lettered for it.
   */
  #refused(error: unknown): AppendOutcome | undefined {
    if (errorName(error) !== 'ValidationException') return undefined;
    const message = error instanceof Error ? error.message : String(error);
    if (/item size|maximum allowed size/i.test(message)) {
      return {
        status: 'rejected',
        reason: RejectionReason.ItemTooLarge,
        detail: `item: DynamoDB refused it: ${message}`,
      };
    }
    if (/missing the key|type mismatch for key|key schema|expression/i.test(message)) return undefined;
    return {
      status: 'rejected',
      reason: RejectionReason.UnstorableData,
      detail: `item: DynamoDB refused it: ${message}`,
    };
  }

  #deadline(streamId: string, signal: AbortSignal): Error {
    return new TransientStoreError(
      `stream ${streamId}: the invocation's deadline was reached before the event was stored (${String(signal.reason)}); SQS will deliver it again`,
      { streamId },
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
