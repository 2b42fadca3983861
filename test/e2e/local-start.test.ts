/**
 * `npm start` as a new user meets it (README "Quick start" and "Local mode"): npm's own `-c`,
 * an idle terminal, a crash, the loopback.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../local/defaults.ts';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../local/engines/dynamodb-local.ts';
import { freePort, waitUntil } from '../../local/engines/ports.ts';
import { processAlive, readStateFile } from '../../local/state.ts';
import { Child, scanEvents, stackClients, StackProcess } from './support.ts';

/** The local addresses (hex, as in /proc/net/tcp) of the sockets listening on `port`. */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const tables = ['/proc/net/tcp', '/proc/net/tcp6'].filter((file) => existsSync(file));
  return tables.flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      // Columns: sl, local_address, rem_address, st (0A = LISTEN).
      .filter((columns) => columns[1]?.endsWith(`:${hexPort}`) && columns[3] === '0A')
      .map((columns) => columns[1]!.split(':')[0]!),
  );
}

/** The watchdog shell that watches this Java process (local/engines/dynamodb-local.ts). */
function watchdogOf(javaPid: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.includes('eventstore-dynamodb-watchdog') && args.includes(String(javaPid))) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

interface Status {
  readonly replay?: { readonly status: string; readonly streams: number };
  readonly lag: number;
}

