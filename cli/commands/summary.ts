/** `eventstore summary`: the example projection's read model (README "Subscriptions"). */
import { Command } from 'commander';
import type { StreamSummary } from '../../handlers/stream-summary-projection.ts';
import { CliError } from '../errors.ts';
import type { TargetOptions } from '../options.ts';
import { formatTable, print } from '../output.ts';
import { findSubscriptions, readSummaries } from '../subscriptions.ts';
import { withTarget } from '../target.ts';

export function formatSummaries(summaries: readonly StreamSummary[]): string {
  return formatTable(
    ['ID', 'Events', 'Groups', 'LastVersion', 'LastEventType', 'Types'],
    summaries.map((s) => [
      s.ID,
      String(s.Events),
      String(s.Groups),
      String(s.LastVersion),
      s.LastEventType,
      Object.entries(s.Types)
        .map(([t, n]) => `${t}=${n}`)
        .join(' '),
    ]),
    [40, 8, 8, 11, 30, 100],
  );
}

async function summary(id: string | undefined, options: { json: boolean }, command: Command): Promise<void> {
  await withTarget(command, async (target) => {
    const tables = (await findSubscriptions(target, command.optsWithGlobals<TargetOptions>())).find(
      (s) => s.readModelTable,
    );
    if (!tables?.readModelTable)
      throw new CliError(`${target.label} has no example projection (deploy with -c exampleProjection=true)`);
    const summaries = await readSummaries(target, tables.readModelTable, id);
    if (options.json) print(JSON.stringify(id !== undefined ? summaries[0] : summaries, null, 2));
    else print(formatSummaries(summaries));
  });
}

export function makeSummaryCommand(): Command {
  return new Command('summary')
    .description("the example projection's read model: a stream's summary, or all of them")
    .argument('[id]', 'one stream')
    .option('--json', 'print JSON', false)
    .action(summary);
}
