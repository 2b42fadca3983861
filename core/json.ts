/**
 * Lossless JSON numbers (docs/ARCHITECTURE.md, "Numbers"). `JSON.parse` turns every number into
 * a double, so `12345678901234567890` becomes `12345678901234567000` and
 * `0.1000000000000000055511151231257827` loses its tail. DynamoDB keeps 38 significant digits,
 * and the store promises numbers exactly as sent: a number literal a double cannot hold exactly
 * is kept as an {@link ExactNumber} holding the producer's literal; every other number stays a
 * plain `number` (so ordinary events look as they always did).
 *
 * Which of the two a value becomes depends only on its numeric value, never on how it was
 * written (`1.50` and `1.5` are both the double 1.5), so an event read back from DynamoDB
 * (which normalises number text) has the same representation and fingerprint as when it was sent.
 */

import { truncate } from './text.ts';

/** `JSON.rawJSON` (Node.js 21+, not yet in TypeScript's lib): a value JSON.stringify writes verbatim. */
const RawJson = JSON as unknown as {
  rawJSON(text: string): object;
  isRawJSON(value: unknown): boolean;
};

/** The grammar of a JSON number literal. */
const NUMBER_LITERAL = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** Thrown for a text that is not a JSON number literal. */
export class InvalidNumberLiteralError extends Error {
  public constructor(text: string) {
    super(`${JSON.stringify(truncate(text, 40))} is not a JSON number literal`);
    this.name = 'InvalidNumberLiteralError';
  }
}

/**
 * A JSON number kept as its literal, because a double cannot hold its value exactly.
 * `JSON.stringify` writes the literal as a number; `Number(x)` gives the nearest double.
 *
 * @example
 * ```ts
 * const amount = new ExactNumber('12345678901234567890');
 * JSON.stringify({ amount }); // '{"amount":12345678901234567890}'
 * ```
 */
export class ExactNumber {
  public readonly text: string;

  public constructor(text: string) {
    if (!NUMBER_LITERAL.test(text)) throw new InvalidNumberLiteralError(text);
    this.text = text;
  }

  public toJSON(): unknown {
    return RawJson.rawJSON(this.text);
  }

  public valueOf(): number {
    return Number(this.text);
  }

  public toString(): string {
    return this.text;
  }
}

/** A number as decimal parts: sign, significant digits (no leading or trailing zeros) and the power of ten of the first digit. */
export interface DecimalParts {
  readonly negative: boolean;
  /** `''` for zero. */
  readonly digits: string;
  /** `1.5e3` -> digits `15`, exponent 3 (the value is 0.15e4 = 1.5 x 10^3). */
  readonly exponent: number;
}

/** Split a JSON number literal into decimal parts: `-0.0120e3` -> `{ negative, digits: '12', exponent: 1 }`. */
export function decimalParts(literal: string): DecimalParts {
  const match = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!match) throw new InvalidNumberLiteralError(literal);
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
  const all = `${whole}${fraction}`;
  const leading = all.length - all.replace(/^0+/, '').length;
  const digits = all.replace(/^0+/, '').replace(/0+$/, '');
  if (digits.length === 0) return { negative: false, digits: '', exponent: 0 };
  return { negative: sign === '-', digits, exponent: Number(exponent) + whole.length - leading - 1 };
}

/** The normal form of a literal's value: `1.50` and `15e-1` both give `1.5e0`; zero gives `0`. */
export function normalNumberText(literal: string): string {
  const { negative, digits, exponent } = decimalParts(literal);
  if (digits.length === 0) return '0';
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${negative ? '-' : ''}${mantissa}e${exponent}`;
}

/** Whether a double holds exactly the value a literal writes (`0.1` yes, `12345678901234567890` no). */
export function fitsDouble(literal: string): boolean {
  const parsed = Number(literal);
  if (!Number.isFinite(parsed)) return false;
  return normalNumberText(literal) === normalNumberText(String(parsed));
}

/** A literal as the value this module represents it by: a double when one holds it exactly, else an ExactNumber. */
export function numberFromLiteral(literal: string): number | ExactNumber {
  return fitsDouble(literal) ? Number(literal) : new ExactNumber(literal);
}

type Reviver = (key: string, value: unknown, context?: { source?: string }) => unknown;

/**
 * `JSON.parse` that loses no number: every literal a double cannot hold exactly becomes an
 * {@link ExactNumber} with the literal as sent.
 *
 * @throws SyntaxError for text that is not JSON, like `JSON.parse`.
 *
 * @example
 * ```ts
 * parseJsonExact('{"a":12345678901234567890,"b":1.5}'); // { a: ExactNumber('12345678901234567890'), b: 1.5 }
 * ```
 */
export function parseJsonExact(text: string): unknown {
  const reviver: Reviver = (_key, value, context) =>
    typeof value === 'number' && context?.source !== undefined ? numberFromLiteral(context.source) : value;
  return JSON.parse(text, reviver as Parameters<typeof JSON.parse>[1]);
}

/**
 * `JSON.parse` that keeps every primitive's exact source text (numbers, strings with their
 * escapes, booleans, null) as raw JSON, so that `JSON.stringify` of the result, or of a copy
 * with some members changed, writes every untouched value exactly as it was sent. Only the
 * white space between tokens is not kept.
 *
 * @example
 * ```ts
 * JSON.stringify(parseJsonVerbatim('{ "a": 1.50, "b": "\\u00e9" }')); // '{"a":1.50,"b":"\\u00e9"}'
 * ```
 */
export function parseJsonVerbatim(text: string): unknown {
  const reviver: Reviver = (_key, value, context) =>
    value !== null && typeof value === 'object' ? value : RawJson.rawJSON(context?.source ?? JSON.stringify(value));
  return JSON.parse(text, reviver as Parameters<typeof JSON.parse>[1]);
}

/**
 * Whether a parsed JSON value is an object: not null, not an array, and not an
 * {@link ExactNumber} (that is a number).
 */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof ExactNumber);
}

/** Whether a value came from {@link parseJsonVerbatim} (or `JSON.rawJSON`). */
export function isRawJson(value: unknown): boolean {
  return RawJson.isRawJSON(value);
}
