/**
 * The subscription runtime's DynamoDB side (README "Subscriptions"): checkpoints and the replay
 * state in the subscription's own checkpoint table, gap fills and catch-up reads from the event
 * table (strongly consistent, unmarshalled by the store's own `fromItem`), and the replay's Scan.
 */
import {
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
  type ConsumedCapacity,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TableKeys } from '../core/keys.ts';
import type { StoredEvent } from '../core/store.ts';
import {
  CheckpointKeys,
  emptyCheckpoint,
  initialReplayState,
  type Checkpoint,
  type CheckpointStore,
  type EventReader,
  type ReadRateLimiter,
  type ReplayState,
  type ScanPage,
  type StreamScanner,
} from '../core/subscription.ts';
import { fromItem } from './dynamodb-store.ts';

const KEY = CheckpointKeys.partitionKey;
const { partitionKey: PK, sortKey: SK } = TableKeys;

/** The checkpoint table's attribute names. */
export const CheckpointAttributes = {
  streamId: 'StreamId',
  delivered: 'Delivered',
  head: 'Head',
  attempts: 'Attempts',
  lastError: 'LastError',
  parkedVersion: 'ParkedVersion',
  parkedError: 'ParkedError',
  parkedAt: 'ParkedAt',
  resumeRequested: 'ResumeRequested',
  revision: 'Revision',
  leaseOwner: 'LeaseOwner',
  leaseUntil: 'LeaseUntil',
  updatedAt: 'UpdatedAt',
} as const;
const A = CheckpointAttributes;

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });
const num = (item: Record<string, AttributeValue>, name: string): number | undefined =>
  item[name]?.N === undefined ? undefined : Number(item[name]!.N);
const str = (item: Record<string, AttributeValue>, name: string): string | undefined => item[name]?.S;

export function streamKey(streamId: string): Record<string, AttributeValue> {
  return { [KEY]: s(`${CheckpointKeys.streamPrefix}${streamId}`) };
}
const replayKey: Record<string, AttributeValue> = { [KEY]: s(CheckpointKeys.replayKey) };

function leaseOf(item: Record<string, AttributeValue>): Checkpoint['lease'] {
  const owner = str(item, A.leaseOwner);
  const until = num(item, A.leaseUntil);
  return owner !== undefined && until !== undefined ? { owner, until } : undefined;
}

export function checkpointFromItem(item: Record<string, AttributeValue>): Checkpoint {
  const streamId = str(item, A.streamId) ?? str(item, KEY)!.slice(CheckpointKeys.streamPrefix.length);
  const parkedVersion = num(item, A.parkedVersion);
  return {
    ...emptyCheckpoint(streamId),
    delivered: num(item, A.delivered) ?? 0,
    head: num(item, A.head) ?? 0,
    attempts: num(item, A.attempts) ?? 0,
    lastError: str(item, A.lastError),
    parked:
      parkedVersion === undefined
        ? undefined
        : {
            version: parkedVersion,
            error: str(item, A.parkedError) ?? '',
            at: str(item, A.parkedAt) ?? '',
            resumeRequested: item[A.resumeRequested]?.BOOL === true,
          },
    revision: num(item, A.revision) ?? 0,
    lease: leaseOf(item),
  };
}

function checkpointToItem(checkpoint: Checkpoint, revision: number): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    ...streamKey(checkpoint.streamId),
    [A.streamId]: s(checkpoint.streamId),
    [A.delivered]: n(checkpoint.delivered),
    [A.head]: n(checkpoint.head),
    [A.attempts]: n(checkpoint.attempts),
    [A.revision]: n(revision),
    [A.updatedAt]: s(new Date().toISOString()),
  };
  if (checkpoint.lastError !== undefined) item[A.lastError] = s(checkpoint.lastError.slice(0, 2000));
  if (checkpoint.parked) {
    item[A.parkedVersion] = n(checkpoint.parked.version);
    item[A.parkedError] = s(checkpoint.parked.error.slice(0, 2000));
    item[A.parkedAt] = s(checkpoint.parked.at);
    if (checkpoint.parked.resumeRequested) item[A.resumeRequested] = { BOOL: true };
  }
  return item;
}

