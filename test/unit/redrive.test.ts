import { describe, expect, it } from 'vitest';
import {
  MAX_LISTED,
  MAX_RELEASED,
  VISIBILITY_MARGIN_SECONDS,
  applyFix,
  matchesFilter,
  parseRedriveInput,
  planBatch,
  planMessage,
  startRedrive,
  tallyBatch,
  type DeadLetterMessage,
  type ItemResult,
  type RedriveOptions,
  type RedriveState,
} from '../../core/redrive.ts';
import { UnknownRedriveActionError, handler } from '../../handlers/redrive-prepare.ts';

const NOW = Date.parse('2026-11-24T10:00:00.000Z');

const event = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  Timestamp: 1596719980,
  EventType: 'ORDER_PLACED',
  ID: 'order-1',
  EmitterId: 'checkout',
  EmitterType: 'SYSTEM',
  ...overrides,
});

const message = (body: unknown, extra: Partial<DeadLetterMessage> = {}): DeadLetterMessage => ({
  MessageId: 'm-1',
  ReceiptHandle: 'rh-1',
  Body: typeof body === 'string' ? body : JSON.stringify(body),
  ...extra,
});

function options(input: Record<string, unknown> = {}): RedriveOptions {
  const parsed = parseRedriveInput(input);
  if (!parsed.ok) throw new Error(parsed.cause);
  return parsed.options;
}

function started(input: Record<string, unknown> = {}): RedriveState {
  const result = startRedrive(input, NOW);
  if (!result.valid) throw new Error(result.cause);
  return { options: result.options, summary: result.summary };
}

const result = (n: number, outcome: ItemResult['outcome'], extra: Partial<ItemResult> = {}): ItemResult => ({
  messageId: `m-${n}`,
  receiptHandle: `rh-${n}`,
  streamId: `s-${n}`,
  outcome,
  reason: outcome === 'stillRejected' ? 'SchemaViolation' : null,
  detail: outcome === 'stillRejected' ? 'EmitterType: required field is missing' : null,
  ...extra,
});

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
      { visibilityTimeoutSeconds: 10 },
      'Invalid redrive input: visibilityTimeoutSeconds: expected a whole number of seconds from 60 to 43200',
    ],
    [{ filter: 'ORDER_PLACED' }, 'Invalid redrive input: filter: expected an object of field: value, like {"EventType": "ORDER_PLACED"}'],
    [{ filter: { 'Data.x': 1 } }, 'Invalid redrive input: filter: "Data.x" is not a top-level field name'],
    [{ filter: { EventType: { a: 1 } } }, 'Invalid redrive input: filter.EventType: expected a string, number, boolean or null'],
    [{ fix: { rename: {} } }, 'Invalid redrive input: fix.rename: unknown key; allowed are "set" and "remove"'],
    [{ fix: [] }, 'Invalid redrive input: fix: expected an object like {"set": {...}, "remove": [...]}'],
    [{ fix: 'EmitterType' }, 'Invalid redrive input: fix: expected an object like {"set": {...}, "remove": [...]}'],
    [{ fix: { set: [] } }, 'Invalid redrive input: fix.set: expected an object of field: value'],
    [{ filter: [] }, 'Invalid redrive input: filter: expected an object of field: value, like {"EventType": "ORDER_PLACED"}'],
    [[], 'Invalid redrive input: the input must be a JSON object like {"dryRun": true}'],
    [
      { fix: { set: { 'Data.': 1 } } },
      'Invalid redrive input: "Data." is not a field: use a top-level field like "EmitterType" or "Data.<key>"',
    ],
    [{ fix: { remove: 'Legacy' } }, 'Invalid redrive input: fix.remove: expected a list of field names'],
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
});

