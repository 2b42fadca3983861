import { describe, expect, it } from 'vitest';
import * as v from 'valibot';
import { EVENT_FIELDS, EventSchema, parseEvent, parseEventBody, type ParseResult } from '../../core/event.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { validEvent as factoryEvent, type EventBody } from '../support/factories.ts';

/**
 * The factories' valid event, without `Data`; tests change one field at a time, to any value
 * (fields of the wrong type on purpose, hence the cast).
 */
function validEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return factoryEvent({ ID: 'order-1', EmitterId: 'checkout-service', Data: undefined, ...(overrides as EventBody) });
}

/** The same event without `field`, as a body would arrive. */
function without(field: string): Record<string, unknown> {
  const event = validEvent();
  delete event[field];
  return event;
}

function rejection(result: ParseResult): { reason: string; detail: string } {
  if (result.ok) throw new Error(`expected a rejection, got ${JSON.stringify(result)}`);
  return { reason: result.reason, detail: result.detail };
}

const schemaViolation = (detail: string) => ({ reason: RejectionReason.SchemaViolation, detail });
const allowed = EVENT_FIELDS.join(', ');
const isoMessage = (text: string) =>
  `Timestamp: ${JSON.stringify(text)} is not an ISO-8601 date-time with a zone (for example 2020-08-06T13:19:40Z)`;

describe('parseEventBody: the body must be a JSON object', () => {
  it.each([
    ['not json', 'body: not JSON (Unexpected token \'o\', "not json" is not valid JSON)'],
    ['', 'body: not JSON (Unexpected end of JSON input)'],
    ['{"Timestamp":', 'body: not JSON (Unexpected end of JSON input)'],
  ])('rejects the non-JSON body %j as InvalidJson', (body, detail) => {
    // Act
    const result = parseEventBody(body);

    // Assess
    expect(result).toEqual({ ok: false, reason: RejectionReason.InvalidJson, detail, streamId: undefined });
  });

  it.each([
    ['[1]', 'array'],
    ['null', 'null'],
    ['"EVENT"', 'string'],
    ['42', 'number'],
    ['true', 'boolean'],
  ])('rejects the JSON value %s, which is not an object, as InvalidJson', (body, type) => {
    const result = parseEventBody(body);

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.InvalidJson,
      detail: `body: expected a JSON object, got ${type}`,
      streamId: undefined,
    });
  });

  it('accepts a valid body and returns the event with a derived EventId', () => {
    const body = JSON.stringify(validEvent({ Data: { total: 12.5 } }));

    const result = parseEventBody(body);

    expect(result.ok).toBe(true);
    expect(result.ok && result.kind === 'event' && result.event).toEqual({
      ...validEvent({ Data: { total: 12.5 } }),
      EventId: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
  });
});

describe('parseEvent: required fields', () => {
  it.each(['Timestamp', 'EventType', 'ID', 'EmitterId', 'EmitterType'])('rejects an event without %s', (field) => {
    const result = parseEvent(without(field));

    expect(rejection(result)).toEqual(schemaViolation(`${field}: required field is missing`));
  });

  it('lists every missing field of an empty object', () => {
    const result = parseEventBody('{}');

    expect(rejection(result)).toEqual(
      schemaViolation(
        'Timestamp: required field is missing; EventType: required field is missing; ID: required field is missing; ' +
          'EmitterId: required field is missing; EmitterType: required field is missing',
      ),
    );
  });

  it('accepts an event with only the required fields and Data, EventId, ExpectedVersion absent', () => {
    const result = parseEvent(validEvent());

    expect(result.ok).toBe(true);
  });
});

