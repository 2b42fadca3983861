/**
 * What `publish` does: read events (JSON lines or a JSON array) or generate them, and send them
 * to the target's queue in batches, several at once.
 */
import {
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Limits } from '../core/keys.ts';
import { QueueMode } from '../core/queue-mode.ts';
import { CliError } from './errors.ts';
import { queueDepth } from './inspect.ts';
import { publishOutcomes, type PublishOutcome } from './outcomes.ts';
import type { Target } from './target.ts';

/** One message to send: its body and, for a FIFO queue, its group. */
export interface Outgoing {
  readonly body: string;
  /** The event's (or the group's) `ID` when the body has one: the FIFO message group. */
  readonly streamId: string | undefined;
  /** The event's `EventId` when it has one (a group's events carry their own). */
  readonly eventId: string | undefined;
  /**
   * How many events the message carries: the length of a group's `Events` (docs/ARCHITECTURE.md,
   * "Groups"); absent for a single event (or a body that is neither).
   */
  readonly events?: number;
}

/** The events a message carries: a group's count, else 1. */
export function eventsIn(message: Outgoing): number {
  return message.events ?? 1;
}

export interface GenerateOptions {
  readonly count: number;
  readonly streams: number;
  /** Share of events made invalid on purpose (EmitterType missing): exactly round(count x ratio). */
  readonly invalidRatio: number;
  /** Stream ids are `<prefix>-1` ... `<prefix>-<streams>`. @default `stream-<random>` */
  readonly streamPrefix?: string;
  /**
   * Send group messages of this many events each (1 to 100, docs/ARCHITECTURE.md, "Groups"), the
   * last one of the run smaller when `count` is not a multiple; `invalidRatio` then counts groups.
   * @default single events, no groups
   */
  readonly groupSize?: number;
}

function describeBody(body: string): Outgoing {
  try {
    const value = JSON.parse(body) as unknown;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const record = value as Record<string, unknown>;
      const events = record['Events'];
      return {
        body,
        streamId: typeof record['ID'] === 'string' && record['ID'] !== '' ? record['ID'] : undefined,
        eventId: typeof record['EventId'] === 'string' && record['EventId'] !== '' ? record['EventId'] : undefined,
        // A body with `Events` is a group, whatever else is wrong with it (core/event.ts `parseEvent`).
        ...(Array.isArray(events) ? { events: events.length } : {}),
      };
    }
  } catch {
    // Not JSON: sent as it is; the handler rejects it with InvalidJson.
  }
  return { body, streamId: undefined, eventId: undefined };
}

/**
 * Parse what `publish` reads: a JSON array of messages, or JSON lines (one message per line).
 * Each message is an event or a group (an object with `Events`, docs/ARCHITECTURE.md, "Groups"),
 * sent as written: nothing is validated here, so a line that is not JSON, or a group the
 * contract refuses, reaches the store and its rejection can be seen.
 */
