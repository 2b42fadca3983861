import { eventFingerprint, messageEvents, parseEventBody } from '../../../core/event.ts';
import { MessageAttributeNames } from '../../../core/message-attributes.ts';
import { ALL_REJECTION_REASONS } from '../../../core/reasons.ts';
import { CLOCK_SKEW_MS, type StoredEvent } from '../../../core/store.ts';
import type { DlqSendInput } from './sim-http.ts';
import { promisedWindow, SIM_RESEND_WINDOW_SECONDS } from './workload.ts';
import type { Write, WorldRecord } from './world.ts';

/**
 * The README's promises, checked after every schedule against what DynamoDB Local holds and
 * what the queue and DLQ models saw.
 */
export const INVARIANTS = {
  'stored-once':
    'each event (EventId) is stored at most once in its stream, unless the message that stored it again was sent more than resendWindow after the copy before was recorded, or more than the duplicate window (dedupWindow; FIFO at least 10) of events lay between the copy and the version the later message wrote first; never by a redelivery of the message that stored the copy before (README "Idempotency": however late, however many events came since)',
  'group-stored-once':
    'a group (its events, in order) is stored at most once, by the rule of stored-once applied to the group as a unit (docs/ARCHITECTURE.md, "Groups")',
  'group-all-or-nothing':
    "every group's events are all stored, at consecutive versions in the group's order with GroupSize and GroupIndex, as a group some message sent; or none is (an event sent only in groups is never stored alone)",
  gapless: 'versions are gapless from 1',
  'fifo-order':
    'FIFO: a stream holds its stored events in the order the producer sent them (when all its messages share one group)',
  'not-stored-and-dead-lettered':
    'no message the handler dead-lettered with a reason is also stored (by any delivery of it)',
  'dead-letters-carry-reason':
    'every dead letter the handler writes carries a known RejectionReason and the other attributes',
  'dead-letter-original-body':
    "every dead letter the handler writes is its message's original body, byte for byte (a rejected group whole, never one event of it)",
  'nothing-lost':
    'every message acknowledged is stored (each of its events: same EventId and content) or was dead-lettered with a reason',
  'parked-only-if-unknown':
    'a message SQS moved to the DLQ itself (no reason) is stored only if a fault left an outcome unknown (lost response or acknowledgement, hung call); README: a redrive of it is recognised within the duplicate window',
  'no-function-timeout': 'every invocation returns before the function timeout, also with a hung call',
  drained: 'the schedule ends: every message acknowledged or in the DLQ',
  response: 'the handler reports only its own records failed',
  'verdict-as-cold':
    'an EventIdConflict names a copy in the message\'s duplicate window of the stream as it was when decided, and the window holds no copy with its content: the verdict a container without the cache reaches (README "Idempotency")',
  'size-verdict-final':
    "an event the ingest's own item check accepts is never refused by DynamoDB for its size or content (parseEventBody's verdict is final)",
  'timer-callbacks': 'no timer callback throws',
} as const;

export type InvariantName = keyof typeof INVARIANTS;

export interface Finding {
  readonly invariant: string;
  readonly detail: string;
}

export interface Verdict {
  readonly violations: readonly Finding[];
  /** Allowed, but shown: stored events that SQS parked in the DLQ after an unknown outcome. */
  readonly notes: readonly Finding[];
}

interface Identity {
  readonly eventId: string;
  readonly fingerprint: string;
  readonly streamId: string;
}

/** What a valid message carries: one event, or a group's events in order. */
interface Content {
  readonly streamId: string;
  readonly group: boolean;
  readonly events: readonly Identity[];
  readonly expected: number | undefined;
}

function contentOf(body: string): Content | undefined {
  const parsed = parseEventBody(body);
  if (!parsed.ok) return undefined;
  const events = messageEvents(parsed).map((event) => ({
    eventId: event.EventId,
    fingerprint: eventFingerprint(event),
    streamId: event.ID,
  }));
  const expected = parsed.kind === 'event' ? parsed.event.ExpectedVersion : parsed.group.ExpectedVersion;
  return { streamId: parsed.streamId, group: parsed.kind === 'group', events, expected };
}

const keyOf = (id: { eventId: string; fingerprint: string }): string => `${id.eventId}\u0000${id.fingerprint}`;

/** A group's place among the send indexes: event j of the message sent at `index`. */
const GROUP_STEP = 1 / 1000;

