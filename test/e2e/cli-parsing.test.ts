import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseEventBody } from '../../core/event.ts';
import { formatTable } from '../../cli/output.ts';
import { progressBar } from '../../cli/commands/publish.ts';
import { batchesOf, generateEvents, parseEventsText, type Outgoing } from '../../cli/publish.ts';
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
