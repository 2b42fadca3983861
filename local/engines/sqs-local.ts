import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { existsSync, mkdirSync } from 'node:fs';
import { Server, type ListenOptions } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { patchFauxqsBodyCharacters } from './fauxqs-characters.ts';
import { freePort, portInUse } from './ports.ts';
import { Limits } from '../../core/keys.ts';

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
    throw new Error(
      'fauxqs persistence changed shape: check the updateMessageReady workaround in local/engines/sqs-local.ts',
    );
  }
  const statements = new WeakMap<PersistenceInstance, SqliteStatement>();
  prototype.updateMessageReady = function updateMessageReady(this: PersistenceInstance, messageId: string): void {
    let statement = statements.get(this);
    if (!statement) {
      statement = this.db.prepare(
        'UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?',
      );
      statements.set(this, statement);
    }
    statement.run(messageId);
  };
  persistencePatched = true;
}

interface FifoQueueInternals {
  fifoLockedGroups: Map<string, number>;
  fifoMessages: Map<string, { sequenceNumber?: string }[]>;
  inflightMessages: Map<string, { message: { messageGroupId?: string } }>;
}
type DequeueFifo = (
  this: FifoQueueInternals,
  maxCount: number,
  visibilityTimeout?: number,
  dlqResolver?: unknown,
) => { ReceiptHandle: string }[];
type ChangeVisibility = (this: FifoQueueInternals, receiptHandle: string, timeoutSeconds: number) => void;
type ProcessTimers = (this: FifoQueueInternals) => void;

/** Put a FIFO group back in send order (fauxqs numbers messages with 20-digit, zero-padded sequence numbers). */
function inSendOrder(queue: FifoQueueInternals, group: string | undefined): void {
  const groups = group === undefined ? [...queue.fifoMessages.values()] : [queue.fifoMessages.get(group) ?? []];
  for (const messages of groups)
    messages.sort((a, b) => (a.sequenceNumber ?? '').localeCompare(b.sequenceNumber ?? ''));
}
let fifoReceivePatched = false;
/** fauxqs' group for a FIFO message sent without one. */
const DEFAULT_GROUP = '__default';

/** The methods of fauxqs' queue the FIFO receive patch wraps. */
interface FauxqsQueuePrototype {
  dequeueFifo: DequeueFifo;
  changeVisibility: ChangeVisibility;
  processTimers: ProcessTimers;
}

/** fauxqs' SqsQueue prototype, from the installed package; throws when its shape changed. */
async function fauxqsQueuePrototype(): Promise<FauxqsQueuePrototype> {
  const require = createRequire(import.meta.url);
  const candidate = (require.resolve.paths('fauxqs') ?? [])
    .map((dir) => join(dir, 'fauxqs', 'dist', 'sqs', 'sqsStore.js'))
    .find((file) => existsSync(file));
  if (!candidate) throw new Error('fauxqs is not installed (run npm ci)');
  const module = (await import(pathToFileURL(candidate).href)) as {
    SqsQueue?: { prototype: Partial<FauxqsQueuePrototype> };
  };
  const prototype = module.SqsQueue?.prototype;
  if (!prototype?.dequeueFifo || !prototype.changeVisibility || !prototype.processTimers) {
    throw new Error('fauxqs changed shape: check the FIFO receive patch in local/engines/sqs-local.ts');
  }
  return prototype as FauxqsQueuePrototype;
}

/**
 * fauxqs 2.4 returns at most one message per FIFO message group in a receive (it locks the
 * group after the first); SQS returns up to the requested number, as many of one group as it
 * can, in order (README, "Local mode"). Wrap its dequeue and take one message at a time: to
 * continue a group, hide from fauxqs the lock that only this receive holds on it and lock every
 * other group for that one call; when the group is exhausted, go on with the next one. Groups
 * locked by other in-flight messages stay locked. And a message made visible again returns to
 * its place in send order. Checked by tests that fail without this patch
 * (test/integration/engines.test.ts).
 */
