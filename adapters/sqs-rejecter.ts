import { createHash } from 'node:crypto';
import { SendMessageCommand, type MessageAttributeValue, type SQSClient } from '@aws-sdk/client-sqs';
import { DeadLetterRefusedError, type DeadLetterSink, type Rejection } from '../core/dead-letter.ts';
import { FIFO_ID_PATTERN, fifoGroupId } from '../core/fifo.ts';
import { MessageAttributeNames, parseRedriveCount } from '../core/message-attributes.ts';

/**
 * The message attributes a dead-lettered event carries (core/message-attributes.ts): the
 * redrive workflow reads the same names.
 */
export const RejectionAttributes = {
  reason: MessageAttributeNames.rejectionReason,
  detail: MessageAttributeNames.rejectionDetail,
  rejectedAt: MessageAttributeNames.rejectedAt,
  sourceMessageId: MessageAttributeNames.sourceMessageId,
  redriveCount: MessageAttributeNames.redriveCount,
} as const;

/** `RejectionDetail` is cut to this many characters (the body itself is never changed). */
export const MAX_REJECTION_DETAIL_CHARS = 1000;

export interface SqsRejecterOptions {
  readonly client: SQSClient;
  /** The dead-letter queue's URL; a URL ending in `.fifo` makes the sends FIFO sends. */
  readonly queueUrl: string;
  /**
   * The DLQ's `MaximumMessageSize`: body and attributes (names, types and values) together
   * must fit. @default 1,048,576 (1 MiB, the most SQS allows)
   */
  readonly maxMessageBytes?: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/** SQS's largest message (body plus attributes). */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;

/**
 * SQS errors that say this message can never be sent as it is (too large, characters SQS
 * refuses, an attribute SQS refuses); everything else (throttling, network, 5xx, KMS) may pass.
 * Some SQS-compatible servers prefix the name with `AWS.SimpleQueueService.`.
 */
const REFUSED_MESSAGE_ERRORS = new Set([
  'InvalidParameterValue',
  'InvalidMessageContents',
  'InvalidAttributeValue',
  'InvalidAttributeName',
]);

function refusesMessage(error: unknown): boolean {
  const name = error instanceof Error ? error.name.replace(/^AWS\.SimpleQueueService\./, '') : '';
  return REFUSED_MESSAGE_ERRORS.has(name);
}

/** What SQS counts of a message attribute: its name, its data type and its value, in UTF-8 bytes. */
function attributeBytes(attributes: Record<string, MessageAttributeValue>): number {
  let total = 0;
  for (const [name, value] of Object.entries(attributes)) {
    total +=
      Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '') + Buffer.byteLength(value.StringValue ?? '');
  }
  return total;
}

/**
 * SQS allows only these characters in message attribute values (the XML 1.0 set); anything
 * else would fail the send, so it becomes U+FFFD. Lone surrogates are replaced too.
 */
function sqsSafe(text: string): string {
  return text.toWellFormed().replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');
}

