import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  HistoryEvents,
  continuation,
  finishRedrive,
  redriveBatch,
  startRedrive,
  type RedriveQueues,
  type RedriveRun,
} from '../../core/redrive-run.ts';
import { runLocalRedrive, type CfnTemplate, type LocalExecution } from '../../local/workflow-runner.ts';
import { RedriveStates } from '../../workflows/redrive-workflow.ts';
import { sqsClient } from '../support/engines.ts';
import { drainQueue } from '../support/factories.ts';
import { createRedriveQueues, deadLetterMany, redriveTemplate, succeeded } from './redrive-support.ts';

const eventText = (id: string, step: number, extra = ''): string =>
  `{"Timestamp":1596719980,"EventType":"ORDER_PLACED","ID":"${id}","EmitterId":"checkout","EmitterType":"SYSTEM","EventId":"step-${step}"${extra}}`;

/** Index of each event where a state was entered, per state name. */
function entries(execution: LocalExecution, state: string): number[] {
  return execution.history.flatMap((event, index) =>
    event.type.endsWith('StateEntered') && event.stateName === state ? [index] : [],
  );
}

describe('redrive within Step Functions quotas (the synthesized definition, run locally)', () => {
  const sqs = sqsClient();
  const sqsEndpoint = inject('sqsEndpoint');
  let standard: CfnTemplate;
  let fifo: CfnTemplate;

  beforeAll(() => {
    standard = redriveTemplate('standard');
    fifo = redriveTemplate('fifo');
  });
  afterAll(() => {
    sqs.destroy();
  });

  for (const mode of ['standard', 'fifo'] as const) {
    it(`${mode}: the worst case (one message per batch) continues in successor executions, each under the history quota, in order`, async () => {
      // Prepare: 40 dead letters of one stream; the quota scaled down to 200 events per
      // execution (runner and Lambda alike), so 40 batches of one message need successors.
      const queueUrls = await createRedriveQueues(sqs, mode === 'fifo');
      await deadLetterMany(
        sqs,
        queueUrls.deadLetter,
        Array.from({ length: 40 }, (_, n) => eventText('chain', n + 1)),
        mode === 'fifo' ? 'chain' : undefined,
      );
      const quota = 200;

      // Act
      const result = await runLocalRedrive({
        template: mode === 'fifo' ? fifo : standard,
        sqsEndpoint,
        queueUrls,
        input: { batchSize: 1, maxMessages: 100_000 },
        maxHistoryEvents: quota,
        handlerHistoryLimit: quota,
      });

      // Assess: one report for the whole run, in the first execution's output
      const report = succeeded(result);
      expect(report.counts).toMatchObject({ received: 40, redriven: 40 });
      expect(result.executions.length).toBeGreaterThanOrEqual(2);
      expect(report.executions).toEqual(result.executions.map((execution) => execution.executionArn));
      for (const execution of result.executions) {
        expect(execution.status).toBe('SUCCEEDED');
        expect(execution.history.length).toBeLessThanOrEqual(quota);
      }
      // Counted from the executed definition's event log, as AWS counts
      const [first] = result.executions;
      const batches = entries(first!, RedriveStates.redriveBatch);
      expect(batches[0]).toBe(HistoryEvents.start);
      expect(batches[1]! - batches[0]!).toBe(HistoryEvents.perBatch);
      expect(first!.history.length - batches.at(-1)! - HistoryEvents.perBatch).toBeLessThanOrEqual(HistoryEvents.end);
      // Sent back in their order (FIFO: one group, order kept across executions)
      const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
      const order = sent.map((message) => (JSON.parse(message.Body!) as { EventId: string }).EventId);
      if (mode === 'fifo') expect(order).toEqual(Array.from({ length: 40 }, (_, n) => `step-${n + 1}`));
      else expect(order.sort()).toEqual(Array.from({ length: 40 }, (_, n) => `step-${n + 1}`).sort());
      expect(await drainQueue(sqs, queueUrls.deadLetter)).toEqual([]);
    });
  }

  it('the largest maxMessages (100,000) fits: every execution stays under 25,000 events in the worst case, with retries', async () => {
    // Prepare: an in-memory stand-in for SQS that returns one message per receive (the worst
    // case) and sends everything: only the Lambda's successor decision is under test here;
    // the events per batch, per retry and at the end are measured from executed logs below.
    let next = 0;
    const oneAtATime: RedriveQueues = {
      receive: async () => [{ MessageId: `m-${next}`, ReceiptHandle: `rh-${next++}`, Body: eventText('worst', next) }],
      send: async () => undefined,
      delete: async (handles) => handles.map(() => null),
      hold: async (handles) => handles.map(() => null),
      release: async (handles) => handles.map(() => null),
    };
    const started = startRedrive({ maxMessages: 100_000, batchSize: 1 }, { executionId: 'first', now: Date.now() });
    if (!started.valid) throw new Error(started.cause);
    let run: RedriveRun = started;
    const executions: number[] = [];
    let batches = 0;

    // Act: the whole run, execution by execution
    while (run.report.counts.received < 100_000) {
      run = await redriveBatch(oneAtATime, run, { fifo: false, now: () => 0, attemptId: 'a' });
      batches += 1;
      if (run.next !== 'receive') {
        executions.push(batches);
        batches = 0;
        if (run.next === 'finish') break;
        const successor = startRedrive(continuation(run), { executionId: 'next', now: 0 });
        if (!successor.valid) throw new Error(successor.cause);
        run = successor;
      }
    }

    // Assess: the most batches one execution runs, each with every retry used, stays under the quota
    const most = Math.max(...executions);
    const worstBatch = HistoryEvents.perBatch + HistoryEvents.perRetry * HistoryEvents.maxRetries;
    expect(
      HistoryEvents.start + most * worstBatch + HistoryEvents.recordFailure + HistoryEvents.end,
    ).toBeLessThanOrEqual(25_000);
    const report = await finishRedrive(oneAtATime, run, 0);
    expect(report.counts).toMatchObject({ received: 100_000, redriven: 100_000 });
    expect(report.stoppedBecause).toBe('maxMessages');
    console.log(
      `maxMessages 100000, one message per batch: ${executions.length} executions, at most ${most} batches each`,
    );
    // The state a chain carries stays far below 256 KiB
    expect(Buffer.byteLength(JSON.stringify(run))).toBeLessThan(64 * 1024);
  });

  it('each retry of the batch Lambda adds 3 history events (scheduled, started, failed), as HistoryEvents assumes', async () => {
    // Prepare: the local SQS cannot fail a receive on demand; a wrapper fails the first one.
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(sqs, queueUrls.deadLetter, [eventText('retry', 1)]);
    let failures = 0;

    // Act
    const result = await runLocalRedrive({
      template: standard,
      sqsEndpoint,
      queueUrls,
      input: {},
      retryPauseMs: 1,
      wrapQueues: (queues) => ({
        ...queues,
        receive: async (request) => {
          if (failures === 0) {
            failures += 1;
            throw Object.assign(new Error('Connection reset'), { name: 'TimeoutError' });
          }
          return queues.receive(request);
        },
        send: (message) => queues.send(message),
        delete: (handles) => queues.delete(handles),
        hold: (handles, seconds) => queues.hold(handles, seconds),
        release: (handles) => queues.release(handles),
      }),
    });

    // Assess
    expect(succeeded(result).counts).toMatchObject({ received: 1, redriven: 1 });
    const [execution] = result.executions;
    const batches = entries(execution!, RedriveStates.redriveBatch);
    expect(batches[1]! - batches[0]!).toBe(HistoryEvents.perBatch + HistoryEvents.perRetry);
    expect(execution!.history.slice(batches[0]!, batches[0]! + 6).map((event) => event.type)).toEqual([
      'TaskStateEntered',
      'LambdaFunctionScheduled',
      'LambdaFunctionStarted',
      'LambdaFunctionFailed',
      'LambdaFunctionScheduled',
      'LambdaFunctionStarted',
    ]);
  });

  it('an execution past its history quota fails (States.Runtime), as on AWS', async () => {
    // Prepare: 20 messages, one per batch; the runner allows 60 events, the Lambda believes 25,000
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(
      sqs,
      queueUrls.deadLetter,
      Array.from({ length: 20 }, (_, n) => eventText('over', n + 1)),
    );

    // Act
    const result = await runLocalRedrive({
      template: standard,
      sqsEndpoint,
      queueUrls,
      input: { batchSize: 1 },
      maxHistoryEvents: 60,
    });

    // Assess
    expect(result).toMatchObject({ status: 'FAILED', error: 'States.Runtime' });
    expect(result.executions[0]!.history.at(-1)!.type).toBe('ExecutionFailed');
  });

  it('redrives a 300 KB event byte for byte: the body never enters the state', async () => {
    // Prepare
    const queueUrls = await createRedriveQueues(sqs, false);
    const body = eventText('large', 1, `,"Data":{"blob":"${'x'.repeat(300 * 1024)}","amount":1.50}`);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrls.deadLetter, MessageBody: body }));

    // Act
    const result = await runLocalRedrive({ template: standard, sqsEndpoint, queueUrls, input: {} });

    // Assess
    expect(succeeded(result).counts).toMatchObject({ received: 1, redriven: 1 });
    const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.Body).toBe(body);
  });

  it('a state over 256 KiB fails the execution with States.DataLimitExceeded, which no Catch takes', async () => {
    // Prepare: receipt handles of 40,000 characters (SQS's are at most 1,024) push the
    // Lambda's result over the limit; only a wrapper can produce them.
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(
      sqs,
      queueUrls.deadLetter,
      Array.from({ length: 10 }, (_, n) => eventText('kept', n + 1).replace('ORDER_PLACED', 'bad type')),
    );

    // Act
    const result = await runLocalRedrive({
      template: standard,
      sqsEndpoint,
      queueUrls,
      input: {},
      wrapQueues: (queues) => ({
        receive: async (request) =>
          (await queues.receive(request)).map((message) => ({
            ...message,
            ReceiptHandle: `${message.ReceiptHandle}${' '.repeat(40_000)}`,
          })),
        send: (message) => queues.send(message),
        delete: (handles) => queues.delete(handles.map((handle) => handle.trimEnd())),
        hold: (handles, seconds) =>
          queues.hold(
            handles.map((handle) => handle.trimEnd()),
            seconds,
          ),
        release: (handles) => queues.release(handles.map((handle) => handle.trimEnd())),
      }),
    });

    // Assess
    expect(result).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(result.status === 'FAILED' && result.cause).toMatch(/over Step Functions' limit of 262144 bytes/);
  });

  it('a run whose receives keep failing in a successor ends the first execution with the error, the successor with its report, and every message held visible again', async () => {
    // Prepare: 30 messages that stay (invalid), one per batch, a quota that needs successors;
    // from the 6th receive on, every receive fails (only a wrapper can make SQS do that).
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(
      sqs,
      queueUrls.deadLetter,
      Array.from({ length: 30 }, (_, n) => eventText('broken', n + 1).replace('ORDER_PLACED', 'bad type')),
    );
    let receives = 0;

    // Act
    const result = await runLocalRedrive({
      template: standard,
      sqsEndpoint,
      queueUrls,
      input: { batchSize: 1 },
      maxHistoryEvents: 200,
      handlerHistoryLimit: 200,
      retryPauseMs: 1,
      wrapQueues: (queues) => ({
        receive: async (request) => {
          receives += 1;
          if (receives > 5)
            throw Object.assign(new Error('Access to the resource is denied'), { name: 'AccessDenied' });
          return queues.receive(request);
        },
        send: (message) => queues.send(message),
        delete: (handles) => queues.delete(handles),
        hold: (handles, seconds) => queues.hold(handles, seconds),
        release: (handles) => queues.release(handles),
      }),
    });

    // Assess: the run failed with the receive's error after three batch calls failed; the
    // successor handed its report back whole (it succeeded); nothing stays hidden
    expect(result).toMatchObject({
      status: 'FAILED',
      error: 'ReceiveFailedError',
      cause: 'receive from the dead-letter queue failed: AccessDenied: Access to the resource is denied',
    });
    expect(result.executions.map((execution) => [execution.status, execution.error])).toEqual([
      ['FAILED', 'ReceiveFailedError'],
      ['SUCCEEDED', undefined],
    ]);
    expect(result.executions[1]!.output).toMatchObject({
      counts: { received: 5, stillRejected: 5 },
      failedBatches: 3,
      failedBatchMessagesAtMost: 0,
      stoppedBecause: 'failed',
      hiddenUntil: null,
      stayedVisibleAgain: 'now: made visible again at the end of the run',
    });
    expect(await drainQueue(sqs, queueUrls.deadLetter)).toHaveLength(30);
  });

  it('a dry run leaves every message visible again, however many it read', async () => {
    // Prepare: 250 dead letters (more than any fixed list of receipt handles would hold)
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetterMany(
      sqs,
      queueUrls.deadLetter,
      Array.from({ length: 250 }, (_, n) => eventText(`dry-${n}`, n)),
    );

    // Act
    const report = succeeded(
      await runLocalRedrive({ template: standard, sqsEndpoint, queueUrls, input: { dryRun: true } }),
    );

    // Assess
    expect(report.counts).toMatchObject({ received: 250, wouldRedrive: 250, redriven: 0 });
    expect(report.stayedVisibleAgain).toBe('now: made visible again at the end of the run');
    expect(await drainQueue(sqs, queueUrls.deadLetter)).toHaveLength(250);
    expect(await drainQueue(sqs, queueUrls.source)).toEqual([]);
  });
});
