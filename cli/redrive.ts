/**
 * What `redrive` does: the workflow's input from the command's options, and one execution of
 * the redrive state machine, waited for (docs/ARCHITECTURE.md, "Redrive").
 */
import {
  DescribeExecutionCommand,
  StartExecutionCommand,
  type DescribeExecutionCommandOutput,
} from '@aws-sdk/client-sfn';
import { parseJsonExact, parseJsonVerbatim } from '../core/json.ts';
import { unstorableFixValue } from '../core/redrive.ts';
import { CliError } from './errors.ts';
import type { Target } from './target.ts';

/** The workflow's input (docs/ARCHITECTURE.md, "Redrive"). */
export interface RedriveInput {
  dryRun: boolean;
  maxMessages?: number;
  filter?: Record<string, unknown>;
  fix?: { set?: Record<string, unknown>; setJson?: Record<string, string>; remove?: string[] };
}

function split(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw new CliError(`expected key=value, got ${JSON.stringify(text)}`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/** `k=v` -> [k, v]; v is JSON when it parses (numbers, true, objects), else the text itself. */
export function parseAssignment(text: string): [string, unknown] {
  const [key, raw] = split(text);
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}

/** One `--set k=v`: where it goes in `fix`, with its value. */
export type FixAssignment =
  | { readonly key: string; readonly via: 'set'; readonly value: unknown }
  | { readonly key: string; readonly via: 'setJson'; readonly value: string };

/**
 * `--set k=v`, with v kept exactly as typed: JSON when it parses (read with the project's exact
 * parser, core/json.ts), else the text itself. A value that Step Functions' JSON would change
 * (a number a double cannot hold, like `12345678901234567890` or `1.50`) travels as its JSON
 * text (`fix.setJson`); one DynamoDB cannot store (`1e400`, `1e-400`, 39 digits) is refused with
 * the reason the ingest would give (core/storable.ts).
 *
 * @example
 * ```ts
 * parseFixAssignment('Data.amount=12345678901234567890'); // { key: 'Data.amount', via: 'setJson', value: '12345678901234567890' }
 * parseFixAssignment('EmitterType=SYSTEM'); // { key: 'EmitterType', via: 'set', value: 'SYSTEM' }
 * ```
 */
export function parseFixAssignment(text: string): FixAssignment {
  const [key, raw] = split(text);
  let exact: unknown = raw;
  let json = true;
  try {
    exact = parseJsonExact(raw);
  } catch {
    json = false;
  }
  const refused = unstorableFixValue(key, exact);
  if (refused) throw new CliError(`--set ${key}=${raw}: the ingest would refuse this value: ${refused}`);
  if (!json) return { key, via: 'set', value: raw };
  const asTyped = JSON.stringify(parseJsonVerbatim(raw));
  const asDoubles = JSON.stringify(JSON.parse(raw) as unknown);
  return asTyped === asDoubles
    ? { key, via: 'set', value: JSON.parse(raw) as unknown }
    : { key, via: 'setJson', value: raw.trim() };
}

function fixOf(set: readonly string[] | undefined, remove: readonly string[] | undefined): RedriveInput['fix'] {
  const assignments = (set ?? []).map(parseFixAssignment);
  const byDouble = assignments.filter((each) => each.via === 'set');
  const byText = assignments.filter((each) => each.via === 'setJson');
  if (assignments.length === 0 && !remove?.length) return undefined;
  return {
    ...(byDouble.length ? { set: Object.fromEntries(byDouble.map((each) => [each.key, each.value])) } : {}),
    ...(byText.length ? { setJson: Object.fromEntries(byText.map((each) => [each.key, each.value])) } : {}),
    ...(remove?.length ? { remove: [...remove] } : {}),
  };
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
  const fix = fixOf(options.set, options.remove);
  if (fix) input.fix = fix;
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
