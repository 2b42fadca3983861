/**
 * The redrive workflow's rules (DESIGN section 6), as pure functions: the execution input,
 * `filter` and `fix`, what to do with each dead-lettered message, and the running summary
 * the state machine carries from one batch to the next. No AWS code: the Lambda
 * `handlers/redrive-prepare.ts` is a thin shell around these, and they are unit tested.
 */
import * as v from 'valibot';
import { parseEvent } from './event.ts';
import { checkStorable } from './storable.ts';

/** SQS receives at most 10 messages a call. */
export const MAX_RECEIVE_BATCH = 10;
/** How many kept messages the output lists by id (the rest are counted). */
export const MAX_LISTED = 100;
/** How many kept messages are made visible again at the end of a run (the rest wait for their timeout). */
export const MAX_RELEASED = 200;
/** Stop receiving this long before the first batch's visibility timeout ends. */
export const VISIBILITY_MARGIN_SECONDS = 30;
/** A `detail` in the output is cut to this length so the state stays small. */
const MAX_DETAIL_CHARS = 300;

/** The message attribute names shared with the ingest handler. */
export const RedriveAttributes = {
  rejectionReason: 'RejectionReason',
  rejectionDetail: 'RejectionDetail',
  redriveCount: 'RedriveCount',
  redrivenFrom: 'RedrivenFrom',
} as const;

const FIELD_PATH = /^(?:[A-Za-z_][A-Za-z0-9_]*|Data(?:\.[^.]+)+)$/;
const TOP_LEVEL_FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

const FieldPathSchema = v.pipe(
  v.string(),
  v.regex(
    FIELD_PATH,
    (issue) => `${JSON.stringify(issue.input)} is not a field: use a top-level field like "EmitterType" or "Data.<key>"`,
  ),
);

const JsonScalarSchema = v.union([v.string(), v.number(), v.boolean(), v.null()], 'expected a string, number, boolean or null');

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
    /** Messages received per call (lower it when events are large: a batch must fit the 256 KB state). */
    batchSize: v.optional(
      v.pipe(
        v.number('batchSize: expected a whole number from 1 to 10'),
        v.integer('batchSize: expected a whole number from 1 to 10'),
        v.minValue(1, 'batchSize: expected a whole number from 1 to 10'),
        v.maxValue(MAX_RECEIVE_BATCH, 'batchSize: expected a whole number from 1 to 10'),
      ),
      MAX_RECEIVE_BATCH,
    ),
    /** How long received messages stay hidden from other receivers: the run must fit inside it. */
    visibilityTimeoutSeconds: v.optional(
      v.pipe(
        v.number('visibilityTimeoutSeconds: expected a whole number of seconds from 60 to 43200'),
        v.integer('visibilityTimeoutSeconds: expected a whole number of seconds from 60 to 43200'),
        v.minValue(60, 'visibilityTimeoutSeconds: expected a whole number of seconds from 60 to 43200'),
        v.maxValue(43_200, 'visibilityTimeoutSeconds: expected a whole number of seconds from 60 to 43200'),
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
          /** Field (or `Data.<key>`) -> new value. */
          set: v.optional(
            v.record(FieldPathSchema, v.unknown(), 'fix.set: expected an object of field: value'),
          ),
          /** Fields (or `Data.<key>`) to remove. */
          remove: v.optional(v.array(FieldPathSchema, 'fix.remove: expected a list of field names')),
        },
        (issue) =>
          issue.expected === 'never'
            ? `fix.${String(issue.path?.at(-1)?.key)}: unknown key; allowed are "set" and "remove"`
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
  if (Array.isArray(input['filter'])) return 'filter: expected an object of field: value, like {"EventType": "ORDER_PLACED"}';
  if (Array.isArray(input['fix'])) return 'fix: expected an object like {"set": {...}, "remove": [...]}';
  if (isObject(input['fix']) && Array.isArray(input['fix']['set'])) return 'fix.set: expected an object of field: value';
  return undefined;
}

/** Validate the execution input: the options with defaults, or one readable sentence. */
export function parseRedriveInput(input: unknown): { ok: true; options: RedriveOptions } | { ok: false; cause: string } {
  // valibot's object schemas accept arrays; the input's objects must be plain objects.
  const arrayAt = arrayWhereObjectExpected(input ?? {});
  if (arrayAt) return { ok: false, cause: `Invalid redrive input: ${arrayAt}` };
  const result = v.safeParse(RedriveInputSchema, input ?? {});
  if (result.success) return { ok: true, options: result.output };
  const messages = new Set<string>();
  for (const issue of result.issues) {
    // A union reports one issue per branch; a branch that broke a rule says more than the union.
    const specific = issue.issues?.filter((each) => each.kind === 'validation') ?? [];
    const inner = specific.length > 0 ? specific : [issue];
    for (const each of inner) {
      const path = v.getDotPath(each);
      messages.add(each.message.includes(': ') || !path ? each.message : `${path}: ${each.message}`);
    }
  }
  return { ok: false, cause: `Invalid redrive input: ${[...messages].join('; ')}` };
}


