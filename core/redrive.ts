/**
 * The redrive workflow's rules (docs/ARCHITECTURE.md, "Redrive"): the execution input,
 * `filter` and `fix`, what to do with each dead-lettered message, one batch's send/delete
 * order, and the run the state machine carries from one batch to the next. No AWS code: SQS
 * is behind the `RedriveQueues` port (adapters/sqs-redrive-queues.ts), and the Lambda
 * `handlers/redrive.ts` is a thin shell around these.
 */
import * as v from 'valibot';
import { parseEventBody } from './event.ts';
import { fifoDeduplicationId, fifoGroupId } from './fifo.ts';
import { isRawJson, parseJsonVerbatim } from './json.ts';
import { Limits } from './keys.ts';
import { MessageAttributeNames, parseRedriveCount } from './message-attributes.ts';

/** SQS receives at most 10 messages a call (core/keys.ts). */
export const MAX_RECEIVE_BATCH = Limits.maxSqsBatch;
/** How many kept messages the output lists by id (the rest are counted). */
export const MAX_LISTED = 100;
/** Receipt handles one execution holds at most (their characters): beyond, the run continues in a child execution. */
export const MAX_HELD_CHARS = 120_000;
/** SQS's longest receipt handle. */
const MAX_RECEIPT_HANDLE_CHARS = 1024;
/** A listed stream id is cut to this length so the state stays small. */
const MAX_LISTED_ID_CHARS = 128;
/** The options (filter and fix) must stay this small: they travel in every state. */
export const MAX_OPTIONS_CHARS = 32_768;
/** History events kept free below the quota (an execution never comes closer). */
const HISTORY_MARGIN = 500;
/** Stop receiving this long before the first batch's visibility timeout ends. */
export const VISIBILITY_MARGIN_SECONDS = 30;
/** A `detail` in the output is cut to this length so the state stays small. */
const MAX_DETAIL_CHARS = 300;

/** The message attribute names shared with the ingest handler (core/message-attributes.ts). */
export const RedriveAttributes = {
  rejectionReason: MessageAttributeNames.rejectionReason,
  rejectionDetail: MessageAttributeNames.rejectionDetail,
  redriveCount: MessageAttributeNames.redriveCount,
  redrivenFrom: MessageAttributeNames.redrivenFrom,
} as const;

const FIELD_PATH = /^(?:[A-Za-z_][A-Za-z0-9_]*|Data(?:\.[^.]+)+)$/;
const TOP_LEVEL_FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

const FieldPathSchema = v.pipe(
  v.string(),
  v.regex(
    FIELD_PATH,
    (issue) =>
      `${JSON.stringify(issue.input)} is not a field: use a top-level field like "EmitterType" or "Data.<key>"`,
  ),
);

const JsonScalarSchema = v.union(
  [v.string(), v.number(), v.boolean(), v.null()],
  'expected a string, number, boolean or null',
);

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
          set: v.optional(v.record(FieldPathSchema, v.unknown(), 'fix.set: expected an object of field: value')),
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
  if (Array.isArray(input['filter']))
    return 'filter: expected an object of field: value, like {"EventType": "ORDER_PLACED"}';
  if (Array.isArray(input['fix'])) return 'fix: expected an object like {"set": {...}, "remove": [...]}';
  if (isObject(input['fix']) && Array.isArray(input['fix']['set']))
    return 'fix.set: expected an object of field: value';
  return undefined;
}

