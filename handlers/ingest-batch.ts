/**
 * One invocation's SQS records, each decided once and in order (docs/ARCHITECTURE.md, "One fate
 * per record"): the record handler Powertools' batch processor calls validates the record,
 * then appends it to its stream or dead-letters it, and only then may a later record of the
 * same stream (FIFO: of the same message group) be appended.
 *
 * - Standard queues: `BatchProcessor`, records in parallel; one stream's events in record order,
 *   and a record whose append failed fails the later records of its stream (not attempted).
 * - FIFO queues: one `SqsFifoPartialProcessorAsync` with `skipGroupOnError` per message group,
 *   groups in parallel, a group's records one after another: a record that fails (its append,
 *   or its DLQ send) fails the rest of its group before any of them is appended.
 *
 * No AWS SDK here: the store and the DLQ come in as interfaces (core/store.ts, core/dead-letter.ts).
 */
import {
  BatchProcessor,
  EventType,
  SqsFifoPartialProcessorAsync,
  processPartialResponse,
} from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { DeadLetterRefusedError, type DeadLetterSink } from '../core/dead-letter.ts';
import { TransientStoreError } from '../core/errors.ts';
import { messageEvents, parseEventBody, type ParseResult } from '../core/event.ts';
import { sourceSequence } from '../core/fifo.ts';
import { Limits } from '../core/keys.ts';
import { MessageAttributeNames } from '../core/message-attributes.ts';
import { RejectionReason } from '../core/reasons.ts';
import { CLOCK_SKEW_MS, type AppendOptions, type AppendOutcome, type EventStore } from '../core/store.ts';

/** The logger calls the batch makes (Powertools Logger has them). */
export interface BatchLogger {
  debug(message: string, extra: Record<string, unknown>): void;
  info(message: string, extra: Record<string, unknown>): void;
  warn(message: string, extra: Record<string, unknown>): void;
  error(message: string, extra: Record<string, unknown>): void;
}

/** Per-invocation counts, for the metrics and the summary log line. */
export interface Tally {
  stored: number;
  duplicates: number;
  conflicts: number;
  rejected: Partial<Record<RejectionReason, number>>;
  /** Records left for a later delivery because their stream was behind `ExpectedVersion`. */
  waiting: number;
  dlqFailures: number;
}

export function emptyTally(): Tally {
  return { stored: 0, duplicates: 0, conflicts: 0, rejected: {}, waiting: 0, dlqFailures: 0 };
}

export interface IngestBatchDependencies {
  readonly store: EventStore;
  readonly deadLetters: DeadLetterSink;
  readonly logger: BatchLogger;
  /** Standard queues: how many recent events of a stream are checked for duplicates. */
  readonly dedupWindow: number;
  /**
   * How long after a first copy was recorded a producer's resend of the event is still
   * recognised, in ms: bounds the duplicate window by time (see `duplicateBound`).
   * @default no time bound: the newest `dedupWindow` events
   */
  readonly resendWindowMs?: number | undefined;
  /**
   * The source queue's `maxReceiveCount`. On a standard queue a stream behind `ExpectedVersion`
   * is retried, and dead-lettered with its reason only on this delivery, after which SQS never
   * delivers the message again. Unknown: always retried (SQS then moves it without a reason).
   */
  readonly maxReceiveCount?: number | undefined;
  /**
   * How many records may talk to AWS at once, across the invocations of one store (one
   * container): at most the sockets of the SDK clients' HTTP agents (see `MAX_CONCURRENT_REQUESTS`).
   * Read when a store is first seen.
   * @default MAX_CONCURRENT_REQUESTS
   */
  readonly maxConcurrentRequests?: number | undefined;
}

/**
 * The AWS SDK's HTTP agent keeps at most 50 sockets per client (`maxSockets` in
 * `@smithy/node-http-handler`), and its connection timeout (`SDK_TIMEOUTS`, 3 s) and request
 * timeout start when a request is handed to the agent, not when it gets a socket: a standard
 * batch of hundreds of records run all at once left requests waiting for a socket until they
 * failed with `TimeoutError`, though nothing hung. So a batch runs at most this many records'
 * requests at once (a record makes one request at a time: a read, a put, or a DLQ send).
 */
export const MAX_CONCURRENT_REQUESTS = 50;

