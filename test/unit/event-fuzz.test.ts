import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { messageEvents, parseEventBody } from '../../core/event.ts';
import { ALL_REJECTION_REASONS } from '../../core/reasons.ts';

const seed = Number(process.env['FC_SEED'] ?? Date.now() % 2 ** 31);

/** The property every body must satisfy: a result, never a throw, and a usable rejection. */
function wellFormedResult(body: string): void {
  const result = parseEventBody(body);
  if (result.ok) {
    for (const event of messageEvents(result)) expect(event.EventId.length).toBeGreaterThan(0);
    return;
  }
  expect(ALL_REJECTION_REASONS).toContain(result.reason);
  expect(result.detail.length).toBeGreaterThan(0);
}

/** Values near the contract, so the fuzzer reaches deep into the schema, not just JSON.parse. */
const nearlyAnEvent = fc.record(
  {
    Timestamp: fc.oneof(
      fc.double(),
      fc.integer(),
      fc.string(),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    ),
    EventType: fc.oneof(fc.stringMatching(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/), fc.string()),
    ID: fc.string({ maxLength: 1100 }),
    EmitterId: fc.string(),
    EmitterType: fc.string(),
    Data: fc.oneof(fc.object(), fc.jsonValue()),
    EventId: fc.string({ maxLength: 140 }),
    ExpectedVersion: fc.oneof(fc.integer(), fc.double(), fc.string()),
    Extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);

describe('parseEventBody never throws', () => {
  it('for arbitrary strings', () => {
    console.log(
      `parseEventBody fuzz (arbitrary strings): seed ${seed}; checks no throw, known reason, non-empty detail`,
    );
    fc.assert(fc.property(fc.string({ unit: 'binary' }), wellFormedResult), { seed, verbose: true, numRuns: 2000 });
  });

  it('for arbitrary JSON values', () => {
    console.log(`parseEventBody fuzz (arbitrary JSON): seed ${seed}; checks no throw, known reason, non-empty detail`);
    fc.assert(
      fc.property(fc.jsonValue(), (value) => wellFormedResult(JSON.stringify(value))),
      { seed, verbose: true, numRuns: 2000 },
    );
  });

  it('for objects close to an event', () => {
    console.log(`parseEventBody fuzz (near-events): seed ${seed}; checks no throw, known reason, non-empty detail`);
    fc.assert(
      fc.property(nearlyAnEvent, (value) => wellFormedResult(JSON.stringify(value))),
      { seed, verbose: true, numRuns: 2000 },
    );
  });
});
