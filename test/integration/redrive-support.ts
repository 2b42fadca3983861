import { GetQueueAttributesCommand, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { QueueMode } from '../../core/queue-mode.ts';
import type { RedriveQueues, RedriveReport } from '../../core/redrive-run.ts';
import { synthesizeTemplate } from '../../infra/synth.ts';
import type { CfnTemplate, LocalExecutionResult } from '../../local/workflow-runner.ts';
import { createTestQueue } from '../support/engines.ts';

/**
 * The EventStoreStack template the CDK app synthesizes (bundling off, cdk-nag on: a finding
 * fails the synth), so the tests execute the very definition that is deployed.
 */
export function redriveTemplate(queue: QueueMode): CfnTemplate {
  return synthesizeTemplate({ queue });
}

export interface RedriveQueueUrls {
  readonly source: string;
  readonly deadLetter: string;
}

/** A source queue and its dead-letter queue (the source's RedrivePolicy names it, maxReceiveCount 5), as the stack pairs them. */
export async function createRedriveQueues(sqs: SQSClient, fifo: boolean): Promise<RedriveQueueUrls> {
  const deadLetter = await createTestQueue(sqs, 'redrive-dlq', { fifo });
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetter, AttributeNames: ['QueueArn'] }),
  );
  const source = await createTestQueue(sqs, 'redrive-source', {
    fifo,
    attributes: {
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes?.['QueueArn'], maxReceiveCount: 5 }),
    },
  });
  return { source, deadLetter };
}

/** The report of an execution that succeeded; anything else fails the test with its error and cause. */
export function succeeded(result: LocalExecutionResult): RedriveReport {
  if (result.status !== 'SUCCEEDED') throw new Error(`execution failed: ${result.error}: ${result.cause}`);
  return result.output as RedriveReport;
}

/** Dead-letter these bodies, 10 a call (FIFO: all in `group`, in order). */
export async function deadLetterMany(
  sqs: SQSClient,
  queueUrl: string,
  bodies: readonly string[],
  group?: string,
): Promise<void> {
  for (let start = 0; start < bodies.length; start += 10) {
    const { Failed = [] } = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.slice(start, start + 10).map((body, offset) => ({
          Id: String(offset),
          MessageBody: body,
          ...(group
            ? { MessageGroupId: group, MessageDeduplicationId: `${start + offset}-${crypto.randomUUID()}` }
            : {}),
        })),
      }),
    );
    if (Failed.length > 0) throw new Error(`SQS refused dead letters: ${JSON.stringify(Failed)}`);
  }
}

/** How many messages of a queue are visible and hidden (in flight) right now (FIFO: visible includes groups a hidden message locks). */
export async function queueCounts(sqs: SQSClient, queueUrl: string): Promise<{ visible: number; hidden: number }> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes?.['ApproximateNumberOfMessages'] ?? 0),
    hidden: Number(Attributes?.['ApproximateNumberOfMessagesNotVisible'] ?? 0),
  };
}

/** How many messages of a queue are hidden (in flight) right now. */
export async function hiddenCount(sqs: SQSClient, queueUrl: string): Promise<number> {
  return (await queueCounts(sqs, queueUrl)).hidden;
}

/**
 * The redrive's SQS calls with every receipt handle padded to `length` characters, as long as
 * SQS's longest (1,024): the local SQS hands out short ones, and only the state's size changes.
 */
export function longReceiptHandles(queues: RedriveQueues, length: number): RedriveQueues {
  const pad = (handle: string) => handle.padEnd(length, ' ');
  const trim = (handles: readonly string[]) => handles.map((handle) => handle.trimEnd());
  return {
    receive: async (request) =>
      (await queues.receive(request)).map((message) => ({ ...message, ReceiptHandle: pad(message.ReceiptHandle) })),
    send: (message) => queues.send(message),
    delete: (handles) => queues.delete(trim(handles)),
    hold: (handles, seconds) => queues.hold(trim(handles), seconds),
    release: (handles) => queues.release(trim(handles)),
  };
}
