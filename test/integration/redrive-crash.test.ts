import type { QueueMode } from '../../core/queue-mode.ts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RedriveReport } from '../../core/redrive-run.ts';
import { runLocalRedrive, type CfnTemplate } from '../../local/workflow-runner.ts';
import { Rng } from '../faults/simulation/random.ts';
import { sqsClient } from '../support/engines.ts';
import { drainQueue, validEvent } from '../support/factories.ts';
import { InvocationKiller, type KillPoint } from './redrive-faults.ts';
import { createRedriveQueues, deadLetterMany, queueCounts, redriveTemplate, succeeded } from './redrive-support.ts';

// A seeded explorer: each schedule kills one call of the redrive's Lambda at one of its SQS
// calls (before it reaches SQS, or after SQS applied it), in standard or FIFO mode, dry or not.
//   REDRIVE_SEED=<n>       the run's seed (default: from the clock, printed)
//   REDRIVE_SCHEDULES=<n>  schedules per run (default 16)
//   REDRIVE_SCHEDULE=<i>   replay only schedule i of the seed
const seed = Number(process.env['REDRIVE_SEED'] ?? Date.now() % 2 ** 31);
const schedules = Number(process.env['REDRIVE_SCHEDULES'] ?? 16);
const only = process.env['REDRIVE_SCHEDULE'];

interface Workload {
  readonly fifo: boolean;
  readonly dryRun: boolean;
  /** A second run on the same DLQ at the same time (not killed): a user who started two. */
  readonly concurrent: boolean;
  readonly batchSize: number;
  readonly kill: KillPoint;
  /** Per stream: its events' bodies in order, and the first step that stays invalid (Infinity: none). */
  readonly streams: { readonly id: string; readonly bodies: string[]; readonly firstInvalid: number }[];
}

function workloadOf(schedule: number): Workload {
  const rng = Rng.derive(seed, 'redrive-crash', schedule);
  const streams = Array.from({ length: rng.int(1, 4) }, (_, s) => {
    const id = `crash-${schedule}-${s}`;
    let firstInvalid = Number.POSITIVE_INFINITY;
    const bodies = Array.from({ length: rng.int(2, 7) }, (_, n) => {
      const invalid = rng.chance(0.15);
      if (invalid) firstInvalid = Math.min(firstInvalid, n + 1);
      return JSON.stringify(
        validEvent({ ID: id, EventId: `${id}-step-${n + 1}`, ...(invalid ? { EventType: 'bad type' } : {}) }),
      );
    });
    return { id, bodies, firstInvalid };
  });
  const total = streams.reduce((sum, stream) => sum + stream.bodies.length, 0);
  const batchSize = rng.int(1, 10);
  return {
    fifo: rng.chance(0.5),
    dryRun: rng.chance(0.25),
    concurrent: rng.chance(0.3),
    batchSize,
    kill: {
      call: rng.int(1, 3 * Math.ceil(total / batchSize) + 4),
      when: rng.chance(0.5) ? 'before' : 'after',
      error: rng.chance(0.5) ? 'Lambda.Unknown' : 'Sandbox.Timedout',
    },
    streams,
  };
}

