import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore, DynamoDbEventReader } from '../../adapters/dynamodb-subscription.ts';
import type { StoredEvent } from '../../core/store.ts';
import { seededRandom } from '../../bench/workload.ts';
import { initialReplayState, runReplay, SubscriptionRuntime, type LiveRecord } from '../../core/subscription.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';
import { createCheckpointTable, seedStreams } from '../support/subscriptions.ts';

const seed = Number(process.env['FC_SEED'] ?? Date.now() % 2 ** 31);

/**
 * Lambda on a DynamoDB stream shard, simulated: batches of up to `batchSize` records from a
 * position; a batch item failure sends the shard back to the lowest failed record, everything
 * after it comes again. `records` is what the shard holds (here shuffled and duplicated).
 */
async function runShard(
  records: readonly LiveRecord[],
  sizes: () => number,
  handle: (batch: LiveRecord[]) => Promise<string[]>,
): Promise<void> {
  const position = new Map(records.map((record, index) => [record.sequenceNumber, index]));
  let at = 0;
  for (let rounds = 0; at < records.length; rounds += 1) {
    if (rounds > 20_000) throw new Error('the shard did not drain');
    const batch = records.slice(at, at + sizes());
    const failed = await handle(batch);
    at = failed.length === 0 ? at + batch.length : Math.min(...failed.map((sequence) => position.get(sequence)!));
  }
}

