/** `eventstore tail`: events as they are stored (the table's stream, from now on) until Ctrl-C or --count. */
import { Command } from 'commander';
import type { StoredEvent } from '../../core/store.ts';
import type { TargetOptions } from '../options.ts';
import { groupPosition, print } from '../output.ts';
import { tailEvents } from '../subscriptions.ts';
import { withTarget } from '../target.ts';

/** One stored event as a line; `group 2/3` after the version for an event written in a group (docs/ARCHITECTURE.md, "Groups"). */
export function formatTailLine(event: StoredEvent): string {
  const group = groupPosition(event);
  return `${event.RecordedAt}  ${event.ID}  v${event.Version}${group ? `  group ${group}` : ''}  ${event.EventType}  ${JSON.stringify(event.Data ?? null)}`;
}

async function tail(options: { count?: number; json: boolean }, command: Command): Promise<void> {
  await withTarget(command, async (target) => {
    if (!options.json) process.stderr.write(`following ${target.label}, table ${target.tableName} (Ctrl-C to stop)\n`);
    let seen = 0;
    await tailEvents(target, command.optsWithGlobals<TargetOptions>(), (event) => {
      if (options.count !== undefined && seen >= options.count) return false;
      seen += 1;
      print(options.json ? JSON.stringify(event) : formatTailLine(event));
      return options.count === undefined || seen < options.count;
    });
  });
}

export function makeTailCommand(): Command {
  return (
    new Command('tail')
      .description('print events as they are stored (the table stream, from now on) until Ctrl-C')
      // Not integer(): `--count` has always taken any number (kept as it was).
      .option('--count <n>', 'stop after N events', (value) => Number(value))
      .option('--json', 'one JSON object per line', false)
      .action(tail)
  );
}
