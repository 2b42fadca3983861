import { parseEventBody } from '../../../core/event.ts';
import { eventItem, LARGEST_VERSION, PLACEHOLDER_RECORDED_AT, PLACEHOLDER_SEQUENCE } from '../../../core/event.ts';
import { sourceSequence } from '../../../core/fifo.ts';
import { Limits } from '../../../core/keys.ts';
import { LOCAL_ACCOUNT, LOCAL_REGION } from '../../../local/defaults.ts';
import { itemBytes } from '../../../core/storable.ts';
import { validEvent } from '../../support/factories.ts';
import { Rng } from './random.ts';

/**
 * What one schedule sends and which faults it may meet, drawn from (seed, schedule index)
 * alone. Most schedules are small on purpose (1 to 3 streams, 2 to 8 events, 2 to 4
 * containers): a short schedule is fast, and its trace is readable when it breaks a promise.
 * Some walk the longer paths (issue 19): a stream with a history longer than its duplicate
 * window, a `dedupWindow` of 1 to 5, a long schedule (12 to 24 events) in batches of more
 * than 10 records, FIFO message groups other than the stream id, the source queue deleted and
 * created again (its sequence numbers start again), containers whose clocks are off by up to
 * the stated allowance (1 s), and an item within a few bytes of DynamoDB's 400 KB.
 */
export interface PlannedMessage {
  readonly id: string;
  readonly body: string;
  readonly streamId: string;
  /** What the producer meant, for the trace: `s1#e2 EV=2 retry of m1 with a new ExpectedVersion`. */
  readonly label: string;
  /** The producer waits this long (virtual ms) after its previous send before sending this one. */
  readonly sendDelayMs: number;
  /** FIFO: the message group the producer sends it in. */
  readonly group: string | undefined;
  /** Which incarnation of the source queue it is sent to (0 first; 1 after the queue was deleted and created again). */
  readonly incarnation: number;
}

/** An event stored before the schedule starts (a table that outlives queues, and streams longer than the window). */
export interface HistoryEvent {
  readonly streamId: string;
  readonly version: number;
  readonly body: string;
  /** Virtual epoch ms: when it was recorded. */
  readonly recordedAt: number;
  /** FIFO, group = stream id: the sequence number of the message it came in, on an earlier queue. */
  readonly sequence: string | undefined;
}

/**
 * The handler's `resendWindowSeconds` in the explorer: the stack's default. A producer's resend
 * is recognised when the first copy was recorded at most this long before the resend was sent.
 */
export const SIM_RESEND_WINDOW_SECONDS = 300;

/** The virtual time a schedule starts at. */
export const EPOCH = Date.UTC(2026, 0, 1);

/** Each writer's clock is within this of SQS's (core/store.ts `CLOCK_SKEW_MS`: 2 s between two writers). */
export const CLOCK_ALLOWANCE_MS = 1_000;

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
  /** A write attempt (PutItem, TransactWriteItems) whose response is lost after DynamoDB applied it. */
  readonly lostResponse: number;
  /** A call that never answers (half of the writes after writing). */
  readonly hang: number;
  /** The event source mapping's delete fails after the handler succeeded. */
  readonly lostAck: number;
  /** Standard queues: a receive also hands out a copy of a message another consumer holds or deleted. */
  readonly duplicateDelivery: number;
  /** A group's transaction cancelled (TransactionConflict or ThrottlingError on one item), nothing written. */
  readonly cancelled: number;
}

/**
 * FIFO message groups: the stream id (the documented setting, with the sequence-number rule), one
 * group for every stream (order per stream still kept by SQS), or each message in one of two
 * groups (a stream's events may arrive in any order between them).
 */
export type GroupMode = 'id' | 'shared' | 'scattered';

