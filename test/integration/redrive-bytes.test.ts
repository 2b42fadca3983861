import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MAX_OPTIONS_BYTES, parseRedriveInput } from '../../core/redrive.ts';
import { jsonBytes } from '../../core/redrive-budget.ts';
import { MAX_STATE_BYTES, runLocalRedrive, type CfnTemplate } from '../../local/workflow-runner.ts';
import { sqsClient } from '../support/engines.ts';
import { drainQueue, validEvent } from '../support/factories.ts';
import {
  createRedriveQueues,
  deadLetterMany,
  hiddenCount,
  longReceiptHandles,
  redriveTemplate,
  succeeded,
} from './redrive-support.ts';

/**
 * Step Functions counts its 256 KiB state quota in UTF-8 bytes: these runs fill the state with
 * text in scripts of 1 to 4 bytes a character, through the synthesized definition, and the
 * local runner fails any state over the quota with States.DataLimitExceeded, as AWS does.
 */
describe('redrive state within 256 KiB of UTF-8 (the synthesized definition, run locally)', () => {
  const sqs = sqsClient();
  const sqsEndpoint = inject('sqsEndpoint');
  let standard: CfnTemplate;

  beforeAll(() => {
    standard = redriveTemplate('standard');
  });
  afterAll(() => {
    sqs.destroy();
  });

  it('400 dead letters with stream ids and event types in a 3-byte script, {"dryRun": true}: a report, and nothing hidden', async () => {
    // Prepare: the reproduction of the issue (it failed with States.DataLimitExceeded at 272,455 bytes)
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(
      sqs,
      queueUrls.deadLetter,
      Array.from({ length: 400 }, (_, n) =>
        JSON.stringify(validEvent({ ID: `${'東'.repeat(1000)}${n}`, EventType: '注文'.repeat(128) })),
      ),
    );

    // Act
    const result = await runLocalRedrive({ template: standard, sqsEndpoint, queueUrls, input: { dryRun: true } });

    // Assess
    const report = succeeded(result);
    expect(report.counts).toMatchObject({ received: 400, stillRejected: 400 });
    expect(report.stayed.length + report.stayedNotListed).toBe(400);
    expect(report.hiddenUntil).toBeNull();
    expect(await hiddenCount(sqs, queueUrls.deadLetter)).toBe(0);
    expect(await drainQueue(sqs, queueUrls.deadLetter)).toHaveLength(400);
    console.log(
      `400 3-byte dead letters, dry run: largest state ${Math.max(...result.executions.map((e) => e.maxStateBytes))} bytes`,
    );
  });

  it.each([
    ['1-byte', 'a'],
    ['2-byte', 'é'],
    ['3-byte', '東'],
    ['4-byte', '𝄞'],
  ])(
    'at the limit in a %s script: the largest options, stream ids and details, 1,024-byte receipt handles, a failed call and successors',
    async (script, character) => {
      // Prepare: options of exactly MAX_OPTIONS_BYTES; 260 dead letters that stay (an EventType
      // the contract refuses, quoted in the detail), each with the longest stream id (1,024
      // UTF-16 units); SQS's longest receipt handles, so held handles call for successors
      const queueUrls = await createRedriveQueues(sqs, false);
      const empty = parseRedriveInput({ fix: { set: { 'Data.note': '' } } });
      if (!empty.ok) throw new Error(empty.cause);
      const room = MAX_OPTIONS_BYTES - jsonBytes(empty.options);
      const width = Buffer.byteLength(character);
      const input = {
        fix: { set: { 'Data.note': 'x'.repeat(room % width) + character.repeat(Math.floor(room / width)) } },
      };
      const id = character.repeat(1024 / character.length);
      await deadLetterMany(
        sqs,
        queueUrls.deadLetter,
        Array.from({ length: 260 }, () =>
          JSON.stringify(validEvent({ ID: id, EventType: character.repeat(256 / character.length) })),
        ),
      );
      let batches = 0;

      // Act: the 5th batch call fails before it does anything, with a long message
      const result = await runLocalRedrive({
        template: standard,
        sqsEndpoint,
        queueUrls,
        input,
        retryPauseMs: 1,
        // A short lease: the run waits this long for a failed call's messages before it calls the DLQ empty.
        leaseSeconds: 2,
        wrapQueues: (queues) => longReceiptHandles(queues, 1024),
        wrapHandler: (handle) => async (event) => {
          if ((event as { action: string }).action === 'batch' && ++batches === 5) {
            throw Object.assign(new Error(character.repeat(5000)), { name: 'Lambda.Unknown' });
          }
          return handle(event);
        },
      });

      // Assess: the run succeeded across executions, every message counted once and visible
      // again, and the largest state came close to the quota without passing it
      const report = succeeded(result);
      const largest = Math.max(...result.executions.map((execution) => execution.maxStateBytes));
      console.log(
        `${script}: ${result.executions.length} executions, largest state ${largest} bytes of ${MAX_STATE_BYTES}`,
      );
      expect(jsonBytes(input)).toBeGreaterThan(MAX_OPTIONS_BYTES - 100);
      expect(result.executions.length).toBeGreaterThanOrEqual(3);
      expect(report.counts).toMatchObject({ received: 260, stillRejected: 260 });
      expect(report).toMatchObject({ failedBatches: 1, hiddenUntil: expect.any(String) });
      expect(largest).toBeGreaterThan(200 * 1024);
      expect(largest).toBeLessThanOrEqual(MAX_STATE_BYTES);
      expect(await hiddenCount(sqs, queueUrls.deadLetter)).toBe(0);
      expect(await drainQueue(sqs, queueUrls.deadLetter, { delete: true })).toHaveLength(260);
    },
  );
});
