import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
