import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { TableKeys } from '../../../core/keys.ts';
import { CheckpointKeys } from '../../../core/subscription.ts';
import { MAPPING_RETRY_ATTEMPTS } from '../../../infra/constructs/event-subscription.ts';
import { LOCAL_REGION, localFunctionArn } from '../../../local/defaults.ts';
import { HOUR, MINUTE, Rng, type SchedulePlan } from './plan.ts';
import { actorStorage, realSetImmediate, VirtualClock } from './virtual-time.ts';

/**
 * One schedule of the subscription fault explorer: a model of DynamoDB Streams and of Lambda's
 * event source mapping driving the real subscription function (through the driver, see
 * driver.ts) on a checkpoint table and an event table (backend.ts: in memory, or DynamoDB
 * Local), over virtual time, with a seeded scheduler choosing every step.
 *
 * What is modelled, and the AWS documentation it follows:
 *
 * - The table's stream: one record per INSERT (every event is its own item), in the shard of
 *   the item's partition (the stream), kept 24 hours. The mapping starts at TRIM_HORIZON when
 *   the subscription is deployed (possibly long after the first events: the oldest records are
 *   then gone).
 * - `parallelizationFactor` F > 1: each shard is worked by F concurrent batches, and Lambda keeps
 *   order only per item ("Lambda still ensures in-order processing at the item (partition and
 *   sort key) level"): records of one stream are spread over the F lanes.
 * - A lane sends at most `batchSize` records to one invocation at a time. With
 *   ReportBatchItemFailures the lane checkpoints before the lowest reported sequence number and
 *   sends from there again; a thrown error or a timeout sends the whole batch again. After
 *   MaximumRetryAttempts retries of a batch without progress (the construct's
 *   MAPPING_RETRY_ATTEMPTS; -1: "retried until the record expires") or for a record older than
 *   23 hours (MaximumRecordAge), Lambda discards it (to the on-failure destination) and the lane
 *   moves on.
 * - An invocation is killed at its function timeout, and (faults) at any await: the promise is
 *   abandoned, its pending requests never complete, its timers never fire, what it held in the
 *   checkpoint table stays there.
 * - The replay schedule invokes the function with `{ replay: true }` every minute from the deploy,
 *   whether or not the previous run ended.
 * - Users resume parked streams and reset the subscription while all this runs.
 * - Requests fail before taking effect, or take effect and lose their response, or the
 *   invocation dies right after one took effect.
 *
 * Every request to the tables is a step the scheduler releases; between steps every running
 * chain is blocked (on a request, a virtual timer, a projection that hangs). The scheduler picks
 * one enabled action at a time: release a request, start a lane's batch,
 * or let time pass to the next timer, write, replay tick, user command or function timeout.
 */

export type Item = Record<string, AttributeValue>;
/** A request's input, as far as the world reads it. */
type CommandInput = { readonly TableName?: unknown } & Record<string, unknown>;