const stepOf = (body: string) => Number(/-step-(\d+)"/.exec(body)?.[1]);
const streamOf = (body: string) => (JSON.parse(body) as { ID: string }).ID;

describe(`redrive with a batch call killed at any await (seeded explorer, REDRIVE_SEED=${seed})`, () => {
  const sqs = sqsClient();
  const sqsEndpoint = inject('sqsEndpoint');
  const templates: Partial<Record<QueueMode, CfnTemplate>> = {};

  beforeAll(() => {
    console.log(`redrive crash explorer: REDRIVE_SEED=${seed}, ${schedules} schedules`);
    templates.standard = redriveTemplate('standard');
    templates.fifo = redriveTemplate('fifo');
  });
  afterAll(() => {
    sqs.destroy();
  });

  const which = only !== undefined ? [Number(only)] : Array.from({ length: schedules }, (_, n) => n);
  it.each(which)(
    'schedule %i: the report names what was sent, what stayed and what is still hidden',
    async (schedule) => {
      // Prepare
      const workload = workloadOf(schedule);
      const replay = `REDRIVE_SEED=${seed} REDRIVE_SCHEDULE=${schedule} npx vitest run test/integration/redrive-crash.test.ts`;
      const queueUrls = await createRedriveQueues(sqs, workload.fifo);
      for (const stream of workload.streams) {
        await deadLetterMany(sqs, queueUrls.deadLetter, stream.bodies, workload.fifo ? stream.id : undefined);
      }
      const originals = workload.streams.flatMap((stream) => stream.bodies);
      const killer = new InvocationKiller(workload.kill);

      // Act: a one-second lease, so that messages of the killed call come back to this run
      const options = {
        template: workload.fifo ? templates.fifo! : templates.standard!,
        sqsEndpoint,
        queueUrls,
        input: { dryRun: workload.dryRun, batchSize: workload.batchSize, visibilityTimeoutSeconds: 120 },
        leaseSeconds: 1,
        retryPauseMs: 1,
      };
      const [result, other] = await Promise.all([
        runLocalRedrive({
          ...options,
          wrapQueues: (queues) => killer.queues(queues),
          wrapHandler: (handle) => killer.handler(handle),
        }),
        workload.concurrent ? runLocalRedrive(options) : undefined,
      ]);

      // Assess
      const context = `${replay} (${JSON.stringify({ ...workload, streams: workload.streams.length })}, killed ${killer.killedAction ?? 'nothing'})`;
      const reports: RedriveReport[] = [succeeded(result), ...(other ? [succeeded(other)] : [])];
      const total = (count: (report: RedriveReport) => number) => reports.reduce((sum, each) => sum + count(each), 0);
      const { visible: visibleCount, hidden } = await queueCounts(sqs, queueUrls.deadLetter);
      // FIFO: a hidden message locks its group, so a receive reaches only part of what is visible
      const visible = (await drainQueue(sqs, queueUrls.deadLetter)).map((message) => message.Body!);
      const sent = (await drainQueue(sqs, queueUrls.source, { delete: true })).map((message) => message.Body!);
      const deleted = originals.length - visibleCount - hidden;
      const mayHide = total((each) => each.failedBatchMessagesAtMost + each.notReleased + each.holdFailed);

      for (const report of reports) {
        // Every message received counts once, under one outcome
        const { received, ...outcomes } = report.counts;
        expect(
          Object.values(outcomes).reduce((sum, n) => sum + n, 0),
          context,
        ).toBe(received);
        // When hidden messages remain, the report says until when, within the run's window
        if (report.hiddenUntil !== null) {
          expect(Date.parse(report.hiddenUntil), context).toBeLessThanOrEqual(Date.parse(report.startedAt) + 120_000);
        }
      }
      // What is still hidden is named; nothing is hidden when the reports say so
      expect(hidden, context).toBeLessThanOrEqual(mayHide);
      if (reports.every((report) => report.hiddenUntil === null)) expect(hidden, context).toBe(0);
      // `redriven` is exactly what left the DLQ (no message counted by both runs); each of those
      // was sent; nothing invented or invalid was sent
      expect(
        total((each) => each.counts.redriven),
        context,
      ).toBe(deleted);
      expect(
        originals.filter((body) => !visible.includes(body) && !sent.includes(body)).length,
        context,
      ).toBeLessThanOrEqual(hidden + visibleCount - visible.length);
      for (const body of sent) {
        expect(originals, context).toContain(body);
        expect(body, context).not.toContain('bad type');
      }
      // A resend only of what a killed call held; FIFO: never, and each stream in its order
      expect(sent.length - new Set(sent).size, context).toBeLessThanOrEqual(
        total((each) => each.failedBatchMessagesAtMost),
      );
      if (workload.fifo) {
        expect(new Set(sent).size, context).toBe(sent.length);
        // In its order, and none past the first that stays (nothing overtakes it)
        for (const stream of workload.streams) {
          const steps = sent.filter((body) => streamOf(body) === stream.id).map(stepOf);
          expect(steps, context).toEqual([...steps].sort((a, b) => a - b));
          for (const step of steps) expect(step, context).toBeLessThan(stream.firstInvalid);
        }
      }
      // A dry run changes nothing
      if (workload.dryRun) {
        expect(sent, context).toEqual([]);
        expect(deleted, context).toBe(0);
      }
    },
  );
});
