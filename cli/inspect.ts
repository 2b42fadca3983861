/**
 * What `rejected` and `stats` read: the dead-letter queue's messages (left where they are), a
 * queue's depth, and how many events the table holds.
 */
import { DescribeTableCommand, ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import { Limits } from '../core/keys.ts';
import { MessageAttributeNames, parseRedriveCount } from '../core/message-attributes.ts';
import { QueueMode } from '../core/queue-mode.ts';
import type { Target } from './target.ts';

/** One message of the DLQ as `rejected` shows it. */
export interface RejectedMessage {
  readonly messageId: string;
  /** The ingest queue's message id (attribute SourceMessageId), when the handler sent it. */
  readonly sourceMessageId: string | undefined;
  readonly streamId: string | undefined;
  /** RejectionReason; absent when SQS moved it after maxReceiveCount (a transient failure). */
  readonly reason: string | undefined;
  readonly detail: string | undefined;
  readonly rejectedAt: string | undefined;
  readonly redriveCount: number;
  readonly receiveCount: number;
  readonly body: string;
}

function attribute(message: Message, name: string): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
}

function streamIdOf(body: string): string | undefined {
  try {
    const value = JSON.parse(body) as unknown;
    const id = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)['ID'] : undefined;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Look at up to `limit` messages of the DLQ without taking them: receive with a short
 * visibility timeout, then make every received message visible again at once
 * (ChangeMessageVisibility 0). A FIFO DLQ shows up to 10 messages of each group per look: SQS
 * returns as many of one group as it can, then delivers nothing more of it while those are in flight.
 */
export async function peekDeadLetters(target: Target, limit: number): Promise<RejectedMessage[]> {
  const seen = new Map<string, Message>();
  const handles: string[] = [];
  try {
    let emptyReceives = 0;
    while (seen.size < limit && emptyReceives < 2) {
      const requested = Math.min(Limits.maxSqsBatch, limit - seen.size);
      const received = await target.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: target.deadLetterQueueUrl,
          MaxNumberOfMessages: requested,
          VisibilityTimeout: 10,
          WaitTimeSeconds: 0,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const messages = received.Messages ?? [];
      // FIFO: a full receive may end part-way through its last group, whose rest SQS then holds
      // back while those are in flight. Let that group go again (unless it filled the whole
      // receive: more than a receive's worth of one group cannot be seen without taking them).
      const lastGroup = messages.at(-1)?.Attributes?.['MessageGroupId'];
      const partial =
        target.queueMode === QueueMode.fifo &&
        lastGroup !== undefined &&
        messages.length === requested &&
        messages.some((message) => message.Attributes?.['MessageGroupId'] !== lastGroup);
      const letGo = partial ? messages.filter((message) => message.Attributes?.['MessageGroupId'] === lastGroup) : [];
      let fresh = 0;
      for (const message of messages) {
        if (!letGo.includes(message)) handles.push(message.ReceiptHandle!);
        if (!seen.has(message.MessageId!)) {
          seen.set(message.MessageId!, message);
          fresh += 1;
        }
      }
      if (letGo.length > 0) {
        await target.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: target.deadLetterQueueUrl,
            Entries: letGo.map((message, index) => ({
              Id: String(index),
              ReceiptHandle: message.ReceiptHandle!,
              VisibilityTimeout: 0,
            })),
          }),
        );
      }
      emptyReceives = fresh === 0 ? emptyReceives + 1 : 0;
    }
  } finally {
    for (let start = 0; start < handles.length; start += Limits.maxSqsBatch) {
      await target.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: target.deadLetterQueueUrl,
          Entries: handles
            .slice(start, start + Limits.maxSqsBatch)
            .map((handle, index) => ({ Id: String(index), ReceiptHandle: handle, VisibilityTimeout: 0 })),
        }),
      );
    }
  }
  return [...seen.values()].map((message) => ({
    messageId: message.MessageId!,
    sourceMessageId: attribute(message, MessageAttributeNames.sourceMessageId),
    streamId: streamIdOf(message.Body ?? ''),
    reason: attribute(message, MessageAttributeNames.rejectionReason),
    detail: attribute(message, MessageAttributeNames.rejectionDetail),
    rejectedAt: attribute(message, MessageAttributeNames.rejectedAt),
    redriveCount: parseRedriveCount(attribute(message, MessageAttributeNames.redriveCount)),
    receiveCount: Number(message.Attributes?.['ApproximateReceiveCount'] ?? 0),
    body: message.Body ?? '',
  }));
}

/** How `rejected` and `stats` name the reason of a message SQS moved itself (no RejectionReason). */
export const NO_REASON = 'none (moved by SQS after maxReceiveCount)';

/** Dead letters by reason (NO_REASON for those SQS moved), in the order each reason is first seen. */
export function groupByReason(messages: readonly RejectedMessage[]): Map<string, RejectedMessage[]> {
  const groups = new Map<string, RejectedMessage[]>();
  for (const message of messages) {
    const reason = message.reason ?? NO_REASON;
    groups.set(reason, [...(groups.get(reason) ?? []), message]);
  }
  return groups;
}

/**
 * The honest note when a look at a FIFO dead-letter queue showed fewer messages than it holds:
 * SQS delivers nothing more of a group while its first messages are in flight (see
 * `peekDeadLetters`). Undefined when there is nothing to say.
 */
export function fifoHiddenNote(target: Target, shown: number, total: number, limit: number): string | undefined {
  return target.queueMode === QueueMode.fifo && shown < Math.min(total, limit)
    ? 'a FIFO queue shows the first messages of each group only; the rest wait behind them'
    : undefined;
}

export interface QueueDepth {
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
}

export async function queueDepth(target: Target, queueUrl: string): Promise<QueueDepth> {
  const result = await target.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  const attributes = result.Attributes ?? {};
  return {
    visible: Number(attributes['ApproximateNumberOfMessages'] ?? 0),
    inFlight: Number(attributes['ApproximateNumberOfMessagesNotVisible'] ?? 0),
    delayed: Number(attributes['ApproximateNumberOfMessagesDelayed'] ?? 0),
  };
}

/** Items in the table: an exact Scan COUNT locally; DescribeTable's ItemCount (refreshed about every 6 hours) on AWS. */
export async function storedEventCount(target: Target): Promise<{ count: number; exact: boolean }> {
  if (target.kind === 'aws') {
    const described = await target.dynamo.send(new DescribeTableCommand({ TableName: target.tableName }));
    return { count: described.Table?.ItemCount ?? 0, exact: false };
  }
  let count = 0;
  let startKey: ScanCommandOutput['LastEvaluatedKey'];
  do {
    const page: ScanCommandOutput = await target.dynamo.send(
      new ScanCommand({
        TableName: target.tableName,
        Select: 'COUNT',
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    count += page.Count ?? 0;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return { count, exact: true };
}
