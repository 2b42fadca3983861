/** One stored event as the cache keeps it: enough to find a duplicate and bound the window. */
export interface CachedEvent {
  readonly version: number;
  readonly eventId: string;
  /** The content fingerprint (core/event.ts `eventFingerprint`): same EventId, other content is a conflict. */
  readonly fingerprint: string;
  /** `RecordedAt` in epoch ms (NaN when unreadable: such an event never ends the window). */
  readonly recordedAt: number;
  /** Its `SourceSequence`, when it came in a FIFO message whose group is its stream. */
  readonly sequence?: string | undefined;
  /** Stored from a group message: its place in the group, from 0 (`version - groupIndex` is the group's first version). */
  readonly groupIndex?: number | undefined;
  /** Stored from a group message: how many events its group has. */
  readonly groupSize?: number | undefined;
}

/**
 * What the store remembers of a stream it wrote or read recently, per container: its head
 * version and a contiguous run of its newest events.
 */
export interface StreamHead {
  /** The newest version this container knows of (0: the stream had no events). */
  version: number;
  /**
   * The events known, oldest first, contiguous, the last one at `version` (empty only while
   * nothing of the stream was read). Extended at the top by puts and catch-up reads, and
   * downward by reads the duplicate window needs.
   */
  readonly tail: CachedEvent[];
  /**
   * Set when a conditional put lost to another writer: `version` and `tail` are right as far
   * as they go, but newer events may exist. The store reads only those before its next put.
   */
  behind?: boolean;
  /**
   * Set when this container lost a race on the stream: other writers are active, so the
   * store reads what is newer before the first put of each batch (1 read unit) rather than risk
   * a failed put (1 write unit, five times the price). Cleared after `QUIET_CATCH_UPS` such
   * reads in a row found nothing new.
   */
  contended?: boolean;
  /** Read-first catch-ups in a row that found nothing new since the stream was last contended. */
  quietCatchUps?: number;
}

/** How a message's duplicate window is bounded (core/store.ts `AppendOptions`). */
export interface WindowBound {
  /** At most this many events (counted from the first one recorded before `since`, when set). */
  readonly window: number;
  /** Epoch ms: the first event (newest first) recorded before this ends the window. */
  readonly notBefore?: number | undefined;
  /**
   * Epoch ms, a redelivery's: every event recorded at or after this is in the window, however
   * many; the count cap starts at the first one (newest first) recorded before it.
   */
  readonly since?: number | undefined;
}

/**
 * The duplicate window of a message (docs/ARCHITECTURE.md, "Appending and idempotency"): the
 * stream's newest events, newest first, down to but not including the first one recorded
 * before `notBefore`, and at most `window` of them. A redelivery's window (`since`: its own
 * `SentTimestamp` less the clock allowance) also holds every event recorded since, however
 * many, and counts `window` from the first one recorded before: so it holds every event the
 * first delivery's window held, and the copy a delivery stored. A window that the count cap
 * would end inside a group reaches down to the group's first event. The one rule both a container
 * that has the stream cached and one that reads it cold apply, so a verdict never depends on
 * which container handles the message.
 *
 * @param head the head version and the events known (oldest first, contiguous up to the head)
 * @returns the window, newest first; undefined when the events known cannot decide it (none
 *   of them is older than `notBefore`, fewer than `window`, and version 1 is not among them):
 *   older events must be read first.
 *
 * @example
 * ```ts
 * const head = { version: 3, tail: [e1, e2, e3] };
 * duplicateWindow(head, { window: 50 }); // [e3, e2, e1]
 * duplicateWindow(head, { window: 2 }); // [e3, e2]
 * duplicateWindow(head, { window: 1, since: e2.recordedAt }); // [e3, e2, e1] if e1 is older than e2
 * duplicateWindow({ version: 9, tail: [e8, e9] }, { window: 50, notBefore: e9.recordedAt }); // [e9] if e8 is older, else undefined
 * ```
 */
export function duplicateWindow(
  head: { readonly version: number; readonly tail: readonly CachedEvent[] },
  bound: WindowBound,
): CachedEvent[] | undefined {
  const { tail } = head;
  const window: CachedEvent[] = [];
  let counted = 0;
  let counting = bound.since === undefined;
  for (let index = tail.length - 1; index >= 0; index -= 1) {
    const event = tail[index] as CachedEvent;
    if (bound.notBefore !== undefined && event.recordedAt < bound.notBefore) return window;
    // An unreadable RecordedAt (NaN) never starts the count: the window only grows.
    if (!counting && bound.since !== undefined && event.recordedAt < bound.since) counting = true;
    if (counting) {
      if (counted >= bound.window && startsGroup(window)) return window;
      counted += 1;
    }
    window.push(event);
  }
  if (counting && counted >= bound.window && startsGroup(window)) return window;
  const lowest = tail[0]?.version ?? head.version + 1;
  return lowest <= 1 ? window : undefined;
}

