import { createHash } from 'node:crypto';
import { SendMessageCommand, type MessageAttributeValue, type SQSClient } from '@aws-sdk/client-sqs';
import { FIFO_ID_PATTERN, fifoGroupId } from '../core/fifo.ts';
import type { RejectionReason } from '../core/reasons.ts';

/**
 * The message attributes a dead-lettered event carries. The redrive workflow reads the same
 * names (core/redrive.ts `RedriveAttributes`), so never rename one.
 */
export const RejectionAttributes = {
  reason: 'RejectionReason',
  detail: 'RejectionDetail',
  rejectedAt: 'RejectedAt',
  sourceMessageId: 'SourceMessageId',
  redriveCount: 'RedriveCount',
} as const;

/** `RejectionDetail` is cut to this many characters (the body itself is never changed). */
export const MAX_REJECTION_DETAIL_CHARS = 1000;

/** What the rejecter needs to dead-letter one message. */
export interface Rejection {
  /** The original message body, sent unchanged. */
  readonly body: string;
  readonly reason: RejectionReason;
  readonly detail: string;
  /** The message id of the source record: the DLQ message's `SourceMessageId` (and FIFO deduplication id). */
  readonly sourceMessageId: string;
  /** How often the event was redriven already (the source record's `RedriveCount`). @default '0' */
  readonly redriveCount?: string | undefined;
  /** FIFO DLQ message group: the stream id, else the source record's group, else the message id. */
  readonly streamId?: string | undefined;
  readonly sourceGroupId?: string | undefined;
}

export interface SqsRejecterOptions {
  readonly client: SQSClient;
  /** The dead-letter queue's URL; a URL ending in `.fifo` makes the sends FIFO sends. */
  readonly queueUrl: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/**
 * SQS allows only these characters in message attribute values (the XML 1.0 set); anything
 * else would fail the send, so it becomes U+FFFD. Lone surrogates are replaced too.
 */
function sqsSafe(text: string): string {
  return text
    .toWellFormed()
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');
}

function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max - 3)}...`;
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
  return value !== undefined && /^\d{1,9}$/.test(value.trim()) ? String(Number(value.trim())) : '0';
}

/**
 * Sends events that can never be stored to the dead-letter queue with the reason attached
 * (DESIGN section 5). A failed send throws (the SDK's error): the caller reports the record
 * failed, so it stays in the source queue and nothing is lost.
 *
 * @example
 * ```ts
 * const rejecter = new SqsRejecter({ client: new SQSClient({}), queueUrl: process.env.DLQ_URL! });
 * await rejecter.reject({ body: record.body, reason: 'SchemaViolation', detail: 'EventType: required field is missing',
 *   sourceMessageId: record.messageId });
 * ```
 */
export class SqsRejecter {
  readonly #client: SQSClient;
  readonly #queueUrl: string;
  readonly #fifo: boolean;
  readonly #now: () => Date;

  public constructor(options: SqsRejecterOptions) {
    this.#client = options.client;
    this.#queueUrl = options.queueUrl;
    this.#fifo = options.queueUrl.endsWith('.fifo');
    this.#now = options.now ?? (() => new Date());
  }

  /** Whether the DLQ is a FIFO queue (its URL ends in `.fifo`). */
  public get fifo(): boolean {
    return this.#fifo;
  }

  /** Send the original body to the DLQ with the rejection attributes; resolves to the DLQ's message id. */
  public async reject(rejection: Rejection): Promise<string | undefined> {
    const attributes: Record<string, MessageAttributeValue> = {
      [RejectionAttributes.reason]: stringAttribute(rejection.reason),
      [RejectionAttributes.detail]: stringAttribute(sqsSafe(cut(rejection.detail, MAX_REJECTION_DETAIL_CHARS))),
      [RejectionAttributes.rejectedAt]: stringAttribute(this.#now().toISOString()),
      [RejectionAttributes.sourceMessageId]: stringAttribute(rejection.sourceMessageId),
      [RejectionAttributes.redriveCount]: stringAttribute(normaliseRedriveCount(rejection.redriveCount)),
    };
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
    );
    return sent.MessageId;
  }
}
