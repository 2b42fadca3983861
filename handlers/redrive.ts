/**
 * The redrive workflow's Lambda function (README, "Redrive rejected events"): the state
 * machine calls it to open the run (`start`), once per batch (`batch`: receive from the DLQ,
 * fix, re-validate, send back, delete, keep), and at the end (`finish`: make the kept messages
 * visible again, return the report). Bodies never leave the function: the state holds only
 * counts, listed outcomes and receipt handles. Pure logic lives in core/redrive.ts.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsRedriveQueues } from '../adapters/sqs-redrive-queues.ts';
import { ConfigurationError } from '../core/errors.ts';
import {
  finishRedrive,
  redriveBatch,
  startRedrive,
  type RedriveQueues,
  type RedriveReport,
  type RedriveRun,
} from '../core/redrive.ts';

export type RedriveEvent =
  | { readonly action: 'start'; readonly input: unknown; readonly executionId: string }
  | { readonly action: 'batch'; readonly run: RedriveRun }
  | {
      readonly action: 'finish';
      readonly run: RedriveRun & {
        /** The successor execution's result (`startExecution.sync:2`: its output as JSON). */
        readonly successor?: { readonly report: RedriveReport };
        /** What a Catch put there when a batch or the successor failed. */
        readonly error?: { readonly Error?: string; readonly Cause?: string };
      };
    };

export type RedriveResult = ReturnType<typeof startRedrive> | RedriveRun | RedriveReport;

/** Thrown for an event the state machine never sends (a definition and handler out of step). */
export class UnknownRedriveActionError extends Error {
  public constructor(action: unknown) {
    super(`redrive: unknown action ${JSON.stringify(action)}; expected start, batch or finish`);
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
}

/**
 * The handler, with its SQS calls given (the local mode and tests bind it to the local SQS).
 *
 * @example
 * ```ts
 * const handle = createRedriveHandler({ queues: new SqsRedriveQueues({ client, deadLetterQueueUrl, sourceQueueUrl }), fifo: false });
 * const started = await handle({ action: 'start', input: { dryRun: true }, executionId: 'arn:…' });
 * ```
 */
export function createRedriveHandler(deps: RedriveHandlerDeps): (event: RedriveEvent) => Promise<RedriveResult> {
  const now = deps.now ?? Date.now;
  return async (event) => {
    switch (event.action) {
      case 'start':
        return startRedrive(event.input, { executionId: event.executionId, now: now() });
      case 'batch':
        return redriveBatch(deps.queues, event.run, deps.fifo, now, deps.historyLimit);
      case 'finish':
        return finishRedrive(deps.queues, event.run, event.run.successor?.report, event.run.error);
      default:
        throw new UnknownRedriveActionError((event as { action?: unknown }).action);
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