/** The smallest values the optional attributes could have had: a 4-byte detail, an ISO time, a count. */
const MINIMAL_VALUE_BYTES: Record<string, number> = {
  [MessageAttributeNames.rejectionDetail]: 4,
  [MessageAttributeNames.rejectedAt]: 24,
  [MessageAttributeNames.redriveCount]: 1,
  [MessageAttributeNames.sourceMessageId]: 1,
};

/** A DLQ message's size as SQS counts it: body, attribute names, types and values. */
export function dlqBytes(input: DlqSendInput): number {
  let size = Buffer.byteLength(input.MessageBody ?? '');
  for (const [name, value] of Object.entries(input.MessageAttributes ?? {})) {
    size +=
      Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '') + Buffer.byteLength(value.StringValue ?? '');
  }
  return size;
}

/** SQS sequence numbers: decimal strings of any length. */
function sequenceBefore(a: string, b: string): boolean {
  // A stored SourceSequence may carry its queue's tag and send time after the number.
  const [x, y] = [a, b].map((text) => (text.split('@')[0] ?? '').replace(/^0+/, '')) as [string, string];
  return x.length !== y.length ? x.length < y.length : x < y;
}

/** The version a stored event's message wrote first: a group's first event, or the event itself. */
function firstVersionOf(event: StoredEvent): number {
  return event.Version - (event.GroupIndex ?? 0);
}

/** Whether two messages share an event (same EventId and content). */
function shareAnEvent(a: Content | undefined, b: Content): boolean {
  if (a === undefined) return false;
  const keys = new Set(a.events.map(keyOf));
  return b.events.some((id) => keys.has(keyOf(id)));
}

