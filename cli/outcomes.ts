/**
 * What became of published events, seen from outside the store: stored (at which version),
 * rejected (with the reason the ingest gave it), or not decided yet. The console's Publish page
 * shows it for every event it sent.
 *
 * An event the contract accepts is looked for in its stream by `EventId` and content (the
 * store's own fingerprint, so another event that reuses the id does not count); a group is
 * stored when every one of its events is (all or nothing, docs/ARCHITECTURE.md, "Groups").
 * Anything not found there is looked for in the dead-letter queue by its body, which the
 * ingest dead-letters byte for byte (README "Redrive rejected events").
 */
import { DynamoDbEventStore } from '../adapters/dynamodb-store.ts';
import { eventFingerprint, messageEvents, parseEventBody, type ValidEvent } from '../core/event.ts';
import type { StoredEvent } from '../core/store.ts';
import { peekDeadLetters, type RejectedMessage } from './inspect.ts';
import type { Target } from './target.ts';

export type PublishOutcome =
  | {
      readonly status: 'stored';
      readonly streamId: string;
      /** The event's version; a group's first event's. */
      readonly version: number;
      /** A group's events, stored at `version` ... `version + count - 1`; absent for one event. */
      readonly count?: number;
      /** Recorded before this publish: the store took it for a duplicate of an earlier copy. */
      readonly earlier: boolean;
    }
  | { readonly status: 'rejected'; readonly reason: string; readonly detail: string; readonly messageId: string }
  | { readonly status: 'pending' };

export interface OutcomeOptions {
  /** Epoch ms the events were sent: a stored copy or dead letter from before it is someone else's. */
  readonly since: number;
  /** Look in the dead-letter queue (it receives its messages for a moment; not while a redrive runs). */
  readonly deadLetters: boolean;
}

/** A stored event that holds this very event: same stream, same `EventId`, same content. */
function storedCopy(event: ValidEvent, stream: readonly StoredEvent[]): StoredEvent | undefined {
  const fingerprint = eventFingerprint(event);
  return stream.find((stored) => stored.EventId === event.EventId && eventFingerprint(stored) === fingerprint);
}

/**
 * The stored copies of a message's events, in its order: a group's first event at the lowest
 * version (groups are written at consecutive versions); undefined unless every event is there.
 */
function storedCopies(events: readonly ValidEvent[], stream: readonly StoredEvent[]): StoredEvent[] | undefined {
  const copies: StoredEvent[] = [];
  for (const event of events) {
    const copy = storedCopy(event, stream);
    if (!copy) return undefined;
    copies.push(copy);
  }
  return copies;
}

/** The newest events of each stream, enough to hold every event of this publish. */
async function newestOfStreams(target: Target, events: readonly ValidEvent[]): Promise<Map<string, StoredEvent[]>> {
  const store = new DynamoDbEventStore({ client: target.dynamo, tableName: target.tableName });
  const perStream = new Map<string, number>();
  for (const event of events) perStream.set(event.ID, (perStream.get(event.ID) ?? 0) + 1);
  const entries = await Promise.all(
    [...perStream].map(async ([id, count]) => {
      const read = await store.readStream(id, { direction: 'backward', limit: Math.max(200, 2 * count) });
      return [id, read.events] as const;
    }),
  );
  return new Map(entries);
}

/** The dead letters of this publish, by body (the newest for a body sent twice). */
async function deadLettersByBody(target: Target, since: number): Promise<Map<string, RejectedMessage>> {
  const byBody = new Map<string, RejectedMessage>();
  for (const message of await peekDeadLetters(target, 1000)) {
    const at = message.rejectedAt === undefined ? Number.NaN : Date.parse(message.rejectedAt);
    if (!(at >= since - 1000)) continue;
    const known = byBody.get(message.body);
    if (!known || (known.rejectedAt ?? '') < (message.rejectedAt ?? '')) byBody.set(message.body, message);
  }
  return byBody;
}

/**
 * The outcome of each body, in order.
 *
 * @example
 * ```ts
 * const outcomes = await publishOutcomes(target, ['{"ID":"a", ...}'], { since: sentAt, deadLetters: true });
 * ```
 */
export async function publishOutcomes(
  target: Target,
  bodies: readonly string[],
  options: OutcomeOptions,
): Promise<PublishOutcome[]> {
  const parsed = bodies.map((body) => parseEventBody(body));
  const valid = parsed.flatMap((result) => (result.ok ? messageEvents(result) : []));
  const streams = await newestOfStreams(target, valid);
  const outcomes: PublishOutcome[] = parsed.map((result) => {
    // A group is stored whole or not at all (docs/ARCHITECTURE.md, "Groups"): stored only when
    // every event of it is; some of its EventIds stored with other events is not this group.
    const copies = result.ok ? storedCopies(messageEvents(result), streams.get(result.streamId) ?? []) : undefined;
    const first = copies?.[0];
    if (!result.ok || !copies || !first) return { status: 'pending' };
    return {
      status: 'stored',
      streamId: first.ID,
      version: first.Version,
      ...(result.kind === 'group' ? { count: copies.length } : {}),
      earlier: Date.parse(first.RecordedAt) < options.since - 1000,
    };
  });
  if (!options.deadLetters || outcomes.every((outcome) => outcome.status !== 'pending')) return outcomes;
  const rejected = await deadLettersByBody(target, options.since);
  return outcomes.map((outcome, index) => {
    const letter = outcome.status === 'pending' ? rejected.get(bodies[index]!) : undefined;
    return letter
      ? { status: 'rejected', reason: letter.reason ?? '', detail: letter.detail ?? '', messageId: letter.messageId }
      : outcome;
  });
}
