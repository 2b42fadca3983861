import { describe, expect, it } from 'vitest';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { MAX_OPTIONS_BYTES, parseRedriveInput, type DeadLetterMessage } from '../../core/redrive.ts';
import { MAX_STATE_BYTES, ReportBudget, StateBudget, cutToBytes, jsonBytes } from '../../core/redrive-budget.ts';
import {
  MAX_FAILED_BATCHES,
  continuation,
  finishRedrive,
  recoverRedrive,
  redriveBatch,
  startRedrive,
  type ReceiveRequest,
  type RedriveQueues,
  type RedriveRun,
} from '../../core/redrive-run.ts';
import { validEvent } from '../support/factories.ts';

const NOW = Date.parse('2026-11-24T10:00:00.000Z');

/** An in-memory DLQ for the pure run logic: it hands out what it is given and records every call. */
class ScriptedQueues implements RedriveQueues {
  public readonly calls: string[] = [];
  public readonly sent: string[] = [];
  public failHold = new Set<string>();
  public constructor(private readonly batches: DeadLetterMessage[][]) {}
  public async receive(request: ReceiveRequest): Promise<DeadLetterMessage[]> {
    this.calls.push(`receive ${request.max} lease ${request.visibilityTimeoutSeconds} wait ${request.waitSeconds}`);
    return this.batches.shift() ?? [];
  }
  public async send(message: { body: string }): Promise<void> {
    this.calls.push('send');
    this.sent.push(message.body);
  }
  public async delete(handles: readonly string[]): Promise<(string | null)[]> {
    this.calls.push(`delete ${handles.join(',')}`);
    return handles.map(() => null);
  }
  public async hold(handles: readonly string[], seconds: number): Promise<(string | null)[]> {
    this.calls.push(`hold ${handles.join(',')} for ${seconds}`);
    return handles.map((handle) => (this.failHold.has(handle) ? 'AccessDenied: no' : null));
  }
  public async release(handles: readonly string[]): Promise<(string | null)[]> {
    this.calls.push(`release ${handles.join(',')}`);
    return handles.map(() => null);
  }
}

function started(input: Record<string, unknown> = {}, executionId = 'arn:first'): RedriveRun {
  const run = startRedrive(input, { executionId, now: NOW });
  if (!run.valid) throw new Error(run.cause);
  return run;
}

const dead = (id: string, body: unknown, extra: Partial<DeadLetterMessage> = {}): DeadLetterMessage => ({
  MessageId: id,
  ReceiptHandle: `rh-${id}`,
  Body: typeof body === 'string' ? body : JSON.stringify(body),
  Attributes: { SentTimestamp: String(NOW - 60_000) },
  ...extra,
});

const context = (now = NOW + 1000) => ({ fifo: false, now: () => now, attemptId: 'attempt' });

describe('cutToBytes', () => {
  it.each([
    ['short text stays', 'abc', 10, 'abc'],
    ['whole characters only: 3-byte', '東京東京', 12, '東京...'],
    ['a surrogate pair is never split', '𝄞𝄞𝄞', 12, '𝄞...'],
    ['escapes count as written (\\u0001 is 6 bytes)', '\u0001\u0001\u0001', 14, '\u0001...'],
    ['nothing fits but the dots', '東京', 5, '...'],
    ['not even the dots', '東京', 4, ''],
  ])('%s', (_name, text, max, expected) => {
    expect(cutToBytes(text, max)).toBe(expected);
    expect(jsonBytes(cutToBytes(text, max))).toBeLessThanOrEqual(Math.max(max, 2));
  });
});