export function parseEventsText(text: string): Outgoing[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (trimmed.startsWith('[')) {
    let items: unknown;
    try {
      items = JSON.parse(trimmed);
    } catch (error) {
      throw new CliError(
        `the input starts with [ but is not a JSON array: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (!Array.isArray(items)) throw new CliError('the input is not a JSON array');
    // Each element is sent as the producer wrote it, never re-serialised: a number a double
    // cannot hold would otherwise be rounded before it reaches the queue.
    return arrayElementTexts(trimmed).map((item) => describeBody(item));
  }
  return trimmed
    .split(/\r?\n/)
    .filter((line) => line.trim() !== '')
    .map((line) => describeBody(line.trim()));
}

/**
 * The source text of each element of a JSON array (already checked by JSON.parse): split at
 * the commas that are not inside a string or a nested value.
 */
export function arrayElementTexts(arrayText: string): string[] {
  const elements: string[] = [];
  let depth = 0;
  let inString = false;
  let start = 1;
  for (let index = 0; index < arrayText.length; index += 1) {
    const char = arrayText[index];
    if (inString) {
      if (char === '\\') index += 1;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === '[' || char === '{') depth += 1;
    else if (char === ']' || char === '}') depth -= 1;
    if ((char === ',' && depth === 1) || depth === 0) {
      const element = arrayText.slice(start, index).trim();
      if (element !== '') elements.push(element);
      start = index + 1;
      if (depth === 0) break;
    }
  }
  return elements;
}

export async function readEventsInput(file: string): Promise<Outgoing[]> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return parseEventsText(Buffer.concat(chunks).toString('utf8'));
  }
  try {
    return parseEventsText(await readFile(file, 'utf8'));
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** Exactly round(count x ratio) indexes, picked by a hash so they fall on many streams. */
export function invalidSlots(count: number, ratio: number, seed: string): Set<number> {
  const rank = (index: number) => createHash('sha256').update(`${seed}:${index}`).digest().readUInt32BE(0);
  const order = Array.from({ length: count }, (_, index) => index).sort((a, b) => rank(a) - rank(b));
  return new Set(order.slice(0, Math.round(count * ratio)));
}

/** The generator's event for `sequence` in its stream; without `EmitterType` when invalid. */
function generatedEvent(streamId: string, sequence: number, index: number, now: number, invalid: boolean) {
  const event: Record<string, unknown> = {
    Timestamp: now,
    EventType: sequence === 1 ? 'ITEM_CREATED' : 'ITEM_UPDATED',
    ID: streamId,
    EmitterId: 'eventstore-cli',
    EmitterType: 'SYSTEM',
    Data: { sequence, index },
  };
  if (invalid) delete event['EmitterType'];
  return event;
}

/**
 * Generated events: round-robin over the streams, one message at a time (an event, or with
 * `groupSize` a group of that many events of one stream); each event's Data carries its
 * sequence in the stream and its index in the run. The invalid ones lack `EmitterType` (a
 * SchemaViolation that `redrive --set EmitterType=SYSTEM` repairs); in an invalid group, its
 * first event lacks it, so the whole group is rejected (`redrive --set Events.0.EmitterType=SYSTEM`).
 */
export function generateEvents(options: GenerateOptions): { events: Outgoing[]; streamIds: string[]; invalid: number } {
  const prefix = options.streamPrefix ?? `stream-${randomBytes(3).toString('hex')}`;
  const streamIds = Array.from({ length: options.streams }, (_, index) => `${prefix}-${index + 1}`);
  const perStream = new Map<string, number>();
  const now = Math.floor(Date.now() / 1000);
  const size = options.groupSize ?? 1;
  const messages = Math.ceil(options.count / size);
  const invalidAt = invalidSlots(messages, options.invalidRatio, prefix);
  const events = Array.from({ length: messages }, (_, message) => {
    const streamId = streamIds[message % streamIds.length]!;
    const first = message * size;
    const members = Array.from({ length: Math.min(size, options.count - first) }, (_, offset) => {
      const sequence = (perStream.get(streamId) ?? 0) + 1;
      perStream.set(streamId, sequence);
      return generatedEvent(streamId, sequence, first + offset, now, offset === 0 && invalidAt.has(message));
    });
    if (options.groupSize === undefined) return describeBody(JSON.stringify(members[0]));
    return describeBody(JSON.stringify({ ID: streamId, Events: members.map(({ ID: _stream, ...event }) => event) }));
  });
  return { events, streamIds, invalid: invalidAt.size };
}

/** FIFO message group: the stream id (events of an entity stay in order); bodies without one share a group. */
function groupOf(message: Outgoing): string {
  return message.streamId ?? 'no-stream-id';
}

/**
 * FIFO deduplication id: a hash of the body. A retry of the same event is dropped by SQS;
 * another event that reuses an EventId still reaches the store, which rejects it
 * (EventIdConflict) instead of SQS dropping it silently.
 */
function deduplicationId(message: Outgoing): string {
  return createHash('sha256').update(message.body).digest('hex');
}

/**
 * A queue's MaximumMessageSize when it cannot be read: SQS's default before 2026. SQS limits a
 * SendMessageBatch request (the sum of its bodies) to the same size as one message.
 */
export const FALLBACK_MAX_MESSAGE_BYTES = 256 * 1024;

/** The queue's MaximumMessageSize (bytes), which also bounds one SendMessageBatch request. */
export async function maxMessageBytesOf(target: Target): Promise<number> {
  try {
    const { Attributes } = await target.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: target.queueUrl, AttributeNames: ['MaximumMessageSize'] }),
    );
    const size = Number(Attributes?.['MaximumMessageSize']);
    return Number.isInteger(size) && size > 0 ? size : FALLBACK_MAX_MESSAGE_BYTES;
  } catch {
    return FALLBACK_MAX_MESSAGE_BYTES;
  }
}

/** Consecutive batches of at most 10 messages (Limits.maxSqsBatch) whose bodies fit one request of `maxBytes` (a larger body goes alone; SQS refuses it). */
export function batchesOf(messages: readonly Outgoing[], maxBytes: number = FALLBACK_MAX_MESSAGE_BYTES): Outgoing[][] {
  const batches: Outgoing[][] = [];
  let current: Outgoing[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = Buffer.byteLength(message.body, 'utf8');
    if (current.length === Limits.maxSqsBatch || (current.length > 0 && bytes + size > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Why SQS would refuse this message whatever the batch: its body is over the queue's `MaximumMessageSize`. */
function tooLarge(message: Outgoing, maxBytes: number): string | undefined {
  const bytes = Buffer.byteLength(message.body, 'utf8');
  if (bytes <= maxBytes) return undefined;
  const what = message.events !== undefined ? `a group of ${message.events} events` : 'a message';
  const stream = message.streamId !== undefined ? ` of stream ${message.streamId}` : '';
  const advice =
    message.events !== undefined
      ? 'split the group into several messages'
      : 'store large payloads elsewhere (S3) and send a reference';
  return `${what}${stream} takes ${bytes} bytes, over the queue's MaximumMessageSize of ${maxBytes}; ${advice}`;
}

export interface PublishReport {
  readonly sent: number;
  readonly failed: number;
  readonly errors: string[];
  readonly seconds: number;
}

export interface PublishOptions {
  /** Batches in flight at once. @default 8 */
  readonly parallel?: number;
  /** Attempts per message (batch-level and per-entry failures). @default 5 */
  readonly attempts?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Send messages in batches of 10 (fewer when their bodies would pass the queue's MaximumMessageSize, which
 * bounds a batch request too), several batches at once. On a FIFO queue each message gets
 * its group (the stream id) and a deduplication id (a hash of the body), and
 * the messages of one group are sent by one lane in order, so a stream's events keep their
 * order. Entries that fail are retried with backoff (`attempts` in all); what still fails is
 * counted, not thrown.
 */
export async function publishMessages(
  target: Target,
  messages: readonly Outgoing[],
  options: PublishOptions = {},
): Promise<PublishReport> {
  const started = Date.now();
  const parallel = Math.max(1, options.parallel ?? 8);
  const attempts = Math.max(1, options.attempts ?? 5);
  const fifo = target.queueMode === QueueMode.fifo;
  // Lanes: FIFO puts a whole group in one lane (sequential sends keep its order).
  const lanes: Outgoing[][] = Array.from({ length: parallel }, () => []);
  messages.forEach((message, index) => {
    const lane = fifo
      ? createHash('md5').update(groupOf(message)).digest().readUInt32BE(0) % parallel
      : index % parallel;
    lanes[lane]!.push(message);
  });
  let done = 0;
  let failed = 0;
  const errors: string[] = [];

  async function sendBatch(batch: readonly Outgoing[]): Promise<void> {
    let pending = batch.map((message, index) => ({ message, id: String(index) }));
    for (let attempt = 1; pending.length > 0; attempt += 1) {
      const entries: SendMessageBatchRequestEntry[] = pending.map(({ message, id }) => ({
        Id: id,
        MessageBody: message.body,
        ...(fifo ? { MessageGroupId: groupOf(message), MessageDeduplicationId: deduplicationId(message) } : {}),
      }));
      let retry: typeof pending = [];
      let lastError = '';
      try {
        const result = await target.sqs.send(
          new SendMessageBatchCommand({ QueueUrl: target.queueUrl, Entries: entries }),
        );
        done += result.Successful?.length ?? 0;
        for (const failure of result.Failed ?? []) {
          const entry = pending.find(({ id }) => id === failure.Id);
          if (!entry) continue;
          lastError = `${failure.Code}: ${failure.Message ?? ''}`;
          if (failure.SenderFault) {
            failed += 1;
            errors.push(lastError);
          } else retry.push(entry);
        }
      } catch (error) {
        lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        retry = pending;
      }
      if (retry.length > 0 && attempt >= attempts) {
        failed += retry.length;
        errors.push(lastError);
        retry = [];
      }
      pending = retry;
      options.onProgress?.(done + failed, messages.length);
      if (pending.length > 0) await sleep(Math.random() * Math.min(2000, 50 * 2 ** attempt));
    }
  }

  const maxBytes = await maxMessageBytesOf(target);
  await Promise.all(
    lanes.map(async (lane) => {
      // A body over the queue's limit is refused by SQS at every attempt: say so at once.
      const fits = lane.filter((message) => {
        const refusal = tooLarge(message, maxBytes);
        if (refusal) {
          failed += 1;
          errors.push(refusal);
          options.onProgress?.(done + failed, messages.length);
        }
        return !refusal;
      });
      for (const batch of batchesOf(fits, maxBytes)) await sendBatch(batch);
    }),
  );
  return { sent: done, failed, errors: [...new Set(errors)], seconds: (Date.now() - started) / 1000 };
}

/** What became of the messages of a publish, once decided (or when `publish --wait` gave up). */
export interface WaitReport {
  /** Messages stored (or found stored already): an event, or a whole group. */
  readonly stored: number;
  readonly rejected: number;
  /** Rejected messages, by RejectionReason (`(no reason: maxReceiveCount)` for what SQS moved). */
  readonly reasons: ReadonlyMap<string, number>;
  /** Neither stored nor dead-lettered when the wait ended (0 unless it timed out). */
  readonly pending: number;
  /** The events in those messages (a group counts its `Events`); equal to the messages when no group was sent. */
  readonly events: { readonly stored: number; readonly rejected: number; readonly pending: number };
  /** Whether any message was a group: the report then counts messages and events apart. */
  readonly groups: boolean;
  readonly seconds: number;
}

export interface WaitOptions {
  /** Epoch ms the first message was sent: dead letters and copies from before are someone else's. */
  readonly since: number;
  /** Give up after this long. @default 300 000 */
  readonly timeoutMs?: number;
  /** Between two looks. @default 500 */
  readonly everyMs?: number;
  readonly onProgress?: (decided: number, total: number) => void;
}

/** Looks without progress after which `waitForOutcomes` looks in the dead-letter queue even though the queue is not empty. */
const STALLED_LOOKS = 10;

/** Tally outcomes into a report; `sizes[i]` is how many events body i carries (a group's, or 1). */
export function waitReport(
  outcomes: readonly PublishOutcome[],
  sizes: readonly number[],
  groups: boolean,
  started: number,
): WaitReport {
  const reasons = new Map<string, number>();
  const messages = { stored: 0, rejected: 0, pending: 0 };
  const events = { stored: 0, rejected: 0, pending: 0 };
  outcomes.forEach((outcome, index) => {
    messages[outcome.status] += 1;
    events[outcome.status] += sizes[index] ?? 1;
    if (outcome.status !== 'rejected') return;
    const reason = outcome.reason || '(no reason: maxReceiveCount)';
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  });
  return { ...messages, reasons, events, groups, seconds: (Date.now() - started) / 1000 };
}

/**
 * `publish --wait`: look until every sent body is stored in its stream or dead-lettered
 * (cli/outcomes.ts says how each is recognised), or the timeout passes. The streams are read on
 * every look; the dead-letter queue only once the source queue is empty (nothing waiting or in
 * flight: every message handled), because looking there receives its messages for a moment.
 */
export async function waitForOutcomes(
  target: Target,
  bodies: readonly string[],
  options: WaitOptions,
): Promise<WaitReport> {
  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? 300_000);
  const described = bodies.map((body) => describeBody(body));
  const sizes = described.map(eventsIn);
  const groups = described.some((message) => message.events !== undefined);
  let stalled = 0;
  let lastPending = -1;
  for (;;) {
    const depth = await queueDepth(target, target.queueUrl);
    const drained = depth.visible + depth.inFlight + depth.delayed === 0;
    // Others may keep a shared queue busy: look in the dead-letter queue too when nothing moved for a while.
    const deadLetters = drained || stalled >= STALLED_LOOKS;
    const outcomes = await publishOutcomes(target, bodies, { since: options.since, deadLetters });
    const report = waitReport(outcomes, sizes, groups, started);
    stalled = deadLetters || report.pending !== lastPending ? 0 : stalled + 1;
    lastPending = report.pending;
    options.onProgress?.(bodies.length - report.pending, bodies.length);
    if (report.pending === 0 || Date.now() >= deadline) return report;
    await sleep(options.everyMs ?? 500);
  }
}
