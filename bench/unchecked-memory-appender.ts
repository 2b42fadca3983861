import { eventFingerprint, type ValidEvent, type ValidGroup } from '../core/event.ts';
import { RejectionReason } from '../core/reasons.ts';
import type { AppendOptions, AppendOutcome, ReadStreamOptions, ReadStreamResult, StoredEvent } from '../core/store.ts';

/**
 * NOT AN EVENT STORE: an in-memory appender with the store's shape, only for measuring the
 * handler's own CPU time per event without the SDK and the network (docs/PERFORMANCE.md).
 * It exists because the handler takes an `EventStore` and the measurement needs one that
 * costs nearly nothing. It checks duplicates by EventId within the window and nothing else:
 * it ignores `ExpectedVersion`, FIFO source sequences and deadlines, keeps nothing beyond the
 * process, and does not run the store contract suite (test/contract/event-store-contract.ts).
 * Never use it as a store.
 */
export class UncheckedMemoryAppender {
  readonly #streams = new Map<string, StoredEvent[]>();

  public async appendToStream(
    streamId: string,
    events: readonly ValidEvent[],
    options: AppendOptions = {},
  ): Promise<AppendOutcome[]> {
    const stream = this.#streams.get(streamId) ?? [];
    this.#streams.set(streamId, stream);
    const window = options.dedupWindow ?? 50;
    return events.map((event) => {
      const known = stream.slice(-window).find((stored) => stored.EventId === event.EventId);
      if (known) {
        return eventFingerprint(known) === eventFingerprint(event)
          ? { status: 'duplicate', version: known.Version }
          : {
              status: 'rejected',
              reason: RejectionReason.EventIdConflict,
              detail: `EventId: ${event.EventId} differs`,
            };
      }
      const version = stream.length + 1;
      stream.push({ ...event, ID: streamId, Version: version, RecordedAt: new Date().toISOString() });
      return { status: 'stored', version };
    });
  }

  /** Appends a group's events with no atomicity and no checks beyond `appendToStream`'s (see above). */
  public async appendGroup(group: ValidGroup, options: AppendOptions = {}): Promise<AppendOutcome> {
    const outcomes = await this.appendToStream(group.ID, group.events, options);
    const first = outcomes[0];
    return first?.status === 'stored'
      ? { ...first, count: group.events.length }
      : (first ?? { status: 'stored', version: 0 });
  }

  public async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    const stream = this.#streams.get(streamId) ?? [];
    const from = options.fromVersion ?? 1;
    return { events: stream.filter((event) => event.Version >= from).slice(0, options.limit), version: stream.length };
  }
}
