import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { QueueMode } from '../core/store.ts';
import type { LocalSubscriptionState } from './subscriptions.ts';
import { PROJECT_ROOT } from './defaults.ts';

/** Where a running local stack is, as it writes it to `<data folder>/stack.json`. */
export interface LocalStackState {
  readonly pid: number;
  readonly queueMode: QueueMode;
  readonly region: string;
  readonly inMemory: boolean;
  readonly dataDir: string;
  readonly dynamoDbEndpoint: string;
  /** DynamoDB Local's Java process, which the next start stops should this stack die without stopping it. */
  readonly dynamoDbPid?: number;
  readonly sqsEndpoint: string;
  readonly sfnEndpoint: string;
  readonly tableName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly deadLetterQueueArn: string;
  readonly stateMachineArn: string;
  readonly concurrency: number;
  readonly startedAt: string;
  /** The `-c key=value` context the stack's template was built with (`npm start -c ...`). */
  readonly context?: Readonly<Record<string, string>>;
  /** The subscriptions running in the stack (README "Subscriptions"). */
  readonly subscriptions?: readonly LocalSubscriptionState[];
}

/**
 * The data folder: `--data-dir`, else `EVENTSTORE_DATA_DIR` (both relative to the working
 * directory), else `.data` in the project's root, so `npx eventstore` finds the stack that
 * `npm start` runs from any folder of the project.
 */
export function dataDirectory(explicit?: string): string {
  const chosen = explicit ?? process.env['EVENTSTORE_DATA_DIR'];
  return chosen ? resolve(chosen) : join(PROJECT_ROOT, '.data');
}

export function stateFile(dataDir: string): string {
  return join(dataDir, 'stack.json');
}

export function writeState(state: LocalStackState): void {
  mkdirSync(state.dataDir, { recursive: true });
  const file = stateFile(state.dataDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Remove the state file if it still belongs to this process. */
export function removeState(dataDir: string, pid = process.pid): void {
  const state = readStateFile(dataDir);
  if (state?.pid === pid) rmSync(stateFile(dataDir), { force: true });
}

export function readStateFile(dataDir: string): LocalStackState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dataDir), 'utf8')) as LocalStackState;
  } catch {
    return undefined;
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The state of the local stack that runs now, or undefined (no state file, or its process is gone). */
export function runningStack(dataDir: string): LocalStackState | undefined {
  const state = readStateFile(dataDir);
  return state && processAlive(state.pid) ? state : undefined;
}

/** A process's command line, or undefined when it is gone or cannot be read. */
function commandLine(pid: number): string | undefined {
  try {
    const proc = `/proc/${pid}/cmdline`;
    if (existsSync(proc)) return readFileSync(proc, 'utf8').split('\0').join(' ');
    return execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The DynamoDB Local that a stack on this data folder left running when it died without
 * stopping it (SIGKILL, a hard crash): the state file names its Java process; it is ours only
 * if that stack's own process is gone and the Java process still runs DynamoDB Local on this
 * stack's port (and, on disk, on this data folder). Any other process, another project's
 * DynamoDB Local included, is never touched.
 */
export function orphanedDynamoDb(dataDir: string): { pid: number } | undefined {
  const state = readStateFile(dataDir);
  const pid = state?.dynamoDbPid;
  if (!state || pid === undefined || processAlive(state.pid) || !processAlive(pid)) return undefined;
  const line = commandLine(pid);
  const port = /:(\d+)\/?$/.exec(state.dynamoDbEndpoint)?.[1];
  if (!line?.includes('DynamoDBLocal.jar') || port === undefined || !line.includes(`-port ${port}`)) return undefined;
  if (!state.inMemory && !line.includes(join(state.dataDir, 'dynamodb'))) return undefined;
  return { pid };
}

/**
 * Stop the DynamoDB Local a crashed stack on this data folder left behind (`orphanedDynamoDb`):
 * SIGTERM, then SIGKILL after 5 s. Returns its pid when there was one, and removes the stale
 * state file.
 */
export async function stopOrphanedDynamoDb(dataDir: string): Promise<number | undefined> {
  const orphan = orphanedDynamoDb(dataDir);
  if (orphan) {
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(orphan.pid, name);
      } catch {
        // Gone already.
      }
    };
    signal('SIGTERM');
    const deadline = Date.now() + 5_000;
    while (processAlive(orphan.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (processAlive(orphan.pid)) signal('SIGKILL');
    while (processAlive(orphan.pid)) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const state = readStateFile(dataDir);
  if (state && !processAlive(state.pid)) rmSync(stateFile(dataDir), { force: true });
  return orphan?.pid;
}
