/**
 * The redrive workflow's rules for one message (docs/ARCHITECTURE.md, "Redrive"): the
 * execution input, `filter` and `fix`, and what to do with each dead-lettered message. The run
 * the state machine carries from one batch to the next is in core/redrive-run.ts. No AWS code:
 * SQS is behind the `RedriveQueues` port (core/redrive-run.ts), and the Lambda
 * `handlers/redrive.ts` is a thin shell around these.
 */
import * as v from 'valibot';
import { parseEventBody } from './event.ts';
import { fifoDeduplicationId, fifoGroupId } from './fifo.ts';
import { isRawJson, parseJsonExact, parseJsonVerbatim } from './json.ts';
import { Limits } from './keys.ts';
import { MessageAttributeNames, parseRedriveCount } from './message-attributes.ts';
import { ReportBudget, StateBudget, cutToBytes, jsonBytes } from './redrive-budget.ts';
import { checkStorable } from './storable.ts';

/** SQS receives at most 10 messages a call (core/keys.ts). */
export const MAX_RECEIVE_BATCH = Limits.maxSqsBatch;
/** The options (filter and fix) must stay this small, in UTF-8 bytes of JSON: they travel in every state. */
export const MAX_OPTIONS_BYTES = StateBudget.options;
/**
 * How long a receive hides its messages before the batch call holds the ones it keeps until
 * the run's end: longer than one call (60 s, workflows/redrive-workflow.ts), so a call that
 * dies, or a receive whose response is lost, hides its messages for this long only.
 */
export const RECEIVE_LEASE_SECONDS = 90;
/** The shortest `visibilityTimeoutSeconds`: a lease, and half a minute to receive in. */
const MIN_VISIBILITY_SECONDS = 120;

/** The message attribute names shared with the ingest handler (core/message-attributes.ts). */
export const RedriveAttributes = {
  rejectionReason: MessageAttributeNames.rejectionReason,
  rejectionDetail: MessageAttributeNames.rejectionDetail,
  redriveCount: MessageAttributeNames.redriveCount,
  redrivenFrom: MessageAttributeNames.redrivenFrom,
} as const;

/**
 * A field `fix` can change (docs/ARCHITECTURE.md, "Redrive"): a top-level field (`EmitterType`),
 * a key inside `Data` (`Data.a.b`), or either of an event of a group, `Events.<i>.` first: the
 * numeric segment is the event's index in `Events`, from 0, in decimal without leading zeros
 * (`Events.1.Data.total`, `Events.0.EventType`).
 */
const FIELD_PATH = /^(?:Events\.(?:0|[1-9][0-9]*)\.)?(?:[A-Za-z_][A-Za-z0-9_]*|Data(?:\.[^.]+)+)$/;
const TOP_LEVEL_FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `Events.<i>.<rest>`: a field of event i of a group. */
const EVENT_FIELD_PATH = /^Events\.(0|[1-9][0-9]*)\.(.+)$/;

/** Where a fix path points: inside event `event` of a group's `Events`, or (undefined) in the body itself. */
interface FixTarget {
  readonly event: number | undefined;
  /** The path inside that event, or inside the body: `EmitterType`, `Data.a.b`. */
  readonly field: string;
}

function fixTarget(path: string): FixTarget {
  const match = EVENT_FIELD_PATH.exec(path);
  return match ? { event: Number(match[1]), field: match[2]! } : { event: undefined, field: path };
}

const FieldPathSchema = v.pipe(
  v.string(),
  v.regex(
    FIELD_PATH,
    (issue) =>
      `${JSON.stringify(issue.input)} is not a field: use a top-level field like "EmitterType", "Data.<key>", or "Events.<i>.<field>" for event i (from 0) of a group`,
  ),
  v.check(
    (path) => (fixTarget(path).event ?? 0) < Limits.maxGroupEvents,
    (issue) =>
      `${JSON.stringify(issue.input)}: a group has at most ${Limits.maxGroupEvents} events (Events.0 to Events.${Limits.maxGroupEvents - 1})`,
  ),
);