/** A counting semaphore: `run` waits for a free slot, first come first served. */
class RequestSlots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  public constructor(size: number) {
    this.#free = Math.max(1, Math.floor(size));
  }

  public async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free += 1;
    }
  }
}

/** One set of slots per store (per container), shared by invocations that run at once. */
const slotsByStore = new WeakMap<EventStore, RequestSlots>();

function requestSlots(deps: IngestBatchDependencies): RequestSlots {
  let slots = slotsByStore.get(deps.store);
  if (slots === undefined) {
    slots = new RequestSlots(deps.maxConcurrentRequests ?? MAX_CONCURRENT_REQUESTS);
    slotsByStore.set(deps.store, slots);
  }
  return slots;
}

export interface IngestBatchOptions {
  readonly context: Context;
  /** Aborts the work still running: the invocation's deadline. */
  readonly signal?: AbortSignal | undefined;
  readonly tally: Tally;
}

/** The work planned for one record before the processor runs: parsing only, no I/O. */
interface Plan {
  readonly parsed: Parsed;
  readonly streamId: string | undefined;
  /** The first record of its stream in this batch (a busy stream is caught up before it). */
  readonly firstInBatch: boolean;
  /** Duplicate window for this stream. */
  readonly window: number;
  /** Standard queues: settles when the previous record of the same stream is done; false if its append failed. */
  readonly previous: Promise<boolean> | undefined;
  /** Settles when this record is done; false if its append failed. */
  readonly done: Promise<boolean>;
  readonly settle: (appended: boolean) => void;
}

/** A FIFO batch: from a `.fifo` queue (Lambda's ARN says so; a fair standard queue also sets MessageGroupId). */
export function isFifoRecord(record: SQSRecord): boolean {
  return (
    record.eventSourceARN?.endsWith('.fifo') === true ||
    (record.attributes?.MessageGroupId !== undefined && record.attributes?.SequenceNumber !== undefined)
  );
}

/**
 * The time bound of a record's duplicate window (docs/ARCHITECTURE.md, "Appending and
 * idempotency"): events recorded before `SentTimestamp - resendWindow - CLOCK_SKEW_MS` end it.
 * A redelivery of this message can only meet a copy recorded after the message was sent, however
 * late it comes; a producer's resend is a new message, sent later, and meets the first copy if
 * that was recorded at most `resendWindow` before. None (the newest `dedupWindow` events) for a
 * redriven message (it is sent again long after its first copy may have been stored) and for
 * a record without a usable `SentTimestamp`.
 *
 * @example
 * ```ts
 * duplicateBound(record, 300_000); // Number(record.attributes.SentTimestamp) - 302_000
 * ```
 */
