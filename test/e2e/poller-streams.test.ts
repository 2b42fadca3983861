import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type DynamoDBStreamsClient,
  type _Record,
} from '@aws-sdk/client-dynamodb-streams';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore } from '../../adapters/dynamodb-subscription.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, PROJECT_ROOT } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { writeState } from '../../local/state.ts';
import { StreamPoller } from '../../local/stream-poller.ts';
import { startSubscriptions, type LocalSubscriptions } from '../../local/subscriptions.ts';
import { loadDefinitions, subscriptionsFromTemplate, type CfnTemplate } from '../../local/template.ts';
import { inject } from 'vitest';
import { createTestTable, dynamoClient, uniqueName } from '../support/engines.ts';
import { parsedEvent } from '../support/factories.ts';
import { deliveries, type Delivery } from './fixtures/recording-projection.ts';
import { runCli } from './support.ts';

/**
 * The local subscriptions' stream source (local/stream-poller.ts) on DynamoDB Local's own
 * stream, where DynamoDB Local differs from DynamoDB Streams on AWS (docs/DEVELOPMENT.md,
 * "Local engines"): the records it writes, and where it starts.
 */
describe('local subscriptions on DynamoDB Local streams', () => {
  let dynamo: DynamoDBClient;
  let template: CfnTemplate;
  let running: LocalSubscriptions | undefined;
  const errors: string[] = [];

  beforeAll(async () => {
    dynamo = dynamoClient();
    template = (await loadDefinitions('standard')).template;
  });

  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });

  afterAll(() => dynamo.destroy());

  /**
   * Start the stack's own subscription definition, under `name`, with a recording projection
   * (`entry`): the same name again takes up the same checkpoint table. `eventNames`: the
   * mapping's filter, as the template has it unless given.
   */
  async function subscribe(
    eventTable: string,
    name = uniqueName('fidelity'),
    entry = 'test/e2e/fixtures/recording-projection.ts',
    eventNames?: readonly string[],
  ): Promise<{ recorded: Delivery[]; checkpoints: DynamoDbCheckpointStore }> {
    const [definition] = subscriptionsFromTemplate(template);
    running = await startSubscriptions({
      dynamo,
      dynamoDbEndpoint: inject('dynamoDbEndpoint'),
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      eventTable,
      template,
      definitions: [
        {
          ...definition!,
          name,
          entry,
          eventNames: eventNames ?? definition!.eventNames,
          environment: { ...definition!.environment, SUBSCRIPTION_NAME: name },
        },
      ],
      onError: (_name, error) => errors.push(error.message),
    });
    const checkpoints = new DynamoDbCheckpointStore({
      client: dynamo,
      tableName: running.subscriptions[0]!.checkpointTable,
    });
    return { recorded: deliveries(name), checkpoints };
  }

  /**
   * A data folder whose state file, like the one `npm start` writes, names this process, the
   * run's DynamoDB Local, `eventTable` and `subscriptions`, so the CLI finds them there.
   */
  function localStackState(eventTable: string, subscriptions: LocalSubscriptions['subscriptions'] = []): string {
    const dataDir = mkdtempSync(join(tmpdir(), 'event-store-fidelity-'));
    writeState({
      pid: process.pid,
      queueMode: 'standard',
      region: LOCAL_REGION,
      inMemory: true,
      dataDir,
      dynamoDbEndpoint: inject('dynamoDbEndpoint'),
      sqsEndpoint: inject('sqsEndpoint'),
      tableName: eventTable,
      // Not read by the subscription commands: placeholders.
      sfnEndpoint: 'unused',
      queueUrl: 'unused',
      queueArn: 'unused',
      deadLetterQueueUrl: 'unused',
      deadLetterQueueArn: 'unused',
      stateMachineArn: 'unused',
      concurrency: 1,
      startedAt: new Date().toISOString(),
      subscriptions,
    });
    return dataDir;
  }

  /** Each stream's delivered versions, in delivery order. */
  function versionsByStream(recorded: readonly Delivery[]): Record<string, number[]> {
    const found: Record<string, number[]> = {};
    for (const { streamId, version } of recorded) (found[streamId] ??= []).push(version);
    return found;
  }

  async function append(store: DynamoDbEventStore, streamId: string, data: Record<string, unknown>[]): Promise<void> {
    const outcomes = await store.appendToStream(
      streamId,
      data.map((Data) => parsedEvent({ ID: streamId, Data })),
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(data.map(() => 'stored'));
  }

  it(
    'an event whose Data is {} or holds empty maps is delivered as stored, and so are the events after it',
    { timeout: 60_000 },
    async () => {
      // Prepare: a subscription whose replay is done, so only the stream source delivers what follows.
      const eventTable = await createTestTable(dynamo, 'fidelity-empty-map');
      const store = new DynamoDbEventStore({ client: dynamo, tableName: eventTable });
      const { recorded, checkpoints } = await subscribe(eventTable);
      await waitUntil(
        async () => (await checkpoints.loadReplay())?.status === 'done',
        'the replay to finish',
        20_000,
        100,
      );
      const empty = [{}, { a: {}, b: [{}, { c: {} }], d: { e: { f: {} } } }];
      const after = [{ n: 1 }, { n: 2 }];

      // Act: empty maps first, then events of another stream behind them in the shard.
      await append(store, 'empty-maps', empty);
      await append(store, 'after', after);

      // Assess: both streams delivered in order, each once, with the Data as stored.
      await waitUntil(async () => recorded.length >= 4, 'every event to be delivered', 20_000, 100);
      const byStream = (id: string) => recorded.filter((delivery) => delivery.streamId === id);
      expect(byStream('empty-maps')).toEqual(
        empty.map((data, index) => ({ streamId: 'empty-maps', version: index + 1, data })),
      );
      expect(byStream('after')).toEqual(after.map((data, index) => ({ streamId: 'after', version: index + 1, data })));
      expect(recorded).toHaveLength(4);
      expect(errors).toEqual([]);
    },
  );

  it(
    '`eventstore tail` prints an event whose Data is {} or holds empty maps, as stored',
    { timeout: 90_000 },
    async () => {
      // Prepare
      const eventTable = await createTestTable(dynamo, 'fidelity-tail');
      const store = new DynamoDbEventStore({ client: dynamo, tableName: eventTable });
      const dataDir = localStackState(eventTable);
      const data = { a: {}, b: [{}, { c: {} }] };
      try {
        // Act: the tail starts at LATEST: store to a new stream each round until it has printed one.
        const tail = runCli(['tail', '--count', '1', '--json'], dataDir);
        let settled = false;
        void tail.finally(() => (settled = true));
        let round = 0;
        await waitUntil(
          async () => {
            if (!settled) await append(store, `tail-${(round += 1)}`, [data]);
            return settled;
          },
          'the tail to print an event',
          45_000,
          1_000,
        );
        const result = await tail;

        // Assess
        expect(result).toMatchObject({ code: 0, stderr: '' });
        const printed = JSON.parse(result.stdout.trim()) as { ID: string; Data: unknown };
        expect(printed.ID).toMatch(/^tail-\d+$/);
        expect(printed.Data).toEqual(data);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  );

  it(
    'events stored before the stream source starts, or while it was stopped, are delivered once, in order (TRIM_HORIZON)',
    { timeout: 90_000 },
    async () => {
      // Prepare: events stored before any subscription runs; the replay worker switched off
      // (stream-only-projection.ts), so only the stream source can deliver them.
      const eventTable = await createTestTable(dynamo, 'fidelity-horizon');
      const store = new DynamoDbEventStore({ client: dynamo, tableName: eventTable });
      const name = uniqueName('horizon');
      const entry = 'test/e2e/fixtures/stream-only-projection.ts';
      await append(store, 's1', [{ n: 1 }, { n: 2 }, { n: 3 }]);
      await append(store, 's2', [{ n: 1 }, { n: 2 }]);

      // Act 1: start the subscription.
      const { recorded } = await subscribe(eventTable, name, entry);

      // Assess 1: the stored events, each once, in version order.
      await waitUntil(async () => recorded.length >= 5, 'the events stored before the start', 20_000, 100);
      expect(versionsByStream(recorded)).toEqual({ s1: [1, 2, 3], s2: [1, 2] });

      // Act 2: stop it, store more, start it again (the stream still holds the first five records).
      await running!.stop();
      running = undefined;
      await append(store, 's1', [{ n: 4 }]);
      await append(store, 's3', [{ n: 1 }, { n: 2 }]);
      await subscribe(eventTable, name, entry);

      // Assess 2: the new events delivered; the first five not again (the checkpoints skip them).
      await waitUntil(async () => recorded.length >= 8, 'the events stored while it was stopped', 20_000, 100);
      const settled = recorded.length;
      await append(store, 's2', [{ n: 3 }]);
      await waitUntil(async () => recorded.length > settled, 'a live event after the restart', 20_000, 100);
      expect(versionsByStream(recorded)).toEqual({ s1: [1, 2, 3, 4], s2: [1, 2, 3], s3: [1, 2] });
      expect(errors).toEqual([]);
    },
  );

  it(
    "docs/OPERATIONS.md's recovery for lost stream records, `eventstore subscriptions replay NAME`, delivers what the checkpoints lack, nothing twice",
    { timeout: 120_000 },
    async () => {
      // Prepare: two events delivered by the subscription's first replay; then its stream source
      // sees no INSERT (a filter on MODIFY only: as if the mapping had discarded every batch), so
      // two more events are stored and never delivered. The CLI finds the subscription through a
      // state file like the one `npm start` writes.
      const eventTable = await createTestTable(dynamo, 'fidelity-replay');
      const store = new DynamoDbEventStore({ client: dynamo, tableName: eventTable });
      await append(store, 'r1', [{ n: 1 }, { n: 2 }]);
      const name = uniqueName('replay');
      const { recorded, checkpoints } = await subscribe(eventTable, name, undefined, ['MODIFY']);
      await waitUntil(
        async () => (await checkpoints.loadReplay())?.status === 'done' && recorded.length === 2,
        'the first replay',
        20_000,
        100,
      );
      await append(store, 'r1', [{ n: 3 }]);
      await append(store, 'r2', [{ n: 1 }]);
      const dataDir = localStackState(eventTable, running!.subscriptions);
      const documented = readFileSync(join(PROJECT_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
      expect(documented).toContain('`npx eventstore subscriptions replay NAME --stack STACK`');

      try {
        // Act: the documented command (its target option after the subcommand, as documented).
        const replayed = await runCli(['subscriptions', 'replay', name, '--data-dir', dataDir], join(dataDir, 'none'));

        // Assess: the two missing events delivered, in order; the first two not again.
        expect(replayed).toMatchObject({ code: 0, stderr: '' });
        expect(replayed.stdout).toContain(`${name}: replay asked;`);
        await waitUntil(async () => recorded.length >= 4, 'the replay to deliver the lost events', 20_000, 100);
        await waitUntil(
          async () => (await checkpoints.loadReplay())?.status === 'done',
          'the replay to finish',
          20_000,
          100,
        );
        expect(versionsByStream(recorded)).toEqual({ r1: [1, 2, 3], r2: [1] });
        expect(errors).toEqual([]);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  );
});

/**
 * A shard that splits: DynamoDB Local keeps one shard open for hours (a restart on disk keeps it
 * too), so a test cannot make it close one; a stand-in for the three calls the poller makes
 * serves a closed parent shard and its open child, listed child first.
 */
describe('the local stream source on a split shard (a stand-in for DynamoDB Streams)', () => {
  const parent = 'shardId-parent';
  const child = 'shardId-child';
  const records: Record<string, _Record[]> = {
    [parent]: [1, 2].map((version) => streamRecord(version)),
    [child]: [3].map((version) => streamRecord(version)),
  };

  function streamRecord(version: number): _Record {
    return {
      eventID: `e${version}`,
      eventName: 'INSERT',
      dynamodb: {
        SequenceNumber: String(version).padStart(21, '0'),
        Keys: { ID: { S: 'a' }, Version: { N: String(version) } },
        NewImage: { ID: { S: 'a' }, Version: { N: String(version) } },
      },
    };
  }

  /** DescribeStream, GetShardIterator (TRIM_HORIZON, LATEST, AT/AFTER_SEQUENCE_NUMBER) and GetRecords over `records`. */
  const streams = {
    send: async (command: object): Promise<unknown> => {
      await new Promise((resolve) => setImmediate(resolve));
      if (command instanceof DescribeStreamCommand)
        return {
          StreamDescription: {
            Shards: [
              { ShardId: child, ParentShardId: parent, SequenceNumberRange: { StartingSequenceNumber: '3' } },
              { ShardId: parent, SequenceNumberRange: { StartingSequenceNumber: '1', EndingSequenceNumber: '2' } },
            ],
          },
        };
      if (command instanceof GetShardIteratorCommand) {
        const { ShardId, ShardIteratorType, SequenceNumber } = command.input;
        const list = records[ShardId!]!;
        const index = {
          TRIM_HORIZON: 0,
          LATEST: list.length,
          AT_SEQUENCE_NUMBER: list.findIndex((r) => r.dynamodb!.SequenceNumber === SequenceNumber),
          AFTER_SEQUENCE_NUMBER: list.findIndex((r) => r.dynamodb!.SequenceNumber === SequenceNumber) + 1,
        }[ShardIteratorType!];
        return { ShardIterator: `${ShardId}|${index}` };
      }
      if (command instanceof GetRecordsCommand) {
        const [shard, at] = command.input.ShardIterator!.split('|') as [string, string];
        const list = records[shard]!;
        const next = Math.min(list.length, Number(at) + (command.input.Limit ?? 100));
        const done = shard === parent && next === list.length;
        return { Records: list.slice(Number(at), next), NextShardIterator: done ? undefined : `${shard}|${next}` };
      }
      throw new Error(`unexpected ${command.constructor.name}`);
    },
  };

  async function delivered(count: number): Promise<number[]> {
    const versions: number[] = [];
    const poller = new StreamPoller({
      // The three calls the poller makes, served from `records` (see above).
      streams: streams as unknown as DynamoDBStreamsClient,
      streamArn: 'arn:stream',
      region: LOCAL_REGION,
      batchSize: 1,
      eventNames: ['INSERT'],
      startingPosition: 'TRIM_HORIZON',
      idleMs: 10,
      handler: async (event) => {
        for (const record of event.Records) versions.push(Number(record.dynamodb!.NewImage!['Version']!.N));
        return { batchItemFailures: [] };
      },
    });
    poller.start();
    try {
      await waitUntil(async () => versions.length >= count, `${count} records`, 10_000, 10);
    } finally {
      await poller.stop();
    }
    return versions;
  }

  it('from TRIM_HORIZON (the mapping): the closed parent first, to its end, then its child', async () => {
    expect(await delivered(3)).toEqual([1, 2, 3]);
  });
});
