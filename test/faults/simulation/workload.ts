import { validEvent } from '../../support/factories.ts';
import { Rng } from './random.ts';

/**
 * What one schedule sends and which faults it may meet, drawn from (seed, schedule index)
 * alone. Small on purpose (1 to 3 streams, 2 to 8 events, 2 to 4 containers): a short
 * schedule is fast, and its trace is readable when it breaks a promise.
 */
export interface PlannedMessage {
  readonly id: string;
  readonly body: string;
  readonly streamId: string;
  /** What the producer meant, for the trace: `s1#e2 EV=2 retry of m1 with a new ExpectedVersion`. */
  readonly label: string;
  /** The producer waits this long (virtual ms) after its previous send before sending this one. */
  readonly sendDelayMs: number;
}

/**
 * The handler's `resendWindowSeconds` in the explorer: the stack's default. A producer's resend
 * is recognised when the first copy was recorded at most this long before the resend was sent.
 */
export const SIM_RESEND_WINDOW_SECONDS = 300;

/** Probabilities; 0 turns a fault off for the schedule. */
export interface FaultRates {
  /** A DLQ send whose every SDK attempt fails (network error or 500): the handler sees the failure. */
  readonly dlqOutage: number;
  /** One SDK attempt of a DLQ send fails (the SDK retries it). */
  readonly dlqBlip: number;
  /** A DynamoDB call whose every attempt is throttled. */
  readonly dynamoOutage: number;
  /** One attempt throttled or answered with a 500. */
  readonly dynamoBlip: number;
  /** A PutItem attempt whose response is lost after DynamoDB applied it. */
  readonly lostResponse: number;
  /** A call that never answers (half of the PutItems after writing). */
  readonly hang: number;
  /** The event source mapping's delete fails after the handler succeeded. */
  readonly lostAck: number;
  /** Standard queues: a receive also hands out a copy of a message another consumer holds or deleted. */
  readonly duplicateDelivery: number;
}

export interface SchedulePlan {
  readonly seed: number;
  readonly index: number;
  readonly fifo: boolean;
  readonly containers: number;
  readonly batchSize: number;
  readonly maxReceiveCount: number;
  readonly streams: readonly string[];
  readonly messages: readonly PlannedMessage[];
  readonly faults: FaultRates;
  /**
   * The DLQ model's message size limit, scaled down from SQS's (1 MiB) so that a "body near the
   * limit" stays small: a body that fits alone but not with the rejection attributes.
   */
  readonly dlqMaxBytes: number;
  /**
   * Whether the handler is told the DLQ's limit (`dlqMaxMessageBytes`), as the stack does; when
   * not, it learns it from SQS's refusal (a queue whose limit was lowered behind its back).
   */
  readonly handlerKnowsDlqLimit: boolean;
}

export const DLQ_MAX_BYTES = 1024;

interface Draft {
  readonly streamId: string;
  readonly event: Record<string, unknown> | string;
  readonly label: string;
  /** A producer's resend of an event it sent before (same EventId): it may come much later. */
  readonly resend?: boolean;
}

function draftBody(draft: Draft): string {
  return typeof draft.event === 'string' ? draft.event : JSON.stringify(draft.event);
}

/** Insert `item` at a random place after index `after` (keeps the producer's own order before it). */
function insertLater<T>(list: T[], after: number, item: T, rng: Rng): void {
  list.splice(rng.int(after + 1, list.length), 0, item);
}

