import { parseEventBody } from '../core/event.ts';
import { itemBytes } from '../core/storable.ts';

/** How the generated workload looks. Every figure of the bench comes from the same one. */
export interface WorkloadOptions {
  /** Messages sent, redeliveries included. @default 20000 */
  readonly events: number;
  /** Streams (entities) the events are spread over, uniformly. @default 200 */
  readonly streams: number;
  /** Share of events that have the same `Timestamp` second as the previous event of their stream. @default 0.1 */
  readonly sameSecondShare: number;
  /** Share of messages that are a redelivery of an earlier message (same body). @default 0.02 */
  readonly duplicateShare: number;
  /** Largest stored item, in DynamoDB's accounting, so that one event costs one write unit. @default 1024 */
  readonly maxItemBytes: number;
  readonly seed: number;
}

export const defaultWorkload: WorkloadOptions = {
  events: 20_000,
  streams: 200,
  sameSecondShare: 0.1,
  duplicateShare: 0.02,
  maxItemBytes: 1024,
  seed: 42,
};

export interface WorkloadMessage {
  /** The SQS message id (unique per message, redeliveries included). */
  readonly messageId: string;
  readonly body: string;
  readonly streamId: string;
  /** The EventId the store derives from the body (the body sends none, as in the original design); a group's first. */
  readonly eventId: string;
  /** Every EventId the message carries: one, or a group's in order (docs/ARCHITECTURE.md, "Groups"). */
  readonly eventIds: readonly string[];
  readonly timestamp: number;
  /** A second delivery of a body already in the workload. */
  readonly redelivery: boolean;
}

export interface Workload {
  readonly options: WorkloadOptions;
  /** Standard queue order: a redelivery comes 1 to 50 messages after its original. */
  readonly standardOrder: readonly WorkloadMessage[];
  /** FIFO order: a redelivery comes right after its original (SQS redelivers a group's unacknowledged message first). */
  readonly fifoOrder: readonly WorkloadMessage[];
  readonly streamIds: readonly string[];
  /** Distinct events: what must be stored, once each. */
  readonly uniqueEvents: number;
  /** Distinct (ID, Timestamp) pairs: the most the original design's table can keep. */
  readonly distinctStreamSeconds: number;
  /** Largest item of the workload in DynamoDB's accounting, bytes. */
  readonly largestItemBytes: number;
}

/** mulberry32: a small seeded PRNG, so a run can be repeated exactly with `--seed`. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EVENT_TYPES = ['ORDER_PLACED', 'ORDER_PAID', 'ITEM_ADDED', 'ITEM_REMOVED', 'ORDER_SHIPPED'];
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];

/**
 * The item the store writes for this body (FIFO's, the larger), to keep every event within
 * `maxItemBytes`; `grouped`: with a group's `GroupSize` and `GroupIndex` (core/event.ts `eventItem`).
 */
function storedItemBytes(event: Record<string, unknown>, grouped = false): number {
  return itemBytes({
    ...event,
    Version: 99_999,
    EventId: `sha256:${'0'.repeat(64)}`,
    RecordedAt: '2026-11-24T09:00:00.000Z',
    // FIFO items carry the message's SourceSequence (core/fifo.ts): its SQS sequence number
    // (20 digits, as the bench sends them), its queue's tag and its SentTimestamp.
    SourceSequence: `${'9'.repeat(20)}@${'q'.repeat(8)}@${'9'.repeat(13)}`,
    ...(grouped ? { GroupSize: 100, GroupIndex: 99 } : {}),
  });
}

/**
 * One event as a producer of the workload sends it (no `EventId`, as in the original design),
 * trimmed so that its stored item stays within `maxItemBytes`.
 */
