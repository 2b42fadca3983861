import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Virtual time for the subscription fault explorer. Every async chain a schedule starts (an
 * invocation of the subscription function, a user's command) runs inside `actorStorage`; there
 * `setTimeout`, `clearTimeout`, `Date.now` and `Math.random` are the schedule's own, so the
 * runtime's rate limiter, lease times and deadlines, and the function timeout, happen in a
 * reproducible order and cost no real time. Outside a schedule nothing changes.
 */
export interface Actor {
  readonly clock: VirtualClock;
  /** The invocation (or user command) the chain belongs to; a killed one's timers never fire. */
  readonly actorId: number;
  readonly random: () => number;
}

export const actorStorage = new AsyncLocalStorage<Actor>();

export class VirtualTimer {
  public cleared = false;

  public constructor(
    public readonly id: number,
    public readonly at: number,
    public readonly actorId: number,
    public readonly fire: () => void,
    public readonly clock: VirtualClock,
  ) {}

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

export class VirtualClock {
  #timers: VirtualTimer[] = [];
  #sequence = 0;
  public readonly errors: unknown[] = [];
  /** Bumped whenever a timer is set or cleared (the scheduler's "something moved" signal). */
  public changes = 0;

  public constructor(public now: number) {}

  public setTimeout(actorId: number, callback: () => void, ms: number): VirtualTimer {
    const run = AsyncLocalStorage.snapshot();
    const delay = Number.isFinite(ms) && ms > 0 ? Math.floor(ms) : 0;
    const timer = new VirtualTimer(++this.#sequence, this.now + delay, actorId, () => run(callback), this);
    this.#timers.push(timer);
    this.changes += 1;
    return timer;
  }

  public clear(timer: VirtualTimer): void {
    if (timer.cleared) return;
    timer.cleared = true;
    this.#timers = this.#timers.filter((candidate) => candidate !== timer);
    this.changes += 1;
  }

  public nextDue(): number | undefined {
    let next: number | undefined;
    for (const timer of this.#timers) if (next === undefined || timer.at < next) next = timer.at;
    return next;
  }

  /** Timers of an actor that are still pending. */
  public pendingOf(actorId: number): number {
    return this.#timers.filter((timer) => timer.actorId === actorId).length;
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
    if (due.length > 0) this.changes += 1;
    return due.length;
  }

  /** A killed invocation's timers never fire. */
  public dropActor(actorId: number): void {
    this.#timers = this.#timers.filter((timer) => timer.actorId !== actorId);
    this.changes += 1;
  }
}

const real = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  dateNow: Date.now,
  random: Math.random,
};

export const realSetImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

let installations = 0;

/** Route the timing globals through `actorStorage`; returns the uninstaller (installations nest). */
export function installVirtualTime(): () => void {
  installations += 1;
  if (installations === 1) {
    const virtualSetTimeout = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): unknown => {
      const actor = actorStorage.getStore();
      if (!actor) return real.setTimeout(callback, ms, ...args);
      return actor.clock.setTimeout(actor.actorId, () => callback(...args), ms ?? 0);
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
    Date.now = () => actorStorage.getStore()?.clock.now ?? real.dateNow();
    Math.random = () => {
      const actor = actorStorage.getStore();
      return actor ? actor.random() : real.random();
    };
  }
  return () => {
    installations -= 1;
    if (installations === 0) {
      globalThis.setTimeout = real.setTimeout;
      globalThis.clearTimeout = real.clearTimeout;
      Date.now = real.dateNow;
      Math.random = real.random;
    }
  };
}
