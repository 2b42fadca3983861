/**
 * The run the redrive state machine carries from one Lambda call to the next (docs/ARCHITECTURE.md,
 * "Redrive"): opening it (`startRedrive`), one batch (`redriveBatch`), a batch call that failed
 * (`recoverRedrive`) and the end (`finishRedrive`). No AWS code: SQS is behind `RedriveQueues`
 * (adapters/sqs-redrive-queues.ts). The state holds counts, listed outcomes and receipt handles,
 * never bodies, within the byte budget of core/redrive-budget.ts.
 *
 * What a batch call does, in this order, so that a call that dies at any await leaves nothing
 * the report cannot name: delete what the previous call sent (its sends are in the state by
 * now); receive with a short lease (`RECEIVE_LEASE_SECONDS`); send; hold everything it keeps
 * (and what it sent) hidden until the run's end; return. A call that dies before the hold
 * leaves its messages hidden for the lease only (they come back to this run, and a message it
 * sent goes again: a duplicate the ingest drops); one that dies after the hold leaves them
 * hidden until `holdUntil` at the latest, and the report says so.
 */
import {
  MAX_RECEIVE_BATCH,
  RECEIVE_LEASE_SECONDS,
  RedriveAttributes,
  detailText,
  parseRedriveInput,
  planMessage,
  type DeadLetterMessage,
  type OutgoingMessage,
  type Outcome,
  type RedriveOptions,
} from './redrive.ts';
import { MAX_ERROR_MESSAGE_BYTES, ReportBudget, StateBudget, cutToBytes, jsonBytes } from './redrive-budget.ts';

/** SQS's longest receipt handle; a JSON array adds 3 bytes around each. */
const MAX_RECEIPT_HANDLE_BYTES = 1024 + 3;
/** History events kept free below the quota (an execution never comes closer). */
const HISTORY_MARGIN = 500;
/** A run gives up after this many batch calls that failed (each after its own retries). */
export const MAX_FAILED_BATCHES = 3;
/** Errors of a batch call after which it had received nothing (workflows/redrive-workflow.ts retries these first). */
const NOTHING_RECEIVED = new Set(['Lambda.TooManyRequestsException', 'ReceiveFailedError']);
/** SQS's longest long poll. */
const MAX_WAIT_SECONDS = 20;

/** A message that stayed in the DLQ, as the output lists it. */
export interface StayedMessage {
  readonly messageId: string;
  readonly ID: string | null;
  readonly outcome: Outcome;
  readonly reason: string | null;
  readonly detail: string | null;
}

/** Every message received counts once, under one outcome: `received` is their sum. */
export type RedriveCounts = Record<'received' | Outcome, number>;

/** The output a console user reads: the whole run's, in the first execution's output. */
export interface RedriveReport {
  readonly dryRun: boolean;
  readonly counts: RedriveCounts;
  /** The first messages that stayed in the DLQ (at most 100, within the report's byte budget). */
  readonly stayed: StayedMessage[];
  readonly stayedNotListed: number;
  readonly stoppedBecause: 'queueEmpty' | 'maxMessages' | 'visibilityWindow' | 'failed' | null;
  readonly stayedVisibleAgain: string;
  /** `null`: nothing the run read is hidden any more. Else the moment every message it read is visible again at the latest. */
  readonly hiddenUntil: string | null;
  readonly startedAt: string;
  /** The executions of this run, the first one first (at most 25 listed; a run too long for one execution continues in a child). */
  readonly executions: string[];
  readonly executionsNotListed: number;
  /** Kept messages whose release failed: they become visible at `hiddenUntil` at the latest. */
  readonly notReleased: number;
  /** Kept messages SQS would not hold until the run's end: visible after the lease, they may be read (and counted) again by this run. */
  readonly holdFailed: number;
  /** Batch calls that ended without a result (the function died, timed out, or the call failed after its retries). */
  readonly failedBatches: number;
  /** How many messages those calls may have received: each is still in the DLQ, maybe sent back already, hidden at most until `hiddenUntil`. */
  readonly failedBatchMessagesAtMost: number;
  /** Set when the run ended early with an error. */
  readonly failed?: { readonly error: string; readonly cause: string };
}

