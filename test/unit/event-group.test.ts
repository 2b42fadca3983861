import { describe, expect, it } from 'vitest';
import {
  checkGroupStorable,
  deriveEventId,
  deriveGroupEventId,
  GROUP_EVENT_FIELDS,
  messageEvents,
  parseEventBody,
  type ParseResult,
  type ValidGroup,
} from '../../core/event.ts';
import { Limits } from '../../core/keys.ts';
import { RejectionReason } from '../../core/reasons.ts';

/** One event of a group as a producer writes it: the event's own fields, no ID. */
function member(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Timestamp: 1596719980,
    EventType: 'ORDER_PLACED',
    EmitterId: 'checkout',
    EmitterType: 'SYSTEM',
    Data: { total: 12.5 },
    ...overrides,
  };
}

function groupBody(events: unknown, top: Record<string, unknown> = {}): string {
  return JSON.stringify({ ID: 'order-1', ...top, Events: events });
}

function accepted(result: ParseResult): ValidGroup {
  if (!result.ok) throw new Error(`expected the group to be accepted: ${result.detail}`);
  if (result.kind !== 'group') throw new Error('expected a group, got one event');
  return result.group;
}

function rejection(result: ParseResult): { reason: string; detail: string } {
  if (result.ok) throw new Error(`expected a rejection, got ${JSON.stringify(result)}`);
  return { reason: result.reason, detail: result.detail };
}

describe('parseEventBody: a body with Events is a group', () => {
  it('gives each event the group ID and its own EventId, in the order sent', () => {
    // Act
    const result = parseEventBody(
      groupBody([member(), member({ EventType: 'PAYMENT_RESERVED', EventId: 'pay-1' })], { ExpectedVersion: 3 }),
    );

    // Assess
    const group = accepted(result);
    expect(result).toMatchObject({ ok: true, kind: 'group', streamId: 'order-1' });
    expect(group.ID).toBe('order-1');
    expect(group.ExpectedVersion).toBe(3);
    expect(group.events.map((event) => [event.ID, event.EventType, event.EventId])).toEqual([
      ['order-1', 'ORDER_PLACED', expect.stringMatching(/^sha256:[0-9a-f]{64}$/)],
      ['order-1', 'PAYMENT_RESERVED', 'pay-1'],
    ]);
    expect(group.events.every((event) => event.ExpectedVersion === undefined)).toBe(true);
    expect(messageEvents(result as Extract<ParseResult, { ok: true }>)).toBe(group.events);
  });

  it('derives different EventIds for two equal events of one group, and the same ones for a resend with another ExpectedVersion', () => {
    // Act
    const first = accepted(parseEventBody(groupBody([member(), member()], { ExpectedVersion: 0 })));
    const resend = accepted(parseEventBody(groupBody([member(), member()], { ExpectedVersion: 7 })));

    // Assess
    const ids = first.events.map((event) => event.EventId);
    expect(new Set(ids).size).toBe(2);
    expect(resend.events.map((event) => event.EventId)).toEqual(ids);
  });

  it('derives EventIds from the whole group: the same event in another group, or alone, gets another one', () => {
    // Act
    const pair = accepted(parseEventBody(groupBody([member(), member({ EventType: 'PAYMENT_RESERVED' })])));
    const other = accepted(parseEventBody(groupBody([member(), member({ EventType: 'ORDER_CANCELLED' })])));

    // Assess
    expect(pair.events[0]!.EventId).not.toBe(other.events[0]!.EventId);
    expect(pair.events[0]!.EventId).not.toBe(deriveEventId({ ...member(), ID: 'order-1' } as never));
    expect(pair.events[1]!.EventId).toBe(
      deriveGroupEventId({ ID: 'order-1', Events: [member(), member({ EventType: 'PAYMENT_RESERVED' })] } as never, 1),
    );
  });

  it('accepts one event, and 100', () => {
    expect(accepted(parseEventBody(groupBody([member()]))).events).toHaveLength(1);
    const hundred = Array.from({ length: Limits.maxGroupEvents }, (_, index) => member({ Data: { index } }));
    expect(accepted(parseEventBody(groupBody(hundred))).events).toHaveLength(100);
  });
});