/** Whether an event (a parsed body) has every `filter` value on its top-level fields. */
export function matchesFilter(event: unknown, filter: RedriveFilter | undefined): boolean {
  if (!filter) return true;
  if (!isObject(event)) return false;
  return Object.entries(filter).every(([field, value]) => Object.hasOwn(event, field) && event[field] === value);
}

/**
 * Apply `fix` to an event (a parsed body) and return the new object; the input is not changed.
 * `set` runs before `remove`. `Data.a.b` creates `Data` and `Data.a` when absent.
 *
 * @example
 * ```ts
 * applyFix({ EmitterType: '', Legacy: 1 }, { set: { EmitterType: 'SYSTEM' }, remove: ['Legacy'] });
 * // { EmitterType: 'SYSTEM' }
 * ```
 */
export function applyFix(event: Record<string, unknown>, fix: RedriveFix | undefined): Record<string, unknown> {
  const result = structuredClone(event);
  if (!fix) return result;
  for (const [path, value] of Object.entries(fix.set ?? {})) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let target = result;
    for (const key of keys) {
      if (!isObject(target[key])) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[last] = structuredClone(value);
  }
  for (const path of fix.remove ?? []) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let target: unknown = result;
    for (const key of keys) target = isObject(target) ? target[key] : undefined;
    if (isObject(target)) delete target[last];
  }
  return result;
}

/** A message attribute as SQS returns and accepts it (PascalCase, as Step Functions passes it). */
export interface SqsMessageAttribute {
  readonly DataType: string;
  readonly StringValue?: string;
}

/** A message as the Step Functions SQS integration returns it from ReceiveMessage. */
export interface DeadLetterMessage {
  readonly MessageId: string;
  readonly ReceiptHandle: string;
  readonly Body?: string;
  readonly Attributes?: Readonly<Record<string, string>>;
  readonly MessageAttributes?: Readonly<Record<string, SqsMessageAttribute>>;
}

export type Outcome =
  | 'redriven'
  | 'wouldRedrive'
  | 'stillRejected'
  | 'skippedByFilter'
  | 'sendFailed'
  | 'deleteFailed';

/**
 * One Map iteration's instructions. `send`: send `body` to the source queue, then delete from
 * the DLQ. `keep`: leave it in the DLQ (it is released at the end of the run). `release`: make
 * it visible again now (FIFO: a later message of a stream that already has one in this batch;
 * it comes back in the next receive, in order).
 */
export interface PlannedItem {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly streamId: string | null;
  readonly action: 'send' | 'keep' | 'release';
  readonly outcome: Outcome | null;
  readonly reason: string | null;
  readonly detail: string | null;
  readonly body: string | null;
  readonly messageAttributes: Record<string, SqsMessageAttribute> | null;
  readonly groupId: string | null;
  readonly deduplicationId: string | null;
}

/** What a Map iteration reports back (a released message reports only its id). */
export interface ItemResult {
  readonly messageId: string;
  readonly receiptHandle?: string;
  readonly streamId?: string | null;
  readonly outcome?: Outcome | null;
  readonly reason?: string | null;
  readonly detail?: string | null;
}