const JsonScalarSchema = v.union(
  [v.string(), v.number(), v.boolean(), v.null()],
  'expected a string, number, boolean or null',
);

const visibilityMessage = `visibilityTimeoutSeconds: expected a whole number of seconds from ${MIN_VISIBILITY_SECONDS} to 43200`;

/**
 * The execution input. Every field is optional so that `{}` works from the console.
 *
 * @example
 * ```ts
 * v.parse(RedriveInputSchema, { fix: { set: { EmitterType: 'SYSTEM' } } });
 * ```
 */
export const RedriveInputSchema = v.strictObject(
  {
    /** Report what would happen; change nothing. */
    dryRun: v.optional(v.boolean('dryRun: expected true or false'), false),
    /** Stop after this many messages. */
    maxMessages: v.optional(
      v.pipe(
        v.number('maxMessages: expected a whole number'),
        v.integer('maxMessages: expected a whole number'),
        v.minValue(1, 'maxMessages: must be at least 1'),
        v.maxValue(100_000, 'maxMessages: at most 100000 per execution'),
      ),
      1000,
    ),
    /** Messages received per call (1 to 10). */
    batchSize: v.optional(
      v.pipe(
        v.number('batchSize: expected a whole number from 1 to 10'),
        v.integer('batchSize: expected a whole number from 1 to 10'),
        v.minValue(1, 'batchSize: expected a whole number from 1 to 10'),
        v.maxValue(MAX_RECEIVE_BATCH, 'batchSize: expected a whole number from 1 to 10'),
      ),
      MAX_RECEIVE_BATCH,
    ),
    /** How long the run may hold what it reads hidden from other receivers: the run must fit inside it. */
    visibilityTimeoutSeconds: v.optional(
      v.pipe(
        v.number(visibilityMessage),
        v.integer(visibilityMessage),
        v.minValue(MIN_VISIBILITY_SECONDS, visibilityMessage),
        v.maxValue(43_200, visibilityMessage),
      ),
      900,
    ),
    /** Only messages whose event has all these top-level field values. */
    filter: v.optional(
      v.record(
        v.pipe(
          v.string(),
          v.regex(TOP_LEVEL_FIELD, (issue) => `filter: ${JSON.stringify(issue.input)} is not a top-level field name`),
        ),
        JsonScalarSchema,
        'filter: expected an object of field: value, like {"EventType": "ORDER_PLACED"}',
      ),
    ),
    fix: v.optional(
      v.strictObject(
        {
          /** Field (or `Data.<key>`) -> new value (numbers arrive as doubles: Step Functions' JSON). */
          set: v.optional(v.record(FieldPathSchema, v.unknown(), 'fix.set: expected an object of field: value')),
          /** Field (or `Data.<key>`) -> the new value's JSON text, kept exactly (numbers as written). */
          setJson: v.optional(
            v.record(
              FieldPathSchema,
              v.string('fix.setJson: expected each value as its JSON text, like "12345678901234567890"'),
              'fix.setJson: expected an object of field: "JSON text"',
            ),
          ),
          /** Fields (or `Data.<key>`) to remove. */
          remove: v.optional(v.array(FieldPathSchema, 'fix.remove: expected a list of field names')),
        },
        (issue) =>
          issue.expected === 'never'
            ? `fix.${String(issue.path?.at(-1)?.key)}: unknown key; allowed are "set", "setJson" and "remove"`
            : 'fix: expected an object like {"set": {...}, "remove": [...]}',
      ),
    ),
  },
  (issue) =>
    issue.expected === 'never'
      ? `${String(issue.path?.at(-1)?.key)}: unknown option; allowed are dryRun, maxMessages, batchSize, visibilityTimeoutSeconds, filter, fix`
      : 'the input must be a JSON object like {"dryRun": true}',
);