function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max - 3)}...`;
}

/** Cut a text to at most `max` UTF-8 bytes (on a character boundary). */
function cutBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let end = Math.max(0, Math.min(text.length, max));
  while (end > 0 && Buffer.byteLength(text.slice(0, end)) > max - 3) end -= 1;
  return end > 0 ? `${text.slice(0, end).toWellFormed()}...` : '';
}

/**
 * The FIFO DLQ's message group: the stream id when SQS accepts it as a group id, else the
 * source record's group, else a hash of what identifies the message (core/fifo.ts, the rule
 * the redrive uses too).
 */
export const deadLetterGroupId = fifoGroupId;

function stringAttribute(value: string): MessageAttributeValue {
  // SQS refuses empty attribute values.
  return { DataType: 'String', StringValue: value.length > 0 ? value : '-' };
}

/** A redrive count as the source record carried it, or `0` when absent or not a count. */
export function normaliseRedriveCount(value: string | undefined): string {
  return String(parseRedriveCount(value));
}

/**
 * Sends events that can never be stored to the dead-letter queue with the reason attached
 * (docs/ARCHITECTURE.md, "One fate per record"). A failed send throws (the SDK's error): the caller reports the record
 * failed, so it stays in the source queue and nothing is lost.
 *
 * @example
 * ```ts
 * const rejecter = new SqsRejecter({ client: new SQSClient({}), queueUrl: process.env.DLQ_URL! });
 * await rejecter.reject({ body: record.body, reason: 'SchemaViolation', detail: 'EventType: required field is missing',
 *   sourceMessageId: record.messageId });
 * ```
 */
export class SqsRejecter implements DeadLetterSink {
  readonly #client: SQSClient;
  readonly #queueUrl: string;
  readonly #fifo: boolean;
  readonly #maxMessageBytes: number;
  readonly #now: () => Date;

  public constructor(options: SqsRejecterOptions) {
    this.#client = options.client;
    this.#queueUrl = options.queueUrl;
    this.#fifo = options.queueUrl.endsWith('.fifo');
    this.#maxMessageBytes = options.maxMessageBytes ?? SQS_MAX_MESSAGE_BYTES;
    this.#now = options.now ?? (() => new Date());
  }

  /** Whether the DLQ is a FIFO queue (its URL ends in `.fifo`). */
  public get fifo(): boolean {
    return this.#fifo;
  }

  /**
   * Send the original body to the DLQ with the rejection attributes; resolves to the DLQ's
   * message id. When body and attributes would be over the queue's size, `RejectionDetail` is
   * cut to what fits; when SQS refuses the message all the same, it is sent once more with
   * only the reason and the source message id.
   *
   * @throws DeadLetterRefusedError when the DLQ can never take the message (see there).
   * @throws the SDK's error for a failure that may pass (throttling, network): retry later.
   */
  public async reject(
    rejection: Rejection,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<string | undefined> {
    const bodyBytes = Buffer.byteLength(rejection.body);
    const sizes = { bodyBytes, maxMessageBytes: this.#maxMessageBytes };
    const essential: Record<string, MessageAttributeValue> = {
      [RejectionAttributes.reason]: stringAttribute(rejection.reason),
      [RejectionAttributes.sourceMessageId]: stringAttribute(rejection.sourceMessageId),
    };
    const full: Record<string, MessageAttributeValue> = {
      ...essential,
      [RejectionAttributes.rejectedAt]: stringAttribute(this.#now().toISOString()),
      [RejectionAttributes.redriveCount]: stringAttribute(normaliseRedriveCount(rejection.redriveCount)),
    };
    const room =
      this.#maxMessageBytes -
      bodyBytes -
      attributeBytes(full) -
      Buffer.byteLength(RejectionAttributes.detail) -
      'String'.length;
    if (bodyBytes + attributeBytes(essential) > this.#maxMessageBytes) {
      throw new DeadLetterRefusedError(
        `the body is ${bodyBytes} bytes: with its rejection reason it is over the DLQ's ${this.#maxMessageBytes}-byte message limit`,
        sizes,
      );
    }
    // The detail first loses its tail, then goes; the reason always travels.
    const fitsFull = bodyBytes + attributeBytes(full) <= this.#maxMessageBytes;
    const attributes =
      room >= 4
        ? {
            ...full,
            [RejectionAttributes.detail]: stringAttribute(
              cutBytes(sqsSafe(cut(rejection.detail, MAX_REJECTION_DETAIL_CHARS)), room),
            ),
          }
        : fitsFull
          ? full
          : essential;
    try {
      return await this.#send(rejection, attributes, options.signal);
    } catch (error) {
      if (!refusesMessage(error)) throw error;
    }
    try {
      return await this.#send(rejection, essential, options.signal);
    } catch (error) {
      if (!refusesMessage(error)) throw error;
      const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new DeadLetterRefusedError(
        `SQS refused the message twice (${why}); the body is ${bodyBytes} bytes`,
        sizes,
        { cause: error },
      );
    }
  }

  async #send(
    rejection: Rejection,
    attributes: Record<string, MessageAttributeValue>,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const fifo = this.#fifo
      ? {
          MessageGroupId: deadLetterGroupId(rejection.streamId, rejection.sourceGroupId, rejection.sourceMessageId),
          // The same source message rejected twice (e.g. its acknowledgement was lost) is sent once.
          MessageDeduplicationId: FIFO_ID_PATTERN.test(rejection.sourceMessageId)
            ? rejection.sourceMessageId
            : createHash('sha256').update(rejection.sourceMessageId).digest('hex'),
        }
      : {};
    const sent = await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.#queueUrl,
        MessageBody: rejection.body,
        MessageAttributes: attributes,
        ...fifo,
      }),
      { abortSignal: signal },
    );
    return sent.MessageId;
  }
}
