import { eventFingerprint, parseEventBody } from '../../../core/event.ts';
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
    'each event (EventId) is stored at most once in its stream, unless the message that stored it again was sent more than resendWindow after the copy before was recorded, or more than the duplicate window (dedupWindow; FIFO at least 10) of events lay between the copies; never by a redelivery of the message that stored the copy before (README "Idempotency": however late, however many events came since)',
  gapless: 'versions are gapless from 1',
  'fifo-order':
    'FIFO: a stream holds its stored events in the order the producer sent them (when all its messages share one group)',
  'not-stored-and-dead-lettered':
    'no message the handler dead-lettered with a reason is also stored (by any delivery of it)',
  'dead-letters-carry-reason':
    'every dead letter the handler writes carries a known RejectionReason and the other attributes',
  'nothing-lost': 'every message acknowledged is stored (same EventId and content) or was dead-lettered with a reason',
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

function identity(body: string): Identity | undefined {
  const parsed = parseEventBody(body);
  if (!parsed.ok || parsed.kind !== 'event') return undefined;
  return { eventId: parsed.event.EventId, fingerprint: eventFingerprint(parsed.event), streamId: parsed.event.ID };
}

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

function sameEvent(a: Identity | undefined, b: Identity): boolean {
  return a !== undefined && a.eventId === b.eventId && a.fingerprint === b.fingerprint;
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
  const storedSame = (id: Identity | undefined): boolean =>
    id !== undefined &&
    (stored.get(id.streamId) ?? []).some(
      (event) => event.EventId === id.eventId && eventFingerprint(event) === id.fingerprint,
    );

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
    const id = identity(old.body);
    if (!id) return;
    const key = `${id.eventId}\u0000${id.fingerprint}`;
    const sendIndex = position - plan.history.length;
    fallback.set(key, [...(fallback.get(key) ?? []), sendIndex]);
    carriers.set(key, [...(carriers.get(key) ?? []), sendIndex]);
  });
  plan.messages.forEach((message, sendIndex) => {
    const id = identity(message.body);
    if (!id) return;
    const key = `${id.eventId}\u0000${id.fingerprint}`;
    fallback.set(key, [...(fallback.get(key) ?? []), sendIndex]);
    if (!rejectedIds.has(message.id)) carriers.set(key, [...(carriers.get(key) ?? []), sendIndex]);
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
  const groupsOf = new Map<string, Set<string>>();
  for (const message of plan.messages)
    groupsOf.set(message.streamId, (groupsOf.get(message.streamId) ?? new Set()).add(message.group ?? ''));
  for (const [streamId, events] of stored) {
    const versions = events.map((event) => event.Version);
    if (versions.some((version, index) => version !== index + 1)) {
      violations.push({ invariant: 'gapless', detail: `${streamId} has versions ${versions.join(',')}` });
    }
    const seen = new Map<string, StoredEvent>();
    for (const event of events) {
      const earlier = seen.get(event.EventId);
      seen.set(event.EventId, event);
      if (!earlier) continue;
      const verdict = secondCopy(earlier, event);
      if (verdict.allowed) notes.push({ invariant: 'stored-once', detail: verdict.detail });
      else violations.push({ invariant: 'stored-once', detail: verdict.detail });
    }
    if (!plan.fifo || (groupsOf.get(streamId)?.size ?? 0) > 1) {
      for (const event of events) {
        const key = `${event.EventId}\u0000${eventFingerprint(event)}`;
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
      const key = `${event.EventId}\u0000${eventFingerprint(event)}`;
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
        const name = (index: number): string => (index < 0 ? `stored before the schedule` : `m${index}`);
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
   * none with this content. With `ExpectedVersion = n` a copy at n + 1 decides too.
   */
  function coldVerdict(
    letter: WorldRecord['deadLetters'][number],
    source: string,
    id: Identity,
    detailText: string,
  ): string | undefined {
    const parsed = parseEventBody(letter.input.MessageBody ?? '');
    const expected = parsed.ok && parsed.kind === 'event' ? parsed.event.ExpectedVersion : undefined;
    const other = Number(/already stored at version (\d+)/.exec(detailText)?.[1]);
    if (expected !== undefined && other === expected + 1) return undefined;
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
    const inWindow: StoredEvent[] = [];
    let counted = 0;
    for (let version = head; version >= 1 && counted < window; version -= 1) {
      const event = events[version - 1];
      if (!event || Date.parse(event.RecordedAt) < notBefore) break;
      if (since === undefined || Date.parse(event.RecordedAt) < since || counted > 0) counted += 1;
      inWindow.push(event);
    }
    const span = `v${head} down to v${inWindow.at(-1)?.Version ?? head + 1}`;
    const lead = `${source} (${id.eventId}) was dead-lettered EventIdConflict naming v${other}, decided when the stream's head was v${head}`;
    if (inWindow.some((event) => event.EventId === id.eventId && eventFingerprint(event) === id.fingerprint))
      return `${lead}, but its duplicate window (${span}) holds a copy with its content: a duplicate`;
    if (!inWindow.some((event) => event.EventId === id.eventId))
      return `${lead}, but its duplicate window (${span}, at most ${window}) holds no copy of the EventId: a cold container stores it (issue 19, case 4: a stale cached head counted the window from where it stood)`;
    return undefined;
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
    const between = event.Version - earlier.Version - 1;
    const carriersOf = plan.messages.filter((message) => identity(message.body)?.eventId === event.EventId);
    const describe = (message: { id: string }): string => {
      const parsed = parseEventBody((plan.messages.find((m) => m.id === message.id) ?? { body: '' }).body);
      const expected = parsed.ok && parsed.kind === 'event' ? parsed.event.ExpectedVersion : undefined;
      const after = ((sentAt.get(message.id) ?? 0) - recorded) / 1000;
      return `${message.id}${expected === undefined ? '' : ` (ExpectedVersion ${expected})`} sent ${after.toFixed(1)} s after v${earlier.Version} was recorded`;
    };
    const head = `${event.ID}: ${event.EventId} stored at versions ${earlier.Version} and ${event.Version} (${between} events between; window ${window}); v${event.Version} written by ${writer ?? 'an unattributed delivery'}${firstWriter === undefined ? '' : `, v${earlier.Version} by ${firstWriter}`}; sent as ${carriersOf.map(describe).join(', ')}`;
    // A redelivery is recognised however many events came since (its window holds every event
    // recorded since it was sent); a standard queue's second copy of a message counts as a resend.
    if (writer !== undefined && writer === firstWriter && !record.copied.has(writer))
      return { allowed: false, detail: `${head}: a redelivery stored its own event again` };
    if (between >= window) return { allowed: true, detail: `${head}: outside the window by count` };
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
    const excused = !missing.includes(sourceMessageId) && withMinimalOthers > plan.dlqMaxBytes;
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
    const id = identity(letter.input.MessageBody ?? '');
    if (id && reason === 'EventIdConflict') {
      const problem = coldVerdict(letter, source, id, detailText);
      if (problem) violations.push({ invariant: 'verdict-as-cold', detail: problem });
    }
    if (id && storedSame(id)) {
      const others = plan.messages
        .filter((message) => message.id !== source && sameEvent(identity(message.body), id))
        .map((message) => message.id);
      const detail = `${source} (${id.eventId}) was dead-lettered (${reason}, on its delivery with ApproximateReceiveCount ${letter.receiveCount}) and is stored in ${id.streamId}`;
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
    const id = identity(message.body);
    if (id)
      copies.set(`${id.eventId}\u0000${id.fingerprint}`, (copies.get(`${id.eventId}\u0000${id.fingerprint}`) ?? 0) + 1);
  }
  for (const message of record.queue.messages) {
    const id = identity(message.body);
    const isStored = storedSame(id);
    if (message.state === 'deleted') {
      if (!isStored && !deadLettered.has(message.id)) {
        violations.push({
          invariant: 'nothing-lost',
          detail: `${message.id} was acknowledged but is neither stored${id ? ` (${id.eventId})` : ''} nor dead-lettered${id ? swallowed(message, id) : ''}`,
        });
      }
    } else if (message.state === 'movedToDlq' && isStored && id) {
      const only = (copies.get(`${id.eventId}\u0000${id.fingerprint}`) ?? 0) === 1;
      const finding = {
        invariant: 'parked-only-if-unknown',
        detail: `${message.id} (${id.eventId}) is stored and was also moved to the DLQ by SQS after ${message.receiveCount} receives`,
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
