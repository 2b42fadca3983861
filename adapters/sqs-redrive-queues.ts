import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Limits } from '../core/keys.ts';
import type { DeadLetterMessage, OutgoingMessage, RedriveQueues } from '../core/redrive.ts';

export interface SqsRedriveQueuesOptions {
  readonly client: SQSClient;
  /** The dead-letter queue the redrive drains. */
  readonly deadLetterQueueUrl: string;
  /** The ingest queue it sends back to; a URL ending in `.fifo` makes the sends FIFO sends. */
  readonly sourceQueueUrl: string;
}

/** SQS's batch calls take at most 10 entries (core/keys.ts). */
const SQS_BATCH = Limits.maxSqsBatch;

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * The redrive's SQS calls (core/redrive.ts `RedriveQueues`): receive from the DLQ, send to the
 * source queue, delete and release on the DLQ. Batch calls report each entry's failure.
 *
 * @example
 * ```ts
 * const queues = new SqsRedriveQueues({ client: new SQSClient({}), deadLetterQueueUrl, sourceQueueUrl });
 * const messages = await queues.receive(10, 900);
 * ```
 */
export class SqsRedriveQueues implements RedriveQueues {
  readonly #client: SQSClient;
  readonly #dlq: string;
  readonly #source: string;
  readonly #fifo: boolean;

  public constructor(options: SqsRedriveQueuesOptions) {
    this.#client = options.client;
    this.#dlq = options.deadLetterQueueUrl;
    this.#source = options.sourceQueueUrl;
    this.#fifo = options.sourceQueueUrl.endsWith('.fifo');
  }

  public async receive(max: number, visibilityTimeoutSeconds: number): Promise<DeadLetterMessage[]> {
    const { Messages = [] } = await this.#client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.#dlq,
        MaxNumberOfMessages: max,
        VisibilityTimeout: visibilityTimeoutSeconds,
        // Long polling asks every SQS server: an empty answer means the DLQ holds nothing visible.
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['MessageGroupId'],
        MessageAttributeNames: ['All'],
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

  public release(receiptHandles: readonly string[]): Promise<(string | null)[]> {
    return this.#batches(receiptHandles, async (entries) => {
      const { Failed = [] } = await this.#client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.#dlq,
          Entries: entries.map((entry) => ({ ...entry, VisibilityTimeout: 0 })),
        }),
      );
      return Failed;
    });
  }

  async #batches(
    receiptHandles: readonly string[],
    call: (
      entries: { Id: string; ReceiptHandle: string }[],
    ) => Promise<{ Id?: string | undefined; Code?: string | undefined; Message?: string | undefined }[]>,
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