const R = {
  status: 'Status',
  cursor: 'Cursor',
  lastStream: 'LastStream',
  streams: 'Streams',
  events: 'Events',
  startedAt: 'StartedAt',
  finishedAt: 'FinishedAt',
  resume: 'Resume',
} as const;

export function replayFromItem(item: Record<string, AttributeValue>): ReplayState {
  const status = str(item, R.status);
  return {
    ...initialReplayState(),
    status: status === 'running' || status === 'done' ? status : 'pending',
    cursor: str(item, R.cursor),
    lastStream: str(item, R.lastStream),
    streams: num(item, R.streams) ?? 0,
    events: num(item, R.events) ?? 0,
    startedAt: str(item, R.startedAt),
    updatedAt: str(item, A.updatedAt),
    finishedAt: str(item, R.finishedAt),
    resume: item[R.resume]?.SS ?? [],
    revision: num(item, A.revision) ?? 0,
    lease: leaseOf(item),
  };
}

function replayToItem(state: ReplayState, revision: number): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    ...replayKey,
    [R.status]: s(state.status),
    [R.streams]: n(state.streams),
    [R.events]: n(state.events),
    [A.revision]: n(revision),
    [A.updatedAt]: s(state.updatedAt ?? new Date().toISOString()),
  };
  if (state.cursor !== undefined) item[R.cursor] = s(state.cursor);
  if (state.lastStream !== undefined) item[R.lastStream] = s(state.lastStream);
  if (state.startedAt !== undefined) item[R.startedAt] = s(state.startedAt);
  if (state.finishedAt !== undefined) item[R.finishedAt] = s(state.finishedAt);
  if (state.resume.length > 0) item[R.resume] = { SS: [...state.resume] };
  if (state.lease) {
    item[A.leaseOwner] = s(state.lease.owner);
    item[A.leaseUntil] = n(state.lease.until);
  }
  return item;
}

/** Where a write goes and how its consumed capacity is reported. */
export interface CapacityObserver {
  /** Called with the read and write units each request consumed. */
  (units: { readonly read: number; readonly write: number }): void;
}

function observe(
  observer: CapacityObserver | undefined,
  consumed: ConsumedCapacity | ConsumedCapacity[] | undefined,
  kind: 'read' | 'write',
): void {
  if (!observer || consumed === undefined) return;
  for (const entry of Array.isArray(consumed) ? consumed : [consumed]) {
    const units = entry.CapacityUnits ?? 0;
    observer(kind === 'read' ? { read: units, write: 0 } : { read: 0, write: units });
  }
}

export interface DynamoDbCheckpointStoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly onCapacity?: CapacityObserver;
}

/**
 * Checkpoints and replay state, one item each, every write conditioned on the item's
 * `Revision` so two runs can never both advance a checkpoint.
 *
 * @example
 * ```ts
 * const checkpoints = new DynamoDbCheckpointStore({ client, tableName: 'stream-summary-checkpoints' });
 * const { checkpoints: found } = await checkpoints.load(['order-1']);
 * ```
 */
