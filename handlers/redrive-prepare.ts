/**
 * The redrive workflow's one Lambda function: validates the execution input, plans each
 * batch of dead-lettered messages (filter, fix, re-validate with the current contract) and
 * tallies the results. Pure logic lives in core/redrive.ts; this file only dispatches.
 */
import {
  planBatch,
  startRedrive,
  tallyBatch,
  type DeadLetterMessage,
  type ItemResult,
  type RedriveState,
} from '../core/redrive.ts';

export type RedrivePrepareEvent =
  | { readonly action: 'start'; readonly input: unknown }
  | (RedriveState & {
      readonly action: 'plan';
      readonly fifo: boolean;
      readonly received: { Messages?: DeadLetterMessage[] };
    })
  | (RedriveState & { readonly action: 'tally'; readonly results: ItemResult[] });

export type RedrivePrepareResult =
  | ReturnType<typeof startRedrive>
  | ReturnType<typeof planBatch>
  | ReturnType<typeof tallyBatch>;

/** Thrown for an event the state machine never sends (a definition and handler out of step). */
export class UnknownRedriveActionError extends Error {
  public constructor(action: unknown) {
    super(`redrive-prepare: unknown action ${JSON.stringify(action)}; expected start, plan or tally`);
    this.name = 'UnknownRedriveActionError';
  }
}

/**
 * Lambda entry point (invoked by the state machine with the payload as the result).
 *
 * @example
 * ```ts
 * const started = await handler({ action: 'start', input: { dryRun: true } });
 * ```
 */
export async function handler(event: RedrivePrepareEvent): Promise<RedrivePrepareResult> {
  const now = Date.now();
  switch (event.action) {
    case 'start':
      return startRedrive(event.input, now);
    case 'plan':
      return planBatch(event, event.received, event.fifo, now);
    case 'tally':
      return tallyBatch(event, event.results, now);
    default:
      throw new UnknownRedriveActionError((event as { action?: unknown }).action);
  }
}
