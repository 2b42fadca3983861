import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { lambdaContext } from '../test/support/factories.ts';
import { lambdaRecord, runLanes } from './records.ts';
import type { WorkloadMessage } from './workload.ts';

/** The ingest handler's signature. */
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface DirectOptions {
  readonly fifo: boolean;
  /** Parallel containers, each with its own handler instance (its own store cache). */
  readonly concurrency: number;
  /** Records per invocation (the event source mapping's batch size; FIFO at most 10). */
  readonly batchSize: number;
  /** A new container: a handler with an empty store cache, as a cold Lambda container has. */
  readonly newContainer: () => SqsHandler;
  /** Replace a container by a new one after this many invocations. @default Infinity (warm for the whole run) */
  readonly containerInvocations?: number;
  /** Give up on a record after this many deliveries (SQS maxReceiveCount). @default 5 */
  readonly maxReceiveCount?: number;
  /** Called after every `progressEvery` acknowledged records. */
  readonly onProgress?: (acknowledged: number, elapsedMs: number) => void;
  readonly progressEvery?: number;
}

/** The SQS requests the event source mapping would make for this run (long-poll receives that find nothing not counted). */
export interface ConsumerRequests {
  /** One ReceiveMessage per batch handed over. */
  readonly receives: number;
  /** One DeleteMessageBatch per batch with at least one record acknowledged. */
  readonly deletes: number;
}

export interface DirectRun {
  readonly wallMs: number;
  readonly invocations: number;
  /** Sum of the invocations' durations (ms). */
  readonly invocationMsTotal: number;
  /** Records the handler reported failed, delivered again. */
  readonly retriedRecords: number;
  /** Records that failed maxReceiveCount times (SQS would move them to the DLQ without a reason). */
  readonly exhausted: readonly string[];
  /** Handler calls that threw (the whole batch goes back). */
  readonly handlerErrors: number;
  /** messageId -> wall clock (ms) when its first delivery was handed to the handler. */
  readonly handedAt: ReadonlyMap<string, number>;
  /** CPU time (user + system, microseconds) this process spent during the run. */
  readonly cpuMicros: number;
  /** Containers started (cold starts), the first one of each lane included. */
  readonly containersStarted: number;
  readonly consumerRequests: ConsumerRequests;
}

interface Pending {
  readonly message: WorkloadMessage;
  receiveCount: number;
  readonly sequence: number;
}

const context = lambdaContext({
  functionName: 'event-store-ingest-bench',
  memoryLimitInMB: '1024',
  awsRequestId: 'bench',
  callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => 30_000,
});

/**
 * The delivery side of SQS and the Lambda event source, in memory: hands the handler
 * Lambda-shaped batches, redelivers what it reports failed. Standard: batches in queue
 * order, a failed record goes to the back. FIFO: as many messages of one group as possible
 * per batch (as SQS does), a group is locked while a batch holds it, its order is kept, and
 * a failed record comes back before the rest of its group.
 */
class Deliveries {
  readonly #fifo: boolean;
  readonly #queue: Pending[] = [];
  #head = 0;
  readonly #groups = new Map<string, Pending[]>();
  readonly #locked = new Set<string>();
  #inFlight = 0;
  #wake: (() => void) | undefined;

  public constructor(messages: readonly WorkloadMessage[], fifo: boolean) {
    this.#fifo = fifo;
    messages.forEach((message, sequence) => {
      const pending: Pending = { message, receiveCount: 0, sequence };
      if (fifo) {
        const group = this.#groups.get(message.streamId) ?? [];
        group.push(pending);
        this.#groups.set(message.streamId, group);
      } else {
        this.#queue.push(pending);
      }
    });
  }

  /** The next batch, waiting while others are in flight and may hand records back; undefined when all is done. */
  public async take(size: number): Promise<Pending[] | undefined> {
    for (;;) {
      const batch = this.#fifo ? this.#takeFifo(size) : this.#takeStandard(size);
      if (batch.length > 0) {
        this.#inFlight += 1;
        for (const pending of batch) pending.receiveCount += 1;
        return batch;
      }
      if (this.#inFlight === 0) return undefined;
      await new Promise<void>((resolve) => {
        const previous = this.#wake;
        this.#wake = () => {
          previous?.();
          resolve();
        };
      });
    }
  }

