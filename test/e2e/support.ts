import { DynamoDBClient, ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEvent } from '../../core/store.ts';
import { LOCAL_CREDENTIALS as credentials, PROJECT_ROOT } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { readStateFile, type LocalStackState } from '../../local/state.ts';

/** Environment for the processes the tests start: quiet handler logs, no metrics or traces. */
function childEnv(dataDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    EVENTSTORE_DATA_DIR: dataDir,
    POWERTOOLS_LOG_LEVEL: 'WARN',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
    POWERTOOLS_DEV: 'false',
  };
}

/** A child process with its output collected, and a way to wait for a line. */
export class Child {
  public stdout = '';
  public stderr = '';
  public readonly exited: Promise<number | null>;

  public constructor(public readonly process: ChildProcess) {
    process.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    process.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => process.once('exit', (code) => resolve(code)));
  }

  public get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Wait until stdout contains `text`; fail early when the process exits. */
  public async waitFor(text: string, timeoutMs: number): Promise<void> {
    await waitUntil(
      async () => {
        if (this.stdout.includes(text)) return true;
        if (!this.running)
          throw new Error(
            `exited (${this.process.exitCode ?? this.process.signalCode}) before printing ${text}:\n${this.stdout}\n${this.stderr}`,
          );
        return false;
      },
      `${JSON.stringify(text)} from pid ${this.process.pid}`,
      timeoutMs,
    ).catch((error: unknown) => {
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
      );
    });
  }

  /** Signal, then SIGKILL if it has not exited within `graceMs`. */
  public async stop(signal: NodeJS.Signals = 'SIGINT', graceMs = 20_000): Promise<number | null> {
    if (this.running) {
      this.process.kill(signal);
      const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.process.exitCode;
  }
}

function spawnTs(script: string, args: readonly string[], dataDir: string, env: NodeJS.ProcessEnv = {}): Child {
  return new Child(
    spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', '--import', 'tsx', join(PROJECT_ROOT, script), ...args],
      {
        cwd: PROJECT_ROOT,
        env: { ...childEnv(dataDir), ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    ),
  );
}

/** A local stack run as `npm start` runs it, in memory, on free ports, with its own data folder. */
export class StackProcess {
  public readonly dataDir = mkdtempSync(join(tmpdir(), 'event-store-e2e-'));
  public child: Child | undefined;
  #state: LocalStackState | undefined;

  /** Start it (in memory unless `onDisk`) and wait for its ready line; `env` adds to the quiet defaults. */
  public async start(
    args: readonly string[],
    options: { onDisk?: boolean; env?: NodeJS.ProcessEnv } = {},
  ): Promise<LocalStackState> {
    this.child = spawnTs(
      'local/start.ts',
      [
        ...(options.onDisk ? [] : ['--in-memory']),
        ...['--data-dir', this.dataDir, '--dynamodb-port', '0', '--sqs-port', '0', '--sfn-port', '0'],
        ...args,
      ],
      this.dataDir,
      options.env,
    );
    await this.child.waitFor('Press Ctrl-C to stop.', 90_000);
    this.#state = readStateFile(this.dataDir);
    if (!this.#state) throw new Error(`no state file in ${this.dataDir}`);
    return this.#state;
  }

  public get state(): LocalStackState {
    if (!this.#state) throw new Error('the stack has not started');
    return this.#state;
  }

  /** Run `eventstore <args>` (bin/eventstore.js) against this stack. */
  public cli(
    args: readonly string[],
    input?: string,
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli(args, this.dataDir, input, env);
  }

  /** Start `local/consume.ts` against this stack. */
  public consumer(args: readonly string[] = []): Child {
    return spawnTs('local/consume.ts', ['--data-dir', this.dataDir, ...args], this.dataDir);
  }

  /** A script of test/e2e/fixtures against this stack. */
  public fixture(name: string, args: readonly string[] = []): Child {
    return spawnTs(`test/e2e/fixtures/${name}`, ['--data-dir', this.dataDir, ...args], this.dataDir);
  }

  public async stop(): Promise<void> {
    await this.child?.stop('SIGINT');
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Start the CLI on the stack of `dataDir` (stdin closed): its output grows as it runs. */
export function startCli(args: readonly string[], dataDir: string, input?: string, env: NodeJS.ProcessEnv = {}): Child {
  const child = new Child(
    spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'eventstore.js'), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...childEnv(dataDir), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  child.process.stdin?.end(input ?? '');
  return child;
}

export async function runCli(
  args: readonly string[],
  dataDir: string,
  input?: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = startCli(args, dataDir, input, env);
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 60_000);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, stdout: child.stdout, stderr: child.stderr };
}

/** SDK clients on the stack's engines, for the tests' own checks. */
export function stackClients(state: LocalStackState): { dynamo: DynamoDBClient; sqs: SQSClient } {
  return {
    dynamo: new DynamoDBClient({ endpoint: state.dynamoDbEndpoint, region: state.region, credentials }),
    sqs: new SQSClient({ endpoint: state.sqsEndpoint, region: state.region, credentials }),
  };
}

export async function scanEvents(dynamo: DynamoDBClient, tableName: string): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  let startKey: ScanCommandOutput['LastEvaluatedKey'];
  do {
    const page: ScanCommandOutput = await dynamo.send(
      new ScanCommand({
        TableName: tableName,
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    events.push(...(page.Items ?? []).map((item) => unmarshall(item) as StoredEvent));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return events;
}

/** Messages in a queue, visible or in flight. */
export async function messagesIn(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(Attributes['ApproximateNumberOfMessages'] ?? 0) +
    Number(Attributes['ApproximateNumberOfMessagesNotVisible'] ?? 0)
  );
}

/** Data.index of a stored or generated event. */
export function indexOf(event: { Data?: Record<string, unknown> | null | undefined }): number {
  return Number(event.Data?.['index']);
}

/** Events grouped by stream, each stream in version order. */
export function byStream(events: readonly StoredEvent[]): Map<string, StoredEvent[]> {
  const streams = new Map<string, StoredEvent[]>();
  for (const event of events) streams.set(event.ID, [...(streams.get(event.ID) ?? []), event]);
  for (const list of streams.values()) list.sort((a, b) => a.Version - b.Version);
  return streams;
}
