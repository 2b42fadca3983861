import { Limits } from '../core/keys.ts';
import { LOCAL_REGION } from '../local/defaults.ts';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { waitUntil } from '../local/engines/ports.ts';
import { Poller, type SqsHandler } from '../local/poller.ts';
import { runLanes } from './records.ts';
import type { WorkloadMessage } from './workload.ts';

export interface EndToEndOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly fifo: boolean;
  /** One handler per poller: each poller is a container with its own store cache. */
  readonly handlers: readonly SqsHandler[];
  readonly batchSize: number;
  /** Parallel producers; a stream always goes through the same one, so its send order is kept. */
  readonly producers: number;
  /** Give up waiting for the queue to drain after this long. */
  readonly timeoutMs: number;
}

export interface EndToEndRun {
  readonly wallMs: number;
  readonly sendMs: number;
  readonly invocations: number;
  readonly invocationMsTotal: number;
  readonly retriedRecords: number;
  readonly handlerErrors: number;
  /** messageId -> wall clock (ms) just before its SendMessageBatch. */
  readonly sentAt: ReadonlyMap<string, number>;
  readonly cpuMicros: number;
}

function laneOf(streamId: string, lanes: number): number {
  let hash = 0;
  for (let index = 0; index < streamId.length; index += 1) hash = (hash * 31 + streamId.charCodeAt(index)) >>> 0;
  return hash % lanes;
}

/**
 * The producers: `options.producers` lanes (a stream always on the same lane, so its events
 * keep their order), each sending SendMessageBatch of 10 (FIFO: group = stream, a deduplication
 * id per message). Records each message's send time in `sentAt`; returns the wall time in ms.
 */
async function sendInBatches(
  messages: readonly WorkloadMessage[],
  options: EndToEndOptions,
  sentAt: Map<string, number>,
): Promise<number> {
  const byLane: WorkloadMessage[][] = Array.from({ length: options.producers }, () => []);
  for (const message of messages) byLane[laneOf(message.streamId, options.producers)]!.push(message);
  const cursors = byLane.map(() => 0);
  return runLanes(options.producers, async (lane) => {
    const queue = byLane[lane]!;
    const batch = queue.slice(cursors[lane], cursors[lane]! + Limits.maxSqsBatch);
    if (batch.length === 0) return false;
    cursors[lane]! += batch.length;
    const now = Date.now();
    for (const message of batch) sentAt.set(message.messageId, now);
    const sent = await options.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: batch.map((message, index) => ({
          Id: String(index),
          MessageBody: message.body,
          ...(options.fifo ? { MessageGroupId: message.streamId, MessageDeduplicationId: message.messageId } : {}),
        })),
      }),
    );
    if ((sent.Failed ?? []).length > 0)
      throw new Error(`bench: SendMessageBatch failed: ${JSON.stringify(sent.Failed)}`);
    return true;
  });
}

/**
 * The whole path on the local engines: producers send the workload to the local SQS queue
 * (SendMessageBatch of 10; FIFO: group = stream, a deduplication id per message, so a
 * redelivered body counts as a producer retry after SQS's 5-minute window), the local mode's
 * pollers receive Lambda-shaped batches and call the real handler, and delete what it
 * acknowledged. Ends when every message has been acknowledged.
 */
export async function runEndToEnd(
  messages: readonly WorkloadMessage[],
  options: EndToEndOptions,
): Promise<EndToEndRun> {
  let acknowledged = 0;
  let invocations = 0;
  let invocationMsTotal = 0;
  let retriedRecords = 0;
  let handlerErrors = 0;
  const pollers = options.handlers.map((handler) => {
    const timed: SqsHandler = async (event, context) => {
      const started = performance.now();
      try {
        return await handler(event, context);
      } finally {
        invocationMsTotal += performance.now() - started;
      }
    };
    return new Poller({
      sqs: options.sqs,
      queueUrl: options.queueUrl,
      queueArn: options.queueArn,
      region: LOCAL_REGION,
      handler: timed,
      batchSize: options.batchSize,
      batchingWindowSeconds: 0,
      waitTimeSeconds: 1,
      onBatch: (report) => {
        invocations += 1;
        acknowledged += report.deleted;
        retriedRecords += report.failed;
        if (report.error) handlerErrors += 1;
      },
    });
  });
  const sentAt = new Map<string, number>();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (const poller of pollers) poller.start();
  try {
    const sendMs = await sendInBatches(messages, options, sentAt);
    await waitUntil(
      async () => acknowledged >= messages.length,
      `${messages.length} messages acknowledged`,
      options.timeoutMs,
      100,
    );
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    return {
      wallMs,
      sendMs,
      invocations,
      invocationMsTotal,
      retriedRecords,
      handlerErrors,
      sentAt,
      cpuMicros: cpu.user + cpu.system,
    };
  } finally {
    await Promise.all(pollers.map((poller) => poller.stop()));
  }
}

/**
 * Count the requests an SQS client sends, by operation (an end-to-end run's SendMessageBatch,
 * ReceiveMessage, DeleteMessageBatch).
 *
 * @example
 * ```ts
 * const requests = meterRequests(sqsClient);
 * console.log(requests['ReceiveMessage']);
 * ```
 */
export function meterRequests(client: SQSClient): Record<string, number> {
  const requests: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? '').replace(/Command$/, '');
      requests[operation] = (requests[operation] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchRequestMeter' },
  );
  return requests;
}
