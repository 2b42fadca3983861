import { createHash } from 'node:crypto';
import * as v from 'valibot';
import { ExactNumber, isJsonObject, normalNumberText, parseJsonExact } from './json.ts';
import { Limits, StoredAttributes, TableKeys } from './keys.ts';
import { RejectionReason } from './reasons.ts';
import { checkStorable, itemBytes, nestsDeeperThan } from './storable.ts';
import { truncate } from './text.ts';

const EVENT_TYPE_PATTERN = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;
/** ISO-8601 date-time with a zone: `2020-08-06T13:19:40Z`, `2020-08-06T15:19:40.123+02:00`. */
const ISO_DATE_TIME_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))$/;

/** The top-level fields of the event contract, in the order the README lists them. */
export const EVENT_FIELDS = [
  'Timestamp',
  'EventType',
  'ID',
  'EmitterId',
  'EmitterType',
  'Data',
  'EventId',
  'ExpectedVersion',
] as const;

function show(value: unknown): string {
  let text: string;
  try {
    // NaN and Infinity are numbers JSON writes as null: show them as themselves.
    text =
      typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return truncate(text, 80);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof ExactNumber) return 'number';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function isValidIsoDateTime(text: string): boolean {
  const match = ISO_DATE_TIME_PATTERN.exec(text);
  if (!match) return false;
  const [, year, month, day, hour, minute, second, offsetHour, offsetMinute] = match.map((part) =>
    part === undefined ? undefined : Number(part),
  );
  if (month === undefined || day === undefined || year === undefined) return false;
  // Not Date.UTC(year, ...): it reads years 0 to 99 as 1900 to 1999.
  const probe = new Date(0);
  probe.setUTCFullYear(year, month - 1, day);
  const realDate = probe.getUTCFullYear() === year && probe.getUTCMonth() === month - 1 && probe.getUTCDate() === day;
  const realTime = (hour ?? 0) <= 23 && (minute ?? 0) <= 59 && (second ?? 0) <= 59;
  const realOffset = (offsetHour ?? 0) <= 23 && (offsetMinute ?? 0) <= 59;
  return realDate && realTime && realOffset && !Number.isNaN(Date.parse(text));
}

const requiredText = (field: string) =>
  v.pipe(
    v.string((issue) => `${field}: expected a string, got ${typeName(issue.input)} ${show(issue.input)}`),
    v.minLength(1, `${field}: must not be empty`),
  );

/** A number too long for a double (kept as its literal), checked like a number. */
const exactNumber = (rule: (exact: ExactNumber) => string | undefined) =>
  v.pipe(
    v.instance(ExactNumber),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const message = rule(dataset.value);
      if (message !== undefined) addIssue({ message });
    }),
  );

const timestampRule = (exact: ExactNumber): string | undefined => {
  const value = exact.valueOf();
  if (!Number.isFinite(value)) return `Timestamp: ${show(exact)} is not a finite number`;
  if (value < 0) return `Timestamp: ${show(exact)} is negative; send Unix epoch seconds`;
  if (value > Limits.maxTimestampSeconds) return `Timestamp: ${show(exact)} looks like milliseconds; send seconds`;
  return undefined;
};

const TimestampSchema = v.union(
  [
    v.pipe(
      v.number(),
      v.finite((issue) => `Timestamp: ${show(issue.input)} is not a finite number`),
      v.minValue(0, (issue) => `Timestamp: ${show(issue.input)} is negative; send Unix epoch seconds`),
      v.maxValue(
        Limits.maxTimestampSeconds,
        (issue) => `Timestamp: ${show(issue.input)} looks like milliseconds; send seconds`,
      ),
    ),
    // Fractional seconds with more digits than a double keeps (kept exactly, like any number).
    exactNumber(timestampRule),
    v.pipe(
      v.string(),
      v.check(
        isValidIsoDateTime,
        (issue) =>
          `Timestamp: ${show(issue.input)} is not an ISO-8601 date-time with a zone (for example 2020-08-06T13:19:40Z)`,
      ),
    ),
  ],
  (issue) =>
    `Timestamp: expected Unix epoch seconds (number) or an ISO-8601 date-time string, got ${typeName(issue.input)} ${show(issue.input)}`,
);

