import { describe, expect, it } from 'vitest';
import { ExactNumber, isJsonObject, parseJsonExact } from '../../core/json.ts';

describe('isJsonObject', () => {
  it('is true for a parsed JSON object, empty or not', () => {
    expect(isJsonObject(parseJsonExact('{}'))).toBe(true);
    expect(isJsonObject(parseJsonExact('{"ID":"a"}'))).toBe(true);
  });

  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'x'],
    ['a number', 1],
    ['a boolean', true],
    ['an ExactNumber (a number a double cannot hold)', new ExactNumber('12345678901234567890')],
  ])('is false for %s', (_name, value) => {
    expect(isJsonObject(value)).toBe(false);
  });
});