export function randomEvent(
  random: () => number,
  streamId: string,
  timestamp: number,
  sequence: number,
  maxItemBytes: number,
  grouped = false,
): Record<string, unknown> {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const event: Record<string, unknown> = {
    Timestamp: timestamp,
    EventType: pick(EVENT_TYPES),
    ID: streamId,
    EmitterId: `checkout-${Math.floor(random() * 8)}`,
    EmitterType: random() < 0.9 ? 'SYSTEM' : 'USER',
    Data: {
      sequence,
      amount: Math.round(random() * 100_000) / 100,
      currency: 'EUR',
      lines: Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
        sku: pick(WORDS),
        qty: 1 + Math.floor(random() * 5),
      })),
      note: Array.from({ length: 5 + Math.floor(random() * 120) }, () => pick(WORDS)).join(' '),
    },
  };
  const data = event['Data'] as { note: string };
  while (storedItemBytes(event, grouped) > maxItemBytes) data.note = data.note.slice(0, -16);
  return event;
}

/** The stream ids of a workload: the same for the same seed and count (history.ts writes to them too). */
export function streamIdsOf(options: Pick<WorkloadOptions, 'seed' | 'streams'>): string[] {
  const run = options.seed.toString(36);
  return Array.from({ length: options.streams }, (_, index) => `bench-${run}-order-${index}`);
}

/**
 * Generate a workload: `events` messages over `streams` streams, each item at most
 * `maxItemBytes`; `sameSecondShare` of events share their stream's previous second (the
 * original design silently overwrites those); `duplicateShare` of messages are redeliveries.
 */
export function generateWorkload(options: WorkloadOptions = defaultWorkload): Workload {
  const random = seededRandom(options.seed);
  const streamIds = streamIdsOf(options);
  const clocks = streamIds.map(() => 1_763_900_000 + Math.floor(random() * 86_400));
  const started = streamIds.map(() => false);
  const duplicates = Math.round(options.events * options.duplicateShare);
  const unique = options.events - duplicates;

  const originals: WorkloadMessage[] = [];
  const seconds = new Set<string>();
  let largestItemBytes = 0;
  for (let index = 0; index < unique; index += 1) {
    const stream = Math.floor(random() * options.streams);
    if (started[stream] && random() >= options.sameSecondShare) clocks[stream]! += 1 + Math.floor(random() * 3);
    started[stream] = true;
    const timestamp = clocks[stream]!;
    const event = randomEvent(random, streamIds[stream]!, timestamp, index, options.maxItemBytes);
    largestItemBytes = Math.max(largestItemBytes, storedItemBytes(event));
    const body = JSON.stringify(event);
    const parsed = parseEventBody(body);
    if (!parsed.ok) throw new Error(`bench workload made an invalid event: ${parsed.detail}`);
    if (parsed.kind !== 'event') throw new Error('bench workload made a group');
    seconds.add(`${streamIds[stream]}\u0000${timestamp}`);
    originals.push({
      messageId: `m-${index}`,
      body,
      streamId: streamIds[stream]!,
      eventId: parsed.event.EventId,
      eventIds: [parsed.event.EventId],
      timestamp,
      redelivery: false,
    });
  }
  return {
    options,
    ...withRedeliveries(originals, duplicates, random),
    streamIds,
    uniqueEvents: unique,
    distinctStreamSeconds: seconds.size,
    largestItemBytes,
  };
}

/**
 * The queue orders of `originals` with `duplicates` of them delivered twice: standard, the
 * second delivery 1 to 50 messages after the original; FIFO, right after it (SQS redelivers
 * a group's unacknowledged message first).
 */
function withRedeliveries(
  originals: readonly WorkloadMessage[],
  duplicates: number,
  random: () => number,
): Pick<Workload, 'standardOrder' | 'fifoOrder'> {
  const unique = originals.length;
  // Choose which originals are delivered twice, and where the second delivery lands.
  const chosen = new Set<number>();
  while (chosen.size < Math.min(duplicates, unique)) chosen.add(Math.floor(random() * unique));
  const laterBy = new Map<number, number>([...chosen].map((index) => [index, 1 + Math.floor(random() * 50)]));
  const copyOf = (original: WorkloadMessage, index: number): WorkloadMessage => ({
    ...original,
    messageId: `m-${index}-again`,
    redelivery: true,
  });

  const fifoOrder: WorkloadMessage[] = [];
  originals.forEach((message, index) => {
    fifoOrder.push(message);
    if (chosen.has(index)) fifoOrder.push(copyOf(message, index));
  });

  const slots: { at: number; message: WorkloadMessage }[] = originals.map((message, index) => ({ at: index, message }));
  for (const [index, gap] of laterBy) slots.push({ at: index + gap + 0.5, message: copyOf(originals[index]!, index) });
  slots.sort((a, b) => a.at - b.at);

  return { standardOrder: slots.map((slot) => slot.message), fifoOrder };
}

