import { decimalParts, type DecimalParts, ExactNumber } from './json.ts';
import { Limits } from './keys.ts';
import { RejectionReason } from './reasons.ts';

/** DynamoDB's numbers: at most 38 significant digits, magnitudes from 1e-130 to just under 1e126, or zero. */
const MAX_DIGITS = 38;
const MIN_EXPONENT = -130;
const MAX_EXPONENT = 125;
/**
 * DynamoDB counts the item itself as the first of its 32 levels: a top-level map holding 31
 * nested maps is accepted, one holding 32 is refused (measured on DynamoDB Local 3.3).
 */
const ITEM_LEVEL = 1;

export interface StorableProblem {
  readonly reason: RejectionReason;
  readonly detail: string;
}

function pathOf(parent: string, key: string | number): string {
  return typeof key === 'number' ? `${parent}[${key}]` : `${parent}.${key}`;
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * A number as DynamoDB sees it: its sign, significant digits and the power of ten of the first
 * one, from the literal (an ExactNumber) or from the shortest text that gives the double back.
 */
function numberParts(value: number | ExactNumber): DecimalParts | undefined {
  if (typeof value === 'number' && !Number.isFinite(value)) return undefined;
  return decimalParts(typeof value === 'number' ? String(value) : value.text);
}

/** The most bytes a number takes: 20 base-100 digits (38 decimal digits, odd-aligned) and the exponent byte. */
const MAX_NUMBER_BYTES = 21;

/**
 * Size of a number as DynamoDB counts it (docs/ARCHITECTURE.md, "Numbers"; measured on DynamoDB
 * Local): one byte for the exponent, one per base-100
 * digit with the pairs aligned on the decimal point (`1.1` is `01.10`, two pairs; `101` is
 * `01 01`, two; `200` is `02 00` with the trailing zero pair trimmed, one), and one more for a
 * negative number, except when that would pass 21 bytes. Zero takes one byte.
 */
export function numberBytes(parts: DecimalParts): number {
  if (parts.digits.length === 0) return 1;
  const firstPair = Math.floor(parts.exponent / 2);
  const lastPair = Math.floor((parts.exponent - parts.digits.length + 1) / 2);
  const bytes = firstPair - lastPair + 1 + 1 + (parts.negative ? 1 : 0);
  return Math.min(bytes, MAX_NUMBER_BYTES);
}

function show(value: number | ExactNumber): string {
  const text = String(value);
  return text.length > 48 ? `${text.slice(0, 45)}...` : text;
}

function measureNumber(value: number | ExactNumber, path: string): { bytes: number; problem?: StorableProblem } {
  const parts = numberParts(value);
  const unstorable = (why: string) => ({
    bytes: 0,
    problem: { reason: RejectionReason.UnstorableData, detail: `${path}: ${show(value)} ${why}; send it as a string` },
  });
  if (parts === undefined) return unstorable('is not a finite number');
  if (parts.digits.length > MAX_DIGITS) {
    return unstorable(`has ${parts.digits.length} significant digits; DynamoDB keeps at most ${MAX_DIGITS}`);
  }
  if (parts.digits.length > 0 && (parts.exponent < MIN_EXPONENT || parts.exponent > MAX_EXPONENT)) {
    return unstorable("is outside DynamoDB's number range (1e-130 to 1e126)");
  }
  return { bytes: numberBytes(parts) };
}

/**
 * Walk a JSON value the way DynamoDB will store it and return the first thing it refuses
 * (nesting deeper than 32, an empty map key, a number out of range, a string that is not
 * well-formed UTF-16), together with the value's size in DynamoDB's accounting.
 */
function measure(value: unknown, path: string, depth: number): { bytes: number; problem?: StorableProblem } {
  if (value === null || typeof value === 'boolean') return { bytes: 1 };
  if (typeof value === 'string') {
    if (!value.isWellFormed()) {
      return {
        bytes: 0,
        problem: {
          reason: RejectionReason.UnstorableData,
          detail: `${path}: string has a lone surrogate (not valid UTF-8)`,
        },
      };
    }
    return { bytes: utf8Bytes(value) };
  }
  if (typeof value === 'number' || value instanceof ExactNumber) return measureNumber(value, path);
  if (typeof value === 'object') {
    if (depth > Limits.maxNestingDepth) {
      return {
        bytes: 0,
        problem: {
          reason: RejectionReason.UnstorableData,
          detail: `${path}: nested deeper than DynamoDB's ${Limits.maxNestingDepth} levels`,
        },
      };
    }
    let bytes = 3;
    const entries: [string | number, unknown][] = Array.isArray(value)
      ? value.map((item, index) => [index, item])
      : Object.entries(value as Record<string, unknown>);
    for (const [key, item] of entries) {
      if (typeof key === 'string' && key.length === 0) {
        return {
          bytes: 0,
          problem: {
            reason: RejectionReason.UnstorableData,
            detail: `${path}: has an empty key, which DynamoDB refuses`,
          },
        };
      }
      if (key === '__proto__') {
        // The AWS SDK for JavaScript writes and reads maps by assignment, which turns this key
        // into the object's prototype: the map would be changed on its way to DynamoDB.
        return {
          bytes: 0,
          problem: {
            reason: RejectionReason.UnstorableData,
            detail: `${path}: a key named __proto__ cannot be stored unchanged through the AWS SDK; rename it`,
          },
        };
      }
      if (typeof key === 'string' && !key.isWellFormed()) {
        return {
          bytes: 0,
          problem: {
            reason: RejectionReason.UnstorableData,
            detail: `${path}: a key has a lone surrogate (not valid UTF-8)`,
          },
        };
      }
      const inner = measure(item, pathOf(path, key), depth + 1);
      if (inner.problem) return inner;
      bytes += 1 + inner.bytes + (typeof key === 'string' ? utf8Bytes(key) : 0);
    }
    return { bytes };
  }
  return {
    bytes: 0,
    problem: { reason: RejectionReason.UnstorableData, detail: `${path}: ${typeof value} cannot be stored` },
  };
}

/**
 * Whether a JSON value nests deeper than `limit` maps and lists, found without recursion (so
 * a body nested thousands deep is refused, not a stack overflow).
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!;
    if (current === null || typeof current !== 'object' || current instanceof ExactNumber) continue;
    if (depth >= limit) return true;
    for (const inner of Array.isArray(current) ? current : Object.values(current)) pending.push([inner, depth + 1]);
  }
  return false;
}

/**
 * Check that DynamoDB will accept an item and that it fits in 400 KB, before writing it.
 * The store still maps DynamoDB's own `ValidationException` to the same reasons, in case
 * this estimate and DynamoDB ever disagree.
 *
 * @example
 * ```ts
 * const problem = checkStorable({ ID: 'order-1', Data: { '': 1 } });
 * // problem?.reason === 'UnstorableData'
 * ```
 */
export function checkStorable(item: Readonly<Record<string, unknown>>): StorableProblem | undefined {
  let total = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    const measured = measure(value, name, ITEM_LEVEL + 1);
    if (measured.problem) return measured.problem;
    total += utf8Bytes(name) + measured.bytes;
  }
  if (total > Limits.maxItemBytes) {
    return {
      reason: RejectionReason.ItemTooLarge,
      detail: `item: about ${Math.ceil(total / 1024)} KB, over DynamoDB's ${Limits.maxItemBytes / 1024} KB item limit; store large payloads elsewhere (S3) and send a reference`,
    };
  }
  return undefined;
}

/** The size DynamoDB will bill an item at, in bytes (for write units: ceil(bytes / 1024)). */
export function itemBytes(item: Readonly<Record<string, unknown>>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    total += utf8Bytes(name) + measure(value, name, ITEM_LEVEL + 1).bytes;
  }
  return total;
}
