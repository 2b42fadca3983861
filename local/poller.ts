import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { Limits } from '../core/keys.ts';
import { localFunctionArn } from './defaults.ts';

/** The function a poller feeds: the ingest handler's signature. */
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface PollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly region: string;
  readonly handler: SqsHandler;
  /** Records per invocation (the event source mapping's BatchSize). */
  readonly batchSize: number;
  /** How long to gather records before invoking (MaximumBatchingWindowInSeconds). */
  readonly batchingWindowSeconds: number;
  /** Long-poll wait per ReceiveMessage. @default 2 (short, so that stop() is prompt) */
  readonly waitTimeSeconds?: number;
  /** The function timeout the Lambda context counts down from. @default 30 */
  readonly timeoutSeconds?: number;
  /** Name shown in the Lambda context. @default 'event-store-ingest' */
  readonly functionName?: string;
  /** Called once per invocation, after the handler returned (or threw). */
  readonly onBatch?: (report: BatchReport) => void;
  /** Called when receiving or deleting fails; the poller keeps going. */
  readonly onError?: (error: Error) => void;
  /** Called when a batch has been received, before the handler runs. */
  readonly onReceive?: (records: readonly SQSRecord[]) => void;
}

export interface BatchReport {
  readonly received: number;
  readonly deleted: number;
  /** Reported failed by the handler (or all, when the handler threw): left to become visible again. */
  readonly failed: number;
  readonly error?: Error;
}

/** SQS's message attributes in the shape Lambda hands them to a function. */
export function lambdaMessageAttributes(
  attributes: Record<string, MessageAttributeValue> | undefined,
): SQSMessageAttributes {
  const shaped: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    shaped[name] = {
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') } : {}),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((item) => Buffer.from(item).toString('base64')),
      dataType: value.DataType ?? 'String',
    };
  }
  return shaped;
}

