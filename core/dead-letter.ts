import type { RejectionReason } from './reasons.ts';

/** What it takes to dead-letter one message (docs/ARCHITECTURE.md, "One fate per record"). */
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
  readonly sourceGroupId?: string | undefined;
  readonly streamId?: string | undefined;
}

/** Where rejected events go: the dead-letter queue (adapters/sqs-rejecter.ts). */
export interface DeadLetterSink {
  /**
   * Send one rejected message. Resolves once the DLQ has it.
   *
   * @throws DeadLetterRefusedError when the DLQ can never take it; any other error may pass.
   */
  reject(rejection: Rejection, options?: { readonly signal?: AbortSignal }): Promise<string | undefined>;
}

/**
 * The DLQ can never take this message, whatever is retried: its body alone is over the
 * queue's size limit, or SQS refused its content. The record is reported failed, and SQS's
 * own redrive policy moves it to the DLQ (without a reason) after `maxReceiveCount` deliveries.
 */
export class DeadLetterRefusedError extends Error {
  /** The body's size in UTF-8 bytes. */
  public readonly bodyBytes: number;
  /** The DLQ's message size limit in bytes. */
  public readonly maxMessageBytes: number;

  public constructor(message: string, sizes: { bodyBytes: number; maxMessageBytes: number }, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DeadLetterRefusedError';
    this.bodyBytes = sizes.bodyBytes;
    this.maxMessageBytes = sizes.maxMessageBytes;
  }
}
