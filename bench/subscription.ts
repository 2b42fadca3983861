/**
 * What a subscription costs per delivered event (README "Subscriptions"), on DynamoDB Local:
 * read and write units of the runtime itself (checkpoints, gap fills, replay Scan and Query),
 * the projection's own writes excluded (a no-op projection here).
 *
 * - live: the events arrive as DynamoDB stream batches (Lambda's shape, the construct's batch
 *   size), interleaved over the streams as they were appended; replay done.
 * - replay: a new subscription catches the same events up from version 1 (Scan + Query).
 */
import { lambdaContext } from '../test/support/factories.ts';
import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBRecord } from 'aws-lambda';
import { DynamoDbEventStore } from '../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore, claimsTableDefinition } from '../adapters/dynamodb-subscription.ts';
import { parseEventBody } from '../core/event.ts';
import type { StoredEvent } from '../core/store.ts';
import { CheckpointKeys, initialReplayState } from '../core/subscription.ts';
import { createSubscriptionHandler } from '../handlers/subscription.ts';
import { createEventTable } from '../local/provision.ts';

export interface SubscriptionBenchOptions {
  readonly streams: number;
  readonly eventsPerStream: number;
  /** Records per live invocation. @default 100 (the construct's) */
  readonly batchSize?: number;
  readonly run: string;
}

export interface UnitsPerEvent {
  readonly events: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly readUnitsPerEvent: number;
  readonly writeUnitsPerEvent: number;
}

export interface SubscriptionBenchResult {
  readonly live: UnitsPerEvent;
  readonly replay: UnitsPerEvent;
  readonly batchSize: number;
  /**
   * The baseline in the same run: write units per event of a runtime that holds no stream and
   * writes one checkpoint per stream per batch (the checkpoint-only floor), from this run's batches.
   */
  readonly unheldWriteUnitsPerEvent?: number;
}

function context(): Context {
  return lambdaContext({
    functionName: 'bench-subscription',
    memoryLimitInMB: '256',
    awsRequestId: `bench-${Math.random().toString(36).slice(2)}`,
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => 600_000,
  });
}

async function checkpointTable(client: DynamoDBClient, name: string): Promise<string> {
  await client.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [{ AttributeName: CheckpointKeys.partitionKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: CheckpointKeys.partitionKey, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  return name;
}

/** The claims table (docs/ARCHITECTURE.md, "Subscriptions"): the live path holds streams by claims. */
async function claimsTable(client: DynamoDBClient, name: string): Promise<string> {
  await client.send(new CreateTableCommand(claimsTableDefinition(name)));
  return name;
}

function perEvent(events: number, units: { read: number; write: number }): UnitsPerEvent {
  return {
    events,
    readUnits: units.read,
    writeUnits: units.write,
    readUnitsPerEvent: units.read / events,
    writeUnitsPerEvent: units.write / events,
  };
}

/** Write `eventsPerStream` events to each of `streams` streams; the events as stored, oldest version first. */
async function seedStreams(
  client: DynamoDBClient,
  eventTable: string,
  options: SubscriptionBenchOptions,
): Promise<StoredEvent[]> {
  const store = new DynamoDbEventStore({ client, tableName: eventTable });
  const appended: StoredEvent[] = [];
  for (let round = 1; round <= options.eventsPerStream; round += 1) {
    await Promise.all(
      Array.from({ length: options.streams }, async (_, index) => {
        const body = {
          Timestamp: 1596719980 + round,
          EventType: round === 1 ? 'ITEM_CREATED' : 'ITEM_UPDATED',
          ID: `bench-${index}`,
          EmitterId: 'bench',
          EmitterType: 'SYSTEM',
          Data: { round },
        };
        const parsed = parseEventBody(JSON.stringify(body));
        if (!parsed.ok) throw new Error(parsed.detail);
        if (parsed.kind !== 'event') throw new Error('bench seed made a group');
        const [outcome] = await store.appendToStream(body.ID, [parsed.event]);
        if (outcome?.status !== 'stored') throw new Error(`bench seed: ${JSON.stringify(outcome)}`);
      }),
    );
  }
  for (let index = 0; index < options.streams; index += 1)
    appended.push(...(await store.readStream(`bench-${index}`)).events);
  appended.sort((a, b) => a.Version - b.Version || a.ID.localeCompare(b.ID));
  return appended;
}

/** Seed the events, then measure the live path and a replay on them. */
export async function benchSubscription(
  client: DynamoDBClient,
  options: SubscriptionBenchOptions,
): Promise<SubscriptionBenchResult> {
  const batchSize = options.batchSize ?? 100;
  const eventTable = `${options.run}-sub-events`;
  await createEventTable(client, eventTable);
  const appended = await seedStreams(client, eventTable, options);
  const total = appended.length;

  const measure = async (
    name: string,
    drive: (
      handler: ReturnType<typeof createSubscriptionHandler>,
      checkpoints: DynamoDbCheckpointStore,
    ) => Promise<void>,
  ) => {
    const units = { read: 0, write: 0 };
    const table = await checkpointTable(client, `${options.run}-${name}-checkpoints`);
    const claims = await claimsTable(client, `${options.run}-${name}-claims`);
    const handler = createSubscriptionHandler({
      dynamo: client,
      config: {
        name,
        eventTable,
        checkpointTable: table,
        maxAttempts: 5,
        eventTypes: [],
        replayReadUnitsPerSecond: 1_000_000,
        claimsTable: claims,
      },
      project: () => undefined,
      onCapacity: (u) => {
        units.read += u.read;
        units.write += u.write;
      },
    });
    await drive(handler, new DynamoDbCheckpointStore({ client, tableName: table }));
    return units;
  };

  let streamBatches = 0;
  for (let start = 0; start < total; start += batchSize)
    streamBatches += new Set(appended.slice(start, start + batchSize).map((event) => event.ID)).size;
  const live = await measure('live', async (handler, checkpoints) => {
    await checkpoints.saveReplay({ ...initialReplayState(), status: 'done' });
    for (let start = 0; start < total; start += batchSize) {
      const records: DynamoDBRecord[] = appended.slice(start, start + batchSize).map((event, index) => ({
        eventName: 'INSERT',
        eventSource: 'aws:dynamodb',
        dynamodb: {
          SequenceNumber: String(start + index + 1).padStart(21, '0'),
          // aws-lambda's AttributeValue type and the SDK's marshall output are the same JSON shape.
          NewImage: marshall(event, { removeUndefinedValues: true }) as NonNullable<
            DynamoDBRecord['dynamodb']
          >['NewImage'],
        },
      }));
      const response = await handler({ Records: records }, context());
      if (response.batchItemFailures.length > 0) throw new Error('bench: the live batch failed');
    }
  });
  const replay = await measure('replay', async (handler) => {
    for (let run = 0; run < 100; run += 1) {
      const report = await handler({ replay: true }, context());
      if (report.state?.status === 'done') return;
    }
    throw new Error('bench: the replay did not finish');
  });
  return {
    live: perEvent(total, live),
    replay: perEvent(total, replay),
    batchSize,
    unheldWriteUnitsPerEvent: total === 0 ? 0 : streamBatches / total,
  };
}