export type RedriveOptions = v.InferOutput<typeof RedriveInputSchema>;
export type RedriveFilter = NonNullable<RedriveOptions['filter']>;
export type RedriveFix = NonNullable<RedriveOptions['fix']>;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function arrayWhereObjectExpected(input: unknown): string | undefined {
  if (Array.isArray(input)) return 'the input must be a JSON object like {"dryRun": true}';
  if (!isObject(input)) return undefined;
  if (Array.isArray(input['filter']))
    return 'filter: expected an object of field: value, like {"EventType": "ORDER_PLACED"}';
  if (Array.isArray(input['fix'])) return 'fix: expected an object like {"set": {...}, "remove": [...]}';
  if (isObject(input['fix']) && Array.isArray(input['fix']['set']))
    return 'fix.set: expected an object of field: value';
  if (isObject(input['fix']) && Array.isArray(input['fix']['setJson']))
    return 'fix.setJson: expected an object of field: "JSON text"';
  return undefined;
}

/**
 * The item the ingest would store a field at `path` in: `Data.a.b` -> `{ Data: { a: { b: value } } }`.
 * An event of a group is an item of its own: `Events.1.Data.a` is stored as `{ Data: { a: value } }`.
 */
function itemAt(path: string, value: unknown): Record<string, unknown> {
  return fixTarget(path)
    .field.split('.')
    .reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as Record<string, unknown>;
}

/**
 * Why the ingest would refuse a value `fix` sets (core/storable.ts: the same reason code and
 * detail the ingest gives, `Events[i].` first for an event of a group, as core/event.ts
 * `checkGroupStorable` says it), or `undefined` when DynamoDB can store it.
 *
 * @example
 * ```ts
 * unstorableFixValue('Data.amount', parseJsonExact('1e400'));
 * // "UnstorableData: Data.amount: 1e400 is outside DynamoDB's number range (1e-130 to 1e126); send it as a string"
 * unstorableFixValue('Events.1.Data.amount', parseJsonExact('1e400'));
 * // "UnstorableData: Events[1].Data.amount: 1e400 is outside DynamoDB's number range (1e-130 to 1e126); send it as a string"
 * ```
 */
export function unstorableFixValue(path: string, value: unknown): string | undefined {
  const problem = checkStorable(itemAt(path, value));
  if (!problem) return undefined;
  const { event } = fixTarget(path);
  return `${problem.reason}: ${event === undefined ? '' : `Events[${event}].`}${problem.detail}`;
}

/** What is wrong with the values `fix` sets: JSON texts that are not JSON, values DynamoDB refuses, a field set twice. */
function fixValueProblems(fix: RedriveFix | undefined): string[] {
  const problems: string[] = [];
  for (const [path, value] of Object.entries(fix?.set ?? {})) {
    const refused = unstorableFixValue(path, value);
    if (refused) problems.push(`fix.set: ${refused}`);
  }
  for (const [path, text] of Object.entries(fix?.setJson ?? {})) {
    let value: unknown;
    try {
      value = parseJsonExact(text);
    } catch (error) {
      problems.push(`fix.setJson: ${JSON.stringify(path)}: not JSON (${error instanceof Error ? error.message : ''})`);
      continue;
    }
    const refused = unstorableFixValue(path, value);
    if (refused) problems.push(`fix.setJson: ${refused}`);
    if (Object.hasOwn(fix?.set ?? {}, path)) problems.push(`fix: ${JSON.stringify(path)} is in both set and setJson`);
  }
  return problems;
}

function issueMessages(issues: readonly v.BaseIssue<unknown>[]): string[] {
  const messages = new Set<string>();
  for (const issue of issues) {
    // A union reports one issue per branch; a branch that broke a rule says more than the union.
    const specific = issue.issues?.filter((each) => each.kind === 'validation') ?? [];
    const inner = specific.length > 0 ? specific : [issue];
    for (const each of inner) {
      const path = v.getDotPath(each);
      messages.add(each.message.includes(': ') || !path ? each.message : `${path}: ${each.message}`);
    }
  }
  return [...messages];
}

