/** `eventstore read`: a stream's events, as a table or JSON. */
import { Command } from 'commander';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import type { StoredEvent } from '../../core/store.ts';
import { CliError } from '../errors.ts';
import { integer } from '../options.ts';
import { eventColumns, formatTable, groupPosition, print } from '../output.ts';
import { withTarget } from '../target.ts';

interface ReadCommandOptions {
  readonly from?: number;
  readonly backward: boolean;
  readonly limit?: number;
  readonly json: boolean;
}

/**
 * The events as a table. When any of them was stored from a group message, a `Group` column
 * says which were written together: `1/3`, `2/3`, `3/3` (docs/ARCHITECTURE.md, "Groups"); a
 * listing of single events only looks as it always did.
 */
export function formatEvents(events: readonly StoredEvent[]): string {
  const { grouped, headers } = eventColumns(events);
  return formatTable(
    headers,
    events.map((event) => [
      String(event.Version),
      ...(grouped ? [groupPosition(event) ?? ''] : []),
      event.EventType,
      String(event.Timestamp),
      event.EmitterType,
      event.EmitterId,
      event.RecordedAt,
      event.EventId,
      event.Data,
    ]),
    [8, ...(grouped ? [7] : []), 40, 30, 20, 30, 24, 24, 60],
  );
}

async function read(id: string, options: ReadCommandOptions, command: Command): Promise<void> {
  await withTarget(command, async (target) => {
    const store = new DynamoDbEventStore({ client: target.dynamo, tableName: target.tableName });
    const result = await store.readStream(id, {
      direction: options.backward ? 'backward' : 'forward',
      ...(options.from !== undefined ? { fromVersion: options.from } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
    });
    if (options.json) {
      print(JSON.stringify({ streamId: id, version: result.version, events: result.events }, null, 2));
      return;
    }
    if (result.version === 0) throw new CliError(`stream ${id} has no events in ${target.label}`);
    print(`stream ${id}: version ${result.version}, showing ${result.events.length} event(s)`);
    print(formatEvents(result.events));
  });
}

export function makeReadCommand(): Command {
  return new Command('read')
    .description("read a stream's events")
    .argument('<id>', "the stream (the events' ID)")
    .option('--from <version>', 'first version (forward from it, or backward from it)', integer(1, '--from'))
    .option('--backward', 'newest first', false)
    .option('--limit <n>', 'at most N events', integer(1, '--limit'))
    .option('--json', 'print JSON', false)
    .action(read);
}
