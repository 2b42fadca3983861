import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore, DynamoDbEventReader } from '../../adapters/dynamodb-subscription.ts';
import type { StoredEvent } from '../../core/store.ts';
import { runReplay, SubscriptionRuntime, type LiveRecord } from '../../core/subscription.ts';
import { formatStatus } from '../../cli/commands/subscriptions.ts';
import { streamHeads, subscriptionStatus } from '../../cli/subscriptions.ts';
import type { Target } from '../../cli/target.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';
import { createCheckpointTable, event, seedStreams } from '../support/subscriptions.ts';

describe('a failing projection parks its stream; other streams go on; resume delivers from the parked version', () => {
  let client: DynamoDBClient;
  let eventTable: string;
  let store: DynamoDbEventStore;

  beforeAll(async () => {
    client = dynamoClient();
    eventTable = await createTestTable(client, 'sub-park-events');
    store = new DynamoDbEventStore({ client, tableName: eventTable });
  });

  afterAll(() => client.destroy());

  it('parks after maxAttempts, reports it, keeps the head for the lag, and resumes after the fix', async () => {
    // Prepare: two streams of 6 events; the projection is broken for version 3 of "bad".
    await seedStreams(store, { bad: 6, good: 6 });
    const checkpoints = new DynamoDbCheckpointStore({
      client,
      tableName: await createCheckpointTable(client, 'sub-park-cp'),
    });
    const reader = new DynamoDbEventReader({ client, tableName: eventTable });
    const seen: string[] = [];
    let broken = true;
    const project = (e: StoredEvent) => {
      if (broken && e.ID === 'bad' && e.Version === 3) throw new Error('read model rejects version 3');
      seen.push(`${e.ID}@${e.Version}`);
    };
    const runtime = new SubscriptionRuntime({ checkpoints, reader, owner: 'live', maxAttempts: 3, project });
    const records = async (streamId: string, from: number, to: number): Promise<LiveRecord[]> =>
      (await store.readStream(streamId, { fromVersion: from, limit: to - from + 1 })).events.map((e) => ({
        event: e,
        sequenceNumber: `${streamId}-${e.Version}`,
      }));
    const batch = [...(await records('bad', 1, 4)), ...(await records('good', 1, 4))];

    // Act: Lambda retries the batch from the failed record, three times.
    const attempts = [];
    for (let attempt = 0; attempt < 3; attempt += 1) attempts.push(await runtime.handleBatch(batch));

    // Assess: failed, failed, parked; "good" went on the first time; nothing of "bad" after 2 delivered.
    expect(attempts.map((a) => a.outcomes.find((o) => o.streamId === 'bad')?.status)).toEqual([
      'failed',
      'failed',
      'parked',
    ]);
    expect(attempts[0]!.retryFrom).toEqual(['bad-3']);
    expect(attempts[2]!.retryFrom).toEqual([]);
    // Streams go in parallel: order is per stream.
    expect(seen.filter((s) => s.startsWith('bad'))).toEqual(['bad@1', 'bad@2']);
    expect(seen.filter((s) => s.startsWith('good'))).toEqual(['good@1', 'good@2', 'good@3', 'good@4']);
    let found = (await checkpoints.load(['bad', 'good'])).checkpoints;
    expect(found.get('bad')).toMatchObject({
      delivered: 2,
      attempts: 3,
      parked: { version: 3, error: 'Error: read model rejects version 3', resumeRequested: false },
    });
    expect(found.get('good')).toMatchObject({ delivered: 4, parked: undefined });

    // Later live records: "good" advances, "bad" waits (its head still moves, for the lag).
    const later = await runtime.handleBatch([...(await records('bad', 5, 6)), ...(await records('good', 5, 6))]);
    expect(later.outcomes.find((o) => o.streamId === 'bad')).toMatchObject({ status: 'parked', head: 6, delivered: 2 });
    expect(later.retryFrom).toEqual([]);
    expect(seen.filter((s) => s.startsWith('bad'))).toEqual(['bad@1', 'bad@2']);
    expect(seen.filter((s) => s.startsWith('good'))).toHaveLength(6);

    // What `eventstore subscriptions` shows: the lag (4 versions of "bad") and the parked stream.
    const target = { kind: 'local', label: 'test', dynamo: client, tableName: eventTable } as unknown as Target; // only what the status reads
    const status = await subscriptionStatus(
      target,
      { name: 'park', checkpointTable: checkpoints.tableName, claimsTable: undefined, readModelTable: undefined },
      await streamHeads(target),
    );
    expect(status).toMatchObject({
      lag: 4,
      streamsBehind: 1,
      streams: 2,
      parked: [{ streamId: 'bad', version: 3, error: 'Error: read model rejects version 3' }],
    });
    expect(formatStatus(status)).toContain(
      'park: replay pending (not started); lag 4 version(s) over 1 of 2 stream(s); 1 parked',
    );

    // A resume before the fix parks it again (same version, the new error), and never skips version 3.
    expect(await checkpoints.requestResume('good')).toBe(false);
    expect(await checkpoints.requestResume('bad')).toBe(true);
    const stillBroken = await runReplay({
      runtime: new SubscriptionRuntime({ checkpoints, reader, owner: 'w1', maxAttempts: 3, project }),
      checkpoints,
      scanner: reader,
      owner: 'w1',
      deadline: 0,
    });
    expect(stillBroken.outcomes).toEqual([
      expect.objectContaining({ status: 'parked', streamId: 'bad', version: 3, newlyParked: true }),
    ]);

    // Act: fix, resume, run the replay worker (it only resumes: deadline 0 means no Scan this run).
    broken = false;
    await checkpoints.requestResume('bad');
    const resumed = await runReplay({
      runtime: new SubscriptionRuntime({ checkpoints, reader, owner: 'w2', maxAttempts: 3, project }),
      checkpoints,
      scanner: reader,
      owner: 'w2',
      deadline: 0,
    });

    // Assess: 3..6 delivered in order, once; the checkpoint is clear; the resume list is empty.
    expect(resumed.outcomes).toEqual([
      expect.objectContaining({ status: 'delivered', streamId: 'bad', delivered: 6, count: 4 }),
    ]);
    expect(seen.filter((s) => s.startsWith('bad'))).toEqual(['bad@1', 'bad@2', 'bad@3', 'bad@4', 'bad@5', 'bad@6']);
    found = (await checkpoints.load(['bad'])).checkpoints;
    expect(found.get('bad')).toMatchObject({ delivered: 6, attempts: 0, parked: undefined, lease: undefined });
    expect((await checkpoints.loadReplay())?.resume).toEqual([]);

    // And live again: version 7 goes straight through.
    await store.appendToStream('bad', [event('bad')]);
    const seventh = await runtime.handleBatch(await records('bad', 7, 7));
    expect(seventh.outcomes).toEqual([expect.objectContaining({ status: 'delivered', delivered: 7, count: 1 })]);
    expect(seen.at(-1)).toBe('bad@7');
  });

  it('a reset subscription replays every stream from version 1 again, each event once more', async () => {
    // Prepare: a table of its own, two streams, a subscription that replayed them to the end.
    const table = await createTestTable(client, 'sub-reset-events');
    await seedStreams(new DynamoDbEventStore({ client, tableName: table }), { r1: 3, r2: 2 });
    const checkpoints = new DynamoDbCheckpointStore({
      client,
      tableName: await createCheckpointTable(client, 'sub-reset-cp'),
    });
    const reader = new DynamoDbEventReader({ client, tableName: table });
    const seen: string[] = [];
    const replayToTheEnd = async (owner: string) => {
      const runtime = new SubscriptionRuntime({
        checkpoints,
        reader,
        owner,
        maxAttempts: 3,
        project: (e: StoredEvent) => void seen.push(`${e.ID}@${e.Version}`),
      });
      for (let run = 0; run < 10; run += 1) {
        const result = await runReplay({ runtime, checkpoints, scanner: reader, owner, deadline: Date.now() + 30_000 });
        if (result.state?.status === 'done') return;
      }
      throw new Error('replay did not finish in 10 runs');
    };
    await replayToTheEnd('before');
    const firstPass = [...seen].sort();

    // Act
    const reset = await checkpoints.reset();
    await replayToTheEnd('after');

    // Assess: everything forgotten (two checkpoints and the replay state), then delivered again, once.
    expect(firstPass).toEqual(['r1@1', 'r1@2', 'r1@3', 'r2@1', 'r2@2']);
    expect(reset).toBe(3);
    expect(seen.slice(firstPass.length).sort()).toEqual(firstPass);
    expect(seen.filter((s) => s.startsWith('r1'))).toEqual(['r1@1', 'r1@2', 'r1@3', 'r1@1', 'r1@2', 'r1@3']);
  });
});
