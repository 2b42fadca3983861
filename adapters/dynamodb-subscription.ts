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
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TableKeys } from '../core/keys.ts';
import type { StoredEvent } from '../core/store.ts';
import {
  CheckpointKeys,
  ClaimKeys,
  emptyCheckpoint,
  ClaimGoneError,
  type Claim,
  type ClaimStore,
  initialReplayState,
  type Checkpoint,
  type CheckpointStore,
  type EventReader,
  type ReadRateLimiter,
  type ReplayState,
  type ScanPage,
  type StreamScanner,
  type TakeResult,
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
  /** Careful mode up to this version (core/subscription.ts `Checkpoint.carefulUntil`); absent: none. */
  carefulUntil: 'CarefulUntil',
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
    carefulUntil: num(item, A.carefulUntil) ?? 0,
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
  // Written only while it covers versions ahead: the healthy path's items stay as small as they were.
  if (checkpoint.carefulUntil > checkpoint.delivered) item[A.carefulUntil] = n(checkpoint.carefulUntil);
  if (checkpoint.lastError !== undefined) item[A.lastError] = s(checkpoint.lastError.slice(0, 2000));
  if (checkpoint.parked) {
    item[A.parkedVersion] = n(checkpoint.parked.version);
    item[A.parkedError] = s(checkpoint.parked.error.slice(0, 2000));
    item[A.parkedAt] = s(checkpoint.parked.at);
    if (checkpoint.parked.resumeRequested) item[A.resumeRequested] = { BOOL: true };
  }
  if (checkpoint.lease) {
    item[A.leaseOwner] = s(checkpoint.lease.owner);
    item[A.leaseUntil] = n(checkpoint.lease.until);
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
 * Checkpoints and replay state, one item each. A stream's lease is taken by one conditional
 * write (no other lease running), and every checkpoint write is conditioned on the item's
 * `Revision` and the lease holder, so a run whose lease was taken over, or whose stream was
 * reset, can never advance it. Items are never deleted and `Revision` only grows.
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

  async #put(item: Record<string, AttributeValue>, revision: number, owner?: string): Promise<boolean> {
    const names: Record<string, string> = revision === 0 ? { '#k': KEY } : { '#r': A.revision };
    const values: Record<string, AttributeValue> = revision === 0 ? {} : { ':r': n(revision) };
    let condition = revision === 0 ? 'attribute_not_exists(#k)' : '#r = :r';
    if (owner !== undefined) {
      names['#o'] = A.leaseOwner;
      values[':o'] = s(owner);
      condition += ' AND #o = :o';
    }
    return this.#conditionalWrite(() =>
      this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: item,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
          ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
        }),
      ),
    );
  }

  /** Send a conditional write and count its units: false when its condition failed. */
  async #conditionalWrite(
    send: () => Promise<{ readonly ConsumedCapacity?: ConsumedCapacity | undefined }>,
  ): Promise<boolean> {
    try {
      const result = await send();
      observe(this.#onCapacity, result.ConsumedCapacity, 'write');
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Write `next` if the stored revision is still `next.revision` and, given `owner`, the lease
   * is still that owner's (the fencing check): the lease is kept when `next.lease` is set,
   * released otherwise. False: someone else wrote the item since (a take-over, a reset).
   */
  public save(next: Checkpoint, owner?: string): Promise<boolean> {
    return this.#put(checkpointToItem(next, next.revision + 1), next.revision, owner);
  }

  /**
   * Take a stream's lease for `owner` until `until` unless another owner holds it past `now`,
   * and count an attempt (`Attempts` + 1: a holder that dies before it checkpoints has its
   * attempt counted). One conditional write; the checkpoint as taken comes back with it.
   */
  public async take(streamId: string, owner: string, until: number, now: number): Promise<TakeResult> {
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: streamKey(streamId),
          UpdateExpression:
            'SET #o = :o, #u = :u, #r = if_not_exists(#r, :zero) + :one, #a = if_not_exists(#a, :zero) + :one, #i = if_not_exists(#i, :i)',
          ConditionExpression: 'attribute_not_exists(#u) OR #u < :now',
          ExpressionAttributeNames: {
            '#o': A.leaseOwner,
            '#u': A.leaseUntil,
            '#r': A.revision,
            '#a': A.attempts,
            '#i': A.streamId,
          },
          ExpressionAttributeValues: {
            ':o': s(owner),
            ':u': n(until),
            ':now': n(now),
            ':zero': n(0),
            ':one': n(1),
            ':i': s(streamId),
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
        }),
      );
      observe(this.#onCapacity, result.ConsumedCapacity, 'write');
      return { taken: checkpointFromItem(result.Attributes!) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // ReturnValuesOnConditionCheckFailure: the item as it was, on the exception.
      const old = (error as { Item?: Record<string, AttributeValue> }).Item;
      return { taken: undefined, heldUntil: old ? num(old, A.leaseUntil) : undefined };
    }
  }

  /** Give a lease back without touching the checkpoint (after a lost write): only if `owner` still holds it. */
  public async release(streamId: string, owner: string): Promise<void> {
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: streamKey(streamId),
          UpdateExpression: 'REMOVE #o, #u SET #r = #r + :one',
          ConditionExpression: '#o = :o',
          ExpressionAttributeNames: { '#o': A.leaseOwner, '#u': A.leaseUntil, '#r': A.revision },
          ExpressionAttributeValues: { ':o': s(owner), ':one': n(1) },
          ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
        }),
      );
      observe(this.#onCapacity, result.ConsumedCapacity, 'write');
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  /** The stream's lease, strongly consistent (a waiter's poll: a read rather than a take's write). */
  public async peek(streamId: string): Promise<Checkpoint['lease']> {
    const result = await this.#client.send(
      new GetItemCommand({
        TableName: this.#table,
        Key: streamKey(streamId),
        ConsistentRead: true,
        ProjectionExpression: '#o, #u',
        ExpressionAttributeNames: { '#o': A.leaseOwner, '#u': A.leaseUntil },
        ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
      }),
    );
    observe(this.#onCapacity, result.ConsumedCapacity, 'read');
    return result.Item ? leaseOf(result.Item) : undefined;
  }

  /** Take the replay item's lease (creating the item with `init` when it does not exist); undefined: another owner holds it. */
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

  /**
   * Write the replay worker's fields of `next` if the stored revision is still `next.revision`.
   * The `Resume` set is left alone: asks for a resume or a catch-up are added to it (and done
   * ones deleted) by set updates that never conflict with the worker (`askReplay`, `resumeDone`).
   */
  public async saveReplay(next: ReplayState): Promise<boolean> {
    const item = replayToItem(next, next.revision + 1);
    const managed = [
      R.status,
      R.streams,
      R.events,
      A.revision,
      A.updatedAt,
      R.cursor,
      R.lastStream,
      R.startedAt,
      R.finishedAt,
      A.leaseOwner,
      A.leaseUntil,
    ];
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const set: string[] = [];
    const remove: string[] = [];
    managed.forEach((name, index) => {
      names[`#a${index}`] = name;
      const value = item[name];
      if (value === undefined) remove.push(`#a${index}`);
      else {
        values[`:a${index}`] = value;
        set.push(`#a${index} = :a${index}`);
      }
    });
    names['#rev'] = A.revision;
    if (next.revision !== 0) values[':rev'] = n(next.revision);
    return this.#conditionalWrite(() =>
      this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: replayKey,
          UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
          ConditionExpression: next.revision === 0 ? 'attribute_not_exists(#rev)' : '#rev = :rev',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
        }),
      ),
    );
  }

  /**
   * Have the replay worker catch these streams up from their checkpoints (a resume, or a live
   * batch that ran out of time far behind). A set addition, no revision: it never makes a
   * running replay's write fail, and the worker's writes never drop it.
   */
  public async askReplay(streamIds: readonly string[]): Promise<void> {
    if (streamIds.length === 0) return;
    const result = await this.#client.send(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: replayKey,
        UpdateExpression: 'ADD #q :ids SET #s = if_not_exists(#s, :pending)',
        ExpressionAttributeNames: { '#q': R.resume, '#s': R.status },
        ExpressionAttributeValues: { ':ids': { SS: [...new Set(streamIds)] }, ':pending': s('pending') },
        ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
      }),
    );
    observe(this.#onCapacity, result.ConsumedCapacity, 'write');
  }

  /** The replay worker caught these streams up: take them off the list (a set deletion, no revision). */
  public async resumeDone(streamIds: readonly string[]): Promise<void> {
    if (streamIds.length === 0) return;
    const result = await this.#client.send(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: replayKey,
        UpdateExpression: 'DELETE #q :ids',
        ExpressionAttributeNames: { '#q': R.resume },
        ExpressionAttributeValues: { ':ids': { SS: [...new Set(streamIds)] } },
        ReturnConsumedCapacity: this.#onCapacity ? 'TOTAL' : 'NONE',
      }),
    );
    observe(this.#onCapacity, result.ConsumedCapacity, 'write');
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
    await this.askReplay([streamId]);
    return true;
  }

  /**
   * Forget everything delivered: the next replay run starts again from version 1 of every
   * stream. Safe while batches run: no item is deleted (a deleted item would start its
   * `Revision` at 0 again, and a stale writer's condition could match once more); each
   * checkpoint is set back to version 0 with its revision bumped, so a holder's checkpoint
   * write fails, and its lease is kept, so no one else delivers the stream before the holder
   * has stopped. The replay state goes back to `pending` the same way.
   *
   * It returns only once every lease it found (taken before it) has been given back or has
   * ended (a lease ends at its holder's deadline plus a clock allowance: at most a function
   * timeout away), so no holder from before the reset hands anything over after it returns: a
   * read model cleared then receives the replay's events only (README "Subscriptions").
   * @returns the items reset.
   */
  public async reset(options: ResetOptions = {}): Promise<number> {
    const now = options.now ?? Date.now;
    const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const holders: LeaseWait[] = [];
    const before = options.claims ? await liveClaims(options.claims, { now, sleep }) : []; // #fenceClaims
    let reset = 0;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.#client.send(
        new ScanCommand({
          TableName: this.#table,
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
          ProjectionExpression: '#k',
          ExpressionAttributeNames: { '#k': KEY },
        }),
      );
      for (const item of page.Items ?? []) {
        const key = { [KEY]: item[KEY]! };
        const replay = item[KEY]?.S === CheckpointKeys.replayKey;
        const written = await this.#client.send(
          new UpdateItemCommand(
            replay
              ? {
                  TableName: this.#table,
                  Key: key,
                  UpdateExpression:
                    'SET #s = :pending, #n = :zero, #e = :zero, #r = #r + :one, #t = :now REMOVE #c, #l, #b, #f, #q',
                  ExpressionAttributeNames: {
                    '#s': R.status,
                    '#n': R.streams,
                    '#e': R.events,
                    '#r': A.revision,
                    '#t': A.updatedAt,
                    '#c': R.cursor,
                    '#l': R.lastStream,
                    '#b': R.startedAt,
                    '#f': R.finishedAt,
                    '#q': R.resume,
                  },
                  ExpressionAttributeValues: {
                    ':pending': s('pending'),
                    ':zero': n(0),
                    ':one': n(1),
                    ':now': s(new Date().toISOString()),
                  },
                }
              : {
                  TableName: this.#table,
                  Key: key,
                  UpdateExpression:
                    'SET #d = :zero, #a = :zero, #r = #r + :one, #t = :now REMOVE #x, #pv, #pe, #pa, #q, #cu',
                  ExpressionAttributeNames: {
                    '#d': A.delivered,
                    '#a': A.attempts,
                    '#r': A.revision,
                    '#t': A.updatedAt,
                    '#x': A.lastError,
                    '#pv': A.parkedVersion,
                    '#pe': A.parkedError,
                    '#pa': A.parkedAt,
                    '#q': A.resumeRequested,
                    '#cu': A.carefulUntil,
                  },
                  ExpressionAttributeValues: { ':zero': n(0), ':one': n(1), ':now': s(new Date().toISOString()) },
                  ReturnValues: 'ALL_NEW',
                },
          ),
        );
        const lease = written.Attributes ? leaseOf(written.Attributes) : undefined;
        if (!replay && lease && lease.until >= now())
          holders.push({ streamId: checkpointFromItem(written.Attributes!).streamId, ...lease });
        reset += 1;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    await this.#waitForHolders(holders, { now, sleep, onWait: options.onWait });
    if (options.claims) await this.#fenceClaims(options.claims, before, { now, sleep, onWait: options.onWait });
    return reset;
  }

  /**
   * The reset's last step with claims: set back the checkpoint of every stream a claim live
   * before or after the Scan names, then wait for those claims.
   */
  async #fenceClaims(
    claims: DynamoDbClaimStore,
    before: readonly Claim[],
    clock: { now: () => number; sleep: (ms: number) => Promise<void>; onWait: ResetOptions['onWait'] },
  ): Promise<void> {
    const after = await liveClaims(claims, clock);
    const live = [...new Map([...before, ...after].map((claim) => [claim.key, claim])).values()];
    // A claim's holder may have looked before the Scan at a stream with no checkpoint item yet
    // (nothing for the Scan to set back): its first checkpoint write is conditioned on the item
    // not existing. Setting back (creating) the checkpoint of every stream a claim live before
    // or after the Scan names makes that write fail, or undoes it if it came after the Scan (a
    // holder gone by the second read was in the first), as any other holder's write
    // (docs/ARCHITECTURE.md, "Subscriptions").
    for (const streamId of new Set(live.flatMap((claim) => [...claim.streams.keys()]))) await this.#setBack(streamId);
    await waitForClaims(claims, live, clock);
  }

  /** Set a stream's checkpoint back to version 0 with its revision bumped, creating it if absent (its lease kept). */
  async #setBack(streamId: string): Promise<void> {
    await this.#client.send(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: streamKey(streamId),
        UpdateExpression:
          'SET #i = if_not_exists(#i, :i), #d = :zero, #h = if_not_exists(#h, :zero), #a = :zero, #r = if_not_exists(#r, :zero) + :one, #t = :now REMOVE #x, #pv, #pe, #pa, #q, #cu',
        ExpressionAttributeNames: {
          '#i': A.streamId,
          '#d': A.delivered,
          '#h': A.head,
          '#a': A.attempts,
          '#r': A.revision,
          '#t': A.updatedAt,
          '#x': A.lastError,
          '#pv': A.parkedVersion,
          '#pe': A.parkedError,
          '#pa': A.parkedAt,
          '#q': A.resumeRequested,
          '#cu': A.carefulUntil,
        },
        ExpressionAttributeValues: {
          ':i': s(streamId),
          ':zero': n(0),
          ':one': n(1),
          ':now': s(new Date().toISOString()),
        },
      }),
    );
  }

  /** Wait until each of these leases is given back, taken by another (after it ended) or over. */
  async #waitForHolders(
    holders: readonly LeaseWait[],
    clock: { now: () => number; sleep: (ms: number) => Promise<void>; onWait: ResetOptions['onWait'] },
  ): Promise<void> {
    let waiting = [...holders];
    let pause = 500;
    while (waiting.length > 0) {
      clock.onWait?.(waiting);
      const last = Math.max(...waiting.map((holder) => holder.until));
      await clock.sleep(Math.max(1, Math.min(pause, last - clock.now() + 1)));
      pause = Math.min(5_000, pause * 2);
      const still: LeaseWait[] = [];
      for (const holder of waiting) {
        if (holder.until < clock.now()) continue;
        let lease: Checkpoint['lease'];
        try {
          lease = await this.peek(holder.streamId);
        } catch {
          // A failed read proves nothing: keep waiting (the lease's end bounds it).
          still.push(holder);
          continue;
        }
        if (lease?.owner === holder.owner && lease.until === holder.until) still.push(holder);
      }
      waiting = still;
    }
  }
}