describe('redriveBatch: the order of a call', () => {
  it('deletes what the last call sent, receives with the lease, sends, then holds what it keeps and sent until the run ends', async () => {
    // Prepare: one valid event and one invalid
    const run = { ...started(), pending: [{ receiptHandle: 'rh-old', messageId: 'old', streamId: 'order-0' }] };
    const queues = new ScriptedQueues([
      [dead('m-1', validEvent({ ID: 'order-1' })), dead('m-2', validEvent({ ID: 'order-2', EventType: 'bad' }))],
    ]);

    // Act
    const next = await redriveBatch(queues, run, context());

    // Assess: the order, and the state: the send pending its delete, the kept one held
    expect(queues.calls).toEqual(['delete rh-old', 'receive 10 lease 90 wait 1', 'send', 'hold rh-m-1,rh-m-2 for 899']);
    expect(next.pending).toEqual([{ receiptHandle: 'rh-m-1', messageId: 'm-1', streamId: 'order-1' }]);
    expect(next.held).toEqual(['rh-m-2']);
    expect(next.report.counts).toMatchObject({ received: 2, redriven: 1, stillRejected: 1 });
  });

  it('a sent message SQS will not hold is deleted at once; a kept one it will not hold is counted', async () => {
    // Prepare
    const queues = new ScriptedQueues([
      [dead('m-1', validEvent({ ID: 'order-1' })), dead('m-2', validEvent({ ID: 'order-2', EventType: 'bad' }))],
    ]);
    queues.failHold = new Set(['rh-m-1', 'rh-m-2']);

    // Act
    const next = await redriveBatch(queues, started(), context());

    // Assess
    expect(queues.calls.at(-1)).toBe('delete rh-m-1');
    expect(next.pending).toEqual([]);
    expect(next.held).toEqual([]);
    expect(next.report.counts).toMatchObject({ received: 2, redriven: 1, stillRejected: 1 });
    expect(next.report.holdFailed).toBe(1);
  });

  it('leaves a message that entered the DLQ after the run started, with its rejection, and never sends it', async () => {
    // Prepare: rejected again by the ingest after this run sent it (EventIdConflict)
    const again = dead('m-again', validEvent({ ID: 'order-1' }), {
      Attributes: { SentTimestamp: String(NOW + 500) },
      MessageAttributes: {
        [MessageAttributeNames.rejectionReason]: { DataType: 'String', StringValue: 'EventIdConflict' },
        [MessageAttributeNames.rejectionDetail]: { DataType: 'String', StringValue: 'EventId e-1 holds other content' },
      },
    });
    const queues = new ScriptedQueues([[again]]);

    // Act
    const next = await redriveBatch(queues, started(), context());

    // Assess
    expect(queues.sent).toEqual([]);
    expect(next.held).toEqual(['rh-m-again']);
    expect(next.report.counts).toMatchObject({ received: 1, arrivedDuringRun: 1, redriven: 0 });
    expect(next.report.stayed).toEqual([
      {
        messageId: 'm-again',
        ID: 'order-1',
        outcome: 'arrivedDuringRun',
        reason: 'ArrivedDuringRun',
        detail:
          'entered the DLQ after this run started (EventIdConflict: EventId e-1 holds other content): left for the next run',
      },
    ]);
  });

  it('an empty receive is no proof of an empty DLQ while a failed call may still hand its messages back', async () => {
    // Prepare: a failed call 30 s ago; its lease ends in 60 s
    const run = recoverRedrive(
      { ...started(), failure: { Error: 'Lambda.Unknown', Cause: 'timed out' } },
      { now: NOW },
    );
    const queues = new ScriptedQueues([[]]);

    // Act
    const next = await redriveBatch(queues, run, context(NOW + 30_000));

    // Assess: it waited (long poll) and goes on receiving
    expect(queues.calls).toEqual(['receive 10 lease 90 wait 20']);
    expect(next).toMatchObject({ next: 'receive', report: { stoppedBecause: null } });
  });
});

