import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Limits } from '../core/keys.ts';
import type { DeadLetterMessage, OutgoingMessage } from '../core/redrive.ts';
import type { ReceiveRequest, RedriveQueues } from '../core/redrive-run.ts';

export interface SqsRedriveQueuesOptions {
  readonly client: SQSClient;
  /** The dead-letter queue the redrive drains; a URL ending in `.fifo` makes its receives FIFO receives. */
  readonly deadLetterQueueUrl: string;
  /** The ingest queue it sends back to; a URL ending in `.fifo` makes the sends FIFO sends. */
  readonly sourceQueueUrl: string;
}

/** SQS's batch calls take at most 10 entries (core/keys.ts). */
const SQS_BATCH = Limits.maxSqsBatch;

/**
 * Per-entry answers to a release that mean the message is no longer hidden by this run: it is
 * visible already (a retried `finish`), or its handle is stale (its hold ran out). Some
 * SQS-compatible servers prefix the code with `AWS.SimpleQueueService.`.
 */
const NOT_HELD = new Set(['MessageNotInflight', 'ReceiptHandleIsInvalid']);

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

type EntryFailure = { Id?: string | undefined; Code?: string | undefined; Message?: string | undefined };

/**
 * The redrive's SQS calls (core/redrive-run.ts `RedriveQueues`): receive from the DLQ, send to
 * the source queue, delete, hold and release on the DLQ. Batch calls report each entry's failure.
 *
 * @example
 * ```ts
 * const queues = new SqsRedriveQueues({ client: new SQSClient({}), deadLetterQueueUrl, sourceQueueUrl });
 * const messages = await queues.receive({ max: 10, visibilityTimeoutSeconds: 90, waitSeconds: 1, attemptId: 'a1' });
 * ```
 */
export class SqsRedriveQueues implements RedriveQueues {
  readonly #client: SQSClient;
  readonly #dlq: string;
  readonly #source: string;
  readonly #fifo: boolean;
  readonly #fifoDlq: boolean;

  public constructor(options: SqsRedriveQueuesOptions) {
    this.#client = options.client;
    this.#dlq = options.deadLetterQueueUrl;
    this.#source = options.sourceQueueUrl;
    this.#fifo = options.sourceQueueUrl.endsWith('.fifo');
    this.#fifoDlq = options.deadLetterQueueUrl.endsWith('.fifo');
  }

  public async receive(request: ReceiveRequest): Promise<DeadLetterMessage[]> {
    const { Messages = [] } = await this.#client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.#dlq,
        MaxNumberOfMessages: request.max,
        VisibilityTimeout: request.visibilityTimeoutSeconds,
        // Long polling asks every SQS server: an empty answer means the DLQ holds nothing visible.
        WaitTimeSeconds: request.waitSeconds,
        MessageSystemAttributeNames: ['MessageGroupId', 'SentTimestamp'],
        MessageAttributeNames: ['All'],
        // FIFO only: the SDK's retry of a receive whose response was lost gets the same messages.
        ...(this.#fifoDlq ? { ReceiveRequestAttemptId: request.attemptId } : {}),
      }),
    );
    return Messages.map((message) => ({
      MessageId: message.MessageId!,
      ReceiptHandle: message.ReceiptHandle!,
      Body: message.Body,
      Attributes: message.Attributes,
      MessageAttributes: message.MessageAttributes as DeadLetterMessage['MessageAttributes'],
    }));
  }

  public async send(message: OutgoingMessage): Promise<void> {
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.#source,
        MessageBody: message.body,
        MessageAttributes: message.messageAttributes,
        ...(this.#fifo ? { MessageGroupId: message.groupId, MessageDeduplicationId: message.deduplicationId } : {}),
      }),
    );
  }

  public delete(receiptHandles: readonly string[]): Promise<(string | null)[]> {
    return this.#batches(receiptHandles, async (entries) => {
      const { Failed = [] } = await this.#client.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.#dlq, Entries: entries }),
      );
      return Failed;
    });
  }

  public hold(receiptHandles: readonly string[], seconds: number): Promise<(string | null)[]> {
    return this.#changeVisibility(receiptHandles, seconds);
  }

  public async release(receiptHandles: readonly string[]): Promise<(string | null)[]> {
    const results = await this.#changeVisibility(receiptHandles, 0);
    return results.map((result) =>
      result !== null && NOT_HELD.has(result.replace(/^AWS\.SimpleQueueService\./, '').split(':')[0]!) ? null : result,
    );
  }

  #changeVisibility(receiptHandles: readonly string[], seconds: number): Promise<(string | null)[]> {
    return this.#batches(receiptHandles, async (entries) => {
      const { Failed = [] } = await this.#client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.#dlq,
          Entries: entries.map((entry) => ({ ...entry, VisibilityTimeout: seconds })),
        }),
      );
      return Failed;
    });
  }

  async #batches(
    receiptHandles: readonly string[],
    call: (entries: { Id: string; ReceiptHandle: string }[]) => Promise<EntryFailure[]>,
  ): Promise<(string | null)[]> {
    const results: (string | null)[] = receiptHandles.map(() => null);
    for (let start = 0; start < receiptHandles.length; start += SQS_BATCH) {
      const entries = receiptHandles
        .slice(start, start + SQS_BATCH)
        .map((handle, offset) => ({ Id: String(start + offset), ReceiptHandle: handle }));
      try {
        for (const failed of await call(entries)) {
          results[Number(failed.Id)] = `${failed.Code ?? 'Error'}: ${failed.Message ?? ''}`.trim();
        }
      } catch (error) {
        for (const entry of entries) results[Number(entry.Id)] = errorText(error);
      }
    }
    return results;
  }
}