describe('applyFix', () => {
  it('sets and removes top-level and Data fields without changing the input', () => {
    // Prepare
    const input = { ...event({ EmitterType: '', Legacy: 1, Data: { tmp: true, total: 3 } }) };
    const before = structuredClone(input);

    // Act
    const fixed = applyFix(input, {
      set: { EmitterType: 'SYSTEM', 'Data.currency': 'EUR' },
      remove: ['Legacy', 'Data.tmp'],
    });

    // Assess
    expect(fixed).toEqual(event({ EmitterType: 'SYSTEM', Data: { total: 3, currency: 'EUR' } }));
    expect(input).toEqual(before);
  });

  it('creates Data (and nested objects) when absent, and ignores removing what is not there', () => {
    expect(applyFix(event(), { set: { 'Data.a.b': 1 }, remove: ['Nothing', 'Data.x.y'] })).toEqual(
      event({ Data: { a: { b: 1 } } }),
    );
  });

  it('returns a copy when there is no fix', () => {
    const input = event();
    const fixed = applyFix(input, undefined);
    expect(fixed).toEqual(input);
    expect(fixed).not.toBe(input);
  });
});

describe('planMessage', () => {
  it('sends a valid event back as it was, counting the redrive', () => {
    // Prepare
    const body = '{"Timestamp":1596719980,"EventType":"ORDER_PLACED","ID":"order-1","EmitterId":"c","EmitterType":"S"}';
    const dead = message(body, {
      MessageAttributes: { RedriveCount: { DataType: 'Number', StringValue: '2' } },
    });

    // Act
    const item = planMessage(dead, options());

    // Assess
    expect(item).toEqual({
      messageId: 'm-1',
      receiptHandle: 'rh-1',
      streamId: 'order-1',
      action: 'send',
      outcome: null,
      reason: null,
      detail: null,
      body,
      messageAttributes: {
        RedriveCount: { DataType: 'Number', StringValue: '3' },
        RedrivenFrom: { DataType: 'String', StringValue: 'm-1' },
      },
      groupId: 'order-1',
      deduplicationId: 'redrive-m-1',
    });
  });

  it('sends the fixed JSON when a fix applies; a bad RedriveCount counts as none', () => {
    // Prepare
    const { EmitterType: _drop, ...body } = event();
    const dead = message(body, { MessageAttributes: { RedriveCount: { DataType: 'Number', StringValue: 'x' } } });

    // Act
    const item = planMessage(dead, options({ fix: { set: { EmitterType: 'USER' } } }));

    // Assess
    expect(item.action).toBe('send');
    expect(JSON.parse(item.body!)).toEqual(event({ EmitterType: 'USER' }));
    expect(item.messageAttributes?.['RedriveCount']).toEqual({ DataType: 'Number', StringValue: '1' });
  });

  it('keeps what the fix does not make valid, with the current reason', () => {
    const item = planMessage(message(event({ EventType: 'bad' })), options());
    expect(item).toMatchObject({
      action: 'keep',
      outcome: 'stillRejected',
      streamId: 'order-1',
      reason: 'SchemaViolation',
      detail: 'EventType: "bad" must be upper snake case like EVENT_EXAMPLE',
    });
  });

  it('keeps a body that is not JSON as InvalidJson', () => {
    const item = planMessage(message('{oops'), options());
    expect(item).toMatchObject({ action: 'keep', outcome: 'stillRejected', reason: 'InvalidJson', streamId: null });
    expect(item.detail).toMatch(/^body: not JSON \(/);
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
      detail: "Data: has an empty key, which DynamoDB refuses",
    });
  });

  it('skips what the filter does not match, before fixing (a non-JSON body never matches)', () => {
    const opts = options({ filter: { EventType: 'ORDER_SHIPPED' }, fix: { set: { EventType: 'ORDER_SHIPPED' } } });
    expect(planMessage(message(event()), opts)).toMatchObject({
      action: 'keep',
      outcome: 'skippedByFilter',
      reason: 'NotMatchedByFilter',
      detail: 'the event does not match the filter',
    });
    expect(planMessage(message('nope'), opts).detail).toMatch(/^body is not JSON \(/);
  });

  it('in a dry run, reports what would be redriven and sends nothing', () => {
    expect(planMessage(message(event()), options({ dryRun: true }))).toMatchObject({
      action: 'keep',
      outcome: 'wouldRedrive',
      reason: 'DryRun',
      body: null,
    });
  });
});