describe('parseEvent: Timestamp', () => {
  it.each([
    ['Unix seconds', 1596719980],
    ['fractional seconds', 1596719980.123],
    ['zero (the epoch)', 0],
    ['exactly 1e11, the last value read as seconds', 1e11],
    ['ISO with Z', '2020-08-06T13:19:40Z'],
    ['ISO with fraction and offset', '2020-08-06T15:19:40.123+02:00'],
    ['ISO with negative offset', '2020-08-06T08:19:40-05:00'],
    ['ISO with a compact offset', '2020-08-06T15:19:40+0200'],
    ['ISO without seconds', '2020-08-06T13:19Z'],
    ['ISO on a leap day', '2020-02-29T00:00:00Z'],
    ['ISO in year 0099 (Date.UTC would read it as 1999)', '0099-01-01T00:00:00Z'],
    ['ISO on the last second of 9999', '9999-12-31T23:59:59Z'],
  ])('accepts %s', (_name, Timestamp) => {
    const result = parseEvent(validEvent({ Timestamp }));

    expect(result.ok && result.kind === 'event' && result.event.Timestamp).toBe(Timestamp);
  });

  it('rejects milliseconds with the exact hint', () => {
    const result = parseEvent(validEvent({ Timestamp: 1596719980000 }));

    expect(rejection(result)).toEqual(
      schemaViolation('Timestamp: 1596719980000 looks like milliseconds; send seconds'),
    );
  });

  it('rejects the first value above 1e11 as milliseconds', () => {
    const result = parseEvent(validEvent({ Timestamp: 100000000001 }));

    expect(rejection(result)).toEqual(schemaViolation('Timestamp: 100000000001 looks like milliseconds; send seconds'));
  });

  it('rejects a negative number', () => {
    const result = parseEvent(validEvent({ Timestamp: -1 }));

    expect(rejection(result)).toEqual(schemaViolation('Timestamp: -1 is negative; send Unix epoch seconds'));
  });

  it('rejects NaN, which only a caller of parseEvent (not a JSON body) can pass', () => {
    const result = parseEvent(validEvent({ Timestamp: Number.NaN }));

    expect(rejection(result)).toEqual(
      schemaViolation(
        'Timestamp: expected Unix epoch seconds (number) or an ISO-8601 date-time string, got number NaN',
      ),
    );
  });

  it('rejects -Infinity as not finite (and negative: the pipe reports every rule it breaks)', () => {
    const result = parseEvent(validEvent({ Timestamp: Number.NEGATIVE_INFINITY }));

    expect(rejection(result)).toEqual(
      schemaViolation(
        'Timestamp: -Infinity is not a finite number; Timestamp: -Infinity is negative; send Unix epoch seconds',
      ),
    );
  });

  it.each([
    ['boolean true', true],
    ['null null', null],
    ['object {"s":1}', { s: 1 }],
    ['array [1596719980]', [1596719980]],
  ])('rejects a Timestamp of the wrong type (%s)', (shown, Timestamp) => {
    const result = parseEvent(validEvent({ Timestamp }));

    expect(rejection(result)).toEqual(
      schemaViolation(`Timestamp: expected Unix epoch seconds (number) or an ISO-8601 date-time string, got ${shown}`),
    );
  });

  it.each([
    ['without a zone', '2020-08-06T13:19:40'],
    ['a date only', '2020-08-06'],
    ['an impossible date', '2020-02-30T00:00:00Z'],
    ['Feb 29 in a common year', '2021-02-29T00:00:00Z'],
    ['month 13', '2020-13-01T00:00:00Z'],
    ['hour 25', '2020-02-03T25:00:00Z'],
    ['minute 60', '2020-02-03T10:60:00Z'],
    ['second 60', '2020-02-03T10:00:60Z'],
    ['offset +24:00', '2020-02-03T01:00:00+24:00'],
    ['offset minutes 60', '2020-02-03T01:00:00+01:60'],
    ['a space instead of T', '2020-08-06 13:19:40Z'],
    ['a numeric string', '1596719980'],
    ['NaN as text', 'NaN'],
    ['an empty string', ''],
  ])('rejects an ISO string %s', (_name, text) => {
    const result = parseEvent(validEvent({ Timestamp: text }));

    expect(rejection(result)).toEqual(schemaViolation(isoMessage(text)));
  });
});

