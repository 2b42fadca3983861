/**
 * What `redrive` does: the workflow's input from the command's options, and one execution of
 * the redrive state machine, waited for (docs/ARCHITECTURE.md, "Redrive").
 */
import {
  DescribeExecutionCommand,
  StartExecutionCommand,
  type DescribeExecutionCommandOutput,
} from '@aws-sdk/client-sfn';
import { CliError } from './errors.ts';
import type { Target } from './target.ts';

/** The workflow's input (docs/ARCHITECTURE.md, "Redrive"). */
export interface RedriveInput {
  dryRun: boolean;
  maxMessages?: number;
  filter?: Record<string, unknown>;
  fix?: { set?: Record<string, unknown>; remove?: string[] };
}

/** `k=v` -> [k, v]; v is JSON when it parses (numbers, true, objects), else the text itself. */
export function parseAssignment(text: string): [string, unknown] {
  const at = text.indexOf('=');
  if (at <= 0) throw new CliError(`expected key=value, got ${JSON.stringify(text)}`);
  const key = text.slice(0, at);
  const raw = text.slice(at + 1);
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}

export function redriveInput(options: {
  dryRun?: boolean;
  filter?: string[];
  set?: string[];
  remove?: string[];
  max?: number;
}): RedriveInput {
  const input: RedriveInput = { dryRun: options.dryRun ?? false };
  if (options.max !== undefined) input.maxMessages = options.max;
  if (options.filter?.length) input.filter = Object.fromEntries(options.filter.map(parseAssignment));
  const set = options.set?.length ? Object.fromEntries(options.set.map(parseAssignment)) : undefined;
  if (set || options.remove?.length)
    input.fix = { ...(set ? { set } : {}), ...(options.remove?.length ? { remove: options.remove } : {}) };
  return input;
}

export interface RedriveResult {
  readonly executionArn: string;
  readonly status: string;
  readonly output: unknown;
  readonly error?: string;
  readonly cause?: string;
}

/** Start one execution of the redrive state machine with this input; its ARN. The console starts its runs here too. */
export async function startRedriveExecution(target: Target, input: RedriveInput, namePrefix = 'cli'): Promise<string> {
  const started = await target.sfn.send(
    new StartExecutionCommand({
      stateMachineArn: target.stateMachineArn,
      name: `${namePrefix}-${Date.now()}`,
      input: JSON.stringify(input),
    }),
  );
  return started.executionArn!;
}

/** How an execution ended, from DescribeExecution; undefined while it runs. */
export function redriveResult(described: DescribeExecutionCommandOutput): RedriveResult | undefined {
  if (described.status === 'RUNNING' || described.status === 'PENDING_REDRIVE') return undefined;
  return {
    executionArn: described.executionArn!,
    status: described.status ?? 'UNKNOWN',
    output: described.output ? (JSON.parse(described.output) as unknown) : undefined,
    ...(described.error ? { error: described.error } : {}),
    ...(described.cause ? { cause: described.cause } : {}),
  };
}

/** Start the redrive state machine and wait (polling, with a deadline) until it ends. */
export async function runRedrive(target: Target, input: RedriveInput, timeoutSeconds: number): Promise<RedriveResult> {
  const executionArn = await startRedriveExecution(target, input);
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const result = redriveResult(await target.sfn.send(new DescribeExecutionCommand({ executionArn })));
    if (result) return result;
    if (Date.now() > deadline) {
      throw new CliError(
        `the redrive ${executionArn} is still running after ${timeoutSeconds} s; follow it in the Step Functions console`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}