/** A lease a reset found, and waits for. */
export interface LeaseWait {
  readonly streamId: string;
  readonly owner: string;
  readonly until: number;
}

export interface ResetOptions {
  /** Told, before each wait, which holders from before the reset it still waits for. */
  readonly onWait?: ((waiting: readonly LeaseWait[]) => void) | undefined;
  /**
   * The subscription's claims (when its live path holds streams by claims): the reset also waits
   * for every claim it finds after setting the checkpoints back (a claim's holder has no lease).
   */
  readonly claims?: DynamoDbClaimStore | undefined;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
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
  /** The most read units one request of this reader consumed. */
  #largest = 0;

  public constructor(options: DynamoDbEventReaderOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
    this.#limiter = options.limiter;
    this.#onCapacity = options.onCapacity;
  }

  /** A request that failed may still have been served and paid for (its response lost): charge it as the largest seen. */
  async #send<T extends { ConsumedCapacity?: ConsumedCapacity | undefined }>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      await this.#limiter?.consumed(this.#largest);
      throw error;
    }
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
    this.#largest = Math.max(this.#largest, units);
    await this.#limiter?.consumed(units);
  }

  public async read(streamId: string, from: number, to: number | undefined, limit: number): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    const values: Record<string, AttributeValue> = { ':id': s(streamId), ':from': n(from) };
    if (to !== undefined) values[':to'] = n(to);
    do {
      const page = await this.#send(() =>
        this.#client.send(
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
        ),
      );
      await this.#consumed(page.ConsumedCapacity);
      for (const item of page.Items ?? []) events.push(fromItem(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey && events.length < limit);
    return events;
  }

  /** One page of the event table's stream ids (consecutive repeats removed). */
  public async scan(cursor: string | undefined, limit: number): Promise<ScanPage> {
    const page = await this.#send(() =>
      this.#client.send(
        new ScanCommand({
          TableName: this.#table,
          ProjectionExpression: '#id',
          ExpressionAttributeNames: { '#id': PK },
          Limit: limit,
          ...(cursor ? { ExclusiveStartKey: JSON.parse(cursor) as Record<string, AttributeValue> } : {}),
          ReturnConsumedCapacity: 'TOTAL',
        }),
      ),
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