describe('parseEvent: EventType', () => {
  it.each(['EVENT_EXAMPLE', 'A', 'ORDER_PLACED_V2', 'X1_2_3'])('accepts %s', (EventType) => {
    expect(parseEvent(validEvent({ EventType })).ok).toBe(true);
  });

  it.each(['event_example', 'Event', '_EVENT', 'EVENT_', 'EVENT__EXAMPLE', '1EVENT', 'EVENT-EXAMPLE', 'EVENT EXAMPLE'])(
    'rejects %j, which is not upper snake case',
    (EventType) => {
      const result = parseEvent(validEvent({ EventType }));

      expect(rejection(result)).toEqual(
        schemaViolation(`EventType: ${JSON.stringify(EventType)} must be upper snake case like EVENT_EXAMPLE`),
      );
    },
  );

  it('accepts 256 characters and rejects 257', () => {
    const longest = parseEvent(validEvent({ EventType: 'A'.repeat(256) }));
    const tooLong = parseEvent(validEvent({ EventType: 'A'.repeat(257) }));

    expect(longest.ok).toBe(true);
    expect(rejection(tooLong)).toEqual(schemaViolation('EventType: at most 256 characters'));
  });

  it('rejects an empty EventType, naming both rules it breaks', () => {
    const result = parseEvent(validEvent({ EventType: '' }));

    expect(rejection(result)).toEqual(
      schemaViolation('EventType: must not be empty; EventType: "" must be upper snake case like EVENT_EXAMPLE'),
    );
  });

  it('rejects a number', () => {
    const result = parseEvent(validEvent({ EventType: 5 }));

    expect(rejection(result)).toEqual(schemaViolation('EventType: expected a string, got number 5'));
  });
});

describe('parseEvent: ID', () => {
  it('accepts 1 and 1024 characters', () => {
    expect(parseEvent(validEvent({ ID: 'a' })).ok).toBe(true);
    expect(parseEvent(validEvent({ ID: 'a'.repeat(1024) })).ok).toBe(true);
  });

  it('rejects 1025 characters and gives no stream id for it', () => {
    const result = parseEvent(validEvent({ ID: 'a'.repeat(1025) }));

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.SchemaViolation,
      detail: 'ID: at most 1024 characters',
      streamId: undefined,
    });
  });

  it('rejects an ID over 2048 UTF-8 bytes even under 1024 characters', () => {
    const ID = '€'.repeat(683); // 683 characters, 2049 bytes

    const result = parseEvent(validEvent({ ID }));

    expect(rejection(result)).toEqual(
      schemaViolation("ID: at most 2048 bytes in UTF-8 (DynamoDB's partition key limit)"),
    );
  });

  it('accepts exactly 2048 UTF-8 bytes', () => {
    const ID = `${'€'.repeat(682)}ab`; // 2046 + 2 bytes

    expect(parseEvent(validEvent({ ID })).ok).toBe(true);
  });

  it('rejects an empty ID', () => {
    const result = parseEvent(validEvent({ ID: '' }));

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.SchemaViolation,
      detail: 'ID: must not be empty',
      streamId: undefined,
    });
  });

  it('rejects a numeric ID', () => {
    const result = parseEvent(validEvent({ ID: 42 }));

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.SchemaViolation,
      detail: 'ID: expected a string, got number 42',
      streamId: undefined,
    });
  });

  it('reports the stream id of an otherwise invalid event, for logs and the DLQ', () => {
    const result = parseEvent(validEvent({ EmitterId: '' }));

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.SchemaViolation,
      detail: 'EmitterId: must not be empty',
      streamId: 'order-1',
    });
  });
});

describe('parseEvent: EmitterId and EmitterType', () => {
  it('rejects both empty, listing both', () => {
    const result = parseEvent(validEvent({ EmitterId: '', EmitterType: '' }));

    expect(rejection(result)).toEqual(schemaViolation('EmitterId: must not be empty; EmitterType: must not be empty'));
  });

  it('accepts free text in EmitterType', () => {
    expect(parseEvent(validEvent({ EmitterType: 'a batch job, nightly' })).ok).toBe(true);
  });

  it.each([
    ['EmitterId', null, 'null null'],
    ['EmitterType', ['USER'], 'array ["USER"]'],
  ])('rejects %s of the wrong type', (field, value, shown) => {
    const result = parseEvent(validEvent({ [field]: value }));

    expect(rejection(result)).toEqual(schemaViolation(`${field}: expected a string, got ${shown}`));
  });
});