describe('subscription runtime against DynamoDB Local (property)', () => {
  let client: DynamoDBClient;
  let eventTable: string;
  let store: DynamoDbEventStore;
  const stored = new Map<string, StoredEvent[]>();

  beforeAll(async () => {
    client = dynamoClient();
    eventTable = await createTestTable(client, 'sub-prop-events');
    store = new DynamoDbEventStore({ client, tableName: eventTable });
    const streams: Record<string, number> = {};
    for (let index = 0; index < 8; index += 1) streams[`stream-${index}`] = 1 + ((index * 7) % 13);
    await seedStreams(store, streams, ['ITEM_ADDED', 'ITEM_REMOVED', 'CART_CHECKED_OUT']);
    for (const streamId of Object.keys(streams)) stored.set(streamId, (await store.readStream(streamId)).events);
  });

  afterAll(() => client.destroy());

  it('each subscription sees every version of every stream exactly once, in order, whatever the shard does', async () => {
    console.log(`subscription property: seed ${seed} (FC_SEED=${seed} replays it)`);
    const all = [...stored.values()].flat();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          /** Record order in the shard: a random key per record. */
          order: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: all.length, maxLength: all.length }),
          /** How many times each record is in the shard (0: lost, found by gap fill; 2+: redelivered). */
          copies: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: all.length, maxLength: all.length }),
          failureRate: fc.double({ min: 0, max: 0.4, noNaN: true }),
          maxBatch: fc.integer({ min: 1, max: 30 }),
          subscriptions: fc.integer({ min: 1, max: 2 }),
          /** false: replay pending: the replay worker runs alongside, live batches hold each stream while they deliver it. */
          replayDone: fc.boolean(),
          runSeed: fc.integer(),
        }),
        async ({ order, copies, failureRate, maxBatch, subscriptions, replayDone, runSeed }) => {
          const random = seededRandom(runSeed);
          const shard: LiveRecord[] = [];
          all.forEach((event, index) => {
            for (let copy = 0; copy < copies[index]!; copy += 1) shard.push({ event, sequenceNumber: '' });
          });
          const keyed = shard.map((record, index) => ({ record, key: order[index % order.length]! + random() / 1e6 }));
          keyed.sort((a, b) => a.key - b.key);
          // Every stream's last event arrives at least once, at the end (a later record would bring it otherwise).
          const last = [...stored.values()].map((events) => ({
            record: { event: events[events.length - 1]!, sequenceNumber: '' },
            key: 2,
          }));
          const records = [...keyed, ...last].map(({ record }, index) => ({
            event: record.event,
            sequenceNumber: String(index).padStart(8, '0'),
          }));

          for (let subscription = 0; subscription < subscriptions; subscription += 1) {
            const seen = new Map<string, number[]>();
            const checkpoints = new DynamoDbCheckpointStore({
              client,
              tableName: await createCheckpointTable(client, 'sub-prop-cp'),
            });
            if (replayDone) await checkpoints.saveReplay({ ...initialReplayState(), status: 'done' });
            const reader = new DynamoDbEventReader({ client, tableName: eventTable });
            const project = (event: StoredEvent) => {
              if (random() < failureRate) throw new Error(`projection failed at ${event.ID}@${event.Version}`);
              const versions = seen.get(event.ID) ?? [];
              versions.push(event.Version);
              seen.set(event.ID, versions);
            };
            const runtime = new SubscriptionRuntime({
              checkpoints,
              reader,
              owner: `run-${subscription}`,
              maxAttempts: 1_000,
              project,
            });
            const shard = runShard(
              records,
              () => 1 + Math.floor(random() * maxBatch),
              async (batch) => (await runtime.handleBatch(batch)).retryFrom,
            );
            // Replay pending: the replay worker catches every stream up at the same time as the live batches (the switch).
            const replay = replayDone
              ? Promise.resolve(undefined)
              : runReplay({
                  runtime: new SubscriptionRuntime({
                    checkpoints,
                    reader,
                    owner: `replay-${subscription}`,
                    maxAttempts: 1_000,
                    project,
                  }),
                  checkpoints,
                  scanner: reader,
                  owner: `replay-${subscription}`,
                  deadline: Date.now() + 60_000,
                  scanPage: 7,
                });
            const [, replayed] = await Promise.all([shard, replay]);
            if (replayed) expect(replayed.state?.status).toBe('done');
            for (const [streamId, events] of stored) {
              expect(seen.get(streamId), `${streamId} (seed ${seed})`).toEqual(events.map((event) => event.Version));
            }
            const found = await checkpoints.load([...stored.keys()]);
            for (const [streamId, events] of stored) {
              expect(found.checkpoints.get(streamId)?.delivered).toBe(events.length);
              expect(found.checkpoints.get(streamId)?.lease).toBeUndefined();
            }
          }
        },
      ),
      { seed, numRuns: 15, verbose: true },
    );
  });

  it('two runs racing for one checkpoint: exactly one write wins; the loser retries and delivers nothing twice', async () => {
    // Prepare: replay pending, so live batches hold the stream while they deliver it.
    const checkpoints = new DynamoDbCheckpointStore({
      client,
      tableName: await createCheckpointTable(client, 'sub-race-cp'),
    });
    const events = stored.get('stream-2')!;
    const seen: number[] = [];
    const runtimes = ['a', 'b'].map(
      (owner) =>
        new SubscriptionRuntime({
          checkpoints,
          reader: new DynamoDbEventReader({ client, tableName: eventTable }),
          owner,
          project: (event) => {
            seen.push(event.Version);
          },
        }),
    );
    const records = events.map((event, index) => ({ event, sequenceNumber: String(index) }));

    // Act
    const results = await Promise.all(runtimes.map((runtime) => runtime.handleBatch(records)));

    // Assess
    // The second either found the stream held (retry) or, after the first released it, nothing left to deliver.
    for (const result of results) expect(['delivered', 'retry']).toContain(result.outcomes[0]?.status);
    expect(seen).toEqual(events.map((event) => event.Version));
    const checkpoint = (await checkpoints.load(['stream-2'])).checkpoints.get('stream-2');
    expect(checkpoint?.delivered).toBe(events.length);

    // And two plain saves from the same revision: one wins.
    const saves = await Promise.all([
      checkpoints.save({ ...checkpoint!, delivered: checkpoint!.delivered + 1 }),
      checkpoints.save({ ...checkpoint!, delivered: checkpoint!.delivered + 2 }),
    ]);
    expect(saves.filter(Boolean)).toHaveLength(1);
  });
});
