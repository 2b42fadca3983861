import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS as credentials, LOCAL_REGION } from '../../local/defaults.ts';
import { dynamoDbLocalBackend } from './subscription/backend.ts';
import { INVARIANTS, replayCommand, runSchedule, type ScheduleOutcome } from './subscription/explorer.ts';
import type { PlanOverrides } from './subscription/plan.ts';
import { installVirtualTime } from './subscription/virtual-time.ts';

// Subscription fault exploration (README "Subscriptions"; issue 18): seeded schedules of the
// real subscription function (handlers/subscription.ts, core/subscription.ts,
// adapters/dynamodb-subscription.ts) under a model of DynamoDB Streams and Lambda's event
// source mapping (subscription/world.ts says what it models and from which AWS documentation):
// several shards, parallelization factor > 1 with per-item order only, batch retries from the
// lowest reported failure, invocations killed at any await and at their timeout, records that
// expire, a mapping deployed late, the replay schedule, resumes and resets at the same time,
// projections that throw, hang or are slow. After every schedule the promises of README
// "Subscriptions" are checked (INVARIANTS in subscription/explorer.ts). A failing schedule
// prints the command that replays it step for step, and its trace.
//
// The checkpoint and event tables are an in-memory fake (subscription/fake-dynamodb.ts) in the
// big run: a schedule is hundreds of requests, each a scheduler step, and a thousand schedules
// must run in a couple of minutes; the fake keeps what the adapter relies on (atomic
// conditional writes, Query and Scan order and pages, consumed capacity). The same schedules
// also run, fewer, on DynamoDB Local, so the adapter's requests are checked against the real
// engine's semantics too.
//
//   SUB_SEED=<n>            the run's seed (default: from the clock, printed)
//   SUB_SCHEDULE=<i>        replay only schedule i of that seed, printing every step
//   SUB_SCHEDULES=<n>       how many schedules (default 1000)
//   SUB_LOCAL_SCHEDULES=<n> how many of them also run on DynamoDB Local (default 12)
//   SUB_PARALLELIZATION=<n> force this parallelization factor on every schedule
//   SUB_TIMEOUT_SECONDS=<n> force this function timeout on every schedule

const env = process.env;
const seed = Number(env['SUB_SEED'] ?? Date.now() % 2 ** 31);
const only = env['SUB_SCHEDULE'] === undefined ? undefined : Number(env['SUB_SCHEDULE']);
const scheduleCount = Number(env['SUB_SCHEDULES'] ?? 1000);
const localCount = Number(env['SUB_LOCAL_SCHEDULES'] ?? 12);
const overrides: PlanOverrides = {
  ...(env['SUB_PARALLELIZATION'] ? { parallelizationFactor: Number(env['SUB_PARALLELIZATION']) } : {}),
  ...(env['SUB_TIMEOUT_SECONDS'] ? { functionTimeoutMs: Number(env['SUB_TIMEOUT_SECONDS']) * 1000 } : {}),
};
const extra = `${env['SUB_PARALLELIZATION'] ? ` SUB_PARALLELIZATION=${env['SUB_PARALLELIZATION']}` : ''}${env['SUB_TIMEOUT_SECONDS'] ? ` SUB_TIMEOUT_SECONDS=${env['SUB_TIMEOUT_SECONDS']}` : ''}`;
const SHOWN_TRACES = 2;
const TRACE_LINES = 400;

let uninstall: () => void = () => undefined;

beforeAll(() => {
  uninstall = installVirtualTime();
});

afterAll(() => {
  uninstall();
});

function describeFailure(outcome: ScheduleOutcome): string {
  const { plan, record } = outcome;
  return [
    `schedule ${plan.index} broke ${[...new Set(record.violations.map((v) => v.invariant))].join(', ')}`,
    `  replay: ${replayCommand(plan.seed, plan.index, extra)}`,
    ...record.violations.slice(0, 6).map((violation) => `  ${violation.invariant}: ${violation.detail}`),
    ...(record.violations.length > 6 ? [`  ... and ${record.violations.length - 6} more`] : []),
  ].join('\n');
}

function showTrace(outcome: ScheduleOutcome, lines = TRACE_LINES): string {
  const { trace } = outcome.record;
  const shown =
    trace.length > lines
      ? [...trace.slice(0, lines / 2), `... ${trace.length - lines} lines ...`, ...trace.slice(-lines / 2)]
      : trace;
  return shown.map((line) => `    | ${line}`).join('\n');
}

