import { describe, expect, it } from 'vitest';
import { Limits } from '../../core/keys.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { decimalParts, ExactNumber } from '../../core/json.ts';
import { checkStorable, itemBytes, numberBytes } from '../../core/storable.ts';

/** `levels` maps nested in each other, the innermost holding `1`. */
function nestedMaps(levels: number): unknown {
  let value: unknown = 1;
  for (let level = 0; level < levels; level += 1) value = { a: value };
  return value;
}

function nestedLists(levels: number): unknown {
  let value: unknown = 1;
  for (let level = 0; level < levels; level += 1) value = [value];
  return value;
}

/** An item as the store writes it, with `Data` as given. */
function item(Data: unknown): Record<string, unknown> {
  return {
    ID: 'order-1',
    Version: 1,
    EventId: 'e-1',
    EventType: 'EVENT_EXAMPLE',
    Timestamp: 1596719980,
    EmitterId: 'checkout-service',
    EmitterType: 'SYSTEM',
    Data,
    RecordedAt: '2026-11-24T09:00:00.000Z',
  };
}

const unstorable = (detail: string) => ({ reason: RejectionReason.UnstorableData, detail });

describe('checkStorable: nesting', () => {
  // Measured on DynamoDB Local 3.3: the item counts as a level, so an attribute can hold a
  // map with 31 maps inside it, not 32.
  it('accepts 31 nested maps', () => {
    expect(checkStorable(item(nestedMaps(31)))).toBeUndefined();
  });

  it('rejects 32 nested maps, naming the path where the limit is crossed', () => {
    const problem = checkStorable(item(nestedMaps(32)));

    expect(problem).toEqual(unstorable(`Data${'.a'.repeat(31)}: nested deeper than DynamoDB's 32 levels`));
  });

  it('counts lists like maps', () => {
    expect(checkStorable(item(nestedLists(31)))).toBeUndefined();
    expect(checkStorable(item(nestedLists(32)))).toEqual(
      unstorable(`Data${'[0]'.repeat(31)}: nested deeper than DynamoDB's 32 levels`),
    );
  });
});

describe('checkStorable: keys, numbers, strings', () => {
  it('rejects an empty map key at the top of Data', () => {
    expect(checkStorable(item({ '': 1 }))).toEqual(unstorable('Data: has an empty key, which DynamoDB refuses'));
  });

  it('rejects an empty map key nested in lists and maps', () => {
    expect(checkStorable(item({ a: [{ b: { '': 1 } }] }))).toEqual(
      unstorable('Data.a[0].b: has an empty key, which DynamoDB refuses'),
    );
  });

  it.each([
    [1e200, '1e+200'],
    [-1e200, '-1e+200'],
    [1e-200, '1e-200'],
    [1e126, '1e+126'],
    [1e-131, '1e-131'],
  ])('rejects %d, outside the number range', (n, shown) => {
    expect(checkStorable(item({ n }))).toEqual(
      unstorable(`Data.n: ${shown} is outside DynamoDB's number range (1e-130 to 1e126); send it as a string`),
    );
  });

  it.each([0, -0, 1e125, 9.99e125, 1e-130, -1e-130, 12.5])('accepts %d, inside the range', (n) => {
    expect(checkStorable(item({ n }))).toBeUndefined();
  });

  it('rejects NaN and Infinity, which DynamoDB has no number for', () => {
    expect(checkStorable(item({ n: Number.NaN }))).toEqual(
      unstorable('Data.n: NaN is not a finite number; send it as a string'),
    );
    expect(checkStorable(item({ n: Number.POSITIVE_INFINITY }))).toEqual(
      unstorable('Data.n: Infinity is not a finite number; send it as a string'),
    );
  });

  it('rejects a key named __proto__ at any depth (the AWS SDK would turn it into a prototype and change the map)', () => {
    const data = JSON.parse('{"a":{"__proto__":{"x":1},"y":2}}') as Record<string, unknown>;

    expect(checkStorable(item(data))).toEqual(
      unstorable('Data.a: a key named __proto__ cannot be stored unchanged through the AWS SDK; rename it'),
    );
  });

  it('rejects a string with a lone surrogate', () => {
    expect(checkStorable(item({ s: 'a\uD800b' }))).toEqual(
      unstorable('Data.s: string has a lone surrogate (not valid UTF-8)'),
    );
  });

  it('rejects a map key with a lone surrogate', () => {
    expect(checkStorable(item({ ['k\uDC00']: 1 }))).toEqual(
      unstorable('Data: a key has a lone surrogate (not valid UTF-8)'),
    );
  });

  it('accepts a well-formed surrogate pair', () => {
    expect(checkStorable(item({ s: '\u{1F600}' }))).toBeUndefined();
  });

  it('rejects a value JSON cannot carry (a function), naming its type', () => {
    expect(checkStorable(item({ f: () => 1 }))).toEqual(unstorable('Data.f: function cannot be stored'));
  });

  it('skips attributes that are undefined', () => {
    expect(checkStorable(item(undefined))).toBeUndefined();
  });
});