/**
 * Whether the oldest event of a window (newest first) is the first of its group, or was sent
 * alone: the count cap never ends a window inside a group (docs/ARCHITECTURE.md, "Groups"), so a
 * resend of a group finds all of its events or none. (The time bounds cannot split one: a
 * group's events share their `RecordedAt`.)
 */
function startsGroup(window: readonly CachedEvent[]): boolean {
  const oldest = window.at(-1);
  return oldest === undefined || (oldest.groupIndex ?? 0) === 0;
}

/**
 * A bounded, least-recently-used cache of stream heads. A hit lets the store put at
 * head + 1 with no read; a failed condition proves the entry stale and the store drops it.
 *
 * @example
 * ```ts
 * const cache = new StreamHeadCache({ maxStreams: 1000, window: 1000 });
 * cache.remember('order-1', { version: 1, eventId: 'evt-1', fingerprint: 'fp', recordedAt: Date.now() });
 * cache.get('order-1')?.version; // 1
 * ```
 */
export class StreamHeadCache {
  readonly #maxStreams: number;
  readonly #window: number;
  readonly #heads = new Map<string, StreamHead>();

  /** `window`: how many of a stream's newest events are kept at most. */
  public constructor(options: { maxStreams: number; window: number }) {
    this.#maxStreams = Math.max(0, options.maxStreams);
    this.#window = Math.max(1, options.window);
  }

  /** The cached head, refreshed as most recently used; undefined when not cached. */
  public get(streamId: string): StreamHead | undefined {
    const head = this.#heads.get(streamId);
    if (head) {
      this.#heads.delete(streamId);
      this.#heads.set(streamId, head);
    }
    return head;
  }

  /**
   * Replace what is known of a stream with its newest events as read, newest first (the first
   * is the head; none: the stream is empty).
   */
  public load(streamId: string, newestFirst: readonly CachedEvent[]): StreamHead {
    const head: StreamHead = { version: newestFirst[0]?.version ?? 0, tail: [] };
    this.extendDown(head, newestFirst);
    this.#trim(head);
    this.#set(streamId, head);
    return head;
  }

  /** Record an event written at the head's next version. */
  public remember(streamId: string, event: CachedEvent): void {
    const head = this.#heads.get(streamId) ?? { version: 0, tail: [] };
    this.extend(head, event);
    this.#set(streamId, head);
  }

  /**
   * Add the event at the next version to a head the caller holds, whether or not it is still
   * cached (an entry evicted while the caller awaited must not come back with a partial
   * window). An event that does not follow the head starts the tail again.
   */
  public extend(head: StreamHead, event: CachedEvent): void {
    if (event.version !== head.version + 1) head.tail.length = 0;
    head.version = event.version;
    head.tail.push(event);
    this.#trim(head);
  }

  /**
   * Add older events, newest first, below the lowest one known: only as far as they are
   * contiguous with it (the head's version when nothing is known yet).
   */
  public extendDown(head: StreamHead, newestFirst: readonly CachedEvent[]): void {
    let next = (head.tail[0]?.version ?? head.version + 1) - 1;
    const older: CachedEvent[] = [];
    for (const event of newestFirst) {
      if (event.version !== next || older.length + head.tail.length >= this.#window) break;
      older.push(event);
      next -= 1;
    }
    head.tail.unshift(...older.reverse());
  }

  public forget(streamId: string): void {
    this.#heads.delete(streamId);
  }

  public get size(): number {
    return this.#heads.size;
  }

  #trim(head: StreamHead): void {
    const excess = head.tail.length - this.#window;
    if (excess > 0) head.tail.splice(0, excess);
  }

  #set(streamId: string, head: StreamHead): void {
    if (this.#maxStreams === 0) return;
    this.#heads.delete(streamId);
    this.#heads.set(streamId, head);
    while (this.#heads.size > this.#maxStreams) {
      const oldest = this.#heads.keys().next().value;
      if (oldest === undefined) break;
      this.#heads.delete(oldest);
    }
  }
}