/**
 * The events of one producer command in the group workload: the least common multiple of the
 * group sizes the bench compares (1, 2, 5, 20), so every size splits every command evenly.
 */
export const COMMAND_EVENTS = 20;

/**
 * The group workload (docs/PERFORMANCE.md, "groups"): producer commands of 20 events each to
 * a random stream, the events as `generateWorkload` makes them (same item sizes, same share
 * in their stream's previous second, no EventId), sent `size` events per message: one event
 * per message (`size` 1, the single-event path), or groups of `size` (one transaction each).
 * Every size sends the same events to the same streams in the same order; `events` counts
 * messages as `generateWorkload` does, so the distinct events are `events` less the
 * redelivered share, rounded down to whole commands; `duplicateShare` of the messages are
 * delivered twice. Every item, with its group attributes, stays within `maxItemBytes`.
 *
 * @example
 * ```ts
 * const pairs = generateGroupWorkload({ ...defaultWorkload, events: 2_000 }, 2);
 * ```
 */
export function generateGroupWorkload(options: WorkloadOptions, size: number): Workload {
  if (!Number.isInteger(size) || size < 1 || COMMAND_EVENTS % size !== 0)
    throw new RangeError(`group size ${size} does not divide a command of ${COMMAND_EVENTS} events`);
  const random = seededRandom(options.seed);
  const streamIds = streamIdsOf(options);
  const clocks = streamIds.map(() => 1_763_900_000 + Math.floor(random() * 86_400));
  const started = streamIds.map(() => false);
  const distinct = options.events - Math.round(options.events * options.duplicateShare);
  const commands = Math.max(1, Math.floor(distinct / COMMAND_EVENTS));
  const seconds = new Set<string>();
  let largestItemBytes = 0;
  const originals: WorkloadMessage[] = [];
  for (let command = 0; command < commands; command += 1) {
    const stream = Math.floor(random() * options.streams);
    const streamId = streamIds[stream]!;
    const events: Record<string, unknown>[] = [];
    for (let index = 0; index < COMMAND_EVENTS; index += 1) {
      if (started[stream] && random() >= options.sameSecondShare) clocks[stream]! += 1 + Math.floor(random() * 3);
      started[stream] = true;
      const timestamp = clocks[stream]!;
      const event = randomEvent(
        random,
        streamId,
        timestamp,
        command * COMMAND_EVENTS + index,
        options.maxItemBytes,
        true,
      );
      largestItemBytes = Math.max(largestItemBytes, storedItemBytes(event, true));
      seconds.add(`${streamId}\u0000${timestamp}`);
      events.push(event);
    }
    for (let first = 0; first < COMMAND_EVENTS; first += size) {
      const part = events.slice(first, first + size);
      const body =
        size === 1
          ? JSON.stringify(part[0])
          : JSON.stringify({ ID: streamId, Events: part.map(({ ID: _stream, ...rest }) => rest) });
      const parsed = parseEventBody(body);
      if (!parsed.ok) throw new Error(`bench group workload made an invalid message: ${parsed.detail}`);
      const eventIds = (parsed.kind === 'event' ? [parsed.event] : parsed.group.events).map((one) => one.EventId);
      originals.push({
        messageId: `m-${originals.length}`,
        body,
        streamId,
        eventId: eventIds[0]!,
        eventIds,
        timestamp: Number(part[0]?.['Timestamp']),
        redelivery: false,
      });
    }
  }
  // Redeliveries from a stream of their own: the events are the same for every size.
  const redeliveries = seededRandom(options.seed + size);
  return {
    options,
    ...withRedeliveries(originals, Math.round(originals.length * options.duplicateShare), redeliveries),
    streamIds,
    uniqueEvents: commands * COMMAND_EVENTS,
    distinctStreamSeconds: seconds.size,
    largestItemBytes,
  };
}
