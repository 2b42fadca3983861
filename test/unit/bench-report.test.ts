import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PathResult } from '../../bench/baseline.ts';
import { emptyCounts } from '../../bench/capacity.ts';
import { README_MARKERS, writeDocs } from '../../bench/docs.ts';
import { figuresOf } from '../../bench/figures.ts';
import { withChecks, type BenchResults } from '../../bench/report.ts';

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
