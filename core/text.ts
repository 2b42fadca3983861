/**
 * `text` cut to at most `max` characters, ending in `...` when cut: how a rejection detail or an
 * error message quotes a value that may be long.
 *
 * @example
 * ```ts
 * truncate('abcdefghij', 8); // 'abcde...'
 * ```
 */
export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
