import type { RedriveQueues } from '../../core/redrive-run.ts';
import type { LocalTaskHandler } from '../../local/workflow-runner.ts';

/**
 * Where a batch call dies: at the `call`-th SQS call of the run (1 = the first), either before
 * it reaches SQS or after SQS applied it. Lambda reports a function that timed out or ran out of
 * memory as `Lambda.Unknown` to Step Functions (its docs, "Handle Lambda service exceptions"),
 * the runtime's payload as `Sandbox.Timedout`: both are tried.
 */
export interface KillPoint {
  /** Count only this kind of call (`send`, `hold` ...). @default every SQS call */
  readonly on?: keyof RedriveQueues;
  readonly call: number;
  readonly when: 'before' | 'after';
  readonly error: 'Lambda.Unknown' | 'Sandbox.Timedout';
}

/** Thrown to the handler's own code at the kill: what it does after is never applied. */
class KilledError extends Error {
  public constructor() {
    super('the invocation was killed here');
    this.name = 'KilledError';
  }
}

/**
 * A Lambda killed at an await, which no engine can do on demand: from the kill on, no SQS call of
 * that invocation takes effect (calls already on the wire may still land, as on AWS), and the
 * state machine sees the invocation fail with `point.error` whatever the handler did next.
 *
 * @example
 * ```ts
 * const killer = new InvocationKiller({ call: 4, when: 'after', error: 'Lambda.Unknown' });
 * await runLocalRedrive({ ..., wrapQueues: (q) => killer.queues(q), wrapHandler: (h) => killer.handler(h) });
 * ```
 */
export class InvocationKiller {
  /** SQS calls of the run so far (of the kind `point.on` names, when it does). */
  public calls = 0;
  /** Whether the kill happened (a run may end before its call). */
  public fired = false;
  /** The action of the invocation that was killed. */
  public killedAction: string | undefined;
  #current: { killed: boolean; action: string } | undefined;

  public constructor(private readonly point: KillPoint) {}

  public handler(handle: LocalTaskHandler): LocalTaskHandler {
    return async (event) => {
      const invocation = { killed: false, action: String((event as { action?: unknown }).action) };
      this.#current = invocation;
      let result: unknown;
      let failure: unknown;
      try {
        result = await handle(event);
      } catch (error) {
        failure = error;
      }
      if (invocation.killed) {
        const cause = this.point.error === 'Sandbox.Timedout' ? 'Task timed out after 60.00 seconds' : 'Runtime exited';
        throw Object.assign(new Error(cause), { name: this.point.error });
      }
      if (failure !== undefined) throw failure;
      return result;
    };
  }

  public queues(queues: RedriveQueues): RedriveQueues {
    const gate = async <T>(kind: keyof RedriveQueues, call: () => Promise<T>): Promise<T> => {
      const invocation = this.#current;
      if (invocation?.killed) throw new KilledError();
      const counted = this.point.on === undefined || this.point.on === kind;
      if (counted) this.calls += 1;
      const fatal = counted && this.calls === this.point.call && invocation !== undefined && !this.fired;
      if (fatal && this.point.when === 'before') this.#kill(invocation);
      const result = await call();
      if (fatal && this.point.when === 'after') this.#kill(invocation);
      return result;
    };
    return {
      receive: (request) => gate('receive', () => queues.receive(request)),
      send: (message) => gate('send', () => queues.send(message)),
      delete: (handles) => gate('delete', () => queues.delete(handles)),
      hold: (handles, seconds) => gate('hold', () => queues.hold(handles, seconds)),
      release: (handles) => gate('release', () => queues.release(handles)),
    };
  }

  #kill(invocation: { killed: boolean; action: string }): never {
    invocation.killed = true;
    this.fired = true;
    this.killedAction = invocation.action;
    throw new KilledError();
  }
}