export async function checkSchedule(
  record: WorldRecord,
  readStream: (streamId: string) => Promise<StoredEvent[]>,
): Promise<Verdict> {
  const violations: Finding[] = [...record.problems];
  const notes: Finding[] = [];
  const { plan } = record;
  const sentAt = new Map(record.queue.messages.map((message) => [message.id, message.sentAt]));
  const resendWindowMs = SIM_RESEND_WINDOW_SECONDS * 1000;
  const stored = new Map<string, StoredEvent[]>();
  for (const streamId of plan.streams) stored.set(streamId, await readStream(streamId));
  const storedSame = (id: Identity): boolean =>
    (stored.get(id.streamId) ?? []).some(
      (event) => event.EventId === id.eventId && eventFingerprint(event) === id.fingerprint,
    );
  /** Every event of the message is stored (same EventId and content), by whichever message. */
  const storedAll = (content: Content | undefined): boolean =>
    content !== undefined && content.events.length > 0 && content.events.every(storedSame);
  const contents = new Map(plan.messages.map((message) => [message.id, contentOf(message.body)]));

  // Stored at most once, gapless, and (FIFO) in send order. An event may have been sent by
  // several messages (producer retries): the order holds if some message that carried each
  // stored event, and was not dead-lettered, was sent after the one before it.
  const rejectedIds = new Set(
    record.deadLetters
      .filter((letter) => letter.accepted)
      .map((letter) => letter.input.MessageAttributes?.[MessageAttributeNames.sourceMessageId]?.StringValue),
  );
  const carriers = new Map<string, number[]>();
  const fallback = new Map<string, number[]>();
  // Events stored before the schedule come first, in version order (negative send indexes).
  plan.history.forEach((old, position) => {
    const [id] = contentOf(old.body)?.events ?? [];
    if (!id) return;
    const key = keyOf(id);
    const sendIndex = position - plan.history.length;
    fallback.set(key, [...(fallback.get(key) ?? []), sendIndex]);
    carriers.set(key, [...(carriers.get(key) ?? []), sendIndex]);
  });
  // Event j of a group sent as message i comes at i + j / 1000: after the group's earlier
  // events, before any later message.
  plan.messages.forEach((message, sendIndex) => {
    contents.get(message.id)?.events.forEach((id, j) => {
      const key = keyOf(id);
      const at = sendIndex + j * GROUP_STEP;
      fallback.set(key, [...(fallback.get(key) ?? []), at]);
      if (!rejectedIds.has(message.id)) carriers.set(key, [...(carriers.get(key) ?? []), at]);
    });
  });
  const window = promisedWindow(plan);
  const writes = new Map<string, Write>(
    record.writes.map((write) => [`${write.streamId}\u0000${write.version}`, write]),
  );
  const historyAt = new Map(plan.history.map((old) => [`${old.streamId}\u0000${old.version}`, old.recordedAt]));
  const writtenAt = (event: StoredEvent): number =>
    writes.get(`${event.ID}\u0000${event.Version}`)?.at ??
    historyAt.get(`${event.ID}\u0000${event.Version}`) ??
    Date.parse(event.RecordedAt);
  const writerOf = (event: StoredEvent): string | undefined =>
    writes.get(`${event.ID}\u0000${event.Version}`)?.messageId;
  // The groups the producer sent (stream and events in order), and which events it sent only
  // inside a group: such an event stored without its group breaks all-or-nothing.
  const sentGroups = new Set<string>();
  const inGroup = new Set<string>();
  const sentAlone = new Set<string>(plan.history.flatMap((old) => (contentOf(old.body)?.events ?? []).map(keyOf)));
  for (const content of contents.values()) {
    if (!content) continue;
    if (content.group) sentGroups.add([content.streamId, ...content.events.map(keyOf)].join('\u0001'));
    for (const id of content.events) (content.group ? inGroup : sentAlone).add(keyOf(id));
  }
  /** group-all-or-nothing on one stream: every stored group is whole, in order, and one a message sent. */
  function groupRuns(streamId: string, events: readonly StoredEvent[]): Finding[] {
    const byVersion = new Map(events.map((event) => [event.Version, event]));
    const found = new Set<string>();
    const keyOfStored = (event: StoredEvent): string =>
      keyOf({ eventId: event.EventId, fingerprint: eventFingerprint(event) });
    for (const event of events) {
      const { GroupSize: size, GroupIndex: index } = event;
      if (size === undefined || index === undefined) {
        const key = keyOfStored(event);
        if (inGroup.has(key) && !sentAlone.has(key))
          found.add(
            `v${event.Version} (${event.EventId}) was only ever sent inside a group, yet is stored alone (no GroupSize)`,
          );
        continue;
      }
      const first = event.Version - index;
      if (index !== 0) {
        const head = byVersion.get(first);
        if (head?.GroupIndex !== 0 || head.GroupSize !== size)
          found.add(
            `v${event.Version} (${event.EventId}) is Events[${index}] of a group of ${size}, but v${first} is not that group's first event`,
          );
        continue;
      }
      const run = Array.from({ length: size }, (_, offset) => byVersion.get(first + offset));
      const broken = run.findIndex((member, offset) => member?.GroupIndex !== offset || member.GroupSize !== size);
      const shown = run.map((member) => `${member?.EventId ?? 'missing'}`).join(',');
      if (broken >= 0) {
        found.add(
          `the group of ${size} from v${first} is not whole: v${first + broken} is ${run[broken] === undefined ? 'missing' : `${run[broken]?.EventId} with GroupIndex ${String(run[broken]?.GroupIndex)} of ${String(run[broken]?.GroupSize)}`} (${shown})`,
        );
        continue;
      }
      const key = [streamId, ...run.map((member) => keyOfStored(member as StoredEvent))].join('\u0001');
      if (!sentGroups.has(key))
        found.add(
          `v${first}..v${first + size - 1} (${shown}) are stored as a group no message sent (events, content or order differ)`,
        );
    }
    return [...found].map((detail) => ({ invariant: 'group-all-or-nothing', detail: `${streamId}: ${detail}` }));
  }
  const groupsOf = new Map<string, Set<string>>();
  for (const message of plan.messages)
    groupsOf.set(message.streamId, (groupsOf.get(message.streamId) ?? new Set()).add(message.group ?? ''));
  for (const [streamId, events] of stored) {
    const versions = events.map((event) => event.Version);
    if (versions.some((version, index) => version !== index + 1)) {
      violations.push({ invariant: 'gapless', detail: `${streamId} has versions ${versions.join(',')}` });
    }
    const seen = new Map<string, StoredEvent>();
    // A group stored again is reported once (by the first version of the later copy).
    const groupsReported = new Set<number>();
    const groupsNoted = new Set<number>();
    for (const event of events) {
      const earlier = seen.get(event.EventId);
      seen.set(event.EventId, event);
      if (!earlier) continue;
      const verdict = secondCopy(earlier, event);
      const first = firstVersionOf(event);
      const invariant = event.GroupSize === undefined ? 'stored-once' : 'group-stored-once';
      const reported = verdict.allowed ? groupsNoted : groupsReported;
      if (invariant === 'group-stored-once' && reported.has(first)) continue;
      reported.add(first);
      (verdict.allowed ? notes : violations).push({ invariant, detail: verdict.detail });
    }
    violations.push(...groupRuns(streamId, events));
    if (!plan.fifo || (groupsOf.get(streamId)?.size ?? 0) > 1) {
      for (const event of events) {
        const key = keyOf({ eventId: event.EventId, fingerprint: eventFingerprint(event) });
        if (!carriers.has(key) && !fallback.has(key))
          violations.push({
            invariant: 'nothing-lost',
            detail: `${streamId} v${event.Version} holds ${event.EventId}, which no message sent`,
          });
      }
      continue;
    }
    let previous: { event: StoredEvent; sent: number } | undefined;
    for (const event of events) {
      const key = keyOf({ eventId: event.EventId, fingerprint: eventFingerprint(event) });
      const sends = carriers.get(key) ?? fallback.get(key);
      if (!sends) {
        violations.push({
          invariant: 'nothing-lost',
          detail: `${streamId} v${event.Version} holds ${event.EventId}, which no message sent`,
        });
        continue;
      }
      const after = previous?.sent ?? -Infinity;
      const sent = sends.find((index) => index > after);
      if (sent === undefined && previous) {
        const name = (index: number): string => {
          if (index < 0) return 'stored before the schedule';
          const j = Math.round((index - Math.floor(index)) / GROUP_STEP);
          return `m${Math.floor(index)}${j > 0 ? ` Events[${j}]` : ''}`;
        };
        violations.push({
          invariant: 'fifo-order',
          detail: `${streamId}: v${previous.event.Version} is ${previous.event.EventId} (sent as ${name(previous.sent)}), v${event.Version} is ${event.EventId} (sent earlier, as ${sends.map(name).join(', ')})`,
        });
      }
      previous = { event, sent: sent ?? Math.max(...sends) };
    }
  }

  /**
   * An EventIdConflict is the verdict a container that never saw the stream reaches: the
   * message's duplicate window (core/stream-cache.ts `duplicateWindow`: the newest events of the
   * stream as it was when the verdict was reached, down to the first recorded before
   * `SentTimestamp - resendWindow - 2 s`, at most the window; a redelivery's also every event recorded since it was sent) holds a copy of the EventId, and
   * none with this content. With `ExpectedVersion = n` a copy at n + 1 decides too. A group
   * (docs/ARCHITECTURE.md, "Groups"): a conflict unless every one of its EventIds is in the
   * window with its content (a duplicate) or none is (stored); with `ExpectedVersion = n` the
   * copies at n + 1 .. n + k decide.
   */
  function coldVerdict(
    letter: WorldRecord['deadLetters'][number],
    source: string,
    content: Content,
    detailText: string,
  ): string | undefined {
    const { expected } = content;
    const [id] = content.events;
    if (!id) return undefined;
    // The version the detail names; unknown when the detail was cut to fit the DLQ.
    const named = Number(/already stored at version (\d+)/.exec(detailText)?.[1]);
    const other = Number.isFinite(named) ? named : 0;
    if (expected !== undefined && other > expected && other <= expected + content.events.length) return undefined;
    // A detail cut to fit the DLQ names no version: with ExpectedVersion n, the items at
    // n + 1 .. n + k decide when they hold one of the message's EventIds.
    const ids = new Set(content.events.map((one) => one.eventId));
    const atExpected = (stored.get(id.streamId) ?? []).slice(expected ?? 0, (expected ?? 0) + content.events.length);
    if (expected !== undefined && !Number.isFinite(named) && atExpected.some((event) => ids.has(event.EventId)))
      return undefined;
    const sent = sentAt.get(source);
    // (The explorer's messages never carry RedriveCount: each has its SentTimestamp bound.)
    if (sent === undefined) return undefined;
    // The copy it names was there when it decided.
    const head = Math.max(other, headBefore(id.streamId, letter.decidedOrder));
    const notBefore = sent - resendWindowMs - CLOCK_SKEW_MS;
    const events = stored.get(id.streamId) ?? [];
    // A redelivery's window also holds every event recorded since the message was sent (less
    // the clock allowance), however many, and counts the window from the first one before.
    const since = (letter.receiveCount ?? 1) > 1 ? sent - CLOCK_SKEW_MS : undefined;
    const window = letterWindow(letter, id.streamId);
    // As core/stream-cache.ts `duplicateWindow`: the count cap never ends inside a group, the
    // window then reaches down to the group's first event (docs/ARCHITECTURE.md, "Groups").
    const inWindow: StoredEvent[] = [];
    let counted = 0;
    let counting = since === undefined;
    for (let version = head; version >= 1; version -= 1) {
      const event = events[version - 1];
      if (!event || Date.parse(event.RecordedAt) < notBefore) break;
      if (!counting && since !== undefined && Date.parse(event.RecordedAt) < since) counting = true;
      if (counting) {
        if (counted >= window && (inWindow.at(-1)?.GroupIndex ?? 0) === 0) break;
        counted += 1;
      }
      inWindow.push(event);
    }
    const span = `v${head} down to v${inWindow.at(-1)?.Version ?? head + 1}`;
    const what = content.group ? `the group ${content.events.map((one) => one.eventId).join(',')}` : id.eventId;
    const lead = `${source} (${what}) was dead-lettered EventIdConflict naming ${Number.isFinite(named) ? `v${named}` : 'no version (its detail was cut to fit the DLQ)'}, decided when the stream's head was v${head}`;
    const copied = (one: Identity): boolean =>
      inWindow.some((event) => event.EventId === one.eventId && eventFingerprint(event) === one.fingerprint);
    if (content.events.every(copied))
      return `${lead}, but its duplicate window (${span}) holds a copy with its content${content.group ? ' of every event' : ''}: a duplicate`;
    if (!content.events.some((one) => inWindow.some((event) => event.EventId === one.eventId)))
      return `${lead}, but its duplicate window (${span}, at most ${window}) holds no copy of ${content.group ? 'any of its EventIds' : 'the EventId'}: a cold container stores it (issue 19, case 4: a stale cached head counted the window from where it stood)`;
    return undefined;
  }

  /**
   * The count cap of the window the handler passed with a dead-lettered message: on FIFO also at
   * least the events its batch held for the stream (handlers/ingest-batch.ts `plan`; README
   * "Idempotency"), the same for a cached and a cold container.
   */
  function letterWindow(letter: WorldRecord['deadLetters'][number], streamId: string): number {
    if (!plan.fifo) return window;
    const batch = record.invocations[letter.invocationId - 1]?.deliveries ?? [];
    let count = 0;
    for (const delivery of batch) {
      const parsed = parseEventBody(delivery.message.body);
      if (parsed.ok && parsed.streamId === streamId) count += messageEvents(parsed).length;
    }
    return Math.max(window, count);
  }

  /**
   * The lowest version of the duplicate window by count below `head`: `window` events, and
   * down to a group's first event when the count ends inside a group (core/stream-cache.ts
   * `duplicateWindow`). The time bounds are checked apart (`late` in `secondCopy`).
   */
  function windowBottom(streamId: string, head: number): number {
    const events = stored.get(streamId) ?? [];
    const bottom = head - window + 1;
    return bottom - (events[bottom - 1]?.GroupIndex ?? 0);
  }

  /** The stream's head when a write or send of position `order` happened. */
  function headBefore(streamId: string, order: number): number {
    return Math.max(
      plan.history.filter((old) => old.streamId === streamId).length,
      ...record.writes
        .filter((write) => write.streamId === streamId && write.order < order)
        .map((write) => write.version),
    );
  }

  /**
   * A group acknowledged though one of its events is not stored: a stored group of its size
   * that holds some of its events (same EventId, content and place) and not others, which a
   * cancelled transaction of this message may have met in its way and taken for its own.
   */
  function partlyTheSame(content: Content): string {
    if (!content.group) return '';
    const events = stored.get(content.streamId) ?? [];
    for (const event of events) {
      if (event.GroupIndex !== 0 || event.GroupSize !== content.events.length) continue;
      const run = events.slice(event.Version - 1, event.Version - 1 + content.events.length);
      const same = content.events.map(
        (one, index) =>
          run[index]?.EventId === one.eventId && eventFingerprint(run[index] as StoredEvent) === one.fingerprint,
      );
      if (!same.some(Boolean) || same.every(Boolean)) continue;
      const which = (wanted: boolean) =>
        same.flatMap((flag, index) => (flag === wanted ? [`Events[${index}]`] : [])).join(', ');
      return `. How: v${event.Version}..v${event.Version + content.events.length - 1} hold a group of its size whose ${which(true)} ${same.filter(Boolean).length > 1 ? 'are' : 'is'} this message's (same EventId, content and place) and whose ${which(false)} ${same.filter((flag) => !flag).length > 1 ? 'are' : 'is'} not: a transaction of this message cancelled by those items may have taken one matching item for its whole group landed`;
    }
    return '';
  }

  /** FIFO: a message acknowledged as "decided" by a sequence number of another queue (issue 19, case 1). */
  function swallowed(message: WorldRecord['queue']['messages'][number], id: Identity): string {
    if (message.sequence === undefined) return '';
    const newer = (stored.get(id.streamId) ?? []).filter(
      (event) => event.SourceSequence !== undefined && sequenceBefore(message.sequence ?? '', event.SourceSequence),
    );
    const [first] = newer;
    if (!first) return '';
    const planned = plan.messages.find((candidate) => candidate.id === message.id);
    const fromHistory = plan.history.some((old) => old.streamId === first.ID && old.version === first.Version);
    const from = fromHistory
      ? 'stored before the schedule from an earlier queue'
      : `stored from the queue's incarnation ${String((plan.messages.find((candidate) => candidate.id === writerOf(first))?.incarnation ?? NaN) + 1).replace('NaN', '(unattributed)')}`;
    return `. How: its sequence number ${message.sequence} (queue incarnation ${planned === undefined ? '?' : planned.incarnation + 1}, delivery ${message.receiveCount}) is below SourceSequence ${first.SourceSequence ?? ''} of v${first.Version} (${from}): the store took it for decided by an earlier delivery (issue 19, case 1)`;
  }

  /** How a message came to be both stored and dead-lettered, when the writes say (issue 19's cases). */
  function whyBoth(letter: WorldRecord['deadLetters'][number], id: Identity, reason: string | undefined): string {
    const detailText = letter.input.MessageAttributes?.[MessageAttributeNames.rejectionDetail]?.StringValue ?? '';
    const other = Number(/already stored at version (\d+)/.exec(detailText)?.[1]);
    const own = (stored.get(id.streamId) ?? []).filter(
      (event) => event.EventId === id.eventId && eventFingerprint(event) === id.fingerprint,
    );
    const ownWrites = own.map((event) => writes.get(`${event.ID}\u0000${event.Version}`));
    const head = headBefore(id.streamId, letter.decidedOrder);
    const versions = own.map((event) => `v${event.Version}`).join(', ');
    if (reason !== 'EventIdConflict' || !Number.isFinite(other)) return '';
    if (ownWrites.some((write) => write !== undefined && write.order < letter.order))
      return `. How: its own copy (${versions}) was stored first; a delivery of it then met another copy (v${other}) in its window but not its own (issue 19, case 3)`;
    if (head - other >= window)
      return `. How: dead-lettered on a stale cached head: when it decided, v${other} was outside the window of ${window} below the stream's true head v${head}, where a cold container stores it; a later delivery stored it at ${versions} (issue 19, case 4)`;
    return `. How: dead-lettered while v${other} was in its window (head v${head} when it decided); a redelivery after more than ${window} newer events no longer met it and stored it at ${versions} (the first exception docs/DEVELOPMENT.md lists)`;
  }

  /**
   * Whether a second copy of an event was allowed to be stored (README "Idempotency"): the
   * message that wrote it was sent more than resendWindow after the copy before was recorded
   * (SQS's clock: each writer's own is off by up to 1 s, which the store's bound allows for),
   * or more than the duplicate window of events lay between them; never a FIFO redelivery of the
   * same message when the group is the stream (the sequence number recognises it).
   */
  function secondCopy(earlier: StoredEvent, event: StoredEvent): { allowed: boolean; detail: string } {
    const recorded = writtenAt(earlier);
    const writer = writerOf(event);
    const firstWriter = writerOf(earlier);
    // Events between the copy before and the first version the later message wrote: a group
    // is written at head + 1, and the window is counted from that head.
    const between = firstVersionOf(event) - earlier.Version - 1;
    const carriersOf = plan.messages.filter((message) =>
      (contents.get(message.id)?.events ?? []).some((one) => one.eventId === event.EventId),
    );
    const describe = (message: { id: string }): string => {
      const content = contents.get(message.id);
      const expected = content?.expected;
      const after = ((sentAt.get(message.id) ?? 0) - recorded) / 1000;
      const shape = content?.group ? `a group of ${content.events.length}` : '';
      return `${message.id}${shape || expected !== undefined ? ` (${[shape, expected === undefined ? '' : `ExpectedVersion ${expected}`].filter(Boolean).join(', ')})` : ''} sent ${after.toFixed(1)} s after v${earlier.Version} was recorded`;
    };
    const grouped =
      event.GroupSize === undefined
        ? ''
        : ` (v${firstVersionOf(event)}..v${firstVersionOf(event) + event.GroupSize - 1} a group of ${event.GroupSize})`;
    const head = `${event.ID}: ${event.EventId} stored at versions ${earlier.Version} and ${event.Version}${grouped} (${between} events between; window ${window}); v${event.Version} written by ${writer ?? 'an unattributed delivery'}${firstWriter === undefined ? '' : `, v${earlier.Version} by ${firstWriter}`}; sent as ${carriersOf.map(describe).join(', ')}`;
    // A redelivery is recognised however many events came since (its window holds every event
    // recorded since it was sent); a standard queue's second copy of a message counts as a resend.
    if (writer !== undefined && writer === firstWriter && !record.copied.has(writer))
      return { allowed: false, detail: `${head}: a redelivery stored its own event again` };
    if (earlier.Version < windowBottom(event.ID, firstVersionOf(event) - 1))
      return { allowed: true, detail: `${head}: outside the window by count` };
    const late = (message: { id: string }): boolean =>
      (sentAt.get(message.id) ?? -Infinity) - resendWindowMs > recorded;
    const lateEnough = writer === undefined ? carriersOf.some(late) : late({ id: writer });
    if (lateEnough)
      return { allowed: true, detail: `${head}: a resend sent more than resendWindow after the copy before` };
    return { allowed: false, detail: head };
  }

  // Dead letters: every one the handler wrote carries its reason; none of them is also stored.
  const deadLettered = new Map<string, string>();
  for (const letter of record.deadLetters) {
    const attributes = letter.input.MessageAttributes ?? {};
    const reason = attributes[MessageAttributeNames.rejectionReason]?.StringValue;
    const source = attributes[MessageAttributeNames.sourceMessageId]?.StringValue ?? '?';
    // The reason and the source always travel; the other attributes may be left out only when
    // the body is too close to the DLQ's size limit for them (docs/ARCHITECTURE.md, "One fate per record").
    const { rejectionDetail, rejectedAt, sourceMessageId, redriveCount } = MessageAttributeNames;
    const missing = [rejectionDetail, rejectedAt, sourceMessageId, redriveCount].filter(
      (name) => !attributes[name]?.StringValue,
    );
    const withMinimalOthers =
      dlqBytes(letter.input) +
      missing.reduce((sum, name) => sum + name.length + 'String'.length + (MINIMAL_VALUE_BYTES[name] ?? 0), 0);
    // A handler not told the DLQ's limit learns it from SQS's refusal and sends once more with
    // the reason and the source alone (adapters/sqs-rejecter.ts `reject`): a group's body can
    // be near the limit without being sized to it, as the single events' near-limit bodies are.
    const refusedFirst =
      !plan.handlerKnowsDlqLimit &&
      record.deadLetters.some(
        (other) =>
          !other.accepted &&
          other.invocationId === letter.invocationId &&
          other.order < letter.order &&
          other.input.MessageAttributes?.[sourceMessageId]?.StringValue === source,
      );
    const excused = !missing.includes(sourceMessageId) && (withMinimalOthers > plan.dlqMaxBytes || refusedFirst);
    if (!reason || !(ALL_REJECTION_REASONS as readonly string[]).includes(reason) || (missing.length > 0 && !excused)) {
      violations.push({
        invariant: 'dead-letters-carry-reason',
        detail: `the DLQ send for ${source} has RejectionReason ${JSON.stringify(reason)}${missing.length > 0 ? `, missing ${missing.join(', ')}` : ''}`,
      });
    }
    const detailText = attributes[MessageAttributeNames.rejectionDetail]?.StringValue ?? '';
    if (detailText.includes('DynamoDB refused it')) {
      violations.push({
        invariant: 'size-verdict-final',
        detail: `${source} passed the ingest's item check but DynamoDB refused it (${reason}: ${detailText.slice(0, 200)})`,
      });
    }
    if (!letter.accepted) continue;
    deadLettered.set(source, reason ?? '');
    const original = plan.messages.find((message) => message.id === source);
    if (original && letter.input.MessageBody !== original.body) {
      violations.push({
        invariant: 'dead-letter-original-body',
        detail: `the DLQ message for ${source} (${reason}) is not its body: sent ${JSON.stringify(original.body).slice(0, 300)}, dead-lettered ${JSON.stringify(letter.input.MessageBody ?? '').slice(0, 300)}`,
      });
    }
    const content = contentOf(letter.input.MessageBody ?? '');
    if (content && reason === 'EventIdConflict') {
      const problem = coldVerdict(letter, source, content, detailText);
      if (problem) violations.push({ invariant: 'verdict-as-cold', detail: problem });
    }
    if (content && storedAll(content)) {
      const others = plan.messages
        .filter((message) => message.id !== source && shareAnEvent(contents.get(message.id), content))
        .map((message) => message.id);
      const named = Number(/Events\[(\d+)\]/.exec(detailText)?.[1] ?? 0);
      const id = content.events[named] ?? (content.events[0] as Identity);
      const what = content.group ? `the group ${content.events.map((one) => one.eventId).join(',')}` : id.eventId;
      const detail = `${source} (${what}) was dead-lettered (${reason}, on its delivery with ApproximateReceiveCount ${letter.receiveCount}) and is stored in ${id.streamId}`;
      if (record.copied.has(source)) {
        // SQS standard queues deliver at least once: a second copy of the message, with its own
        // receive count, can be decided apart from the first (README, "ExpectedVersion": outside
        // the promise, and shown).
        notes.push({
          invariant: 'not-stored-and-dead-lettered',
          detail: `${detail}; SQS delivered a second copy of the message`,
        });
      } else if (others.length === 0 || record.wroteFor.has(source)) {
        violations.push({
          invariant: 'not-stored-and-dead-lettered',
          detail: `${detail}, written by a delivery of that same message${others.length > 0 ? ` (the event was also sent as ${others.join(', ')})` : ''}${whyBoth(letter, id, reason)}`,
        });
      } else {
        // A record's fate is decided once per message (docs/ARCHITECTURE.md, "One fate per record"): another message with the same
        // event (a producer retry) may be stored after this one was rightly refused.
        notes.push({
          invariant: 'not-stored-and-dead-lettered',
          detail: `${detail}; the same event was also sent as ${others.join(', ')}`,
        });
      }
    }
  }
  // Every message: acknowledged and stored or dead-lettered, or parked by SQS.
  const copies = new Map<string, number>();
  for (const message of [...plan.history, ...plan.messages]) {
    for (const id of contentOf(message.body)?.events ?? []) copies.set(keyOf(id), (copies.get(keyOf(id)) ?? 0) + 1);
  }
  for (const message of record.queue.messages) {
    const content = contents.get(message.id) ?? contentOf(message.body);
    const isStored = storedAll(content);
    const what = content === undefined ? '' : content.events.map((one) => one.eventId).join(',');
    if (message.state === 'deleted') {
      if (!isStored && !deadLettered.has(message.id)) {
        const missing = content?.events.filter((one) => !storedSame(one)).map((one) => one.eventId) ?? [];
        violations.push({
          invariant: 'nothing-lost',
          detail: `${message.id} was acknowledged but is neither stored${content ? ` (${content.group ? `a group of ${content.events.length}, not stored: ${missing.join(',')}` : what})` : ''} nor dead-lettered${content === undefined ? '' : partlyTheSame(content) || (content.events[0] ? swallowed(message, content.events[0]) : '')}`,
        });
      }
    } else if (message.state === 'movedToDlq' && isStored && content) {
      const only = content.events.every((one) => (copies.get(keyOf(one)) ?? 0) === 1);
      const finding = {
        invariant: 'parked-only-if-unknown',
        detail: `${message.id} (${what}) is stored and was also moved to the DLQ by SQS after ${message.receiveCount} receives`,
      };
      if (record.unknownOutcome.has(message.id) || !only)
        notes.push({
          ...finding,
          detail: `${finding.detail} (after a fault that left an outcome unknown, or a copy stored it)`,
        });
      else
        violations.push({
          ...finding,
          detail: `${finding.detail}: its deliveries met no fault that left an outcome unknown, so the handler failed a stored event`,
        });
    }
  }

  for (const invocation of record.invocations) {
    if (invocation.state === 'killed') {
      violations.push({
        invariant: 'no-function-timeout',
        detail: `inv${invocation.id} (${invocation.deliveries.map((d) => d.message.id).join(' ')}) ran into the function timeout${invocation.hung ? ' holding a hung call' : ''}`,
      });
    }
  }
  return { violations, notes };
}