/** Validate the execution input: the options with defaults, or one readable sentence. */
export function parseRedriveInput(
  input: unknown,
): { ok: true; options: RedriveOptions } | { ok: false; cause: string } {
  // valibot's object schemas accept arrays; the input's objects must be plain objects.
  const arrayAt = arrayWhereObjectExpected(input ?? {});
  if (arrayAt) return { ok: false, cause: `Invalid redrive input: ${arrayAt}` };
  const result = v.safeParse(RedriveInputSchema, input ?? {});
  if (result.success) {
    const size = JSON.stringify(result.output).length;
    if (size > MAX_OPTIONS_CHARS) {
      return {
        ok: false,
        cause: `Invalid redrive input: filter and fix take ${size} characters; at most ${MAX_OPTIONS_CHARS} (they travel in the workflow's state)`,
      };
    }
    return { ok: true, options: result.output };
  }
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
 * The body to send back: without `fix`, the original text byte for byte; with `fix`, the
 * original JSON with only the named fields changed (`set` runs before `remove`; `Data.a.b`
 * creates `Data` and `Data.a` when absent). Every other value keeps its exact source text, so
 * the ingest derives the same `EventId` from the same body and fix on every run. `undefined`
 * when the body is not a JSON object (a fix cannot apply; the original is validated as it is).
 *
 * @example
 * ```ts
 * fixBody('{"EmitterType":"","Amount":1.50}', { set: { EmitterType: 'SYSTEM' } });
 * // '{"EmitterType":"SYSTEM","Amount":1.50}'
 * ```
 */
export function fixBody(text: string, fix: RedriveFix | undefined): string | undefined {
  if (!fix || (Object.keys(fix.set ?? {}).length === 0 && (fix.remove ?? []).length === 0)) return text;
  // Objects (and arrays) as plain values; every primitive as raw JSON holding its source text.
  const isMap = (value: unknown): value is Record<string, unknown> => isObject(value) && !isRawJson(value);
  let parsed: unknown;
  try {
    parsed = parseJsonVerbatim(text);
  } catch {
    return undefined;
  }
  if (!isMap(parsed)) return undefined;
  for (const [path, value] of Object.entries(fix.set ?? {})) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let target = parsed;
    for (const key of keys) {
      if (!isMap(target[key])) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[last] = structuredClone(value);
  }
  for (const path of fix.remove ?? []) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let target: unknown = parsed;
    for (const key of keys) target = isMap(target) ? target[key] : undefined;
    if (isMap(target)) delete target[last];
  }
  return JSON.stringify(parsed);
}

/** A message attribute as SQS returns and accepts it. */
export interface SqsMessageAttribute {
  readonly DataType: string;
  readonly StringValue?: string;
}

/** A dead-lettered message as ReceiveMessage returns it (`Attributes` carries `MessageGroupId` on FIFO queues). */
export interface DeadLetterMessage {
  readonly MessageId: string;
  readonly ReceiptHandle: string;
  readonly Body?: string | undefined;
  readonly Attributes?: Readonly<Record<string, string>> | undefined;
  readonly MessageAttributes?: Readonly<Record<string, SqsMessageAttribute>> | undefined;
}

export type Outcome =
  'redriven' | 'wouldRedrive' | 'stillRejected' | 'skippedByFilter' | 'heldBack' | 'sendFailed' | 'deleteFailed';

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
      readonly outcome: Exclude<Outcome, 'redriven' | 'sendFailed' | 'deleteFailed'>;
      readonly reason: string;
      readonly detail: string | null;
    };