/** Where the schedule's requests take effect. */
export interface Backend {
  readonly eventTable: string;
  readonly checkpointTable: string;
  /** The claims table (used when the schedule's function holds streams by claims). */
  readonly claimsTable: string;
  /** Execute one request (the command's class name and input). */
  send(command: string, input: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Read an item, outside the schedule. */
  get(table: string, key: Item): Promise<Item | undefined>;
  /** Write an item, outside the schedule (the producer's appends). */
  put(table: string, item: Item): Promise<void>;
  /** Every item of the checkpoint table, outside the schedule. */
  checkpointItems(): Promise<Item[]>;
}

/** A checkpoint as the explorer reads it (the driver decodes the runtime's items). */
export interface SeenCheckpoint {
  readonly streamId: string;
  readonly delivered: number;
  readonly head: number;
  readonly parkedAt: number | undefined;
  /** The request id (the Lambda context's `awsRequestId`) of the invocation whose lease the item carries. */
  readonly holder: string | undefined;
}

export type Projection = (event: { readonly ID: string; readonly Version: number }) => Promise<void>;

/** The subscription function and the users' commands, as the code under test builds them. */
export interface Driver {
  /** The subscription function on `client` with this projection. */
  handler(
    client: DynamoDBClient,
    project: Projection,
    maxAttempts: number,
  ): (event: DynamoDBStreamEvent | { replay: true }, context: Context) => Promise<unknown>;
  resume(client: DynamoDBClient, streamId: string): Promise<unknown>;
  reset(client: DynamoDBClient): Promise<unknown>;
  /** docs/OPERATIONS.md after a discarded batch: a replay from the checkpoints (as the local mode's start does). */
  rescan(client: DynamoDBClient): Promise<unknown>;
  /** The checkpoint table's key of an item (to tell which stream a write is about). */
  checkpointKey(streamId: string): Item;
  /** The streams a write to the claims table names for its claimer (a claim put, a stream named again). */
  claimedStreams(command: string, input: Record<string, unknown>): string[];
  /** A checkpoint item, decoded; undefined for items that are not a stream's checkpoint. */
  decodeCheckpoint(item: Item): SeenCheckpoint | undefined;
  /** Whether a replay item says the replay has nothing left to do. */
  replayIdle(item: Item | undefined): boolean;
  replayKey(): Item;
  /** The read units per second the runtime promises not to exceed per invocation. */
  readonly readUnitsPerSecond: number;
}

export interface Finding {
  readonly invariant: string;
  readonly detail: string;
}

interface StreamRecord {
  readonly seq: number;
  readonly streamId: string;
  readonly version: number;
  readonly writtenAt: number;
  readonly record: DynamoDBRecord;
}

interface Lane {
  readonly name: string;
  readonly records: StreamRecord[];
  position: number;
  busy: Actor | undefined;
  retries: number;
  /** No batch before this time (the pause before a retry). */
  notBefore: number;
}

type ActorKind = 'live' | 'replay' | 'user';

interface HandOver {
  readonly actor: Actor;
  readonly streamId: string;
  readonly version: number;
  readonly startStep: number;
  /** Its holder took the stream before a reset set the stream's checkpoint back. */
  readonly stale: boolean;
  /** The stream's state (its epoch) when it started. */
  readonly state: StreamState;
  ok: boolean | undefined;
}

interface Actor {
  readonly id: number;
  readonly kind: ActorKind;
  readonly label: string;
  readonly start: number;
  readonly deadline: number;
  readonly lane: Lane | undefined;
  readonly batch: readonly StreamRecord[];
  state: 'running' | 'returned' | 'threw' | 'killed';
  readUnits: number;
  largestRead: number;
  rateReported: boolean;
  /** Per stream: versions handed over successfully that no checkpoint write of this actor covers yet. */
  readonly uncovered: Map<string, Set<number>>;
  readonly open: Set<HandOver>;
  /** Per stream: the write sequence number of its last write that took effect (its take). */
  readonly takes: Map<string, number>;
  /** Per stream: the attempt at one version that this invocation is making while it holds the stream. */
  readonly holdings: Map<string, Attempt>;
  hung: boolean;
  /** When it dies (a crash, out of memory), if it does before its timeout. */
  readonly crashAt: number | undefined;
}

/**
 * An attempt at one version: from a write of the holder that leaves its lease on the stream's
 * checkpoint at `at - 1` (its take, or a checkpoint that keeps the lease) to its next write, its
 * death or its return. Read from the requests and hand-overs alone, not from the runtime's count.
 */
interface Attempt {
  readonly state: StreamState;
  readonly at: number;
  /** The newest version whose hand-over it started (0: none): past the failed version, it failed elsewhere. */
  maxHanded: number;
  /** The version whose hand-over failed (the projection threw, or the invocation died in it). */
  failedAt: number | undefined;
  /** One of its requests failed or lost its response meanwhile (the runtime gives the stream back, counted). */
  faulted: boolean;
}

/**
 * The failed attempts at one version since the last checkpoint past it (or a resume): what
 * parking it must rest on. `beyond`: how many of them went past the version (failed elsewhere).
 */
interface Streak {
  readonly at: number;
  attempts: number;
  beyond: number;
  /** A failed attempt that went past the version came after another failed attempt. */
  beyondLater: boolean;
}

interface StreamState {
  /** Highest version handed over successfully in this epoch. */
  maxOk: number;
  readonly okCount: Map<number, number>;
  readonly attempts: Map<number, number>;
  /** Failed hand-overs per version (the projection threw, or its invocation died during it). */
  readonly failures: Map<number, number>;
  /** Versions whose second hand-over is allowed: an invocation died (or a checkpoint write failed) after handing them over. */
  readonly excused: Set<number>;
  readonly open: Set<HandOver>;
  length: number;
  boundReported: Set<number>;
  streak: Streak;
  /** The parked version as the last observed write left it. */
  parkedAt: number | undefined;
  /** The write sequence number of the reset's write that started this epoch (0: none). */
  epochSeq: number;
}

interface PendingCall {
  readonly id: number;
  readonly actor: Actor;
  readonly command: string;
  readonly input: Record<string, unknown>;
  readonly label: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface WorldRecord {
  readonly trace: readonly string[];
  readonly steps: number;
  readonly violations: readonly Finding[];
  readonly notes: ReadonlyMap<string, number>;
  readonly invocations: number;
  readonly handOvers: number;
  readonly requests: number;
  readonly faults: ReadonlyMap<string, number>;
}

const EPOCH = Date.UTC(2026, 0, 1);
/** Key attributes of the two tables, for the trace. */
const KEY_NAMES = [CheckpointKeys.partitionKey, TableKeys.partitionKey, TableKeys.sortKey];
/**
 * The pause before the mapping sends a failed batch again. AWS documents none; a second or so
 * is what a function that fails at once sees, and it lets time move between retries.
 */
const RETRY_PAUSE_MS = [500, 2_000] as const;
const PAYLOAD = 'x'.repeat(800);
/** How long a request may be in flight (DynamoDB's latency, with a slow one now and then). */
const MAX_LATENCY_MS = 250;
const RETENTION_MS = 24 * HOUR;
const MAX_RECORD_AGE_MS = 23 * HOUR;
const REPLAY_EVERY_MS = MINUTE;
const MAX_STEPS = 8_000;
/** Quiescence is due this long after the deploy (the mapping's retries and a few hours of hung replays fit). */
const MAX_RUN_AFTER_DEPLOY_MS = 8 * HOUR;
/** Bounded catch-up: events one invocation may hand over of one stream between two of its checkpoint writes (generous: the runtime's page is 100). */
export const HAND_OVERS_PER_CHECKPOINT = 300;
/** Read units beyond the rate and the largest request (rounding). */
const READ_SLACK_UNITS = 5;
/**
 * The largest request a rate-limited reader makes: a replay Scan page of 500 ~1 KB items costs
 * about 62 units (eventually consistent), a catch-up Query page of 100 about 25.
 */
const PAGE_UNITS = 70;
const LOOSE = 10;

function error(name: string, message: string): Error {
  const failure = new Error(message);
  failure.name = name;
  return failure;
}

function keyText(key: unknown): string {
  if (!key || typeof key !== 'object') return '';
  return Object.values(key as Item)
    .map((value) => value.S ?? value.N ?? '?')
    .join('/');
}

/** A short description of a request for the trace. */
function describe(command: string, input: Record<string, unknown>, tables: Backend): string {
  const name = command.replace(/Command$/, '');
  const tableName = (input as CommandInput).TableName;
  const table = tableName === tables.eventTable ? 'events' : tableName === tables.claimsTable ? 'claims' : 'ckpt';
  if (command === 'BatchGetItemCommand') {
    const request = Object.values(input['RequestItems'] as Record<string, { Keys: Item[] }>)[0];
    return `${name} ckpt [${(request?.Keys ?? []).map(keyText).join(' ')}]`;
  }
  if (command === 'QueryCommand') {
    const values = input['ExpressionAttributeValues'] as Item;
    return `${name} events ${Object.values(values)
      .map((value) => value.S ?? value.N)
      .join(' ')} limit ${String(input['Limit'] ?? '-')}`;
  }
  if (command === 'ScanCommand') return `${name} ${table} from ${keyText(input['ExclusiveStartKey']) || 'start'}`;
  if (command === 'TransactWriteItemsCommand') {
    const entries = input['TransactItems'] as Record<string, Record<string, unknown>>[];
    return `${name} ${entries
      .map((entry) => {
        const [kind, request] = Object.entries(entry)[0]!;
        const item = request['Item'] as Item | undefined;
        const key =
          request['Key'] ??
          (item && Object.fromEntries(KEY_NAMES.filter((name) => item[name]).map((name) => [name, item[name]])));
        return `${kind} ${keyText(key)}`;
      })
      .join(', ')}`;
  }
  const item = input['Item'] as Item | undefined;
  const key =
    input['Key'] ??
    (item && Object.fromEntries(KEY_NAMES.filter((name) => item[name]).map((name) => [name, item[name]])));
  const condition = input['ConditionExpression'] ? ' if' : '';
  return `${name} ${table} ${keyText(key)}${condition}`;
}

export class World {
  readonly #plan: SchedulePlan;
  readonly #backend: Backend;
  readonly #driver: Driver;
  readonly #clock = new VirtualClock(EPOCH);
  readonly #rng: Rng;
  readonly #trace: string[] = [];
  readonly #violations: Finding[] = [];
  readonly #notes = new Map<string, number>();
  readonly #faults = new Map<string, number>();
  readonly #pending: PendingCall[] = [];
  readonly #actors = new Map<number, Actor>();
  readonly #lanes: Lane[] = [];
  readonly #streams = new Map<string, StreamState>();
  readonly #client: DynamoDBClient;
  readonly #handler: ReturnType<Driver['handler']>;
  #fixed = false;
  #writeIndex = 0;
  #seq = 0;
  #nextId = 0;
  #nextActor = 0;
  #writeSeq = 0;
  #step = 0;
  #requests = 0;
  #handOvers = 0;
  #nextTick: number;
  #resetRunning = 0;
  #userActions: { at: number; kind: 'resume' | 'reset' | 'rescan' }[];
  /** Records the mapping discarded (the failure queue's messages). */
  #discarded = 0;
  #changes = 0;
  #inFlight = 0;
  #deployed = false;