const expectedVersionRule = (exact: ExactNumber): string =>
  /[.eE]/.test(exact.text)
    ? `ExpectedVersion: ${show(exact)} is not an integer`
    : `ExpectedVersion: ${show(exact)} is larger than the largest version a stream can reach (${Number.MAX_SAFE_INTEGER})`;

/** The rules of each field of the contract (docs/ARCHITECTURE.md, "The event contract"). */
const eventFields = {
  Timestamp: TimestampSchema,
  EventType: v.pipe(
    requiredText('EventType'),
    v.maxLength(Limits.maxEventTypeChars, `EventType: at most ${Limits.maxEventTypeChars} characters`),
    v.regex(
      EVENT_TYPE_PATTERN,
      (issue) => `EventType: ${show(issue.input)} must be upper snake case like EVENT_EXAMPLE`,
    ),
  ),
  ID: v.pipe(
    requiredText('ID'),
    v.maxLength(Limits.maxIdChars, `ID: at most ${Limits.maxIdChars} characters`),
    v.check(
      (id) => Buffer.byteLength(id, 'utf8') <= Limits.maxPartitionKeyBytes,
      `ID: at most ${Limits.maxPartitionKeyBytes} bytes in UTF-8 (DynamoDB's partition key limit)`,
    ),
  ),
  EmitterId: requiredText('EmitterId'),
  EmitterType: requiredText('EmitterType'),
  // `null` is accepted and stored as null, as the original design's own tests send it.
  Data: v.optional(
    v.custom<Record<string, unknown> | null>(
      (input) => input === null || isJsonObject(input),
      (issue) => `Data: expected a JSON object or null, got ${typeName(issue.input)} ${show(issue.input)}`,
    ),
  ),
  EventId: v.optional(
    v.pipe(
      requiredText('EventId'),
      v.maxLength(Limits.maxEventIdChars, `EventId: at most ${Limits.maxEventIdChars} characters`),
    ),
  ),
  ExpectedVersion: v.optional(
    v.union(
      [
        v.pipe(
          v.number(),
          v.integer((issue) => `ExpectedVersion: ${show(issue.input)} is not an integer`),
          v.minValue(
            0,
            (issue) => `ExpectedVersion: ${show(issue.input)} is negative; 0 means the stream must not exist yet`,
          ),
          v.maxValue(
            Number.MAX_SAFE_INTEGER,
            (issue) =>
              `ExpectedVersion: ${show(issue.input)} is larger than the largest version a stream can reach (${Number.MAX_SAFE_INTEGER})`,
          ),
        ),
        // A literal a double cannot hold is never a version a stream can reach: always refused.
        v.pipe(
          exactNumber(expectedVersionRule),
          v.transform((exact) => exact.valueOf()),
        ),
      ],
      (issue) => `ExpectedVersion: expected an integer >= 0, got ${typeName(issue.input)} ${show(issue.input)}`,
    ),
  ),
};

/** The message for a field the object does not allow, a missing field, or a value that is not an object. */
function objectMessage(allowed: readonly string[], misplaced: Readonly<Record<string, string>> = {}) {
  return (issue: v.BaseIssue<unknown>): string => {
    const key = issue.path?.[issue.path.length - 1]?.key;
    if (issue.expected === 'never') {
      const name = String(key);
      return misplaced[name] ?? `${truncate(name, 64)}: unknown field; allowed fields are ${allowed.join(', ')}`;
    }
    if (key !== undefined && issue.input === undefined) {
      return `${String(key)}: required field is missing`;
    }
    return `expected a JSON object, got ${typeName(issue.input)}`;
  };
}