/** A message this run sent back, to be deleted from the DLQ by the next call (after the send is in the state). */
export interface PendingDelete {
  readonly receiptHandle: string;
  readonly messageId: string;
  readonly streamId: string | null;
}

/** What a Catch puts into the state: the error's name and cause. */
export interface StatesError {
  readonly Error?: string;
  readonly Cause?: string;
}

/** The state one execution carries from one batch to the next (bodies never: only counts and handles). */
export interface RedriveRun {
  readonly options: RedriveOptions;
  readonly report: RedriveReport;
  /** Receipt handles this execution keeps hidden until it ends (kept messages), then releases. */
  readonly held: string[];
  readonly heldBytes: number;
  /** Sent by the last call, deleted by the next one (or by `finish`, or by the successor). */
  readonly pending: PendingDelete[];
  /** Epoch ms after which no receive starts (`holdUntil` minus a lease). */
  readonly receiveUntil: number;
  /** Epoch ms: the run's start plus `visibilityTimeoutSeconds`; nothing it reads stays hidden after it. */
  readonly holdUntil: number;
  /** Epoch ms until which messages of a failed call may come back by themselves (an empty receive before proves nothing). */
  readonly returnsBy: number;
  /** This execution's history events so far, counted as AWS does (see `HistoryEvents`). */
  readonly historyEvents: number;
  /** What the state machine does next. */
  readonly next: 'receive' | 'successor' | 'finish';
  /** Put there by the batch's Catch: the call failed (`recover` folds it into the report). */
  readonly failure?: StatesError;
}

/**
 * Step Functions history events the redrive definition produces, counted as AWS does: a Lambda
 * Task writes TaskStateEntered, LambdaFunctionScheduled, LambdaFunctionStarted,
 * LambdaFunctionSucceeded (or Failed) and TaskStateExited (5), each retry 3 more (scheduled,
 * started, failed), a Choice or a Pass 2, the `startExecution.sync:2` Task 6 (TaskSubmitted
 * too). The tests check these against the executed definition's event log.
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
  /** The RecordFailure Task after a batch call failed (with every retry). */
  recordFailure: 5 + 3 * 5,
  /** The way out: StartSuccessor, SuccessorFailed, Finish (with retries), Finished, Done or RunFailed, the execution's end. */
  end: 6 + 2 + 5 + 3 * 5 + 2 + 2 + 1,
} as const;

/** The most one batch can add (every retry used). */
const WORST_BATCH_EVENTS = HistoryEvents.perBatch + HistoryEvents.perRetry * HistoryEvents.maxRetries;

function zeroCounts(): RedriveCounts {
  return {
    received: 0,
    redriven: 0,
    wouldRedrive: 0,
    stillRejected: 0,
    skippedByFilter: 0,
    heldBack: 0,
    sendFailed: 0,
    deleteFailed: 0,
    arrivedDuringRun: 0,
  };
}

/** The executions with one more, listed while the list stays within its budget. */
function withExecution(
  report: RedriveReport,
  executionId: string,
): Pick<RedriveReport, 'executions' | 'executionsNotListed'> {
  const executions = [...report.executions, executionId];
  if (
    report.executions.length === 0 ||
    (executions.length <= ReportBudget.executionEntries && jsonBytes(executions) <= ReportBudget.executionsBytes)
  ) {
    return { executions, executionsNotListed: report.executionsNotListed };
  }
  return { executions: report.executions, executionsNotListed: report.executionsNotListed + 1 };
}

/** The context the handler gives: the execution, the clock, the lease (tests shorten it). */
export interface StartContext {
  readonly executionId: string;
  readonly now: number;
  /** @default RECEIVE_LEASE_SECONDS */
  readonly leaseSeconds?: number;
}