export function duplicateBound(record: SQSRecord, resendWindowMs: number | undefined): number | undefined {
  if (resendWindowMs === undefined || record.messageAttributes?.[MessageAttributeNames.redriveCount] !== undefined)
    return undefined;
  const sent = Number(record.attributes?.SentTimestamp);
  return Number.isFinite(sent) && sent > 0 ? sent - resendWindowMs - CLOCK_SKEW_MS : undefined;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Parse one record; an unexpected error (a bug, never an input's verdict) fails this record
 * only, not the whole batch.
 */
type Parsed = ParseResult | { readonly ok: 'error'; readonly error: Error; readonly streamId: undefined };

function parseSafely(record: SQSRecord): Parsed {
  try {
    return parseEventBody(record.body);
  } catch (error) {
    return { ok: 'error', error: error instanceof Error ? error : new Error(String(error)), streamId: undefined };
  }
}

function plan(records: readonly SQSRecord[], fifo: boolean, dedupWindow: number): Map<SQSRecord, Plan> {
  const plans = new Map<SQSRecord, Plan>();
  const perStream = new Map<string, number>();
  const parsed = records.map((record) => parseSafely(record));
  for (const result of parsed) {
    if (result.ok === true)
      perStream.set(result.streamId, (perStream.get(result.streamId) ?? 0) + messageEvents(result).length);
  }
  const last = new Map<string, Promise<boolean>>();
  const seen = new Set<string>();
  records.forEach((record, index) => {
    const result = parsed[index]!;
    const streamId = result.ok === true ? result.streamId : result.streamId;
    let settle: (appended: boolean) => void = () => undefined;
    const done = new Promise<boolean>((resolve) => (settle = resolve));
    const previous = result.ok === true && !fifo ? last.get(result.streamId) : undefined;
    const firstInBatch = result.ok === true && !seen.has(result.streamId);
    if (result.ok === true) {
      last.set(result.streamId, done);
      seen.add(result.streamId);
    }
    // FIFO: `dedupWindow`, and at least a full FIFO batch (a redelivery may hold fewer of the
    // messages than the batch that wrote them did).
    const count = result.ok === true ? (perStream.get(result.streamId) ?? 1) : 1;
    plans.set(record, {
      parsed: result,
      streamId,
      firstInBatch,
      window: fifo ? Math.max(Limits.maxFifoBatchSize, count, dedupWindow) : dedupWindow,
      previous,
      done,
      settle,
    });
  });
  return plans;
}

/**
 * Process one invocation's records and return the partial batch response.
 *
 * @example
 * ```ts
 * const tally = emptyTally();
 * const response = await processIngestBatch(event.Records, { store, deadLetters, logger, dedupWindow: 50 },
 *   { context, tally });
 * ```
 */
export async function processIngestBatch(
  records: readonly SQSRecord[],
  deps: IngestBatchDependencies,
  options: IngestBatchOptions,
): Promise<SQSBatchResponse> {
  const fifo = records.length > 0 && records.every(isFifoRecord);
  const batch = new IngestBatch(deps, options, fifo, plan(records, fifo, deps.dedupWindow));
  const recordHandler = (record: SQSRecord): Promise<void> => batch.handleRecord(record);
  if (!fifo) {
    return processPartialResponse({ Records: [...records] }, recordHandler, new BatchProcessor(EventType.SQS), {
      context: options.context,
      throwOnFullBatchFailure: false,
    });
  }
  return processFifoGroups(records, recordHandler, options.context);
}

/**
 * One FIFO processor per message group, groups in parallel: a new processor every
 * invocation, so no failed-group state survives into the next one.
 */
async function processFifoGroups(
  records: readonly SQSRecord[],
  recordHandler: (record: SQSRecord) => Promise<void>,
  context: Context,
): Promise<SQSBatchResponse> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of records) {
    const group = record.attributes?.MessageGroupId ?? record.messageId;
    groups.set(group, [...(groups.get(group) ?? []), record]);
  }
  const responses = await Promise.all(
    [...groups.values()].map((groupRecords) =>
      processPartialResponse({ Records: groupRecords }, recordHandler, new SqsFifoPartialProcessorAsync(), {
        context,
        skipGroupOnError: true,
        throwOnFullBatchFailure: false,
      }),
    ),
  );
  return { batchItemFailures: responses.flatMap((response) => response.batchItemFailures) };
}

/** The keys every log line about one record carries. */
interface RecordKeys {
  readonly correlation_id: string;
  readonly messageId: string;
  readonly streamId: string | undefined;
}

function recordKeys(record: SQSRecord, planned: Plan): RecordKeys {
  return { correlation_id: record.messageId, messageId: record.messageId, streamId: planned.streamId };
}

/** One invocation's records, planned: the fate of each, decided by `handleRecord`. */
class IngestBatch {
  readonly #deps: IngestBatchDependencies;
  readonly #options: IngestBatchOptions;
  readonly #fifo: boolean;
  readonly #plans: Map<SQSRecord, Plan>;
  /** Taken by a record only around its requests, never while it waits for an earlier record. */
  readonly #slots: RequestSlots;

  public constructor(
    deps: IngestBatchDependencies,
    options: IngestBatchOptions,
    fifo: boolean,
    plans: Map<SQSRecord, Plan>,
  ) {
    this.#deps = deps;
    this.#options = options;
    this.#fifo = fifo;
    this.#plans = plans;
    this.#slots = requestSlots(deps);
  }