describe('recoverRedrive', () => {
  it('counts a failed call and the messages it may have received, and goes on until the third', () => {
    // Prepare
    let run: RedriveRun = started({ batchSize: 4 });

    // Act / Assess
    for (let failed = 1; failed <= MAX_FAILED_BATCHES; failed += 1) {
      run = recoverRedrive(
        { ...run, failure: { Error: 'Sandbox.Timedout', Cause: 'Task timed out after 60.00 seconds' } },
        {
          now: NOW + failed,
        },
      );
      expect(run.failure).toBeUndefined();
      expect(run.report).toMatchObject({ failedBatches: failed, failedBatchMessagesAtMost: 4 * failed });
      expect(run.next).toBe(failed < MAX_FAILED_BATCHES ? 'receive' : 'finish');
    }
    expect(run.report).toMatchObject({
      stoppedBecause: 'failed',
      failed: { error: 'Sandbox.Timedout', cause: 'Task timed out after 60.00 seconds' },
    });
  });

  it('a throttled call or a failed receive received nothing', () => {
    for (const error of ['Lambda.TooManyRequestsException', 'ReceiveFailedError']) {
      const run = recoverRedrive({ ...started(), failure: { Error: error, Cause: '' } }, { now: NOW });
      expect(run.report).toMatchObject({ failedBatches: 1, failedBatchMessagesAtMost: 0 });
      expect(run.returnsBy).toBe(0);
    }
  });
});

describe('finishRedrive', () => {
  it('deletes the last sends, releases what was held, and says nothing is hidden', async () => {
    // Prepare
    const run = {
      ...started(),
      held: ['rh-kept'],
      pending: [{ receiptHandle: 'rh-sent', messageId: 'sent', streamId: 'order-1' }],
    };
    const queues = new ScriptedQueues([]);

    // Act
    const report = await finishRedrive(queues, run, NOW + 5000);

    // Assess
    expect(queues.calls).toEqual(['delete rh-sent', 'release rh-kept']);
    expect(report).toMatchObject({ hiddenUntil: null, counts: { redriven: 1 } });
  });

  it('after a successor, takes its report and leaves the sends it handed over to it', async () => {
    // Prepare
    const child = {
      ...started().report,
      executions: ['arn:first', 'arn:second'],
      counts: { ...started().report.counts, received: 7, redriven: 7 },
    };
    const run = {
      ...started(),
      held: ['rh-kept'],
      pending: [{ receiptHandle: 'rh-sent', messageId: 'sent', streamId: 'order-1' }],
      report: { successor: child },
    };
    const queues = new ScriptedQueues([]);

    // Act
    const report = await finishRedrive(queues, run, NOW + 5000);

    // Assess
    expect(queues.calls).toEqual(['release rh-kept']);
    expect(report).toMatchObject({ executions: ['arn:first', 'arn:second'], counts: { received: 7, redriven: 7 } });
  });

  it('when the successor failed, names what it may still hide and until when', async () => {
    // Prepare
    const run = { ...started(), error: { Error: 'SuccessorFailed', Cause: 'the successor execution failed' } };

    // Act
    const report = await finishRedrive(new ScriptedQueues([]), run, NOW + 5000);

    // Assess
    expect(report).toMatchObject({
      stoppedBecause: 'failed',
      failed: { error: 'SuccessorFailed', cause: 'the successor execution failed' },
      hiddenUntil: '2026-11-24T10:15:00.000Z',
      stayedVisibleAgain:
        'now, except those the failed successor execution held: those at the latest at 2026-11-24T10:15:00.000Z',
    });
  });
});

/** A script's longest stream id (1,024 UTF-16 units) and an EventType the contract refuses, quoted in the detail. */
function worstMessages(character: string, count: number, from: number): DeadLetterMessage[] {
  const units = character.length;
  return Array.from({ length: count }, (_, n) => ({
    MessageId: `${'m'.repeat(90)}-${from + n}`,
    ReceiptHandle: `${String(from + n).padStart(6, '0')}${'h'.repeat(1018)}`,
    Body: JSON.stringify(
      validEvent({ ID: character.repeat(1024 / units), EventType: character.repeat(256 / units), EmitterType: '' }),
    ),
    Attributes: { SentTimestamp: String(NOW - 60_000) },
  }));
}

