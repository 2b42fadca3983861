import type { SQSRecord } from 'aws-lambda';
import type { WorkloadMessage } from './workload.ts';

export const BENCH_QUEUE_ARN = 'arn:aws:sqs:us-east-1:000000000000:bench-events';
export const BENCH_FIFO_QUEUE_ARN = 'arn:aws:sqs:us-east-1:000000000000:bench-events.fifo';

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
  const now = String(Date.now());
  return {
    messageId: message.messageId,
    receiptHandle: `bench-${message.messageId}-${receiveCount}`,
    body: message.body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(sentAt),
      SenderId: 'bench',
      ApproximateFirstReceiveTimestamp: now,
      ...(fifo
        ? {
            MessageGroupId: message.streamId,
            MessageDeduplicationId: message.messageId,
            SequenceNumber: sequenceNumber(RUN_SEQUENCE_BASE + sequence),
          }
        : {}),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: fifo ? BENCH_FIFO_QUEUE_ARN : BENCH_QUEUE_ARN,
    awsRegion: 'us-east-1',
  };
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