/** Validate the execution input: the options with defaults, or one readable sentence. */
export function parseRedriveInput(
  input: unknown,
): { ok: true; options: RedriveOptions } | { ok: false; cause: string } {
  // valibot's object schemas accept arrays; the input's objects must be plain objects.
  const arrayAt = arrayWhereObjectExpected(input ?? {});
  if (arrayAt) return { ok: false, cause: `Invalid redrive input: ${arrayAt}` };
  const result = v.safeParse(RedriveInputSchema, input ?? {});
  if (!result.success) return { ok: false, cause: `Invalid redrive input: ${issueMessages(result.issues).join('; ')}` };
  const problems = fixValueProblems(result.output.fix);
  if (problems.length > 0)
    return { ok: false, cause: cutToBytes(`Invalid redrive input: ${problems.join('; ')}`, 2000) };
  const bytes = jsonBytes(result.output);
  if (bytes > MAX_OPTIONS_BYTES) {
    return {
      ok: false,
      cause: `Invalid redrive input: the options take ${bytes} bytes of JSON (UTF-8); at most ${MAX_OPTIONS_BYTES} (they travel in the workflow's state)`,
    };
  }
  return { ok: true, options: result.output };
}

/**
 * Whether a message (a parsed body) matches `filter`: an event when it has every `filter` value
 * on its top-level fields; a group (an `Events` list) when one of its events does, the group's
 * own fields (`ID`, `ExpectedVersion`) counted as that event's: `{"EventType": "ORDER_PLACED"}`
 * matches a group holding an ORDER_PLACED event, `{"ID": "order-1", "EmitterId": "checkout"}` a
 * group of stream order-1 with an event from checkout.
 */
export function matchesFilter(event: unknown, filter: RedriveFilter | undefined): boolean {
  if (!filter) return true;
  if (!isObject(event)) return false;
  const has = (fields: Record<string, unknown>) =>
    Object.entries(filter).every(([field, value]) => Object.hasOwn(fields, field) && fields[field] === value);
  const events = event['Events'];
  if (!Array.isArray(events)) return has(event);
  const { Events: _events, ...group } = event;
  return events.some((member) => isObject(member) && has({ ...group, ...member }));
}

/**
 * Why `fix` cannot apply to a message (docs/ARCHITECTURE.md, "Redrive"): `set` and `setJson`
 * create a missing field, and objects along its path, but never an event, so a path into
 * `Events.<i>` needs the message to be a group with an object at that index. A `remove` of
 * what is not there changes nothing, as for any field. `undefined` when the fix applies.
 */
export function unappliedFix(body: unknown, fix: RedriveFix | undefined): string | undefined {
  if (!fix || !isObject(body)) return undefined;
  const events = body['Events'];
  const problems: string[] = [];
  const paths = [
    ...Object.keys(fix.set ?? {}).map((path) => ['set', path] as const),
    ...Object.keys(fix.setJson ?? {}).map((path) => ['setJson', path] as const),
  ];
  for (const [via, path] of paths) {
    const { event } = fixTarget(path);
    if (event === undefined) continue;
    const names = `fix.${via}: ${JSON.stringify(path)} names Events[${event}]`;
    if (!Array.isArray(events)) problems.push(`${names}, but the message is not a group (it has no Events list)`);
    else if (event >= events.length)
      problems.push(
        `${names}, but the group has ${events.length} event${events.length === 1 ? '' : 's'} (Events.0${events.length > 1 ? ` to Events.${events.length - 1}` : ''})`,
      );
    else if (!isObject(events[event])) problems.push(`${names}, which is not an object`);
  }
  return problems.length > 0 ? problems.join('; ') : undefined;
}

