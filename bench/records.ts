import type { SQSRecord } from 'aws-lambda';
import { FIFO_SUFFIX } from '../core/queue-mode.ts';
import { sqsRecord } from '../test/support/factories.ts';
import type { WorkloadMessage } from './workload.ts';

/** The bench's queue, as the records' ARN names it. */
const BENCH_QUEUE_NAME = 'bench-events';

/**
 * SQS sequence numbers of the run start here: a stream's history (bench/history.ts) carries
 * lower ones, as messages sent before the run would.
 */
export const RUN_SEQUENCE_BASE = 1_000_000_000_000;

/** A FIFO SequenceNumber as SQS writes it: a decimal string, here always 20 digits. */
export function sequenceNumber(sequence: number): string {
  return String(sequence).padStart(20, '0');
}

/**
 * One workload message as the Lambda SQS event source hands it to the function.
 * `receiveCount` is what SQS counts (1 the first time, more on each redelivery); `sentAt` is
 * when the producer sent it (SQS keeps it across redeliveries).
 */
export function lambdaRecord(
  message: WorkloadMessage,
  fifo: boolean,
  receiveCount = 1,
  sequence = 0,
  sentAt = Date.now(),
): SQSRecord {
  return sqsRecord(message.body, {
    messageId: message.messageId,
    receiveCount,
    sentTimestamp: sentAt,
    queueName: fifo ? `${BENCH_QUEUE_NAME}${FIFO_SUFFIX}` : BENCH_QUEUE_NAME,
    ...(fifo
      ? {
          fifo: {
            groupId: message.streamId,
            sequenceNumber: sequenceNumber(RUN_SEQUENCE_BASE + sequence),
            deduplicationId: message.messageId,
          },
        }
      : {}),
  });
}

/** Run `worker` on `concurrency` parallel lanes until each returns false; returns the wall time in ms. */
export async function runLanes(concurrency: number, worker: (lane: number) => Promise<boolean>): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, lane) => {
      while (await worker(lane)) {
        // keep going until the lane has nothing left
      }
    }),
  );
  return performance.now() - started;
}

/** The p-th percentile (0..100) of `values`, nearest rank; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
