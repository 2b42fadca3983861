/** What every command prints with: a line on stdout, and plain-text tables. */

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