/**
 * The event contract (docs/ARCHITECTURE.md, "The event contract"): what a producer sends as an SQS message body.
 *
 * @example
 * ```ts
 * const result = v.safeParse(EventSchema, { Timestamp: 1596719980, EventType: 'EVENT_EXAMPLE',
 *   ID: 'order-1', EmitterId: 'checkout', EmitterType: 'SYSTEM' });
 * ```
 */
export const EventSchema = v.strictObject(eventFields, objectMessage(EVENT_FIELDS));

/** The fields of one event of a group: the event's own, without the stream's (`ID`, `ExpectedVersion`). */
export const GROUP_EVENT_FIELDS = ['Timestamp', 'EventType', 'EmitterId', 'EmitterType', 'Data', 'EventId'] as const;
/** The top-level fields of a group message (docs/ARCHITECTURE.md, "Groups"). */
export const GROUP_FIELDS = ['ID', 'ExpectedVersion', 'Events'] as const;

const ONCE_PER_GROUP = {
  ID: 'ID: set once for the group, next to Events, not in an event',
  ExpectedVersion: 'ExpectedVersion: set once for the group, next to Events, not in an event',
};

const GroupEventSchema = v.strictObject(
  {
    Timestamp: eventFields.Timestamp,
    EventType: eventFields.EventType,
    EmitterId: eventFields.EmitterId,
    EmitterType: eventFields.EmitterType,
    Data: eventFields.Data,
    EventId: eventFields.EventId,
  },
  objectMessage(GROUP_EVENT_FIELDS, ONCE_PER_GROUP),
);

/**
 * Several events of one stream, stored all or nothing (docs/ARCHITECTURE.md, "Groups"): the
 * stream's `ID` and `ExpectedVersion` once, the events in `Events`, 1 to 100 of them (DynamoDB's
 * most items a transaction).
 *
 * @example
 * ```ts
 * const result = v.safeParse(GroupSchema, { ID: 'order-1', ExpectedVersion: 0, Events: [
 *   { Timestamp: 1596719980, EventType: 'ORDER_PLACED', EmitterId: 'checkout', EmitterType: 'SYSTEM' },
 *   { Timestamp: 1596719980, EventType: 'PAYMENT_RESERVED', EmitterId: 'checkout', EmitterType: 'SYSTEM' }] });
 * ```
 */
export const GroupSchema = v.strictObject(
  {
    ID: eventFields.ID,
    ExpectedVersion: eventFields.ExpectedVersion,
    Events: v.pipe(
      v.array(
        GroupEventSchema,
        (issue) => `Events: expected a list of events, got ${typeName(issue.input)} ${show(issue.input)}`,
      ),
      v.minLength(1, 'Events: a group needs at least one event'),
      v.maxLength(
        Limits.maxGroupEvents,
        (issue) =>
          `Events: ${(issue.input as unknown[]).length} events, more than DynamoDB's ${Limits.maxGroupEvents} items a transaction; split the group`,
      ),
    ),
  },
  objectMessage(GROUP_FIELDS),
);

/** An event as the producer sent it, after validation. */
export type EventInput = v.InferOutput<typeof EventSchema>;

/** A validated event with its idempotency key settled (sent, or derived). */
export interface ValidEvent extends EventInput {
  readonly EventId: string;
}

/**
 * A validated group (docs/ARCHITECTURE.md, "Groups"): its events in the order sent, each a
 * `ValidEvent` of the group's stream with its `EventId` settled and no `ExpectedVersion` of its
 * own (the group's applies to the first event; the rest follow at consecutive versions).
 */
export interface ValidGroup {
  readonly ID: string;
  readonly ExpectedVersion?: number | undefined;
  readonly events: readonly ValidEvent[];
}

export type ParseResult =
  | { readonly ok: true; readonly kind: 'event'; readonly streamId: string; readonly event: ValidEvent }
  | { readonly ok: true; readonly kind: 'group'; readonly streamId: string; readonly group: ValidGroup }
  | {
      readonly ok: false;
      readonly reason: RejectionReason;
      readonly detail: string;
      /** The stream id when the body had a usable `ID`, for logs and the DLQ's message group. */
      readonly streamId: string | undefined;
    };