export interface SchedulePlan {
  readonly seed: number;
  readonly index: number;
  readonly fifo: boolean;
  readonly containers: number;
  readonly batchSize: number;
  readonly maxReceiveCount: number;
  /** The handler's `dedupWindow` (the stack's default 50, or 1 to 5 to walk streams longer than it). */
  readonly dedupWindow: number;
  readonly groupMode: GroupMode;
  readonly streams: readonly string[];
  readonly history: readonly HistoryEvent[];
  readonly messages: readonly PlannedMessage[];
  /** Per queue incarnation: the first sequence number it gives (FIFO). */
  readonly sequenceBases: readonly bigint[];
  /** Per queue incarnation: its name (the ARN Lambda hands the handler): the same name again, or a renamed queue. */
  readonly queueNames: readonly string[];
  /** Per container slot: how far its clock is off SQS's (virtual ms, within `CLOCK_ALLOWANCE_MS`). */
  readonly clockOffsetsMs: readonly number[];
  readonly faults: FaultRates;
  /**
   * The DLQ model's message size limit, scaled down from SQS's (1 MiB) so that a "body near the
   * limit" stays small: a body that fits alone but not with the rejection attributes. SQS's
   * own 1 MiB in a schedule with an item near 400 KB.
   */
  readonly dlqMaxBytes: number;
  /**
   * Whether the handler is told the DLQ's limit (`dlqMaxMessageBytes`), as the stack does; when
   * not, it learns it from SQS's refusal (a queue whose limit was lowered behind its back).
   */
  readonly handlerKnowsDlqLimit: boolean;
  /** What makes this schedule walk a longer path, for the trace. */
  readonly paths: readonly string[];
  /** Share of a stream's slots sent as a group of 1 to 5 events (0: single events only). */
  readonly groupShare: number;
}

export const DLQ_MAX_BYTES = 1024;
const SQS_MAX_BYTES = 1024 * 1024;

/**
 * The duplicate window the README promises for this schedule's messages: `dedupWindow`
 * events; FIFO at least a full FIFO batch (issue 19: `max(10, dedupWindow)`).
 */
export function promisedWindow(plan: Pick<SchedulePlan, 'fifo' | 'dedupWindow'>): number {
  return plan.fifo ? Math.max(Limits.maxFifoBatchSize, plan.dedupWindow) : plan.dedupWindow;
}

