import { describe, expect, it } from 'vitest';
import {
  MAX_OPTIONS_BYTES,
  RECEIVE_LEASE_SECONDS,
  fixBody,
  matchesFilter,
  parseRedriveInput,
  planMessage,
  unappliedFix,
  unstorableFixValue,
  type DeadLetterMessage,
  type RedriveOptions,
} from '../../core/redrive.ts';
import { HistoryEvents, continuation, startRedrive } from '../../core/redrive-run.ts';
import { jsonBytes } from '../../core/redrive-budget.ts';
import { parseEventBody } from '../../core/event.ts';
import { fifoGroupId } from '../../core/fifo.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { UnknownRedriveActionError, createRedriveHandler } from '../../handlers/redrive.ts';
import { validEvent, type EventBody } from '../support/factories.ts';

const NOW = Date.parse('2026-11-24T10:00:00.000Z');

/** A dead-lettered order event without `Data`; tests change one field at a time. */
const event = (overrides: EventBody = {}): EventBody =>
  validEvent({ EventType: 'ORDER_PLACED', ID: 'order-1', EmitterId: 'checkout', Data: undefined, ...overrides });

const message = (body: unknown, extra: Partial<DeadLetterMessage> = {}): DeadLetterMessage => ({
  MessageId: 'm-1',
  ReceiptHandle: 'rh-1',
  Body: typeof body === 'string' ? body : JSON.stringify(body),
  ...extra,
});

interface GroupBody {
  ID: string;
  ExpectedVersion?: number;
  Events: EventBody[];
}

/**
 * A dead-lettered group of order-1: ORDER_PLACED then PAYMENT_RESERVED, each event overridable
 * (a field set to `undefined` is left out of the JSON).
 */
const group = (overrides: EventBody[] = [], top: Partial<GroupBody> = {}): GroupBody => ({
  ID: 'order-1',
  ...top,
  Events: [
    {
      Timestamp: 1596719980,
      EventType: 'ORDER_PLACED',
      EmitterId: 'checkout',
      EmitterType: 'SYSTEM',
      Data: { total: 12.5 },
      ...overrides[0],
    },
    {
      Timestamp: 1596719980,
      EventType: 'PAYMENT_RESERVED',
      EmitterId: 'payments',
      EmitterType: 'SYSTEM',
      ...overrides[1],
    },
  ],
});

function options(input: Record<string, unknown> = {}): RedriveOptions {
  const parsed = parseRedriveInput(input);
  if (!parsed.ok) throw new Error(parsed.cause);
  return parsed.options;
}