export class DynamoDbCheckpointStore implements CheckpointStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #onCapacity: CapacityObserver | undefined;

  public get tableName(): string {
    return this.#table;
  }

  public constructor(options: DynamoDbCheckpointStoreOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
    this.#onCapacity = options.onCapacity;
  }

  public async load(
    streamIds: readonly string[],
  ): Promise<{ checkpoints: Map<string, Checkpoint>; replay: ReplayState | undefined }> {
    const checkpoints = new Map<string, Checkpoint>();
    let replay: ReplayState | undefined;
    const keys = [replayKey, ...[...new Set(streamIds)].map(streamKey)];
    for (let start = 0; start < keys.length; start += 100) {
      let pending: Record<string, AttributeValue>[] | undefined = keys.slice(start, start + 100);
      for (let attempt = 0; pending && pending.length > 0; attempt += 1) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** attempt)));
        const result: BatchGetItemCommandOutput = await this.#client.send(
          new BatchGetItemCommand({
            RequestItems: { [this.#table]: { Keys: pending, ConsistentRead: true } },
            ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
          }),
        );
        observe(this.#onCapacity, result.ConsumedCapacity, 'read');
        for (const item of result.Responses?.[this.#table] ?? []) {
          if (item[KEY]?.S === CheckpointKeys.replayKey) replay = replayFromItem(item);
          else {
            const checkpoint = checkpointFromItem(item);
            checkpoints.set(checkpoint.streamId, checkpoint);
          }
        }
        pending = result.UnprocessedKeys?.[this.#table]?.Keys;
      }
    }
    return { checkpoints, replay };
  }

  async #put(item: Record<string, AttributeValue>, revision: number): Promise<boolean> {
    try {
      const result = await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: item,
          ConditionExpression: revision === 0 ? 'attribute_not_exists(#k)' : '#r = :r',
          ExpressionAttributeNames: revision === 0 ? { '#k': KEY } : { '#r': A.revision },
          ...(revision === 0 ? {} : { ExpressionAttributeValues: { ':r': n(revision) } }),
          ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
        }),
      );
      observe(this.#onCapacity, result.ConsumedCapacity, 'write');
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  public save(next: Checkpoint): Promise<boolean> {
    return this.#put(checkpointToItem(next, next.revision + 1), next.revision);
  }

  /** Take an item's lease (creating the item with `init` when it does not exist); undefined: another owner holds it. */
  async #claim(
    key: Record<string, AttributeValue>,
    init: { readonly name: string; readonly value: AttributeValue },
    lease: { readonly owner: string; readonly until: number; readonly now: number },
  ): Promise<Record<string, AttributeValue> | undefined> {
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: key,
          UpdateExpression: 'SET #o = :o, #u = :u, #r = if_not_exists(#r, :zero) + :one, #i = if_not_exists(#i, :i)',
          ConditionExpression: 'attribute_not_exists(#u) OR #u < :now OR #o = :o',
          ExpressionAttributeNames: { '#o': A.leaseOwner, '#u': A.leaseUntil, '#r': A.revision, '#i': init.name },
          ExpressionAttributeValues: {
            ':o': s(lease.owner),
            ':u': n(lease.until),
            ':now': n(lease.now),
            ':zero': n(0),
            ':one': n(1),
            ':i': init.value,
          },
          ReturnValues: 'ALL_NEW',
          ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
        }),
      );
      observe(this.#onCapacity, result.ConsumedCapacity, 'write');
      return result.Attributes;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  public async claim(streamId: string, owner: string, until: number, now: number): Promise<Checkpoint | undefined> {
    const item = await this.#claim(
      streamKey(streamId),
      { name: A.streamId, value: s(streamId) },
      { owner, until, now },
    );
    return item ? checkpointFromItem(item) : undefined;
  }

  public async loadReplay(): Promise<ReplayState | undefined> {
    const result = await this.#client.send(
      new GetItemCommand({
        TableName: this.#table,
        Key: replayKey,
        ConsistentRead: true,
        ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
      }),
    );
    observe(this.#onCapacity, result.ConsumedCapacity, 'read');
    return result.Item ? replayFromItem(result.Item) : undefined;
  }

  public saveReplay(next: ReplayState): Promise<boolean> {
    return this.#put(replayToItem(next, next.revision + 1), next.revision);
  }

  public async claimReplay(owner: string, until: number, now: number): Promise<ReplayState | undefined> {
    const item = await this.#claim(replayKey, { name: R.status, value: s('pending') }, { owner, until, now });
    return item ? replayFromItem(item) : undefined;
  }

  // --- for the command-line tool -----------------------------------------------------------

  /** Every checkpoint (a paged Scan). */
  public async listCheckpoints(): Promise<Checkpoint[]> {
    const found: Checkpoint[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.#client.send(
        new ScanCommand({ TableName: this.#table, ExclusiveStartKey: startKey, ConsistentRead: true }),
      );
      for (const item of page.Items ?? [])
        if (item[KEY]?.S !== CheckpointKeys.replayKey) found.push(checkpointFromItem(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return found;
  }

  /**
   * Ask for a parked stream to be resumed: the replay worker retries it from the parked
   * version (holding the stream, so no live batch delivers it at the same time).
   * @returns false when the stream is not parked.
   */
  public async requestResume(streamId: string): Promise<boolean> {
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: streamKey(streamId),
          UpdateExpression: 'SET #q = :t, #r = #r + :one',
          ConditionExpression: 'attribute_exists(#p)',
          ExpressionAttributeNames: { '#q': A.resumeRequested, '#p': A.parkedVersion, '#r': A.revision },
          ExpressionAttributeValues: { ':t': { BOOL: true }, ':one': n(1) },
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
    await this.#client.send(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: replayKey,
        UpdateExpression: 'ADD #q :ids SET #r = if_not_exists(#r, :zero) + :one, #s = if_not_exists(#s, :pending)',
        ExpressionAttributeNames: { '#q': R.resume, '#r': A.revision, '#s': R.status },
        ExpressionAttributeValues: {
          ':ids': { SS: [streamId] },
          ':zero': n(0),
          ':one': n(1),
          ':pending': s('pending'),
        },
      }),
    );
    return true;
  }

  /** Forget everything delivered: the next replay run starts again from version 1 of every stream. */
  public async reset(): Promise<number> {
    let removed = 0;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.#client.send(
        new ScanCommand({
          TableName: this.#table,
          ExclusiveStartKey: startKey,
          ProjectionExpression: '#k',
          ExpressionAttributeNames: { '#k': KEY },
        }),
      );
      for (const item of page.Items ?? []) {
        await this.#client.send(new DeleteItemCommand({ TableName: this.#table, Key: { [KEY]: item[KEY]! } }));
        removed += 1;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return removed;
  }
}