/** `start`: validate the input (or take over a predecessor's run) and open the run. */
export function startRedrive(
  input: unknown,
  context: StartContext,
): ({ valid: true; cause: null } & RedriveRun) | { valid: false; cause: string } {
  const carried = parseContinuation(input);
  if (carried) {
    return {
      valid: true,
      cause: null,
      ...carried,
      report: { ...carried.report, ...withExecution(carried.report, context.executionId) },
      held: [],
      heldBytes: 0,
      historyEvents: HistoryEvents.start,
      next: 'receive',
    };
  }
  const parsed = parseRedriveInput(input);
  if (!parsed.ok) return { valid: false, cause: parsed.cause };
  const { options } = parsed;
  const holdUntil = context.now + options.visibilityTimeoutSeconds * 1000;
  return {
    valid: true,
    cause: null,
    options,
    report: {
      dryRun: options.dryRun,
      counts: zeroCounts(),
      stayed: [],
      stayedNotListed: 0,
      stoppedBecause: null,
      stayedVisibleAgain: 'now: nothing stayed',
      hiddenUntil: null,
      startedAt: new Date(context.now).toISOString(),
      executions: [context.executionId],
      executionsNotListed: 0,
      notReleased: 0,
      holdFailed: 0,
      failedBatches: 0,
      failedBatchMessagesAtMost: 0,
    },
    held: [],
    heldBytes: 0,
    pending: [],
    receiveUntil: holdUntil - (context.leaseSeconds ?? RECEIVE_LEASE_SECONDS) * 1000,
    holdUntil,
    returnsBy: 0,
    historyEvents: HistoryEvents.start,
    next: 'receive',
  };
}

/** The input a successor execution starts with: the run so far, and the sends it deletes first. */
export interface RedriveContinuation {
  readonly continueRun: Pick<RedriveRun, 'options' | 'report' | 'receiveUntil' | 'holdUntil' | 'returnsBy' | 'pending'>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
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
    typeof run['receiveUntil'] !== 'number' ||
    typeof run['holdUntil'] !== 'number' ||
    typeof run['returnsBy'] !== 'number' ||
    !Array.isArray(run['pending'])
  ) {
    return undefined;
  }
  return {
    options: options.options,
    report: report as unknown as RedriveReport,
    receiveUntil: run['receiveUntil'],
    holdUntil: run['holdUntil'],
    returnsBy: run['returnsBy'],
    pending: run['pending'] as PendingDelete[],
  };
}

/** The input of the successor execution (the state machine passes the same fields to StartExecution). */
export function continuation(run: RedriveRun): RedriveContinuation {
  const { options, report, receiveUntil, holdUntil, returnsBy, pending } = run;
  return { continueRun: { options, report, receiveUntil, holdUntil, returnsBy, pending } };
}

/** One receive: how many, hidden how long, long-polled how long, and its attempt id (FIFO). */
export interface ReceiveRequest {
  readonly max: number;
  readonly visibilityTimeoutSeconds: number;
  readonly waitSeconds: number;
  /** FIFO: SQS returns the same messages to a retried receive with the same id (within 5 minutes). */
  readonly attemptId: string;
}