function summarise(label: string, outcomes: readonly ScheduleOutcome[], seconds: number): ScheduleOutcome[] {
  const failures = outcomes.filter((outcome) => outcome.record.violations.length > 0);
  const broken = new Map<string, number>();
  const notes = new Map<string, number>();
  const faults = new Map<string, number>();
  let steps = 0;
  let handOvers = 0;
  let invocations = 0;
  let requests = 0;
  for (const { record } of outcomes) {
    steps += record.steps;
    handOvers += record.handOvers;
    invocations += record.invocations;
    requests += record.requests;
    for (const invariant of new Set(record.violations.map((v) => v.invariant)))
      broken.set(invariant, (broken.get(invariant) ?? 0) + 1);
    for (const [note, count] of record.notes) notes.set(note, (notes.get(note) ?? 0) + (count > 0 ? 1 : 0));
    for (const [fault, count] of record.faults) faults.set(fault, (faults.get(fault) ?? 0) + count);
  }
  console.log(
    [
      `subscription exploration (${label}): seed ${seed}: ${outcomes.length} schedules, ${steps} scheduler steps, ${invocations} invocations, ${requests} requests, ${handOvers} hand-overs, in ${seconds.toFixed(1)} s`,
      `  faults injected: ${[...faults].map(([kind, count]) => `${kind} ${count}`).join(', ') || 'none'}`,
      `  invariants checked after every schedule:`,
      ...Object.entries(INVARIANTS).map(
        ([name, text]) =>
          `    ${broken.has(name) ? 'BROKEN' : 'held  '} ${name}: ${text}${broken.has(name) ? ` (${broken.get(name)} schedules)` : ''}`,
      ),
      ...[...notes].map(([name, count]) => `  shown: ${name}: in ${count} schedules`),
      ...(failures.length > 0 ? [`  ${failures.length} schedules broke a promise:`] : []),
    ].join('\n'),
  );
  failures.forEach((failure, position) => {
    console.log(describeFailure(failure));
    if (position < SHOWN_TRACES && only === undefined) console.log(showTrace(failure, 160));
  });
  return failures;
}

describe('fault exploration of subscriptions', () => {
  it('replays a schedule step for step from its seed and index', async () => {
    for (let index = 0; index < 8; index += 1) {
      const [first, second] = [
        await runSchedule(seed, index, { overrides }),
        await runSchedule(seed, index, { overrides }),
      ];
      expect(second.record.trace, `schedule ${index} of seed ${seed} ran differently twice`).toEqual(
        first.record.trace,
      );
    }
  });

  it(`keeps every promise of README "Subscriptions" over ${only === undefined ? scheduleCount : 1} seeded schedules`, async () => {
    const started = Date.now();
    const indexes = only === undefined ? Array.from({ length: scheduleCount }, (_, index) => index) : [only];
    console.log(
      `subscription exploration: seed ${seed}, ${indexes.length} schedules (replay one: ${replayCommand(seed, 0, extra)})`,
    );
    const outcomes: ScheduleOutcome[] = [];
    for (const index of indexes) outcomes.push(await runSchedule(seed, index, { overrides }));
    if (only !== undefined) console.log(showTrace(outcomes[0]!, Infinity));
    const failures = summarise('in memory', outcomes, (Date.now() - started) / 1000);
    expect(failures.map((failure) => describeFailure(failure).split('\n').slice(0, 2).join(' '))).toEqual([]);
  }, 600_000);

  it.runIf(only === undefined && localCount > 0)(
    `keeps them on DynamoDB Local too (the first ${localCount} schedules)`,
    async () => {
      const client = new DynamoDBClient({ endpoint: inject('dynamoDbEndpoint'), region: LOCAL_REGION, credentials });
      const started = Date.now();
      const outcomes: ScheduleOutcome[] = [];
      try {
        for (let index = 0; index < localCount; index += 1) {
          const tables: { drop(): Promise<void> }[] = [];
          outcomes.push(
            await runSchedule(seed, index, {
              overrides,
              backend: async (name) => {
                const backend = await dynamoDbLocalBackend(client, `${name}-${Date.now() % 100000}`);
                tables.push(backend);
                return backend;
              },
            }),
          );
          for (const table of tables) await table.drop();
        }
      } finally {
        client.destroy();
      }
      const failures = summarise('DynamoDB Local', outcomes, (Date.now() - started) / 1000);
      // The schedules are not step for step the fake's: DynamoDB Local orders a Scan by its own
      // hash of the partition key, so the replay meets the streams in another order. The promises
      // must hold all the same.
      expect(failures.map((failure) => describeFailure(failure).split('\n').slice(0, 2).join(' '))).toEqual([]);
    },
    600_000,
  );
});
