import {
  CreateTableCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  waitUntilTableExists,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { parseEventBody } from '../core/event.ts';
import { emptyCounts, meterCapacity, type CapacityCounts } from './capacity.ts';
import type { ConsumerRequests } from './direct.ts';
import { percentile, runLanes } from './records.ts';
import type { Workload } from './workload.ts';

/**
 * THE ORIGINAL DESIGN'S WRITE PATH (the baseline), rebuilt for comparison, not part of the
 * project: a table keyed `ID` (hash) + `Timestamp` (range), and one unconditional `PutItem`
 * per valid event, the records of a batch one after the other. Two events of one entity in
 * the same second overwrite each other, silently.
 */
export async function createBaselineTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [
        { AttributeName: 'ID', AttributeType: 'S' },
        { AttributeName: 'Timestamp', AttributeType: 'N' },
      ],
      KeySchema: [
        { AttributeName: 'ID', KeyType: 'HASH' },
        { AttributeName: 'Timestamp', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: tableName });
}

export interface PathResult {
  readonly label: string;
  readonly messages: number;
  readonly validEvents: number;
  readonly itemsStored: number;
  readonly distinctEventsStored: number;
  readonly duplicatesStored: number;
  readonly lostEvents: number;
  readonly counts: CapacityCounts;
  readonly wallMs: number;
  readonly latenciesMs: readonly number[];
  readonly invocations: number;
  /** Sum of the invocations' durations (ms): Lambda bills these. */
  readonly invocationMsTotal: number;
  readonly retriedRecords: number;
  readonly cpuMicrosPerEvent?: number;
  /** Conditional puts that lost (the store's onConflict, as the handler's AppendConflicts metric counts them). */
  readonly appendConflicts?: number;
  /** Containers started: each starts with an empty store cache. */
  readonly containersStarted?: number;
  /** SQS requests of the consumer side (receive, delete) for this run. */
  readonly consumerRequests: ConsumerRequests;
  readonly notes: readonly string[];
}

/** An item unmarshalled to the few attributes the bench checks. */
function checkedAttributes(item: Record<string, AttributeValue>): Record<string, unknown> {
  return {
    ID: item['ID']?.S,
    Version: item['Version']?.N === undefined ? undefined : Number(item['Version'].N),
    Timestamp: item['Timestamp']?.N ?? item['Timestamp']?.S,
    EventId: item['EventId']?.S,
    RecordedAt: item['RecordedAt']?.S,
    Sequence: item['Data']?.M?.['sequence']?.N,
  };
}

/** Every item of a table, unmarshalled to the few attributes the bench checks. */
export async function scanTable(client: DynamoDBClient, tableName: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: startKey }));
    for (const item of page.Items ?? []) items.push(checkedAttributes(item));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** The items of one stream above `afterVersion` (an event table, keyed ID + Version). */
export async function queryStreamAfter(
  client: DynamoDBClient,
  tableName: string,
  streamId: string,
  afterVersion: number,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'ID = :id AND Version > :after',
        ExpressionAttributeValues: { ':id': { S: streamId }, ':after': { N: String(afterVersion) } },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) items.push(checkedAttributes(item));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** Run the original design's write path over the standard-order workload. */
export async function runBaseline(
  client: DynamoDBClient,
  scanClient: DynamoDBClient,
  tableName: string,
  workload: Workload,
  options: { concurrency: number; batchSize: number },
): Promise<PathResult> {
  const counts = meterCapacity(client, emptyCounts());
  const messages = workload.standardOrder;
  const latencies: number[] = [];
  let cursor = 0;
  let invocations = 0;
  let invocationMsTotal = 0;
  const wallMs = await runLanes(options.concurrency, async () => {
    if (cursor >= messages.length) return false;
    const batch = messages.slice(cursor, cursor + options.batchSize);
    cursor += batch.length;
    invocations += 1;
    const handedAt = performance.now();
    for (const message of batch) {
      const parsed = parseEventBody(message.body);
      if (!parsed.ok || parsed.kind !== 'event') continue;
      const { EventId: _derived, ...event } = parsed.event;
      await client.send(
        new PutItemCommand({ TableName: tableName, Item: marshall(event, { removeUndefinedValues: true }) }),
      );
      latencies.push(performance.now() - handedAt);
    }
    invocationMsTotal += performance.now() - handedAt;
    return true;
  });
  const items = await scanTable(scanClient, tableName);
  return {
    label: 'original design (baseline)',
    messages: messages.length,
    validEvents: workload.uniqueEvents,
    itemsStored: items.length,
    distinctEventsStored: items.length,
    duplicatesStored: 0,
    lostEvents: workload.uniqueEvents - items.length,
    counts,
    wallMs,
    latenciesMs: latencies,
    invocations,
    invocationMsTotal,
    retriedRecords: 0,
    consumerRequests: { receives: invocations, deletes: invocations },
    notes: [
      'baseline latency: batch handed to the writer -> its PutItem returned (no RecordedAt in the original items)',
      `p50 ${percentile(latencies, 50).toFixed(1)} ms`,
    ],
  };
}
