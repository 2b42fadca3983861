import { eventFingerprint, parseEventBody } from '../../../core/event.ts';
import { MessageAttributeNames } from '../../../core/message-attributes.ts';
import { ALL_REJECTION_REASONS } from '../../../core/reasons.ts';
import type { StoredEvent } from '../../../core/store.ts';
import type { DlqSendInput } from './sim-http.ts';
import { SIM_RESEND_WINDOW_SECONDS } from './workload.ts';
import type { WorldRecord } from './world.ts';

/**
 * The README's promises, checked after every schedule against what DynamoDB Local holds and
 * what the queue and DLQ models saw.
 */
export const INVARIANTS = {
  'stored-once':
    'each event (EventId) is stored at most once in its stream, unless a producer resent it more than resendWindow after its first copy was recorded (README "Idempotency")',
  gapless: 'versions are gapless from 1',
  'fifo-order': 'FIFO: a stream holds its stored events in the order the producer sent them',
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
  if (!parsed.ok) return undefined;
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
  plan.messages.forEach((message, sendIndex) => {
    const id = identity(message.body);
    if (!id) return;
    const key = `${id.eventId}\u0000${id.fingerprint}`;
    fallback.set(key, [...(fallback.get(key) ?? []), sendIndex]);
    if (!rejectedIds.has(message.id)) carriers.set(key, [...(carriers.get(key) ?? []), sendIndex]);
  });
  for (const [streamId, events] of stored) {
    const versions = events.map((event) => event.Version);
    if (versions.some((version, index) => version !== index + 1)) {
      violations.push({ invariant: 'gapless', detail: `${streamId} has versions ${versions.join(',')}` });
    }
    const seen = new Map<string, StoredEvent>();
    for (const event of events) {
      const earlier = seen.get(event.EventId);
      const before = earlier?.Version;
      // The promise: a redelivery is recognised however late; a producer's resend (another
      // message with the EventId) when the first copy was recorded at most resendWindow before
      // it was sent. A second copy is allowed only if some message carrying it was sent later.
      const lateResends = earlier
        ? plan.messages.filter(
            (message) =>
              identity(message.body)?.eventId === event.EventId &&
              (sentAt.get(message.id) ?? -Infinity) - resendWindowMs > Date.parse(earlier.RecordedAt),
          )
        : [];
      if (earlier && lateResends.length > 0) {
        notes.push({
          invariant: 'stored-once',
          detail: `${streamId}: ${event.EventId} stored at versions ${before} and ${event.Version}; ${lateResends
            .map(
              (message) =>
                `${message.id} was sent ${(((sentAt.get(message.id) ?? 0) - Date.parse(earlier.RecordedAt)) / 1000).toFixed(1)} s after`,
            )
            .join(', ')} the first copy was recorded (resendWindow ${SIM_RESEND_WINDOW_SECONDS} s)`,
        });
      } else if (before !== undefined) {
        const carriers = plan.messages
          .filter((message) => identity(message.body)?.eventId === event.EventId)
          .map((message) => {
            const parsed = parseEventBody(message.body);
            const expected = parsed.ok ? parsed.event.ExpectedVersion : undefined;
            return `${message.id}${expected === undefined ? '' : ` (ExpectedVersion ${expected})`}`;
          });
        violations.push({
          invariant: 'stored-once',
          detail: `${streamId}: ${event.EventId} stored at versions ${before} and ${event.Version}; sent as ${carriers.join(', ')}`,
        });
      }
      seen.set(event.EventId, event);
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
      if (!plan.fifo) continue;
      const after = previous?.sent ?? -1;
      const sent = sends.find((index) => index > after);
      if (sent === undefined && previous) {
        violations.push({
          invariant: 'fifo-order',
          detail: `${streamId}: v${previous.event.Version} is ${previous.event.EventId} (sent as m${previous.sent}), v${event.Version} is ${event.EventId} (sent earlier, as ${sends.map((index) => `m${index}`).join(', ')})`,
        });
      }
      previous = { event, sent: sent ?? Math.max(...sends) };
    }
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
    if (!letter.accepted) continue;
    deadLettered.set(source, reason ?? '');
    const id = identity(letter.input.MessageBody ?? '');
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
          detail: `${detail}, written by a delivery of that same message${others.length > 0 ? ` (the event was also sent as ${others.join(', ')})` : ''}`,
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
  for (const message of plan.messages) {
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
          detail: `${message.id} was acknowledged but is neither stored${id ? ` (${id.eventId})` : ''} nor dead-lettered`,
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