describe('the state budget (UTF-8 bytes, core/redrive-budget.ts)', () => {
  it('the parts add up to the quota', () => {
    expect(
      StateBudget.options +
        StateBudget.report +
        StateBudget.pending +
        StateBudget.error +
        StateBudget.rest +
        StateBudget.held,
    ).toBe(MAX_STATE_BYTES);
  });

  // Escapes (a control character is 6 bytes in JSON) are the widest "script".
  it.each([
    ['1-byte', 'a'],
    ['2-byte', 'é'],
    ['3-byte', '東'],
    ['4-byte', '𝄞'],
    ['escaped', '\u0001'],
  ])(
    '%s script: the largest state a run builds stays under 256 KiB, in every state the definition passes',
    async (_script, character) => {
      // Prepare: options at their limit, an execution name in the script, messages that stay,
      // each with the longest stream id, an invalid EventType quoted in its detail, and SQS's
      // longest receipt handle
      const base = parseRedriveInput({ fix: { set: { 'Data.note': '' } } });
      if (!base.ok) throw new Error(base.cause);
      const width = jsonBytes(character) - 2;
      const room = MAX_OPTIONS_BYTES - jsonBytes(base.options);
      const note = 'x'.repeat(room % width) + character.repeat(Math.floor(room / width));
      const name = `arn:aws:states:eu-west-1:123456789012:execution:${'S'.repeat(80)}:${character.repeat(80 / character.length)}`;
      let run = started({ fix: { set: { 'Data.note': note } } }, name);
      for (let execution = 2; execution <= 30; execution += 1) {
        const next = startRedrive(continuation(run), { executionId: `${name}-${execution}`, now: NOW });
        if (!next.valid) throw new Error(next.cause);
        run = next;
      }
      const queues = new ScriptedQueues(Array.from({ length: 40 }, (_, n) => worstMessages(character, 10, n * 10)));
      const sizes: number[] = [];

      // Act: batches until the held handles call for a successor; then the successor's input,
      // a failure caught into the state, and Finish's inputs
      for (let batch = 0; batch < 40 && run.next === 'receive'; batch += 1) {
        run = await redriveBatch(queues, run, context());
        sizes.push(jsonBytes({ action: 'batch', run }));
      }
      const error = { Error: 'Lambda.Unknown', Cause: 'x'.repeat(StateBudget.error - 100) };
      sizes.push(
        jsonBytes({
          StateMachineArn: 'arn',
          Input: { ...continuation(run), AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: name },
        }),
        jsonBytes({ action: 'recover', run: { ...run, failure: error } }),
        jsonBytes({ action: 'finish', run: { ...run, report: { successor: run.report } } }),
        jsonBytes({ action: 'finish', run: { ...run, failure: error } }),
      );
      const report = await finishRedrive(queues, { ...run, failure: error }, NOW + 5000);

      // Assess: a successor was due, and nothing came near the quota
      expect(run.next).toBe('successor');
      expect(run.report.stayedNotListed).toBeGreaterThan(0);
      expect(run.report.executionsNotListed).toBeGreaterThan(0);
      expect(jsonBytes(run.report)).toBeLessThanOrEqual(StateBudget.report);
      expect(jsonBytes(report)).toBeLessThanOrEqual(StateBudget.report);
      expect(jsonBytes(run.report.stayed)).toBeLessThanOrEqual(ReportBudget.stayedBytes);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_STATE_BYTES);
      console.log(`${_script}: largest state ${Math.max(...sizes)} bytes of ${MAX_STATE_BYTES}`);
    },
  );
});

describe('redriveBatch: a call that starts late', () => {
  it('after receiveUntil it deletes what the last call sent and receives nothing: the run ends', async () => {
    // Prepare: retries delayed this call past the run's receive window
    const run = { ...started(), pending: [{ receiptHandle: 'rh-old', messageId: 'old', streamId: 'order-0' }] };
    const queues = new ScriptedQueues([[dead('m-1', validEvent())]]);

    // Act
    const next = await redriveBatch(queues, run, context(run.receiveUntil + 1));

    // Assess
    expect(queues.calls).toEqual(['delete rh-old']);
    expect(next).toMatchObject({ next: 'finish', pending: [], report: { stoppedBecause: 'visibilityWindow' } });
    expect(next.report.counts).toMatchObject({ received: 0, redriven: 1 });
  });
});
