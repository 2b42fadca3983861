import { describe, expect, it } from 'vitest';
import { canonicalJson, deriveEventId, eventFingerprint, parseEventBody, type ValidEvent } from '../../core/event.ts';

const body = {
  Timestamp: 1596719980,
  EventType: 'EVENT_EXAMPLE',
  ID: 'order-1',
  EmitterId: 'checkout-service',
  EmitterType: 'SYSTEM',
  Data: { total: 12.5, lines: [{ sku: 'A', qty: 2 }] },
};

function eventOf(text: string): ValidEvent {
  const result = parseEventBody(text);
  if (!result.ok) throw new Error(`expected a valid event: ${result.detail}`);
  if (result.kind !== 'event') throw new Error('expected one event, got a group');
  return result.event;
}

describe('derived EventId', () => {
  it('is sha256: and 64 hex digits when the producer sent none', () => {
    const event = eventOf(JSON.stringify(body));

    expect(event.EventId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(event.EventId).toBe(deriveEventId(body));
  });

  it('is the same for the same event with keys in another order, at every level', () => {
    const reordered = `{"Data":{"lines":[{"qty":2,"sku":"A"}],"total":12.5},"EmitterType":"SYSTEM","EmitterId":"checkout-service","ID":"order-1","EventType":"EVENT_EXAMPLE","Timestamp":1596719980}`;

    const first = eventOf(JSON.stringify(body));
    const second = eventOf(reordered);

    expect(second.EventId).toBe(first.EventId);
  });

  it('is the same with insignificant whitespace', () => {
    const spaced = JSON.stringify(body, null, 2);

    expect(eventOf(spaced).EventId).toBe(eventOf(JSON.stringify(body)).EventId);
  });

  it.each([
    ['Timestamp', { Timestamp: 1596719981 }],
    ['Timestamp as ISO text', { Timestamp: '2020-08-06T13:19:40Z' }],
    ['EventType', { EventType: 'EVENT_OTHER' }],
    ['ID', { ID: 'order-2' }],
    ['EmitterId', { EmitterId: 'other-service' }],
    ['EmitterType', { EmitterType: 'USER' }],
    ['Data value', { Data: { total: 12.6, lines: [{ sku: 'A', qty: 2 }] } }],
    [
      'Data array order',
      {
        Data: {
          total: 12.5,
          lines: [
            { sku: 'A', qty: 2 },
            { sku: 'B', qty: 1 },
          ],
        },
      },
    ],
    ['Data absent', { Data: undefined }],
    ['Data null', { Data: null }],
  ])('differs when %s differs', (_field, change) => {
    const changed = JSON.stringify({ ...body, ...change });

    expect(eventOf(changed).EventId).not.toBe(eventOf(JSON.stringify(body)).EventId);
  });

  it('is the same whatever ExpectedVersion says (a write condition, not content): a retry after re-reading the stream is recognised', () => {
    const first = eventOf(JSON.stringify({ ...body, ExpectedVersion: 0 }));
    const retried = eventOf(JSON.stringify({ ...body, ExpectedVersion: 1 }));

    expect(retried.EventId).toBe(first.EventId);
    expect(first.EventId).toBe(eventOf(JSON.stringify(body)).EventId);
  });

  it('keeps an EventId the producer sent, as is', () => {
    const event = eventOf(JSON.stringify({ ...body, EventId: 'producer-key-42' }));

    expect(event.EventId).toBe('producer-key-42');
  });
});

describe('canonicalJson', () => {
  it('sorts object keys at every level, keeps array order, drops undefined members', () => {
    const text = canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined }, e: null });

    expect(text).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1,"e":null}');
  });

  it('writes a lone undefined as null', () => {
    expect(canonicalJson(undefined)).toBe('null');
  });
});

describe('eventFingerprint', () => {
  it('ignores EventId and ExpectedVersion but not the content', () => {
    const event = eventOf(JSON.stringify(body));
    const sameContent = { ...event, EventId: 'other', ExpectedVersion: 9 };
    const otherContent = { ...event, Data: { total: 1 } };

    expect(eventFingerprint(sameContent)).toBe(eventFingerprint(event));
    expect(eventFingerprint(otherContent)).not.toBe(eventFingerprint(event));
  });
});