describe('parseEventBody: a group that breaks the contract is rejected whole, naming the event', () => {
  it.each([
    ['an empty list', [], 'Events: a group needs at least one event'],
    ['a list that is not one', { a: 1 }, 'Events: expected a list of events, got object {"a":1}'],
    [
      '101 events',
      Array.from({ length: 101 }, () => member()),
      "Events: 101 events, more than DynamoDB's 100 items a transaction; split the group",
    ],
  ])('rejects %s', (_name, events, detail) => {
    expect(rejection(parseEventBody(groupBody(events)))).toEqual({ reason: RejectionReason.SchemaViolation, detail });
  });

  it('names the event and the field of every problem', () => {
    // Act
    const result = parseEventBody(
      groupBody([member(), member({ Timestamp: 1596719980000 }), member({ EventType: 'lower', Extra: 1 })]),
    );

    // Assess
    const { reason, detail } = rejection(result);
    expect(reason).toBe(RejectionReason.SchemaViolation);
    expect(detail).toBe(
      [
        'Events[1].Timestamp: 1596719980000 looks like milliseconds; send seconds',
        'Events[2].EventType: "lower" must be upper snake case like EVENT_EXAMPLE',
        `Events[2].Extra: unknown field; allowed fields are ${GROUP_EVENT_FIELDS.join(', ')}`,
      ].join('; '),
    );
  });

  it('says where ID and ExpectedVersion go when an event carries them', () => {
    const { detail } = rejection(
      parseEventBody(groupBody([member({ ID: 'order-1' }), member({ ExpectedVersion: 1 })])),
    );

    expect(detail).toBe(
      'Events[0].ID: set once for the group, next to Events, not in an event; Events[1].ExpectedVersion: set once for the group, next to Events, not in an event',
    );
  });

  it('rejects a group without ID, or with an event field at the top', () => {
    expect(rejection(parseEventBody(JSON.stringify({ Events: [member()] }))).detail).toBe(
      'ID: required field is missing',
    );
    expect(rejection(parseEventBody(groupBody([member()], { EventType: 'X' }))).detail).toBe(
      'EventType: unknown field; allowed fields are ID, ExpectedVersion, Events',
    );
  });

  it('rejects two events with one EventId, naming both', () => {
    const result = parseEventBody(groupBody([member({ EventId: 'e-1' }), member(), member({ EventId: 'e-1' })]));

    expect(rejection(result)).toEqual({
      reason: RejectionReason.SchemaViolation,
      detail: 'Events[2].EventId: "e-1" is also the EventId of Events[0]; each event of a group needs its own',
    });
  });

  it("names the event DynamoDB could not store, with the store's reason", () => {
    const result = parseEventBody(groupBody([member(), member({ Data: { '': 1 } })]));

    expect(rejection(result)).toMatchObject({ reason: RejectionReason.UnstorableData });
    expect(rejection(result).detail).toMatch(/^Events\[1\]\.Data: /);
  });

  it('rejects an item over 400 KB as ItemTooLarge, naming the event', () => {
    const result = parseEventBody(groupBody([member(), member({ Data: { pad: 'x'.repeat(Limits.maxItemBytes) } })]));

    expect(rejection(result)).toMatchObject({ reason: RejectionReason.ItemTooLarge });
    expect(rejection(result).detail).toMatch(/^Events\[1\]\.item: about \d+ KB/);
  });

  it("refuses a group whose items together exceed DynamoDB's 4 MB a transaction, though each fits", () => {
    // 11 items of about 390 KB: each under 400 KB, 4.2 MB together. No body under SQS's 1 MiB
    // makes items this large (docs/ARCHITECTURE.md, "Groups"), so the group is built directly.
    const events = Array.from({ length: 11 }, (_, index) => ({
      ...(member({ Data: { index, pad: 'x'.repeat(390 * 1024) } }) as Omit<
        ValidGroup['events'][number],
        'ID' | 'EventId'
      >),
      ID: 'order-1',
      EventId: `e-${index}`,
    }));

    const problem = checkGroupStorable({ ID: 'order-1', events });

    expect(problem?.reason).toBe(RejectionReason.ItemTooLarge);
    expect(problem?.detail).toMatch(
      /^Events: the group's 11 items take about \d+ KB, over DynamoDB's 4 MB a transaction; split the group$/,
    );
    expect(checkGroupStorable({ ID: 'order-1', events: events.slice(0, 10) })).toBeUndefined();
  });

  it("rejects a body over SQS's 1 MiB, and accepts one just under it", () => {
    // Three events of about 340 KB each: a body just over or under 1 MiB, each item under 400 KB.
    const body = (pad: number) =>
      groupBody(Array.from({ length: 3 }, (_, index) => member({ Data: { index, pad: 'x'.repeat(pad) } })));
    const fixed = body(0).length;
    const under = Math.floor((Limits.maxMessageBytes - fixed) / 3);

    expect(Buffer.byteLength(body(under))).toBeLessThanOrEqual(Limits.maxMessageBytes);
    expect(accepted(parseEventBody(body(under))).events).toHaveLength(3);
    expect(rejection(parseEventBody(body(under + 1)))).toEqual({
      reason: RejectionReason.SchemaViolation,
      detail: `body: ${Buffer.byteLength(body(under + 1))} bytes, over SQS's 1048576 bytes (1 MiB) a message; split the group`,
    });
  });
});
