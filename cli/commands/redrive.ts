/** `eventstore redrive`: run the redrive workflow and print its summary (docs/ARCHITECTURE.md, "Redrive"). */
import { Command } from 'commander';
import { CliError } from '../errors.ts';
import { collect, integer } from '../options.ts';
import { print } from '../output.ts';
import { redriveInput, runRedrive, type RedriveResult } from '../redrive.ts';
import { withTarget } from '../target.ts';

interface RedriveCommandOptions {
  readonly dryRun: boolean;
  readonly filter?: string[];
  readonly set?: string[];
  readonly remove?: string[];
  readonly max?: number;
  readonly timeout: number;
  readonly json: boolean;
}

function formatValue(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${indent}(none)`];
    return value.flatMap((item) =>
      item !== null && typeof item === 'object'
        ? [
            `${indent}- ${Object.entries(item as Record<string, unknown>)
              .map(([key, inner]) => `${key}: ${typeof inner === 'string' ? inner : JSON.stringify(inner)}`)
              .join(', ')}`,
          ]
        : [`${indent}- ${String(item)}`],
    );
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([key, inner]) =>
      inner !== null && typeof inner === 'object'
        ? [`${indent}${key}:`, ...formatValue(inner, `${indent}  `)]
        : [`${indent}${key}: ${String(inner)}`],
    );
  }
  return [`${indent}${String(value)}`];
}

/** The workflow's summary as readable lines. */
export function formatRedrive(result: RedriveResult, dryRun: boolean): string {
  const head = `redrive ${result.status.toLowerCase()}${dryRun ? ' (dry run: nothing changed)' : ''}`;
  return [head, ...formatValue(result.output ?? {}, '  ')].join('\n');
}

async function redrive(options: RedriveCommandOptions, command: Command): Promise<void> {
  const input = redriveInput(options);
  await withTarget(command, async (target) => {
    const result = await runRedrive(target, input, options.timeout);
    if (options.json)
      print(
        JSON.stringify(
          { executionArn: result.executionArn, status: result.status, input, output: result.output },
          null,
          2,
        ),
      );
    else print(formatRedrive(result, input.dryRun));
    if (result.status !== 'SUCCEEDED') {
      throw new CliError(
        `the redrive ${result.status.toLowerCase()}: ${result.error ?? ''} ${result.cause ?? ''}`.trim(),
      );
    }
  });
}

export function makeRedriveCommand(): Command {
  return new Command('redrive')
    .description('run the redrive workflow: repair dead-lettered events and send them back to the queue')
    .option('--dry-run', 'change nothing; report what would happen', false)
    .option('--filter <k=v>', 'only events whose field k equals v (repeatable)', collect)
    .option(
      '--set <k=v>',
      'set field k to v (JSON if it parses, numbers exactly as typed; else text; repeatable)',
      collect,
    )
    .option('--remove <k>', 'remove field k (repeatable)', collect)
    .option('--max <n>', 'at most N messages', integer(1, '--max'))
    .option('--timeout <seconds>', 'how long to wait for the workflow', integer(1, '--timeout'), 300)
    .option('--json', 'print the execution output as JSON', false)
    .action(redrive);
}