/**
 * JSON with object keys sorted at every level: the same event always gives the same text. A
 * number a double cannot hold is written in its normal form (`normalNumberText`), so the text
 * depends on its value only, as DynamoDB gives it back, not on how the producer spelled it.
 */
export function canonicalJson(value: unknown): string {
  if (value instanceof ExactNumber) return normalNumberText(value.text);
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The idempotency key of an event sent without `EventId`: `sha256:` and the hex SHA-256 of
 * its canonical JSON without `ExpectedVersion` (a write condition, not content), so a
 * producer's retry of the same event is recognised, also when it re-read the stream and sent
 * it with a new `ExpectedVersion`.
 */
export function deriveEventId(event: EventInput): string {
  const { ExpectedVersion: _condition, ...content } = event;
  return `sha256:${createHash('sha256').update(canonicalJson(content)).digest('hex')}`;
}

/**
 * The idempotency key of event `index` of a group sent without its `EventId`: `sha256:` and the
 * hex SHA-256 of the canonical JSON of the whole group without `ExpectedVersion`, and the index.
 * A resend of the same group gets the same keys (also with a new `ExpectedVersion`); two equal
 * events in one group get different ones.
 */
export function deriveGroupEventId(group: GroupInput, index: number): string {
  const { ExpectedVersion: _condition, ...content } = group;
  return `sha256:${createHash('sha256')
    .update(canonicalJson({ Group: content, Index: index }))
    .digest('hex')}`;
}

/** `Events[2].` for an issue inside the third event of a group; '' elsewhere. */
function eventPrefix(issue: v.BaseIssue<unknown>): string {
  const [first, second] = issue.path ?? [];
  return first?.key === 'Events' && typeof second?.key === 'number' ? `Events[${second.key}].` : '';
}

function summarise(issues: readonly v.BaseIssue<unknown>[]): string {
  const messages = new Set<string>();
  for (const issue of issues) {
    // A union reports one issue per branch: when a branch got the right type but broke a
    // rule, that rule is the useful message; when no branch got the type, the union's own is.
    const specific = issue.issues?.filter((inner) => inner.kind === 'validation') ?? [];
    const nested = specific.length > 0 ? specific : [issue];
    for (const inner of nested) {
      const path = v.getDotPath(inner);
      const message = inner.message.includes(': ') || !path ? inner.message : `${path}: ${inner.message}`;
      const prefix = eventPrefix(issue);
      messages.add(prefix !== '' && !message.startsWith(prefix) ? `${prefix}${message}` : message);
    }
  }
  return [...messages].join('; ');
}

function streamIdOf(value: unknown): string | undefined {
  if (isJsonObject(value)) {
    const id = value['ID'];
    if (typeof id === 'string' && id.length > 0 && id.length <= Limits.maxIdChars) return id;
  }
  return undefined;
}

/** The rejection of a body the contract refuses: every problem, and its stream when it has a usable `ID`. */
function schemaViolation(issues: readonly v.BaseIssue<unknown>[], value: Record<string, unknown>): ParseResult {
  return { ok: false, reason: RejectionReason.SchemaViolation, detail: summarise(issues), streamId: streamIdOf(value) };
}

/** Validate an already parsed JSON value against the event contract. */
export function parseEvent(value: unknown): ParseResult {
  if (!isJsonObject(value)) {
    return {
      ok: false,
      reason: RejectionReason.InvalidJson,
      detail: `body: expected a JSON object, got ${typeName(value)}`,
      streamId: undefined,
    };
  }
  if (nestsDeeperThan(value, RECURSION_GUARD_DEPTH)) {
    // Refused before anything walks it recursively (the derived EventId, the size check); a
    // shallower excess is reported with its path by checkStorable.
    return { ok: false, reason: RejectionReason.UnstorableData, detail: TOO_DEEP, streamId: streamIdOf(value) };
  }
  if ('Events' in value) return parseGroup(value);
  const result = v.safeParse(EventSchema, value);
  if (!result.success) return schemaViolation(result.issues, value);
  const input = result.output;
  const event: ValidEvent = { ...input, EventId: input.EventId ?? deriveEventId(input) };
  return { ok: true, kind: 'event', streamId: event.ID, event };
}

/** The events of a valid message, in order: one, or a group's. */
export function messageEvents(parsed: Extract<ParseResult, { ok: true }>): readonly ValidEvent[] {
  return parsed.kind === 'event' ? [parsed.event] : parsed.group.events;
}

/** A group message as the producer sent it, after validation. */
export type GroupInput = v.InferOutput<typeof GroupSchema>;

/** A body with `Events`: a group (docs/ARCHITECTURE.md, "Groups"). */
function parseGroup(value: Record<string, unknown>): ParseResult {
  const result = v.safeParse(GroupSchema, value);
  if (!result.success) return schemaViolation(result.issues, value);
  const input = result.output;
  const owners = new Map<string, number>();
  const events: ValidEvent[] = [];
  const problems: string[] = [];
  for (const [index, sent] of input.Events.entries()) {
    const EventId = sent.EventId ?? deriveGroupEventId(input, index);
    const owner = owners.get(EventId);
    if (owner === undefined) owners.set(EventId, index);
    else
      problems.push(
        `Events[${index}].EventId: ${show(EventId)} is also the EventId of Events[${owner}]; each event of a group needs its own`,
      );
    events.push({ ...sent, ID: input.ID, EventId });
  }
  if (problems.length > 0) {
    return { ok: false, reason: RejectionReason.SchemaViolation, detail: problems.join('; '), streamId: input.ID };
  }
  const group: ValidGroup = {
    ID: input.ID,
    ...(input.ExpectedVersion !== undefined ? { ExpectedVersion: input.ExpectedVersion } : {}),
    events,
  };
  return { ok: true, kind: 'group', streamId: input.ID, group };
}

/**
 * DynamoDB's verdict on a group's items before any is written: each item as `checkStorable`
 * counts it (with the group's attributes), then their total against the transaction's 4 MB.
 */
export function checkGroupStorable(group: ValidGroup): { reason: RejectionReason; detail: string } | undefined {
  let total = 0;
  for (const [index, event] of group.events.entries()) {
    const item = eventItem(event, LARGEST_VERSION, PLACEHOLDER_RECORDED_AT, PLACEHOLDER_SEQUENCE, {
      index,
      size: group.events.length,
    });
    const problem = checkStorable(item);
    if (problem) return { reason: problem.reason, detail: `Events[${index}].${problem.detail}` };
    total += itemBytes(item);
  }
  if (total > Limits.maxTransactionBytes) {
    return {
      reason: RejectionReason.ItemTooLarge,
      detail: `Events: the group's ${group.events.length} items take about ${Math.ceil(total / 1024)} KB, over DynamoDB's ${Limits.maxTransactionBytes / 1024 / 1024} MB a transaction; split the group`,
    };
  }
  return undefined;
}

const TOO_DEEP = `Data: nested deeper than DynamoDB's ${Limits.maxNestingDepth} levels`;
/** Far beyond DynamoDB's 32 levels, far below what recursion can take. */
const RECURSION_GUARD_DEPTH = 100;

/**
 * Parse and validate an SQS message body: the JSON is read losslessly (core/json.ts), so a
 * number a double cannot hold is kept as the producer's literal; then the contract, then
 * DynamoDB's own limits (number range and digits, nesting, empty keys, the 400 KB item), so
 * that every verdict of this function is final and the same for the ingest and the redrive.
 *
 * @example
 * ```ts
 * const result = parseEventBody('{"Timestamp":1596719980000}');
 * if (!result.ok) console.log(result.reason, result.detail);
 * ```
 */
export function parseEventBody(body: string): ParseResult {
  let value: unknown;
  try {
    value = parseJsonExact(body);
  } catch (error) {
    // JSON.parse with a reviver recurses: valid JSON nested thousands deep overflows the stack.
    if (error instanceof RangeError)
      return { ok: false, reason: RejectionReason.UnstorableData, detail: TOO_DEEP, streamId: undefined };
    const why = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: RejectionReason.InvalidJson, detail: `body: not JSON (${why})`, streamId: undefined };
  }
  const parsed = parseEvent(value);
  if (!parsed.ok) return parsed;
  if (parsed.kind === 'group') {
    const bytes = Buffer.byteLength(body, 'utf8');
    if (bytes > Limits.maxMessageBytes) {
      return {
        ok: false,
        reason: RejectionReason.SchemaViolation,
        detail: `body: ${bytes} bytes, over SQS's ${Limits.maxMessageBytes} bytes (1 MiB) a message; split the group`,
        streamId: parsed.streamId,
      };
    }
    const problem = checkGroupStorable(parsed.group);
    if (problem) return { ok: false, ...problem, streamId: parsed.streamId };
    return parsed;
  }
  const problem = checkStorable(
    eventItem(parsed.event, LARGEST_VERSION, PLACEHOLDER_RECORDED_AT, PLACEHOLDER_SEQUENCE),
  );
  if (problem) return { ok: false, reason: problem.reason, detail: problem.detail, streamId: parsed.event.ID };
  return parsed;
}

