import { memoryBackend } from './backend.ts';
import { subscriptionDriver } from './driver.ts';
import { planSchedule, type PlanOverrides, type SchedulePlan } from './plan.ts';
import { HAND_OVERS_PER_CHECKPOINT, World, type Backend, type WorldRecord } from './world.ts';

export interface ScheduleOutcome {
  readonly plan: SchedulePlan;
  readonly record: WorldRecord;
}

/** Every invariant the explorer checks, as the summary prints it. */
export const INVARIANTS: Readonly<Record<string, string>> = {
  exclusive: 'per stream, hand-overs to the projection never overlap in time',
  'in-order': 'per stream, versions are handed over in order, none skipped',
  'no-duplicate':
    'a version is handed over again only after an invocation died (or its checkpoint write failed) between hand-over and checkpoint',
  'parked-after-max-attempts':
    'a stream is parked at a version only after maxAttempts attempts failed at that version (only the first attempt after progress may fail past it, and it is not one of them); a version the projection never takes parks its stream (there or at an earlier such version), and one that kills its invocations is handed over at most maxAttempts + 1 times before (README "Subscriptions")',
  'every-version-handed-over': 'every stored version is handed over at least once by quiescence',
  'lag-reaches-zero':
    'quiescence is reached and every checkpoint is at its stream end, none parked, after the operator resumes',
  'bounded-catch-up': `no invocation hands over more than ${HAND_OVERS_PER_CHECKPOINT} events of a stream without a checkpoint`,
  'read-rate':
    'no invocation reads the event table faster than the promised read units per second (a second of burst, plus its largest request)',
  'reset-race': 'once a reset is done, no invocation that started before it hands anything over',
  'batch-response': 'batchItemFailures name records of the batch',
};

/** One schedule on its own tables. */
export async function runSchedule(
  seed: number,
  index: number,
  options: { overrides?: PlanOverrides; backend?: (name: string) => Promise<Backend> } = {},
): Promise<ScheduleOutcome> {
  const plan = planSchedule(seed, index, options.overrides);
  const name = `sub-${seed}-${index}`;
  const backend = options.backend ? await options.backend(name) : memoryBackend(name);
  const world = new World(plan, backend, subscriptionDriver(backend, plan.claims));
  const record = await world.run();
  return { plan, record };
}

export function replayCommand(seed: number, index: number, extra = ''): string {
  return `SUB_SEED=${seed} SUB_SCHEDULE=${index}${extra} npx vitest run test/faults/subscription-exploration.test.ts`;
}