describe('parseEvent: Data', () => {
  it.each([
    ['an empty object', {}],
    ['a nested object', { order: { lines: [{ sku: 'A', qty: 2 }] }, note: null }],
    // The original design's own tests send it; it is stored as null.
    ['null', null],
  ])('accepts %s', (_name, Data) => {
    const result = parseEvent(validEvent({ Data }));

    expect(result.ok && result.kind === 'event' && result.event.Data).toEqual(Data);
  });

  it.each([
    ['array', [1], 'array [1]'],
    ['string', 'x', 'string "x"'],
    ['number', 3, 'number 3'],
  ])('rejects Data that is %s', (_name, Data, shown) => {
    const result = parseEvent(validEvent({ Data }));

    expect(rejection(result)).toEqual(schemaViolation(`Data: expected a JSON object or null, got ${shown}`));
  });

  it('shortens a long value in the detail to 80 characters', () => {
    const result = parseEvent(validEvent({ Data: 'x'.repeat(200) }));

    expect(rejection(result)).toEqual(
      schemaViolation(`Data: expected a JSON object or null, got string "${'x'.repeat(76)}...`),
    );
  });
});

describe('parseEvent: EventId', () => {
  it('keeps 1 and 128 characters as sent', () => {
    const one = parseEvent(validEvent({ EventId: 'e' }));
    const longest = parseEvent(validEvent({ EventId: 'e'.repeat(128) }));

    expect(one.ok && one.kind === 'event' && one.event.EventId).toBe('e');
    expect(longest.ok && longest.kind === 'event' && longest.event.EventId).toBe('e'.repeat(128));
  });

  it('rejects 129 characters', () => {
    const result = parseEvent(validEvent({ EventId: 'e'.repeat(129) }));

    expect(rejection(result)).toEqual(schemaViolation('EventId: at most 128 characters'));
  });

  it('rejects an empty EventId', () => {
    const result = parseEvent(validEvent({ EventId: '' }));

    expect(rejection(result)).toEqual(schemaViolation('EventId: must not be empty'));
  });

  it('rejects a numeric EventId', () => {
    const result = parseEvent(validEvent({ EventId: 7 }));

    expect(rejection(result)).toEqual(schemaViolation('EventId: expected a string, got number 7'));
  });
});

describe('parseEvent: ExpectedVersion', () => {
  it.each([0, 1, 41])('accepts %d', (ExpectedVersion) => {
    const result = parseEvent(validEvent({ ExpectedVersion }));

    expect(result.ok && result.kind === 'event' && result.event.ExpectedVersion).toBe(ExpectedVersion);
  });

  it('rejects a fraction', () => {
    const result = parseEvent(validEvent({ ExpectedVersion: 1.5 }));

    expect(rejection(result)).toEqual(schemaViolation('ExpectedVersion: 1.5 is not an integer'));
  });

  it('rejects a negative integer', () => {
    const result = parseEvent(validEvent({ ExpectedVersion: -1 }));

    expect(rejection(result)).toEqual(
      schemaViolation('ExpectedVersion: -1 is negative; 0 means the stream must not exist yet'),
    );
  });

  it('rejects a numeric string', () => {
    const result = parseEvent(validEvent({ ExpectedVersion: '1' }));

    expect(rejection(result)).toEqual(schemaViolation('ExpectedVersion: expected an integer >= 0, got string "1"'));
  });
});