function hasChanges(fix: RedriveFix | undefined): fix is RedriveFix {
  return (
    fix !== undefined &&
    (Object.keys(fix.set ?? {}).length > 0 ||
      Object.keys(fix.setJson ?? {}).length > 0 ||
      (fix.remove ?? []).length > 0)
  );
}

// Objects (and arrays) as plain values; every primitive as raw JSON holding its source text.
const isMap = (value: unknown): value is Record<string, unknown> => isObject(value) && !isRawJson(value);

/** The object a path changes: the body, or event i of its `Events` (undefined when there is none). */
function fixedObject(tree: Record<string, unknown>, event: number | undefined): Record<string, unknown> | undefined {
  if (event === undefined) return tree;
  const events = tree['Events'];
  const member: unknown = Array.isArray(events) ? events[event] : undefined;
  return isMap(member) ? member : undefined;
}

function setAt(tree: Record<string, unknown>, path: string, value: unknown): void {
  const { event, field } = fixTarget(path);
  const object = fixedObject(tree, event);
  // No such event: nothing to set it in (planMessage keeps the message, `unappliedFix`).
  if (!object) return;
  const keys = field.split('.');
  const last = keys.pop()!;
  let target = object;
  for (const key of keys) {
    if (!isMap(target[key])) target[key] = {};
    target = target[key] as Record<string, unknown>;
  }
  target[last] = value;
}

function removeAt(tree: Record<string, unknown>, path: string): void {
  const { event, field } = fixTarget(path);
  const keys = field.split('.');
  const last = keys.pop()!;
  let target: unknown = fixedObject(tree, event);
  for (const key of keys) target = isMap(target) ? target[key] : undefined;
  if (isMap(target)) delete target[last];
}

/**
 * The body to send back: without `fix`, the original text byte for byte; with `fix`, the
 * original JSON with only the named fields changed (`set` and `setJson` run before `remove`;
 * `Data.a.b` creates `Data` and `Data.a` when absent; `Events.1.Data.a` does the same inside
 * the group's event 1, and changes nothing when the message has no such event, see
 * `unappliedFix`). Every other value keeps its exact source
 * text, and a `setJson` value is written exactly as given, so the ingest derives the same
 * `EventId` from the same body and fix on every run. `undefined` when the body is not a JSON
 * object (a fix cannot apply; the original is validated as it is).
 *
 * @example
 * ```ts
 * fixBody('{"EmitterType":"","Amount":1.50}', { set: { EmitterType: 'SYSTEM' }, setJson: { 'Data.big': '12345678901234567890' } });
 * // '{"EmitterType":"SYSTEM","Amount":1.50,"Data":{"big":12345678901234567890}}'
 * ```
 */
export function fixBody(text: string, fix: RedriveFix | undefined): string | undefined {
  if (!hasChanges(fix)) return text;
  let parsed: unknown;
  try {
    parsed = parseJsonVerbatim(text);
  } catch {
    return undefined;
  }
  if (!isMap(parsed)) return undefined;
  for (const [path, value] of Object.entries(fix.set ?? {})) setAt(parsed, path, structuredClone(value));
  // Parsed per message: `remove` may change inside a value set here.
  for (const [path, json] of Object.entries(fix.setJson ?? {})) setAt(parsed, path, parseJsonVerbatim(json));
  for (const path of fix.remove ?? []) removeAt(parsed, path);
  return JSON.stringify(parsed);
}

/** A message attribute as SQS returns and accepts it. */
export interface SqsMessageAttribute {
  readonly DataType: string;
  readonly StringValue?: string;
}

/**
 * A dead-lettered message as ReceiveMessage returns it (`Attributes` carries `MessageGroupId`
 * on FIFO queues and `SentTimestamp`, when SQS took it into the DLQ).
 */
export interface DeadLetterMessage {
  readonly MessageId: string;
  readonly ReceiptHandle: string;
  readonly Body?: string | undefined;
  readonly Attributes?: Readonly<Record<string, string>> | undefined;
  readonly MessageAttributes?: Readonly<Record<string, SqsMessageAttribute>> | undefined;
}

