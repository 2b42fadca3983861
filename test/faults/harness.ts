import { QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { parseEventBody } from '../../core/event.ts';
import { TableKeys } from '../../core/keys.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { drainQueue, lambdaContext, sqsRecord, validEvent } from '../support/factories.ts';
import { createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { afterAll, beforeAll } from 'vitest';

/** One message as a test sends it. */
export interface TestMessage {
  readonly messageId: string;
  readonly body: string;
}

export type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** A valid event body for `streamId`; `n` makes it distinct. */
export function eventBody(streamId: string, n: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify(
    validEvent({
      Timestamp: 1_763_900_000 + n,
      EventType: 'ORDER_UPDATED',
      ID: streamId,
      EmitterId: 'faults',
      Data: { n },
      ...extra,
    }),
  );
}

/** The stream id and EventId a valid body gets stored under. */
export function identityOf(body: string): { streamId: string; eventId: string } {
  const parsed = parseEventBody(body);
  if (!parsed.ok) throw new Error(`not a valid body: ${parsed.detail}`);
  if (parsed.kind !== 'event') throw new Error('expected one event, got a group');
  return { streamId: parsed.event.ID, eventId: parsed.event.EventId };
}

/** Every item of a stream, oldest first: version and EventId. */
export async function readItems(
  client: DynamoDBClient,
  tableName: string,
  streamId: string,
): Promise<{ version: number; eventId: string }[]> {
  const items: { version: number; eventId: string }[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: '#id = :id',
        ExpressionAttributeNames: { '#id': TableKeys.partitionKey },
        ExpressionAttributeValues: { ':id': { S: streamId } },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      items.push({ version: Number(item[TableKeys.sortKey]?.N), eventId: String(item['EventId']?.S) });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/**
 * Check that every expected event of every stream is stored exactly once, with versions
 * 1..n and nothing else in the stream. Returns a list of problems (empty when all is well).
 */
export async function exactlyOnceProblems(
  client: DynamoDBClient,
  tableName: string,
  expected: ReadonlyMap<string, ReadonlySet<string>>,
): Promise<string[]> {
  const problems: string[] = [];
  for (const [streamId, eventIds] of expected) {
    const items = await readItems(client, tableName, streamId);
    const versions = items.map((item) => item.version);
    if (versions.some((version, index) => version !== index + 1)) {
      problems.push(`${streamId}: versions not gapless: ${versions.join(',')}`);
    }
    const counts = new Map<string, number>();
    for (const item of items) counts.set(item.eventId, (counts.get(item.eventId) ?? 0) + 1);
    for (const eventId of eventIds) {
      const count = counts.get(eventId) ?? 0;
      if (count !== 1) problems.push(`${streamId}: event ${eventId} stored ${count} times`);
    }
    for (const eventId of counts.keys()) {
      if (!eventIds.has(eventId)) problems.push(`${streamId}: unexpected event ${eventId}`);
    }
  }
  return problems;
}

/** Expected EventIds per stream, from bodies. */
export function expectedEvents(messages: readonly TestMessage[]): Map<string, Set<string>> {
  const expected = new Map<string, Set<string>>();
  for (const message of messages) {
    const { streamId, eventId } = identityOf(message.body);
    const set = expected.get(streamId) ?? new Set<string>();
    set.add(eventId);
    expected.set(streamId, set);
  }
  return expected;
}

export interface DeadLetter {
  readonly body: string;
  readonly sourceMessageId: string | undefined;
  readonly reason: string | undefined;
  readonly detail: string | undefined;
}

/** Receive and delete everything in the DLQ right now (the handler awaited its sends). */
export async function drainDeadLetters(client: SQSClient, queueUrl: string): Promise<DeadLetter[]> {
  return (await drainQueue(client, queueUrl, { delete: true })).map((message) => {
    const attributes = message.MessageAttributes ?? {};
    return {
      body: message.Body ?? '',
      sourceMessageId: attributes[MessageAttributeNames.sourceMessageId]?.StringValue,
      reason: attributes[MessageAttributeNames.rejectionReason]?.StringValue,
      detail: attributes[MessageAttributeNames.rejectionDetail]?.StringValue,
    };
  });
}

/**
 * Deliver `messages` in batches of `batchSize`, one batch at a time, as SQS would: a record
 * the handler reports failed is delivered again, at the back of the queue (standard) or
 * before anything after it (FIFO: a failed record blocks its group, and Powertools fails
 * the rest of its group in the batch too), until nothing is left or `maxBatches` ran.
 */
export async function deliverUntilDone(
  handler: Handler,
  messages: readonly TestMessage[],
  options: {
    fifo: boolean;
    batchSize: number;
    maxBatches: number;
    beforeBatch?: (batchIndex: number) => Promise<void>;
  },
): Promise<{ batches: number; failedRecords: number; pending: readonly TestMessage[] }> {
  let queue = [...messages];
  let failedRecords = 0;
  let batches = 0;
  const receives = new Map<string, number>();
  const sequence = new Map(messages.map((message, index) => [message.messageId, index]));
  while (queue.length > 0 && batches < options.maxBatches) {
    await options.beforeBatch?.(batches);
    batches += 1;
    const batch = queue.slice(0, options.batchSize);
    queue = queue.slice(batch.length);
    const records = batch.map((message) => {
      const receiveCount = (receives.get(message.messageId) ?? 0) + 1;
      receives.set(message.messageId, receiveCount);
      const groupId = options.fifo ? identityOf(message.body).streamId : undefined;
      return sqsRecord(message.body, {
        messageId: message.messageId,
        receiveCount,
        fifo: groupId ? { groupId, sequenceNumber: sequence.get(message.messageId) ?? 0 } : undefined,
      });
    });
    const response = await handler({ Records: records }, lambdaContext());
    const failedIds = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    failedRecords += failedIds.size;
    const failed = batch.filter((message) => failedIds.has(message.messageId));
    if (options.fifo) {
      // Later messages of a failed group wait behind it: move them back too, in order.
      const blocked = new Set(failed.map((message) => identityOf(message.body).streamId));
      const held = queue.filter((message) => blocked.has(identityOf(message.body).streamId));
      queue = [...failed, ...held, ...queue.filter((message) => !blocked.has(identityOf(message.body).streamId))];
    } else {
      queue = [...queue, ...failed];
    }
  }
  return { batches, failedRecords, pending: queue };
}

/**
 * A fault suite's engines: its own table, an SQS client, and fresh DynamoDB clients with one
 * attempt each (a "container" that dies at the first fault); everything destroyed after.
 */
export function faultSuite(prefix: string): {
  readonly admin: DynamoDBClient;
  readonly sqs: SQSClient;
  tableName(): string;
  freshClient(): DynamoDBClient;
} {
  const admin = dynamoClient();
  const sqs = sqsClient();
  const clients: DynamoDBClient[] = [];
  let tableName = '';
  beforeAll(async () => {
    tableName = await createTestTable(admin, prefix);
  });
  afterAll(() => {
    admin.destroy();
    sqs.destroy();
    for (const client of clients) client.destroy();
  });
  return {
    admin,
    sqs,
    tableName: () => tableName,
    freshClient() {
      const client = dynamoClient({ maxAttempts: 1 });
      clients.push(client);
      return client;
    },
  };
}
