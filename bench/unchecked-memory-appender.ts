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

  /**
   * A group as a unit, by the same window as `appendToStream` (docs/ARCHITECTURE.md, "Groups"):
   * every EventId in it with its content, `duplicate` (the first version, the count); some in
   * it, or one with other content, `EventIdConflict` naming the event; none, all its events at
   * the next versions with `GroupSize` and `GroupIndex`, one `stored` outcome. All or nothing
   * because nothing can fail in between here. Like `appendToStream`, it ignores
   * `ExpectedVersion` and FIFO source sequences: it only gives the handler the outcomes a group
   * gets, for the CPU measurement.
   */
  public async appendGroup(group: ValidGroup, options: AppendOptions = {}): Promise<AppendOutcome> {
    const stream = this.#streams.get(group.ID) ?? [];
    this.#streams.set(group.ID, stream);
    const window = stream.slice(-(options.dedupWindow ?? 50));
    const known = group.events.map((event) => window.find((stored) => stored.EventId === event.EventId));
    const same = group.events.map(
      (event, index) => known[index] !== undefined && eventFingerprint(known[index]) === eventFingerprint(event),
    );
    if (same.every(Boolean))
      return { status: 'duplicate', version: known[0]?.Version ?? 0, count: group.events.length };
    // The event with other content first; else one in the window while others are not.
    const other = known.findIndex((stored, index) => stored !== undefined && !same[index]);
    const clash = other >= 0 ? other : known.findIndex((stored) => stored !== undefined);
    if (clash >= 0) {
      return {
        status: 'rejected',
        reason: RejectionReason.EventIdConflict,
        detail: `Events[${clash}].EventId: ${group.events[clash]?.EventId} is already stored at version ${known[clash]?.Version}${same[clash] ? ', and other events of the group are not' : ' with other content'}`,
      };
    }
    const first = stream.length + 1;
    const recordedAt = new Date().toISOString();
    group.events.forEach((event, index) => {
      stream.push({
        ...event,
        ID: group.ID,
        Version: first + index,
        RecordedAt: recordedAt,
        GroupSize: group.events.length,
        GroupIndex: index,
      });
    });
    return { status: 'stored', version: first, count: group.events.length };
  }

  public async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    const stream = this.#streams.get(streamId) ?? [];
    const from = options.fromVersion ?? 1;
    return { events: stream.filter((event) => event.Version >= from).slice(0, options.limit), version: stream.length };
  }
}
