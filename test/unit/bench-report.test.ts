import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PathResult } from '../../bench/baseline.ts';
import { emptyCounts } from '../../bench/capacity.ts';
import { README_MARKERS, writeDocs } from '../../bench/docs.ts';
import { figuresOf } from '../../bench/figures.ts';
import {
  mergeResults,
  withChecks,
  workloadSection,
  type BenchResults,
  type WorkloadResult,
} from '../../bench/report.ts';

// docs/PERFORMANCE.md and the README's figures are regenerated from bench/results.json: check
// that the README keeps everything outside its markers and that a missed target says so.

function path(label: string, writeUnits: number, readUnits: number, queries: number): PathResult {
  return {
    label,
    messages: 1000,
    validEvents: 1000,
    itemsStored: 1000,
    distinctEventsStored: 1000,
    duplicatesStored: 0,
    lostEvents: 0,
    counts: { ...emptyCounts(), writeUnits, readUnits, requests: { PutItem: 1000, Query: queries } },
    wallMs: 2000,
    latenciesMs: [10, 20],
    invocations: 100,
    invocationMsTotal: 2000,
    retriedRecords: 0,
    appendConflicts: 150,
    consumerRequests: { receives: 100, deletes: 100 },
    notes: [],
  };
}

const results: BenchResults = withChecks({
  recordedAt: '2026-11-29T17:00:00.000Z',
  command: 'npm run bench -- --workload hot',
  scale: 1,
  mode: 'direct',
  wallMinutes: 3,
  workloads: [
    {
      name: 'hot',
      description: '200 streams, 4 warm containers',
      containers: 4,
      containerInvocations: null,
      batchSize: 10,
      cacheSize: 1000,
      historyPerStream: 0,
      workload: {
        messages: 1000,
        uniqueEvents: 1000,
        streams: 200,
        distinctStreamSeconds: 900,
        largestItemBytes: 1024,
        duplicateShare: 0.02,
        sameSecondShare: 0.1,
        seed: 42,
      },
      columns: [figuresOf(path('this project, standard', 1150, 1000, 900), 'standard', true)],
      checks: [],
      wallSeconds: 30,
    },
  ],
});

describe('bench documents', () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('rewrites only what is between the README markers, and says why a target was missed', () => {
    root = mkdtempSync(join(tmpdir(), 'bench-docs-'));
    mkdirSync(join(root, 'docs'));
    writeFileSync(
      join(root, 'README.md'),
      `# Title\n\nbefore\n\n${README_MARKERS.start}\nold figures\n${README_MARKERS.end}\n\nafter\n`,
    );

    writeDocs(results, root);
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const performance = readFileSync(join(root, 'docs', 'PERFORMANCE.md'), 'utf8');

    expect(readme.startsWith('# Title\n\nbefore\n\n')).toBe(true);
    expect(readme.endsWith('\n\nafter\n')).toBe(true);
    expect(readme).not.toContain('old figures');
    expect(readme).toContain(
      '| hot | standard | read units per event | 1.000 | <= 0.4 | **missed** | 0.900 consistent Queries per event at 1.11 read units each (at least 1) |',
    );
    expect(readme).toContain('| hot | standard | write units per event | 1.150 | <= 1.15 | met |  |');
    expect(performance).toContain('| failed conditional puts per 1,000 events (onConflict) | 150.0 | not run |  |  |');
    expect(performance).toContain('_No reading of this run yet (bench/analysis.md)._');
  });

  it('refuses a README without the markers, naming them', () => {
    root = mkdtempSync(join(tmpdir(), 'bench-docs-'));
    mkdirSync(join(root, 'docs'));
    writeFileSync(join(root, 'README.md'), '# Title\n');

    expect(() => writeDocs(results, root)).toThrow(
      `README.md: the bench markers are missing (${README_MARKERS.start} ... ${README_MARKERS.end})`,
    );
  });
});

