import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../local/defaults.ts';

const run = promisify(execFile);

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function outcome(file: string, args: readonly string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(file, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, NODE_OPTIONS: '' },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

function versionOf(node: string): string | undefined {
  const result = spawnSync(node, ['-p', 'process.version'], { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

function tooOld(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  return major < 22 || (major === 22 && minor < 13);
}

/** A Node.js older than 22.13 on this machine (the system's own, under the Node 22 on PATH), if any. */
function oldNode(): { readonly path: string; readonly version: string } | undefined {
  const onPath = spawnSync('which', ['-a', 'node'], { encoding: 'utf8' }).stdout?.split('\n') ?? [];
  const candidates = [...onPath, '/usr/bin/node', '/usr/local/bin/node', '/bin/node'].filter(
    (path) => path && existsSync(path),
  );
  for (const path of new Set(candidates)) {
    const version = versionOf(path);
    if (version !== undefined && tooOld(version)) return { path, version };
  }
  return undefined;
}

/** The arguments of the `npm start` command line in package.json (after its `node`). */
function startArguments(): string[] {
  const scripts = (
    JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  const [command, ...args] = (scripts['start'] ?? '').split(' ');
  expect(command).toBe('node');
  return args;
}

const NEEDED = 'eventstore needs Node.js 22.13 or later';

/**
 * On a Node.js without `node:sqlite` (README, "Troubleshooting"), `npm start` and the CLI stop
 * with one line naming the version found and the version needed.
 */
describe('the Node.js version check', () => {
  const old = oldNode();

  it('npm start and the CLI print one line and exit 1 on an old Node.js (or the check, given an old version, when none is installed)', async () => {
    // Prepare: the machine's old Node.js; without one, the check module is told an old version.
    const runs: { readonly what: string; readonly result: Promise<Outcome>; readonly version: string }[] = old
      ? [
          { what: 'npm start', result: outcome(old.path, [...startArguments(), '--in-memory']), version: old.version },
          { what: 'eventstore', result: outcome(old.path, ['bin/eventstore.js', 'stats']), version: old.version },
        ]
      : [
          {
            what: 'the check, faked',
            result: outcome(process.execPath, [
              '--input-type=module',
              '-e',
              "import { exitIfTooOld } from './bin/node-version.js'; exitIfTooOld('v20.20.2'); console.log('not stopped');",
            ]),
            version: 'v20.20.2',
          },
        ];

    // Act and assess
    for (const { what, result, version } of runs) {
      expect({ what, ...(await result) }).toEqual({
        what,
        code: 1,
        stdout: '',
        stderr: `${NEEDED}; this is Node.js ${version}\n`,
      });
    }
  });

  it('lets through the versions that have node:sqlite, and 22.5 to 23.3 only with --experimental-sqlite', async () => {
    // Prepare
    const cases: [version: string, flags: string[]][] = [
      ['v18.20.4', []],
      ['v20.20.2', []],
      ['v22.4.1', ['--experimental-sqlite']],
      ['v22.5.0', []],
      ['v22.12.0', []],
      ['v22.12.0', ['--experimental-sqlite']],
      ['v22.13.0', []],
      ['v23.3.0', []],
      ['v23.3.0', ['--experimental-sqlite']],
      ['v23.4.0', []],
      ['v24.0.0', []],
    ];
    const script = `import { nodeVersionProblem } from './bin/node-version.js'; console.log(JSON.stringify(${JSON.stringify(cases)}.map(([v, f]) => nodeVersionProblem(v, f) ?? null)));`;

    // Act
    const result = await outcome(process.execPath, ['--input-type=module', '-e', script]);

    // Assess
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      `${NEEDED}; this is Node.js v18.20.4`,
      `${NEEDED}; this is Node.js v20.20.2`,
      `${NEEDED}; this is Node.js v22.4.1`,
      `${NEEDED}; this is Node.js v22.5.0`,
      `${NEEDED}; this is Node.js v22.12.0`,
      null,
      null,
      'eventstore needs Node.js 22.13 or later (23.4 or later on Node.js 23); this is Node.js v23.3.0',
      null,
      null,
      null,
    ]);
  });

  it('says nothing on this Node.js: the CLI runs', async () => {
    // Act
    const result = await outcome(process.execPath, ['bin/eventstore.js', '--help']);

    // Assess
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: eventstore /);
  });
});