describe('checkStorable: item size', () => {
  it('accepts a normal 1 KB event', () => {
    expect(
      checkStorable(item({ note: 'x'.repeat(800), lines: [{ sku: 'A', qty: 2 }], paid: true, ref: null })),
    ).toBeUndefined();
  });

  it('rejects an item over 400 KB as ItemTooLarge', () => {
    const problem = checkStorable(item({ blob: 'x'.repeat(400 * 1024) }));

    expect(problem).toEqual({
      reason: RejectionReason.ItemTooLarge,
      detail:
        "item: about 401 KB, over DynamoDB's 400 KB item limit; store large payloads elsewhere (S3) and send a reference",
    });
  });

  it('accepts an item of exactly 400 KB and rejects one byte more', () => {
    const base = itemBytes(item({ blob: '' }));
    const fits = item({ blob: 'x'.repeat(Limits.maxItemBytes - base) });
    const over = item({ blob: 'x'.repeat(Limits.maxItemBytes - base + 1) });

    expect(itemBytes(fits)).toBe(Limits.maxItemBytes);
    expect(checkStorable(fits)).toBeUndefined();
    expect(checkStorable(over)?.reason).toBe(RejectionReason.ItemTooLarge);
  });
});

describe('itemBytes: DynamoDB size accounting', () => {
  // DynamoDB's rules: attribute name bytes + value; string = UTF-8 bytes; number = about
  // 1 byte per 2 significant digits + 1; null/boolean = 1; map/list = 3 + 1 per element.
  it.each([
    ['a string', { a: 'xyz' }, 1 + 3],
    ['a multi-byte string', { a: 'é€' }, 1 + 5],
    ['a one-digit number', { n: 7 }, 1 + 2],
    ['a three-digit number', { n: 123 }, 1 + 3],
    ['a fraction', { n: 12.5 }, 1 + 3],
    ['a large round number', { n: 1e20 }, 1 + 2],
    ['a boolean and a null', { b: true, z: null }, 1 + 1 + 1 + 1],
    ['an empty map', { m: {} }, 1 + 3],
    ['a map with one entry', { m: { k: 1 } }, 1 + 3 + 1 + 1 + 2],
    ['a list of two numbers', { l: [1, 2] }, 1 + 3 + 2 * (1 + 2)],
    ['the keys of an event', { ID: 'order-1', Version: 1 }, 2 + 7 + 7 + 2],
  ])('counts %s', (_name, value, bytes) => {
    expect(itemBytes(value)).toBe(bytes);
  });

  it('ignores undefined attributes', () => {
    expect(itemBytes({ a: 'x', b: undefined })).toBe(2);
  });

  it('puts a typical 1 KB event at one write unit', () => {
    const bytes = itemBytes(item({ note: 'x'.repeat(800) }));

    expect(Math.ceil(bytes / 1024)).toBe(1);
  });
});

describe('numberBytes: a number counted as DynamoDB counts it', () => {
  // Every size below was measured on DynamoDB Local (the largest string that still fits beside
  // the number in a 400 KB item); test/integration/storable-dynamodb.test.ts checks the line.
  it.each([
    ['0', 1],
    ['-0.0', 1],
    ['7', 2],
    ['10', 2],
    ['99', 2],
    ['100', 2],
    ['1.1', 3],
    ['123.4', 4],
    ['200', 2],
    ['1234', 3],
    ['10000001', 5],
    ['9007199254740991', 9],
    ['1.1', 3],
    ['123.4', 4],
    ['1.10', 3],
    ['10.5', 3],
    ['12.5', 3],
    ['0.5', 2],
    ['0.01', 2],
    ['1.01e-3', 3],
    ['-1', 3],
    ['-99', 3],
    ['-101', 4],
    ['-1.1', 4],
    ['-0.01', 3],
    ['1e-130', 2],
    ['-1e-130', 3],
    ['1.5e-130', 3],
    ['1e125', 2],
    ['9.9999999999999999999999999999999999999e125', 20],
    ['-9.9999999999999999999999999999999999999e125', 21],
    ['12345678901234567890123456789012345678', 20],
    ['-12345678901234567890123456789012345678', 21],
    ['1.2345678901234567890123456789012345678', 21],
    // 20 pairs and a sign would be 22: DynamoDB stops at 21.
    ['-1.2345678901234567890123456789012345678', 21],
    ['-123456789012345678901234567890123456', 20],
  ])('%s takes %d bytes', (literal, bytes) => {
    expect(numberBytes(decimalParts(literal))).toBe(bytes);
  });

  it('counts a number in an item with the same rule, whether a double or an exact literal', () => {
    expect(itemBytes({ n: -1.1 })).toBe(1 + 4);
    expect(itemBytes({ n: new ExactNumber('-1.2345678901234567890123456789012345678') })).toBe(1 + 21);
    expect(itemBytes({ n: 0 })).toBe(1 + 1);
  });

  it('refuses at 400 KB what the old count (one byte per two digits, sign ignored) let through', () => {
    // 20,000 copies of -1.1 in Data: 4 bytes each, not 2.
    const data = { l: Array.from({ length: 20_000 }, () => -1.1) };
    const base = itemBytes(item({ l: [], pad: '' })) + 20_000 * (1 + 4);
    const fits = item({ ...data, pad: 'x'.repeat(Limits.maxItemBytes - base) });
    const over = item({ ...data, pad: 'x'.repeat(Limits.maxItemBytes - base + 1) });

    expect(itemBytes(fits)).toBe(Limits.maxItemBytes);
    expect(checkStorable(fits)).toBeUndefined();
    expect(checkStorable(over)?.reason).toBe(RejectionReason.ItemTooLarge);
  });
});