describe('the groups workload in the bench documents', () => {
  const column = (size: number, writeUnits: number, readUnits: number, wallMs: number) =>
    figuresOf(
      {
        ...path(
          `this project, standard${size === 1 ? ', single events' : `, groups of ${size}`}`,
          writeUnits,
          readUnits,
          0,
        ),
        messages: 1000 / size,
        wallMs,
        counts: {
          ...emptyCounts(),
          writeUnits,
          readUnits,
          requests: size === 1 ? { PutItem: 1000 } : { TransactWriteItems: 1000 / size },
          cancelledTransactions: size === 2 ? 10 : 0,
        },
      },
      'standard',
      true,
      size,
    );
  const groups: WorkloadResult = {
    ...results.workloads[0]!,
    name: 'groups',
    description: 'commands of 20 events',
    columns: [column(1, 1050, 300, 5000), column(2, 2300, 200, 4000), column(20, 2000, 50, 1000)],
    checks: [],
  };
  const merged = mergeResults(
    results,
    withChecks({
      ...results,
      recordedAt: '2026-12-07T21:00:00.000Z',
      command: 'npm run bench -- --workload groups --scale 0.1 --merge',
      scale: 0.1,
      workloads: [groups],
    }),
  );

  it('puts single events and each group size of one mode side by side, each against its target', () => {
    const section = workloadSection(withChecks(merged).workloads[1]!, 'direct');

    expect(section).toContain(
      '| figure | standard, single events (same run) | groups of 2 | groups of 20 | target | result |',
    );
    expect(section).toContain(
      '| write units per event | 1.050 | 2.300 | 2.000 | single events: <= 1.1; groups of 2, groups of 20: <= 2.1 | **missed**: groups of 2 2.300 |',
    );
    expect(section).toContain(
      "| read units per event | 0.300 | 0.200 | 0.050 | single events: <= 0.4; groups of 2, groups of 20: <= single events' 0.300 | met |",
    );
    expect(section).toContain(
      '| failed conditional puts (single events) / cancelled transactions (groups) per 1,000 events | 150.0 | 10.0 | 0.0 |  |  |',
    );
    expect(section).toContain(
      'Measured in a separate run: 2026-12-07 21:00 UTC, `npm run bench -- --workload groups --scale 0.1 --merge` (scale 0.1).',
    );
  });

  it("--merge keeps the file's run and its other workloads, and marks the workload run again", () => {
    expect(merged.recordedAt).toBe(results.recordedAt);
    expect(merged.command).toBe(results.command);
    expect(merged.workloads.map((workload) => [workload.name, workload.run?.scale])).toEqual([
      ['hot', undefined],
      ['groups', 0.1],
    ]);
    const again = mergeResults(merged, {
      ...results,
      recordedAt: '2026-12-08T00:00:00.000Z',
      scale: 0.2,
      workloads: [groups],
    });
    expect(again.workloads.map((workload) => [workload.name, workload.run?.scale])).toEqual([
      ['hot', undefined],
      ['groups', 0.2],
    ]);
  });

  it("names the separate run in the README, next to the file's", () => {
    root = mkdtempSync(join(tmpdir(), 'bench-docs-'));
    mkdirSync(join(root, 'docs'));
    writeFileSync(join(root, 'README.md'), `${README_MARKERS.start}\n${README_MARKERS.end}\n`);

    writeDocs(withChecks(merged), root);
    const readme = readFileSync(join(root, 'README.md'), 'utf8');

    expect(readme).toContain(
      'Run of 2026-11-29, `npm run bench -- --workload hot` (the presets at full size). The groups workload comes from a separate run, 2026-12-07 21:00 UTC, `npm run bench -- --workload groups --scale 0.1 --merge` (scale 0.1). Every figure',
    );
    expect(readme).toContain(
      '| groups | standard, groups of 2 | write units per event | 2.300 | <= 2.1 | **missed** |',
    );
  });

  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));
});