  public constructor(plan: SchedulePlan, backend: Backend, driver: Driver) {
    this.#plan = plan;
    this.#backend = backend;
    this.#driver = driver;
    this.#rng = Rng.derive(plan.seed, plan.index, 'scheduler');
    for (let shard = 0; shard < plan.shards; shard += 1)
      for (let lane = 0; lane < plan.parallelizationFactor; lane += 1)
        this.#lanes.push({
          name: `shard${shard}.${lane}`,
          records: [],
          position: 0,
          busy: undefined,
          retries: 0,
          notBefore: 0,
        });
    for (const streamId of plan.streams) this.#streams.set(streamId, this.#newStreamState(0));
    this.#nextTick = plan.deployAt + REPLAY_EVERY_MS;
    this.#userActions = [
      ...(plan.resumeAt === undefined ? [] : [{ at: plan.resumeAt, kind: 'resume' as const }]),
      ...(plan.resetAt === undefined ? [] : [{ at: plan.resetAt, kind: 'reset' as const }]),
    ].sort((a, b) => a.at - b.at);
    this.#client = {
      send: (command: { constructor: { name: string }; input: Record<string, unknown> }) => this.#call(command),
      destroy: () => undefined,
    } as unknown as DynamoDBClient;
    // Built on the schedule's clock: what the function keeps per container (the live read
    // limiter) starts at virtual time, as a cold start would.
    const random = Rng.derive(plan.seed, plan.index, 'container');
    this.#handler = actorStorage.run({ clock: this.#clock, actorId: 0, random: () => random.next() }, () =>
      driver.handler(this.#client, (event) => this.#project(event), plan.maxAttempts),
    );
  }

  #newStreamState(length: number): StreamState {
    return {
      maxOk: 0,
      okCount: new Map(),
      attempts: new Map(),
      failures: new Map(),
      excused: new Set(),
      open: new Set(),
      length,
      boundReported: new Set(),
      streak: { at: 1, attempts: 0, beyond: 0, beyondLater: false },
      parkedAt: undefined,
      epochSeq: 0,
    };
  }

  get #now(): number {
    return this.#clock.now - EPOCH;
  }

  #log(line: string): void {
    this.#trace.push(`${(this.#now / 1000).toFixed(3).padStart(10)}s #${this.#step} ${line}`);
  }

  #violate(invariant: string, detail: string): void {
    this.#violations.push({ invariant, detail });
    this.#log(`VIOLATION ${invariant}: ${detail}`);
  }

  #note(name: string, count = 1): void {
    this.#notes.set(name, (this.#notes.get(name) ?? 0) + count);
  }

  #fault(kind: string): void {
    this.#faults.set(kind, (this.#faults.get(kind) ?? 0) + 1);
  }

  // ------------------------------------------------------------------------------------------
  // Requests

  #call(command: { constructor: { name: string }; input: Record<string, unknown> }): Promise<unknown> {
    const name = command.constructor.name;
    const input = command.input;
    const store = actorStorage.getStore();
    const actor = store ? this.#actors.get(store.actorId) : undefined;
    if (!actor) return this.#backend.send(name, input);
    // A killed invocation's process is gone: code of it that runs on after the kill (another
    // stream's branch of the same batch, resumed in the kill's own step) sends nothing.
    if (actor.state === 'killed') return new Promise<unknown>(() => undefined);
    return new Promise((resolve, reject) => {
      this.#pending.push({
        id: ++this.#nextId,
        actor,
        command: name,
        input,
        label: describe(name, input, this.#backend),
        resolve,
        reject,
      });
      this.#changes += 1;
    });
  }

  /** The streams whose checkpoint items a write touches. */
  #checkpointWrites(command: string, input: Record<string, unknown>): Item[] {
    const table = this.#backend.checkpointTable;
    const keys: Item[] = [];
    const keyOf = (request: Record<string, unknown>): Item | undefined => {
      if ((request as CommandInput).TableName !== table) return undefined;
      if (request['Key']) return request['Key'] as Item;
      const item = request['Item'] as Item | undefined;
      const sample = this.#driver.checkpointKey('x');
      return item ? Object.fromEntries(Object.keys(sample).map((name) => [name, item[name]!])) : undefined;
    };
    if (command === 'PutItemCommand' || command === 'UpdateItemCommand' || command === 'DeleteItemCommand') {
      const key = keyOf(input);
      if (key) keys.push(key);
    } else if (command === 'TransactWriteItemsCommand') {
      for (const entry of input['TransactItems'] as Record<string, Record<string, unknown>>[]) {
        const [kind, request] = Object.entries(entry)[0]!;
        if (kind === 'ConditionCheck') continue;
        const key = keyOf(request);
        if (key) keys.push(key);
      }
    } else if (command === 'BatchWriteItemCommand') {
      for (const [tableName, requests] of Object.entries(
        input['RequestItems'] as Record<string, Record<string, Record<string, unknown>>[]>,
      )) {
        for (const request of requests) {
          const inner = request['PutRequest'] ?? request['DeleteRequest'];
          const key = inner ? keyOf({ TableName: tableName, ...inner }) : undefined;
          if (key) keys.push(key);
        }
      }
    }
    return keys;
  }

  async #release(call: PendingCall): Promise<void> {
    this.#pending.splice(this.#pending.indexOf(call), 1);
    const { actor } = call;
    const user = actor.kind === 'user';
    const roll = this.#rng.next();
    const plan = this.#fixed || user || this.#now >= this.#plan.faultsUntil ? undefined : this.#plan;
    const fail = plan ? plan.callFailRate : 0;
    const lost = plan ? plan.lostResponseRate : 0;
    const killAfter = plan ? plan.killAfterCallRate : 0;
    const keys = this.#checkpointWrites(call.command, call.input);
    if (roll < fail) {
      this.#fault('request failed');
      this.#log(`${actor.label}: ${call.label} -> FAILED before taking effect (throttled)`);
      this.#excuseKeys(actor, keys, 'store-error');
      for (const holding of actor.holdings.values()) holding.faulted = true;
      call.reject(
        error(
          'ProvisionedThroughputExceededException',
          'The level of configured provisioned throughput for the table was exceeded',
        ),
      );
      return;
    }
    this.#requests += 1;
    let result: Record<string, unknown> | undefined;
    let failure: unknown;
    this.#inFlight += 1;
    try {
      result = await this.#backend.send(call.command, call.input);
    } catch (caught) {
      failure = caught;
    } finally {
      this.#inFlight -= 1;
    }
    if (failure === undefined && keys.length > 0) await this.#observeCheckpoints(actor, keys);
    if (failure === undefined) this.#observeClaims(actor, call);
    if (failure === undefined && result) this.#observeReads(actor, call, result);
    const outcome =
      failure === undefined
        ? 'ok'
        : `${(failure as Error).name ?? 'Error'}${(failure as Error).name === 'ConditionalCheckFailedException' ? '' : `: ${String((failure as Error).message)}`}`;
    if (roll < fail + killAfter && failure === undefined) {
      this.#fault('died after a request');
      this.#log(`${actor.label}: ${call.label} -> ${outcome}, then the invocation DIES`);
      this.#kill(actor, 'crashed after a request took effect');
      return;
    }
    if (roll < fail + killAfter + lost) {
      this.#fault('response lost');
      this.#log(`${actor.label}: ${call.label} -> ${outcome}, RESPONSE LOST`);
      this.#excuseKeys(actor, keys, 'store-error');
      for (const holding of actor.holdings.values()) holding.faulted = true;
      call.reject(error('TimeoutError', 'socket hang up (the response was lost)'));
      return;
    }
    this.#log(`${actor.label}: ${call.label} -> ${outcome}`);
    if (failure === undefined) call.resolve(result);
    else call.reject(failure);
  }

  /**
   * A live batch, or a replay's catch-up, that holds streams by a claim writes nothing on their
   * checkpoints before it hands over: what it hands over belongs to the epoch of its strongly
   * consistent read of the checkpoint, taken after its claim (for the reset race, as a take is
   * for a lease holder).
   */
  #observeClaims(actor: Actor, call: PendingCall): void {
    if (!this.#plan.claims || actor.kind === 'user' || call.command !== 'BatchGetItemCommand') return;
    const requests = call.input['RequestItems'] as Record<string, { Keys?: Item[] }>;
    const keys = new Set((requests[this.#backend.checkpointTable]?.Keys ?? []).map(keyText));
    const streams = actor.kind === 'live' ? actor.batch.map((record) => record.streamId) : this.#plan.streams;
    for (const streamId of new Set(streams)) {
      if (!keys.has(keyText(this.#driver.checkpointKey(streamId)))) continue;
      this.#writeSeq += 1;
      actor.takes.set(streamId, this.#writeSeq);
    }
  }

  async #observeCheckpoints(actor: Actor, keys: readonly Item[]): Promise<void> {
    for (const key of keys) {
      const item = await this.#backend.get(this.#backend.checkpointTable, key);
      const seen = item ? this.#driver.decodeCheckpoint(item) : undefined;
      if (!seen) continue;
      this.#writeSeq += 1;
      actor.takes.set(seen.streamId, this.#writeSeq);
      if (actor.kind === 'user' && actor.label.endsWith('-reset')) this.#newEpoch(seen.streamId);
      this.#observeAttempts(actor, seen);
      const uncovered = actor.uncovered.get(seen.streamId);
      if (!uncovered) continue;
      for (const version of [...uncovered]) if (version <= seen.delivered) uncovered.delete(version);
    }
  }

  /**
   * A write of `actor` on a stream's checkpoint took effect (`seen` is the item after it): the
   * attempt it made there ends (a failure if the projection threw at the next version, or if it
   * gave the stream back without progress), and a new one starts if it keeps the lease.
   */
  #observeAttempts(actor: Actor, seen: SeenCheckpoint): void {
    if (actor.kind === 'user') return;
    const state = this.#streams.get(seen.streamId);
    if (!state) return;
    const next = seen.delivered + 1;
    const holding = actor.holdings.get(seen.streamId);
    const parkedNow = seen.parkedAt !== undefined;
    if (state.parkedAt !== undefined && !parkedNow) {
      // Resumed: the runtime counts its attempts afresh.
      state.streak = { at: next, attempts: 0, beyond: 0, beyondLater: false };
    }
    if (state.streak.at !== next) state.streak = { at: next, attempts: 0, beyond: 0, beyondLater: false };
    const holds = seen.holder === this.#requestId(actor);
    if (holding && holding.state === state) {
      if (holding.failedAt === next) this.#countFailure(state, holding);
      else if (next === holding.at && !holds && holding.faulted) {
        // Given back without progress after a request failed (a lost take, a read or checkpoint
        // write that failed). Given back with nothing to do, or with too little time left, is not
        // a failed attempt (the runtime restores the count).
        this.#countFailure(state, holding);
      }
    }
    if (state.parkedAt === undefined && parkedNow) this.#checkPark(seen.streamId, state, seen.parkedAt!);
    state.parkedAt = seen.parkedAt;
    if (holds)
      actor.holdings.set(seen.streamId, { state, at: next, maxHanded: 0, failedAt: undefined, faulted: false });
    else actor.holdings.delete(seen.streamId);
  }

  /** The invocation ended (killed, returned or threw) while it still held streams: those attempts failed. */
  #endAttempts(actor: Actor): void {
    for (const [streamId, holding] of actor.holdings) {
      if (this.#streams.get(streamId) === holding.state && holding.state.streak.at === holding.at)
        this.#countFailure(holding.state, holding);
    }
    actor.holdings.clear();
  }

  #countFailure(state: StreamState, holding: Attempt): void {
    const streak = state.streak;
    const beyond = holding.maxHanded > streak.at;
    if (beyond && streak.attempts > 0) streak.beyondLater = true;
    streak.attempts += 1;
    if (beyond) streak.beyond += 1;
  }

  /**
   * README "Subscriptions": a stream is parked at a version only after `maxAttempts` failed
   * attempts that failed at that version (a failed attempt that went past it, an invocation that
   * died part way through a page, is not one of them, and only the first attempt after a
   * checkpoint of progress can go past it: every later one goes one event at a time), and a
   * version that kills every invocation it is handed to is handed over at most `maxAttempts` + 1
   * times before that.
   */
  #checkPark(streamId: string, state: StreamState, version: number): void {
    const { maxAttempts, poison } = this.#plan;
    const streak = state.streak;
    const failures = state.failures.get(version) ?? 0;
    this.#log(
      `  (${streamId} parked at v${version}: ${streak.attempts} failed attempts at it, ${streak.beyond} of them past it; ${failures} failed hand-overs of it)`,
    );
    const failedThere = streak.at === version ? streak.attempts - streak.beyond : 0;
    if (failedThere < maxAttempts || streak.beyond > 1 || streak.beyondLater)
      this.#violate(
        'parked-after-max-attempts',
        `${streamId} parked at v${version} after ${streak.at === version ? streak.attempts : 0} failed attempts at it (maxAttempts ${maxAttempts}), ${streak.beyond} of which failed past it${streak.beyondLater ? ', not only the first' : ''}`,
      );
    const poisoned = poison?.streamId === streamId && poison.version === version;
    if (poisoned && failures > maxAttempts + 1)
      this.#violate(
        'parked-after-max-attempts',
        `${streamId} v${version} fails every time (${poison.mode}) and was handed over ${failures} times before it was parked (maxAttempts ${maxAttempts}: at most ${maxAttempts + 1})`,
      );
    if (poisoned && failures === maxAttempts + 1)
      this.#note(
        'poison versions handed over maxAttempts + 1 times (the first death, a page at a time, is not counted)',
      );
  }

  /** The request id the handler holds leases under (`context.awsRequestId`). */
  #requestId(actor: Actor): string {
    return `req-${actor.id}`;
  }

  #observeReads(actor: Actor, call: PendingCall, result: Record<string, unknown>): void {
    if ((call.input as CommandInput).TableName !== this.#backend.eventTable) return;
    const consumed = result['ConsumedCapacity'] as
      { CapacityUnits?: number } | { CapacityUnits?: number }[] | undefined;
    let units = 0;
    for (const entry of Array.isArray(consumed) ? consumed : consumed ? [consumed] : [])
      units += entry.CapacityUnits ?? 0;
    actor.readUnits += units;
    actor.largestRead = Math.max(actor.largestRead, units);
    // A token bucket of one second's units lets the request that goes into debt through (up to
    // one page).
    const allowed =
      this.#driver.readUnitsPerSecond * ((this.#clock.now - actor.start) / 1000 + 1) +
      Math.min(actor.largestRead, PAGE_UNITS) +
      READ_SLACK_UNITS;
    if (actor.readUnits > allowed && !actor.rateReported) {
      actor.rateReported = true;
      this.#violate(
        'read-rate',
        `${actor.label} read ${actor.readUnits.toFixed(1)} units of the event table in ${((this.#clock.now - actor.start) / 1000).toFixed(1)} s (at most ${this.#driver.readUnitsPerSecond}/s promised)`,
      );
    }
  }

  /** A checkpoint write of `actor` failed: what it handed over of those streams may come again. */
  #excuseKeys(actor: Actor, keys: readonly Item[], reason: string): void {
    for (const key of keys) {
      for (const [streamId, versions] of actor.uncovered) {
        if (keyText(this.#driver.checkpointKey(streamId)) !== keyText(key)) continue;
        this.#excuse(streamId, versions, reason);
        versions.clear();
      }
    }
  }

  #excuse(streamId: string, versions: Iterable<number>, reason: string): void {
    const state = this.#streams.get(streamId);
    if (!state) return;
    for (const version of versions) {
      state.excused.add(version);
      this.#log(`  (${streamId} v${version} may be handed over again: ${reason})`);
    }
  }

  // ------------------------------------------------------------------------------------------
  // The projection

  async #project(event: { readonly ID: string; readonly Version: number }): Promise<void> {
    const store = actorStorage.getStore();
    const actor = store ? this.#actors.get(store.actorId) : undefined;
    if (!actor) throw new Error('the projection was called outside an invocation');
    // Nor does it hand anything over: a hand-over that began before the kill ended with it
    // (#kill), and none begins after it (its process is gone).
    if (actor.state === 'killed') return new Promise<void>(() => undefined);
    const streamId = event.ID;
    const version = event.Version;
    const state = this.#streams.get(streamId);
    if (!state) throw new Error(`unknown stream ${streamId}`);
    this.#handOvers += 1;
    const stale = state.epochSeq > 0 && (actor.takes.get(streamId) ?? -1) < state.epochSeq;
    const handOver: HandOver = { actor, streamId, version, startStep: this.#step, stale, state, ok: undefined };
    const attempt = (state.attempts.get(version) ?? 0) + 1;
    state.attempts.set(version, attempt);
    this.#checkHandOver(handOver, state);
    let holding = actor.holdings.get(streamId);
    if (!holding && this.#plan.claims && actor.kind !== 'user') {
      // Held by the batch's (or the catch-up's) claim, with no write on the checkpoint before it: its attempt starts
      // with its first hand-over since its last checkpoint write.
      holding = { state, at: version, maxHanded: 0, failedAt: undefined, faulted: false };
      actor.holdings.set(streamId, holding);
    }
    if (holding && holding.state === state) holding.maxHanded = Math.max(holding.maxHanded, version);
    state.open.add(handOver);
    actor.open.add(handOver);
    const rng = Rng.derive(this.#plan.seed, this.#plan.index, 'projection', streamId, version, attempt);
    const poison = this.#plan.poison;
    const poisoned = !this.#fixed && poison?.streamId === streamId && poison.version === version;
    const plan = this.#plan;
    if (poisoned && poison.mode === 'throw') return this.#fail(handOver, state, 'poison: the projection throws');
    if (poisoned && poison.mode === 'hang') return this.#hang(handOver, 'poison: the projection hangs');
    if (poisoned && poison.mode === 'crash') {
      this.#log(`${actor.label}: hands ${streamId} v${version}: poison: the invocation runs out of memory`);
      this.#fault('invocation crashed');
      this.#kill(actor, 'out of memory in the projection (poison)');
      return new Promise<void>(() => undefined);
    }
    if (!this.#fixed) {
      if (attempt <= 3 && rng.chance(plan.throwRate)) return this.#fail(handOver, state, 'the projection throws');
      // (Not on a long stream: a hang per few dozen events at a 15-minute timeout outlasts any budget.)
      if (attempt === 1 && streamId !== plan.longStream && rng.chance(plan.hangRate))
        return this.#hang(handOver, 'the projection hangs');
      if (rng.chance(plan.slowRate)) {
        // Minutes-long hand-overs on a stream of hundreds of events would outlast any budget.
        const ms = rng.int(1, streamId === plan.longStream ? Math.min(plan.slowMaxMs, 2_000) : plan.slowMaxMs);
        this.#log(`${actor.label}: hands ${streamId} v${version} (slow: ${ms} ms)`);
        await new Promise((resolve) => setTimeout(resolve, ms));
      } else this.#log(`${actor.label}: hands ${streamId} v${version}`);
    } else this.#log(`${actor.label}: hands ${streamId} v${version}`);
    this.#endHandOver(handOver, state, true);
  }

  #fail(handOver: HandOver, state: StreamState, why: string): Promise<void> {
    this.#log(`${handOver.actor.label}: hands ${handOver.streamId} v${handOver.version}: ${why}`);
    this.#endHandOver(handOver, state, false);
    return Promise.reject(new Error(`${why} (${handOver.streamId} v${handOver.version})`));
  }

  #hang(handOver: HandOver, why: string): Promise<void> {
    this.#log(`${handOver.actor.label}: hands ${handOver.streamId} v${handOver.version}: ${why}`);
    handOver.actor.hung = true;
    return new Promise<void>(() => undefined);
  }

  #endHandOver(handOver: HandOver, state: StreamState, ok: boolean): void {
    if (handOver.ok !== undefined) return;
    handOver.ok = ok;
    state.open.delete(handOver);
    // A reset since it started: the new epoch's state carries it as open too.
    this.#streams.get(handOver.streamId)?.open.delete(handOver);
    handOver.actor.open.delete(handOver);
    const { actor, streamId, version } = handOver;
    // What an invocation that took the stream before its reset hands over belongs to no epoch.
    if (handOver.stale) return;
    if (!ok) {
      state.failures.set(version, (state.failures.get(version) ?? 0) + 1);
      const holding = actor.holdings.get(streamId);
      if (holding && holding.state === state) holding.failedAt = version;
      return;
    }
    state.okCount.set(version, (state.okCount.get(version) ?? 0) + 1);
    state.maxOk = Math.max(state.maxOk, version);
    let uncovered = actor.uncovered.get(streamId);
    if (!uncovered) {
      uncovered = new Set();
      actor.uncovered.set(streamId, uncovered);
    }
    uncovered.add(version);
    if (uncovered.size > HAND_OVERS_PER_CHECKPOINT && !state.boundReported.has(actor.id)) {
      state.boundReported.add(actor.id);
      this.#violate(
        'bounded-catch-up',
        `${actor.label} handed over more than ${HAND_OVERS_PER_CHECKPOINT} events of ${streamId} without a checkpoint (now at v${version})`,
      );
    }
  }

  /** Exclusive, ordered, no duplicate unless excused: checked when a hand-over starts. */
  #checkHandOver(handOver: HandOver, state: StreamState): void {
    const { actor, streamId, version } = handOver;
    for (const other of state.open) {
      this.#violate(
        'exclusive',
        `${actor.label} hands ${streamId} v${version} while ${other.actor.label} is handing over v${other.version} (since step ${other.startStep})`,
      );
    }
    if (handOver.stale) {
      // README "Reset": a holder from before the reset cannot checkpoint and stops; what it
      // hands over while the reset runs is the old epoch's. Once the reset is done, nothing may.
      if (this.#resetRunning > 0) this.#note('hand-overs by holders that took the stream before its reset');
      else
        this.#violate(
          'reset-race',
          `${actor.label}, which took ${streamId} before the reset set it back, hands v${version} after the reset was done`,
        );
      return;
    }
    if (version > state.maxOk + 1) {
      this.#violate(
        'in-order',
        `${actor.label} hands ${streamId} v${version} but v${state.maxOk + 1} was never handed over successfully`,
      );
    } else if (version <= state.maxOk && (state.okCount.get(version) ?? 0) > 0) {
      if (state.excused.has(version)) this.#note('duplicate after a death or a failed checkpoint write (allowed)');
      else
        this.#violate(
          'no-duplicate',
          `${actor.label} hands ${streamId} v${version} again (handed over successfully ${state.okCount.get(version)} time(s) before, and no invocation died before checkpointing it)`,
        );
    }
  }

  // ------------------------------------------------------------------------------------------
  // Invocations

  #startActor(
    kind: ActorKind,
    lane: Lane | undefined,
    batch: readonly StreamRecord[],
    what: string,
    suffix = '',
  ): Actor {
    const id = ++this.#nextActor;
    const timeout = kind === 'user' ? 100 * HOUR : this.#plan.functionTimeoutMs;
    const label = `${kind === 'user' ? 'user' : 'inv'}${id}${suffix}`;
    const crashes =
      kind !== 'user' && !this.#fixed && this.#now < this.#plan.faultsUntil && this.#rng.chance(this.#plan.crashRate);
    const crashAt = crashes ? this.#clock.now + this.#rng.int(0, timeout - 1) : undefined;
    const actor: Actor = {
      id,
      kind,
      label,
      start: this.#clock.now,
      deadline: this.#clock.now + timeout,
      lane,
      batch,
      state: 'running',
      readUnits: 0,
      largestRead: 0,
      rateReported: false,
      uncovered: new Map(),
      open: new Set(),
      takes: new Map(),
      holdings: new Map(),
      hung: false,
      crashAt,
    };
    this.#actors.set(id, actor);
    this.#log(`${label} starts: ${what}`);
    this.#changes += 1;
    return actor;
  }

  #run(actor: Actor, work: () => Promise<unknown>): void {
    const random = Rng.derive(this.#plan.seed, this.#plan.index, 'random', actor.id);
    const promise = actorStorage.run({ clock: this.#clock, actorId: actor.id, random: () => random.next() }, work);
    promise.then(
      (result) => this.#finished(actor, result, undefined),
      (failure: unknown) => this.#finished(actor, undefined, failure ?? new Error('rejected')),
    );
  }

  #context(actor: Actor): Context {
    return {
      callbackWaitsForEmptyEventLoop: true,
      functionName: 'subscription',
      functionVersion: '$LATEST',
      invokedFunctionArn: localFunctionArn('subscription'),
      memoryLimitInMB: '256',
      awsRequestId: this.#requestId(actor),
      logGroupName: '/aws/lambda/subscription',
      logStreamName: 'stream',
      getRemainingTimeInMillis: () => Math.max(0, actor.deadline - this.#clock.now),
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
  }

  #finished(actor: Actor, result: unknown, failure: unknown): void {
    if (actor.state !== 'running') return;
    actor.state = failure === undefined ? 'returned' : 'threw';
    this.#changes += 1;
    this.#endAttempts(actor);
    if (actor.kind === 'user') {
      this.#log(`${actor.label} done${failure === undefined ? '' : `: ${String(failure)}`}`);
      if (actor.label.endsWith('reset')) this.#resetDone();
      return;
    }
    if (!actor.lane) {
      this.#log(`${actor.label} (replay) ${failure === undefined ? 'returned' : `threw ${String(failure)}`}`);
      return;
    }
    if (failure !== undefined) {
      this.#log(`${actor.label} threw: ${failure instanceof Error ? failure.message : String(failure)}`);
      this.#laneFailed(actor.lane, actor.batch);
      return;
    }
    const failures =
      (result as { batchItemFailures?: { itemIdentifier?: string }[] } | undefined)?.batchItemFailures ?? [];
    this.#log(
      `${actor.label} returned${failures.length ? ` batchItemFailures ${failures.map((entry) => entry.itemIdentifier).join(',')}` : ''}`,
    );
    this.#laneReturned(actor.lane, actor.batch, failures);
  }

  #kill(actor: Actor, why: string): void {
    if (actor.state !== 'running') return;
    actor.state = 'killed';
    this.#changes += 1;
    const waiting = this.#pending.filter((call) => call.actor === actor).length;
    const timers = this.#clock.pendingOf(actor.id);
    this.#log(
      `${actor.label} KILLED: ${why}${waiting + timers > 0 ? ` (waiting on ${waiting} request(s), ${timers} timer(s))` : actor.hung ? ' (in a hanging projection)' : ''}`,
    );
    for (let index = this.#pending.length - 1; index >= 0; index -= 1)
      if (this.#pending[index]!.actor === actor) this.#pending.splice(index, 1);
    this.#clock.dropActor(actor.id);
    for (const handOver of [...actor.open]) {
      this.#endHandOver(handOver, handOver.state, false);
    }
    this.#endAttempts(actor);
    for (const [streamId, versions] of actor.uncovered) {
      if (versions.size > 0) this.#excuse(streamId, versions, `${actor.label} died before checkpointing`);
      versions.clear();
    }
    if (actor.lane) this.#laneFailed(actor.lane, actor.batch);
  }

  // ------------------------------------------------------------------------------------------
  // The mapping

  #laneReturned(lane: Lane, batch: readonly StreamRecord[], failures: readonly { itemIdentifier?: string }[]): void {
    lane.busy = undefined;
    if (failures.length === 0) {
      lane.position += batch.length;
      lane.retries = 0;
      return;
    }
    const indexes = failures.map((entry) =>
      batch.findIndex((record) => record.record.dynamodb?.SequenceNumber === entry.itemIdentifier),
    );
    if (indexes.some((index) => index < 0)) {
      this.#violate(
        'batch-response',
        `an itemIdentifier is not a sequence number of the batch: the whole batch is retried`,
      );
      this.#laneFailed(lane, batch);
      return;
    }
    const first = Math.min(...indexes);
    lane.position += first;
    if (first > 0) lane.retries = 1;
    else this.#retry(lane, batch);
  }

  #laneFailed(lane: Lane, batch: readonly StreamRecord[]): void {
    lane.busy = undefined;
    this.#retry(lane, batch);
  }

  #retry(lane: Lane, batch: readonly StreamRecord[]): void {
    lane.retries += 1;
    lane.notBefore = this.#clock.now + this.#rng.int(RETRY_PAUSE_MS[0], RETRY_PAUSE_MS[1]);
    if (MAPPING_RETRY_ATTEMPTS >= 0 && lane.retries > MAPPING_RETRY_ATTEMPTS) {
      const dropped = lane.records.slice(lane.position, lane.position + batch.length);
      this.#note('batches the mapping discarded after its retries (on-failure destination)');
      this.#log(
        `mapping ${lane.name}: retries exhausted, DISCARDS ${dropped.map((record) => `${record.streamId} v${record.version}`).join(', ')}`,
      );
      lane.position += dropped.length;
      this.#discarded += dropped.length;
      lane.retries = 0;
    }
  }

  #writeEvent(streamId: string): Promise<void> {
    const state = this.#streams.get(streamId)!;
    state.length += 1;
    const version = state.length;
    const seq = ++this.#seq;
    const recordedAt = new Date(this.#clock.now).toISOString();
    const item: Item = {
      ID: { S: streamId },
      Version: { N: String(version) },
      EventId: { S: `${streamId}-e${version}` },
      EventType: { S: 'EVENT_EXAMPLE' },
      Timestamp: { S: recordedAt },
      EmitterId: { S: 'explorer' },
      EmitterType: { S: 'test' },
      // About a kilobyte, as a typical event: what a read of the event table costs follows from it.
      Data: { M: { n: { N: String(version) }, text: { S: PAYLOAD } } },
      RecordedAt: { S: recordedAt },
    };
    const shard = this.#hash(streamId) % this.#plan.shards;
    const laneInShard =
      this.#plan.parallelizationFactor === 1 ? 0 : this.#rng.int(0, this.#plan.parallelizationFactor - 1);
    const lane = this.#lanes[shard * this.#plan.parallelizationFactor + laneInShard]!;
    lane.records.push({
      seq,
      streamId,
      version,
      writtenAt: this.#clock.now,
      record: {
        eventID: `e${seq}`,
        eventName: 'INSERT',
        eventSource: 'aws:dynamodb',
        awsRegion: LOCAL_REGION,
        dynamodb: {
          ApproximateCreationDateTime: Math.floor(this.#clock.now / 1000),
          Keys: { ID: { S: streamId }, Version: { N: String(version) } },
          NewImage: item as NonNullable<DynamoDBRecord['dynamodb']>['NewImage'],
          SequenceNumber: String(100_000_000_000_000_000_000n + BigInt(seq)),
          SizeBytes: 200,
          StreamViewType: 'NEW_IMAGE',
        },
      },
    });
    return this.#backend.put(this.#backend.eventTable, item);
  }

  #hash(text: string): number {
    let value = 0x811c9dc5;
    for (let index = 0; index < text.length; index += 1) {
      value ^= text.charCodeAt(index);
      value = Math.imul(value, 0x01000193) >>> 0;
    }
    return value;
  }

  /** The records a lane would send now, after dropping what is too old. */
  #nextBatch(lane: Lane): StreamRecord[] {
    for (;;) {
      const head = lane.records[lane.position];
      if (!head) return [];
      const age = this.#clock.now - head.writtenAt;
      if (age >= RETENTION_MS) {
        this.#note('stream records trimmed (24 h) before the mapping read them');
        this.#log(`stream: ${head.streamId} v${head.version} TRIMMED before ${lane.name} read it`);
        lane.position += 1;
        continue;
      }
      if (age >= MAX_RECORD_AGE_MS) {
        this.#note('records the mapping discarded for their age (on-failure destination)');
        this.#log(`mapping ${lane.name}: DISCARDS ${head.streamId} v${head.version} (older than 23 h)`);
        lane.position += 1;
        this.#discarded += 1;
        lane.retries = 0;
        continue;
      }
      break;
    }
    return lane.records
      .slice(lane.position, lane.position + this.#plan.batchSize)
      .filter((record) => record.writtenAt <= this.#clock.now);
  }

  #startBatch(lane: Lane): void {
    const batch = this.#nextBatch(lane);
    if (batch.length === 0) return;
    const actor = this.#startActor(
      'live',
      lane,
      batch,
      `${lane.name} batch ${batch.map((record) => `${record.streamId}v${record.version}`).join(' ')}${lane.retries ? ` (retry ${lane.retries})` : ''}`,
    );
    lane.busy = actor;
    const event: DynamoDBStreamEvent = { Records: batch.map((record) => record.record) };
    this.#run(actor, () => this.#handler(event, this.#context(actor)));
  }

  #startReplay(): void {
    const actor = this.#startActor('replay', undefined, [], 'the replay schedule');
    this.#run(actor, () => this.#handler({ replay: true }, this.#context(actor)));
  }

  async #startUserAction(kind: 'resume' | 'reset' | 'rescan'): Promise<void> {
    if (kind === 'rescan') {
      const actor = this.#startActor('user', undefined, [], 'the operator replays from the checkpoints', '-rescan');
      this.#run(actor, () => this.#driver.rescan(this.#client));
      return;
    }
    if (kind === 'reset') {
      const actor = this.#startActor('user', undefined, [], 'eventstore subscriptions reset', '-reset');
      this.#resetRunning += 1;
      // The user cleared the read model and asks for everything again: each stream's new epoch
      // starts when the reset sets its checkpoint back (#observeCheckpoints).
      this.#run(actor, () => this.#driver.reset(this.#client));
      return;
    }
    const parked = await this.#parkedStreams();
    for (const streamId of parked) {
      // A resumed stream gets maxAttempts attempts again.
      this.#streams.get(streamId)?.failures.clear();
      const actor = this.#startActor('user', undefined, [], `eventstore subscriptions resume ${streamId}`);
      this.#run(actor, () => this.#driver.resume(this.#client, streamId));
    }
  }

  /** The reset set `streamId` back: every version is expected again from v1. */
  #newEpoch(streamId: string): void {
    const state = this.#streams.get(streamId);
    if (!state) return;
    const fresh = this.#newStreamState(state.length);
    for (const handOver of state.open) fresh.open.add(handOver);
    fresh.epochSeq = this.#writeSeq;
    this.#streams.set(streamId, fresh);
    this.#log(`  (${streamId}: a new epoch, every version is expected again from v1)`);
  }

  #resetDone(): void {
    this.#resetRunning -= 1;
    this.#log('reset done');
  }

  async #checkpoints(): Promise<Map<string, SeenCheckpoint>> {
    const found = new Map<string, SeenCheckpoint>();
    for (const item of await this.#backend.checkpointItems()) {
      const seen = this.#driver.decodeCheckpoint(item);
      if (seen) found.set(seen.streamId, seen);
    }
    return found;
  }

  async #parkedStreams(): Promise<string[]> {
    return [...(await this.#checkpoints()).values()]
      .filter((seen) => seen.parkedAt !== undefined)
      .map((seen) => seen.streamId);
  }

  // ------------------------------------------------------------------------------------------
  // The scheduler

  #running(): Actor[] {
    return [...this.#actors.values()].filter((actor) => actor.state === 'running');
  }

  async #settle(): Promise<void> {
    // Everything the code under test does between two requests is promise continuations (its
    // timers are virtual): one turn of the event loop runs them all. A real backend
    // (DynamoDB Local) answers on sockets: wait for its requests too.
    let before: number;
    do {
      before = this.#changes + this.#clock.changes;
      await realSetImmediate();
      while (this.#inFlight > 0) await realSetImmediate();
    } while (before !== this.#changes + this.#clock.changes);
  }

  #pollable(): Lane[] {
    if (!this.#deployed) return [];
    return this.#lanes.filter((lane) => {
      if (lane.busy || lane.notBefore > this.#clock.now) return false;
      const head = lane.records[lane.position];
      return head !== undefined && head.writtenAt <= this.#clock.now;
    });
  }

  #nextDue(): number | undefined {
    const candidates: number[] = [];
    const timer = this.#clock.nextDue();
    if (timer !== undefined) candidates.push(timer);
    const write = this.#plan.writes[this.#writeIndex];
    if (write) candidates.push(EPOCH + write.at);
    if (!this.#deployed) candidates.push(EPOCH + this.#plan.deployAt);
    const action = this.#userActions[0];
    if (action) candidates.push(EPOCH + action.at);
    for (const actor of this.#running()) {
      if (actor.kind !== 'user') candidates.push(actor.deadline);
      if (actor.crashAt !== undefined) candidates.push(actor.crashAt);
    }
    for (const lane of this.#lanes) {
      const head = lane.records[lane.position];
      const at = head ? Math.max(head.writtenAt, lane.notBefore) : 0;
      if (!lane.busy && head && at > this.#clock.now) candidates.push(at);
    }
    if (this.#deployed) candidates.push(EPOCH + this.#nextTick);
    return candidates.length > 0 ? Math.min(...candidates) : undefined;
  }

  async #advance(): Promise<void> {
    let due = this.#nextDue();
    // A request in flight answers within DynamoDB's latency: time passes by at most that much.
    if (this.#pending.length > 0) due = Math.min(due ?? Infinity, this.#clock.now + this.#rng.int(1, MAX_LATENCY_MS));
    if (due === undefined) return;
    if (due > this.#clock.now) this.#clock.now = due;
    // Writes first, then the function timeouts, then timers, then what starts at this instant.
    while (this.#plan.writes[this.#writeIndex] && EPOCH + this.#plan.writes[this.#writeIndex]!.at <= this.#clock.now) {
      const write = this.#plan.writes[this.#writeIndex]!;
      this.#writeIndex += 1;
      await this.#writeEvent(write.streamId);
    }
    for (const actor of this.#running()) {
      if (actor.kind !== 'user' && actor.deadline <= this.#clock.now) this.#kill(actor, 'function timeout');
      else if (actor.crashAt !== undefined && actor.crashAt <= this.#clock.now) {
        this.#fault('invocation crashed');
        this.#kill(actor, 'crashed (out of memory, a fault)');
      }
    }
    this.#clock.advanceTo(this.#clock.now);
    if (!this.#deployed && this.#clock.now >= EPOCH + this.#plan.deployAt) {
      this.#deployed = true;
      // TRIM_HORIZON: the oldest record the stream still has.
      for (const lane of this.#lanes)
        while (
          lane.records[lane.position] &&
          this.#clock.now - lane.records[lane.position]!.writtenAt >= RETENTION_MS
        ) {
          lane.position += 1;
          this.#note('records older than 24 h when the mapping started (only the replay has them)');
        }
      this.#log(`deploy: the mapping starts at TRIM_HORIZON, the replay schedule every minute`);
    }
    while (this.#userActions[0] && EPOCH + this.#userActions[0].at <= this.#clock.now) {
      const action = this.#userActions.shift()!;
      await this.#startUserAction(action.kind);
    }
    if (this.#deployed && EPOCH + this.#nextTick <= this.#clock.now) {
      this.#nextTick += REPLAY_EVERY_MS;
      if (!(await this.#quietButReplay())) this.#startReplay();
    }
  }

  /** Nothing left to deliver and the replay has nothing to do: the replay tick would only read. */
  async #quietButReplay(): Promise<boolean> {
    if (this.#pending.length > 0 || this.#running().length > 0) return false;
    if (this.#writeIndex < this.#plan.writes.length || this.#userActions.length > 0) return false;
    if (this.#lanes.some((lane) => lane.position < lane.records.length)) return false;
    return this.#driver.replayIdle(await this.#backend.get(this.#backend.checkpointTable, this.#driver.replayKey()));
  }

  /** Run until quiet: true when it got there within the step and time budget. */
  async #runPhase(): Promise<boolean> {
    for (;;) {
      await this.#settle();
      if (
        this.#step >= (this.#plan.longStream || this.#plan.functionTimeoutMs > MINUTE ? 3 * MAX_STEPS : MAX_STEPS) ||
        this.#clock.now - EPOCH > this.#plan.deployAt + MAX_RUN_AFTER_DEPLOY_MS
      )
        return false;
      const calls = this.#pending;
      const lanes = this.#pollable();
      const weights: [number, number, number] = [calls.length * 10, lanes.length * 5, 1];
      if (weights[0] === 0 && weights[1] === 0) {
        if (this.#deployed && (await this.#quietButReplay())) return true;
      }
      this.#step += 1;
      const choice = weights[0] + weights[1] === 0 ? 2 : this.#rng.weighted(weights);
      if (choice === 0) await this.#release(this.#rng.pick(calls));
      else if (choice === 1) this.#startBatch(this.#rng.pick(lanes));
      else await this.#advance();
    }
  }

  public async run(): Promise<WorldRecord> {
    const plan = this.#plan;
    this.#log(
      `plan: ${plan.streams.length} streams, ${plan.writes.length} writes, deploy at ${(plan.deployAt / MINUTE).toFixed(0)} min, ${plan.shards} shard(s) x parallelization ${plan.parallelizationFactor}, batch ${plan.batchSize}, timeout ${plan.functionTimeoutMs / 1000} s, maxAttempts ${plan.maxAttempts}` +
        `${plan.poison ? `, poison ${plan.poison.streamId} v${plan.poison.version} (${plan.poison.mode})` : ''}${plan.longStream ? `, long stream ${plan.longStream}` : ''}` +
        `${plan.resetAt !== undefined ? `, reset at ${(plan.resetAt / 1000).toFixed(0)} s` : ''}${plan.resumeAt !== undefined ? `, resume at ${(plan.resumeAt / 1000).toFixed(0)} s` : ''}` +
        `, ${plan.claims ? 'claims' : 'a lease per stream'}`,
    );
    const quiet = await this.#runPhase();
    const checkpoints = await this.#checkpoints();
    if (!quiet) {
      this.#violate(
        'lag-reaches-zero',
        `no quiescence after ${this.#step} steps and ${((this.#clock.now - EPOCH) / HOUR).toFixed(1)} h: ${this.#stuck(checkpoints)}`,
      );
      return this.#record();
    }
    this.#checkParked(checkpoints);
    // The operator fixes the projection and resumes every parked stream; no more faults.
    this.#fixed = true;
    const parked = [...checkpoints.values()].filter((seen) => seen.parkedAt !== undefined);
    this.#log(
      `operator: the projection is fixed; resumes ${parked.map((seen) => seen.streamId).join(', ') || 'nothing'}`,
    );
    this.#userActions.push({ at: this.#now, kind: 'resume' });
    if (this.#discarded > 0) {
      // The discarded-batches alarm fired: docs/OPERATIONS.md says to replay from the checkpoints.
      this.#log(`operator: ${this.#discarded} records in the failure queue; replays from the checkpoints`);
      this.#userActions.push({ at: this.#now, kind: 'rescan' });
    }
    if (!(await this.#runPhase())) {
      this.#violate(
        'lag-reaches-zero',
        `no quiescence after the operator's resume: ${this.#stuck(await this.#checkpoints())}`,
      );
      return this.#record();
    }
    // Attempts counted before the fix can park a stream once more (deaths count on the next
    // take): the operator resumes what is parked again, a few times.
    for (let round = 0; round < 3 && (await this.#parkedStreams()).length > 0; round += 1) {
      this.#log('operator: resumes what is parked again');
      this.#userActions.push({ at: this.#now, kind: 'resume' });
      if (!(await this.#runPhase())) break;
    }
    this.#checkDelivered(await this.#checkpoints());
    return this.#record();
  }

  #stuck(checkpoints: Map<string, SeenCheckpoint>): string {
    const behind = [...this.#streams]
      .filter(([streamId, state]) => (checkpoints.get(streamId)?.delivered ?? 0) < state.length)
      .map(([streamId, state]) => `${streamId} at ${checkpoints.get(streamId)?.delivered ?? 0} of ${state.length}`);
    const lanes = this.#lanes
      .filter((lane) => lane.position < lane.records.length)
      .map((lane) => `${lane.name} ${lane.records.length - lane.position} records left (retry ${lane.retries})`);
    return [...behind, ...lanes, `${this.#running().length} invocations running`].join('; ');
  }

  /**
   * At quiescence: a version the projection never takes has parked its stream (at that version,
   * or earlier at a version with failed attempts of its own: #checkPark checked every park as it
   * was written).
   */
  #checkParked(checkpoints: Map<string, SeenCheckpoint>): void {
    const poison = this.#plan.poison;
    for (const [streamId, seen] of checkpoints) {
      if (seen.parkedAt === undefined) continue;
      if (poison?.streamId === streamId && poison.version === seen.parkedAt) continue;
      const state = this.#streams.get(streamId);
      const failures = state?.failures.get(seen.parkedAt) ?? 0;
      this.#note(`streams parked without a poison version (${failures > 0 ? 'after failures' : 'after deaths only'})`);
    }
    if (!poison) return;
    const seen = checkpoints.get(poison.streamId);
    const state = this.#streams.get(poison.streamId)!;
    const failures = state.failures.get(poison.version) ?? 0;
    if (seen?.parkedAt === undefined || seen.parkedAt > poison.version)
      this.#violate(
        'parked-after-max-attempts',
        `${poison.streamId} fails at v${poison.version} every time (${poison.mode}; ${failures} failed hand-overs, maxAttempts ${this.#plan.maxAttempts}) but is ${seen?.parkedAt === undefined ? 'not parked' : `parked at v${seen.parkedAt}`} (checkpoint at ${seen?.delivered ?? 0})`,
      );
    else if (seen.parkedAt < poison.version)
      this.#note('poison streams parked earlier, at a version with maxAttempts failed attempts of its own');
  }

  #checkDelivered(checkpoints: Map<string, SeenCheckpoint>): void {
    for (const [streamId, state] of this.#streams) {
      if (state.length === 0) continue;
      const missing: number[] = [];
      for (let version = 1; version <= state.length; version += 1)
        if (!state.okCount.get(version)) missing.push(version);
      if (missing.length > 0)
        this.#violate(
          'every-version-handed-over',
          `${streamId}: v${missing.slice(0, LOOSE).join(', v')}${missing.length > LOOSE ? ` and ${missing.length - LOOSE} more` : ''} of ${state.length} never handed over successfully`,
        );
      const seen = checkpoints.get(streamId);
      if (!seen || seen.delivered !== state.length || seen.parkedAt !== undefined || seen.head !== state.length)
        this.#violate(
          'lag-reaches-zero',
          `${streamId}: ${state.length} events, checkpoint ${seen ? `delivered ${seen.delivered}, head ${seen.head}${seen.parkedAt !== undefined ? `, parked at v${seen.parkedAt}` : ''}` : 'missing'}`,
        );
    }
  }

  #record(): WorldRecord {
    return {
      trace: this.#trace,
      steps: this.#step,
      violations: this.#violations,
      notes: this.#notes,
      invocations: [...this.#actors.values()].filter((actor) => actor.kind !== 'user').length,
      handOvers: this.#handOvers,
      requests: this.#requests,
      faults: this.#faults,
    };
  }
}