describe('ItemTooLarge does not depend on the version the event would get', () => {
  it('refuses at parse time an event that fits at version 1 but not at the longest version the store writes', async () => {
    const { eventItem, LARGEST_VERSION, PLACEHOLDER_RECORDED_AT, PLACEHOLDER_SEQUENCE, parseEvent, parseEventBody } =
      await import('../../core/event.ts');
    const base = {
      Timestamp: 1596719980,
      EventType: 'EVENT_EXAMPLE',
      ID: 'big-1',
      EmitterId: 'e',
      EmitterType: 'SYSTEM',
      EventId: 'big',
    };
    const sizeAt = (blob: number, version: number) => {
      const parsed = parseEvent({ ...base, Data: { blob: 'x'.repeat(blob) } });
      if (!parsed.ok) throw new Error(parsed.detail);
      if (parsed.kind !== 'event') throw new Error('expected one event, got a group');
      return itemBytes(eventItem(parsed.event, version, PLACEHOLDER_RECORDED_AT, PLACEHOLDER_SEQUENCE));
    };
    // The largest blob that fits at version 1, plus one byte: over only with the longest Version.
    let blob = Limits.maxItemBytes - 400;
    while (sizeAt(blob + 1, 1) <= Limits.maxItemBytes) blob += 1;

    const atLongest = sizeAt(blob, LARGEST_VERSION);
    const result = parseEventBody(JSON.stringify({ ...base, Data: { blob: 'x'.repeat(blob) } }));

    expect(sizeAt(blob, 1)).toBeLessThanOrEqual(Limits.maxItemBytes);
    expect(atLongest).toBeGreaterThan(Limits.maxItemBytes);
    expect(result).toMatchObject({ ok: false, reason: RejectionReason.ItemTooLarge });
  });
});

describe('one verdict for the ingest, the store and the redrive, at any version', () => {
  it('counts the Version at its largest size: no version the store can write takes more bytes', async () => {
    const { LARGEST_VERSION } = await import('../../core/event.ts');
    const largest = numberBytes(decimalParts(String(LARGEST_VERSION)));
    // Every size a whole number up to 2^53 - 1 can take, from 1 digit to 16.
    const versions = [1, 101, 200, 10_000_001, 1_010_101, 10_101_010_101_011, 1_010_101_010_101_011, LARGEST_VERSION];
    for (let digits = 1; digits <= 16; digits += 1) versions.push(Number('1'.repeat(digits)));

    expect(largest).toBe(9);
    expect(Math.max(...versions.map((version) => numberBytes(decimalParts(String(version)))))).toBe(largest);
  });

  it('the redrive keeps in the DLQ the body the ingest refuses at the 400 KB line, and sends the one it stores', async () => {
    // Prepare: 20,000 copies of -1.1 (4 bytes each, 2 by the old count) and the longest pad the ingest accepts.
    const { parseEventBody } = await import('../../core/event.ts');
    const { parseRedriveInput, planMessage } = await import('../../core/redrive.ts');
    const numbers = Array.from({ length: 20_000 }, () => '-1.1').join(',');
    const body = (pad: number) =>
      `{"Timestamp":1596719980,"EventType":"SIZE_PROBED","ID":"size-1","EmitterId":"e","EmitterType":"SYSTEM",` +
      `"Data":{"n":[${numbers}],"pad":"${'x'.repeat(pad)}"}}`;
    let accepted = 0;
    let refused = 409_600;
    while (refused - accepted > 1) {
      const middle = Math.floor((accepted + refused) / 2);
      if (parseEventBody(body(middle)).ok) accepted = middle;
      else refused = middle;
    }
    const input = parseRedriveInput({});
    if (!input.ok) throw new Error(input.cause);
    const dead = (text: string) => ({ MessageId: 'm-1', ReceiptHandle: 'rh-1', Body: text });

    // Act
    const sent = planMessage(dead(body(accepted)), input.options);
    const kept = planMessage(dead(body(accepted + 1)), input.options);

    // Assess: the same line as the ingest's, drawn where DynamoDB draws it (about 40,000 bytes
    // lower than the old count put it).
    expect(accepted).toBeLessThan(409_600 - 20_000 * 5);
    expect(sent.action).toBe('send');
    expect(kept).toMatchObject({ action: 'keep', outcome: 'stillRejected', reason: RejectionReason.ItemTooLarge });
  });
});