/**
 * Every claim live now (read after the checkpoints were set back): a live batch that read a
 * checkpoint before the reset holds its streams by its claim, with no lease on the checkpoint
 * (docs/ARCHITECTURE.md, "Subscriptions"). A failed read is tried again.
 */
async function liveClaims(
  claims: DynamoDbClaimStore,
  clock: { now: () => number; sleep: (ms: number) => Promise<void> },
): Promise<Claim[]> {
  for (;;) {
    try {
      return (await claims.read(clock.now())).filter((claim) => claim.until >= clock.now());
    } catch {
      await clock.sleep(500);
    }
  }
}

/** Wait until each of these claims (`liveClaims`) is deleted or past its `Until`. */
async function waitForClaims(
  claims: DynamoDbClaimStore,
  live: readonly Claim[],
  clock: { now: () => number; sleep: (ms: number) => Promise<void>; onWait: ResetOptions['onWait'] },
): Promise<void> {
  let waiting = [...live];
  let pause = 500;
  while (waiting.length > 0) {
    clock.onWait?.(
      waiting.flatMap((claim) =>
        [...claim.streams.keys()].map((streamId) => ({ streamId, owner: claim.owner, until: claim.until })),
      ),
    );
    const last = Math.max(...waiting.map((claim) => claim.until));
    await clock.sleep(Math.max(1, Math.min(pause, last - clock.now() + 1)));
    pause = Math.min(5_000, pause * 2);
    let present: Set<string>;
    try {
      present = new Set((await claims.read(clock.now())).map((claim) => claim.key));
    } catch {
      // A failed read proves nothing: keep waiting (each claim's Until bounds it).
      present = new Set(waiting.map((claim) => claim.key));
    }
    waiting = waiting.filter((claim) => claim.until >= clock.now() && present.has(claim.key));
  }
}

