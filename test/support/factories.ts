/**
 * The one place tests (and `bench/`) build events, SQS records, Lambda contexts and drain
 * queues. No `vitest` import here, so `bench/` can use it too (the seeded PRNG is bench's:
 * `seededRandom` in `bench/workload.ts`).
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { createHash, randomUUID } from 'node:crypto';
import { parseEvent, type ValidEvent, type ValidGroup } from '../../core/event.ts';
import { LOCAL_ACCOUNT, LOCAL_REGION, localFunctionArn } from '../../local/defaults.ts';

/** An event body as a producer sends it: the original design's example, with a fresh `ID`. */
export interface EventBody {
  Timestamp?: number | string;
  EventType?: string;
  ID?: string;
  EmitterId?: string;
  EmitterType?: string;
  Data?: Record<string, unknown>;
  EventId?: string;
  ExpectedVersion?: number;
  [field: string]: unknown;
}

/**
 * A valid event (the original design's `EVENT_EXAMPLE`); `overrides` replace fields, and a
 * field set to `undefined` is left out.
 */
export function validEvent(overrides: EventBody = {}): EventBody {
  const event: EventBody = {
    Timestamp: 1596719980,
    EventType: 'EVENT_EXAMPLE',
    ID: `entity-${randomUUID()}`,
    EmitterId: 'emitter-1',
    EmitterType: 'SYSTEM',
    Data: { example: 'value', amount: 42 },
    ...overrides,
  };
  for (const key of Object.keys(event)) if (event[key] === undefined) delete event[key];
  return event;
}

/**
 * {@link validEvent} checked against the event contract: what a store's `appendToStream`
 * takes. Not checked against DynamoDB's item limits (that is `parseEventBody`), so a store's
 * own ItemTooLarge can be tested.
 */
export function parsedEvent(overrides: EventBody = {}): ValidEvent {
  const parsed = parseEvent(validEvent(overrides));
  if (!parsed.ok) throw new Error(`test event is invalid: ${parsed.detail}`);
  if (parsed.kind !== 'event') throw new Error('expected one event, got a group');
  return parsed.event;
}

/** A group message body as a producer sends it (docs/ARCHITECTURE.md, "Groups"). */
export interface GroupBody {
  ID?: string;
  ExpectedVersion?: number;
  Events?: EventBody[];
  [field: string]: unknown;
}

/**
 * A valid group of `events` (a count, or one override object per event, each applied to
 * {@link validEvent} without `ID`) of a fresh stream unless `overrides.ID` says otherwise;
 * `overrides` replace top-level fields, and a field set to `undefined` is left out.
 */
export function validGroup(events: number | readonly EventBody[], overrides: GroupBody = {}): GroupBody {
  const bodies = typeof events === 'number' ? Array.from({ length: events }, () => ({})) : events;
  const group: GroupBody = {
    ID: `entity-${randomUUID()}`,
    Events: bodies.map((event, index) => validEvent({ ID: undefined, Data: { example: 'value', index }, ...event })),
    ...overrides,
  };
  for (const key of Object.keys(group)) if (group[key] === undefined) delete group[key];
  return group;
}

/** {@link validGroup} checked against the contract: what a store's `appendGroup` takes (not checked against DynamoDB's limits). */
export function parsedGroup(events: number | readonly EventBody[], overrides: GroupBody = {}): ValidGroup {
  const parsed = parseEvent(validGroup(events, overrides));
  if (!parsed.ok) throw new Error(`test group is invalid: ${parsed.detail}`);
  if (parsed.kind !== 'group') throw new Error('expected a group, got one event');
  return parsed.group;
}

export interface SqsRecordOptions {
  /** @default a fresh UUID */
  readonly messageId?: string;
  /**
   * A FIFO record of this message group (and a FIFO queue ARN). A `sequenceNumber` given as a
   * number is written as SQS writes one: 20 digits, zero-padded.
   * @default sequenceNumber: increasing over the run; deduplicationId: the body's SHA-256
   */
  readonly fifo?: {
    readonly groupId: string;
    readonly sequenceNumber?: string | number;
    readonly deduplicationId?: string;
  };
  /** Message attributes as the producer set them, e.g. `{ RedriveCount: '2' }` (String values). */
  readonly messageAttributes?: Readonly<Record<string, string>>;
  /** @default '1' */
  readonly receiveCount?: number;
  /** When the producer sent the message, epoch ms (SQS keeps it across redeliveries). @default 5 ms ago */
  readonly sentTimestamp?: number;
  /** @default `ingest` or `ingest.fifo` */
  readonly queueName?: string;
}

