import { describe, expect, it } from 'vitest';
import { parseEventBody } from '../../core/event.ts';
import { RejectionReason } from '../../core/reasons.ts';

const body = (data: string) =>
  `{"Timestamp":1596719980,"EventType":"EVENT_EXAMPLE","ID":"n-1","EmitterId":"e","EmitterType":"SYSTEM","Data":${data}}`;

describe('numbers a JSON parser would round', () => {
  it('rejects a literal with more digits than a double keeps, naming the field', () => {
    const result = parseEventBody(body('{"amount":12345678901234567890}'));

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.UnstorableData,
      detail: 'amount: 12345678901234567890: more digits than a number keeps exactly (about 15); send it as a string',
      streamId: 'n-1',
    });
  });

  it('accepts literals that parse to exactly the value written, in any notation', () => {
    for (const literal of ['0', '-0', '1.0', '0.1', '1e2', '1.5E-7', '-12.50', '9007199254740991', '0.000001', '123456789012345']) {
      const result = parseEventBody(body(`{"x":${literal}}`));
      expect(result.ok, literal).toBe(true);
    }
  });

  it('says a literal beyond the double range is out of range, not imprecise', () => {
    const result = parseEventBody(body('{"huge":1e400}'));

    expect(result).toEqual({
      ok: false,
      reason: RejectionReason.UnstorableData,
      detail: 'huge: 1e400: beyond the largest number a JSON parser keeps (about 1.8e308); send it as a string',
      streamId: 'n-1',
    });
  });

  it('rejects a fraction that would be rounded', () => {
    const result = parseEventBody(body('{"price":0.1000000000000000055511151231257827}'));

    expect(result).toMatchObject({ ok: false, reason: RejectionReason.UnstorableData });
  });
});