/** What the batch Lambda needs from SQS (adapters/sqs-redrive-queues.ts; wrappers in fault tests). */
export interface RedriveQueues {
  /** Receive DLQ messages with their attributes, `SentTimestamp` and (FIFO) `MessageGroupId` included. */
  receive(request: ReceiveRequest): Promise<DeadLetterMessage[]>;
  /** Send one message to the source queue; throws when SQS did not take it. */
  send(message: OutgoingMessage): Promise<void>;
  /** Delete DLQ messages; per handle, `null` or the error text. */
  delete(receiptHandles: readonly string[]): Promise<(string | null)[]>;
  /** Keep DLQ messages hidden for `seconds` from now; per handle, `null` or the error text. */
  hold(receiptHandles: readonly string[], seconds: number): Promise<(string | null)[]>;
  /** Make DLQ messages visible again now; per handle, `null` (visible, or no longer this run's) or the error text. */
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

/** Entered the DLQ after the run started: rejected again after this run sent it, or newly rejected. */
function arrivedDuringRun(message: DeadLetterMessage, startedAt: number): boolean {
  const sent = Number(message.Attributes?.['SentTimestamp']);
  return Number.isFinite(sent) && sent >= startedAt;
}

function streamIdOfBody(body: string | undefined): string | null {
  try {
    const parsed = JSON.parse(body ?? '') as unknown;
    return isObject(parsed) && typeof parsed['ID'] === 'string' ? parsed['ID'] : null;
  } catch {
    return null;
  }
}

function arrivalDetail(message: DeadLetterMessage): string {
  const reason = message.MessageAttributes?.[RedriveAttributes.rejectionReason]?.StringValue;
  const detail = message.MessageAttributes?.[RedriveAttributes.rejectionDetail]?.StringValue;
  const why = reason ? ` (${reason}${detail ? `: ${detail}` : ''})` : '';
  return detailText(`entered the DLQ after this run started${why}: left for the next run`);
}

/** A keep decision for one message: arrived during the run, or the plan's own. */
function keepOrSend(
  message: DeadLetterMessage,
  options: RedriveOptions,
  startedAt: number,
): Settled | { send: OutgoingMessage; streamId: string } {
  if (arrivedDuringRun(message, startedAt)) {
    return {
      message,
      streamId: streamIdOfBody(message.Body),
      outcome: 'arrivedDuringRun',
      reason: 'ArrivedDuringRun',
      detail: arrivalDetail(message),
    };
  }
  const plan = planMessage(message, options);
  if (plan.action === 'send') return { send: plan.message, streamId: plan.streamId };
  return { message, streamId: plan.streamId, outcome: plan.outcome, reason: plan.reason, detail: plan.detail };
}

/**
 * Send the planned messages of one batch (never delete: the next call does, once these sends
 * are in the state). FIFO: the messages of a group go one by one in their order; once one stays
 * (kept, or its send failed), every later one of its group is held back in the DLQ, so none
 * overtakes it. Standard: all sends at once.
 */
async function settleBatch(
  queues: RedriveQueues,
  messages: readonly DeadLetterMessage[],
  options: RedriveOptions,
  fifo: boolean,
  startedAt: number,
): Promise<Settled[]> {
  const lanes = new Map<string, DeadLetterMessage[]>();
  messages.forEach((message, index) => {
    const lane = fifo ? (message.Attributes?.['MessageGroupId'] ?? `#${index}`) : `#${index}`;
    lanes.set(lane, [...(lanes.get(lane) ?? []), message]);
  });
  const settled = new Map<DeadLetterMessage, Settled>();
  await Promise.all(
    [...lanes.values()].map(async (lane) => {
      let blockedBy: { messageId: string; streamId: string | null } | null = null;
      for (const message of lane) {
        // Left for the next run whatever came before it: nothing of it is sent.
        if (blockedBy !== null && !arrivedDuringRun(message, startedAt)) {
          settled.set(message, {
            message,
            streamId: blockedBy.streamId,
            outcome: 'heldBack',
            reason: 'EarlierMessageStayed',
            detail: `message ${cutToBytes(blockedBy.messageId, ReportBudget.messageIdBytes)} of this stream stayed in the DLQ`,
          });
          continue;
        }
        const decided = keepOrSend(message, options, startedAt);
        if (!('send' in decided)) {
          settled.set(message, decided);
          // A dry run sends nothing, so nothing overtakes: report every message.
          if (decided.outcome !== 'wouldRedrive')
            blockedBy = { messageId: message.MessageId, streamId: decided.streamId };
          continue;
        }
        try {
          await queues.send(decided.send);
          settled.set(message, {
            message,
            streamId: decided.streamId,
            outcome: 'redriven',
            reason: null,
            detail: null,
          });
        } catch (error) {
          settled.set(message, {
            message,
            streamId: decided.streamId,
            outcome: 'sendFailed',
            reason: 'SendFailed',
            detail: detailText(errorText(error)),
          });
          blockedBy = { messageId: message.MessageId, streamId: decided.streamId };
        }
      }
    }),
  );
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

/** The report's mutable parts while one call tallies (copied from the run, written back at the end). */
interface Tally {
  readonly counts: RedriveCounts;
  readonly stayed: StayedMessage[];
  stayedNotListed: number;
  readonly held: string[];
  heldBytes: number;
  holdFailed: number;
}

function tallyOf(run: RedriveRun): Tally {
  return {
    holdFailed: run.report.holdFailed,
    counts: { ...run.report.counts },
    stayed: [...run.report.stayed],
    stayedNotListed: run.report.stayedNotListed,
    held: [...run.held],
    heldBytes: run.heldBytes,
  };
}

/** List a message that stayed, while the list is within its budget; else count it. */
function list(tally: Tally, entry: StayedMessage): void {
  const listed: StayedMessage = {
    messageId: cutToBytes(entry.messageId, ReportBudget.messageIdBytes),
    ID: entry.ID === null ? null : cutToBytes(entry.ID, ReportBudget.streamIdBytes),
    outcome: entry.outcome,
    reason: entry.reason === null ? null : cutToBytes(entry.reason, 64),
    detail: entry.detail === null ? null : detailText(entry.detail),
  };
  if (
    tally.stayed.length < ReportBudget.stayedEntries &&
    jsonBytes(tally.stayed) + 1 + jsonBytes(listed) <= ReportBudget.stayedBytes
  ) {
    tally.stayed.push(listed);
  } else {
    tally.stayedNotListed += 1;
  }
}

function hold(tally: Tally, receiptHandle: string): void {
  tally.held.push(receiptHandle);
  tally.heldBytes += jsonBytes(receiptHandle) + 1;
}

/**
 * Delete what was sent: `redriven` once deleted; `deleteFailed` (in both queues: a later run sends
 * it again and the ingest drops the copy, README "Redrive rejected events") otherwise, held
 * until the end. Deleting twice is harmless: SQS accepts an old receipt handle.
 */
async function deletePending(queues: RedriveQueues, pending: readonly PendingDelete[], tally: Tally): Promise<void> {
  if (pending.length === 0) return;
  const failures = await queues.delete(pending.map((each) => each.receiptHandle));
  pending.forEach((each, index) => {
    const failure = failures[index];
    if (!failure) {
      tally.counts.redriven += 1;
      return;
    }
    tally.counts.deleteFailed += 1;
    list(tally, {
      messageId: each.messageId,
      ID: each.streamId,
      outcome: 'deleteFailed',
      reason: 'DeleteFailed',
      detail: failure,
    });
    hold(tally, each.receiptHandle);
  });
}

/** The batch's context: queue kind, clock, quota, lease (tests lower the last two). */
export interface BatchContext {
  readonly fifo: boolean;
  readonly now: () => number;
  /** @default HistoryEvents.limit */
  readonly historyLimit?: number;
  /** @default RECEIVE_LEASE_SECONDS */
  readonly leaseSeconds?: number;
  /** FIFO: the receive's attempt id (the same on a retry of this call). */
  readonly attemptId: string;
}

async function receiveBatch(
  run: RedriveRun,
  queues: RedriveQueues,
  context: BatchContext,
): Promise<DeadLetterMessage[]> {
  const { options } = run;
  const left = options.maxMessages - run.report.counts.received;
  const waitFor = run.returnsBy - context.now();
  try {
    return await queues.receive({
      max: Math.max(1, Math.min(options.batchSize, left)),
      visibilityTimeoutSeconds: context.leaseSeconds ?? RECEIVE_LEASE_SECONDS,
      // Long polling asks every SQS server; while a failed call's messages may come back, wait for them.
      waitSeconds: waitFor > 0 ? Math.min(MAX_WAIT_SECONDS, Math.ceil(waitFor / 1000)) : 1,
      attemptId: context.attemptId,
    });
  } catch (error) {
    // Nothing was received (a lost response hides its messages for the lease only): the state machine retries.
    throw new ReceiveFailedError(errorText(error), { cause: error });
  }
}

/**
 * Hold what this call keeps (and what it sent, until the next call deletes it) hidden until the
 * run's end, so that this run does not read it again. A sent message SQS will not hold is
 * deleted now instead; a kept one comes back after the lease and may be read again (`holdFailed`).
 */
async function holdUntilEnd(
  queues: RedriveQueues,
  results: readonly Settled[],
  run: RedriveRun,
  now: number,
  tally: Tally,
): Promise<PendingDelete[]> {
  const keep = results.filter((result) => result.outcome !== 'heldBack');
  if (keep.length === 0) return [];
  const seconds = Math.max(1, Math.ceil((run.holdUntil - now) / 1000));
  const failures = await queues.hold(
    keep.map((result) => result.message.ReceiptHandle),
    seconds,
  );
  const pending: PendingDelete[] = [];
  const unheldSends: PendingDelete[] = [];
  keep.forEach((result, index) => {
    const each = {
      receiptHandle: result.message.ReceiptHandle,
      messageId: result.message.MessageId,
      streamId: result.streamId,
    };
    if (result.outcome === 'redriven') (failures[index] ? unheldSends : pending).push(each);
    else if (failures[index]) tally.holdFailed += 1;
    else hold(tally, result.message.ReceiptHandle);
  });
  await deletePending(queues, unheldSends, tally);
  return pending;
}

function tallyResults(results: readonly Settled[], tally: Tally): void {
  for (const result of results) {
    tally.counts.received += 1;
    // A sent message counts as redriven once deleted (deletePending).
    if (result.outcome === 'redriven') continue;
    tally.counts[result.outcome] += 1;
    list(tally, {
      messageId: result.message.MessageId,
      ID: result.streamId,
      outcome: result.outcome,
      reason: result.reason,
      detail: result.detail,
    });
  }
}

function nextStep(
  run: RedriveRun,
  received: number,
  tally: Tally,
  historyEvents: number,
  context: BatchContext,
): Pick<RedriveRun, 'next'> & Pick<RedriveReport, 'stoppedBecause'> {
  const now = context.now();
  const stoppedBecause: RedriveReport['stoppedBecause'] =
    received === 0 && now >= run.returnsBy
      ? 'queueEmpty'
      : tally.counts.received >= run.options.maxMessages
        ? 'maxMessages'
        : now >= run.receiveUntil
          ? 'visibilityWindow'
          : null;
  const historyLimit = context.historyLimit ?? HistoryEvents.limit;
  const full = tally.heldBytes + MAX_RECEIVE_BATCH * MAX_RECEIPT_HANDLE_BYTES > StateBudget.held;
  const outOfHistory =
    historyEvents + WORST_BATCH_EVENTS + HistoryEvents.recordFailure + HistoryEvents.end >
    historyLimit - Math.min(HISTORY_MARGIN, historyLimit / 10);
  return {
    stoppedBecause,
    next: stoppedBecause !== null ? 'finish' : full || outOfHistory ? 'successor' : 'receive',
  };
}

/** A call that starts after `receiveUntil`: it only deleted what the last call sent; the run ends. */
function lateBatch(run: RedriveRun, tally: Tally): RedriveRun {
  return {
    ...run,
    report: {
      ...run.report,
      counts: tally.counts,
      stayed: tally.stayed,
      stayedNotListed: tally.stayedNotListed,
      stoppedBecause: 'visibilityWindow',
    },
    held: tally.held,
    heldBytes: tally.heldBytes,
    pending: [],
    historyEvents: run.historyEvents + WORST_BATCH_EVENTS,
    next: 'finish',
  };
}

/**
 * `batch`: delete what the last call sent, one receive from the DLQ, each message filtered,
 * fixed, re-validated and sent back (or kept, held hidden until the run ends), then the tally
 * and what the state machine does next. Only counts, listed outcomes and receipt handles go
 * back to the state.
 */
export async function redriveBatch(queues: RedriveQueues, run: RedriveRun, context: BatchContext): Promise<RedriveRun> {
  const tally = tallyOf(run);
  await deletePending(queues, run.pending, tally);
  // Late (retries can delay a call by minutes): a lease taken now could outlast holdUntil.
  if (context.now() >= run.receiveUntil) return lateBatch(run, tally);
  const received = await receiveBatch(run, queues, context);
  const { options } = run;
  // A FIFO dry run holds every message it reads, so a group cut off by a full receive could not
  // be read further: let that last group go, uncounted, to be read whole by a later receive.
  const requested = Math.max(1, Math.min(options.batchSize, options.maxMessages - run.report.counts.received));
  const cutOff = context.fifo && options.dryRun ? lastGroupCutOff(received, requested) : [];
  const messages = received.filter((message) => !cutOff.includes(message));
  const startedAt = Date.parse(run.report.startedAt);
  const results = messages.length > 0 ? await settleBatch(queues, messages, options, context.fifo, startedAt) : [];
  tallyResults(results, tally);
  const pending = await holdUntilEnd(queues, results, run, context.now(), tally);
  // Its stream's earlier message is held hidden, and SQS delivers nothing of a FIFO group while
  // one of its messages is in flight: a held-back message cannot come back in this run.
  const releaseNow = [...cutOff, ...results.filter((r) => r.outcome === 'heldBack').map((r) => r.message)];
  if (releaseNow.length > 0) await queues.release(releaseNow.map((message) => message.ReceiptHandle));

  // Charged as if every retry was used: the function cannot see the retries (README, "Redrive rejected events").
  const historyEvents = run.historyEvents + WORST_BATCH_EVENTS;
  const { next, stoppedBecause } = nextStep(run, received.length, tally, historyEvents, context);
  return {
    options,
    report: {
      ...run.report,
      counts: tally.counts,
      stayed: tally.stayed,
      stayedNotListed: tally.stayedNotListed,
      holdFailed: tally.holdFailed,
      stoppedBecause,
    },
    held: tally.held,
    heldBytes: tally.heldBytes,
    pending,
    receiveUntil: run.receiveUntil,
    holdUntil: run.holdUntil,
    returnsBy: run.returnsBy,
    historyEvents,
    next,
  };
}

/** The cut error a report carries. */
function failedOf(error: StatesError): { error: string; cause: string } {
  return {
    error: cutToBytes(error.Error ?? 'Error', 256),
    cause: cutToBytes(error.Cause ?? '', ReportBudget.causeBytes),
  };
}

/** A batch call that failed: what it may have left, and the report's failure count. */
function withFailedBatch(run: RedriveRun, failure: StatesError, now: number, leaseSeconds: number): RedriveRun {
  // Throttled before it ran, or its receive failed: it received nothing (a receive whose response
  // was lost hides its messages for the lease: README, "Redrive rejected events"). Any other
  // failure may have received a batch, sent some of it, and held it.
  const ran = !NOTHING_RECEIVED.has(failure.Error ?? '');
  const requested = Math.max(1, Math.min(run.options.batchSize, run.options.maxMessages - run.report.counts.received));
  const { failure: _folded, ...rest } = run;
  return {
    ...rest,
    report: {
      ...run.report,
      failedBatches: run.report.failedBatches + 1,
      failedBatchMessagesAtMost: run.report.failedBatchMessagesAtMost + (ran ? requested : 0),
    },
    returnsBy: ran ? Math.max(run.returnsBy, Math.min(now + leaseSeconds * 1000, run.holdUntil)) : run.returnsBy,
    historyEvents: run.historyEvents + WORST_BATCH_EVENTS + HistoryEvents.recordFailure,
  };
}

/**
 * `recover`: a batch call failed (the function died or timed out at any await, or Lambda or
 * SQS failed past the retries). Its messages are still in the DLQ (a sent one is deleted only
 * by the next call), hidden for the lease or, if it died after holding them, until `holdUntil`;
 * the run goes on and waits for them (an empty receive proves nothing until `returnsBy`). After
 * `MAX_FAILED_BATCHES` the run ends with the last error.
 */
export function recoverRedrive(
  run: RedriveRun,
  context: { readonly now: number; readonly leaseSeconds?: number },
): RedriveRun {
  const failure = run.failure ?? { Error: 'Error', Cause: 'the batch call failed without an error' };
  const recovered = withFailedBatch(run, failure, context.now, context.leaseSeconds ?? RECEIVE_LEASE_SECONDS);
  if (recovered.report.failedBatches >= MAX_FAILED_BATCHES) {
    return {
      ...recovered,
      report: { ...recovered.report, stoppedBecause: 'failed', failed: failedOf(failure) },
      next: 'finish',
    };
  }
  if (context.now >= run.receiveUntil) {
    return { ...recovered, report: { ...recovered.report, stoppedBecause: 'visibilityWindow' }, next: 'finish' };
  }
  return { ...recovered, next: 'receive' };
}

/** The state `finish` receives: the run, with what the state machine put there on the way. */
export type FinishingRun = Omit<RedriveRun, 'report'> & {
  /** The run's report, or the successor's (it holds the whole run), as `{ successor }`. */
  readonly report: RedriveReport | { readonly successor: RedriveReport };
  /** Set by SuccessorFailed: the successor execution failed, timed out or was stopped. */
  readonly error?: StatesError;
};

function visibleAgainText(report: RedriveReport, hiddenUntil: string | null): string {
  const kept = report.counts.received - report.counts.redriven;
  if (hiddenUntil === null) return kept === 0 ? 'now: nothing stayed' : 'now: made visible again at the end of the run';
  const parts = [
    report.notReleased > 0 ? `${report.notReleased} whose release failed` : '',
    report.holdFailed > 0 ? `${report.holdFailed} SQS would not hold` : '',
    report.failedBatchMessagesAtMost > 0
      ? `up to ${report.failedBatchMessagesAtMost} received by batch calls that failed`
      : '',
    report.failed?.error === 'SuccessorFailed' ? 'those the failed successor execution held' : '',
  ].filter((part) => part !== '');
  return `now, except ${parts.join(', ')}: those at the latest at ${hiddenUntil}`;
}

/**
 * `finish`: delete what the last call sent (unless a successor took it over), make every message
 * this execution held visible again (a dry run leaves the DLQ as it was) and return the run's
 * report: the successor's when there was one (it holds the whole run), else this execution's,
 * with what is still hidden and until when.
 */
export async function finishRedrive(
  queues: RedriveQueues,
  finishing: FinishingRun,
  now: number,
): Promise<RedriveReport> {
  const handedOver = 'successor' in finishing.report;
  const report0 = 'successor' in finishing.report ? finishing.report.successor : finishing.report;
  let run: RedriveRun = { ...finishing, report: report0 };
  if (run.failure) {
    // RecordFailure itself failed: the batch's failure ends the run.
    const failure = run.failure;
    run = withFailedBatch(run, failure, now, 0);
    run = { ...run, report: { ...run.report, stoppedBecause: 'failed', failed: failedOf(failure) } };
  }
  const tally = tallyOf(run);
  if (!handedOver) await deletePending(queues, run.pending, tally);
  let notReleased = 0;
  for (let start = 0; start < tally.held.length; start += MAX_RECEIVE_BATCH) {
    const failures = await queues.release(tally.held.slice(start, start + MAX_RECEIVE_BATCH));
    notReleased += failures.filter((failure) => failure !== null).length;
  }
  const failed = finishing.error ? failedOf(finishing.error) : run.report.failed;
  const report: RedriveReport = {
    ...run.report,
    counts: tally.counts,
    stayed: tally.stayed,
    stayedNotListed: tally.stayedNotListed,
    notReleased: run.report.notReleased + notReleased,
    ...(failed ? { failed, stoppedBecause: run.report.stoppedBecause ?? 'failed' } : {}),
  };
  const hidden =
    report.notReleased > 0 ||
    report.holdFailed > 0 ||
    report.failedBatchMessagesAtMost > 0 ||
    finishing.error !== undefined;
  const hiddenUntil = hidden ? new Date(run.holdUntil).toISOString() : null;
  return { ...report, hiddenUntil, stayedVisibleAgain: visibleAgainText(report, hiddenUntil) };
}

/**
 * An error the function throws, its message cut, so that what the Catch puts into the state
 * stays within its budget (Lambda writes the error's name, message and stack into the cause:
 * the stack becomes one line).
 */
export function errorForState(error: unknown): Error {
  const cut = error instanceof Error ? error : new Error(String(error));
  cut.message = cutToBytes(cut.message, MAX_ERROR_MESSAGE_BYTES);
  cut.stack = `${cut.name}: ${cut.message}`;
  return cut;
}