/** One received SQS message as a Lambda `SQSRecord`. */
export function toSqsRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const system = message.Attributes ?? {};
  const attributes: SQSRecord['attributes'] = {
    ApproximateReceiveCount: system['ApproximateReceiveCount'] ?? '1',
    SentTimestamp: system['SentTimestamp'] ?? String(Date.now()),
    SenderId: system['SenderId'] ?? 'local',
    ApproximateFirstReceiveTimestamp: system['ApproximateFirstReceiveTimestamp'] ?? String(Date.now()),
    ...(system['SequenceNumber'] !== undefined ? { SequenceNumber: system['SequenceNumber'] } : {}),
    ...(system['MessageGroupId'] !== undefined ? { MessageGroupId: system['MessageGroupId'] } : {}),
    ...(system['MessageDeduplicationId'] !== undefined
      ? { MessageDeduplicationId: system['MessageDeduplicationId'] }
      : {}),
    ...(system['AWSTraceHeader'] !== undefined ? { AWSTraceHeader: system['AWSTraceHeader'] } : {}),
  };
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes,
    messageAttributes: lambdaMessageAttributes(message.MessageAttributes),
    md5OfBody: message.MD5OfBody ?? '',
    ...(message.MD5OfMessageAttributes !== undefined ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

function lambdaContext(functionName: string, region: string, timeoutMs: number): Context {
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: localFunctionArn(functionName, region),
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** How long the poller's own SQS calls may take beyond their long poll before they are abandoned. */
const SQS_CALL_TIMEOUT_SECONDS = 10;

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * A consumer that behaves like Lambda's SQS event source mapping: it long-polls the queue,
 * gathers up to `batchSize` records within the batching window, invokes the handler with a
 * Lambda-shaped `SQSEvent`, deletes every record the partial-batch response did not name,
 * and leaves the rest to become visible again (all of them when the handler throws).
 *
 * @example
 * ```ts
 * const poller = new Poller({ sqs, queueUrl, queueArn, region: 'us-east-1', handler, batchSize: 10, batchingWindowSeconds: 0 });
 * poller.start();
 * await poller.stop(); // finishes the batch in flight
 * ```
 */
export class Poller {
  readonly #options: PollerOptions;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;

  public constructor(options: PollerOptions) {
    this.#options = options;
  }

  public start(): void {
    this.#running ??= this.#loop();
  }

  /** Stop receiving; the batch in flight is handled and acknowledged before this resolves. */
  public async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      let messages: Message[];
      try {
        messages = await this.#gather();
      } catch (error) {
        if (this.#stopped) break;
        this.#options.onError?.(asError(error));
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      if (messages.length > 0) await this.#invoke(messages);
    }
  }

  async #receive(max: number, waitSeconds: number): Promise<Message[]> {
    const { sqs, queueUrl } = this.#options;
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(Limits.maxSqsBatch, max),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      // A receive that hangs past its long poll is abandoned, as Lambda's poller would.
      {
        abortSignal: AbortSignal.any([
          this.#abort.signal,
          AbortSignal.timeout((waitSeconds + SQS_CALL_TIMEOUT_SECONDS) * 1000),
        ]),
      },
    );
    return received.Messages ?? [];
  }

  /** Receive like the event source mapping: until the batch is full or the window has passed. */
  async #gather(): Promise<Message[]> {
    const { batchSize, batchingWindowSeconds } = this.#options;
    const wait = this.#options.waitTimeSeconds ?? 2;
    const batch = await this.#receive(batchSize, wait);
    if (batch.length === 0 || batchingWindowSeconds <= 0) return batch;
    const deadline = Date.now() + batchingWindowSeconds * 1000;
    while (batch.length < batchSize && Date.now() < deadline && !this.#stopped) {
      const left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
      let more: Message[];
      try {
        more = await this.#receive(batchSize - batch.length, Math.min(wait, left));
      } catch (error) {
        if (this.#stopped) break;
        throw error;
      }
      batch.push(...more);
      if (more.length === 0 && left === 0) break;
    }
    return batch;
  }

  async #invoke(messages: Message[]): Promise<void> {
    const { queueArn, region, handler, sqs, queueUrl } = this.#options;
    const records = messages.map((message) => toSqsRecord(message, queueArn, region));
    this.#options.onReceive?.(records);
    let failedIds: Set<string>;
    let error: Error | undefined;
    const timeoutMs = (this.#options.timeoutSeconds ?? 30) * 1000;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Like Lambda: an invocation that outlives the function timeout fails as a whole.
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Task timed out after ${timeoutMs / 1000} seconds`)), timeoutMs);
      });
      const response = await Promise.race([
        handler(
          { Records: records },
          lambdaContext(this.#options.functionName ?? 'event-store-ingest', region, timeoutMs),
        ),
        timedOut,
      ]);
      failedIds = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    } catch (thrown) {
      // Like Lambda: a function error fails the whole batch; every record becomes visible again.
      error = asError(thrown);
      failedIds = new Set(records.map((record) => record.messageId));
    } finally {
      clearTimeout(timer);
    }
    const done = records.filter((record) => !failedIds.has(record.messageId));
    for (let start = 0; start < done.length; start += Limits.maxSqsBatch) {
      const chunk = done.slice(start, start + Limits.maxSqsBatch);
      try {
        const deleted = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle })),
          }),
          { abortSignal: AbortSignal.timeout(SQS_CALL_TIMEOUT_SECONDS * 1000) },
        );
        for (const failure of deleted.Failed ?? []) {
          this.#options.onError?.(
            new Error(`could not delete message ${chunk[Number(failure.Id)]?.messageId}: ${failure.Message}`),
          );
        }
      } catch (thrown) {
        // Not deleted: the message becomes visible again and the store recognises the duplicate.
        this.#options.onError?.(asError(thrown));
      }
    }
    this.#options.onBatch?.({
      received: records.length,
      deleted: done.length,
      failed: failedIds.size,
      ...(error ? { error } : {}),
    });
  }
}