describe('parseEvent: unknown fields and several problems', () => {
  it('rejects an unknown top-level field, listing the allowed ones', () => {
    const result = parseEvent(validEvent({ Payload: {} }));

    expect(rejection(result)).toEqual(schemaViolation(`Payload: unknown field; allowed fields are ${allowed}`));
  });

  it('rejects a field that differs only in case', () => {
    const result = parseEvent(validEvent({ eventId: 'x' }));

    expect(rejection(result)).toEqual(schemaViolation(`eventId: unknown field; allowed fields are ${allowed}`));
  });

  it('accepts unknown fields inside Data', () => {
    expect(parseEvent(validEvent({ Data: { Anything: 1, Payload: {} } })).ok).toBe(true);
  });

  it('lists several problems together, in field order, one detail', () => {
    const body = JSON.stringify(validEvent({ Timestamp: 1596719980000, EventType: 'bad', Legacy: true }));

    const result = parseEventBody(body);

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.SchemaViolation,
      detail:
        'Timestamp: 1596719980000 looks like milliseconds; send seconds; ' +
        'EventType: "bad" must be upper snake case like EVENT_EXAMPLE; ' +
        `Legacy: unknown field; allowed fields are ${allowed}`,
      streamId: 'order-1',
    });
  });
});

describe('parseEventBody: numbers exactly as sent', () => {
  it('says a top-level number literal of any length is not an event', () => {
    const result = parseEventBody('12345678901234567890');

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.InvalidJson,
      detail: 'body: expected a JSON object, got number',
      streamId: undefined,
    });
  });

  it('keeps 38 significant digits, and refuses 39 naming the field and the count', () => {
    const kept = parseEventBody(JSON.stringify(validEvent()).replace('}', `,"Data":{"ratio":0.${'1'.repeat(38)}}}`));
    const refused = parseEventBody(JSON.stringify(validEvent()).replace('}', `,"Data":{"ratio":0.${'1'.repeat(39)}}}`));

    expect(kept.ok && kept.kind === 'event' && JSON.stringify(kept.event.Data)).toBe(`{"ratio":0.${'1'.repeat(38)}}`);
    expect(refused).toEqual({
      ok: false,
      reason: RejectionReason.UnstorableData,
      detail: `Data.ratio: 0.${'1'.repeat(39)} has 39 significant digits; DynamoDB keeps at most 38; send it as a string`,
      streamId: 'order-1',
    });
  });

  it('refuses a body nested thousands deep as UnstorableData instead of overflowing the stack (and failing the batch)', () => {
    for (const depth of [40, 2_500, 20_000]) {
      const data = `${'{"k":'.repeat(depth)}1${'}'.repeat(depth)}`;

      const result = parseEventBody(JSON.stringify(validEvent()).replace('}', `,"Data":${data}}`));

      expect(result, String(depth)).toMatchObject({ ok: false, reason: RejectionReason.UnstorableData });
    }
  });

  it("refuses a literal beyond DynamoDB's range (1e126) as UnstorableData, naming the field", () => {
    const result = parseEventBody(JSON.stringify(validEvent()).replace('}', ',"Data":{"huge":1e400}}'));

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.UnstorableData,
      detail: "Data.huge: 1e400 is outside DynamoDB's number range (1e-130 to 1e126); send it as a string",
      streamId: 'order-1',
    });
  });

  it('refuses a Timestamp literal beyond the double range as a number that looks like milliseconds', () => {
    const result = parseEventBody(JSON.stringify(validEvent()).replace('1596719980', '1e400'));

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.SchemaViolation,
      detail: 'Timestamp: 1e400 is not a finite number',
      streamId: 'order-1',
    });
  });
});

describe('EventSchema and details of values JSON cannot carry', () => {
  it('describes a value JSON.stringify cannot write (a BigInt) with String()', () => {
    const result = parseEvent(validEvent({ Data: 10n }));

    expect(rejection(result)).toEqual(schemaViolation('Data: expected a JSON object or null, got bigint 10'));
  });

  it('names the input type when the schema itself is given a non-object', () => {
    const result = v.safeParse(EventSchema, 5);

    expect(result.success).toBe(false);
    expect(result.issues?.[0]?.message).toBe('expected a JSON object, got number');
  });
});
