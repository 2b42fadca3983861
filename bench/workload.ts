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
  /** The EventId the store derives from the body (the body sends none, as in the original design). */
  readonly eventId: string;
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

/** The item the store writes for this body (FIFO's, the larger), to keep every event within `maxItemBytes`. */
function storedItemBytes(event: Record<string, unknown>): number {
  return itemBytes({
    ...event,
    Version: 99_999,
    EventId: `sha256:${'0'.repeat(64)}`,
    RecordedAt: '2026-11-24T09:00:00.000Z',
    // FIFO items carry the message's SourceSequence (core/fifo.ts): its SQS sequence number
    // (20 digits, as the bench sends them), its queue's tag and its SentTimestamp.
    SourceSequence: `${'9'.repeat(20)}@${'q'.repeat(8)}@${'9'.repeat(13)}`,
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
  while (storedItemBytes(event) > maxItemBytes) data.note = data.note.slice(0, -16);
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
      timestamp,
      redelivery: false,
    });
  }

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

  return {
    options,
    standardOrder: slots.map((slot) => slot.message),
    fifoOrder,
    streamIds,
    uniqueEvents: unique,
    distinctStreamSeconds: seconds.size,
    largestItemBytes,
  };
}
