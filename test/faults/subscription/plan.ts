/**
 * One schedule of the subscription fault explorer, drawn from (seed, index) alone: the table's
 * history and the events written while the subscription runs, how Lambda's mapping is set up
 * (shards, parallelization factor, batch size, function timeout, when it starts), what the
 * projection does (throws, hangs, is slow, one version it never takes), the users' commands
 * (resume, reset) and how often the platform fails (calls that fail or lose their response,
 * invocations that crash).
 */

import { Rng } from '../simulation/random.ts';

/** The ingest explorer's seeded random source: every schedule is reproducible from its seed and index. */
export { Rng };

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/** An event appended to a stream at a virtual time (ms from the schedule's start). */
export interface Write {
  readonly at: number;
  readonly streamId: string;
}

/**
 * A version the projection never takes: it throws every time, never returns (the invocation
 * times out in it), or kills the invocation that hands it over (out of memory at that event).
 */
export interface Poison {
  readonly streamId: string;
  readonly version: number;
  readonly mode: 'throw' | 'hang' | 'crash';
}

export interface SchedulePlan {
  readonly seed: number;
  readonly index: number;
  readonly streams: readonly string[];
  /** Appends in time order: the history before the mapping starts, then live traffic. */
  readonly writes: readonly Write[];
  /** A stream with a long history (bounded catch-up), if any. */
  readonly longStream: string | undefined;
  readonly shards: number;
  readonly parallelizationFactor: number;
  readonly batchSize: number;
  readonly functionTimeoutMs: number;
  /** When the mapping (and the replay schedule) starts: the subscription's deploy. */
  readonly deployAt: number;
  readonly maxAttempts: number;
  readonly poison: Poison | undefined;
  /** Per hand-over: the chance the projection throws (it succeeds on a later try). */
  readonly throwRate: number;
  /** Per hand-over: the chance it hangs until the invocation's timeout (once per version). */
  readonly hangRate: number;
  /** Per hand-over: the chance it is slow, and how slow at most. */
  readonly slowRate: number;
  readonly slowMaxMs: number;
  /** Per released call: fails before taking effect (throttled, 500). */
  readonly callFailRate: number;
  /** Per released call: takes effect, the response is lost (the caller sees an error). */
  readonly lostResponseRate: number;
  /** Per released call: takes effect, then the invocation dies (crash, out of memory). */
  readonly killAfterCallRate: number;
  /** Per invocation: the chance it dies (out of memory, a crash) at a random time before its timeout. */
  readonly crashRate: number;
  /**
   * Platform faults (failed requests, lost responses, crashes) stop at this time: every promise
   * must then be kept, including lag 0 (liveness under faults that never stop is not promised).
   */
  readonly faultsUntil: number;
  /** A user resumes the parked streams at this time (besides the operator at the end). */
  readonly resumeAt: number | undefined;
  /** A user resets the subscription at this time. */
  readonly resetAt: number | undefined;
  /**
   * The function holds live streams by claims (CLAIMS_TABLE_NAME set; docs/ARCHITECTURE.md,
   * "Subscriptions"), else by a lease per stream (the path without a claims table).
   */
  readonly claims: boolean;
}

/** What the explorer's environment variables can force on every schedule (to hunt one kind of bug). */
export interface PlanOverrides {
  readonly parallelizationFactor?: number;
  readonly functionTimeoutMs?: number;
}