/** The claims table's attributes (docs/ARCHITECTURE.md, "Subscriptions"). */
export const ClaimAttributes = {
  owner: 'Owner',
  until: 'Until',
  expiresAt: ClaimKeys.expiresAt,
  /**
   * One attribute per stream named (`S:<stream ID>` -> N, the highest version the batch hands
   * over of it) rather than one map attribute: withdrawing or naming a stream again is then a
   * top-level REMOVE or SET, and the item is the same size.
   */
  streamPrefix: 'S:',
} as const;
const C = ClaimAttributes;
const DAY_SECONDS = 86_400;

export interface DynamoDbClaimStoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly onCapacity?: CapacityObserver;
}

function claimItemKey(key: string): Record<string, AttributeValue> {
  return { [ClaimKeys.partitionKey]: s(ClaimKeys.partition), [ClaimKeys.sortKey]: s(key) };
}

export function claimFromItem(item: Record<string, AttributeValue>): Claim {
  const streams = new Map<string, number>();
  for (const [name, value] of Object.entries(item))
    if (name.startsWith(C.streamPrefix) && value.N !== undefined)
      streams.set(name.slice(C.streamPrefix.length), Number(value.N));
  return {
    key: str(item, ClaimKeys.sortKey) ?? '',
    owner: str(item, C.owner) ?? '',
    until: num(item, C.until) ?? 0,
    streams,
  };
}

