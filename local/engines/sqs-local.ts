import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { mkdirSync } from 'node:fs';
import { freePort, portInUse } from './ports.ts';

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
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
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