describe('startRedrive', () => {
  it('opens the summary with the first batch size and the visibility window', () => {
    // Act
    const state = startRedrive({ maxMessages: 3, visibilityTimeoutSeconds: 120 }, NOW);

    // Assess
    expect(state).toMatchObject({
      valid: true,
      cause: null,
      summary: {
        nextBatchSize: 3,
        receiveUntil: NOW + (120 - VISIBILITY_MARGIN_SECONDS) * 1000,
        lastVisibleAt: NOW + 120_000,
        release: [],
        seen: [],
        report: { startedAt: '2026-11-24T10:00:00.000Z', stoppedBecause: null, stayed: [] },
      },
    });
  });

  it('says why the input is invalid', () => {
    expect(startRedrive({ maxMessages: 'all' }, NOW)).toEqual({
      valid: false,
      cause: 'Invalid redrive input: maxMessages: expected a whole number',
    });
  });
});

describe('planBatch', () => {
  it('stops when the queue is empty', () => {
    const planned = planBatch(started(), {}, false, NOW);
    expect(planned).toMatchObject({ items: [], hasItems: false, summary: { report: { stoppedBecause: 'queueEmpty' } } });
  });

  it('releases messages seen before at once and stops when a receive returns only those', () => {
    // Prepare
    const state = started();
    const again = { ...state, summary: { ...state.summary, seen: ['m-1'] } };
    const back = message(event(), { ReceiptHandle: 'rh-new' });

    // Act
    const planned = planBatch(again, { Messages: [back] }, false, NOW);
    const tallied = tallyBatch(planned, [{ messageId: 'm-1' }], NOW);

    // Assess
    expect(planned.items).toEqual([expect.objectContaining({ messageId: 'm-1', receiptHandle: 'rh-new', action: 'release' })]);
    expect(planned).toMatchObject({ hasItems: true, summary: { report: { stoppedBecause: 'onlySeenMessages' } } });
    expect(tallied).toMatchObject({ more: false, summary: { report: { stoppedBecause: 'onlySeenMessages', counts: { received: 0 } } } });
  });

  it('FIFO: a message seen before holds its stream back; a fresh one next to it is handled', () => {
    // Prepare
    const state = started();
    const again = { ...state, summary: { ...state.summary, seen: ['a1'] } };
    const group = (id: string, stream: string): DeadLetterMessage =>
      message(event({ ID: stream }), { MessageId: id, ReceiptHandle: `rh-${id}`, Attributes: { MessageGroupId: stream } });

    // Act
    const planned = planBatch(again, { Messages: [group('a1', 'a'), group('a2', 'a'), group('b1', 'b')] }, true, NOW);

    // Assess
    expect(planned.items.map((item) => [item.messageId, item.action])).toEqual([
      ['a1', 'release'],
      ['a2', 'release'],
      ['b1', 'send'],
    ]);
    expect(planned.summary.report.stoppedBecause).toBeNull();
  });

  it('FIFO: handles the first message of a stream and releases the later ones for the next receive', () => {
    // Prepare
    const group = (id: string, stream: string): DeadLetterMessage =>
      message(event({ ID: stream }), { MessageId: id, ReceiptHandle: `rh-${id}`, Attributes: { MessageGroupId: stream } });
    const messages = [group('a1', 'a'), group('a2', 'a'), group('b1', 'b')];

    // Act
    const fifo = planBatch(started(), { Messages: messages }, true, NOW + 5000);
    const standard = planBatch(started(), { Messages: messages }, false, NOW);

    // Assess
    expect(fifo.items.map((item) => [item.messageId, item.action])).toEqual([
      ['a1', 'send'],
      ['a2', 'release'],
      ['b1', 'send'],
    ]);
    expect(fifo.items[1]).toMatchObject({ streamId: 'a', outcome: null, body: null });
    expect(fifo.summary.lastVisibleAt).toBe(NOW + 5000 + 900_000);
    expect(standard.items.map((item) => item.action)).toEqual(['send', 'send', 'send']);
  });
});

