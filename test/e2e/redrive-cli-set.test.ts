import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CliError } from '../../cli/errors.ts';
import { parseFixAssignment, redriveInput } from '../../cli/redrive.ts';
import { parseEventBody } from '../../core/event.ts';
import { runLocalRedrive, type CfnTemplate } from '../../local/workflow-runner.ts';
import { createRedriveQueues, deadLetterMany, redriveTemplate, succeeded } from '../integration/redrive-support.ts';
import { sqsClient } from '../support/engines.ts';
import { drainQueue } from '../support/factories.ts';

/** The ingest's own verdict on an event whose `Data.amount` is this literal. */
function ingestVerdict(literal: string): string {
  const result = parseEventBody(
    `{"Timestamp":1596719980,"EventType":"PAID","ID":"x","EmitterId":"e","EmitterType":"S","Data":{"amount":${literal}}}`,
  );
  if (result.ok) throw new Error(`the ingest accepts ${literal}`);
  return `${result.reason}: ${result.detail}`;
}

describe('eventstore redrive --set keeps values exactly as typed', () => {
  it.each([
    ['EmitterType=SYSTEM', { key: 'EmitterType', via: 'set', value: 'SYSTEM' }],
    ['ExpectedVersion=3', { key: 'ExpectedVersion', via: 'set', value: 3 }],
    ['Data={"a": 1}', { key: 'Data', via: 'set', value: { a: 1 } }],
    ['Data.note="1.50"', { key: 'Data.note', via: 'set', value: '1.50' }],
    // What JSON's doubles would change travels as its text
    [
      'Data.amountMinor=12345678901234567890',
      { key: 'Data.amountMinor', via: 'setJson', value: '12345678901234567890' },
    ],
    ['Data.price=1.50', { key: 'Data.price', via: 'setJson', value: '1.50' }],
    ['Data.tiny=1e-130', { key: 'Data.tiny', via: 'set', value: 1e-130 }],
    ['Data.tiny=1E-130', { key: 'Data.tiny', via: 'setJson', value: '1E-130' }],
    [
      'Data.nested={"big": 123456789012345678901234567890}',
      {
        key: 'Data.nested',
        via: 'setJson',
        value: '{"big": 123456789012345678901234567890}',
      },
    ],
  ])('%s', (text, expected) => {
    expect(parseFixAssignment(text)).toEqual(expected);
  });

  it.each(['1e400', '1e-400', '1'.repeat(39), '-1e126'])(
    'refuses %s with the reason the ingest would give',
    (literal) => {
      // Act
      const parse = () => parseFixAssignment(`Data.amount=${literal}`);

      // Assess
      expect(parse).toThrow(
        new CliError(`--set Data.amount=${literal}: the ingest would refuse this value: ${ingestVerdict(literal)}`),
      );
    },
  );

  it("a field of an event of a group: exact values the same way, a refused one with the ingest's Events[i] detail", () => {
    // Prepare: the ingest's verdict on the same value in event 1 of a group
    const group = parseEventBody(
      '{"ID":"x","Events":[{"Timestamp":1,"EventType":"PAID","EmitterId":"e","EmitterType":"S"},' +
        '{"Timestamp":1,"EventType":"PAID","EmitterId":"e","EmitterType":"S","Data":{"amount":1e400}}]}',
    );
    if (group.ok) throw new Error('the ingest accepts 1e400');

    // Act / Assess
    expect(parseFixAssignment('Events.1.Data.price=1.50')).toEqual({
      key: 'Events.1.Data.price',
      via: 'setJson',
      value: '1.50',
    });
    expect(parseFixAssignment('Events.0.EmitterType=SYSTEM')).toEqual({
      key: 'Events.0.EmitterType',
      via: 'set',
      value: 'SYSTEM',
    });
    expect(() => parseFixAssignment('Events.1.Data.amount=1e400')).toThrow(
      new CliError(
        `--set Events.1.Data.amount=1e400: the ingest would refuse this value: ${group.reason}: ${group.detail}`,
      ),
    );
  });

  it('refuses a map with an empty key, as the ingest would', () => {
    expect(() => redriveInput({ set: ['Data={"": 1}'] })).toThrow(
      new CliError(
        '--set Data={"": 1}: the ingest would refuse this value: UnstorableData: Data: has an empty key, which DynamoDB refuses',
      ),
    );
  });

  it('builds the input: exact values under fix.setJson, the rest under fix.set', () => {
    expect(
      redriveInput({ set: ['EmitterType=SYSTEM', 'Data.amountMinor=12345678901234567890'], remove: ['Legacy'] }),
    ).toEqual({
      dryRun: false,
      fix: {
        set: { EmitterType: 'SYSTEM' },
        setJson: { 'Data.amountMinor': '12345678901234567890' },
        remove: ['Legacy'],
      },
    });
  });
});

describe('eventstore redrive --set through the workflow (the synthesized definition, run locally)', () => {
  const sqs = sqsClient();
  let standard: CfnTemplate;

  beforeAll(() => {
    standard = redriveTemplate('standard');
  });
  afterAll(() => {
    sqs.destroy();
  });

  it('the event goes back with the literals as typed, through Step Functions JSON', async () => {
    // Prepare: a dead letter missing EmitterType; the CLI's input as the console would pass it (JSON text)
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(sqs, queueUrls.deadLetter, [
      '{"Timestamp":1596719980,"EventType":"PAID","ID":"exact","EmitterId":"till","Data":{"kept":1.50}}',
    ]);
    const input = JSON.parse(
      JSON.stringify(
        redriveInput({ set: ['EmitterType=SYSTEM', 'Data.amountMinor=12345678901234567890', 'Data.rate=0.10'] }),
      ),
    ) as unknown;

    // Act
    const report = succeeded(
      await runLocalRedrive({ template: standard, sqsEndpoint: inject('sqsEndpoint'), queueUrls, input }),
    );

    // Assess
    expect(report.counts).toMatchObject({ received: 1, redriven: 1 });
    const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
    expect(sent.map((message) => message.Body)).toEqual([
      '{"Timestamp":1596719980,"EventType":"PAID","ID":"exact","EmitterId":"till","Data":{"kept":1.50,"amountMinor":12345678901234567890,"rate":0.10},"EmitterType":"SYSTEM"}',
    ]);
  });
});