function cut(text: string): string {
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS - 3)}...` : text;
}

function streamIdOf(value: unknown): string | null {
  return isObject(value) && typeof value['ID'] === 'string' && value['ID'].length > 0 ? value['ID'] : null;
}

/**
 * Decide what to do with one dead-lettered message: filter, fix, re-validate with the
 * current event contract (and DynamoDB's limits).
 */
export function planMessage(message: DeadLetterMessage, options: RedriveOptions): PlannedItem {
  const base = {
    messageId: message.MessageId,
    receiptHandle: message.ReceiptHandle,
    body: null,
    messageAttributes: null,
    groupId: null,
    deduplicationId: null,
  };
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
      ...base,
      streamId,
      action: 'keep',
      outcome: 'skippedByFilter',
      reason: 'NotMatchedByFilter',
      detail: parseError ? `body is not JSON (${cut(parseError)})` : 'the event does not match the filter',
    };
  }
  const fixed = isObject(parsed) ? applyFix(parsed, options.fix) : parsed;
  const fixedStreamId = streamIdOf(fixed);
  const result =
    parseError !== undefined
      ? ({ ok: false, reason: 'InvalidJson', detail: `body: not JSON (${parseError})` } as const)
      : parseEvent(fixed);
  if (!result.ok) {
    return { ...base, streamId: fixedStreamId, action: 'keep', outcome: 'stillRejected', reason: result.reason, detail: cut(result.detail) };
  }
  const problem = checkStorable(result.event as unknown as Record<string, unknown>);
  if (problem) {
    return { ...base, streamId: fixedStreamId, action: 'keep', outcome: 'stillRejected', reason: problem.reason, detail: cut(problem.detail) };
  }
  if (options.dryRun) {
    return { ...base, streamId: result.event.ID, action: 'keep', outcome: 'wouldRedrive', reason: 'DryRun', detail: null };
  }
  const previous = Number(message.MessageAttributes?.[RedriveAttributes.redriveCount]?.StringValue ?? '0');
  const redriveCount = Number.isInteger(previous) && previous >= 0 ? previous + 1 : 1;
  return {
    ...base,
    streamId: result.event.ID,
    action: 'send',
    outcome: null,
    reason: null,
    detail: null,
    // Unchanged events go back byte for byte; fixed ones as their new JSON.
    body: fixed === parsed && !options.fix ? text : JSON.stringify(fixed),
    messageAttributes: {
      [RedriveAttributes.redriveCount]: { DataType: 'Number', StringValue: String(redriveCount) },
      [RedriveAttributes.redrivenFrom]: { DataType: 'String', StringValue: message.MessageId },
    },
    groupId: result.event.ID,
    // Fresh (not the original's), and the same if this message is sent twice after a failed delete.
    deduplicationId: `redrive-${message.MessageId}`,
  };
}

/** A message that stayed in the DLQ, as the output lists it. */
export interface StayedMessage {
  readonly messageId: string;
  readonly ID: string | null;
  readonly outcome: Outcome;
  readonly reason: string | null;
  readonly detail: string | null;
}

/** The output a console user reads. */
export interface RedriveReport {
  readonly dryRun: boolean;
  readonly counts: {
    received: number;
    redriven: number;
    wouldRedrive: number;
    stillRejected: number;
    skippedByFilter: number;
    sendFailed: number;
    deleteFailed: number;
  };
  /** The first MAX_LISTED messages that stayed in the DLQ. */
  readonly stayed: StayedMessage[];
  readonly stayedNotListed: number;
  readonly stoppedBecause: 'queueEmpty' | 'maxMessages' | 'visibilityWindow' | 'onlySeenMessages' | null;
  /** When the messages that stayed can be received again. */
  readonly stayedVisibleAgain: string;
  readonly startedAt: string;
}

/** The running state the state machine carries between batches. */
export interface RedriveSummary {
  readonly report: RedriveReport;
  /** Receipt handles of kept messages to make visible again at the end (at most MAX_RELEASED). */
  readonly release: { receiptHandle: string }[];
  /** Message ids seen and kept, to notice a message that came back (bounded with `release`). */
  readonly seen: string[];
  /** How many messages the next receive asks for. */
  readonly nextBatchSize: number;
  /** Epoch ms after which no receive may start (the first batch becomes visible soon after). */
  readonly receiveUntil: number;
  /** Epoch ms when messages kept beyond MAX_RELEASED become visible again (latest receive + timeout). */
  readonly lastVisibleAt: number;
}

export interface RedriveState {
  readonly options: RedriveOptions;
  readonly summary: RedriveSummary;
}

/** `start`: validate the input and open the summary. */
export function startRedrive(
  input: unknown,
  now: number,
): ({ valid: true; cause: null } & RedriveState) | { valid: false; cause: string } {
  const parsed = parseRedriveInput(input);
  if (!parsed.ok) return { valid: false, cause: parsed.cause };
  const { options } = parsed;
  return {
    valid: true,
    cause: null,
    options,
    summary: {
      report: {
        dryRun: options.dryRun,
        counts: {
          received: 0,
          redriven: 0,
          wouldRedrive: 0,
          stillRejected: 0,
          skippedByFilter: 0,
          sendFailed: 0,
          deleteFailed: 0,
        },
        stayed: [],
        stayedNotListed: 0,
        stoppedBecause: null,
        stayedVisibleAgain: 'now: nothing stayed',
        startedAt: new Date(now).toISOString(),
      },
      release: [],
      seen: [],
      nextBatchSize: Math.min(options.batchSize, options.maxMessages),
      receiveUntil: now + (options.visibilityTimeoutSeconds - VISIBILITY_MARGIN_SECONDS) * 1000,
      lastVisibleAt: now + options.visibilityTimeoutSeconds * 1000,
    },
  };
}

function stopped(state: RedriveState, because: RedriveReport['stoppedBecause']): RedriveSummary {
  return { ...state.summary, report: { ...state.summary.report, stoppedBecause: because } };
}

/**
 * `plan`: turn one ReceiveMessage response into Map items. An empty response ends the loop.
 * FIFO: only the first message of each stream in the batch is handled; the later ones are
 * released and come back in the next receive, so a stream's messages go back in order and
 * none overtakes one that stayed or failed.
 */
export function planBatch(
  state: RedriveState,
  response: { Messages?: DeadLetterMessage[] | undefined },
  fifo: boolean,
  now: number,
): RedriveState & { items: PlannedItem[]; hasItems: boolean } {
  const messages = response.Messages ?? [];
  if (messages.length === 0) return { options: state.options, summary: stopped(state, 'queueEmpty'), items: [], hasItems: false };
  const seen = new Set(state.summary.seen);
  const groups = new Set<string>();
  const release = (message: DeadLetterMessage, streamId: string | null): PlannedItem => ({
    messageId: message.MessageId,
    receiptHandle: message.ReceiptHandle,
    streamId,
    action: 'release',
    outcome: null,
    reason: null,
    detail: null,
    body: null,
    messageAttributes: null,
    groupId: null,
    deduplicationId: null,
  });
  const items = messages.map((message): PlannedItem => {
    const group = fifo ? message.Attributes?.['MessageGroupId'] : undefined;
    // A message handled earlier in this run that became visible again: handled already, so
    // let it go at once (with its new receipt handle); in FIFO it still holds its stream back.
    if (seen.has(message.MessageId)) {
      if (group !== undefined) groups.add(group);
      return release(message, group ?? null);
    }
    if (group !== undefined) {
      if (groups.has(group)) return release(message, group);
      groups.add(group);
    }
    return planMessage(message, state.options);
  });
  const onlySeen = messages.every((message) => seen.has(message.MessageId));
  const lastVisibleAt = now + state.options.visibilityTimeoutSeconds * 1000;
  const summary = onlySeen ? stopped(state, 'onlySeenMessages') : state.summary;
  return { options: state.options, summary: { ...summary, lastVisibleAt }, items, hasItems: true };
}

/** `tally`: count a batch's results, list what stayed, and decide whether to receive again. */
export function tallyBatch(
  state: RedriveState,
  results: readonly ItemResult[],
  now: number,
): RedriveState & { more: boolean } {
  const { summary, options } = state;
  const counts = { ...summary.report.counts };
  const stayed = [...summary.report.stayed];
  let stayedNotListed = summary.report.stayedNotListed;
  const release = [...summary.release];
  const seen = [...summary.seen];
  let overflow = false;
  for (const result of results) {
    // Released for a later batch (FIFO): not handled yet, so not counted.
    if (result.outcome === null || result.outcome === undefined || result.receiptHandle === undefined) continue;
    counts.received += 1;
    counts[result.outcome] += 1;
    if (result.outcome === 'redriven') continue;
    if (stayed.length < MAX_LISTED) {
      stayed.push({
        messageId: result.messageId,
        ID: result.streamId ?? null,
        outcome: result.outcome,
        reason: result.reason ?? null,
        detail: typeof result.detail === 'string' ? cut(result.detail) : null,
      });
    } else {
      stayedNotListed += 1;
    }
    if (release.length < MAX_RELEASED) {
      release.push({ receiptHandle: result.receiptHandle });
      seen.push(result.messageId);
    } else {
      overflow = true;
    }
  }
  const left = options.maxMessages - counts.received;
  // Planning may have decided already (only messages seen before came back).
  const stoppedBecause: RedriveReport['stoppedBecause'] =
    summary.report.stoppedBecause ??
    (left <= 0 ? 'maxMessages' : now >= summary.receiveUntil ? 'visibilityWindow' : null);
  const kept = counts.received - counts.redriven;
  const overflowing = overflow || kept > release.length;
  const stayedVisibleAgain =
    kept === 0
      ? 'now: nothing stayed'
      : overflowing
        ? `${release.length} at the end of this run; the other ${kept - release.length} at ${new Date(summary.lastVisibleAt).toISOString()} (their visibility timeout)`
        : 'at the end of this run (made visible again)';
  return {
    options,
    summary: {
      ...summary,
      report: { ...summary.report, counts, stayed, stayedNotListed, stoppedBecause, stayedVisibleAgain },
      release,
      seen,
      nextBatchSize: Math.max(1, Math.min(options.batchSize, left)),
    },
    more: stoppedBecause === null,
  };
}
