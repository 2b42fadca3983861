import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, portInUse } from './ports.ts';

interface SqliteStatement {
  run(...values: unknown[]): unknown;
}
interface PersistenceInstance {
  db: { prepare(sql: string): SqliteStatement };
}
let persistencePatched = false;

/**
 * fauxqs 2.4 persists "message visible again" (ChangeMessageVisibility to 0) as an UPDATE that
 * sets `approximate_receive_count` to NULL, which its own NOT NULL column refuses: on disk,
 * every ChangeMessageVisibility 0 failed with ERR_SQLITE_ERROR. Replace that one method so it
 * clears only the in-flight columns. In-memory servers never call it.
 */
async function patchFauxqsPersistence(): Promise<void> {
  if (persistencePatched) return;
  const require = createRequire(import.meta.url);
  const candidate = (require.resolve.paths('fauxqs') ?? [])
    .map((dir) => join(dir, 'fauxqs', 'dist', 'persistence.js'))
    .find((file) => existsSync(file));
  if (!candidate) throw new Error('fauxqs is not installed (run npm ci)');
  const module = (await import(pathToFileURL(candidate).href)) as {
    PersistenceManager?: { prototype: { updateMessageReady?: (messageId: string) => void } };
  };
  const prototype = module.PersistenceManager?.prototype;
  if (!prototype?.updateMessageReady) {
    throw new Error('fauxqs persistence changed shape: check the updateMessageReady workaround in local/engines/sqs-local.ts');
  }
  const statements = new WeakMap<PersistenceInstance, SqliteStatement>();
  prototype.updateMessageReady = function updateMessageReady(this: PersistenceInstance, messageId: string): void {
    let statement = statements.get(this);
    if (!statement) {
      statement = this.db.prepare('UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?');
      statements.set(this, statement);
    }
    statement.run(messageId);
  };
  persistencePatched = true;
}

export interface SqsLocal {
  readonly endpoint: string;
  readonly port: number;
  readonly server: FauxqsServer;
  stop(): Promise<void>;
}

export interface SqsLocalOptions {
  /** @default a free port */
  readonly port?: number;
  /** Folder for fauxqs' SQLite persistence; in memory when absent. */
  readonly dataDir?: string;
}

/**
 * Start `fauxqs`, an SQS-compatible server, in this process. It listens on every interface;
 * clients must use `http://127.0.0.1:<port>` as endpoint and queue URLs of that host
 * (see `localQueueUrl`).
 */
export async function startSqsLocal(options: SqsLocalOptions = {}): Promise<SqsLocal> {
  const port = options.port ?? (await freePort());
  if (options.port !== undefined && (await portInUse(port))) {
    throw new Error(`port ${port} is taken: the local SQS server cannot listen on it (choose another with --sqs-port)`);
  }
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    await patchFauxqsPersistence();
  }
  const server = await startFauxqs({
    port,
    host: '127.0.0.1',
    logger: false,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    server,
    stop: () => server.stop(),
  };
}

/**
 * fauxqs returns queue URLs like `http://sqs.us-east-1.127.0.0.1:PORT/ACCOUNT/NAME`; the SDK
 * would send requests to that host. fauxqs routes by path, so rewrite to the loopback host.
 */
export function localQueueUrl(queueUrl: string, endpoint: string): string {
  // Not `new URL()`: a host like `sqs.us-east-1.127.0.0.1` is not a valid URL host.
  const path = /^[a-z]+:\/\/[^/]+(\/.*)$/i.exec(queueUrl)?.[1];
  if (!path) throw new Error(`not a queue URL: ${queueUrl}`);
  return `${endpoint.replace(/\/$/, '')}${path}`;
}
