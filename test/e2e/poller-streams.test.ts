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

  /** The stack's own subscription definition, under a new name, with a recording projection. */
  async function subscribe(
    eventTable: string,
  ): Promise<{ recorded: Delivery[]; checkpoints: DynamoDbCheckpointStore }> {
    const [definition] = subscriptionsFromTemplate(template);
    const name = uniqueName('fidelity');
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
          entry: 'test/e2e/fixtures/recording-projection.ts',
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
});
