import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore } from '../../adapters/dynamodb-subscription.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { startSubscriptions, type LocalSubscriptions } from '../../local/subscriptions.ts';
import { loadDefinitions, subscriptionsFromTemplate, type CfnTemplate } from '../../local/template.ts';
import { inject } from 'vitest';
import { createTestTable, dynamoClient, uniqueName } from '../support/engines.ts';
import { parsedEvent } from '../support/factories.ts';
import { deliveries, type Delivery } from './fixtures/recording-projection.ts';

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
   * (`entry`): the same name again takes up the same checkpoint table.
   */
  async function subscribe(
    eventTable: string,
    name = uniqueName('fidelity'),
    entry = 'test/e2e/fixtures/recording-projection.ts',
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
        { ...definition!, name, entry, environment: { ...definition!.environment, SUBSCRIPTION_NAME: name } },
      ],
      onError: (_name, error) => errors.push(error.message),
    });
    const checkpoints = new DynamoDbCheckpointStore({
      client: dynamo,
      tableName: running.subscriptions[0]!.checkpointTable,
    });
    return { recorded: deliveries(name), checkpoints };
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
});
