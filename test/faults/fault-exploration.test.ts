import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestTable, dynamoClient } from '../support/engines.ts';
import { createExplorer, replayCommand, runMany, type Explorer, type ScheduleOutcome } from './simulation/explorer.ts';
import { INVARIANTS } from './simulation/invariants.ts';
import { installVirtualTime } from './simulation/virtual-time.ts';

// Fault exploration (README "How it works"; docs/OPERATIONS.md, "The consumer and what it
// shows"): thousands of small seeded schedules of several containers running the real handler
// and store on DynamoDB Local, against models of the source queue and the DLQ, with faults at
// every boundary. After each schedule the README's promises are checked. A failing schedule
// prints the command that replays it step for step, and its trace.
//
//   SIM_SEED=<n>                 the run's seed (default: from the clock, printed)
//   SIM_SCHEDULE=<i>             replay only schedule i of that seed, printing every step
//   SIM_SCHEDULES=<n>            how many schedules (default 2000)
//   SIM_CONCURRENCY=<n>          schedules at once (default 16: they mostly wait for DynamoDB Local)
//   SIM_BUDGET_SECONDS=<n>       start no schedule after this long (default 480); the summary
//                                says how many of the schedules ran

const env = process.env;
const seed = Number(env['SIM_SEED'] ?? Date.now() % 2 ** 31);
const only = env['SIM_SCHEDULE'] === undefined ? undefined : Number(env['SIM_SCHEDULE']);
const scheduleCount = Number(env['SIM_SCHEDULES'] ?? 2000);
const concurrency = Number(env['SIM_CONCURRENCY'] ?? 16);
const budgetSeconds = Number(env['SIM_BUDGET_SECONDS'] ?? 480);
const SHOWN_TRACES = 3;
const NOTE_TEXT: Record<string, string> = {
  'parked-only-if-unknown':
    'stored, and parked in the DLQ by SQS after a fault left an outcome unknown; a {} redrive is recognised as a duplicate within the window',
  'not-stored-and-dead-lettered': 'a message rightly dead-lettered while a producer retry of the same event was stored',
  'stored-once':
    'an event stored again by a message sent more than resendWindow after the copy before was recorded, or with more than the duplicate window of events between',
  'group-stored-once':
    'a group stored again by a message sent more than resendWindow after the copy before was recorded, or with more than the duplicate window of events between',
};

const admin = dynamoClient();
let uninstall: () => void = () => undefined;
const explorers: Explorer[] = [];

async function explorerOnNewTable(prefix: string): Promise<Explorer> {
  const tableName = await createTestTable(admin, prefix);
  const explorer = await createExplorer({ endpoint: inject('dynamoDbEndpoint'), tableName });
  explorers.push(explorer);
  return explorer;
}

beforeAll(() => {
  uninstall = installVirtualTime();
});

afterAll(() => {
  for (const explorer of explorers) explorer.destroy();
  admin.destroy();
  uninstall();
});

function describeFailure(outcome: ScheduleOutcome): string {
  const { plan } = outcome;
  return [
    `schedule ${plan.index} (${plan.fifo ? 'FIFO' : 'standard'}) broke ${[...new Set(outcome.violations.map((v) => v.invariant))].join(', ')}`,
    `  replay: ${replayCommand(plan.seed, plan.index)}`,
    ...outcome.violations.map((violation) => `  ${violation.invariant}: ${violation.detail}`),
  ].join('\n');
}