interface Draft {
  readonly streamId: string;
  /** One event's body, or a group's (`{ ID, ExpectedVersion?, Events }`, docs/ARCHITECTURE.md "Groups"). */
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

function baseEvent(streamId: string, index: number): Record<string, unknown> {
  return validEvent({
    Timestamp: 1_763_900_000 + index,
    EventType: 'ORDER_UPDATED',
    ID: streamId,
    EmitterId: 'simulation',
    Data: { n: index },
  });
}

/**
 * An event whose item is `delta` bytes from DynamoDB's 400 KB as core/storable.ts counts it
 * (at the largest version, as the ingest checks it), with `negatives` copies of -1.1 in its Data (numbers whose size the issue says is
 * under-counted): DynamoDB Local decides.
 */
function nearLimitEvent(event: Record<string, unknown>, delta: number, negatives: number): Record<string, unknown> {
  const data: Record<string, unknown> = { ...(event['Data'] as Record<string, unknown>), pad: '' };
  if (negatives > 0) data['nums'] = Array.from({ length: negatives }, () => -1.1);
  const sized = { ...event, Data: data };
  const parsed = parseEventBody(JSON.stringify(sized));
  if (!parsed.ok || parsed.kind !== 'event') return sized;
  const bytes = itemBytes(eventItem(parsed.event, LARGEST_VERSION, PLACEHOLDER_RECORDED_AT, PLACEHOLDER_SEQUENCE));
  data['pad'] = 'x'.repeat(Math.max(0, Limits.maxItemBytes + delta - bytes));
  return sized;
}

interface StreamPlan {
  readonly streamId: string;
  readonly short: string;
  readonly count: number;
  readonly history: readonly HistoryEvent[];
  readonly dlqMaxBytes: number;
  /** Make one of its valid events an item near 400 KB. */
  readonly nearLimit: boolean;
  /** Share of its messages sent as a group of 1 to 5 events (docs/ARCHITECTURE.md, "Groups"). */
  readonly groupShare: number;
}

/** The largest group the explorer sends: small, so a trace stays readable (the contract allows 100). */
export const SIM_MAX_GROUP = 5;

/** Event `j` of the group sent at place `index` of its stream. */
function groupEvent(index: number, j: number): Record<string, unknown> {
  return {
    Timestamp: 1_763_900_000 + index,
    EventType: 'ORDER_UPDATED',
    EmitterId: 'simulation',
    EmitterType: 'SYSTEM',
    Data: { n: index, j },
  };
}

function groupBody(
  streamId: string,
  events: readonly Record<string, unknown>[],
  expected?: number,
): Record<string, unknown> {
  return { ID: streamId, ...(expected === undefined ? {} : { ExpectedVersion: expected }), Events: events };
}

function eventsOf(group: Record<string, unknown>): Record<string, unknown>[] {
  return group['Events'] as Record<string, unknown>[];
}

function idsText(events: readonly Record<string, unknown>[]): string {
  return events.map((event) => String(event['EventId'] ?? 'derived')).join(',');
}

/**
 * A group the contract refuses as a whole: one bad event, an `ID` inside an event, two events
 * with one EventId, or no events (core/event.ts `parseEventBody`).
 */
function invalidGroup(
  streamId: string,
  short: string,
  index: number,
  size: number,
  groups: Rng,
): { group: Record<string, unknown>; flaw: string } {
  const events: Record<string, unknown>[] = Array.from({ length: size }, (_, j) => ({
    ...groupEvent(index, j),
    EventId: `${short}-e${index}.${j}`,
  }));
  const j = groups.int(0, size - 1);
  const flaw = groups.pick(['bad event', 'bad event', 'ID in an event', 'one EventId twice', 'no events'] as const);
  if (flaw === 'no events') return { group: groupBody(streamId, []), flaw: 'no events' };
  if (flaw === 'one EventId twice' && size >= 2) {
    events[size - 1] = { ...events[size - 1], EventId: `${short}-e${index}.0` };
    return { group: groupBody(streamId, events), flaw: `Events[0] and Events[${size - 1}] with one EventId` };
  }
  if (flaw === 'ID in an event') {
    events[j] = { ...events[j], ID: streamId };
    return { group: groupBody(streamId, events), flaw: `Events[${j}].ID set` };
  }
  events[j] = { ...events[j], EventType: 'not upper case' };
  return { group: groupBody(streamId, events), flaw: `Events[${j}] invalid` };
}

/**
 * What one stream's producer sends, in its order: single events and (in schedules with groups)
 * groups of 1 to 5 events with the same rules (an `ExpectedVersion` right, ahead or behind; a
 * bad event; resends of the same body, with a new `ExpectedVersion`, with other content), plus
 * resends only a group has: one more event, fewer events, one of its events alone, and a single
 * event resent inside a group. `rng` and `extra` are drawn exactly as for single events, so a
 * schedule without groups sends what it sent before groups existed; `groups` draws the rest.
 */
function streamDrafts(stream: StreamPlan, rng: Rng, extra: Rng, groups: Rng): Draft[] {
  const { streamId, short, count, history } = stream;
  const drafts: Draft[] = [];
  let position = history.length; // valid events before this one: what a correct ExpectedVersion would say
  let nearLimitAt = stream.nearLimit ? extra.int(0, count - 1) : -1;
  for (let index = 0; index < count; index += 1) {
    const roll = rng.next();
    const base = baseEvent(streamId, index);
    // A group, except at the slot of the item near 400 KB (its size is counted for one event).
    const size = groups.chance(stream.groupShare) && nearLimitAt !== index ? groups.int(1, SIM_MAX_GROUP) : 0;
    if (roll < 0.07) {
      if (size > 0) {
        const { group, flaw } = invalidGroup(streamId, short, index, size, groups);
        drafts.push({ streamId, event: group, label: `${short}#${index} group of ${size}, invalid (${flaw})` });
      } else {
        drafts.push({
          streamId,
          event: { ...base, EventType: 'not upper case' },
          label: `${short}#${index} invalid (SchemaViolation)`,
        });
      }
      if (nearLimitAt === index) nearLimitAt += 1;
      continue;
    }
    if (roll < 0.11) {
      // Near the DLQ's size limit: it fits with the reason alone (not with every rejection
      // attribute), or not even with the reason, so SQS itself moves it after maxReceiveCount.
      const tooBig = extra.chance(0.3);
      const margin = tooBig ? 20 : 80;
      const described = tooBig ? 'too large for the DLQ with its reason' : 'near the DLQ size limit';
      if (size > 0) {
        const data = { n: index, j: size - 1, pad: '' };
        const events: Record<string, unknown>[] = Array.from({ length: size }, (_, j) => ({
          ...groupEvent(index, j),
          EventId: `${short}-e${index}.${j}`,
        }));
        events[size - 1] = { ...events[size - 1], EventType: 'not upper case', Data: data };
        const group = groupBody(streamId, events);
        const pad = stream.dlqMaxBytes - margin - JSON.stringify(group).length;
        data.pad = 'x'.repeat(Math.max(0, Math.min(pad, 2_000)));
        drafts.push({
          streamId,
          event: group,
          label: `${short}#${index} group of ${size}, Events[${size - 1}] invalid, ${described}`,
        });
      } else {
        const event = { ...base, EventType: 'not upper case', Data: { n: index, pad: '' } };
        const pad = stream.dlqMaxBytes - margin - JSON.stringify(event).length;
        event.Data.pad = 'x'.repeat(Math.max(0, Math.min(pad, 2_000)));
        drafts.push({ streamId, event, label: `${short}#${index} invalid and ${described}` });
      }
      if (nearLimitAt === index) nearLimitAt += 1;
      continue;
    }
    const explicitId = rng.chance(0.85);
    const expecting = rng.chance(0.4);
    const delta = expecting ? rng.pick([0, 0, 0, 1, 1, -1]) : 0;
    const expected = expecting ? Math.max(0, position + delta) : undefined;
    const expectation =
      expected === undefined ? '' : ` EV=${expected}${delta === 0 ? '' : delta > 0 ? ' (ahead)' : ' (behind)'}`;
    let event: Record<string, unknown>;
    let label: string;
    if (size > 0) {
      // Explicit EventIds, now and then one event without (its id is derived from the group).
      const derivedAt = explicitId && groups.chance(0.15) ? groups.int(0, size - 1) : -1;
      const events = Array.from({ length: size }, (_, j) => ({
        ...groupEvent(index, j),
        ...(explicitId && j !== derivedAt ? { EventId: `${short}-e${index}.${j}` } : {}),
      }));
      event = groupBody(streamId, events, expected);
      label = `${short}#${index} group of ${size} [${idsText(events)}]${expectation}`;
    } else {
      event = { ...base, ...(explicitId ? { EventId: `${short}-e${index}` } : {}) };
      if (expected !== undefined) event['ExpectedVersion'] = expected;
      label = `${short}#${index}${explicitId ? ` id=${short}-e${index}` : ' (derived EventId)'}${expectation}`;
    }
    if (nearLimitAt === index) {
      const delta = extra.int(-6, 6);
      const negatives = extra.pick([0, 0, 100, 400]);
      event = nearLimitEvent(event, delta, negatives);
      label += ` ${delta >= 0 ? '+' : ''}${delta} bytes from 400 KB as core/storable.ts counts it${negatives > 0 ? `, with ${negatives} x -1.1` : ''}`;
    }
    position += Math.max(1, size);
    const at = drafts.length;
    drafts.push({ streamId, event, label });
    const resend = (draft: Omit<Draft, 'streamId' | 'resend'>, from: Rng): void =>
      insertLater(drafts, at, { streamId, ...draft, resend: true }, from);
    if (rng.chance(0.1)) resend({ event, label: `${label}, producer retry of the same body` }, rng);
    if (explicitId && expected !== undefined && rng.chance(0.25)) {
      const retry = { ...event, ExpectedVersion: expected + 1 };
      resend(
        {
          event: retry,
          label:
            size > 0
              ? `${short}#${index} group of ${size} EV=${expected + 1}, producer retry with a new ExpectedVersion`
              : `${short}#${index} id=${short}-e${index} EV=${expected + 1}, producer retry with a new ExpectedVersion`,
        },
        rng,
      );
    }
    // A resend with other content: more often where the window is short (issue 19, case 3).
    if (explicitId && extra.chance(stream.history.length > 0 || count > 8 ? 0.2 : 0.08)) {
      if (size > 0) {
        const j = groups.int(0, size - 1);
        const events = eventsOf(event).map((one, k) =>
          k === j ? { ...one, Data: { n: index, j, changed: true } } : one,
        );
        resend(
          {
            event: { ...event, Events: events },
            label: `${short}#${index} group of ${size} with other Data in Events[${j}]`,
          },
          extra,
        );
      } else {
        resend(
          {
            event: { ...event, Data: { n: index, changed: true } },
            label: `${short}#${index} id=${short}-e${index} with other Data`,
          },
          extra,
        );
      }
    }
    if (!explicitId) continue;
    if (size > 0) {
      // Resends only a group has (issue 22): "some in the window and others not" is a conflict.
      const events = eventsOf(event);
      if (groups.chance(0.15)) {
        const more = [...events, { ...groupEvent(index, size), EventId: `${short}-e${index}.${size}` }];
        resend(
          {
            event: groupBody(streamId, more),
            label: `${short}#${index} group of ${size} resent with one more event [${idsText(more)}]`,
          },
          groups,
        );
      }
      if (size >= 2 && groups.chance(0.1)) {
        const fewer = events.slice(0, groups.int(1, size - 1));
        resend(
          {
            event: groupBody(streamId, fewer),
            label: `${short}#${index} group of ${size} resent with its first ${fewer.length} events`,
          },
          groups,
        );
      }
      if (groups.chance(0.1)) {
        const j = groups.int(0, size - 1);
        const alone: Record<string, unknown> = { ...events[j], ID: streamId };
        resend(
          {
            event: alone,
            label: `${short}#${index} Events[${j}] (${String(alone['EventId'] ?? 'derived')}) resent alone`,
          },
          groups,
        );
      }
    } else if (groups.chance(stream.groupShare * 0.3)) {
      const { ID: _stream, ExpectedVersion: _expected, ...alone } = event;
      const events = [alone, { ...groupEvent(index, 1), EventId: `${short}-e${index}.1` }];
      resend(
        {
          event: groupBody(streamId, events),
          label: `${short}#${index} id=${short}-e${index} resent in a group with a new event`,
        },
        groups,
      );
    }
  }
  // Resends of events stored before the schedule, the same or with other content.
  for (const old of history) {
    if (!extra.chance(0.3)) continue;
    const parsed = JSON.parse(old.body) as Record<string, unknown>;
    const other = extra.chance(0.5);
    const event = other ? { ...parsed, Data: { ...(parsed['Data'] as object), changed: true } } : parsed;
    insertLater(
      drafts,
      -1,
      {
        streamId,
        event,
        label: `id=${String(parsed['EventId'])} (stored at v${old.version} before the schedule)${other ? ' with other Data' : ', same body'}`,
        resend: true,
      },
      extra,
    );
  }
  return drafts;
}

/** Events stored before the schedule: recorded recently (inside the resend window) or long ago. */
function planHistory(streamId: string, short: string, count: number, sequenced: boolean, rng: Rng): HistoryEvent[] {
  const recent = rng.chance(0.7);
  const sequenceBase = rng.pick([900_000n, 30_000_000_000_000_000_000n]);
  // As this version stores it (number, queue tag, send time), from a queue of the same name
  // (deleted and created again) or of another; or as an earlier version did (the number alone).
  const tagged = rng.chance(0.6);
  const arn = `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${rng.pick(['ingest.fifo', 'old-ingest.fifo'])}`;
  let at = EPOCH - (recent ? rng.int(count * 1_000, 200_000) : rng.int(3_600_000, 86_400_000));
  return Array.from({ length: count }, (_, index) => {
    at += rng.int(0, 1_000);
    const event = { ...baseEvent(streamId, 1000 + index), EventId: `${short}-h${index}` };
    return {
      streamId,
      version: index + 1,
      body: JSON.stringify(event),
      recordedAt: Math.min(at, EPOCH - 1),
      sequence: !sequenced
        ? undefined
        : tagged
          ? sourceSequence(String(sequenceBase + BigInt(index)).padStart(20, '0'), arn, Math.min(at, EPOCH - 1) - 50)
          : String(sequenceBase + BigInt(index)).padStart(20, '0'),
    };
  });
}

export function planSchedule(seed: number, index: number): SchedulePlan {
  const rng = Rng.derive(seed, index, 'plan');
  // Draws added later come from their own stream.
  const extra = Rng.derive(seed, index, 'plan, later draws');
  const paths = Rng.derive(seed, index, 'plan, longer paths');
  // Groups (issue 22) draw from their own stream: a schedule without groups is as before.
  const groups = Rng.derive(seed, index, 'plan, groups');
  const groupShare = groups.chance(0.7) ? groups.pick([0.2, 0.35, 0.5]) : 0;
  const fifo = rng.chance(0.5);
  const long = paths.chance(0.06);
  const streamCount = long ? paths.int(1, 2) : rng.int(1, 3);
  const total = long ? paths.int(12, 24) : rng.int(Math.max(2, streamCount), 8);
  const counts = Array.from({ length: streamCount }, () => 1);
  for (let added = streamCount; added < total; added += 1) {
    const slot = rng.int(0, streamCount - 1);
    counts[slot] = (counts[slot] ?? 0) + 1;
  }
  const dedupWindow = paths.chance(0.5) ? Limits.defaultDedupWindow : paths.pick([1, 2, 3, 5]);
  const groupMode: GroupMode = fifo ? paths.pick<GroupMode>(['id', 'id', 'id', 'shared', 'scattered']) : 'id';
  const nearLimit = paths.chance(0.04);
  const dlqMaxBytes = nearLimit ? SQS_MAX_BYTES : DLQ_MAX_BYTES;
  const streams = counts.map((_, slot) => `sim-${seed}-${index}-s${slot}`);
  const withHistory = paths.chance(0.3);
  const history: HistoryEvent[] = [];
  const perStream = counts.map((count, slot) => {
    const streamId = streams[slot] ?? '';
    const before = withHistory && paths.chance(0.7) ? paths.int(1, 14) : 0;
    const old = planHistory(streamId, `s${slot}`, before, fifo && groupMode === 'id', paths);
    history.push(...old);
    return streamDrafts(
      { streamId, short: `s${slot}`, count, history: old, dlqMaxBytes, nearLimit: nearLimit && slot === 0, groupShare },
      rng,
      extra,
      groups,
    );
  });
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
    cancelled: groupShare > 0 && groups.chance(0.5) ? 0.15 : 0,
  };
  const containers = rng.int(2, 4);
  let batchSize = rng.int(1, 10);
  const maxReceiveCount = rng.int(2, 5);
  // Standard queues take batches of up to 10,000 records (with a batching window): above 10.
  if (!fifo && (long || paths.chance(0.1))) batchSize = paths.int(11, 60);
  // The source queue deleted and created again part way (docs/OPERATIONS.md: a mode switch and
  // back, or a stack upgrade that renames the queue): the new one numbers from 1, like the local
  // SQS server, or from higher numbers.
  const switchAt = drafts.length > 1 && paths.chance(fifo ? 0.25 : 0.08) ? paths.int(1, drafts.length - 1) : undefined;
  const firstBase = paths.pick([1n, 18_000_000_000_000_000_000n]);
  const sequenceBases = [firstBase, paths.chance(0.7) ? 1n : firstBase + 1_000_000n];
  const queueName = fifo ? 'ingest.fifo' : 'ingest';
  const queueNames = [queueName, paths.chance(0.7) ? queueName : `renamed-${queueName}`];
  const clockOffsetsMs = Array.from({ length: containers }, () =>
    paths.chance(0.5) ? 0 : paths.int(-CLOCK_ALLOWANCE_MS, CLOCK_ALLOWANCE_MS),
  );
  const group = (draft: Draft): string | undefined => {
    if (!fifo) return undefined;
    if (groupMode === 'shared') return 'all-streams';
    if (groupMode === 'scattered') return paths.pick(['group-a', 'group-b']);
    return draft.streamId;
  };
  const described = [
    ...(long ? [`long (${drafts.length} messages)`] : []),
    ...(dedupWindow !== Limits.defaultDedupWindow ? [`dedupWindow ${dedupWindow}`] : []),
    ...(history.length > 0 ? [`${history.length} events stored before`] : []),
    ...(fifo && groupMode !== 'id' ? [`message groups: ${groupMode}`] : []),
    ...(switchAt !== undefined
      ? [`queue ${queueNames[1] === queueName ? 'recreated' : `renamed to ${queueNames[1]}`} before m${switchAt}`]
      : []),
    ...(batchSize > 10 ? [`batch size ${batchSize}`] : []),
    ...(clockOffsetsMs.some((offset) => offset !== 0) ? [`clock offsets ${clockOffsetsMs.join(',')} ms`] : []),
    ...(nearLimit ? ['an item near 400 KB'] : []),
    ...(groupShare > 0 ? [`groups (${Math.round(groupShare * 100)} % of the slots)`] : []),
  ];
  return {
    seed,
    index,
    fifo,
    containers,
    batchSize,
    maxReceiveCount,
    dedupWindow,
    groupMode,
    streams,
    history,
    sequenceBases,
    queueNames,
    clockOffsetsMs,
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
        group: group(draft),
        incarnation: switchAt !== undefined && position >= switchAt ? 1 : 0,
      };
    }),
    faults,
    dlqMaxBytes,
    handlerKnowsDlqLimit: extra.chance(0.7),
    paths: described,
    groupShare,
  };
}
