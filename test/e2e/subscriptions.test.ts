import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  ScanCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbCheckpointStore, DynamoDbClaimStore } from '../../adapters/dynamodb-subscription.ts';
import type { StoredEvent } from '../../core/store.ts';
import { claimKey, SubscriptionEnvironment } from '../../core/subscription.ts';
import { summaryFromItem, type StreamSummary } from '../../handlers/stream-summary-projection.ts';
import { generateEvents, publishMessages } from '../../cli/publish.ts';
import { resolveTarget, type Target } from '../../cli/target.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { startLocalStack, type LocalStack } from '../../local/stack.ts';
import { startSubscriptions, type LocalSubscriptions } from '../../local/subscriptions.ts';
import { subscriptionsFromTemplate } from '../../local/template.ts';
import { LOCAL_CREDENTIALS } from '../../local/consumers.ts';
import { deliveries } from './fixtures/recording-projection.ts';
import { byStream, runCli, scanEvents, stackClients, startCli } from './support.ts';

/** What the example projection's table must say for a stream's events. */
function expectedSummary(events: readonly StoredEvent[]): StreamSummary {
  const types: Record<string, number> = {};
  for (const event of events) types[event.EventType] = (types[event.EventType] ?? 0) + 1;
  const last = events[events.length - 1]!;
  const groups = events.filter((event) => event.GroupIndex === 0).length;
  return {
    ID: last.ID,
    Events: events.length,
    LastVersion: last.Version,
    LastEventType: last.EventType,
    Types: types,
    Groups: groups,
  };
}

async function summaries(dynamo: DynamoDBClient, tableName: string): Promise<Map<string, StreamSummary>> {
  const found = new Map<string, StreamSummary>();
  let startKey: Record<string, never> | undefined;
  do {
    const page = await dynamo.send(
      new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: startKey }),
    );
    for (const item of page.Items ?? []) {
      const summary = summaryFromItem(item);
      found.set(summary.ID, summary);
    }
    startKey = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (startKey);
  return found;
}