describe('parseRedriveInput', () => {
  it('accepts {} and fills the defaults', () => {
    // Act
    const parsed = parseRedriveInput({});

    // Assess
    expect(parsed).toEqual({
      ok: true,
      options: { dryRun: false, maxMessages: 1000, batchSize: 10, visibilityTimeoutSeconds: 900 },
    });
  });

  it('treats a missing input (null) as {}', () => {
    expect(parseRedriveInput(null)).toMatchObject({ ok: true, options: { maxMessages: 1000 } });
  });

  it('accepts a field of an event of a group: Events.<i>.<field> and Events.<i>.Data.<key>, i from 0 to 99', () => {
    // Prepare
    const fix = {
      set: { 'Events.0.EventType': 'ORDER_PLACED', 'Events.99.Data.total': 12 },
      setJson: { 'Events.1.Data.amountMinor': '12345678901234567890' },
      remove: ['Events.1.Legacy', 'Events.10.Data.tmp'],
    };

    // Act / Assess
    expect(parseRedriveInput({ fix })).toMatchObject({ ok: true, options: { fix } });
    // Measured as the ingest stores the event (an item of its own): as deep as a single event's Data may go, and one more is refused
    const nested = (levels: number) => Array.from({ length: levels }).reduce<unknown>((inner) => ({ a: inner }), 1);
    expect(unstorableFixValue('Events.1.Data.x', nested(30))).toBeUndefined();
    expect(unstorableFixValue('Data.x', nested(30))).toBeUndefined();
    expect(unstorableFixValue('Events.1.Data.x', nested(31))).toMatch(
      /^UnstorableData: Events\[1\]\.Data\.x(\.a){30}: nested deeper than DynamoDB's 32 levels$/,
    );
    expect(unstorableFixValue('Events.1.Data.x', { a: 1 })).toBeUndefined();
  });

  it('accepts every option', () => {
    // Prepare
    const input = {
      dryRun: true,
      maxMessages: 5,
      batchSize: 2,
      visibilityTimeoutSeconds: 120,
      filter: { EventType: 'ORDER_PLACED', ExpectedVersion: 3 },
      fix: { set: { EmitterType: 'SYSTEM', 'Data.currency': 'EUR' }, remove: ['Legacy', 'Data.tmp'] },
    };

    // Act / Assess
    expect(parseRedriveInput(input)).toEqual({ ok: true, options: input });
  });

  it.each([
    [{ dryRun: 'yes' }, 'Invalid redrive input: dryRun: expected true or false'],
    [{ maxMessages: 0 }, 'Invalid redrive input: maxMessages: must be at least 1'],
    [{ maxMessages: 2.5 }, 'Invalid redrive input: maxMessages: expected a whole number'],
    [{ maxMessages: 100_001 }, 'Invalid redrive input: maxMessages: at most 100000 per execution'],
    [{ batchSize: 11 }, 'Invalid redrive input: batchSize: expected a whole number from 1 to 10'],
    [
      { visibilityTimeoutSeconds: 119 },
      'Invalid redrive input: visibilityTimeoutSeconds: expected a whole number of seconds from 120 to 43200',
    ],
    [
      { filter: 'ORDER_PLACED' },
      'Invalid redrive input: filter: expected an object of field: value, like {"EventType": "ORDER_PLACED"}',
    ],
    [{ filter: { 'Data.x': 1 } }, 'Invalid redrive input: filter: "Data.x" is not a top-level field name'],
    [
      { filter: { EventType: { a: 1 } } },
      'Invalid redrive input: filter.EventType: expected a string, number, boolean or null',
    ],
    [
      { fix: { rename: {} } },
      'Invalid redrive input: fix.rename: unknown key; allowed are "set", "setJson" and "remove"',
    ],
    [
      { fix: { setJson: { Amount: 12 } } },
      'Invalid redrive input: fix.setJson: expected each value as its JSON text, like "12345678901234567890"',
    ],
    [
      { fix: { setJson: { Amount: '12,' } } },
      expect.stringMatching(/^Invalid redrive input: fix\.setJson: "Amount": not JSON \(/),
    ],
    [
      { fix: { setJson: { 'Data.amount': '1e400' } } },
      "Invalid redrive input: fix.setJson: UnstorableData: Data.amount: 1e400 is outside DynamoDB's number range (1e-130 to 1e126); send it as a string",
    ],
    [
      { fix: { setJson: { 'Data.amount': '1e-400' } } },
      "Invalid redrive input: fix.setJson: UnstorableData: Data.amount: 1e-400 is outside DynamoDB's number range (1e-130 to 1e126); send it as a string",
    ],
    [
      { fix: { setJson: { 'Data.amount': '1'.repeat(39) } } },
      `Invalid redrive input: fix.setJson: UnstorableData: Data.amount: ${'1'.repeat(39)} has 39 significant digits; DynamoDB keeps at most 38; send it as a string`,
    ],
    [
      { fix: { set: { 'Data.x': Number.POSITIVE_INFINITY } } },
      'Invalid redrive input: fix.set: UnstorableData: Data.x: Infinity is not a finite number; send it as a string',
    ],
    [
      { fix: { set: { 'Data.x': { '': 1 } } } },
      'Invalid redrive input: fix.set: UnstorableData: Data.x: has an empty key, which DynamoDB refuses',
    ],
    [
      { fix: { set: { EmitterType: 'A' }, setJson: { EmitterType: '"B"' } } },
      'Invalid redrive input: fix: "EmitterType" is in both set and setJson',
    ],
    [{ fix: [] }, 'Invalid redrive input: fix: expected an object like {"set": {...}, "remove": [...]}'],
    [{ fix: 'EmitterType' }, 'Invalid redrive input: fix: expected an object like {"set": {...}, "remove": [...]}'],
    [{ fix: { set: [] } }, 'Invalid redrive input: fix.set: expected an object of field: value'],
    [
      { filter: [] },
      'Invalid redrive input: filter: expected an object of field: value, like {"EventType": "ORDER_PLACED"}',
    ],
    [[], 'Invalid redrive input: the input must be a JSON object like {"dryRun": true}'],
    [
      { fix: { set: { 'Data.': 1 } } },
      'Invalid redrive input: "Data." is not a field: use a top-level field like "EmitterType", "Data.<key>", or "Events.<i>.<field>" for event i (from 0) of a group',
    ],
    [{ fix: { remove: 'Legacy' } }, 'Invalid redrive input: fix.remove: expected a list of field names'],
    [
      { fix: { set: { 'Events.1': {} } } },
      'Invalid redrive input: "Events.1" is not a field: use a top-level field like "EmitterType", "Data.<key>", or "Events.<i>.<field>" for event i (from 0) of a group',
    ],
    [
      { fix: { remove: ['Events.01.Legacy'] } },
      'Invalid redrive input: "Events.01.Legacy" is not a field: use a top-level field like "EmitterType", "Data.<key>", or "Events.<i>.<field>" for event i (from 0) of a group',
    ],
    [
      { fix: { remove: ['Events.-1.Legacy'] } },
      'Invalid redrive input: "Events.-1.Legacy" is not a field: use a top-level field like "EmitterType", "Data.<key>", or "Events.<i>.<field>" for event i (from 0) of a group',
    ],
    [
      { fix: { set: { 'Events.100.EmitterType': 'SYSTEM' } } },
      'Invalid redrive input: "Events.100.EmitterType": a group has at most 100 events (Events.0 to Events.99)',
    ],
    [
      { fix: { setJson: { 'Events.1.Data.amount': '1e400' } } },
      "Invalid redrive input: fix.setJson: UnstorableData: Events[1].Data.amount: 1e400 is outside DynamoDB's number range (1e-130 to 1e126); send it as a string",
    ],
    [
      { dryrun: true },
      'Invalid redrive input: dryrun: unknown option; allowed are dryRun, maxMessages, batchSize, visibilityTimeoutSeconds, filter, fix',
    ],
    ['go', 'Invalid redrive input: the input must be a JSON object like {"dryRun": true}'],
  ])('rejects %j with a clear reason', (input, cause) => {
    expect(parseRedriveInput(input)).toEqual({ ok: false, cause });
  });
});

describe('matchesFilter', () => {
  it('matches everything without a filter', () => {
    expect(matchesFilter('not an object', undefined)).toBe(true);
  });

  it('needs every field to be equal', () => {
    expect(matchesFilter(event(), { EventType: 'ORDER_PLACED', ID: 'order-1' })).toBe(true);
    expect(matchesFilter(event(), { EventType: 'ORDER_PLACED', ID: 'order-2' })).toBe(false);
  });

  it('does not match a missing field, even against null, nor a body that is not an object', () => {
    expect(matchesFilter(event(), { Legacy: null })).toBe(false);
    expect(matchesFilter([1], { ID: 'order-1' })).toBe(false);
  });

  it("matches a group when one of its events has every value, the group's ID and ExpectedVersion counted as the event's", () => {
    expect(matchesFilter(group(), { EventType: 'PAYMENT_RESERVED' })).toBe(true);
    expect(matchesFilter(group(), { ID: 'order-1', EventType: 'ORDER_PLACED', EmitterId: 'checkout' })).toBe(true);
    expect(matchesFilter(group([], { ExpectedVersion: 3 }), { ExpectedVersion: 3, EmitterId: 'payments' })).toBe(true);
    // Every value on one event: ORDER_PLACED is from checkout, not from payments
    expect(matchesFilter(group(), { EventType: 'ORDER_PLACED', EmitterId: 'payments' })).toBe(false);
    expect(matchesFilter(group(), { ID: 'order-2', EventType: 'ORDER_PLACED' })).toBe(false);
    expect(matchesFilter(group(), { EventType: 'ORDER_SHIPPED' })).toBe(false);
    // Events that are not objects match nothing; a body whose Events is not a list is matched as it is
    expect(matchesFilter({ ID: 'order-1', Events: [1, null] }, { ID: 'order-1' })).toBe(false);
    expect(matchesFilter({ ID: 'order-1', Events: 'x' }, { ID: 'order-1' })).toBe(true);
  });
});

describe('fixBody', () => {
  it('without a fix, returns the body byte for byte (whitespace, 1.50, escapes and all)', () => {
    const body = '{ "ID" : "a\\u00e9", "Data": {"amount": 1.50, "big": 12345678901234567890} }';
    expect(fixBody(body, undefined)).toBe(body);
    expect(fixBody(body, {})).toBe(body);
    expect(fixBody(body, { set: {}, remove: [] })).toBe(body);
  });

  it('sets and removes top-level and Data fields, keeping the other fields in their order', () => {
    // Act
    const fixed = fixBody(JSON.stringify(event({ EmitterType: '', Legacy: 1, Data: { tmp: true, total: 3 } })), {
      set: { EmitterType: 'SYSTEM', 'Data.currency': 'EUR' },
      remove: ['Legacy', 'Data.tmp'],
    });

    // Assess
    expect(fixed).toBe(JSON.stringify(event({ EmitterType: 'SYSTEM', Data: { total: 3, currency: 'EUR' } })));
  });

  it('with a fix, every value it does not name keeps its exact text: numbers, escapes, nulls', () => {
    // Prepare
    const body =
      '{"Timestamp":1596719980.000,"EventType":"ORDER_PLACED","ID":"caf\\u00e9","EmitterId":"c","EmitterType":"",' +
      '"Data":{"amountMinor":12345678901234567890,"price":1.50,"tiny":1e-7,"note":"a\\/b","none":null,"list":[1.0,2e0]}}';

    // Act
    const fixed = fixBody(body, { set: { EmitterType: 'SYSTEM' } });

    // Assess: only EmitterType changed
    expect(fixed).toBe(body.replace('"EmitterType":""', '"EmitterType":"SYSTEM"'));
  });

  it('a fix over Data: null replaces it; removing under a scalar does nothing', () => {
    expect(fixBody('{"ID":"a","Data":null}', { set: { 'Data.x': 1 } })).toBe('{"ID":"a","Data":{"x":1}}');
    expect(fixBody('{"ID":"a","Data":7}', { remove: ['Data.x'] })).toBe('{"ID":"a","Data":7}');
  });

  it('creates Data (and nested objects) when absent, and ignores removing what is not there', () => {
    expect(
      JSON.parse(fixBody(JSON.stringify(event()), { set: { 'Data.a.b': 1 }, remove: ['Nothing', 'Data.x.y'] })!),
    ).toEqual(event({ Data: { a: { b: 1 } } }));
  });

  it('setJson writes each value exactly as its JSON text: numbers a double cannot hold, 1.50, nested objects', () => {
    // Act
    const fixed = fixBody('{"ID":"a","Data":{"keep":1.0}}', {
      setJson: {
        'Data.amountMinor': '12345678901234567890',
        'Data.price': '1.50',
        'Data.tiny': '1E-130',
        Meta: '{"n": 2.000}',
      },
      remove: ['Meta.n'],
    });

    // Assess: every literal as given; remove applies after, inside a value setJson wrote
    expect(fixed).toBe(
      '{"ID":"a","Data":{"keep":1.0,"amountMinor":12345678901234567890,"price":1.50,"tiny":1E-130},"Meta":{}}',
    );
  });

  it('sets and removes a field of one event of a group, keeping every other value of the group as written', () => {
    // Prepare
    const body =
      '{"ID":"order-1","Events":[{"Timestamp":1596719980,"EventType":"ORDER_PLACED","EmitterId":"c","EmitterType":"S","Data":{"total":12.50}},' +
      '{"Timestamp":1596719980.0,"EventType":"PAYMENT_RESERVED","EmitterId":"p","Legacy":true,"Data":{"big":12345678901234567890}}]}';

    // Act
    const fixed = fixBody(body, {
      set: { 'Events.1.EmitterType': 'SYSTEM' },
      setJson: { 'Events.1.Data.amountMinor': '1250', 'Events.0.Data.currency': '"EUR"' },
      remove: ['Events.1.Legacy'],
    });

    // Assess
    expect(fixed).toBe(
      '{"ID":"order-1","Events":[{"Timestamp":1596719980,"EventType":"ORDER_PLACED","EmitterId":"c","EmitterType":"S","Data":{"total":12.50,"currency":"EUR"}},' +
        '{"Timestamp":1596719980.0,"EventType":"PAYMENT_RESERVED","EmitterId":"p","Data":{"big":12345678901234567890,"amountMinor":1250},"EmitterType":"SYSTEM"}]}',
    );
  });

  it('never creates an event: a path into an event the message does not have changes nothing (set or remove)', () => {
    const body = JSON.stringify(group());
    expect(fixBody(body, { set: { 'Events.2.EmitterType': 'SYSTEM' }, remove: ['Events.5.Legacy'] })).toBe(body);
    const single = JSON.stringify(event());
    expect(fixBody(single, { set: { 'Events.0.EmitterType': 'SYSTEM' }, remove: ['Events.0.Data'] })).toBe(single);
    expect(fixBody('{"ID":"a","Events":[7]}', { set: { 'Events.0.EmitterType': 'S' } })).toBe(
      '{"ID":"a","Events":[7]}',
    );
  });

  it('cannot fix a body that is not a JSON object', () => {
    expect(fixBody('{oops', { set: { EmitterType: 'SYSTEM' } })).toBeUndefined();
    expect(fixBody('[1]', { set: { EmitterType: 'SYSTEM' } })).toBeUndefined();
  });
});

describe('planMessage', () => {
  it('sends a valid event back byte for byte, counting the redrive', () => {
    // Prepare
    const body =
      '{ "Timestamp": 1596719980, "EventType": "ORDER_PLACED", "ID": "order-1", "EmitterId": "c", "EmitterType": "S", "Data": {"x": 1.50} }';
    const dead = message(body, {
      MessageAttributes: { [MessageAttributeNames.redriveCount]: { DataType: 'Number', StringValue: '2' } },
    });

    // Act
    const plan = planMessage(dead, options());

    // Assess
    expect(plan).toEqual({
      action: 'send',
      streamId: 'order-1',
      message: {
        body,
        messageAttributes: {
          [MessageAttributeNames.redriveCount]: { DataType: 'Number', StringValue: '3' },
          [MessageAttributeNames.redrivenFrom]: { DataType: 'String', StringValue: 'm-1' },
        },
        groupId: 'order-1',
        deduplicationId: 'redrive-m-1',
      },
    });
  });

  it("FIFO group ids follow the rejecter's rule: an ID SQS refuses as a group id falls back the same way", () => {
    const id = 'order 1 with spaces é';
    const plan = planMessage(
      message(event({ ID: id }), { Attributes: { MessageGroupId: 'producer-group' } }),
      options(),
    );
    expect(plan).toMatchObject({ action: 'send', message: { groupId: fifoGroupId(id, 'producer-group', 'm-1') } });
    expect(fifoGroupId(id, 'producer-group', 'm-1')).toBe('producer-group');
    expect(planMessage(message(event({ ID: id })), options())).toMatchObject({
      message: { groupId: expect.stringMatching(/^sha256-[0-9a-f]{64}$/) },
    });
  });

  it("re-validates with the ingest's own rules: a number DynamoDB cannot hold stays rejected", () => {
    const body = JSON.stringify(event()).replace('}', ',"Data":{"huge":1e200}}');
    expect(planMessage(message(body), options())).toMatchObject({
      action: 'keep',
      outcome: 'stillRejected',
      reason: 'UnstorableData',
    });
  });

  it('sends the fixed JSON when a fix applies; a bad RedriveCount counts as none', () => {
    // Prepare
    const { EmitterType: _drop, ...body } = event();
    const dead = message(body, {
      MessageAttributes: { [MessageAttributeNames.redriveCount]: { DataType: 'Number', StringValue: 'x' } },
    });

    // Act
    const plan = planMessage(dead, options({ fix: { set: { EmitterType: 'USER' } } }));

    // Assess
    if (plan.action !== 'send') throw new Error(`kept: ${plan.reason}`);
    expect(JSON.parse(plan.message.body)).toEqual(event({ EmitterType: 'USER' }));
    expect(plan.message.messageAttributes[MessageAttributeNames.redriveCount]).toEqual({
      DataType: 'Number',
      StringValue: '1',
    });
  });

  it('keeps what the fix does not make valid, with the current reason', () => {
    expect(planMessage(message(event({ EventType: 'bad' })), options())).toEqual({
      action: 'keep',
      outcome: 'stillRejected',
      streamId: 'order-1',
      reason: 'SchemaViolation',
      detail: 'EventType: "bad" must be upper snake case like EVENT_EXAMPLE',
    });
  });

  it('keeps a body that is not JSON as InvalidJson', () => {
    const plan = planMessage(message('{oops'), options());
    expect(plan).toMatchObject({ action: 'keep', outcome: 'stillRejected', reason: 'InvalidJson', streamId: null });
    expect(plan.action === 'keep' && plan.detail).toMatch(/^body: not JSON \(/);
  });

  it('keeps a body that is JSON but not an object as InvalidJson', () => {
    expect(planMessage(message('[1]'), options())).toMatchObject({
      outcome: 'stillRejected',
      reason: 'InvalidJson',
      detail: 'body: expected a JSON object, got array',
    });
  });

  it('keeps an event DynamoDB would refuse', () => {
    expect(planMessage(message(event({ Data: { '': 1 } })), options())).toMatchObject({
      outcome: 'stillRejected',
      reason: 'UnstorableData',
      detail: 'Data: has an empty key, which DynamoDB refuses',
    });
  });

  it('skips what the filter does not match, before fixing (a non-JSON body never matches)', () => {
    const opts = options({ filter: { EventType: 'ORDER_SHIPPED' }, fix: { set: { EventType: 'ORDER_SHIPPED' } } });
    expect(planMessage(message(event()), opts)).toEqual({
      action: 'keep',
      streamId: 'order-1',
      outcome: 'skippedByFilter',
      reason: 'NotMatchedByFilter',
      detail: 'the event does not match the filter',
    });
    expect(planMessage(message('nope'), opts)).toMatchObject({ detail: expect.stringMatching(/^body is not JSON \(/) });
  });

  it('fixes one event of a group and validates the whole group again: sent when every event is valid', () => {
    // Prepare: event 1 lacks EmitterType
    const body = group([{}, { EmitterType: undefined }], { ExpectedVersion: 4 });

    // Act
    const plan = planMessage(message(body), options({ fix: { set: { 'Events.1.EmitterType': 'SYSTEM' } } }));
    const unfixed = planMessage(message(body), options());

    // Assess
    if (plan.action !== 'send') throw new Error(`kept: ${plan.reason} ${plan.detail}`);
    expect(JSON.parse(plan.message.body)).toEqual(group([], { ExpectedVersion: 4 }));
    expect(plan).toMatchObject({ streamId: 'order-1', message: { groupId: 'order-1' } });
    expect(unfixed).toEqual({
      action: 'keep',
      streamId: 'order-1',
      outcome: 'stillRejected',
      reason: 'SchemaViolation',
      detail: 'Events[1].EmitterType: required field is missing',
    });
  });

  it('the same fix of the same group gives the same body, so its derived EventIds are the same on every run (a copy sent twice is a duplicate)', () => {
    // Prepare: a group without EventIds whose second event lacks EmitterType
    const dead = message(group([{}, { EmitterType: undefined }]));
    const fix = options({ fix: { set: { 'Events.1.EmitterType': 'SYSTEM' } } });

    // Act
    const [first, second] = [planMessage(dead, fix), planMessage(dead, fix)];
    const ids = (plan: typeof first) => {
      const parsed = plan.action === 'send' ? parseEventBody(plan.message.body) : undefined;
      return parsed?.ok && parsed.kind === 'group' ? parsed.group.events.map((event) => event.EventId) : [];
    };

    // Assess: two events with their own derived EventIds, equal across runs, other than the fixed event's
    expect(ids(first)).toHaveLength(2);
    expect(ids(second)).toEqual(ids(first));
    const other = planMessage(dead, options({ fix: { set: { 'Events.1.EmitterType': 'USER' } } }));
    expect(ids(other)[0]).not.toBe(ids(first)[0]);
  });

  it("keeps a group whose fix leaves another event invalid, naming that event; a single event's fix does not reach a group's events", () => {
    // Prepare: both events lack EmitterType
    const both = group([{ EmitterType: undefined }, { EmitterType: undefined }]);

    // Act
    const one = planMessage(message(both), options({ fix: { set: { 'Events.0.EmitterType': 'SYSTEM' } } }));
    const topLevel = planMessage(message(both), options({ fix: { set: { EmitterType: 'SYSTEM' } } }));

    // Assess
    expect(one).toMatchObject({
      outcome: 'stillRejected',
      reason: 'SchemaViolation',
      detail: 'Events[1].EmitterType: required field is missing',
    });
    expect(topLevel).toMatchObject({
      outcome: 'stillRejected',
      reason: 'SchemaViolation',
      detail: expect.stringContaining('EmitterType: unknown field; allowed fields are ID, ExpectedVersion, Events'),
    });
  });

  it('keeps a message that has no event at the index a set names (FixNotApplicable), and says why', () => {
    // Act
    const outOfRange = planMessage(message(group()), options({ fix: { set: { 'Events.2.EmitterType': 'SYSTEM' } } }));
    const single = planMessage(message(event()), options({ fix: { setJson: { 'Events.0.Data.total': '1' } } }));
    const removeOnly = planMessage(message(group()), options({ fix: { remove: ['Events.7.Legacy'] } }));

    // Assess
    expect(outOfRange).toEqual({
      action: 'keep',
      streamId: 'order-1',
      outcome: 'stillRejected',
      reason: 'FixNotApplicable',
      detail: 'fix.set: "Events.2.EmitterType" names Events[2], but the group has 2 events (Events.0 to Events.1)',
    });
    expect(single).toMatchObject({
      outcome: 'stillRejected',
      reason: 'FixNotApplicable',
      detail:
        'fix.setJson: "Events.0.Data.total" names Events[0], but the message is not a group (it has no Events list)',
    });
    // Removing what is not there changes nothing, as for any field: the group is valid and goes back
    expect(removeOnly).toMatchObject({ action: 'send', message: { body: JSON.stringify(group()) } });
    expect(unappliedFix({ ID: 'a', Events: [{}] }, { set: { 'Events.1.X': 1, 'Events.0.X': 1 } })).toBe(
      'fix.set: "Events.1.X" names Events[1], but the group has 1 event (Events.0)',
    );
    expect(unappliedFix({ ID: 'a', Events: ['x'] }, { set: { 'Events.0.X': 1 } })).toBe(
      'fix.set: "Events.0.X" names Events[0], which is not an object',
    );
  });

  it('filters a group by the fields of its events before fixing it', () => {
    // Prepare
    const body = group([{}, { EmitterType: undefined }]);
    const fix = { set: { 'Events.1.EmitterType': 'SYSTEM' } };

    // Act
    const matched = planMessage(message(body), options({ filter: { EventType: 'PAYMENT_RESERVED' }, fix }));
    const skipped = planMessage(message(body), options({ filter: { EventType: 'ORDER_SHIPPED' }, fix }));

    // Assess
    expect(matched).toMatchObject({ action: 'send', streamId: 'order-1' });
    expect(skipped).toMatchObject({ action: 'keep', outcome: 'skippedByFilter', reason: 'NotMatchedByFilter' });
  });

  it('in a dry run, reports what would be redriven and sends nothing', () => {
    expect(planMessage(message(event()), options({ dryRun: true }))).toEqual({
      action: 'keep',
      streamId: 'order-1',
      outcome: 'wouldRedrive',
      reason: 'DryRun',
      detail: null,
    });
  });
});

describe('startRedrive', () => {
  it('opens the run with the visibility window, the first execution and the history it has used', () => {
    // Act
    const run = startRedrive({ maxMessages: 3, visibilityTimeoutSeconds: 120 }, { executionId: 'arn:first', now: NOW });

    // Assess: nothing read stays hidden after holdUntil; no receive starts a lease before it
    expect(run).toMatchObject({
      valid: true,
      cause: null,
      held: [],
      heldBytes: 0,
      pending: [],
      holdUntil: NOW + 120_000,
      receiveUntil: NOW + (120 - RECEIVE_LEASE_SECONDS) * 1000,
      returnsBy: 0,
      historyEvents: HistoryEvents.start,
      next: 'receive',
      report: {
        startedAt: '2026-11-24T10:00:00.000Z',
        stoppedBecause: null,
        stayed: [],
        executions: ['arn:first'],
        executionsNotListed: 0,
        notReleased: 0,
        failedBatches: 0,
        failedBatchMessagesAtMost: 0,
        hiddenUntil: null,
      },
    });
  });

  it('a successor takes over the run so far and adds itself to the executions', () => {
    // Prepare
    const first = startRedrive({ dryRun: true }, { executionId: 'arn:first', now: NOW });
    if (!first.valid) throw new Error(first.cause);

    // Act
    const pending = [{ receiptHandle: 'rh-1', messageId: 'm-1', streamId: 'order-1' }];
    const next = startRedrive(
      {
        ...continuation({ ...first, pending }),
        AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: 'arn:first',
      },
      { executionId: 'arn:second', now: NOW + 1000 },
    );

    // Assess: the run's window, and the sends the parent left for it to delete
    expect(next).toMatchObject({
      valid: true,
      options: { dryRun: true },
      receiveUntil: first.receiveUntil,
      holdUntil: first.holdUntil,
      pending,
      report: { startedAt: '2026-11-24T10:00:00.000Z', executions: ['arn:first', 'arn:second'] },
      held: [],
    });
  });

  it('says why the input is invalid', () => {
    expect(startRedrive({ maxMessages: 'all' }, { executionId: 'x', now: NOW })).toEqual({
      valid: false,
      cause: 'Invalid redrive input: maxMessages: expected a whole number',
    });
  });

  it('refuses a filter and fix too large to travel in the state', () => {
    expect(
      startRedrive({ fix: { set: { 'Data.blob': 'x'.repeat(40_000) } } }, { executionId: 'x', now: NOW }),
    ).toMatchObject({
      valid: false,
      cause: expect.stringMatching(
        /^Invalid redrive input: the options take \d+ bytes of JSON \(UTF-8\); at most 32768/,
      ),
    });
  });

  // The options' budget is bytes of UTF-8 (how Step Functions counts), not characters.
  it.each([
    ['1-byte', 'a'],
    ['2-byte', 'é'],
    ['3-byte', '東'],
    ['4-byte', '𝄞'],
  ])('options of exactly %s characters up to 32,768 bytes pass; one byte more is refused', (_script, character) => {
    // Prepare: the value that makes the options' JSON exactly MAX_OPTIONS_BYTES bytes
    const withNote = (note: string) => ({ fix: { set: { 'Data.note': note } } });
    const empty = parseRedriveInput(withNote(''));
    if (!empty.ok) throw new Error(empty.cause);
    const room = MAX_OPTIONS_BYTES - jsonBytes(empty.options);
    const width = Buffer.byteLength(character);
    const note = 'x'.repeat(room % width) + character.repeat(Math.floor(room / width));

    // Act
    const atLimit = parseRedriveInput(withNote(note));
    const over = parseRedriveInput(withNote(`${note}x`));

    // Assess
    expect(atLimit.ok && jsonBytes(atLimit.options)).toBe(MAX_OPTIONS_BYTES);
    expect(over).toEqual({
      ok: false,
      cause: `Invalid redrive input: the options take ${MAX_OPTIONS_BYTES + 1} bytes of JSON (UTF-8); at most ${MAX_OPTIONS_BYTES} (they travel in the workflow's state)`,
    });
  });
});

describe('redrive handler', () => {
  it('refuses an unknown action by name', async () => {
    // Prepare: the action is refused before any queue is touched
    const handle = createRedriveHandler({
      queues: {
        receive: async () => [],
        send: async () => undefined,
        delete: async () => [],
        hold: async () => [],
        release: async () => [],
      },
      fifo: false,
    });

    // Act / Assess
    await expect(handle({ action: 'explode' } as never)).rejects.toMatchObject({
      name: 'UnknownRedriveActionError',
      message: 'redrive: unknown action "explode"; expected start, batch, recover or finish',
    });
    await expect(handle({ action: 'explode' } as never)).rejects.toBeInstanceOf(UnknownRedriveActionError);
  });
});