export interface DynamoDbEventReaderOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Replay: each request's read units go through it. */
  readonly limiter?: ReadRateLimiter;
  readonly onCapacity?: CapacityObserver;
}

/** Strongly consistent reads of the event table: gap fills and catch-up pages. */
export class DynamoDbEventReader implements EventReader, StreamScanner {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #limiter: ReadRateLimiter | undefined;
  readonly #onCapacity: CapacityObserver | undefined;

  public constructor(options: DynamoDbEventReaderOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
    this.#limiter = options.limiter;
    this.#onCapacity = options.onCapacity;
  }

  async #consumed(consumed: ConsumedCapacity | undefined): Promise<void> {
    let units = 0;
    observe(
      (u) => {
        units += u.read;
        this.#onCapacity?.(u);
      },
      consumed,
      'read',
    );
    await this.#limiter?.consumed(units);
  }

  public async read(streamId: string, from: number, to: number | undefined, limit: number): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    const values: Record<string, AttributeValue> = { ':id': s(streamId), ':from': n(from) };
    if (to !== undefined) values[':to'] = n(to);
    do {
      const page = await this.#client.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression:
            to === undefined ? '#id = :id AND #v >= :from' : '#id = :id AND #v BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#id': PK, '#v': SK },
          ExpressionAttributeValues: values,
          ConsistentRead: true,
          ScanIndexForward: true,
          Limit: limit - events.length,
          ExclusiveStartKey: startKey,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      await this.#consumed(page.ConsumedCapacity);
      for (const item of page.Items ?? []) events.push(fromItem(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey && events.length < limit);
    return events;
  }

  /** One page of the event table's stream ids (consecutive repeats removed). */
  public async scan(cursor: string | undefined, limit: number): Promise<ScanPage> {
    const page = await this.#client.send(
      new ScanCommand({
        TableName: this.#table,
        ProjectionExpression: '#id',
        ExpressionAttributeNames: { '#id': PK },
        Limit: limit,
        ...(cursor ? { ExclusiveStartKey: JSON.parse(cursor) as Record<string, AttributeValue> } : {}),
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    await this.#consumed(page.ConsumedCapacity);
    const streamIds: string[] = [];
    for (const item of page.Items ?? []) {
      const id = item[PK]?.S;
      if (id !== undefined && streamIds[streamIds.length - 1] !== id) streamIds.push(id);
    }
    return { streamIds, cursor: page.LastEvaluatedKey ? JSON.stringify(page.LastEvaluatedKey) : undefined };
  }
}