export type Outcome =
  | 'redriven'
  | 'wouldRedrive'
  | 'stillRejected'
  | 'skippedByFilter'
  | 'heldBack'
  | 'sendFailed'
  | 'deleteFailed'
  | 'arrivedDuringRun';

/** What goes back to the source queue for one dead-lettered message. */
export interface OutgoingMessage {
  readonly body: string;
  readonly messageAttributes: Record<string, SqsMessageAttribute>;
  /** FIFO only: the stream's group (core/fifo.ts, the rule the rejecter uses). */
  readonly groupId: string;
  /** FIFO only: derived from the DLQ message id, so a re-send within 5 minutes is dropped by SQS. */
  readonly deduplicationId: string;
}

/** The plan for one message: send it back, or keep it in the DLQ with a reason. */
export type MessagePlan =
  | { readonly action: 'send'; readonly streamId: string; readonly message: OutgoingMessage }
  | {
      readonly action: 'keep';
      readonly streamId: string | null;
      readonly outcome: 'wouldRedrive' | 'stillRejected' | 'skippedByFilter';
      readonly reason: string;
      readonly detail: string | null;
    };

/** A detail as the report lists it: cut to its byte budget (core/redrive-budget.ts). */
export function detailText(text: string): string {
  return cutToBytes(text, ReportBudget.detailBytes);
}

function streamIdOf(value: unknown): string | null {
  return isObject(value) && typeof value['ID'] === 'string' && value['ID'].length > 0 ? value['ID'] : null;
}

/**
 * Decide what to do with one dead-lettered message: filter, fix, then re-validate the exact
 * text that would be sent with the ingest's own rules (`parseEventBody`: the contract, numbers
 * exactly as sent, DynamoDB's limits), so the redrive never sends what the ingest would refuse.
 */
export function planMessage(message: DeadLetterMessage, options: RedriveOptions): MessagePlan {
  const text = message.Body ?? '';
  let parsed: unknown;
  let parseError: string | undefined;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    parseError = error instanceof Error ? error.message : String(error);
  }
  const streamId = streamIdOf(parsed);
  if (!matchesFilter(parsed, options.filter)) {
    return {
      action: 'keep',
      streamId,
      outcome: 'skippedByFilter',
      reason: 'NotMatchedByFilter',
      detail: parseError ? detailText(`body is not JSON (${parseError})`) : 'the event does not match the filter',
    };
  }
  const unapplied = unappliedFix(parsed, options.fix);
  if (unapplied) {
    return {
      action: 'keep',
      streamId,
      outcome: 'stillRejected',
      reason: 'FixNotApplicable',
      detail: detailText(unapplied),
    };
  }
  // The whole message is validated again, a group with every one of its events (parseEventBody).
  const body = fixBody(text, options.fix) ?? text;
  const result = parseEventBody(body);
  if (!result.ok) {
    return {
      action: 'keep',
      streamId: result.streamId ?? streamId,
      outcome: 'stillRejected',
      reason: result.reason,
      detail: detailText(result.detail),
    };
  }
  if (options.dryRun) {
    return { action: 'keep', streamId: result.streamId, outcome: 'wouldRedrive', reason: 'DryRun', detail: null };
  }
  const redriveCount = parseRedriveCount(message.MessageAttributes?.[RedriveAttributes.redriveCount]?.StringValue) + 1;
  return {
    action: 'send',
    streamId: result.streamId,
    message: {
      body,
      messageAttributes: {
        [RedriveAttributes.redriveCount]: { DataType: 'Number', StringValue: String(redriveCount) },
        [RedriveAttributes.redrivenFrom]: { DataType: 'String', StringValue: message.MessageId },
      },
      groupId: fifoGroupId(result.streamId, message.Attributes?.['MessageGroupId'], message.MessageId),
      deduplicationId: fifoDeduplicationId(`redrive-${message.MessageId}`),
    },
  };
}