/**
 * A subscription's claims (docs/ARCHITECTURE.md, "Subscriptions"): one item per live batch,
 * all under one partition key so that one strongly consistent Query sees every claim written
 * before it. Small items: a write unit per KB.
 *
 * @example
 * ```ts
 * const claims = new DynamoDbClaimStore({ client, tableName: 'stream-summary-claims' });
 * const live = await claims.read(Date.now());
 * ```
 */
export class DynamoDbClaimStore implements ClaimStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #onCapacity: CapacityObserver | undefined;

  public constructor(options: DynamoDbClaimStoreOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
    this.#onCapacity = options.onCapacity;
  }

  public get tableName(): string {
    return this.#table;
  }

  #capacity(): 'TOTAL' | 'NONE' {
    return this.#onCapacity ? 'TOTAL' : 'NONE';
  }

  public async put(claim: Claim): Promise<void> {
    const item: Record<string, AttributeValue> = {
      ...claimItemKey(claim.key),
      [C.owner]: s(claim.owner),
      [C.until]: n(claim.until),
      [C.expiresAt]: n(Math.ceil(claim.until / 1000) + DAY_SECONDS),
    };
    for (const [streamId, version] of claim.streams) item[`${C.streamPrefix}${streamId}`] = n(version);
    const result = await this.#client.send(
      new PutItemCommand({ TableName: this.#table, Item: item, ReturnConsumedCapacity: this.#capacity() }),
    );
    observe(this.#onCapacity, result.ConsumedCapacity, 'write');
  }

  public async read(now: number): Promise<Claim[]> {
    const claims: Claim[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.#client.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: '#k = :k',
          ExpressionAttributeNames: { '#k': ClaimKeys.partitionKey },
          ExpressionAttributeValues: { ':k': s(ClaimKeys.partition) },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
          ReturnConsumedCapacity: this.#capacity(),
        }),
      );
      observe(this.#onCapacity, page.ConsumedCapacity, 'read');
      for (const item of page.Items ?? []) {
        // TTL deletes within days of ExpiresAt: an item past it is as good as gone.
        const expires = num(item, C.expiresAt);
        if (expires !== undefined && expires * 1000 <= now) continue;
        claims.push(claimFromItem(item));
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return claims;
  }

  async #update(
    key: string,
    expression: string,
    streamId: string,
    values: Record<string, AttributeValue> | undefined,
    returnNew: boolean,
  ): Promise<Record<string, AttributeValue> | undefined> {
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: claimItemKey(key),
          UpdateExpression: expression,
          // Never create a claim: one that is gone (its batch ended) stays gone.
          ConditionExpression: 'attribute_exists(#o)',
          ExpressionAttributeNames: { '#o': C.owner, '#s': `${C.streamPrefix}${streamId}` },
          ...(values ? { ExpressionAttributeValues: values } : {}),
          ...(returnNew ? { ReturnValues: 'ALL_NEW' as const } : {}),
          ReturnConsumedCapacity: this.#capacity(),
        }),
      );
      observe(this.#onCapacity, result.ConsumedCapacity, 'write');
      return result.Attributes ?? {};
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  public async withdraw(key: string, streamId: string): Promise<void> {
    await this.#update(key, 'REMOVE #s', streamId, undefined, false);
  }

  /** @throws ClaimGoneError when the claim no longer exists (it cannot name the stream again). */
  public async readd(key: string, streamId: string, version: number): Promise<void> {
    const written = await this.#update(key, 'SET #s = :v', streamId, { ':v': n(version) }, false);
    if (written === undefined) throw new ClaimGoneError(key);
  }

  public async clearDead(key: string, streamId: string): Promise<void> {
    const after = await this.#update(key, 'REMOVE #s', streamId, undefined, true);
    if (after === undefined || claimFromItem(after).streams.size > 0) return;
    // A dead claim gets no new streams (its batch is over): once it names none, it goes.
    await this.delete(key);
  }

  public async delete(key: string): Promise<void> {
    const result = await this.#client.send(
      new DeleteItemCommand({
        TableName: this.#table,
        Key: claimItemKey(key),
        ReturnConsumedCapacity: this.#capacity(),
      }),
    );
    observe(this.#onCapacity, result.ConsumedCapacity, 'write');
  }
}

/**
 * A claims table's key schema as `CreateTable` takes it (docs/ARCHITECTURE.md, "Subscriptions"):
 * every claim under one partition, sorted by deadline; on demand. For the bench and the tests'
 * DynamoDB Local tables (the deployed one is the construct's, with TTL on `ExpiresAt`).
 */
export function claimsTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    AttributeDefinitions: [
      { AttributeName: ClaimKeys.partitionKey, AttributeType: 'S' },
      { AttributeName: ClaimKeys.sortKey, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: ClaimKeys.partitionKey, KeyType: 'HASH' },
      { AttributeName: ClaimKeys.sortKey, KeyType: 'RANGE' },
    ],
    BillingMode: 'PAY_PER_REQUEST',
  };
}