  /** The batch is done: `failed` records are delivered again (unless they ran out of receives). */
  public settle(
    batch: readonly Pending[],
    failed: ReadonlySet<string>,
    maxReceiveCount: number,
    exhausted: string[],
  ): number {
    this.#inFlight -= 1;
    let retried = 0;
    const again = batch.filter((pending) => failed.has(pending.message.messageId));
    for (const pending of again) {
      if (pending.receiveCount >= maxReceiveCount) exhausted.push(pending.message.messageId);
    }
    const redeliver = again.filter((pending) => pending.receiveCount < maxReceiveCount);
    retried += redeliver.length;
    if (this.#fifo) {
      for (const pending of [...redeliver].reverse()) this.#groups.get(pending.message.streamId)!.unshift(pending);
      for (const pending of batch) this.#locked.delete(pending.message.streamId);
    } else {
      this.#queue.push(...redeliver);
    }
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    return retried;
  }

  #takeStandard(size: number): Pending[] {
    const batch = this.#queue.slice(this.#head, this.#head + size);
    this.#head += batch.length;
    if (this.#head > 10_000) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    return batch;
  }

  /**
   * Like SQS FIFO: start with the unlocked group whose head is oldest and return as many of
   * its messages as possible, then the next group, up to `size`. The groups stay locked
   * until the batch is settled.
   */
  #takeFifo(size: number): Pending[] {
    const batch: Pending[] = [];
    const taken = new Set<string>();
    while (batch.length < size) {
      let best: Pending[] | undefined;
      for (const [groupId, group] of this.#groups) {
        if (group.length === 0 || this.#locked.has(groupId) || taken.has(groupId)) continue;
        if (!best || group[0]!.sequence < best[0]!.sequence) best = group;
      }
      if (!best) break;
      const groupId = best[0]!.message.streamId;
      taken.add(groupId);
      this.#locked.add(groupId);
      while (batch.length < size && best.length > 0) batch.push(best.shift()!);
    }
    return batch;
  }
}

/** One lane's container: its handler and how many invocations it has served. */
interface Container {
  handler: SqsHandler;
  invocations: number;
}

/** Drive the handlers with the workload's messages until every one is acknowledged or exhausted. */
export async function driveHandlers(messages: readonly WorkloadMessage[], options: DirectOptions): Promise<DirectRun> {
  const deliveries = new Deliveries(messages, options.fifo);
  const life = options.containerInvocations ?? Number.POSITIVE_INFINITY;
  let containersStarted = 0;
  let deletes = 0;
  const containers: Container[] = [];
  const containerOf = (lane: number): Container => {
    const current = containers[lane];
    if (current && current.invocations < life) return current;
    containersStarted += 1;
    const fresh = { handler: options.newContainer(), invocations: 0 };
    containers[lane] = fresh;
    return fresh;
  };
  const maxReceiveCount = options.maxReceiveCount ?? 5;
  const handedAt = new Map<string, number>();
  const exhausted: string[] = [];
  let invocations = 0;
  let invocationMsTotal = 0;
  let retriedRecords = 0;
  let handlerErrors = 0;
  let acknowledged = 0;
  const started0 = performance.now();
  const cpuBefore = process.cpuUsage();
  const wallMs = await runLanes(options.concurrency, async (lane) => {
    const batch = await deliveries.take(options.batchSize);
    if (!batch) return false;
    const now = Date.now();
    const records: SQSRecord[] = batch.map((pending) => {
      if (!handedAt.has(pending.message.messageId)) handedAt.set(pending.message.messageId, now);
      // The producer sent it just before its first delivery (the queue has no backlog here).
      const sentAt = handedAt.get(pending.message.messageId)!;
      return lambdaRecord(pending.message, options.fifo, pending.receiveCount, pending.sequence, sentAt);
    });
    invocations += 1;
    let failed: Set<string>;
    const started = performance.now();
    const container = containerOf(lane);
    container.invocations += 1;
    try {
      const response = await container.handler({ Records: records }, context);
      failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    } catch {
      handlerErrors += 1;
      failed = new Set(records.map((record) => record.messageId));
    }
    invocationMsTotal += performance.now() - started;
    retriedRecords += deliveries.settle(batch, failed, maxReceiveCount, exhausted);
    const before = acknowledged;
    acknowledged += batch.length - failed.size;
    if (batch.length > failed.size) deletes += 1;
    const every = options.progressEvery ?? 2000;
    if (Math.floor(acknowledged / every) > Math.floor(before / every))
      options.onProgress?.(acknowledged, performance.now() - started0);
    return true;
  });
  const cpu = process.cpuUsage(cpuBefore);
  return {
    wallMs,
    invocations,
    invocationMsTotal,
    retriedRecords,
    exhausted,
    handlerErrors,
    handedAt,
    cpuMicros: cpu.user + cpu.system,
    containersStarted,
    consumerRequests: { receives: invocations, deletes },
  };
}
