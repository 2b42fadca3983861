import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { EventStoreError, TransientStoreError } from '../core/errors.ts';
import { eventFingerprint, type ValidEvent } from '../core/event.ts';
import { Limits, TableKeys } from '../core/keys.ts';
import { RejectionReason } from '../core/reasons.ts';
import { checkStorable } from '../core/storable.ts';
import type {
  AppendOptions,
  AppendOutcome,
  EventStore,
  ReadStreamOptions,
  ReadStreamResult,
  StoredEvent,
} from '../core/store.ts';
import { StreamHeadCache, type StreamHead } from '../core/stream-cache.ts';

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
/** How many EventIds per stream the cache keeps: enough for any window the store is asked for. */
const CACHE_WINDOW = 1000;
const QUERY_PAGE = 1000;

/** The outcome of one attempt to put one event. */
type Attempt =
  | { readonly kind: 'done'; readonly outcome: AppendOutcome }
  /** The condition failed and the item in the way was not this event: read and try again. */
  | { readonly kind: 'retry' };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Full jitter: a random wait up to 10 ms x 2^attempt, at most 1 s. */
function backoff(attempt: number): Promise<void> {
  return sleep(Math.random() * Math.min(1000, 10 * 2 ** attempt));
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

function toNumber(value: string): number {
  return Number(value);
}

/** Read an item back; numbers beyond 2^53 come back as the nearest double instead of throwing. */
export function fromItem(item: Record<string, AttributeValue>): StoredEvent {
  return unmarshall(item, { wrapNumbers: toNumber }) as StoredEvent;
}

/**
 * The event store on DynamoDB (DESIGN section 4): one item per event keyed `ID` + `Version`,
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
    const window = Math.max(1, options.dedupWindow ?? Limits.defaultDedupWindow);
    const previous = this.#locks.get(streamId) ?? Promise.resolve();
    const run = previous.then(() => this.#appendInOrder(streamId, events, window));
    const settled = run.catch(() => undefined);
    this.#locks.set(streamId, settled);
    try {
      return await run;
    } finally {
      if (this.#locks.get(streamId) === settled) this.#locks.delete(streamId);
    }
  }

  async #appendInOrder(streamId: string, events: readonly ValidEvent[], window: number): Promise<AppendOutcome[]> {
    const outcomes: AppendOutcome[] = [];
    let failure: Error | undefined;
    for (const event of events) {
      if (failure) {
        outcomes.push({
          status: 'failed',
          error: new TransientStoreError(`not attempted: an earlier event of stream ${streamId} failed`, { streamId }, { cause: failure }),
        });
        continue;
      }
      const outcome = await this.#appendOne(streamId, event, window, outcomes.length === 0);
      if (outcome.status === 'failed') failure = outcome.error;
      outcomes.push(outcome);
    }
    return outcomes;
  }

  async #appendOne(streamId: string, event: ValidEvent, window: number, firstOfCall: boolean): Promise<AppendOutcome> {
    if (event.ID !== streamId) {
      throw new EventStoreError(`event ${event.EventId} belongs to stream ${event.ID}, not ${streamId}`);
    }
    const fingerprint = eventFingerprint(event);
    const problem = checkStorable(this.#item(event, 0));
    if (problem) return { status: 'rejected', reason: problem.reason, detail: problem.detail };
    try {
      for (let attempt = 0; attempt < this.#maxAttempts; attempt += 1) {
        const result =
          event.ExpectedVersion === undefined
            ? await this.#appendAny(streamId, event, fingerprint, window, firstOfCall && attempt === 0)
            : await this.#appendExpected(streamId, event, fingerprint, event.ExpectedVersion);
        if (result.kind === 'done') return result.outcome;
        this.#onConflict(streamId);
        if (attempt > 0) await backoff(attempt);
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

  /** No expected version: append at the head, after a duplicate check by EventId. */
  async #appendAny(
    streamId: string,
    event: ValidEvent,
    fingerprint: string,
    window: number,
    firstOfCall: boolean,
  ): Promise<Attempt> {
    const cached = this.#cache.get(streamId);
    const catchUp = cached !== undefined && (cached.behind === true || (cached.contended === true && firstOfCall));
    const head = catchUp ? await this.#catchUp(streamId, cached, window) : (cached ?? (await this.#readTail(streamId, window)));
    const known = head.recent.get(event.EventId);
    if (known) return { kind: 'done', outcome: this.#sameOrConflict(event, fingerprint, known) };
    return this.#put(streamId, event, fingerprint, head.version + 1);
  }

  /**
   * `ExpectedVersion = n`: the stream must be exactly at n, so the event goes at n + 1 or
   * nowhere. The event already at n + 1 is either this one (a redelivery) or not (rejected).
   */
  async #appendExpected(streamId: string, event: ValidEvent, fingerprint: string, expected: number): Promise<Attempt> {
    const head = this.#cache.get(streamId);
    const known = head?.recent.get(event.EventId);
    if (known && known.version === expected + 1) {
      return { kind: 'done', outcome: this.#sameOrConflict(event, fingerprint, known) };
    }
    if (head && head.version > expected) {
      // Cached state may be behind but never ahead: versions are never removed.
      return this.#put(streamId, event, fingerprint, expected + 1);
    }
    if (expected > 0 && !(head && head.version === expected)) {
      // A put at n + 1 alone cannot prove version n exists (the condition sees one item),
      // and writing n + 1 over a gap would break gapless versions: check n first.
      const found = await this.#client.send(
        new GetItemCommand({
          TableName: this.#tableName,
          Key: { [PK]: { S: streamId }, [SK]: { N: String(expected) } },
          ConsistentRead: true,
          ProjectionExpression: '#v',
          ExpressionAttributeNames: { '#v': SK },
        }),
      );
      if (!found.Item) {
        const actual = await this.#headVersion(streamId);
        return { kind: 'done', outcome: this.#wrongVersion(streamId, expected, actual) };
      }
    }
    return this.#put(streamId, event, fingerprint, expected + 1);
  }

  async #put(streamId: string, event: ValidEvent, fingerprint: string, version: number): Promise<Attempt> {
    const item = this.#item(event, version);
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#tableName,
          // Numbers above 2^53 (e.g. Data 1e20, sent exactly) are valid in DynamoDB; without this
          // flag marshall throws and the event would fail as if transient, forever.
          Item: marshall(item, { removeUndefinedValues: true, allowImpreciseNumbers: true }),
          ConditionExpression: 'attribute_not_exists(#v)',
          ExpressionAttributeNames: { '#v': SK },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException || errorName(error) === 'ConditionalCheckFailedException') {
        return this.#lostRace(streamId, event, fingerprint, version, (error as ConditionalCheckFailedException).Item);
      }
      const rejected = this.#refused(error);
      if (rejected) return { kind: 'done', outcome: rejected };
      throw error;
    }
    const head = this.#cache.get(streamId);
    if (head && head.version === version - 1) {
      this.#cache.remember(streamId, version, event.EventId, fingerprint);
    } else {
      // The head is known now, but not the EventIds before it: read the tail next time.
      this.#cache.forget(streamId);
    }
    return { kind: 'done', outcome: { status: 'stored', version } };
  }

  /** The conditional put failed: the item in the way says whether this was a redelivery. */
  #lostRace(
    streamId: string,
    event: ValidEvent,
    fingerprint: string,
    version: number,
    oldItem: Record<string, AttributeValue> | undefined,
  ): Attempt {
    const existing = oldItem ? fromItem(oldItem) : undefined;
    const head = this.#cache.get(streamId);
    if (existing && existing.EventId !== event.EventId && event.ExpectedVersion === undefined && head?.version === version - 1) {
      // Another writer took `version`: the cache plus the item in the way is still a gapless
      // tail, so keep it and read only what is newer (not the whole window again).
      this.#cache.remember(streamId, version, existing.EventId, eventFingerprint(existing));
      const updated = this.#cache.get(streamId);
      if (updated) {
        updated.behind = true;
        updated.contended = true;
      }
      return { kind: 'retry' };
    }
    this.#cache.forget(streamId);
    if (existing && existing.EventId === event.EventId) {
      return {
        kind: 'done',
        outcome: this.#sameOrConflict(event, fingerprint, { version, fingerprint: eventFingerprint(existing) }),
      };
    }
    if (event.ExpectedVersion !== undefined) {
      return { kind: 'done', outcome: this.#wrongVersion(streamId, event.ExpectedVersion, undefined) };
    }
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

  #wrongVersion(streamId: string, expected: number, actual: number | undefined): AppendOutcome {
    const where = actual === undefined ? `already has version ${expected + 1}` : `is at version ${actual}`;
    return {
      status: 'rejected',
      reason: RejectionReason.WrongExpectedVersion,
      detail: `ExpectedVersion: ${expected}, but stream ${JSON.stringify(streamId)} ${where}`,
    };
  }

  /** DynamoDB's own refusals of an item: permanent, with the reason codes of the contract. */
  #refused(error: unknown): AppendOutcome | undefined {
    if (errorName(error) !== 'ValidationException') return undefined;
    const message = error instanceof Error ? error.message : String(error);
    const reason = /item size|maximum allowed size/i.test(message) ? RejectionReason.ItemTooLarge : RejectionReason.UnstorableData;
    return { status: 'rejected', reason, detail: `item: DynamoDB refused it: ${message}` };
  }

  #transient(streamId: string, error: unknown): Error {
    if (error instanceof TransientStoreError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new TransientStoreError(`stream ${streamId}: ${errorName(error)}: ${message}`, { streamId }, { cause: error });
  }

  #item(event: ValidEvent, version: number): Record<string, unknown> {
    return {
      [PK]: event.ID,
      [SK]: version,
      EventId: event.EventId,
      EventType: event.EventType,
      Timestamp: event.Timestamp,
      EmitterId: event.EmitterId,
      EmitterType: event.EmitterType,
      Data: event.Data,
      RecordedAt: new Date().toISOString(),
    };
  }

  /**
   * Bring a cached head that lost a race up to date: read the events after it (strongly
   * consistent, oldest first). When more are missing than the cache keeps, read the tail.
   */
  async #catchUp(streamId: string, head: StreamHead, window: number): Promise<StreamHead> {
    const newer = await this.#query(
      {
        KeyConditionExpression: '#id = :id AND #v > :head',
        ExpressionAttributeValues: { ':id': { S: streamId }, ':head': { N: String(head.version) } },
        ScanIndexForward: true,
      },
      CACHE_WINDOW + 1,
    );
    if (newer.length > CACHE_WINDOW) return this.#readTail(streamId, window);
    for (const item of newer) this.#cache.extend(head, item.Version, item.EventId, eventFingerprint(item));
    head.behind = false;
    // A quiet stream goes back to optimistic puts; a busy one stays read-first.
    if (newer.length === 0) head.contended = false;
    return head;
  }

  /** Read the newest `window` events (strongly consistent) and cache what they say. */
  async #readTail(streamId: string, window: number): Promise<StreamHead> {
    const tail = await this.#query(
      {
        KeyConditionExpression: '#id = :id',
        ExpressionAttributeValues: { ':id': { S: streamId } },
        ScanIndexForward: false,
      },
      window,
    );
    const version = tail[0]?.Version ?? 0;
    return this.#cache.load(
      streamId,
      version,
      tail.map((item) => ({ eventId: item.EventId, version: item.Version, fingerprint: eventFingerprint(item) })),
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
  ): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.#client.send(
        new QueryCommand({
          TableName: this.#tableName,
          ...input,
          ExpressionAttributeNames: { '#id': PK, ...(input.KeyConditionExpression?.includes('#v') ? { '#v': SK } : {}) },
          ConsistentRead: true,
          Limit: Math.min(QUERY_PAGE, limit - events.length),
          ExclusiveStartKey: startKey,
        }),
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
      this.#query({ KeyConditionExpression: condition, ExpressionAttributeValues: values, ScanIndexForward: !backward }, limit),
      backward && from === undefined ? Promise.resolve(undefined) : this.#headVersion(streamId),
    ]);
    return { events, version: version ?? events[0]?.Version ?? 0 };
  }
}
