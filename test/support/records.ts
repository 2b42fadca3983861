import type { Context, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { createHash, randomUUID } from 'node:crypto';

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';

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

export interface SqsRecordOptions {
  /** @default a fresh UUID */
  readonly messageId?: string;
  /** A FIFO record of this message group (and a FIFO queue ARN). */
  readonly fifo?: { readonly groupId: string; readonly sequenceNumber?: string; readonly deduplicationId?: string };
  /** Message attributes as the producer set them, e.g. `{ RedriveCount: '2' }` (String values). */
  readonly messageAttributes?: Readonly<Record<string, string>>;
  /** @default '1' */
  readonly receiveCount?: number;
  /** @default `ingest` or `ingest.fifo` */
  readonly queueName?: string;
}

let sequence = 10_000_000_000_000_000_000n;

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
      SentTimestamp: String(now - 5),
      SenderId: 'AIDAIENQZJOLO23YVJ4VO',
      ApproximateFirstReceiveTimestamp: String(now),
      ...(options.fifo
        ? {
            MessageGroupId: options.fifo.groupId,
            SequenceNumber: options.fifo.sequenceNumber ?? String(sequence),
            MessageDeduplicationId: options.fifo.deduplicationId ?? createHash('sha256').update(text).digest('hex'),
          }
        : {}),
    },
    messageAttributes,
    md5OfBody: createHash('md5').update(text).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:${REGION}:${ACCOUNT}:${queueName}`,
    awsRegion: REGION,
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

/** A Lambda context like the runtime's, with a 30 s timeout from now. */
export function lambdaContext(overrides: Partial<Context> = {}): Context {
  const deadline = Date.now() + 30_000;
  const functionName = 'EventStore-IngestFunction';
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${functionName}`,
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
