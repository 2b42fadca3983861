import { AsyncLocalStorage } from 'node:async_hooks';
import type { CallHost } from './sim-http.ts';

/**
 * Virtual time for the fault exploration. Every async chain a schedule starts (a container's
 * handler invocation, the SDK calls it makes, the timers they set) runs inside `actorStorage`;
 * while it does, `setTimeout`, `clearTimeout`, `Date.now`, `Math.random` and
 * `AbortSignal.timeout` are served by the schedule's own clock and random source instead of
 * the machine's. Time then passes only when the scheduler says so: a retry backoff, an SDK
 * request timeout, an abort after `context.getRemainingTimeInMillis()`, the function timeout
 * and SQS's visibility timeout all happen in a reproducible order and cost no real time.
 * Outside a schedule (vitest, the real HTTP exchange with DynamoDB Local) nothing changes.
 * `timers/promises` and `setInterval` are not virtualised (the code under test uses neither).
 */
export interface Actor {
  readonly clock: VirtualClock;
  /** The handler invocation this chain belongs to; a killed invocation's timers never fire. */
  readonly invocationId: number;
  /** What `Math.random` returns inside the chain (the store's and the SDK's backoff jitter). */
  readonly random: () => number;
  /** The schedule the chain's SDK calls report to (yield points, faults, the DLQ model). */
  readonly host: CallHost;
  /** How far this container's clock is off the schedule's (SQS's): `Date.now` adds it. */
  readonly clockOffsetMs?: number;
}

export const actorStorage = new AsyncLocalStorage<Actor>();

export class VirtualTimer {
  public cleared = false;

  public constructor(
    public readonly id: number,
    public readonly at: number,
    public readonly invocationId: number,
    public readonly fire: () => void,
    public readonly clock: VirtualClock,
  ) {}

  // The parts of Node's Timeout object that callers use.
  public unref(): this {
    return this;
  }
  public ref(): this {
    return this;
  }
  public hasRef(): boolean {
    return true;
  }
  public [Symbol.toPrimitive](): number {
    return this.id;
  }
}

/** One schedule's clock: the current virtual time and its pending timers. */
export class VirtualClock {
  #timers: VirtualTimer[] = [];
  #sequence = 0;
  /** Errors thrown by timer callbacks (a real timer's would crash the process). */
  public readonly errors: unknown[] = [];

  public constructor(
    public now: number,
    /** Called whenever a timer is added or removed (the scheduler's quiescence check). */
    private readonly changed: () => void,
  ) {}

  public setTimeout(invocationId: number, callback: () => void, ms: number): VirtualTimer {
    const run = AsyncLocalStorage.snapshot();
    const delay = Number.isFinite(ms) && ms > 0 ? Math.floor(ms) : 0;
    const timer = new VirtualTimer(++this.#sequence, this.now + delay, invocationId, () => run(callback), this);
    this.#timers.push(timer);
    this.changed();
    return timer;
  }

  public clear(timer: VirtualTimer): void {
    if (timer.cleared) return;
    timer.cleared = true;
    this.#timers = this.#timers.filter((candidate) => candidate !== timer);
    this.changed();
  }

  /** The time of the next timer, if any. */
  public nextDue(): number | undefined {
    let next: number | undefined;
    for (const timer of this.#timers) if (next === undefined || timer.at < next) next = timer.at;
    return next;
  }

  public get pending(): number {
    return this.#timers.length;
  }

  /** Move to `time` and fire every timer due by then, by due time, then creation order. */
  public advanceTo(time: number): number {
    if (time > this.now) this.now = time;
    const due = this.#timers.filter((timer) => timer.at <= this.now).sort((a, b) => a.at - b.at || a.id - b.id);
    for (const timer of due) {
      if (timer.cleared) continue;
      timer.cleared = true;
      this.#timers = this.#timers.filter((candidate) => candidate !== timer);
      try {
        timer.fire();
      } catch (error) {
        this.errors.push(error);
      }
    }
    if (due.length > 0) this.changed();
    return due.length;
  }

  /** A killed invocation's timers never fire (Lambda froze and reset its environment). */
  public dropInvocation(invocationId: number): void {
    const before = this.#timers.length;
    this.#timers = this.#timers.filter((timer) => timer.invocationId !== invocationId);
    if (this.#timers.length !== before) this.changed();
  }
}

const real = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  dateNow: Date.now,
  random: Math.random,
  abortTimeout: AbortSignal.timeout,
};

/** The machine's own `setImmediate`, for the scheduler (it is never virtualised). */
export const realSetImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

let installations = 0;

/**
 * Route the timing globals through `actorStorage` (see the module comment). Returns the
 * uninstaller; installations nest.
 */
export function installVirtualTime(): () => void {
  installations += 1;
  if (installations === 1) {
    const virtualSetTimeout = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): unknown => {
      const actor = actorStorage.getStore();
      if (!actor) return real.setTimeout(callback, ms, ...args);
      return actor.clock.setTimeout(actor.invocationId, () => callback(...args), ms ?? 0);
    };
    const virtualClearTimeout = (timer: unknown): void => {
      if (timer instanceof VirtualTimer) {
        timer.clock.clear(timer);
        return;
      }
      real.clearTimeout(timer as Parameters<typeof clearTimeout>[0]);
    };
    // Node's setTimeout type carries a `__promisify__` member that a plain function lacks.
    globalThis.setTimeout = virtualSetTimeout as unknown as typeof setTimeout;
    globalThis.clearTimeout = virtualClearTimeout as typeof clearTimeout;
    Date.now = () => {
      const actor = actorStorage.getStore();
      return actor ? actor.clock.now + (actor.clockOffsetMs ?? 0) : real.dateNow();
    };
    Math.random = () => {
      const actor = actorStorage.getStore();
      return actor ? actor.random() : real.random();
    };
    AbortSignal.timeout = (ms: number): AbortSignal => {
      const actor = actorStorage.getStore();
      if (!actor) return real.abortTimeout.call(AbortSignal, ms);
      const controller = new AbortController();
      actor.clock.setTimeout(
        actor.invocationId,
        () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
        ms,
      );
      return controller.signal;
    };
  }
  return () => {
    installations -= 1;
    if (installations === 0) {
      globalThis.setTimeout = real.setTimeout;
      globalThis.clearTimeout = real.clearTimeout;
      Date.now = real.dateNow;
      Math.random = real.random;
      AbortSignal.timeout = real.abortTimeout;
    }
  };
}