describe('tallyBatch', () => {
  it('counts outcomes, lists what stayed, remembers receipt handles and asks for more', () => {
    // Prepare
    const results = [
      result(1, 'redriven'),
      result(2, 'stillRejected'),
      result(3, null),
      { messageId: 'm-5' }, // what the state machine's Released state reports
      result(4, 'sendFailed', { reason: 'Sqs.KmsDisabledException', detail: 'disabled' }),
    ];

    // Act
    const tallied = tallyBatch(started(), results, NOW);

    // Assess
    expect(tallied.more).toBe(true);
    expect(tallied.summary.report.counts).toEqual({
      received: 3,
      redriven: 1,
      wouldRedrive: 0,
      stillRejected: 1,
      skippedByFilter: 0,
      sendFailed: 1,
      deleteFailed: 0,
    });
    expect(tallied.summary.report.stayed).toEqual([
      { messageId: 'm-2', ID: 's-2', outcome: 'stillRejected', reason: 'SchemaViolation', detail: 'EmitterType: required field is missing' },
      { messageId: 'm-4', ID: 's-4', outcome: 'sendFailed', reason: 'Sqs.KmsDisabledException', detail: 'disabled' },
    ]);
    expect(tallied.summary.release).toEqual([{ receiptHandle: 'rh-2' }, { receiptHandle: 'rh-4' }]);
    expect(tallied.summary.seen).toEqual(['m-2', 'm-4']);
    expect(tallied.summary.report.stayedVisibleAgain).toBe('at the end of this run (made visible again)');
  });

  it('cuts long details to 300 characters', () => {
    const tallied = tallyBatch(started(), [result(1, 'sendFailed', { detail: 'x'.repeat(400) })], NOW);
    expect(tallied.summary.report.stayed[0]?.detail).toBe(`${'x'.repeat(297)}...`);
  });

  it('stops at maxMessages and asks only for what is left', () => {
    // Prepare
    const state = started({ maxMessages: 3 });

    // Act
    const first = tallyBatch(state, [result(1, 'redriven')], NOW);
    const second = tallyBatch(first, [result(2, 'redriven'), result(3, 'redriven')], NOW);

    // Assess
    expect(first).toMatchObject({ more: true, summary: { nextBatchSize: 2 } });
    expect(second).toMatchObject({ more: false, summary: { report: { stoppedBecause: 'maxMessages' } } });
    expect(second.summary.report.stayedVisibleAgain).toBe('now: nothing stayed');
  });

  it('stops before the first batch becomes visible again', () => {
    const state = started({ visibilityTimeoutSeconds: 60 });
    const tallied = tallyBatch(state, [result(1, 'redriven')], NOW + (60 - VISIBILITY_MARGIN_SECONDS) * 1000);
    expect(tallied).toMatchObject({ more: false, summary: { report: { stoppedBecause: 'visibilityWindow' } } });
  });

  it('bounds the list and the releases, and says when the rest become visible', () => {
    // Prepare
    const many = Array.from({ length: MAX_RELEASED + 5 }, (_, index) => result(index, 'skippedByFilter'));

    // Act
    const tallied = tallyBatch(started({ maxMessages: 10_000 }), many, NOW);

    // Assess
    expect(tallied.summary.report.stayed).toHaveLength(MAX_LISTED);
    expect(tallied.summary.report.stayedNotListed).toBe(MAX_RELEASED + 5 - MAX_LISTED);
    expect(tallied.summary.release).toHaveLength(MAX_RELEASED);
    expect(tallied.summary.report.stayedVisibleAgain).toBe(
      `${MAX_RELEASED} at the end of this run; the other 5 at 2026-11-24T10:15:00.000Z (their visibility timeout)`,
    );
  });
});

describe('redrive-prepare handler', () => {
  it('dispatches start, plan and tally', async () => {
    // Act
    const start = (await handler({ action: 'start', input: {} })) as ReturnType<typeof startRedrive>;
    if (!start.valid) throw new Error('start failed');
    const plan = await handler({ action: 'plan', fifo: false, options: start.options, summary: start.summary, received: {} });
    const tally = await handler({ action: 'tally', options: start.options, summary: start.summary, results: [] });

    // Assess
    expect(plan).toMatchObject({ hasItems: false });
    expect(tally).toMatchObject({ more: true });
  });

  it('refuses an unknown action by name', async () => {
    // Act / Assess
    await expect(handler({ action: 'explode' } as never)).rejects.toThrow(
      new UnknownRedriveActionError('explode'),
    );
    await expect(handler({ action: 'explode' } as never)).rejects.toMatchObject({
      name: 'UnknownRedriveActionError',
      message: 'redrive-prepare: unknown action "explode"; expected start, plan or tally',
    });
  });
});
