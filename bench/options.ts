import { Command, InvalidArgumentError, Option } from 'commander';
import { PRESET_NAMES, type PresetName } from './presets.ts';

export const PATH_NAMES = ['baseline', 'standard', 'fifo', 'subscription'] as const;
export type PathName = (typeof PATH_NAMES)[number];

/** `npm run bench` options, parsed and checked. */
export interface BenchOptions {
  readonly workloads: readonly PresetName[];
  readonly scale: number;
  /** Overrides the preset's container life; undefined: the preset's. */
  readonly containerInvocations: number | undefined;
  readonly seed: number | undefined;
  readonly mode: 'direct' | 'e2e';
  readonly paths: ReadonlySet<PathName>;
  readonly skipBundle: boolean;
  readonly out: string;
  /** Regenerate docs/PERFORMANCE.md and the README's figures after the run. */
  readonly docs: boolean;
  /** Only regenerate the documents from `out`; run nothing. */
  readonly docsOnly: boolean;
  /**
   * Run only the workloads asked for and put them into `out` in place of the same workloads,
   * each marked with this run; keep every other workload and the once-per-run figures of `out`.
   */
  readonly merge: boolean;
  /** The command line as given, for the documents. */
  readonly command: string;
}

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError(`${value} is not a whole number >= 1`);
  return parsed;
}

function scale(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0 || parsed > 1)
    throw new InvalidArgumentError(`${value} is not a share above 0 and at most 1`);
  return parsed;
}

function workloads(value: string): PresetName[] {
  const names = value.split(',').map((name) => name.trim());
  if (names.includes('all')) return [...PRESET_NAMES];
  for (const name of names) {
    if (!(PRESET_NAMES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`${JSON.stringify(name)} is not one of ${PRESET_NAMES.join(', ')}, all`);
    }
  }
  return names as PresetName[];
}

function paths(value: string): Set<PathName> {
  const names = value.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(PATH_NAMES as readonly string[]).includes(name))
      throw new InvalidArgumentError(`${JSON.stringify(name)} is not one of ${PATH_NAMES.join(', ')}`);
  }
  return new Set(names as PathName[]);
}

/**
 * Parse `npm run bench` arguments (commander, like the CLI).
 *
 * @example
 * ```ts
 * const options = parseBenchOptions(['--workload', 'hot', '--scale', '0.05']);
 * ```
 */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const program = new Command('bench')
    .description(
      'Workloads that model Lambda, on the local engines: this project (standard and FIFO) against the original design, every figure with its target',
    )
    .option('--workload <names>', `comma-separated: ${PRESET_NAMES.join(', ')}, or all`, workloads, [
      'hot',
    ] as PresetName[])
    .option('--scale <f>', 'shrink every preset to this share (events, streams, cache) for a quick run', scale, 1)
    .option(
      '--container-invocations <n>',
      "replace a container (empty cache) after n invocations (default: the preset's; long-cold 25)",
      positiveInt,
    )
    .option('--seed <n>', "workload seed (default: the preset's, 42)", positiveInt)
    .addOption(
      new Option(
        '--mode <mode>',
        'direct: Lambda-shaped batches handed to the handler; e2e: through fauxqs and the local pollers',
      )
        .choices(['direct', 'e2e'])
        .default('direct'),
    )
    .option('--paths <list>', `comma-separated: ${PATH_NAMES.join(', ')}`, paths, new Set<PathName>(PATH_NAMES))
    .option('--skip-bundle', 'do not build and time the ingest bundle', false)
    .option('--out <file>', 'where to write the results', 'bench/results.json')
    .option('--docs', 'regenerate docs/PERFORMANCE.md and the README figures from the results', false)
    .option('--docs-only', 'only regenerate the documents from --out; run nothing', false)
    .option(
      '--merge',
      'run only the workloads asked for and replace them in --out (marked with this run); keep the rest of --out (other workloads, handler CPU, subscription, bundle)',
      false,
    )
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })
    .parse(['node', 'bench', ...argv]);
  const raw = program.opts<{
    workload: PresetName[];
    scale: number;
    containerInvocations?: number;
    seed?: number;
    mode: 'direct' | 'e2e';
    paths: Set<PathName>;
    skipBundle: boolean;
    out: string;
    docs: boolean;
    docsOnly: boolean;
    merge: boolean;
  }>();
  return {
    workloads: raw.workload,
    scale: raw.scale,
    containerInvocations: raw.containerInvocations,
    seed: raw.seed,
    mode: raw.mode,
    paths: raw.paths,
    skipBundle: raw.skipBundle,
    out: raw.out,
    docs: raw.docs,
    docsOnly: raw.docsOnly,
    merge: raw.merge,
    command: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' '),
  };
}
