/**
 * What the store remembers of a stream it wrote recently, per container: its head version
 * and the `EventId`s (with a content fingerprint) of its newest events.
 */
export interface StreamHead {
  /** The newest version this container knows of (0: the stream had no events). */
  version: number;
  /** EventId -> { version, fingerprint } of the newest events, oldest first. */
  readonly recent: Map<string, { readonly version: number; readonly fingerprint: string }>;
  /**
   * Set when a conditional put lost to another writer: `version` and `recent` are right as far
   * as they go, but newer events may exist. The store reads only those before its next put.
   */
  behind?: boolean;
  /**
   * Set when this container lost a race on the stream: other writers are active, so the
   * store reads what is newer before its next append (1 read unit) rather than risk a failed
   * put (1 write unit, five times the price). Cleared when such a read finds nothing new.
   */
  contended?: boolean;
  /** The SQS sequence number recorded with the newest event, when it has one (FIFO, group = ID). */
  sequence?: string | undefined;
}

/**
 * A bounded, least-recently-used cache of stream heads. A hit lets the store put at
 * head + 1 with no read; a failed condition proves the entry stale and the store drops it.
 *
 * @example
 * ```ts
 * const cache = new StreamHeadCache({ maxStreams: 1000, window: 50 });
 * cache.remember('order-1', 3, 'evt-3', 'fp');
 * cache.get('order-1')?.version; // 3
 * ```
 */
export class StreamHeadCache {
  readonly #maxStreams: number;
  readonly #window: number;
  readonly #heads = new Map<string, StreamHead>();

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

  /** Replace what is known of a stream with a freshly read tail (newest last). */
  public load(
    streamId: string,
    version: number,
    tail: readonly { eventId: string; version: number; fingerprint: string }[],
  ): StreamHead {
    const recent = new Map<string, { version: number; fingerprint: string }>();
    for (const item of [...tail].sort((a, b) => a.version - b.version)) {
      recent.set(item.eventId, { version: item.version, fingerprint: item.fingerprint });
    }
    const head: StreamHead = { version, recent };
    this.#trim(head);
    this.#set(streamId, head);
    return head;
  }

  /** Record an event written at `version`, which is now the stream's head. */
  public remember(streamId: string, version: number, eventId: string, fingerprint: string): void {
    const head = this.#heads.get(streamId) ?? { version: 0, recent: new Map() };
    this.extend(head, version, eventId, fingerprint);
    this.#set(streamId, head);
  }

  /**
   * Add the event at `version` to a head the caller holds, whether or not it is still cached
   * (an entry evicted while the caller awaited must not come back with a partial window).
   */
  public extend(head: StreamHead, version: number, eventId: string, fingerprint: string): void {
    head.version = version;
    head.recent.delete(eventId);
    head.recent.set(eventId, { version, fingerprint });
    this.#trim(head);
  }

  public forget(streamId: string): void {
    this.#heads.delete(streamId);
  }

  public get size(): number {
    return this.#heads.size;
  }

  #trim(head: StreamHead): void {
    while (head.recent.size > this.#window) {
      const oldest = head.recent.keys().next().value;
      if (oldest === undefined) break;
      head.recent.delete(oldest);
    }
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
