import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseEventBody } from '../../core/event.ts';
import { formatTable } from '../../cli/output.ts';
import { describeWait, groupSize, progressBar } from '../../cli/commands/publish.ts';
import { formatEvents } from '../../cli/commands/read.ts';
import { formatTailLine } from '../../cli/commands/tail.ts';
import type { StoredEvent } from '../../core/store.ts';
import { batchesOf, generateEvents, parseEventsText, waitReport, type Outgoing } from '../../cli/publish.ts';
import { parseAssignment, redriveInput } from '../../cli/redrive.ts';
import { CliError } from '../../cli/errors.ts';
import { buildProgram } from '../../cli/main.ts';
import { collect, integer, port, ratio } from '../../cli/options.ts';

describe('CLI input handling (no stack needed)', () => {
  it('reads JSON lines, skipping blank lines and keeping a line that is not JSON as it is', () => {
    // Act
    const messages = parseEventsText('{"ID":"a","EventId":"e1"}\n\n  {"ID":"b"}  \nnot json\n');

    // Assess
    expect(messages).toEqual([
      { body: '{"ID":"a","EventId":"e1"}', streamId: 'a', eventId: 'e1' },
      { body: '{"ID":"b"}', streamId: 'b', eventId: undefined },
      { body: 'not json', streamId: undefined, eventId: undefined },
    ]);
  });

  it('reads a JSON array, one message per item', () => {
    // Act
    const messages = parseEventsText(' [{"ID":"a"}, 42, {"ID":""}]');

    // Assess
    expect(messages.map((message) => [message.body, message.streamId])).toEqual([
      ['{"ID":"a"}', 'a'],
      ['42', undefined],
      ['{"ID":""}', undefined],
    ]);
  });

  it('sends each element of a JSON array as written: numbers, escapes and spacing inside it untouched', () => {
    const first = '{ "ID": "a,]", "Data": { "amountMinor": 12345678901234567890, "price": 1.50, "s": "\\u00e9\\"" } }';
    const second = '[1, {"x": [2, 3]}]';

    const messages = parseEventsText(`[\n  ${first},\n${second} ]`);

    expect(messages.map((message) => message.body)).toEqual([first, second]);
    expect(messages[0]?.streamId).toBe('a,]');
  });

  it('names a broken JSON array', () => {
    // Act
    const parse = () => parseEventsText('[{"ID":"a"},');

    // Assess
    expect(parse).toThrow(CliError);
    expect(parse).toThrow(/^the input starts with \[ but is not a JSON array: /);
  });

  it('generates exactly round(n x ratio) invalid events, spread over the streams, the rest valid', () => {
    // Act
    const generated = generateEvents({ count: 1000, streams: 20, invalidRatio: 0.05, streamPrefix: 'g' });

    // Assess
    const results = generated.events.map((message) => parseEventBody(message.body));
    const invalid = results.flatMap((result) => (result.ok ? [] : [result]));
    expect(generated.invalid).toBe(50);
    expect(invalid).toHaveLength(50);
    expect(new Set(invalid.map((result) => result.detail))).toEqual(
      new Set(['EmitterType: required field is missing']),
    );
    expect(new Set(invalid.map((result) => result.streamId)).size).toBeGreaterThan(10);
    expect(generated.streamIds).toEqual(Array.from({ length: 20 }, (_, index) => `g-${index + 1}`));
    const sequences = generated.events
      .filter((message) => message.streamId === 'g-3')
      .map((message) => (JSON.parse(message.body) as { Data: { sequence: number } }).Data.sequence);
    expect(sequences).toEqual(Array.from({ length: 50 }, (_, index) => index + 1));
  });

  it('reads a group (a body with Events) as one message of its events, grouped by its ID, as written', () => {
    // Prepare
    const group =
      '{"ID":"order-1","ExpectedVersion":0,"Events":[{"Timestamp":1,"EventType":"A","EmitterId":"x","EmitterType":"S","Data":{"n":1.50}},{"Timestamp":1,"EventType":"B","EmitterId":"x","EmitterType":"S"}]}';

    // Act
    const lines = parseEventsText(`${group}\n{"ID":"order-1","EventId":"e1"}\n{"ID":"bad","Events":"none"}`);
    const array = parseEventsText(`[${group}, {"Events":[{}]}]`);

    // Assess: sent as written (1.50 kept); a group whose Events is not a list is still sent, for the store to refuse
    expect(lines).toEqual([
      { body: group, streamId: 'order-1', eventId: undefined, events: 2 },
      { body: '{"ID":"order-1","EventId":"e1"}', streamId: 'order-1', eventId: 'e1' },
      { body: '{"ID":"bad","Events":"none"}', streamId: 'bad', eventId: undefined },
    ]);
    expect(array).toEqual([
      { body: group, streamId: 'order-1', eventId: undefined, events: 2 },
      { body: '{"Events":[{}]}', streamId: undefined, eventId: undefined, events: 1 },
    ]);
    // One body per group: a batch of 10 messages holds 10 groups, whatever their sizes
    expect(batchesOf(Array.from({ length: 12 }, () => lines[0]!)).map((batch) => batch.length)).toEqual([10, 2]);
  });

  it('generates groups of K events of one stream, the last one smaller, with exactly round(groups x ratio) invalid groups', () => {
    // Act: 100 events in groups of 3 over 4 streams: 33 groups of 3 and one of 1
    const generated = generateEvents({ count: 100, streams: 4, invalidRatio: 0.1, streamPrefix: 'g', groupSize: 3 });

    // Assess
    const results = generated.events.map((message) => parseEventBody(message.body));
    expect(generated.events).toHaveLength(34);
    expect(generated.events.map((message) => message.events)).toEqual([...Array<number>(33).fill(3), 1]);
    const groups = results.flatMap((result) => (result.ok && result.kind === 'group' ? [result.group] : []));
    const invalid = results.flatMap((result) => (result.ok ? [] : [result]));
    expect(generated.invalid).toBe(3);
    expect(invalid.map((result) => result.detail)).toEqual(
      Array<string>(3).fill('Events[0].EmitterType: required field is missing'),
    );
    expect(groups).toHaveLength(31);
    expect(generated.events.map((message) => message.streamId)).toEqual(
      Array.from({ length: 34 }, (_, index) => `g-${(index % 4) + 1}`),
    );
    // Each stream's events carry their sequence in the stream, across its groups, and the run's index
    const ofStream = generated.events
      .filter((message) => message.streamId === 'g-2')
      .flatMap(
        (message) => (JSON.parse(message.body) as { Events: { Data: { sequence: number; index: number } }[] }).Events,
      )
      .map((event) => [event.Data.sequence, event.Data.index]);
    expect(ofStream).toEqual(
      [3, 4, 5, 15, 16, 17, 27, 28, 29, 39, 40, 41, 51, 52, 53, 63, 64, 65, 75, 76, 77, 87, 88, 89, 99].map(
        (index, position) => [position + 1, index],
      ),
    );
    // The same events as without groups, the same types: ITEM_CREATED first in each stream
    expect(groups[0]?.events.map((event) => event.EventType)).toEqual(['ITEM_CREATED', 'ITEM_UPDATED', 'ITEM_UPDATED']);
  });

  it('takes --group-size 1 to 100 and says why not otherwise', () => {
    // Act
    const parsed = ['1', '3', '100'].map(groupSize);

    // Assess
    expect(parsed).toEqual([1, 3, 100]);
    for (const bad of ['0', '101', '2.5', 'three', ''])
      expect(() => groupSize(bad)).toThrow(
        new InvalidArgumentError(
          '--group-size must be an integer from 1 to 100 (a group is one DynamoDB transaction, at most 100 items)',
        ),
      );
    expect(generateEvents({ count: 5, streams: 1, invalidRatio: 0, groupSize: 1 }).events.map((m) => m.events)).toEqual(
      [1, 1, 1, 1, 1],
    );
  });

  it('says what became of groups in messages and events, and of single events as before', () => {
    // Prepare
    const stored = { status: 'stored', streamId: 's', version: 1, earlier: false } as const;
    const rejected = { status: 'rejected', reason: 'SchemaViolation', detail: 'x', messageId: 'm' } as const;

    // Act
    const groups = waitReport(
      [{ ...stored, count: 3 }, rejected, { ...stored, count: 2 }],
      [3, 3, 2],
      true,
      Date.now(),
    );
    const singles = waitReport([stored, stored, rejected], [1, 1, 1], false, Date.now());

    // Assess
    expect(groups).toMatchObject({
      stored: 2,
      rejected: 1,
      pending: 0,
      events: { stored: 5, rejected: 3, pending: 0 },
    });
    expect(describeWait(groups)).toMatch(
      /^stored 2 messages \(5 events\), rejected 1 message \(3 events\) \(SchemaViolation 1\) in \d+\.\d s; npx eventstore rejected lists them$/,
    );
    expect(describeWait(singles)).toMatch(/^stored 2, rejected 1 \(SchemaViolation 1\) in \d+\.\d s; /);
  });

  it("sends at most 10 messages and the queue's MaximumMessageSize of bodies per batch (256 KiB when unknown)", () => {
    // Prepare
    const small = (n: number): Outgoing => ({ body: `{"n":${n}}`, streamId: undefined, eventId: undefined });
    const large = (n: number): Outgoing => ({
      body: 'x'.repeat(100 * 1024 + n),
      streamId: undefined,
      eventId: undefined,
    });

    // Act
    const bySize = batchesOf([small(1), large(1), large(2), large(3), small(2)]).map((batch) => batch.length);
    const byCount = batchesOf(Array.from({ length: 23 }, (_, n) => small(n))).map((batch) => batch.length);

    // Assess
    expect(bySize).toEqual([3, 2]);
    expect(byCount).toEqual([10, 10, 3]);
    expect(
      batchesOf([small(1), large(1), large(2), large(3), small(2)], 1_048_576).map((batch) => batch.length),
    ).toEqual([5]);
  });

  it('builds the redrive input from --filter, --set, --remove and --max', () => {
    // Act
    const input = redriveInput({
      dryRun: true,
      filter: ['EventType=ORDER_PLACED'],
      set: ['EmitterType=SYSTEM', 'ExpectedVersion=3', 'Data={"a":1}'],
      remove: ['Legacy'],
      max: 20,
    });

    // Assess
    expect(input).toEqual({
      dryRun: true,
      maxMessages: 20,
      filter: { EventType: 'ORDER_PLACED' },
      fix: { set: { EmitterType: 'SYSTEM', ExpectedVersion: 3, Data: { a: 1 } }, remove: ['Legacy'] },
    });
    expect(redriveInput({})).toEqual({ dryRun: false });
  });

  it('refuses an assignment without a key', () => {
    // Act
    const parse = () => parseAssignment('=SYSTEM');

    // Assess
    expect(parse).toThrow(new CliError('expected key=value, got "=SYSTEM"'));
  });

  it('shows which events were written together: a Group column in read, group k/n in tail; none for single events', () => {
    // Prepare: a single event at version 1, then a group of three at versions 2 to 4
    const stored = (Version: number, group?: { GroupIndex: number; GroupSize: number }): StoredEvent => ({
      ID: 'order-1',
      Version,
      EventId: `e${Version}`,
      EventType: 'ORDER_PLACED',
      Timestamp: 1596719980,
      EmitterId: 'checkout',
      EmitterType: 'SYSTEM',
      Data: { n: Version },
      RecordedAt: '2026-12-07T00:00:00.000Z',
      ...group,
    });
    const events = [stored(1), ...[0, 1, 2].map((GroupIndex) => stored(2 + GroupIndex, { GroupIndex, GroupSize: 3 }))];

    // Act
    const withGroups = formatEvents(events).split('\n');
    const singles = formatEvents([stored(1)]).split('\n');

    // Assess
    expect(withGroups[0]).toMatch(/^Version {2}Group {2}EventType /);
    expect(withGroups.slice(2).map((line) => line.split(/ {2,}/).slice(0, 2))).toEqual([
      ['1', 'ORDER_PLACED'],
      ['2', '1/3'],
      ['3', '2/3'],
      ['4', '3/3'],
    ]);
    expect(singles[0]).toMatch(/^Version {2}EventType /);
    expect(formatTailLine(events[2]!)).toBe('2026-12-07T00:00:00.000Z  order-1  v3  group 2/3  ORDER_PLACED  {"n":3}');
    expect(formatTailLine(events[0]!)).toBe('2026-12-07T00:00:00.000Z  order-1  v1  ORDER_PLACED  {"n":1}');
  });

  it('formats a table and a progress bar', () => {
    // Act
    const table = formatTable(
      ['A', 'Long header'],
      [
        ['x', { n: 1 }],
        ['yyyy', 'z'.repeat(10)],
      ],
      [10, 8],
    );

    // Assess
    expect(table).toBe(['A     Long header', '----  -----------', 'x     {"n":1}', 'yyyy  zzzzz...'].join('\n'));
    expect(progressBar(5, 20, 10)).toBe('[###.......] 5/20 (25%)');
  });

  it('parses whole numbers from a minimum, ratios from 0 to 1, and repeated options (cli/options.ts)', () => {
    // Prepare
    const atLeastOne = integer(1, '--limit');

    // Act
    const parsed = [atLeastOne('1'), atLeastOne('250'), port('0'), ratio('0'), ratio('0.05'), ratio('1')];
    const collected = collect('b=2', collect('a=1'));

    // Assess
    expect(parsed).toEqual([1, 250, 0, 0, 0.05, 1]);
    expect(collected).toEqual(['a=1', 'b=2']);
    for (const bad of ['0', '1.5', 'many', ''])
      expect(() => atLeastOne(bad)).toThrow(new InvalidArgumentError('--limit must be an integer >= 1'));
    expect(() => port('-1')).toThrow(new InvalidArgumentError('a port must be an integer >= 0'));
    for (const bad of ['-0.1', '1.01', 'half', 'Infinity'])
      expect(() => ratio(bad)).toThrow(new InvalidArgumentError('must be a number from 0 to 1'));
  });

  it('builds the program from every command module, with the target options (cli/main.ts)', () => {
    // Act
    const program = buildProgram();

    // Assess
    expect(program.options.map((option) => option.long)).toEqual(['--stack', '--region', '--data-dir']);
    expect(program.commands.map((command) => command.name())).toEqual([
      'publish',
      'read',
      'rejected',
      'redrive',
      'stats',
      'subscriptions',
      'summary',
      'tail',
    ]);
    expect(
      program.commands.find((command) => command.name() === 'subscriptions')?.commands.map((command) => command.name()),
    ).toEqual(['resume', 'replay', 'reset']);
  });
});