/**
 * The size check at parse time counts the longest `Version` and `RecordedAt` the store can
 * write, so an item's verdict never depends on the version it would get.
 */
export const LARGEST_VERSION = Number.MAX_SAFE_INTEGER;
export const PLACEHOLDER_RECORDED_AT = new Date(0).toISOString();
/**
 * As long as a stored `SourceSequence` can be: an SQS FIFO sequence number (128 bits in
 * decimal), the queue's tag and the send time (core/fifo.ts `sourceSequence`).
 */
export const PLACEHOLDER_SEQUENCE = `${'9'.repeat(39)}@${'q'.repeat(8)}@${'9'.repeat(16)}`;

/** The DynamoDB item an event is stored as (before marshalling): the keys, the event, `RecordedAt`. */
export function eventItem(
  event: ValidEvent,
  version: number,
  recordedAt: string,
  sourceSequence?: string,
  group?: { readonly index: number; readonly size: number },
): Record<string, unknown> {
  return {
    [TableKeys.partitionKey]: event.ID,
    [TableKeys.sortKey]: version,
    [StoredAttributes.eventId]: event.EventId,
    [StoredAttributes.eventType]: event.EventType,
    [StoredAttributes.timestamp]: event.Timestamp,
    [StoredAttributes.emitterId]: event.EmitterId,
    [StoredAttributes.emitterType]: event.EmitterType,
    [StoredAttributes.data]: event.Data,
    [StoredAttributes.recordedAt]: recordedAt,
    ...(sourceSequence !== undefined ? { [StoredAttributes.sourceSequence]: sourceSequence } : {}),
    ...(group !== undefined
      ? { [StoredAttributes.groupSize]: group.size, [StoredAttributes.groupIndex]: group.index }
      : {}),
  };
}

/** The fields that make two events with the same `EventId` the same event. */
export interface EventContent {
  readonly Timestamp: number | string | ExactNumber;
  readonly EventType: string;
  readonly EmitterId: string;
  readonly EmitterType: string;
  readonly Data?: Record<string, unknown> | null | undefined;
}

/**
 * A fingerprint of an event's content as the store keeps it (not `ExpectedVersion`, not
 * `EventId`): equal fingerprints mean a redelivery, different ones an `EventIdConflict`.
 */
export function eventFingerprint(event: EventContent): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        Timestamp: event.Timestamp,
        EventType: event.EventType,
        EmitterId: event.EmitterId,
        EmitterType: event.EmitterType,
        Data: event.Data,
      }),
    )
    .digest('base64url');
}