async function patchFauxqsFifoReceive(): Promise<void> {
  if (fifoReceivePatched) return;
  const prototype = await fauxqsQueuePrototype();
  const { dequeueFifo: original, changeVisibility, processTimers } = prototype;
  prototype.dequeueFifo = function dequeueFifo(this: FifoQueueInternals, maxCount, visibilityTimeout, dlqResolver) {
    if (
      !(this.fifoLockedGroups instanceof Map) ||
      !(this.fifoMessages instanceof Map) ||
      !(this.inflightMessages instanceof Map)
    ) {
      throw new Error('fauxqs changed shape: check the FIFO receive patch in local/engines/sqs-local.ts');
    }
    const count = Math.min(maxCount, Limits.maxSqsBatch);
    const taken: { ReceiptHandle: string }[] = [];
    const ours = new Map<string, number>();
    let current: string | undefined;
    const takeOne = (only: string | undefined): { ReceiptHandle: string } | undefined => {
      // Locks set for this one call: ours on `only` hidden, every other free group held.
      const restore: [string, number | undefined][] = [];
      const setLock = (group: string, value: number | undefined) => {
        restore.push([group, this.fifoLockedGroups.get(group)]);
        if (value === undefined) this.fifoLockedGroups.delete(group);
        else this.fifoLockedGroups.set(group, value);
      };
      if (only !== undefined) {
        if (this.fifoLockedGroups.get(only) === ours.get(only)) setLock(only, undefined);
        for (const group of this.fifoMessages.keys()) {
          if (group !== only && !this.fifoLockedGroups.has(group)) setLock(group, 1);
        }
      }
      let got: { ReceiptHandle: string }[];
      try {
        got = original.call(this, 1, visibilityTimeout, dlqResolver);
      } finally {
        for (const [group, value] of restore.reverse()) {
          if (value === undefined) this.fifoLockedGroups.delete(group);
          else this.fifoLockedGroups.set(group, value);
        }
      }
      const message = got[0];
      if (message) {
        const group = this.inflightMessages.get(message.ReceiptHandle)?.message.messageGroupId ?? DEFAULT_GROUP;
        // Restoring the hidden lock undid fauxqs' count for this message: count it again.
        if (restore.some(([locked]) => locked === group))
          this.fifoLockedGroups.set(group, (this.fifoLockedGroups.get(group) ?? 0) + 1);
        ours.set(group, (ours.get(group) ?? 0) + 1);
        current = group;
      }
      return message;
    };
    while (taken.length < count) {
      const next = (current !== undefined ? takeOne(current) : undefined) ?? takeOne(undefined);
      if (!next) break;
      taken.push(next);
    }
    return taken;
  };
  // A message made visible again goes to the front of its group (unshift): with several of a
  // group in flight, releasing them in order would reverse them. SQS keeps send order.
  prototype.changeVisibility = function changeVisibilityInOrder(
    this: FifoQueueInternals,
    receiptHandle,
    timeoutSeconds,
  ) {
    const group = this.inflightMessages.get(receiptHandle)?.message.messageGroupId;
    changeVisibility.call(this, receiptHandle, timeoutSeconds);
    if (timeoutSeconds === 0 && group !== undefined && this.fifoMessages instanceof Map) inSendOrder(this, group);
  };
  prototype.processTimers = function processTimersInOrder(this: FifoQueueInternals) {
    processTimers.call(this);
    if (this.fifoMessages instanceof Map) inSendOrder(this, undefined);
  };
  fifoReceivePatched = true;
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
 * Run `start` with fauxqs' listen on `port` bound to the loopback. fauxqs 2.4 listens on
 * 0.0.0.0 whatever it is given (its `host` option only names the host in queue URLs): for the
 * time of the call, a listen on exactly that port and 0.0.0.0 is made on 127.0.0.1 instead.
 * Checked by test/e2e/local-start.test.ts (the socket's local address).
 */
async function onLoopback<T>(port: number, start: () => Promise<T>): Promise<T> {
  const listen = Server.prototype.listen;
  const patched = function (this: Server, ...args: unknown[]): Server {
    const options = args[0] as ListenOptions | undefined;
    if (options && typeof options === 'object' && options.port === port && options.host === '0.0.0.0') {
      return listen.call(this, { ...options, host: '127.0.0.1' }, ...(args.slice(1) as [() => void]));
    }
    return (listen as (...rest: unknown[]) => Server).apply(this, args);
  };
  Server.prototype.listen = patched as typeof listen;
  try {
    return await start();
  } finally {
    if (Server.prototype.listen === patched) Server.prototype.listen = listen;
  }
}

/**
 * Start `fauxqs`, an SQS-compatible server, in this process, listening on 127.0.0.1 only;
 * clients must use `http://127.0.0.1:<port>` as endpoint and queue URLs of that host
 * (see `localQueueUrl`).
 */
export async function startSqsLocal(options: SqsLocalOptions = {}): Promise<SqsLocal> {
  const port = options.port ?? (await freePort());
  if (options.port !== undefined && (await portInUse(port))) {
    throw new Error(`port ${port} is taken: the local SQS server cannot listen on it (choose another with --sqs-port)`);
  }
  await patchFauxqsFifoReceive();
  await patchFauxqsBodyCharacters();
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    await patchFauxqsPersistence();
  }
  const server = await onLoopback(port, () =>
    startFauxqs({
      port,
      host: '127.0.0.1',
      logger: false,
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    }),
  );
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