function cut(text: string, max = MAX_DETAIL_CHARS): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
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
      detail: parseError ? `body is not JSON (${cut(parseError)})` : 'the event does not match the filter',
    };
  }
  const body = fixBody(text, options.fix) ?? text;
  const result = parseEventBody(body);
  if (!result.ok) {
    return {
      action: 'keep',
      streamId: result.streamId ?? streamId,
      outcome: 'stillRejected',
      reason: result.reason,
      detail: cut(result.detail),
    };
  }
  if (options.dryRun) {
    return { action: 'keep', streamId: result.event.ID, outcome: 'wouldRedrive', reason: 'DryRun', detail: null };
  }
  const redriveCount = parseRedriveCount(message.MessageAttributes?.[RedriveAttributes.redriveCount]?.StringValue) + 1;
  return {
    action: 'send',
    streamId: result.event.ID,
    message: {
      body,
      messageAttributes: {
        [RedriveAttributes.redriveCount]: { DataType: 'Number', StringValue: String(redriveCount) },
        [RedriveAttributes.redrivenFrom]: { DataType: 'String', StringValue: message.MessageId },
      },
      groupId: fifoGroupId(result.event.ID, message.Attributes?.['MessageGroupId'], message.MessageId),
      deduplicationId: fifoDeduplicationId(`redrive-${message.MessageId}`),
    },
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

export interface RedriveCounts {
  received: number;
  redriven: number;
  wouldRedrive: number;
  stillRejected: number;
  skippedByFilter: number;
  heldBack: number;
  sendFailed: number;
  deleteFailed: number;
}

/** The output a console user reads: the whole run's, in the first execution's output. */
export interface RedriveReport {
  readonly dryRun: boolean;
  readonly counts: RedriveCounts;
  /** The first MAX_LISTED messages that stayed in the DLQ. */
  readonly stayed: StayedMessage[];
  readonly stayedNotListed: number;
  readonly stoppedBecause: 'queueEmpty' | 'maxMessages' | 'visibilityWindow' | null;
  readonly stayedVisibleAgain: string;
  readonly startedAt: string;
  /** Every execution of this run, the first one first: a run too long for one execution continues in a child. */
  readonly executions: string[];
  /** Kept messages whose release failed: they become visible when their visibility timeout ends. */
  readonly notReleased: number;
  /** Set when the run ended early with an error (the messages it held are visible again). */
  readonly failed?: { readonly error: string; readonly cause: string };
}

/** The state one execution carries from one batch to the next (bodies never: only counts and handles). */
export interface RedriveRun {
  readonly options: RedriveOptions;
  readonly report: RedriveReport;
  /** Receipt handles this execution keeps hidden until it ends (kept messages), then releases. */
  readonly held: string[];
  readonly heldChars: number;
  /** Epoch ms after which no receive starts: the earliest receive's messages become visible soon after. */
  readonly receiveUntil: number;
  /** This execution's history events so far, counted as AWS does (see `HistoryEvents`). */
  readonly historyEvents: number;
  /** What the state machine does next. */
  readonly next: 'receive' | 'successor' | 'finish';
}

/**
 * Step Functions history events the redrive definition produces, counted as AWS does: a Lambda
 * Task writes TaskStateEntered, LambdaFunctionScheduled, LambdaFunctionStarted,
 * LambdaFunctionSucceeded and TaskStateExited (5), each retry 3 more (scheduled, started,
 * failed), a Choice 2, the `startExecution.sync:2` Task 6 (TaskSubmitted too). The tests
 * check these against the executed definition's event log.
 */
export const HistoryEvents = {
  /** Per execution: the quota. */
  limit: 25_000,
  /** ExecutionStarted, the ValidateInput Task, the InputValid Choice. */
  start: 1 + 5 + 2,
  /** One RedriveBatch Task and the BatchNext Choice. */
  perBatch: 5 + 2,
  /** Each retry of a Lambda Task. */
  perRetry: 3,
  /** Retries the definition allows a Lambda Task. */
  maxRetries: 5,
  /** The way out: StartSuccessor (with retries), Finish (with retries), a Fail or the end. */
  end: 6 + 3 * 5 + 5 + 3 * 5 + 2,
} as const;

/** The most one batch can add (every retry used). */
const WORST_BATCH_EVENTS = HistoryEvents.perBatch + HistoryEvents.perRetry * HistoryEvents.maxRetries;

/** `start`: validate the input (or take over a predecessor's run) and open the run. */
export function startRedrive(
  input: unknown,
  context: { readonly executionId: string; readonly now: number },
): ({ valid: true; cause: null } & RedriveRun) | { valid: false; cause: string } {
  const carried = parseContinuation(input);
  if (carried) {
    return {
      valid: true,
      cause: null,
      options: carried.options,
      report: { ...carried.report, executions: [...carried.report.executions, context.executionId] },
      held: [],
      heldChars: 0,
      receiveUntil: carried.receiveUntil,
      historyEvents: HistoryEvents.start,
      next: 'receive',
    };
  }
  const parsed = parseRedriveInput(input);
  if (!parsed.ok) return { valid: false, cause: parsed.cause };
  const { options } = parsed;
  return {
    valid: true,
    cause: null,
    options,
    report: {
      dryRun: options.dryRun,
      counts: {
        received: 0,
        redriven: 0,
        wouldRedrive: 0,
        stillRejected: 0,
        skippedByFilter: 0,
        heldBack: 0,
        sendFailed: 0,
        deleteFailed: 0,
      },
      stayed: [],
      stayedNotListed: 0,
      stoppedBecause: null,
      stayedVisibleAgain: 'now: nothing stayed',
      startedAt: new Date(context.now).toISOString(),
      executions: [context.executionId],
      notReleased: 0,
    },
    held: [],
    heldChars: 0,
    receiveUntil: context.now + (options.visibilityTimeoutSeconds - VISIBILITY_MARGIN_SECONDS) * 1000,
    historyEvents: HistoryEvents.start,
    next: 'receive',
  };
}

/** The input a successor execution starts with: the run so far, nothing it has to release. */
export interface RedriveContinuation {
  readonly continueRun: {
    readonly options: RedriveOptions;
    readonly report: RedriveReport;
    readonly receiveUntil: number;
  };
}

function parseContinuation(input: unknown): RedriveContinuation['continueRun'] | undefined {
  if (!isObject(input) || !isObject(input['continueRun'])) return undefined;
  const run = input['continueRun'];
  const options = parseRedriveInput(run['options']);
  const report = run['report'];
  if (
    !options.ok ||
    !isObject(report) ||
    !Array.isArray(report['executions']) ||
    typeof run['receiveUntil'] !== 'number'
  ) {
    return undefined;
  }
  return { options: options.options, report: report as unknown as RedriveReport, receiveUntil: run['receiveUntil'] };
}

/** The input of the successor execution (the state machine passes it to StartExecution). */
export function continuation(run: RedriveRun): RedriveContinuation {
  return { continueRun: { options: run.options, report: run.report, receiveUntil: run.receiveUntil } };
}

/** What the batch Lambda needs from SQS (adapters/sqs-redrive-queues.ts; fakes in fault tests). */
export interface RedriveQueues {
  /** Receive up to `max` DLQ messages, hidden for `visibilityTimeoutSeconds`. */
  receive(max: number, visibilityTimeoutSeconds: number): Promise<DeadLetterMessage[]>;
  /** Send one message to the source queue; throws when SQS did not take it. */
  send(message: OutgoingMessage): Promise<void>;
  /** Delete DLQ messages; per handle, `null` or the error text. */
  delete(receiptHandles: readonly string[]): Promise<(string | null)[]>;
  /** Make DLQ messages visible again now; per handle, `null` or the error text. */
  release(receiptHandles: readonly string[]): Promise<(string | null)[]>;
}

/** The DLQ receive failed (after the SDK's own retries); the state machine retries the batch. */
export class ReceiveFailedError extends Error {
  public constructor(message: string, options?: ErrorOptions) {
    super(`receive from the dead-letter queue failed: ${message}`, options);
    this.name = 'ReceiveFailedError';
  }
}

interface Settled {
  readonly message: DeadLetterMessage;
  readonly streamId: string | null;
  readonly outcome: Outcome;
  readonly reason: string | null;
  readonly detail: string | null;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Send the planned messages of one batch and delete each from the DLQ only after its send
 * succeeded. FIFO: the messages of a group go one by one in their order; once one stays
 * (kept, or its send failed), every later one of its group is held back in the DLQ, so none
 * overtakes it. Standard: all sends at once.
 */
async function settleBatch(
  queues: RedriveQueues,
  messages: readonly DeadLetterMessage[],
  options: RedriveOptions,
  fifo: boolean,
): Promise<Settled[]> {
  const lanes = new Map<string, DeadLetterMessage[]>();
  messages.forEach((message, index) => {
    const lane = fifo ? (message.Attributes?.['MessageGroupId'] ?? `#${index}`) : `#${index}`;
    lanes.set(lane, [...(lanes.get(lane) ?? []), message]);
  });
  const settled = new Map<DeadLetterMessage, Settled>();
  const sent: DeadLetterMessage[] = [];
  await Promise.all(
    [...lanes.values()].map(async (lane) => {
      let blockedBy: { messageId: string; streamId: string | null } | null = null;
      for (const message of lane) {
        if (blockedBy !== null) {
          settled.set(message, {
            message,
            streamId: blockedBy.streamId,
            outcome: 'heldBack',
            reason: 'EarlierMessageStayed',
            detail: `message ${blockedBy.messageId} of this stream stayed in the DLQ`,
          });
          continue;
        }
        const plan = planMessage(message, options);
        if (plan.action === 'keep') {
          settled.set(message, {
            message,
            streamId: plan.streamId,
            outcome: plan.outcome,
            reason: plan.reason,
            detail: plan.detail,
          });
          // A dry run sends nothing, so nothing overtakes: report every message.
          if (plan.outcome !== 'wouldRedrive') blockedBy = { messageId: message.MessageId, streamId: plan.streamId };
          continue;
        }
        try {
          await queues.send(plan.message);
          settled.set(message, { message, streamId: plan.streamId, outcome: 'redriven', reason: null, detail: null });
          sent.push(message);
        } catch (error) {
          settled.set(message, {
            message,
            streamId: plan.streamId,
            outcome: 'sendFailed',
            reason: 'SendFailed',
            detail: cut(errorText(error)),
          });
          blockedBy = { messageId: message.MessageId, streamId: plan.streamId };
        }
      }
    }),
  );
  if (sent.length > 0) {
    const failures = await queues.delete(sent.map((message) => message.ReceiptHandle));
    sent.forEach((message, index) => {
      const failure = failures[index];
      if (failure) {
        const before = settled.get(message)!;
        // Sent but still in the DLQ: a later run sends it again, and the ingest (same body, same
        // EventId) or SQS (FIFO, same deduplication id within 5 minutes) drops the copy.
        settled.set(message, { ...before, outcome: 'deleteFailed', reason: 'DeleteFailed', detail: cut(failure) });
      }
    });
  }
  return messages.map((message) => settled.get(message)!);
}

/** FIFO: the messages of the last group of a full receive that also holds other groups (SQS may have more of it). */
function lastGroupCutOff(messages: readonly DeadLetterMessage[], requested: number): DeadLetterMessage[] {
  const group = messages.at(-1)?.Attributes?.['MessageGroupId'];
  if (
    group === undefined ||
    messages.length < requested ||
    messages.every((message) => message.Attributes?.['MessageGroupId'] === group)
  )
    return [];
  return messages.filter((message) => message.Attributes?.['MessageGroupId'] === group);
}

/**
 * `batch`: one receive from the DLQ, each message filtered, fixed, re-validated, sent back and
 * deleted (or kept and held hidden until this execution ends), then the tally and what the
 * state machine does next. Only counts, listed outcomes and receipt handles go back to the state.
 */
export async function redriveBatch(
  queues: RedriveQueues,
  run: RedriveRun,
  fifo: boolean,
  now: () => number,
  historyLimit: number = HistoryEvents.limit,
): Promise<RedriveRun> {
  const { options } = run;
  const left = options.maxMessages - run.report.counts.received;
  const requested = Math.max(1, Math.min(options.batchSize, left));
  let received: DeadLetterMessage[];
  try {
    received = await queues.receive(requested, options.visibilityTimeoutSeconds);
  } catch (error) {
    // Nothing was received: the state machine retries the batch.
    throw new ReceiveFailedError(errorText(error), { cause: error });
  }
  // A FIFO dry run holds every message it reads, so a group cut off by a full receive could not
  // be read further: let that last group go, uncounted, to be read whole by a later receive.
  const cutOff = fifo && options.dryRun ? lastGroupCutOff(received, requested) : [];
  if (cutOff.length > 0) await queues.release(cutOff.map((message) => message.ReceiptHandle));
  const messages = received.filter((message) => !cutOff.includes(message));
  const results = messages.length > 0 ? await settleBatch(queues, messages, options, fifo) : [];

  const counts = { ...run.report.counts };
  const stayed = [...run.report.stayed];
  let stayedNotListed = run.report.stayedNotListed;
  const held = [...run.held];
  let heldChars = run.heldChars;
  const releaseNow: string[] = [];
  for (const result of results) {
    counts.received += 1;
    counts[result.outcome] += 1;
    if (result.outcome === 'redriven') continue;
    if (stayed.length < MAX_LISTED) {
      stayed.push({
        messageId: result.message.MessageId,
        ID: result.streamId === null ? null : cut(result.streamId, MAX_LISTED_ID_CHARS),
        outcome: result.outcome,
        reason: result.reason,
        detail: result.detail,
      });
    } else {
      stayedNotListed += 1;
    }
    if (result.outcome === 'heldBack') {
      // Its stream's earlier message is held hidden, and SQS delivers nothing of a FIFO group
      // while one of its messages is in flight: it cannot come back in this run.
      releaseNow.push(result.message.ReceiptHandle);
    } else {
      held.push(result.message.ReceiptHandle);
      heldChars += result.message.ReceiptHandle.length;
    }
  }
  if (releaseNow.length > 0) await queues.release(releaseNow);

  // Charged as if every retry was used: the function cannot see the retries (README, "Redrive rejected events").
  const historyEvents = run.historyEvents + WORST_BATCH_EVENTS;
  const stoppedBecause: RedriveReport['stoppedBecause'] =
    received.length === 0
      ? 'queueEmpty'
      : counts.received >= options.maxMessages
        ? 'maxMessages'
        : now() >= run.receiveUntil
          ? 'visibilityWindow'
          : null;
  const full = heldChars + MAX_RECEIVE_BATCH * MAX_RECEIPT_HANDLE_CHARS > MAX_HELD_CHARS;
  const outOfHistory =
    historyEvents + WORST_BATCH_EVENTS + HistoryEvents.end > historyLimit - Math.min(HISTORY_MARGIN, historyLimit / 10);
  const next: RedriveRun['next'] = stoppedBecause !== null ? 'finish' : full || outOfHistory ? 'successor' : 'receive';
  return {
    options,
    report: { ...run.report, counts, stayed, stayedNotListed, stoppedBecause },
    held,
    heldChars,
    receiveUntil: run.receiveUntil,
    historyEvents,
    next,
  };
}

/**
 * `finish`: make every message this execution held visible again (a dry run leaves the DLQ as
 * it was) and return the run's report: the successor's when there was one (it holds the whole
 * run), else this execution's.
 */
export async function finishRedrive(
  queues: RedriveQueues,
  run: RedriveRun,
  successor: RedriveReport | undefined,
  error: { Error?: string; Cause?: string } | undefined,
): Promise<RedriveReport> {
  let notReleased = 0;
  for (let start = 0; start < run.held.length; start += MAX_RECEIVE_BATCH) {
    const failures = await queues.release(run.held.slice(start, start + MAX_RECEIVE_BATCH));
    notReleased += failures.filter((failure) => failure !== null).length;
  }
  const report = successor ?? run.report;
  const total = report.notReleased + notReleased;
  const kept = report.counts.received - report.counts.redriven;
  const stayedVisibleAgain =
    kept === 0
      ? 'now: nothing stayed'
      : total === 0
        ? 'now: made visible again at the end of the run'
        : `now, except ${total} whose release failed: those at the end of their visibility timeout (${run.options.visibilityTimeoutSeconds} s after their receive)`;
  return {
    ...report,
    notReleased: total,
    stayedVisibleAgain,
    ...(error ? { failed: { error: error.Error ?? 'Error', cause: cut(error.Cause ?? '', 1000) } } : {}),
  };
}
