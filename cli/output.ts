/** What every command prints with: a line on stdout, plain-text tables, and how an event's group is shown. */
import type { StoredEvent } from '../core/store.ts';

/** One line on stdout. */
export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function cell(value: unknown, width: number): string {
  const text = value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > width ? `${text.slice(0, width - 3)}...` : text;
}

/** A plain-text table: columns sized to their content (each capped), a header and a rule. */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly unknown[])[],
  caps: readonly number[] = [],
): string {
  const cells = rows.map((row) => row.map((value, index) => cell(value, caps[index] ?? 60)));
  const widths = headers.map((header, index) =>
    Math.max(header.length, ...cells.map((row) => row[index]?.length ?? 0)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, index) => (index === values.length - 1 ? value : value.padEnd(widths[index]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line)].join('\n');
}

/**
 * Which events were written together (docs/ARCHITECTURE.md, "Groups"): `2/3` for the second of
 * a group of three (`GroupIndex` + 1 / `GroupSize`); undefined for an event sent alone.
 *
 * @example
 * ```ts
 * groupPosition({ ...event, Version: 5, GroupIndex: 1, GroupSize: 3 }); // '2/3' (the group is versions 4 to 6)
 * ```
 */
export function groupPosition(event: Pick<StoredEvent, 'GroupIndex' | 'GroupSize'>): string | undefined {
  if (event.GroupSize === undefined || event.GroupIndex === undefined) return undefined;
  return `${Number(event.GroupIndex) + 1}/${Number(event.GroupSize)}`;
}

/**
 * The columns a listing of stored events shows (`eventstore read`, the console's stream page):
 * `Group` only when the listing holds an event of a group, so a listing of single events looks
 * as it always did.
 */
export function eventColumns(events: readonly Pick<StoredEvent, 'GroupIndex' | 'GroupSize'>[]): {
  readonly grouped: boolean;
  readonly headers: string[];
} {
  const grouped = events.some((event) => groupPosition(event) !== undefined);
  const headers = ['Version', ...(grouped ? ['Group'] : []), 'EventType', 'Timestamp', 'EmitterType', 'EmitterId'];
  return { grouped, headers: [...headers, 'RecordedAt', 'EventId', 'Data'] };
}
