/**
 * Issue 18's claims (docs/ARCHITECTURE.md, "Subscriptions"; CLAIMS_TABLE_NAME set): a live batch
 * holds its streams by one claim item. Against DynamoDB Local and the real handler, each with the
 * fault that would break it: one hand-over at a time per stream when two invocations have records
 * of it at once; a waiter killed before it withdrew is never counted (careful mode follows); a
 * holder killed mid-page is counted in careful mode (at most maxAttempts + 1 hand-overs of the
 * version that kills it, parked there); a claim left by a killed invocation ends at its deadline;
 * and the cost of the uncontended path.
 *
 * A "killed" invocation is a handler promise the test abandons at an await that never returns:
 * its projection's (as in subscription-exclusive.test.ts), or one of its DynamoDB requests'. The
 * latter is the one fake here, a middleware on that invocation's own client that never lets the
 * request go (a kill, which the engine cannot produce); every request that is let go reaches
 * DynamoDB Local. Each invocation has a client of its own (Lambda: containers of their own).
 * Deadlines and waits run on a fake clock where a test says so: no sleep synchronises anything.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import {
  ClaimAttributes,
  DynamoDbCheckpointStore,
  DynamoDbClaimStore,
  DynamoDbEventReader,
} from '../../adapters/dynamodb-subscription.ts';
import type { StoredEvent } from '../../core/store.ts';
import {
  ClaimKeys,
  type ClaimStore,
  diedText,
  initialReplayState,
  type Projection,
  SubscriptionRuntime,
} from '../../core/subscription.ts';
import {
  createSubscriptionHandler,
  type SubscriptionConfig,
  type SubscriptionDependencies,
} from '../../handlers/subscription.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';
import { batch, contextFor, gate, handOverLog, until } from '../support/subscription-invocations.ts';
import { allItems, createCheckpointTable, createClaimsTable, seedStreams } from '../support/subscriptions.ts';

/** Resolves for each of `parties` callers once all of them have called it. */
function barrier(parties: number): () => Promise<void> {
  const all = gate();
  let arrived = 0;
  return () => {
    arrived += 1;
    if (arrived === parties) all.open();
    return all.wait;
  };
}

/**
 * A fake clock for deadlines: time moves only when the test moves it or an invocation waits
 * (its `sleep` moves the clock by what it waits, after a turn of the event loop).
 */
function fakeClock() {
  const clock = { at: Date.now(), sleeps: 0 };
  return {
    now: () => clock.at,
    advance: (ms: number) => void (clock.at += ms),
    sleep: async (ms: number) => {
      clock.sleeps += 1;
      clock.at += ms;
      await new Promise((resolve) => setImmediate(resolve));
    },
    get sleeps() {
      return clock.sleeps;
    },
  };
}

/** One DynamoDB request of an invocation, as its client is about to send it. */
interface Request {
  readonly command: string;
  readonly table: string | undefined;
  readonly input: Record<string, unknown>;
  /** What DynamoDB Local reported it consumed (when the runtime asked: `onCapacity`). */
  readonly consumed?: unknown;
}

/**
 * What an invocation's client does with a request: undefined sends it (perhaps after a wait the
 * hook made), `kill` never sends it and never returns (the invocation killed at that await).
 */
type RequestHook = (request: Request) => Promise<'kill' | undefined> | 'kill' | undefined;