/** `eventstore subscriptions --json` once the replay is done and nothing lags. */
async function replayDone(stack: StackProcess): Promise<Status> {
  let status: Status | undefined;
  await waitUntil(
    async () => {
      const listed = await stack.cli(['subscriptions', '--json']);
      [status] = JSON.parse(listed.stdout) as Status[];
      return status?.replay?.status === 'done' && status.lag === 0;
    },
    'the replay done',
    90_000,
    250,
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}; last: ${JSON.stringify(status)}`);
  });
  return status!;
}

async function gone(pid: number, what: string): Promise<void> {
  await waitUntil(async () => !processAlive(pid), `${what} (pid ${pid}) to end`, 15_000, 100);
}

describe('npm start -c batchSize=3 and npm start --in-memory (npm takes options before -- for itself)', () => {
  it('stops with one line giving the command line that works, and starts nothing', async () => {
    // Prepare
    const dataDir = mkdtempSync(join(tmpdir(), 'event-store-npm-c-'));
    try {
      // Act: exactly what the user typed, through npm.
      const child = new Child(
        spawn('npm', ['start', '--silent', '-c', 'batchSize=3'], {
          cwd: PROJECT_ROOT,
          env: { ...process.env, EVENTSTORE_DATA_DIR: dataDir },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      const code = await child.exited;

      // Assess
      expect({ code, stdout: child.stdout, stderr: child.stderr }).toEqual({
        code: 1,
        stdout: '',
        stderr:
          "npm start: npm took -c batchSize=3 for itself (npm's --call), so the stack would start without it; " +
          "put npm start's options after --: npm start -- -c batchSize=3 (each -c after the --)\n",
      });
      expect(readdirSync(dataDir)).toEqual([]);

      // And a long option without --: npm takes that too (npm_config_in_memory, npm_config_queue).
      const long = new Child(
        spawn('npm', ['start', '--silent', '--in-memory', '--queue', 'fifo'], {
          cwd: PROJECT_ROOT,
          env: { ...process.env, EVENTSTORE_DATA_DIR: dataDir },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      expect({ code: await long.exited, stderr: long.stderr }).toEqual({
        code: 1,
        stderr:
          "npm start: npm took --queue, --in-memory for itself, so the stack would start without them; put npm start's options after --: npm start -- --queue <mode> --in-memory\n",
      });
      expect(readdirSync(dataDir)).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('an idle npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'event-store-idle-'));
  let child: Child | undefined;

  afterAll(async () => {
    await child?.stop('SIGINT');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    'says what the start-up does, then prints nothing while nothing happens (no metric lines); the SQS server listens on 127.0.0.1 only',
    { timeout: 120_000 },
    async () => {
      // Prepare: the user's environment (Powertools at its defaults: INFO logs, metrics not disabled).
      const env = Object.fromEntries(
        Object.entries(process.env).filter(([name]) => !name.startsWith('POWERTOOLS_')),
      ) as NodeJS.ProcessEnv;
      child = new Child(
        spawn(
          process.execPath,
          [
            '--disable-warning=ExperimentalWarning',
            '--import',
            'tsx',
            'local/start.ts',
            ...['--in-memory', '--data-dir', dataDir, '--dynamodb-port', '0', '--sqs-port', '0', '--sfn-port', '0'],
          ],
          { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
        ),
      );
      await child.waitFor('Press Ctrl-C to stop.', 90_000);
      const state = readStateFile(dataDir)!;
      const atReady = child.stdout.length;

      // Act: stay idle. The local replay runs every second (every minute when deployed), so these
      // seconds are many idle replay runs.
      const replayRuns = 8;
      await new Promise((resolve) => setTimeout(resolve, replayRuns * 1000));

      // Assess
      const startUp = child.stdout.slice(0, atReady).split('\n');
      expect(startUp.slice(0, 4)).toEqual([
        'Starting the local event store (standard queue)...',
        "  starting DynamoDB Local and the SQS server, synthesizing the CDK app's template...",
        '  creating the table and queues from the template...',
        "  starting the redrive workflow's Step Functions API, the subscriptions and the pollers...",
      ]);
      const idle = child.stdout.slice(atReady);
      const lines = child.stdout.split('\n');
      expect(lines.filter((line) => line.includes('"_aws"'))).toEqual([]);
      // Only the subscription's start-up replay report may follow the banner (two lines), nothing per second.
      expect(idle.split('\n').filter((line) => line.trim() !== '').length).toBeLessThanOrEqual(2);
      expect(child.stderr).toBe('');
      const sqsPort = Number(new URL(state.sqsEndpoint).port);
      expect(listeningAddresses(sqsPort)).toEqual(['0100007F']);
    },
  );
});

describe('a crashed npm start (SIGKILL), then npm start again on the same data folder', () => {
  const stack = new StackProcess();
  let other: DynamoDbLocal | undefined;

  afterAll(async () => {
    await other?.stop();
    await stack.stop();
  });

  it(
    'takes DynamoDB Local with it, or the next start stops the orphan it left (only its own); the data is kept, subscriptions count each stream once',
    { timeout: 240_000 },
    async () => {
      // Prepare: another project's DynamoDB Local, which must survive; an on-disk stack on a fixed port.
      other = await startDynamoDbLocal();
      const port = await freePort();
      const args = ['--dynamodb-port', String(port), '--no-console'];
      const first = await stack.start(args, { onDisk: true });
      const published = await stack.cli(['publish', '--generate', '12', '--streams', '3', '--stream-prefix', 'crash']);
      expect(published.code).toBe(0);
      const { dynamo } = stackClients(first);
      await waitUntil(async () => (await scanEvents(dynamo, first.tableName)).length === 12, '12 stored', 60_000, 100);
      dynamo.destroy();

      // Act 1: the worst case: the watchdog is gone too (kill -9 of everything but Java).
      const java1 = first.dynamoDbPid!;
      const watchdog1 = watchdogOf(java1);
      expect(watchdog1).toBeDefined();
      process.kill(-watchdog1!, 'SIGKILL');
      stack.child!.process.kill('SIGKILL');
      await stack.child!.exited;
      expect(processAlive(java1)).toBe(true); // the orphan, holding the port and .data/dynamodb

      // Act 2: npm start again, same folder, same port.
      const second = await stack.start(args, { onDisk: true });

      // Assess 2: the orphan was recognised and stopped; the data is there.
      expect(stack.child!.stdout).toContain(
        `Stopped DynamoDB Local (pid ${java1}), left running by an earlier npm start on this data folder.`,
      );
      expect(processAlive(java1)).toBe(false);
      const secondClients = stackClients(second);
      expect((await scanEvents(secondClients.dynamo, second.tableName)).length).toBe(12);
      secondClients.dynamo.destroy();

      // Act 3: SIGKILL again (once the subscription's start-up replay is through: a replay killed
      // half-way holds its lease for minutes), the watchdog alive this time: Java dies with the start process.
      await replayDone(stack);
      const java2 = second.dynamoDbPid!;
      stack.child!.process.kill('SIGKILL');
      await stack.child!.exited;
      await gone(java2, 'DynamoDB Local of the killed start');

      // Assess 3: the next start needs nothing stopped; the other project's DynamoDB Local lives on.
      const third = await stack.start(args, { onDisk: true });
      expect(stack.child!.stdout).not.toContain('Stopped DynamoDB Local');
      const thirdClients = stackClients(third);
      expect((await scanEvents(thirdClients.dynamo, third.tableName)).length).toBe(12);
      thirdClients.dynamo.destroy();
      expect(other.pid !== undefined && processAlive(other.pid)).toBe(true);
      // The subscription's tables have real names, and its replay (run again at each start) counts
      // the 3 streams once, not once per start.
      expect(third.subscriptions).toEqual([
        {
          name: 'stream-summary',
          checkpointTable: 'stream-summary-checkpoints',
          tables: {
            CLAIMS_TABLE_NAME: 'stream-summary-claims',
            READ_MODEL_TABLE_NAME: 'stream-summary-read-model',
          },
        },
      ]);
      const status = await replayDone(stack);
      expect(status.replay?.streams).toBe(3);
      const java3 = third.dynamoDbPid!;
      expect(await stack.child!.stop('SIGINT')).toBe(0);
      await gone(java3, 'DynamoDB Local after Ctrl-C');
      expect(watchdogOf(java3)).toBeUndefined();
    },
  );
});
