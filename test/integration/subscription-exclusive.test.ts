/**
 * Issue 18's runtime promises (README "Subscriptions"), each with the fault that would break
 * it, against DynamoDB Local and the real handler: one deliverer per stream at any moment, a
 * holder past its lease cannot checkpoint, a killed invocation counts an attempt, reset during
 * a live batch, and a long catch-up in pages across invocations.
 *
 * A "killed" invocation is a handler promise the test abandons while its projection never
 * returns: what Lambda does at the timeout (the code after that await never runs).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore } from '../../adapters/dynamodb-subscription.ts';
import { diedText, initialReplayState, type Projection } from '../../core/subscription.ts';
import {
  createSubscriptionHandler,
  type SubscriptionConfig,
  type SubscriptionDependencies,
} from '../../handlers/subscription.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';
import { batch, contextFor, gate, handOverLog, until } from '../support/subscription-invocations.ts';
import { createCheckpointTable, seedStreams } from '../support/subscriptions.ts';

describe('subscription runtime: one deliverer per stream, bounded, every failure counted (DynamoDB Local, real handler)', () => {
  let client: DynamoDBClient;
  let eventTable: string;
  let store: DynamoDbEventStore;

  beforeAll(async () => {
    client = dynamoClient();
    eventTable = await createTestTable(client, 'sub-excl-events');
    store = new DynamoDbEventStore({ client, tableName: eventTable });
  });

  afterAll(() => client.destroy());

  /** A subscription whose replay is done (the usual state: only live batches deliver). */
  const configFor = async (overrides: Partial<SubscriptionConfig> = {}): Promise<SubscriptionConfig> => {
    const checkpointTable = await createCheckpointTable(client, 'sub-excl-cp');
    await new DynamoDbCheckpointStore({ client, tableName: checkpointTable }).saveReplay({
      ...initialReplayState(),
      status: 'done',
    });
    return {
      name: 'exclusive',
      eventTable,
      checkpointTable,
      maxAttempts: 3,
      eventTypes: [],
      replayReadUnitsPerSecond: 10_000,
      ...overrides,
    };
  };
  const handlerFor = (config: SubscriptionConfig, project: Projection, deps: Partial<SubscriptionDependencies> = {}) =>
    createSubscriptionHandler({ dynamo: client, config, project, ...deps });
  const read = async (streamId: string) => (await store.readStream(streamId)).events;

  it('two concurrent invocations with records of one stream (parallelizationFactor > 1): the projection never sees two hand-overs at once, each version once, in order', async () => {
    // Prepare: v1-v3 in one batch, v4-v6 in another, handed to two invocations at once; a slow projection.
    await seedStreams(store, { 'two-1': 6, 'two-2': 6 });
    const config = await configFor();
    const log = handOverLog();
    const project = log.wrap(() => new Promise((resolve) => setTimeout(resolve, 15)));
    const handler = handlerFor(config, project, { handOverMarginMs: 100 });
    const [one, two] = [await read('two-1'), await read('two-2')];

    // Act: two rounds, both orders of arrival.
    const first = await Promise.all([
      handler(batch([...one.slice(0, 3), ...two.slice(3)]), contextFor(20_000)),
      handler(batch([...one.slice(3), ...two.slice(0, 3)]), contextFor(20_000)),
    ]);

    // Assess: every version once, in order, never two at a time; both invocations acknowledged everything.
    expect(log.overlaps).toBe(0);
    expect(log.versions('two-1')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(log.versions('two-2')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(first).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    const found = (await new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable }).load(['two-1']))
      .checkpoints;
    expect(found.get('two-1')).toMatchObject({ delivered: 6, attempts: 0, lease: undefined });
  });

  it('a holder past its lease (its deadline passed, not killed) cannot checkpoint, and hands nothing more over', async () => {
    // Prepare: invocation A holds "late" and is stuck in the projection past its deadline; B waits for A's lease to end.
    await seedStreams(store, { late: 4 });
    const config = await configFor();
    const events = await read('late');
    const log = handOverLog();
    const stuck = gate();
    let calls = 0;
    const project = log.wrap(async () => {
      calls += 1;
      if (calls === 1) await stuck.wait;
    });
    const handler = handlerFor(config, project, { handOverMarginMs: 50, clockAllowanceMs: 50 });

    // Act
    const a = handler(batch(events), contextFor(2_000));
    await until(() => calls === 1, 'A to hand version 1 over');
    const b = await handler(batch(events), contextFor(20_000));
    stuck.open();
    const late = await a;

    // Assess: B delivered 1-4 after A's lease ended; A's checkpoint write was refused (fenced) and A stopped.
    expect(b).toEqual({ batchItemFailures: [] });
    expect(log.seen).toEqual(['late@1', 'late@1', 'late@2', 'late@3', 'late@4']);
    expect(late.batchItemFailures).toHaveLength(1);
    const found = (await new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable }).load(['late']))
      .checkpoints;
    expect(found.get('late')).toMatchObject({ delivered: 4, attempts: 0, lease: undefined });
  });

  it('an invocation killed while it holds a stream counts an attempt; after maxAttempts counted kills the stream is parked and the shard moves on', async () => {
    // Prepare: the projection never returns for "kill@1" (the function times out there); maxAttempts 3.
    // The first invocation goes a page at a time: its death cannot be placed in its page and is not
    // counted (README "Subscriptions"), the next ones go one event at a time and are: 1 + 3 kills.
    await seedStreams(store, { kill: 2, bystander: 2 });
    const config = await configFor({ maxAttempts: 3 });
    const log = handOverLog();
    const project = log.wrap((event) => (event.ID === 'kill' ? new Promise<void>(() => undefined) : undefined));
    const handler = handlerFor(config, project, { handOverMarginMs: 50, clockAllowanceMs: 50 });
    const records = batch([...(await read('kill')), ...(await read('bystander'))]);

    const checkpoints = new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable });

    // Act: four invocations killed in the projection (promises abandoned), each started once the previous one's lease ended.
    for (let kill = 1; kill <= 4; kill += 1) {
      // On a loaded machine an invocation may run out of its 1 s before it hands anything over: it
      // then returns (no attempt counted, nothing handed over) and Lambda would invoke again.
      for (let returned = true; returned;) {
        returned = false;
        void handler(records, contextFor(1_000)).then(() => void (returned = true));
        await until(() => log.versions('kill').length === kill || returned, `invocation ${kill} to reach kill@1`);
      }
      const lease = (await checkpoints.load(['kill'])).checkpoints.get('kill')?.lease;
      await until(() => Date.now() > (lease?.until ?? 0), `the lease of invocation ${kill} to end`);
    }
    const fifth = await handler(records, contextFor(20_000));

    // Assess: the fifth takes the stream after the fourth's lease ended, parks it without handing over, acknowledges the batch.
    expect(fifth).toEqual({ batchItemFailures: [] });
    expect(log.versions('kill')).toEqual([1, 1, 1, 1]);
    expect(log.versions('bystander')).toEqual([1, 2]);
    const found = (await checkpoints.load(['kill'])).checkpoints;
    expect(found.get('kill')).toMatchObject({
      delivered: 0,
      attempts: 3,
      lease: undefined,
      parked: { version: 1, error: diedText(3), resumeRequested: false },
    });
  });

  it('a version that kills every invocation part way through a page: later invocations hand over one event at a time, and the stream is parked at that version after at most maxAttempts + 1 hand-overs of it, even with checkpoints of progress in between', async () => {
    // Prepare: "mid" v1..v6; the projection never returns at v4 (the function times out there);
    // maxAttempts 3. Between kills, batches of a second lane (parallelizationFactor > 1) with only
    // earlier versions go through: their checkpoints of progress must not clear the count at v4.
    await seedStreams(store, { mid: 6 });
    const config = await configFor({ maxAttempts: 3 });
    const log = handOverLog();
    const project = log.wrap((event) => (event.Version === 4 ? new Promise<void>(() => undefined) : undefined));
    const handler = handlerFor(config, project, { handOverMarginMs: 50, clockAllowanceMs: 50 });
    const events = await read('mid');
    const all = batch(events);
    const checkpoints = new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable });
    const killedAtFour = () => log.versions('mid').filter((version) => version === 4).length;
    /** Invoke with every record until the invocation is killed at v4 (true) or returns (false: parked). */
    const invokeAll = async (): Promise<boolean> => {
      const before = killedAtFour();
      // On a loaded machine an invocation may run out of its 1 s before it reaches v4: it returns
      // with its records failed, and Lambda would invoke again.
      for (;;) {
        const invocation: { returned?: { batchItemFailures: unknown[] } } = {};
        void handler(all, contextFor(1_000)).then((result) => void (invocation.returned = result));
        await until(
          () => killedAtFour() > before || invocation.returned !== undefined,
          'an invocation to reach v4 or return',
        );
        if (killedAtFour() > before) break;
        if (invocation.returned?.batchItemFailures.length === 0) return false;
      }
      const lease = (await checkpoints.load(['mid'])).checkpoints.get('mid')?.lease;
      await until(() => Date.now() > (lease?.until ?? 0), "the killed invocation's lease to end");
      return true;
    };

    // Act: killed at v4 after handing over v1..v3; a batch of v1, v2 goes through; killed at v4
    // again; a batch of v3 goes through; then invocations until one parks the stream.
    expect(await invokeAll()).toBe(true);
    const early = await handler(batch(events.slice(0, 2)), contextFor(20_000));
    expect(await invokeAll()).toBe(true);
    const third = await handler(batch(events.slice(2, 3)), contextFor(20_000));
    let kills = 2;
    while (kills < 10 && (await invokeAll())) kills += 1;

    // Assess: the batches in between went through (v1, v2, v3 checkpointed one at a time after the
    // first death), the stream is parked at v4, which was handed over at most maxAttempts + 1 times.
    expect([early, third]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(killedAtFour()).toBeLessThanOrEqual(config.maxAttempts + 1);
    expect(log.versions('mid')).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 4, 4]);
    expect((await checkpoints.load(['mid'])).checkpoints.get('mid')).toMatchObject({
      delivered: 3,
      attempts: 3,
      lease: undefined,
      parked: { version: 4, error: diedText(3), resumeRequested: false },
    });
  });

  it('reset while a live batch delivers: the batch cannot checkpoint over the reset, no revision repeats, the replay delivers from version 1 without overlap', async () => {
    // Prepare: a live invocation holds "reset" and is in the projection at version 2 when the reset comes.
    // Its own event table: the replay after the reset scans the whole table.
    const table = await createTestTable(client, 'sub-excl-reset');
    const own = new DynamoDbEventStore({ client, tableName: table });
    await seedStreams(own, { reset: 5 });
    const config = await configFor({ eventTable: table });
    const checkpoints = new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable });
    const events = (await own.readStream('reset')).events;
    const log = handOverLog();
    const paused = gate();
    let pausedOnce = false;
    const project = log.wrap(async (event) => {
      if (event.Version === 2 && !pausedOnce) {
        pausedOnce = true;
        await paused.wait;
      }
    });
    const handler = handlerFor(config, project, { handOverMarginMs: 100 });
    await handler(batch(events.slice(0, 1)), contextFor(20_000));
    const before = (await checkpoints.load(['reset'])).checkpoints.get('reset')!;

    // Act
    const live = handler(batch(events.slice(1)), contextFor(20_000));
    await until(() => log.seen.length === 2, 'the live batch to hand version 2 over');
    const holding = (await checkpoints.load(['reset'])).checkpoints.get('reset')!;
    // The reset returns only once the holder from before it has let go (README "Reset").
    const waitedFor: string[] = [];
    const resetting = checkpoints.reset({ onWait: (waiting) => waitedFor.push(...waiting.map((h) => h.streamId)) });
    await until(() => waitedFor.length > 0, 'the reset to wait for the live holder');
    paused.open();
    const reset = await resetting;
    const replay = handler({ replay: true }, contextFor(20_000));
    const [liveResult, replayResult] = await Promise.all([live, replay]);
    expect(waitedFor).toContain('reset');

    // Assess: the live batch's write lost (it is retried), the replay waited for its lease, then 1..5 again.
    expect(reset).toBeGreaterThanOrEqual(1);
    expect(liveResult.batchItemFailures).toHaveLength(1);
    expect(replayResult.state?.status).toBe('done');
    expect(log.overlaps).toBe(0);
    expect(log.versions('reset')).toEqual([1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
    const after = (await checkpoints.load(['reset'])).checkpoints.get('reset')!;
    expect(after).toMatchObject({ delivered: 5, lease: undefined, parked: undefined });
    // The generation only grows: a write conditioned on any earlier revision can never match again.
    expect(after.revision).toBeGreaterThan(holding.revision);
    expect(holding.revision).toBeGreaterThan(before.revision);
    expect(await checkpoints.save({ ...holding, delivered: 99 })).toBe(false);
    expect(await checkpoints.save({ ...before, delivered: 99 })).toBe(false);
  });

  it('the eventTypes filter: other types are passed over and the checkpoint advances over them, in pages too', async () => {
    // Prepare: 7 events alternating A and B; only A reaches the projection; pages of 2.
    await seedStreams(store, { typed: 7 }, ['TYPE_A', 'TYPE_B']);
    const config = await configFor({ eventTypes: ['TYPE_A'] });
    const log = handOverLog();
    const handler = handlerFor(config, log.wrap(), { pageSize: 2 });
    const events = await read('typed');

    // Act: the newest record only (the rest is read), then a redelivery of all of them.
    const first = await handler(batch(events.slice(-1)), contextFor(20_000));
    const again = await handler(batch(events), contextFor(20_000));

    // Assess
    expect([first, again]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(log.versions('typed')).toEqual([1, 3, 5, 7]);
    const found = (await new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable }).load(['typed']))
      .checkpoints;
    expect(found.get('typed')).toMatchObject({ delivered: 7, head: 7, attempts: 0, lease: undefined });
  });

  it('a stream far behind: the live batch catches up a page at a time until its time runs short, acknowledges its record and leaves the rest to the replay worker, whose runs finish it, none failing, within the read-unit limit', async () => {
    // Prepare: 1,000 events; only the newest arrives live (a new subscription on an old stream);
    // pages of 50, a projection that takes 10 ms (a fake clock), invocations of 2 s.
    await seedStreams(store, { far: 1_000 });
    const unitsPerSecond = 20;
    const config = await configFor({ replayReadUnitsPerSecond: unitsPerSecond });
    const checkpoints = new DynamoDbCheckpointStore({ client, tableName: config.checkpointTable });
    let clock = 1_000_000;
    const now = () => clock;
    const units = { read: 0 };
    const log = handOverLog();
    const handler = handlerFor(
      config,
      log.wrap(() => void (clock += 10)),
      {
        now,
        sleep: async (ms) => void (clock += ms),
        pageSize: 50,
        handOverMarginMs: 100,
        clockAllowanceMs: 50,
        onCapacity: (u) => void (units.read += u.read),
      },
    );
    const newest = (await store.readStream('far', { fromVersion: 1_000, limit: 1 })).events;
    const started = clock;

    // Act: the live invocation, then the replay schedule until the stream is off its list.
    const live = await handler(batch(newest), contextFor(2_000, now));
    const afterLive = (await checkpoints.load(['far'])).checkpoints.get('far');
    const asked = (await checkpoints.loadReplay())?.resume;
    let runs = 0;
    while ((await checkpoints.loadReplay())?.resume.length !== 0 && runs < 50) {
      runs += 1;
      await handler({ replay: true }, contextFor(2_000, now));
    }

    // Assess: the live batch delivered pages, checkpointed, and acknowledged its record; the replay
    // went on from the checkpoint over several runs; every version once, in order.
    expect(live).toEqual({ batchItemFailures: [] });
    expect(afterLive).toMatchObject({ attempts: 0, lease: undefined });
    expect(afterLive!.delivered).toBeGreaterThan(0);
    expect(asked).toEqual(['far']);
    expect(runs).toBeGreaterThan(2);
    expect(log.versions('far')).toEqual(Array.from({ length: 1_000 }, (_, index) => index + 1));
    console.log(
      `far catch-up: live ${afterLive!.delivered} events, then ${runs} replay runs; ${units.read} read units in ${(clock - started) / 1000} s (fake clock)`,
    );
    // Each bucket (the container's, and each replay run's) lets one second's worth through at once.
    expect(units.read).toBeLessThanOrEqual(unitsPerSecond * ((clock - started) / 1000 + 1 + runs));
    const found = (await checkpoints.load(['far'])).checkpoints;
    expect(found.get('far')).toMatchObject({ delivered: 1_000, head: 1_000, attempts: 0, lease: undefined });
  });
});
