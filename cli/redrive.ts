import { DescribeExecutionCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { CliError, type Target } from './target.ts';

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

export function redriveInput(options: { dryRun?: boolean; filter?: string[]; set?: string[]; remove?: string[]; max?: number }): RedriveInput {
  const input: RedriveInput = { dryRun: options.dryRun ?? false };
  if (options.max !== undefined) input.maxMessages = options.max;
  if (options.filter?.length) input.filter = Object.fromEntries(options.filter.map(parseAssignment));
  const set = options.set?.length ? Object.fromEntries(options.set.map(parseAssignment)) : undefined;
  if (set || options.remove?.length) input.fix = { ...(set ? { set } : {}), ...(options.remove?.length ? { remove: options.remove } : {}) };
  return input;
}

export interface RedriveResult {
  readonly executionArn: string;
  readonly status: string;
  readonly output: unknown;
  readonly error?: string;
  readonly cause?: string;
}

/** Start the redrive state machine and wait (polling, with a deadline) until it ends. */
export async function runRedrive(target: Target, input: RedriveInput, timeoutSeconds: number): Promise<RedriveResult> {
  const started = await target.sfn.send(
    new StartExecutionCommand({ stateMachineArn: target.stateMachineArn, name: `cli-${Date.now()}`, input: JSON.stringify(input) }),
  );
  const executionArn = started.executionArn!;
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const described = await target.sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (described.status !== 'RUNNING' && described.status !== 'PENDING_REDRIVE') {
      return {
        executionArn,
        status: described.status ?? 'UNKNOWN',
        output: described.output ? (JSON.parse(described.output) as unknown) : undefined,
        ...(described.error ? { error: described.error } : {}),
        ...(described.cause ? { cause: described.cause } : {}),
      };
    }
    if (Date.now() > deadline) {
      throw new CliError(`the redrive ${executionArn} is still running after ${timeoutSeconds} s; follow it in the Step Functions console`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function formatValue(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${indent}(none)`];
    return value.flatMap((item) =>
      item !== null && typeof item === 'object'
        ? [`${indent}- ${Object.entries(item as Record<string, unknown>).map(([key, inner]) => `${key}: ${typeof inner === 'string' ? inner : JSON.stringify(inner)}`).join(', ')}`]
        : [`${indent}- ${String(item)}`],
    );
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([key, inner]) =>
      inner !== null && typeof inner === 'object' ? [`${indent}${key}:`, ...formatValue(inner, `${indent}  `)] : [`${indent}${key}: ${String(inner)}`],
    );
  }
  return [`${indent}${String(value)}`];
}

/** The workflow's summary as readable lines. */
export function formatRedrive(result: RedriveResult, dryRun: boolean): string {
  const head = `redrive ${result.status.toLowerCase()}${dryRun ? ' (dry run: nothing changed)' : ''}`;
  return [head, ...formatValue(result.output ?? {}, '  ')].join('\n');
}
