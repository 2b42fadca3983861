import type { QueueMode } from '../core/queue-mode.ts';
import { defaultWorkload, type WorkloadOptions } from './workload.ts';

/** The named workloads of `npm run bench -- --workload <name>` (docs/PERFORMANCE.md). */
export const PRESET_NAMES = ['hot', 'many-streams', 'long-cold', 'one-stream', 'groups'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** One workload as the bench runs it: the generated events, the containers, the paths. */
export interface Preset {
  readonly name: PresetName;
  readonly description: string;
  readonly workload: WorkloadOptions;
  /** Parallel containers (Lambda's concurrency), each with its own handler and store cache. */
  readonly containers: number;
  /** Invocations after which a container is replaced by a fresh one (empty cache). Infinity: warm for the whole run. */
  readonly containerInvocations: number;
  /** Events already in every stream before the run, written long before it. */
  readonly historyPerStream: number;
  /** Queue modes it runs (the baseline runs wherever `baseline` is asked for). */
  readonly modes: readonly QueueMode[];
  readonly batchSize: number;
  /** Streams a container's store remembers (the store's default, 1,000), scaled with the streams. */
  readonly cacheSize: number;
  /**
   * Whether `--scale` shrinks the streams too (and the cache with them). Hot and long-cold keep
   * theirs: fewer streams would mean more containers per stream, another workload.
   */
  readonly scaleStreams: boolean;
  /**
   * The group workload (bench/workload.ts `generateGroupWorkload`): the same events sent one
   * per message and in groups of these sizes, each on a fresh engine, compared in one table.
   */
  readonly groupSizes?: readonly number[];
}

/** The group sizes the `groups` workload compares with single events (issue 22). */
export const GROUP_SIZES = [2, 5, 20] as const;

const presets: Readonly<Record<PresetName, Preset>> = {
  hot: {
    name: 'hot',
    description: '200 streams, 4 warm containers, events to random streams',
    workload: { ...defaultWorkload, events: 20_000, streams: 200 },
    containers: 4,
    containerInvocations: Number.POSITIVE_INFINITY,
    historyPerStream: 0,
    modes: ['standard', 'fifo'],
    batchSize: 10,
    cacheSize: 1000,
    scaleStreams: false,
  },
  'many-streams': {
    name: 'many-streams',
    description: '20,000 streams of 2 events on average, 4 warm containers (each caches 1,000 streams)',
    workload: { ...defaultWorkload, events: 40_000, streams: 20_000 },
    containers: 4,
    containerInvocations: Number.POSITIVE_INFINITY,
    historyPerStream: 0,
    modes: ['standard', 'fifo'],
    batchSize: 10,
    cacheSize: 1000,
    scaleStreams: true,
  },
  'long-cold': {
    name: 'long-cold',
    description:
      '50 streams with 500 events each written before the run, 16 containers that start cold and are replaced every 25 invocations',
    workload: { ...defaultWorkload, events: 8_000, streams: 1_000 },
    containers: 16,
    containerInvocations: 25,
    historyPerStream: 500,
    modes: ['standard', 'fifo'],
    batchSize: 10,
    cacheSize: 1000,
    scaleStreams: false,
  },
  groups: {
    name: 'groups',
    description:
      '200 streams, 4 warm containers; producer commands of 20 events to a random stream, sent one event per message and in groups of 2, 5 and 20 (one transaction each)',
    workload: { ...defaultWorkload, events: 20_000, streams: 200 },
    containers: 4,
    containerInvocations: Number.POSITIVE_INFINITY,
    historyPerStream: 0,
    modes: ['standard', 'fifo'],
    batchSize: 10,
    cacheSize: 1000,
    scaleStreams: false,
    groupSizes: GROUP_SIZES,
  },
  'one-stream': {
    name: 'one-stream',
    description: 'one FIFO stream, every event after the previous one',
    workload: { ...defaultWorkload, events: 3_000, streams: 1 },
    containers: 4,
    containerInvocations: Number.POSITIVE_INFINITY,
    historyPerStream: 0,
    modes: ['fifo'],
    batchSize: 10,
    cacheSize: 1000,
    scaleStreams: false,
  },
};

/**
 * A preset, shrunk by `scale` (0 < scale <= 1) for a quick run: the events (at least 2 per
 * stream), and where the preset says so the streams and the containers' cache with them, so
 * many-streams still overflows the cache. The history length per stream, the containers and
 * their life are kept: they are what the workload models.
 */
export function preset(
  name: PresetName,
  scale = 1,
  overrides: { containerInvocations?: number; seed?: number } = {},
): Preset {
  const base = presets[name];
  if (!(scale > 0 && scale <= 1)) throw new RangeError(`scale must be above 0 and at most 1, got ${scale}`);
  const streamScale = base.scaleStreams ? scale : 1;
  const streams = Math.max(1, Math.round(base.workload.streams * streamScale));
  const events = Math.max(streams * 2, Math.round(base.workload.events * scale), 20);
  return {
    ...base,
    workload: { ...base.workload, events, streams, ...(overrides.seed !== undefined ? { seed: overrides.seed } : {}) },
    cacheSize: Math.max(10, Math.round(base.cacheSize * streamScale)),
    ...(overrides.containerInvocations !== undefined ? { containerInvocations: overrides.containerInvocations } : {}),
  };
}