let sequence = 10_000_000_000_000_000_000n;

function sequenceNumberOf(given: string | number | undefined): string {
  if (typeof given === 'number') return String(given).padStart(20, '0');
  return given ?? String(sequence);
}

/**
 * One SQS record as Lambda hands it to the function: string or object body (objects are
 * JSON-encoded), realistic system attributes, a FIFO group and sequence number when asked.
 */
export function sqsRecord(body: string | EventBody, options: SqsRecordOptions = {}): SQSRecord {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const now = Date.now();
  const queueName = options.queueName ?? (options.fifo ? 'ingest.fifo' : 'ingest');
  const messageAttributes: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(options.messageAttributes ?? {})) {
    messageAttributes[name] = { stringValue: value, stringListValues: [], binaryListValues: [], dataType: 'String' };
  }
  sequence += 1n;
  return {
    messageId: options.messageId ?? randomUUID(),
    receiptHandle: `AQEB${randomUUID().replaceAll('-', '')}`,
    body: text,
    attributes: {
      ApproximateReceiveCount: String(options.receiveCount ?? 1),
      SentTimestamp: String(options.sentTimestamp ?? now - 5),
      SenderId: 'AIDAIENQZJOLO23YVJ4VO',
      ApproximateFirstReceiveTimestamp: String(now),
      ...(options.fifo
        ? {
            MessageGroupId: options.fifo.groupId,
            SequenceNumber: sequenceNumberOf(options.fifo.sequenceNumber),
            MessageDeduplicationId: options.fifo.deduplicationId ?? createHash('sha256').update(text).digest('hex'),
          }
        : {}),
    },
    messageAttributes,
    md5OfBody: createHash('md5').update(text).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${queueName}`,
    awsRegion: LOCAL_REGION,
  };
}

/** The Lambda event for a batch of records. */
export function sqsEvent(records: readonly SQSRecord[]): SQSEvent {
  return { Records: [...records] };
}

/** A FIFO batch of one group, in order: each body a record of group `groupId`. */
export function fifoBatch(groupId: string, bodies: readonly (string | EventBody)[]): SQSEvent {
  return sqsEvent(bodies.map((body) => sqsRecord(body, { fifo: { groupId } })));
}

/**
 * A Lambda context like the runtime's, with a 30 s timeout from now; the function's ARN and
 * log group follow `overrides.functionName`.
 */
export function lambdaContext(overrides: Partial<Context> = {}): Context {
  const deadline = Date.now() + 30_000;
  const functionName = overrides.functionName ?? 'EventStore-IngestFunction';
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: localFunctionArn(functionName),
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `2026/01/01/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
    ...overrides,
  };
}

export interface DrainOptions {
  /** Delete what was received (the queue is empty after), rather than leave it in flight. @default false */
  readonly delete?: boolean;
  /** How long what is kept stays invisible, seconds. @default 300 */
  readonly visibilityTimeout?: number;
  /**
   * Stop after this many empty receives in a row. More than one for a FIFO queue drained with
   * `delete`: a group whose messages were just deleted may come back only on the next receive.
   * @default 1
   */
  readonly emptyReceives?: number;
}

/**
 * Every message a queue holds right now, in receive order, with all message and system
 * attributes (receives of 10, no long polling: for a queue whose senders already returned,
 * such as the handler's dead-letter queue after the handler resolved).
 */
export async function drainQueue(sqs: SQSClient, queueUrl: string, options: DrainOptions = {}): Promise<Message[]> {
  const messages: Message[] = [];
  for (let empty = 0; empty < (options.emptyReceives ?? 1);) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: options.visibilityTimeout ?? 300,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    empty = Messages.length === 0 ? empty + 1 : 0;
    messages.push(...Messages);
    if (options.delete && Messages.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })),
        }),
      );
    }
  }
  return messages;
}