describe.each(['standard', 'fifo'] as const)('subscriptions on the local stack (%s queue)', (mode) => {
  let stack: LocalStack;
  let target: Target;
  let dynamo: DynamoDBClient;
  let late: LocalSubscriptions | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), `event-store-sub-e2e-${mode}-`));
  const errors: string[] = [];

  beforeAll(async () => {
    stack = await startLocalStack({
      queueMode: mode,
      inMemory: true,
      dataDir,
      dynamoDbPort: 0,
      sqsPort: 0,
      sfnPort: 0,
      concurrency: 4,
      onError: (error) => errors.push(error.message),
    });
    target = await resolveTarget({ dataDir });
    ({ dynamo } = stackClients(stack.state));
  });

  afterAll(async () => {
    await late?.stop();
    target?.close();
    dynamo?.destroy();
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const publish = async (count: number, streams: number, prefix: string, groupSize?: number) => {
    const { events } = generateEvents({
      count,
      streams,
      invalidRatio: 0,
      streamPrefix: prefix,
      ...(groupSize !== undefined ? { groupSize } : {}),
    });
    const report = await publishMessages(target, events, { parallel: 8 });
    expect(report.failed).toBe(0);
  };

  it("the subscription's claims table is made from the template on DynamoDB Local: Key (S), Claim (S), TTL on ExpiresAt", async () => {
    // Prepare
    const [subscription] = stack.state.subscriptions ?? [];
    const claims = subscription?.tables[SubscriptionEnvironment.claimsTable];

    // Act
    const described = await dynamo.send(new DescribeTableCommand({ TableName: claims }));
    const timeToLive = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: claims }));

    // Assess
    expect(claims).toBe('stream-summary-claims');
    expect(described.Table?.KeySchema).toEqual([
      { AttributeName: 'Key', KeyType: 'HASH' },
      { AttributeName: 'Claim', KeyType: 'RANGE' },
    ]);
    expect(described.Table?.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'Key', AttributeType: 'S' },
        { AttributeName: 'Claim', AttributeType: 'S' },
      ]),
    );
    expect(described.Table?.AttributeDefinitions).toHaveLength(2);
    expect(timeToLive.TimeToLiveDescription).toEqual({ TimeToLiveStatus: 'ENABLED', AttributeName: 'ExpiresAt' });
  });

  it(
    'eventstore subscriptions reset waits for a live claim (a batch holding streams with no lease) until it is deleted',
    { timeout: 90_000 },
    async () => {
      // Prepare: a live batch's claim on a stream of its own, its invocation's deadline a minute away
      const [subscription] = stack.state.subscriptions ?? [];
      const claims = new DynamoDbClaimStore({
        client: dynamo,
        tableName: subscription!.tables[SubscriptionEnvironment.claimsTable]!,
      });
      const until = Date.now() + 60_000;
      const key = claimKey(until, 'req-claim');
      const streamId = `claimed-${mode}`;
      await claims.put({ key, owner: 'req-claim', until, streams: new Map([[streamId, 1]]) });
      const waiting = `stream-summary: waiting for 1 invocation(s) from before the reset to let go of ${streamId} (at the latest ${new Date(until).toISOString()})`;

      // Act: the reset, then the batch ends (its claim deleted) while the reset waits
      const reset = startCli(['subscriptions', 'reset', 'stream-summary', '--yes'], dataDir);
      try {
        await reset.waitFor(waiting, 30_000);
        await claims.delete(key);
        const code = await reset.exited;

        // Assess: it said whom it waited for, and returned once the claim was gone, long before its end.
        expect(code).toBe(0);
        expect(reset.stdout).toMatch(/stream-summary: [1-9]\d* checkpoint item\(s\) reset;/);
        expect(Date.now()).toBeLessThan(until);
      } finally {
        if (reset.running) reset.process.kill('SIGKILL');
        await claims.delete(key);
      }
    },
  );

  it('the example projection table matches the event table, stream by stream', { timeout: 180_000 }, async () => {
    // Prepare
    const readModel = stack.state.subscriptions?.find((s) => s.name === 'stream-summary')?.tables[
      'READ_MODEL_TABLE_NAME'
    ];
    expect(readModel).toBeDefined();

    // Act: 1,000 single events over 20 streams, then 100 groups of 3 over the same streams
    await publish(1000, 20, `sum-${mode}`);
    await publish(300, 20, `sum-${mode}`, 3);

    // Assess: poll until every stored event is in the read model.
    let expected = new Map<string, StreamSummary>();
    await waitUntil(
      async () => {
        const events = await scanEvents(dynamo, stack.state.tableName);
        if (events.length < 1300) return false;
        expected = new Map([...byStream(events)].map(([id, list]) => [id, expectedSummary(list)]));
        const found = await summaries(dynamo, readModel!);
        return [...expected].every(([id, summary]) => found.get(id)?.LastVersion === summary.LastVersion);
      },
      'the read model to catch up with 1,300 events',
      150_000,
      250,
    );
    expect(await summaries(dynamo, readModel!)).toEqual(expected);
    // Each stream: 50 events sent alone and 5 groups of 3, each event counted, each group once
    expect([...expected.values()].map((summary) => [summary.Events, summary.Groups])).toEqual(
      Array<[number, number]>(20).fill([65, 5]),
    );
    expect(errors).toEqual([]);

    // The CLI: the summary of one stream, and the subscription with no lag and nothing parked.
    const [id, summary] = [...expected][0]!;
    const shown = await runCli(['summary', id, '--json'], dataDir);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toEqual(summary);
    const listed = await runCli(['subscriptions', '--json'], dataDir);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({
        name: 'stream-summary',
        lag: 0,
        streamsBehind: 0,
        parked: [],
        replay: expect.objectContaining({ status: 'done' }),
      }),
    ]);
  });

  it('eventstore tail prints events as they are stored', { timeout: 120_000 }, async () => {
    // Act: tail for 5 events while 5 are published to a new stream.
    const tail = runCli(['tail', '--count', '5', '--json'], dataDir);
    // The tail starts at LATEST: publish once it has had time to take its shard iterator, and again until it has 5.
    let printed: StoredEvent[] = [];
    const run = tail.then((result) => {
      printed = result.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as StoredEvent);
      return result;
    });
    let round = 0;
    let settled = false;
    void run.finally(() => (settled = true));
    await waitUntil(
      async () => {
        if (!settled) await publish(5, 1, `tail-${mode}-${(round += 1)}`);
        return settled;
      },
      'tail to print 5 events',
      60_000,
      1_000,
    );
    const result = await run;

    // Assess
    expect(result.code).toBe(0);
    expect(printed).toHaveLength(5);
    for (const event of printed) expect(event.ID).toMatch(new RegExp(`^tail-${mode}-\\d+-1$`));
  });

  it(
    'a subscription created after 1,000 events catches up, then follows live events with no gap and no duplicate',
    { timeout: 180_000 },
    async () => {
      // Prepare: the stack's own subscription definition, under a new name, with a recording projection.
      const [template] = subscriptionsFromTemplate(stack.definitions.template);
      const name = `late-${mode}`;
      const recorded = deliveries(name);

      // Act: start it, and keep publishing while its replay runs (old and new streams).
      late = await startSubscriptions({
        dynamo,
        dynamoDbEndpoint: stack.state.dynamoDbEndpoint,
        region: stack.state.region,
        credentials: LOCAL_CREDENTIALS,
        eventTable: stack.state.tableName,
        template: stack.definitions.template,
        definitions: [
          {
            ...template!,
            name,
            entry: 'test/e2e/fixtures/recording-projection.ts',
            environment: { ...template!.environment, SUBSCRIPTION_NAME: name },
          },
        ],
        onError: (_name, error) => errors.push(error.message),
      });
      const live = Promise.all([publish(200, 20, `sum-${mode}`), publish(100, 5, `live-${mode}`)]);
      await live;

      // Assess: every stream's versions 1..n, in order, each once; the replay is done.
      const checkpoints = new DynamoDbCheckpointStore({
        client: dynamo,
        tableName: late.subscriptions[0]!.checkpointTable,
      });
      let streams = new Map<string, StoredEvent[]>();
      await waitUntil(
        async () => {
          streams = byStream(await scanEvents(dynamo, stack.state.tableName));
          const total = [...streams].reduce((sum, [id, list]) => sum + (id.startsWith('tail-') ? 0 : list.length), 0);
          if (total < 1300) return false;
          const found = (await checkpoints.load([...streams.keys()])).checkpoints;
          return (
            (await checkpoints.loadReplay())?.status === 'done' &&
            [...streams].every(([id, list]) => found.get(id)?.delivered === list.length)
          );
        },
        'the late subscription to deliver every event',
        150_000,
        250,
      );
      const seen = new Map<string, number[]>();
      for (const { streamId, version } of recorded) seen.set(streamId, [...(seen.get(streamId) ?? []), version]);
      expect([...seen.keys()].filter((id) => !id.startsWith('tail-'))).toHaveLength(25);
      for (const [id, list] of streams) expect(seen.get(id), id).toEqual(list.map((event) => event.Version));
      expect(errors).toEqual([]);
    },
  );

  it(
    'eventstore subscriptions resume names a stream that is not parked; reset needs --yes, then replays from version 1',
    { timeout: 180_000 },
    async () => {
      // Prepare: the stack's example projection has delivered every stream (the tests above)
      const resetAt = new Date().toISOString();

      // Act
      const resumed = await runCli(['subscriptions', 'resume', 'stream-summary', `no-such-${mode}`], dataDir);
      const unconfirmed = await runCli(['subscriptions', 'reset', 'stream-summary'], dataDir);
      const unknown = await runCli(['subscriptions', 'reset', 'no-such-subscription', '--yes'], dataDir);
      const reset = await runCli(['subscriptions', 'reset', 'stream-summary', '--yes'], dataDir);

      // Assess
      expect(resumed).toEqual({
        code: 1,
        stdout: '',
        stderr: `eventstore: not parked in stream-summary: no-such-${mode} (npx eventstore subscriptions lists the parked streams)\n`,
      });
      expect(unconfirmed).toEqual({
        code: 1,
        stdout: '',
        stderr: 'eventstore: reset replays every event to the projection again; confirm with --yes\n',
      });
      expect(unknown).toMatchObject({
        code: 1,
        stderr: 'eventstore: no subscription no-such-subscription in the local stack; there are: stream-summary\n',
      });
      expect(reset.code).toBe(0);
      expect(reset.stdout).toMatch(
        /^stream-summary: [1-9]\d* checkpoint item\(s\) reset; the replay starts again from version 1 of every stream\n$/,
      );
      // The replay runs again from the start and catches up: a new replay, done, and no lag.
      await waitUntil(
        async () => {
          const listed = await runCli(['subscriptions', '--json'], dataDir);
          const [status] = JSON.parse(listed.stdout) as {
            lag: number;
            replay?: { status: string; startedAt: string };
          }[];
          return status?.replay?.status === 'done' && status.replay.startedAt > resetAt && status.lag === 0;
        },
        'the reset subscription to replay every stream again',
        150_000,
        500,
      );
      expect(errors).toEqual([]);
    },
  );
});
