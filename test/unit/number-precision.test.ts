import { describe, expect, it } from 'vitest';
import { canonicalJson, eventFingerprint, parseEventBody } from '../../core/event.ts';
import { ExactNumber, fitsDouble, normalNumberText, parseJsonExact, parseJsonVerbatim } from '../../core/json.ts';
import { RejectionReason } from '../../core/reasons.ts';

const body = (data: string) =>
  `{"Timestamp":1596719980,"EventType":"EVENT_EXAMPLE","ID":"n-1","EmitterId":"e","EmitterType":"SYSTEM","Data":${data}}`;

describe('numbers exactly as sent (the original design stored them with Decimal)', () => {
  it.each([
    '12345678901234567890',
    '0.1000000000000000055511151231257827',
    '-9007199254740993',
    `1.${'0'.repeat(36)}1`,
  ])('keeps %s as the literal sent, and writes it back unchanged', (literal) => {
    const result = parseEventBody(body(`{"amountMinor":${literal}}`));

    expect(result.ok).toBe(true);
    const amount = result.ok && result.kind === 'event' ? result.event.Data?.['amountMinor'] : undefined;
    expect(amount).toBeInstanceOf(ExactNumber);
    expect(JSON.stringify(result.ok && result.kind === 'event' && result.event.Data)).toBe(
      `{"amountMinor":${literal}}`,
    );
  });

  it('keeps a number a double holds exactly as a plain number, in any notation', () => {
    for (const [literal, value] of [
      ['0', 0],
      ['1.0', 1],
      ['0.1', 0.1],
      ['1e2', 100],
      ['1.5E-7', 1.5e-7],
      ['-12.50', -12.5],
      ['9007199254740991', 9007199254740991],
      ['1e20', 1e20],
    ] as const) {
      const result = parseEventBody(body(`{"x":${literal}}`));
      expect(result.ok && result.kind === 'event' && result.event.Data?.['x'], literal).toBe(value);
    }
  });

  it('refuses what DynamoDB cannot hold: 39 significant digits, beyond 1e126, below 1e-130', () => {
    for (const literal of [`1${'1'.repeat(38)}`, '1e126', '1e-131']) {
      const result = parseEventBody(body(`{"x":${literal}}`));
      expect(result, literal).toMatchObject({ ok: false, reason: RejectionReason.UnstorableData, streamId: 'n-1' });
    }
  });

  it('gives the same fingerprint and derived EventId however the producer spelled the same value', () => {
    const a = parseEventBody(body('{"x":12345678901234567890}'));
    const b = parseEventBody(body('{"x":1.2345678901234567890e19}'));

    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok || a.kind !== 'event' || b.kind !== 'event') return;
    expect(eventFingerprint(a.event)).toBe(eventFingerprint(b.event));
    expect(a.event.EventId).toBe(b.event.EventId);
    // ...and a different value a double would confuse with it does not.
    const c = parseEventBody(body('{"x":12345678901234567891}'));
    expect(c.ok && c.kind === 'event' && eventFingerprint(c.event)).not.toBe(eventFingerprint(a.event));
  });

  it('writes an exact number in canonical JSON by its value', () => {
    expect(canonicalJson({ x: new ExactNumber('12345678901234567890.000') })).toBe('{"x":1.234567890123456789e19}');
    expect(normalNumberText('-0.00120e3')).toBe('-1.2e0');
    expect(fitsDouble('0.1')).toBe(true);
    expect(fitsDouble('0.1000000000000000055511151231257827')).toBe(false);
  });

  it('parseJsonExact and parseJsonVerbatim round-trip every value text', () => {
    const text = '{"a":12345678901234567890,"b":1.50,"c":"\\u00e9","d":[true,null,-0]}';

    expect(JSON.stringify(parseJsonVerbatim(text))).toBe(text);
    expect(JSON.stringify(parseJsonExact(text))).toBe('{"a":12345678901234567890,"b":1.5,"c":"é","d":[true,null,0]}');
  });
});