function streamDrafts(streamId: string, short: string, count: number, rng: Rng, extra: Rng): Draft[] {
  const drafts: Draft[] = [];
  let position = 0; // valid events before this one: what a correct ExpectedVersion would say
  for (let index = 0; index < count; index += 1) {
    const roll = rng.next();
    const base: Record<string, unknown> = validEvent({
      Timestamp: 1_763_900_000 + index,
      EventType: 'ORDER_UPDATED',
      ID: streamId,
      EmitterId: 'simulation',
      Data: { n: index },
    });
    if (roll < 0.07) {
      drafts.push({
        streamId,
        event: { ...base, EventType: 'not upper case' },
        label: `${short}#${index} invalid (SchemaViolation)`,
      });
      continue;
    }
    if (roll < 0.11) {
      // Near the DLQ's size limit: it fits with the reason alone (not with every rejection
      // attribute), or not even with the reason, so SQS itself moves it after maxReceiveCount.
      const tooBig = extra.chance(0.3);
      const event = { ...base, EventType: 'not upper case', Data: { n: index, pad: '' } };
      const pad = DLQ_MAX_BYTES - (tooBig ? 20 : 80) - JSON.stringify(event).length;
      event.Data.pad = 'x'.repeat(Math.max(0, pad));
      drafts.push({
        streamId,
        event,
        label: `${short}#${index} invalid and ${tooBig ? 'too large for the DLQ with its reason' : 'near the DLQ size limit'}`,
      });
      continue;
    }
    const explicitId = rng.chance(0.85);
    const event: Record<string, unknown> = { ...base, ...(explicitId ? { EventId: `${short}-e${index}` } : {}) };
    let label = `${short}#${index}${explicitId ? ` id=${short}-e${index}` : ' (derived EventId)'}`;
    if (rng.chance(0.4)) {
      const delta = rng.pick([0, 0, 0, 1, 1, -1]);
      event['ExpectedVersion'] = Math.max(0, position + delta);
      label += ` EV=${String(event['ExpectedVersion'])}${delta === 0 ? '' : delta > 0 ? ' (ahead)' : ' (behind)'}`;
    }
    position += 1;
    const at = drafts.length;
    drafts.push({ streamId, event, label });
    if (rng.chance(0.1))
      insertLater(
        drafts,
        at,
        { streamId, event, label: `${label}, producer retry of the same body`, resend: true },
        rng,
      );
    if (explicitId && event['ExpectedVersion'] !== undefined && rng.chance(0.25)) {
      const retry = { ...event, ExpectedVersion: Number(event['ExpectedVersion']) + 1 };
      insertLater(
        drafts,
        at,
        {
          streamId,
          event: retry,
          label: `${short}#${index} id=${short}-e${index} EV=${retry.ExpectedVersion}, producer retry with a new ExpectedVersion`,
          resend: true,
        },
        rng,
      );
    }
    if (explicitId && rng.chance(0.05)) {
      const conflict = { ...event, Data: { n: index, changed: true } };
      insertLater(
        drafts,
        at,
        {
          streamId,
          event: conflict,
          label: `${short}#${index} id=${short}-e${index} with other Data (EventIdConflict)`,
          resend: true,
        },
        rng,
      );
    }
  }
  return drafts;
}

export function planSchedule(seed: number, index: number): SchedulePlan {
  const rng = Rng.derive(seed, index, 'plan');
  // Draws added later come from their own stream, so a seed's earlier schedules stay the same.
  const extra = Rng.derive(seed, index, 'plan, later draws');
  const fifo = rng.chance(0.5);
  const streamCount = rng.int(1, 3);
  const total = rng.int(Math.max(2, streamCount), 8);
  const counts = Array.from({ length: streamCount }, () => 1);
  for (let added = streamCount; added < total; added += 1) {
    const slot = rng.int(0, streamCount - 1);
    counts[slot] = (counts[slot] ?? 0) + 1;
  }
  const streams = counts.map((_, slot) => `sim-${seed}-${index}-s${slot}`);
  const perStream = counts.map((count, slot) => streamDrafts(streams[slot] ?? '', `s${slot}`, count, rng, extra));
  // Interleave the streams' sends at random, each stream's own order kept.
  const drafts: Draft[] = [];
  const cursors = perStream.map(() => 0);
  for (;;) {
    const open = perStream
      .map((list, slot) => ((cursors[slot] ?? 0) < list.length ? slot : -1))
      .filter((slot) => slot >= 0);
    if (open.length === 0) break;
    const slot = rng.pick(open);
    const position = cursors[slot] ?? 0;
    drafts.push(perStream[slot]?.[position] as Draft);
    cursors[slot] = position + 1;
  }
  // A resend waits: not at all, for less than the resend window, or for longer (the bound of the
  // duplicate window: docs/ARCHITECTURE.md, "Appending and idempotency"). Its own stream of draws.
  const delays = Rng.derive(seed, index, 'plan, resend delays');
  const resendWindowMs = SIM_RESEND_WINDOW_SECONDS * 1000;
  const delayOf = (draft: Draft): number => {
    if (draft.resend !== true) return 0;
    const roll = delays.next();
    if (roll < 0.4) return 0;
    if (roll < 0.7) return delays.int(1_000, resendWindowMs - 30_000);
    return delays.int(resendWindowMs + 10_000, 3 * resendWindowMs);
  };
  const on = (rate: number): number => (rng.chance(0.5) ? rate : 0);
  const faults: FaultRates = {
    dlqOutage: on(0.3),
    dlqBlip: on(0.3),
    dynamoOutage: on(0.06),
    dynamoBlip: on(0.1),
    lostResponse: on(0.15),
    hang: on(0.04),
    lostAck: on(0.2),
    duplicateDelivery: fifo ? 0 : on(0.15),
  };
  return {
    seed,
    index,
    fifo,
    containers: rng.int(2, 4),
    batchSize: rng.int(1, 10),
    maxReceiveCount: rng.int(2, 5),
    streams,
    messages: drafts.map((draft, position) => {
      const sendDelayMs = delayOf(draft);
      return {
        id: `m${position}`,
        body: draftBody(draft),
        streamId: draft.streamId,
        label:
          sendDelayMs > 0
            ? `${draft.label}, sent ${(sendDelayMs / 1000).toFixed(0)} s after the send before it`
            : draft.label,
        sendDelayMs,
      };
    }),
    faults,
    dlqMaxBytes: DLQ_MAX_BYTES,
    handlerKnowsDlqLimit: extra.chance(0.7),
  };
}