const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand']);

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('subscription claims: one hand-over at a time per stream, waiters never counted, holders counted in careful mode (DynamoDB Local, real handler)', () => {
  let client: DynamoDBClient;
  let eventTable: string;
  let store: DynamoDbEventStore;
  const clients: DynamoDBClient[] = [];

  beforeAll(async () => {
    client = dynamoClient();
    eventTable = await createTestTable(client, 'sub-claims-events');
    store = new DynamoDbEventStore({ client, tableName: eventTable });
  });

  afterAll(() => {
    for (const own of clients) own.destroy();
    client.destroy();
  });

  /** A subscription with a claims table whose replay is done (only live batches deliver). */
  const configFor = async (overrides: Partial<SubscriptionConfig> = {}): Promise<SubscriptionConfig> => {
    const checkpointTable = await createCheckpointTable(client, 'sub-claims-cp');
    const claimsTable = await createClaimsTable(client, 'sub-claims');
    await new DynamoDbCheckpointStore({ client, tableName: checkpointTable }).saveReplay({
      ...initialReplayState(),
      status: 'done',
    });
    return {
      name: 'claims',
      eventTable,
      checkpointTable,
      claimsTable,
      maxAttempts: 3,
      eventTypes: [],
      replayReadUnitsPerSecond: 10_000,
      ...overrides,
    };
  };

  /** One invocation's handler, on a client of its own; `hook` sees (and may hold or kill) each request; `sent` lists them. */
  const invocation = (
    config: SubscriptionConfig,
    project: Projection,
    options: { deps?: Partial<SubscriptionDependencies>; hook?: RequestHook; sent?: Request[] } = {},
  ) => {
    const own = dynamoClient();
    clients.push(own);
    own.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as Record<string, unknown> & { TableName?: unknown };
        const request: Request = {
          command: context.commandName ?? '',
          table: typeof input.TableName === 'string' ? input.TableName : undefined,
          input,
        };
        if ((await options.hook?.(request)) === 'kill') return new Promise<never>(() => undefined);
        const result = await next(args);
        const consumed = (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
        options.sent?.push({ ...request, consumed });
        return result;
      },
      { step: 'initialize', name: 'invocationHook' },
    );
    return createSubscriptionHandler({ dynamo: own, config, project, ...options.deps });
  };

  const read = async (streamId: string) => (await store.readStream(streamId)).events;
  const checkpointOf = async (config: SubscriptionConfig, streamId: string) =>
    (await new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable }).load([streamId])).checkpoints.get(
      streamId,
    );
  const claimsLeft = async (config: SubscriptionConfig) =>
    (await allItems(client, config.claimsTable!)).map((item) => unmarshall(item));
  const isClaims = (config: SubscriptionConfig, request: Request) => request.table === config.claimsTable;

  describe('two invocations with records of one stream at once', () => {
    it('one after the other: the second waits while the first hands the stream over, then delivers the rest; each version once, in order, never two at once; no claim left', async () => {
      // Prepare: A has v1..v3 of "one" and is held in the projection at v1; B has v4..v6 and a
      // bystander of its own. A slow projection widens any overlap.
      await seedStreams(store, { one: 6, 'one-by': 2 });
      const config = await configFor();
      const [one, by] = [await read('one'), await read('one-by')];
      const log = handOverLog();
      const held = gate();
      let reached = false;
      const project = log.wrap(async (event) => {
        if (event.ID === 'one' && event.Version === 1 && !reached) {
          reached = true;
          await held.wait;
        }
        await pause(10);
      });
      let waits = 0;
      const counting = (ms: number) => {
        waits += 1;
        return pause(ms);
      };

      // Act
      const a = invocation(config, project)(batch(one.slice(0, 3)), contextFor(20_000));
      await until(() => reached, 'A to hand one@1 over');
      let bReturned = false;
      const b = invocation(config, project, { deps: { sleep: counting } })(
        batch([...one.slice(3), ...by]),
        contextFor(20_000),
      ).finally(() => void (bReturned = true));
      await until(
        () => waits >= 3 || log.versions('one').length > 1 || bReturned,
        'B to poll for the stream a few times (or to hand it over, or return)',
      );
      const whileHeld = log.versions('one');
      held.open();
      const results = await Promise.all([a, b]);

      // Assess: B handed nothing of "one" over while A held it, its bystander went through; then
      // every version once, in order, never two at once; both acknowledged; no claim left.
      expect(whileHeld).toEqual([1]);
      expect(log.overlaps).toBe(0);
      expect(log.versions('one')).toEqual([1, 2, 3, 4, 5, 6]);
      expect(log.versions('one-by')).toEqual([1, 2]);
      expect(results).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
      expect(await checkpointOf(config, 'one')).toMatchObject({ delivered: 6, attempts: 0, lease: undefined });
      expect(await claimsLeft(config)).toEqual([]);
    });

    it("a waiter whose time runs out before the holder is done reports the stream's records as failures and hands nothing over; Lambda's resend delivers them; no claim left", async () => {
      // Prepare: A holds "short" (v1..v3) in the projection at v1; B (v1..v5) has 1.5 s.
      await seedStreams(store, { short: 5 });
      const config = await configFor();
      const events = await read('short');
      const log = handOverLog();
      const held = gate();
      let reached = false;
      const project = log.wrap(async (event) => {
        if (event.Version === 1 && !reached) {
          reached = true;
          await held.wait;
        }
      });
      const deps = { handOverMarginMs: 100, clockAllowanceMs: 100 };
      const records = batch(events);

      // Act: B runs out of time while A holds the stream; then A goes on; then Lambda resends B's batch.
      const a = invocation(config, project, { deps })(batch(events.slice(0, 3)), contextFor(20_000));
      await until(() => reached, 'A to hand short@1 over');
      const b = await invocation(config, project, { deps })(records, contextFor(1_500));
      const claimsWhileHeld = await claimsLeft(config);
      held.open();
      const first = await a;
      const resent = await invocation(config, project, { deps })(records, contextFor(20_000));

      // Assess: B reported the stream from its first record and handed nothing over; its claim is
      // gone (A's is the one left while A held); the resend delivered v4, v5.
      expect(log.versions('short')).toEqual([1, 2, 3, 4, 5]);
      expect(b).toEqual({ batchItemFailures: [{ itemIdentifier: records.Records[0]!.dynamodb!.SequenceNumber }] });
      expect(claimsWhileHeld).toHaveLength(1);
      expect([first, resent]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
      expect(log.overlaps).toBe(0);
      expect(await checkpointOf(config, 'short')).toMatchObject({ delivered: 5, attempts: 0, lease: undefined });
      expect(await claimsLeft(config)).toEqual([]);
    });

    it('both claims written at once (each read the claims before the other wrote, each looks after both wrote): they see each other, exactly one gives way, one hands over at a time; no claim left', async () => {
      // Prepare: both invocations' claim writes wait for each other, and so do their first looks
      // after them (the interleaving a gate on their own requests forces; the engine is real).
      await seedStreams(store, { both: 6, 'both-a': 1, 'both-b': 1 });
      const config = await configFor();
      const [both, byA, byB] = [await read('both'), await read('both-a'), await read('both-b')];
      const log = handOverLog();
      const project = log.wrap(() => pause(15));
      const puts = barrier(2);
      const looks = barrier(2);
      const withdrawals: string[] = [];
      const queries: Record<string, number> = {};
      const hook =
        (name: string): RequestHook =>
        async (request) => {
          if (!isClaims(config, request)) return undefined;
          if (request.command === 'PutItemCommand') await puts();
          if (request.command === 'QueryCommand' && (queries[name] = (queries[name] ?? 0) + 1) === 2) await looks();
          if (request.command === 'UpdateItemCommand' && String(request.input['UpdateExpression']).startsWith('REMOVE'))
            withdrawals.push(name);
          return undefined;
        };

      // Act
      const results = await Promise.all([
        invocation(config, project, { hook: hook('a') })(batch([...both.slice(0, 3), ...byA]), contextFor(20_000)),
        invocation(config, project, { hook: hook('b') })(batch([...both.slice(3), ...byB]), contextFor(20_000)),
      ]);

      // Assess: one of them withdrew (they saw each other), then every version once, in order,
      // never two at once; both acknowledged everything; no claim left.
      expect(log.overlaps).toBe(0);
      expect(log.versions('both')).toEqual([1, 2, 3, 4, 5, 6]);
      expect(withdrawals).toHaveLength(1);
      expect([...log.versions('both-a'), ...log.versions('both-b')]).toEqual([1, 1]);
      expect(results).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
      expect(await checkpointOf(config, 'both')).toMatchObject({ delivered: 6, attempts: 0, lease: undefined });
      expect(await claimsLeft(config)).toEqual([]);
    });
  });

  it('a waiter killed after its claim named the stream and before it withdrew is not counted: with maxAttempts 2 and one failure of the projection the stream is not parked, careful mode follows (one event at a time, a checkpoint after each), every version is handed over', async () => {
    // Prepare: "waiter" v1..v6, maxAttempts 2, a fake clock. H (deadline 10 s: the smaller key)
    // holds v1..v2 and is held in the projection at v1. W (deadline 20 s, v1..v6) read the claims
    // before H wrote its claim, so its claim names the stream; it sees H's, gives way, and is
    // killed at its withdrawal. The projection throws once, at v3.
    await seedStreams(store, { waiter: 6 });
    const config = await configFor({ maxAttempts: 2 });
    const clock = fakeClock();
    const deps = { now: clock.now, sleep: clock.sleep, clockAllowanceMs: 1_000, handOverMarginMs: 100 };
    const events = await read('waiter');
    const log = handOverLog();
    const checkpointAt: string[] = [];
    const held = gate();
    let reached = false;
    let threw = false;
    const project = log.wrap(async (event) => {
      checkpointAt.push(`v${event.Version}: delivered ${(await checkpointOf(config, 'waiter'))?.delivered ?? 0}`);
      if (event.Version === 1 && !reached) {
        reached = true;
        await held.wait;
      }
      if (event.Version === 3 && !threw) {
        threw = true;
        throw new Error('the projection failed at v3');
      }
    });
    const claimWritten = gate();
    let atPut = false;
    let killed = false;
    const waiterHook: RequestHook = async (request) => {
      if (!isClaims(config, request)) return undefined;
      if (request.command === 'PutItemCommand') {
        atPut = true;
        await claimWritten.wait;
      }
      if (request.command === 'UpdateItemCommand' && String(request.input['UpdateExpression']).startsWith('REMOVE')) {
        killed = true;
        return 'kill';
      }
      return undefined;
    };

    // Act: W reads the claims and stops at its claim write; H claims and holds; W writes its claim,
    // looks, and is killed at its withdrawal; H finishes; W's deadline passes. Then two
    // invocations with v3..v6: the first meets the projection's failure, the second delivers.
    void invocation(config, project, { deps, hook: waiterHook })(batch(events), contextFor(20_000, clock.now));
    await until(() => atPut, 'W to read the claims and reach its claim write');
    const h = invocation(config, project, { deps })(batch(events.slice(0, 2)), contextFor(10_000, clock.now));
    await until(() => reached, 'H to hand waiter@1 over');
    claimWritten.open();
    await until(() => killed, 'W to be killed at its withdrawal');
    const named = await claimsLeft(config);
    held.open();
    const holder = await h;
    clock.advance(60_000);
    const failing = await invocation(config, project, { deps })(batch(events.slice(2)), contextFor(20_000, clock.now));
    const afterFailure = await checkpointOf(config, 'waiter');
    const last = await invocation(config, project, { deps })(batch(events.slice(2)), contextFor(20_000, clock.now));

    // Assess: W's claim named the stream when it was killed (both claims were there); W handed
    // nothing over. The failure at v3 was the one counted attempt (1 < 2: not parked), in careful
    // mode up to v6 from W's dead claim; the last invocation handed v3..v6 over one at a time, each
    // after the checkpoint of the one before; nothing parked, nothing counted, no claim left.
    expect(named.map((claim) => claim[`${ClaimAttributes.streamPrefix}waiter`])).toEqual(
      expect.arrayContaining([2, 6]),
    );
    expect(holder).toEqual({ batchItemFailures: [] });
    expect(failing.batchItemFailures).toHaveLength(1);
    expect(afterFailure).toMatchObject({ delivered: 2, attempts: 1, carefulUntil: 6, parked: undefined });
    expect(last).toEqual({ batchItemFailures: [] });
    expect(log.overlaps).toBe(0);
    expect(log.versions('waiter')).toEqual([1, 2, 3, 3, 4, 5, 6]);
    expect(checkpointAt.slice(-4)).toEqual([
      'v3: delivered 2',
      'v4: delivered 3',
      'v5: delivered 4',
      'v6: delivered 5',
    ]);
    expect(await checkpointOf(config, 'waiter')).toMatchObject({
      delivered: 6,
      attempts: 0,
      parked: undefined,
      lease: undefined,
    });
    expect(await claimsLeft(config)).toEqual([]);
  });

  it('a version that kills every holder part way through a page (claims, then careful mode): handed over at most maxAttempts + 1 times, the stream parked at that version, the healthy versions before it never parked, even with batches of them in between', async () => {
    // Prepare: "mid" v1..v6, the projection never returns at v4 (each holder is abandoned there
    // and its deadline passes on a fake clock); maxAttempts 3. Between kills, batches of earlier
    // versions only (a second lane) go through.
    await seedStreams(store, { mid: 6 });
    const config = await configFor({ maxAttempts: 3 });
    const clock = fakeClock();
    const deps = { now: clock.now, sleep: clock.sleep, clockAllowanceMs: 1_000, handOverMarginMs: 100 };
    const log = handOverLog();
    const project = log.wrap((event) => (event.Version === 4 ? new Promise<void>(() => undefined) : undefined));
    const events = await read('mid');
    const handedFour = () => log.versions('mid').filter((version) => version === 4).length;
    const parkedAlong: (number | undefined)[] = [];
    /** Invoke with every record: true once it is killed at v4 (its deadline then passes), false if it returns. */
    const invokeAll = async (): Promise<boolean> => {
      const before = handedFour();
      const done: { result?: unknown } = {};
      void invocation(config, project, { deps })(batch(events), contextFor(10_000, clock.now)).then(
        (result) => void (done.result = result),
      );
      await until(() => handedFour() > before || done.result !== undefined, 'an invocation to reach v4 or return');
      if (handedFour() === before) return false;
      clock.advance(60_000);
      parkedAlong.push((await checkpointOf(config, 'mid'))?.parked?.version);
      return true;
    };
    const lane = (slice: readonly StoredEvent[]) =>
      invocation(config, project, { deps })(batch(slice), contextFor(10_000, clock.now));

    // Act: killed at v4; a batch of v1, v2 goes through; killed at v4; a batch of v3 goes through;
    // then invocations of every record until one returns.
    expect(await invokeAll()).toBe(true);
    const early = await lane(events.slice(0, 2));
    expect(await invokeAll()).toBe(true);
    const third = await lane(events.slice(2, 3));
    let kills = 2;
    while (kills < 10 && (await invokeAll())) kills += 1;

    // Assess: the batches in between went through; v4 was handed over maxAttempts..maxAttempts + 1
    // times; the stream was never parked while it was killed, and is now parked at v4 with v1..v3
    // delivered; every version before v4 handed over in order by each holder; no claim left.
    const handed = log.versions('mid');
    console.log(`mid: hand-overs ${handed.join(',')}; ${kills} kills`);
    expect([early, third]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(handedFour()).toBeGreaterThanOrEqual(config.maxAttempts);
    expect(handedFour()).toBeLessThanOrEqual(config.maxAttempts + 1);
    expect(parkedAlong).toEqual(parkedAlong.map(() => undefined));
    expect(handed.filter((version) => version > 4)).toEqual([]);
    expect(await checkpointOf(config, 'mid')).toMatchObject({
      delivered: 3,
      attempts: config.maxAttempts,
      lease: undefined,
      parked: { version: 4, error: diedText(config.maxAttempts), resumeRequested: false },
    });
    expect(await claimsLeft(config)).toEqual([]);
  });

  it('a claim left by a killed holder keeps the stream from others until its deadline (a waiter with less time reports failures), and after its deadline the stream is taken again, in careful mode, nothing counted; no claim left', async () => {
    // Prepare: K (deadline 10 s on a fake clock) holds "stale" v1..v3 and is killed in the
    // projection at v2. Waiters move the clock by what they wait.
    await seedStreams(store, { stale: 3 });
    const config = await configFor();
    const clock = fakeClock();
    const deps = { now: clock.now, sleep: clock.sleep, clockAllowanceMs: 1_000, handOverMarginMs: 100 };
    const events = await read('stale');
    const log = handOverLog();
    const handedAt: number[] = [];
    const checkpointAt: number[] = [];
    let killed = false;
    const project = log.wrap(async (event) => {
      handedAt.push(clock.now());
      checkpointAt.push((await checkpointOf(config, 'stale'))?.delivered ?? 0);
      if (event.Version === 2 && !killed) {
        killed = true;
        return new Promise<void>(() => undefined);
      }
      return undefined;
    });
    const records = batch(events);

    // Act: K is killed; W1 (3 s) waits and gives up; W2 (2 min) waits until K's claim ends.
    void invocation(config, project, { deps })(records, contextFor(10_000, clock.now));
    await until(() => killed, 'K to be killed at stale@2');
    const [left] = await claimsLeft(config);
    const killedUntil = Number(left?.['Until']);
    const shortWaiter = await invocation(config, project, { deps })(records, contextFor(3_000, clock.now));
    const afterShort = log.versions('stale');
    const waitedFrom = clock.now();
    const longWaiter = await invocation(config, project, { deps })(records, contextFor(120_000, clock.now));

    // Assess: W1 handed nothing over and reported the stream; W2 handed nothing over before K's
    // Until, then v1..v3 one at a time (each after the checkpoint of the one before: careful mode,
    // for K's dead claim); K's death was not counted; no claim left.
    expect(left?.[ClaimKeys.sortKey]).toMatch(/^\d{15}#/);
    expect(afterShort).toEqual([1, 2]);
    expect(shortWaiter).toEqual({
      batchItemFailures: [{ itemIdentifier: records.Records[0]!.dynamodb!.SequenceNumber }],
    });
    expect(longWaiter).toEqual({ batchItemFailures: [] });
    expect(clock.now()).toBeGreaterThan(waitedFrom);
    expect(log.versions('stale')).toEqual([1, 2, 1, 2, 3]);
    expect(Math.min(...handedAt.slice(2))).toBeGreaterThan(killedUntil);
    expect(checkpointAt.slice(2)).toEqual([0, 1, 2]);
    expect(await checkpointOf(config, 'stale')).toMatchObject({ delivered: 3, attempts: 0, lease: undefined });
    expect(await claimsLeft(config)).toEqual([]);
  });

  it("reset fences a claim holder of a stream with no checkpoint item yet: the holder looked before the reset's Scan, its first checkpoint write (conditioned on the item not existing) comes after the reset set the claimed streams back, and fails; the checkpoint stays at 0, so the replay hands v1..v3 over again", async () => {
    // Prepare: H claims "fresh" (no checkpoint item), hands v1..v3 over, and its checkpoint write
    // is held until the reset waits for H's claim.
    await seedStreams(store, { fresh: 3 });
    const config = await configFor();
    const events = await read('fresh');
    const log = handOverLog();
    const save = gate();
    let saving = false;
    const hook: RequestHook = async (request) => {
      if (request.table === config.checkpointTable && request.command === 'PutItemCommand' && !saving) {
        saving = true;
        await save.wait;
      }
      return undefined;
    };
    const checkpoints = new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable });
    const claims = new DynamoDbClaimStore({ client, tableName: config.claimsTable! });
    let waited = false;

    // Act: H up to its checkpoint write; the reset (Scan: no "fresh" item) until it waits for
    // H's claim; then H's write goes; then both end.
    const h = invocation(config, log.wrap(), { hook })(batch(events), contextFor(20_000));
    await until(() => saving, "H's checkpoint write of fresh");
    const reset = checkpoints.reset({
      claims,
      onWait: () => void (waited = true),
      sleep: (ms) => pause(Math.min(ms, 20)),
    });
    await until(() => waited, "the reset to wait for H's claim");
    save.open();
    const [result] = await Promise.all([h, reset]);

    // Assess: v1..v3 were handed over once, but H's checkpoint write failed: the item says 0, so
    // the replay (a cleared read model) gets them again; H reported its records; no claim left.
    expect(log.versions('fresh')).toEqual([1, 2, 3]);
    expect(await checkpointOf(config, 'fresh')).toMatchObject({ delivered: 0, lease: undefined });
    expect(result.batchItemFailures).not.toEqual([]);
    expect(await claimsLeft(config)).toEqual([]);
  });

  it("reset undoes the first checkpoint of a claim holder from before it that creates its stream's checkpoint after the reset's Scan and is gone (claim deleted) before the reset reads the claims again", async () => {
    // Prepare: H claims "fresh2" (no checkpoint item) and hands v1..v3 over; its checkpoint
    // write waits. The reset's client holds its claims read after the Scan until H is done.
    await seedStreams(store, { fresh2: 3 });
    const config = await configFor();
    const events = await read('fresh2');
    const log = handOverLog();
    const save = gate();
    let saving = false;
    const hook: RequestHook = async (request) => {
      if (request.table === config.checkpointTable && request.command === 'PutItemCommand' && !saving) {
        saving = true;
        await save.wait;
      }
      return undefined;
    };
    const resetClient = dynamoClient();
    clients.push(resetClient);
    let scanned = false;
    const finished = gate();
    resetClient.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: unknown };
        if (context.commandName === 'ScanCommand') scanned = true;
        else if (scanned && context.commandName === 'QueryCommand' && input.TableName === config.claimsTable) {
          save.open();
          await finished.wait;
        }
        return next(args);
      },
      { step: 'initialize', name: 'resetHook' },
    );

    // Act
    const h = invocation(config, log.wrap(), { hook })(batch(events), contextFor(20_000));
    void h.finally(() => finished.open());
    await until(() => saving, "H's checkpoint write of fresh2");
    await new DynamoDbCheckpointStore({ client: resetClient, tableName: config.checkpointTable }).reset({
      claims: new DynamoDbClaimStore({ client: resetClient, tableName: config.claimsTable! }),
      sleep: (ms) => pause(Math.min(ms, 20)),
    });

    // Assess: H checkpointed v3 after the Scan and deleted its claim; the reset set it back.
    expect(await h).toEqual({ batchItemFailures: [] });
    expect(log.versions('fresh2')).toEqual([1, 2, 3]);
    expect(await checkpointOf(config, 'fresh2')).toMatchObject({ delivered: 0, lease: undefined });
    expect(await claimsLeft(config)).toEqual([]);
  });

  it("a late delete of one catch-up's claim does not delete the next catch-up's claim of the same invocation (same owner, same deadline: each claim's key has its own number)", async () => {
    // Prepare: one runtime (one replay invocation: owner and deadline fixed, a clock that stands
    // still) catches up two streams one after the other. The first claim's delete is a fault the
    // engine cannot produce (a fake, around the real claim store): the client gives up on it (a
    // timeout) while the request goes on, and DynamoDB applies it later, while the second
    // catch-up hands over; the retry deletes the first claim meanwhile.
    await seedStreams(store, { 'nonce-a': 1, 'nonce-b': 1 });
    const config = await configFor();
    const real = new DynamoDbClaimStore({ client, tableName: config.claimsTable! });
    let late: string | undefined;
    const claims: ClaimStore = {
      put: (claim) => real.put(claim),
      read: (now) => real.read(now),
      withdraw: (key, streamId) => real.withdraw(key, streamId),
      readd: (key, streamId, version) => real.readd(key, streamId, version),
      clearDead: (key, streamId) => real.clearDead(key, streamId),
      delete: async (key) => {
        if (late !== undefined) return real.delete(key);
        late = key;
        throw new Error('the request timed out (it is applied later)');
      },
    };
    const at = Date.now();
    const during: number[] = [];
    const runtime = new SubscriptionRuntime({
      checkpoints: new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable }),
      claims,
      reader: new DynamoDbEventReader({ client, tableName: eventTable }),
      project: async (event) => {
        if (event.ID !== 'nonce-b') return;
        await real.delete(late!);
        during.push((await real.read(at)).length);
      },
      owner: 'replay-one-invocation',
      remainingTimeMs: () => 60_000,
      now: () => at,
      sleep: async () => undefined,
    });

    // Act
    const first = await runtime.catchUp('nonce-a');
    const second = await runtime.catchUp('nonce-b');

    // Assess: the second claim was still there after the first one's late delete.
    expect([first.status, second.status]).toEqual(['delivered', 'delivered']);
    expect(during).toEqual([1]);
    expect(await claimsLeft(config)).toEqual([]);
  });

  it("a batch of more streams with long IDs than one claim item can name (past DynamoDB's 400 KB) names those that fit and reports the others' records for Lambda's resend, which delivers them: every stream once, each claim item small", async () => {
    // Prepare: 440 streams with 1,000-character IDs (the longest an ID may be: 1,024), one event
    // each (a claim naming all would weigh about 450 KB).
    const ids = Array.from({ length: 440 }, (_, index) => `${String(index).padStart(4, '0')}-${'x'.repeat(995)}`);
    await seedStreams(store, Object.fromEntries(ids.map((id) => [id, 1])));
    const events = (await Promise.all(ids.map(read))).flat();
    const config = await configFor();
    const log = handOverLog();
    const sent: Request[] = [];
    const deps = { sleep: async () => undefined };
    let records = batch(events).Records;

    // Act: the batch, then Lambda's resends from the first record reported, until none is.
    const rounds: number[] = [];
    for (let round = 0; round < 20 && records.length > 0; round += 1) {
      const result = await invocation(config, log.wrap(), { deps, sent })({ Records: records }, contextFor(60_000));
      rounds.push(result.batchItemFailures.length);
      const from = result.batchItemFailures[0]?.itemIdentifier;
      records = from === undefined ? [] : records.slice(records.findIndex((r) => r.dynamodb?.SequenceNumber === from));
    }

    // Assess: more than one round, each making progress; every stream handed over exactly once;
    // every claim put well under 400 KB; no claim left.
    const putSizes = sent
      .filter((request) => isClaims(config, request) && request.command === 'PutItemCommand')
      .map((request) => JSON.stringify(request.input['Item']).length);
    expect(rounds.length).toBeGreaterThan(1);
    expect(rounds.length).toBeLessThan(20);
    expect(rounds.at(-1)).toBe(0);
    expect(ids.map((id) => log.versions(id))).toEqual(ids.map(() => [1]));
    expect(Math.max(...putSizes)).toBeLessThan(70 * 1024);
    expect(await claimsLeft(config)).toEqual([]);
  });

  it.each([
    { shape: 'spread', streams: 10, perStream: 1 },
    { shape: 'grouped', streams: 10, perStream: 10 },
  ])(
    'the uncontended path ($shape: $streams streams of $perStream): one checkpoint write per stream and exactly 2 claim writes (N + 2 write units)',
    async ({ shape, streams, perStream }) => {
      // Prepare
      const ids = Array.from({ length: streams }, (_, index) => `cost-${shape}-${index}`);
      await seedStreams(store, Object.fromEntries(ids.map((id) => [id, perStream])));
      const events = (await Promise.all(ids.map(read))).flat();
      const config = await configFor();
      const sent: Request[] = [];
      const units = { read: 0, write: 0 };
      const onCapacity = (used: { read: number; write: number }) => {
        units.read += used.read;
        units.write += used.write;
      };

      // Act
      const result = await invocation(config, () => undefined, { sent, deps: { onCapacity } })(
        batch(events),
        contextFor(20_000),
      );

      // Assess
      const writes = (table: string | undefined) =>
        sent.filter((request) => request.table === table && WRITES.has(request.command)).map((r) => r.command);
      const reads = sent
        .filter((request) => !WRITES.has(request.command))
        .map((request) => `${request.command} ${JSON.stringify(request.consumed)}`);
      console.log(
        `${shape}: reads ${reads.join('; ')}\n${shape}: ${events.length} events, ${units.write} write units (${(units.write / events.length).toFixed(3)}/event), ${units.read} read units (${(units.read / events.length).toFixed(3)}/event)`,
      );
      expect(result).toEqual({ batchItemFailures: [] });
      expect(writes(config.checkpointTable)).toHaveLength(streams);
      expect(writes(config.claimsTable)).toEqual(['PutItemCommand', 'DeleteItemCommand']);
      expect(writes(config.eventTable)).toEqual([]);
      expect(units.write).toBe(streams + 2);
    },
  );
});