describe('fault exploration of the ingest path', () => {
  it('replays schedules step for step from seed and index, also when run next to others', async () => {
    const [first, second] = [await explorerOnNewTable('sim-replay-a'), await explorerOnNewTable('sim-replay-b')];
    const indexes = Array.from({ length: 12 }, (_, index) => index);
    const traces: Map<number, readonly string[]>[] = [new Map(), new Map()];
    // Both tables at once, each with schedules running side by side: the interleaving of real
    // calls differs between the two runs, the traces must not.
    await Promise.all(
      [first, second].map((explorer, run) =>
        runMany(explorer, seed, run === 0 ? indexes : [...indexes].reverse(), 4, (outcome) => {
          traces[run]?.set(outcome.plan.index, outcome.record.trace);
        }),
      ),
    );
    for (const index of indexes) {
      expect(traces[1]?.get(index), `schedule ${index} of seed ${seed} ran differently twice`).toEqual(
        traces[0]?.get(index),
      );
    }
  }, 120_000);

  it(
    `keeps every promise over ${only === undefined ? scheduleCount : 1} seeded schedules with faults at every boundary`,
    async () => {
      const explorer = await explorerOnNewTable('sim');
      const indexes = only === undefined ? Array.from({ length: scheduleCount }, (_, index) => index) : [only];
      const started = Date.now();
      const cpu = process.cpuUsage();
      const failures: ScheduleOutcome[] = [];
      const notes = new Map<string, number>();
      const faults = new Map<string, number>();
      let schedules = 0;
      let messages = 0;
      let steps = 0;
      let fifo = 0;
      console.log(`fault exploration: seed ${seed}, ${indexes.length} schedules, ${concurrency} at a time`);
      if (only !== undefined) {
        const outcome = await explorer.runSchedule(seed, only);
        schedules = 1;
        console.log(outcome.record.trace.map((line) => `    | ${line}`).join('\n'));
        if (outcome.violations.length > 0) failures.push(outcome);
        for (const note of outcome.notes) console.log(`  note ${note.invariant}: ${note.detail}`);
      } else {
        await runMany(
          explorer,
          seed,
          indexes,
          concurrency,
          (outcome) => {
            schedules += 1;
            messages += outcome.plan.messages.length;
            steps += outcome.record.steps;
            if (outcome.plan.fifo) fifo += 1;
            for (const [kind, count] of Object.entries(outcome.record.faultsInjected))
              faults.set(kind, (faults.get(kind) ?? 0) + count);
            for (const name of new Set(outcome.notes.map((note) => note.invariant)))
              notes.set(name, (notes.get(name) ?? 0) + 1);
            if (outcome.violations.length > 0) failures.push(outcome);
          },
          started + budgetSeconds * 1000,
        );
      }
      failures.sort((a, b) => a.plan.index - b.plan.index);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const used = process.cpuUsage(cpu);
      const cpuSeconds = ((used.user + used.system) / 1e6).toFixed(1);
      const broken = new Map<string, number>();
      for (const failure of failures)
        for (const invariant of new Set(failure.violations.map((v) => v.invariant)))
          broken.set(invariant, (broken.get(invariant) ?? 0) + 1);
      console.log(
        [
          ...(schedules < indexes.length
            ? [
                `fault exploration: STOPPED after ${schedules} of ${indexes.length} schedules: the time budget of ${budgetSeconds} s was reached (SIM_BUDGET_SECONDS)`,
              ]
            : []),
          `fault exploration: seed ${seed}: ${schedules} schedules (${fifo} FIFO, ${schedules - fifo} standard), ${messages} messages, ${steps} scheduler steps, ${explorer.dynamoCalls()} requests to DynamoDB Local, in ${seconds} s (${cpuSeconds} s of this process's CPU)`,
          `  faults injected: ${[...faults].map(([kind, count]) => `${kind} ${count}`).join(', ') || 'see the trace'}`,
          `  invariants checked after every schedule:`,
          ...Object.entries(INVARIANTS).map(
            ([name, text]) =>
              `    ${broken.has(name) ? 'BROKEN' : 'held  '} ${name}: ${text}${broken.has(name) ? ` (${broken.get(name)} schedules)` : ''}`,
          ),
          ...[...notes].map(
            ([name, count]) => `  allowed but shown: ${name} in ${count} schedules (${NOTE_TEXT[name] ?? ''})`,
          ),
          ...(failures.length > 0
            ? [
                `  ${failures.length} schedules broke a promise; the first ${Math.min(SHOWN_TRACES, failures.length)} with their traces:`,
              ]
            : []),
        ].join('\n'),
      );
      failures.forEach((failure, position) => {
        console.log(describeFailure(failure));
        if (position < SHOWN_TRACES && only === undefined)
          console.log(failure.record.trace.map((line) => `    | ${line}`).join('\n'));
      });
      expect(failures.map((failure) => describeFailure(failure).split('\n').slice(0, 2).join(' '))).toEqual([]);
      // Room for the budget, the schedules still running when it ends, and the checks.
    },
    Math.max(900_000, (budgetSeconds + 600) * 1000),
  );
});
