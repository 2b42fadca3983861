/**
 * The redrive workflow's Lambda function (README, "Redrive rejected events"): the state
 * machine calls it to open the run (`start`), once per batch (`batch`: delete what the last
 * call sent, receive from the DLQ, fix, re-validate, send back, hold what stays), after a batch
 * call failed (`recover`), and at the end (`finish`: make the kept messages visible again,
 * return the report). Bodies never leave the function: the state holds only counts, listed
 * outcomes and receipt handles. Pure logic lives in core/redrive.ts and core/redrive-run.ts.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { SqsRedriveQueues } from '../adapters/sqs-redrive-queues.ts';
import { ConfigurationError } from '../core/errors.ts';
import {
  errorForState,
  finishRedrive,
  recoverRedrive,
  redriveBatch,
  startRedrive,
  type FinishingRun,
  type RedriveQueues,
  type RedriveReport,
  type RedriveRun,
} from '../core/redrive-run.ts';

export type RedriveEvent =
  | { readonly action: 'start'; readonly input: unknown; readonly executionId: string }
  | { readonly action: 'batch'; readonly run: RedriveRun }
  | { readonly action: 'recover'; readonly run: RedriveRun }
  | { readonly action: 'finish'; readonly run: FinishingRun };

export type RedriveResult = ReturnType<typeof startRedrive> | RedriveRun | RedriveReport;

/** Thrown for an event the state machine never sends (a definition and handler out of step). */
export class UnknownRedriveActionError extends Error {
  public constructor(action: unknown) {
    super(`redrive: unknown action ${JSON.stringify(action)}; expected start, batch, recover or finish`);
    this.name = 'UnknownRedriveActionError';
  }
}

export interface RedriveHandlerDeps {
  readonly queues: RedriveQueues;
  /** FIFO queues: a stream's messages go back one by one, in order. */
  readonly fifo: boolean;
  /** @default Date.now */
  readonly now?: () => number;
  /** The history quota the run keeps under (tests lower it). @default HistoryEvents.limit (25,000) */
  readonly historyLimit?: number;
  /** How long a receive hides its messages before the call holds them (tests shorten it). @default RECEIVE_LEASE_SECONDS */
  readonly leaseSeconds?: number;
}

/**
 * The handler, with its SQS calls given (the local mode and tests bind it to the local SQS).
 * Its errors are cut (core/redrive-run.ts `errorForState`): a Catch puts them into the state.
 *
 * @example
 * ```ts
 * const handle = createRedriveHandler({ queues: new SqsRedriveQueues({ client, deadLetterQueueUrl, sourceQueueUrl }), fifo: false });
 * const started = await handle({ action: 'start', input: { dryRun: true }, executionId: 'arn:…' });
 * ```
 */
export function createRedriveHandler(deps: RedriveHandlerDeps): (event: RedriveEvent) => Promise<RedriveResult> {
  const now = deps.now ?? Date.now;
  const lease = deps.leaseSeconds !== undefined ? { leaseSeconds: deps.leaseSeconds } : {};
  const handle = async (event: RedriveEvent): Promise<RedriveResult> => {
    switch (event.action) {
      case 'start':
        return startRedrive(event.input, { executionId: event.executionId, now: now(), ...lease });
      case 'batch':
        return redriveBatch(deps.queues, event.run, {
          fifo: deps.fifo,
          now,
          // One per call: the SDK's retries of a receive whose response was lost reuse it (FIFO:
          // SQS returns the same messages); a new call takes a new one (SQS refuses an id whose
          // receive was throttled).
          attemptId: randomUUID(),
          ...(deps.historyLimit !== undefined ? { historyLimit: deps.historyLimit } : {}),
          ...lease,
        });
      case 'recover':
        return recoverRedrive(event.run, { now: now(), ...lease });
      case 'finish':
        return finishRedrive(deps.queues, event.run, now());
      default:
        throw new UnknownRedriveActionError((event as { action?: unknown }).action);
    }
  };
  return async (event) => {
    try {
      return await handle(event);
    } catch (error) {
      throw errorForState(error);
    }
  };
}

let deployed: ((event: RedriveEvent) => Promise<RedriveResult>) | undefined;

function fromEnvironment(): (event: RedriveEvent) => Promise<RedriveResult> {
  const deadLetterQueueUrl = process.env['DLQ_URL'];
  const sourceQueueUrl = process.env['SOURCE_QUEUE_URL'];
  if (!deadLetterQueueUrl || !sourceQueueUrl) {
    throw new ConfigurationError('the redrive function needs DLQ_URL and SOURCE_QUEUE_URL in its environment');
  }
  const client = new SQSClient({});
  return createRedriveHandler({
    queues: new SqsRedriveQueues({ client, deadLetterQueueUrl, sourceQueueUrl }),
    fifo: sourceQueueUrl.endsWith('.fifo'),
  });
}

/** Lambda entry point (invoked by the state machine with the payload as the result). */
export async function handler(event: RedriveEvent): Promise<RedriveResult> {
  deployed ??= fromEnvironment();
  return deployed(event);
}