  /** The record handler the batch processor calls: throwing marks the record failed. */
  public async handleRecord(record: SQSRecord): Promise<void> {
    const planned = this.#plans.get(record);
    if (planned === undefined)
      throw new TransientStoreError(`message ${record.messageId}: not planned (internal error)`);
    try {
      planned.settle(await this.#handle(record, planned));
    } catch (error) {
      // Only a failed append (settled false below) holds back the stream's later records; a
      // failed DLQ send or a stream still behind ExpectedVersion does not.
      planned.settle(true);
      throw error;
    }
  }

  /** Validate, then append or dead-letter. Throwing marks the record failed. */
  async #handle(record: SQSRecord, planned: Plan): Promise<boolean> {
    const { parsed } = planned;
    const keys = recordKeys(record, planned);
    this.#deps.logger.debug('record', { ...keys, body: record.body });
    if (parsed.ok === 'error') {
      this.#deps.logger.error('record could not be parsed (internal error); SQS will deliver it again', {
        ...keys,
        error: errorText(parsed.error),
      });
      throw new TransientStoreError(
        `message ${record.messageId}: ${errorText(parsed.error)}`,
        {},
        { cause: parsed.error },
      );
    }
    if (!parsed.ok) {
      await this.#slots.run(() => this.#deadLetter(record, planned, parsed.reason, parsed.detail));
      return true;
    }
    if (planned.previous !== undefined && !(await planned.previous)) {
      planned.settle(false);
      throw new TransientStoreError(
        `not attempted: an earlier event of stream ${parsed.streamId} in this batch failed`,
        {
          streamId: parsed.streamId,
        },
      );
    }
    // FIFO with group = stream: the message's sequence number and its queue's tag go with the
    // event, so a redelivery after a lost acknowledgement is recognised as decided
    // (docs/ARCHITECTURE.md, "One fate per record").
    const sentAt = Number(record.attributes?.SentTimestamp);
    const sequence = this.#sourceSequence(record, parsed.streamId, sentAt);
    const notBefore = duplicateBound(record, this.#deps.resendWindowMs);
    return this.#slots.run(async () => {
      const options: AppendOptions = {
        dedupWindow: planned.window,
        ...(notBefore !== undefined ? { notBefore } : {}),
        signal: this.#options.signal,
        firstInBatch: planned.firstInBatch,
        ...(sequence !== undefined ? { sourceSequence: sequence } : {}),
        ...(Number.isFinite(sentAt) && sentAt > 0 ? { sentAt } : {}),
        redelivery: Number(record.attributes?.ApproximateReceiveCount) > 1,
      };
      // A group is one transaction with one fate (docs/ARCHITECTURE.md, "Groups").
      const [outcome] =
        parsed.kind === 'group'
          ? [await this.#deps.store.appendGroup(parsed.group, options)]
          : await this.#deps.store.appendToStream(parsed.streamId, [parsed.event], options);
      return this.#decide(record, planned, parsed.streamId, outcome, sequence);
    });
  }

  /** FIFO, and the record's message group is its stream. */
  #groupIsStream(record: SQSRecord, streamId: string): boolean {
    return this.#fifo && record.attributes?.MessageGroupId === streamId;
  }

  /** The `SourceSequence` stored with the event (core/fifo.ts): FIFO, group = stream, queue and send time known. */
  #sourceSequence(record: SQSRecord, streamId: string, sentAt: number): string | undefined {
    const number = record.attributes?.SequenceNumber;
    const queue = record.eventSourceARN;
    if (!this.#groupIsStream(record, streamId) || number === undefined || !queue) return undefined;
    return Number.isFinite(sentAt) && sentAt > 0 ? sourceSequence(number, queue, sentAt) : undefined;
  }

  /** What the store's outcome means for the record: acknowledged (true), dead-lettered, or failed (throws). */
  async #decide(
    record: SQSRecord,
    planned: Plan,
    streamId: string,
    outcome: AppendOutcome | undefined,
    sequence: string | undefined,
  ): Promise<boolean> {
    const { tally } = this.#options;
    const { logger } = this.#deps;
    const keys = recordKeys(record, planned);
    switch (outcome?.status) {
      case 'stored':
        tally.stored += outcome.count ?? 1;
        logger.debug('event stored', { ...keys, version: outcome.version, events: outcome.count ?? 1 });
        return true;
      case 'duplicate':
        tally.duplicates += outcome.count ?? 1;
        logger.debug('event duplicate', { ...keys, version: outcome.version, events: outcome.count ?? 1 });
        return true;
      case 'decided':
        // Counted as duplicates (each event of a group): a redelivery acknowledged without
        // writing or sending anything.
        tally.duplicates += planned.parsed.ok === true ? messageEvents(planned.parsed).length : 1;
        logger.info(
          'redelivery of a message an earlier delivery decided (a later message of its group is stored); acknowledged',
          {
            ...keys,
            sequenceNumber: sequence,
            headSequence: outcome.headSequence,
          },
        );
        return true;
      case 'rejected':
        await this.#deadLetter(record, planned, outcome.reason, outcome.detail);
        return true;
      case 'behind':
        return this.#behind(record, planned, streamId, outcome.detail);
      case 'failed':
        logger.warn('event not stored; SQS will deliver it again', { ...keys, error: errorText(outcome.error) });
        planned.settle(false);
        throw outcome.error;
      default:
        throw new TransientStoreError(`message ${record.messageId}: the store returned no outcome (internal error)`, {
          streamId,
        });
    }
  }

  /**
   * The stream is behind `ExpectedVersion`. FIFO: the events before this one were delivered
   * first, so only a rejection explains the gap and waiting cannot help. Standard: they may
   * still be on their way; decide only when SQS will not deliver this message again
   * (docs/ARCHITECTURE.md, "One fate per record"). FIFO counts only when the message group is
   * the stream: events of one stream in several groups may arrive in any order between the groups.
   */
  async #behind(record: SQSRecord, planned: Plan, streamId: string, detail: string): Promise<boolean> {
    const last = this.#lastDelivery(record);
    if (this.#groupIsStream(record, streamId) || last) {
      const when = !last
        ? ''
        : ` (still so at delivery ${record.attributes?.ApproximateReceiveCount} of ${this.#deps.maxReceiveCount})`;
      await this.#deadLetter(record, planned, RejectionReason.WrongExpectedVersion, `${detail}${when}`);
      return true;
    }
    this.#options.tally.waiting += 1;
    this.#deps.logger.info('stream is behind ExpectedVersion; SQS will deliver the event again', {
      ...recordKeys(record, planned),
      detail,
    });
    throw new TransientStoreError(`message ${record.messageId}: ${detail}; waiting for the events before it`, {
      streamId,
    });
  }

  /** Whether SQS will never deliver this record again (its redrive policy moves it instead). */
  #lastDelivery(record: SQSRecord): boolean {
    const count = Number(record.attributes?.ApproximateReceiveCount);
    const { maxReceiveCount } = this.#deps;
    return maxReceiveCount !== undefined && Number.isFinite(count) && count >= maxReceiveCount;
  }

  async #deadLetter(record: SQSRecord, planned: Plan, reason: RejectionReason, detail: string): Promise<void> {
    const { tally, signal } = this.#options;
    try {
      await this.#deps.deadLetters.reject(
        {
          body: record.body,
          reason,
          detail,
          sourceMessageId: record.messageId,
          redriveCount: record.messageAttributes?.[MessageAttributeNames.redriveCount]?.stringValue,
          streamId: planned.streamId,
          sourceGroupId: record.attributes?.MessageGroupId,
        },
        { signal },
      );
    } catch (error) {
      tally.dlqFailures += 1;
      this.#logDlqFailure(recordKeys(record, planned), reason, error);
      throw new TransientStoreError(
        `message ${record.messageId}: rejected (${reason}) but the DLQ send failed: ${errorText(error)}`,
        { streamId: planned.streamId },
        { cause: error },
      );
    }
    tally.rejected[reason] = (tally.rejected[reason] ?? 0) + 1;
    this.#deps.logger.info('event rejected and sent to the DLQ', { ...recordKeys(record, planned), reason, detail });
  }

  #logDlqFailure(keys: RecordKeys, reason: RejectionReason, error: unknown): void {
    if (error instanceof DeadLetterRefusedError) {
      this.#deps.logger.error(
        `rejected event can never be sent to the DLQ (body ${error.bodyBytes} bytes, DLQ limit ${error.maxMessageBytes} bytes); ` +
          'it stays in the source queue, and SQS moves it to the DLQ without a reason after maxReceiveCount deliveries',
        { ...keys, reason, error: errorText(error) },
      );
    } else {
      this.#deps.logger.error('rejected event could not be sent to the DLQ; it stays in the source queue', {
        ...keys,
        reason,
        error: errorText(error),
      });
    }
  }
}
