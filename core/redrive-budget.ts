/**
 * The redrive's state budget, in UTF-8 bytes of JSON (docs/ARCHITECTURE.md, "Redrive"). Step
 * Functions refuses a state input, state output or task result over 256 KiB "as a UTF-8
 * encoded string" with `States.DataLimitExceeded`, which no Catch takes: the run would end
 * with no report and the messages it holds hidden. Every part of the state that can grow has
 * a byte budget here, and the parts add up to less than the quota in the largest state the
 * definition builds (`Finish`'s input after a failure: the run plus the error a Catch adds).
 */

/** Step Functions' quota on a state's input and output: 256 KiB of UTF-8. */
export const MAX_STATE_BYTES = 256 * 1024;

/**
 * The bytes of the state, part by part. `report` is the run's report (it also travels as a
 * successor's input and comes back as its output, in place of the parent's own); `held` the
 * receipt handles of the messages an execution keeps hidden until it ends; `pending` the sent
 * messages the next call deletes; `error` what a Catch adds (an error name and a cause: the
 * function's own errors are cut to `MAX_ERROR_MESSAGE_BYTES`, the platform's are one line).
 */
const OPTIONS_BYTES = 32 * 1024;
const REPORT_BYTES = 72 * 1024;
const PENDING_BYTES = 16 * 1024;
const ERROR_BYTES = 8 * 1024;
const REST_BYTES = 2 * 1024;
export const StateBudget = {
  options: OPTIONS_BYTES,
  report: REPORT_BYTES,
  pending: PENDING_BYTES,
  error: ERROR_BYTES,
  /** Counters, times and names outside the parts above. */
  rest: REST_BYTES,
  /** What is left: 129,024 bytes, about 125 of SQS's longest receipt handles (1,024 bytes). */
  held: MAX_STATE_BYTES - OPTIONS_BYTES - REPORT_BYTES - PENDING_BYTES - ERROR_BYTES - REST_BYTES,
} as const;

/** Inside the report: the listed messages that stayed, and the execution ARNs. */
export const ReportBudget = {
  /** At most this many messages are listed, and together at most `stayedBytes`. */
  stayedEntries: 100,
  stayedBytes: 48 * 1024,
  /** At most this many executions are listed, and together at most `executionsBytes`. */
  executionEntries: 25,
  executionsBytes: 16 * 1024,
  /** A listed stream id, a detail, a message id, an error cause: each cut to these many bytes of JSON. */
  streamIdBytes: 256,
  detailBytes: 600,
  messageIdBytes: 128,
  causeBytes: 1000,
} as const;

/** What the function's own errors are cut to (a Catch puts them into the state). */
export const MAX_ERROR_MESSAGE_BYTES = 1000;

/** The size of a value as Step Functions counts it: its JSON text in UTF-8 bytes. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');
}

/**
 * `text`, or its longest prefix (whole characters) plus `...`, whose JSON string takes at most
 * `maxBytes` bytes of UTF-8: escapes count as written (`\u0001` is 6 bytes, `"` is 2).
 *
 * @example
 * ```ts
 * cutToBytes('東京東京', 12); // '東京...' (the JSON string "東京..." takes 11 bytes; "東京東京" takes 14)
 * ```
 */
export function cutToBytes(text: string, maxBytes: number): string {
  if (jsonBytes(text) <= maxBytes) return text;
  const characters = Array.from(text);
  let low = 0;
  let high = characters.length;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (jsonBytes(`${characters.slice(0, middle).join('')}...`) <= maxBytes) low = middle;
    else high = middle - 1;
  }
  if (low > 0) return `${characters.slice(0, low).join('')}...`;
  return jsonBytes('...') <= maxBytes ? '...' : '';
}