export function planSchedule(seed: number, index: number, overrides: PlanOverrides = {}): SchedulePlan {
  const rng = Rng.derive(seed, index, 'plan');
  const streamCount = rng.int(1, 5);
  const streams = Array.from({ length: streamCount }, (_, n) => `s${index}-${n}`);
  const long = rng.chance(0.05);
  // A long stream's history is older than a day in most of its schedules: only the replay has it.
  const lateDeploy = long && rng.chance(0.7) ? 2 : rng.weighted([6, 3, 1]);
  // 0: at once; 1: minutes after the first events; 2: after more than a day (TRIM_HORIZON has lost the oldest records).
  const deployAt =
    lateDeploy === 0 ? 0 : lateDeploy === 1 ? rng.int(1, 30) * MINUTE : 25 * HOUR + rng.int(0, 60) * MINUTE;
  const writes: Write[] = [];
  for (const streamId of streams) {
    const history = deployAt > 0 ? rng.int(0, 4) : 0;
    for (let n = 0; n < history; n += 1) writes.push({ at: rng.int(0, Math.max(0, deployAt - 1)), streamId });
    const live = rng.int(0, 6);
    for (let n = 0; n < live; n += 1) writes.push({ at: deployAt + rng.int(0, 10 * MINUTE), streamId });
  }
  let longStream: string | undefined;
  if (long) {
    longStream = `s${index}-long`;
    streams.push(longStream);
    const history = rng.int(400, 900);
    for (let n = 0; n < history; n += 1)
      writes.push({ at: deployAt > 24 * HOUR ? 0 : Math.max(0, deployAt - HOUR), streamId: longStream });
    for (let n = rng.int(1, 3); n > 0; n -= 1)
      writes.push({ at: deployAt + rng.int(0, 2 * MINUTE), streamId: longStream });
  }
  writes.sort((a, b) => a.at - b.at);
  const counts = new Map<string, number>();
  for (const write of writes) counts.set(write.streamId, (counts.get(write.streamId) ?? 0) + 1);
  const candidates = streams.filter((id) => id !== longStream && (counts.get(id) ?? 0) > 0);
  const drawn =
    candidates.length > 0 && rng.chance(0.25)
      ? (() => {
          const streamId = rng.pick(candidates);
          return { streamId, version: rng.int(1, counts.get(streamId)!), mode: rng.pick(['throw', 'hang'] as const) };
        })()
      : undefined;
  // A version that kills its invocations at once, in some schedules that have no other poison:
  // drawn from a source of its own, so every other schedule (and every other draw) is as before.
  const crashing = Rng.derive(seed, index, 'crash-poison');
  const poison: Poison | undefined =
    drawn ??
    (candidates.length > 0 && crashing.chance(0.2)
      ? (() => {
          const streamId = crashing.pick(candidates);
          return { streamId, version: crashing.int(1, counts.get(streamId)!), mode: 'crash' as const };
        })()
      : undefined);
  const faulty = rng.chance(0.6);
  return {
    seed,
    index,
    streams,
    writes,
    longStream,
    shards: rng.int(1, 3),
    parallelizationFactor: overrides.parallelizationFactor ?? (rng.chance(0.5) ? 1 : rng.int(2, 4)),
    // A long stream one record a batch would cost an invocation per event: at least 10.
    batchSize: Math.max(long ? 10 : 1, rng.pick([1, 2, 3, 5, 10, 100])),
    functionTimeoutMs: overrides.functionTimeoutMs ?? (rng.chance(0.7) ? MINUTE : 15 * MINUTE),
    deployAt,
    maxAttempts: rng.int(2, 5),
    poison,
    throwRate: rng.pick([0, 0, 0.05, 0.2]),
    hangRate: rng.pick([0, 0, 0, 0.03]),
    slowRate: rng.pick([0, 0, 0.1, 0.4]),
    slowMaxMs: rng.pick([50, 2_000, 7 * MINUTE]),
    callFailRate: faulty ? rng.pick([0, 0.02, 0.08]) : 0,
    lostResponseRate: faulty ? rng.pick([0, 0.02, 0.05]) : 0,
    killAfterCallRate: faulty ? rng.pick([0, 0.01, 0.04]) : 0,
    crashRate: faulty ? rng.pick([0, 0.05, 0.15]) : 0,
    faultsUntil: deployAt + rng.pick([5, 20, 60]) * MINUTE,
    resumeAt: rng.chance(0.15) ? deployAt + rng.int(0, 20 * MINUTE) : undefined,
    resetAt: rng.chance(0.1) ? deployAt + rng.int(0, 15 * MINUTE) : undefined,
    // Drawn from a source of its own: every other draw is as it was before claims.
    claims: Rng.derive(seed, index, 'claims').chance(0.8),
  };
}
