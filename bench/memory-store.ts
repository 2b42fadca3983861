import { eventFingerprint, type ValidEvent } from '../core/event.ts';
import { RejectionReason } from '../core/reasons.ts';
import type { AppendOptions, AppendOutcome, EventStore, ReadStreamOptions, ReadStreamResult, StoredEvent } from '../core/store.ts';

/**
 * An in-memory stand-in for the store, only for measuring the handler's own CPU time per
 * event without the SDK and the network. Not a store to use: no persistence, one process.
 */
export class MemoryEventStore implements EventStore {
  readonly #streams = new Map<string, StoredEvent[]>();

  public async appendToStream(streamId: string, events: readonly ValidEvent[], options: AppendOptions = {}): Promise<AppendOutcome[]> {
    const stream = this.#streams.get(streamId) ?? [];
    this.#streams.set(streamId, stream);
    const window = options.dedupWindow ?? 50;
    return events.map((event) => {
      const known = stream.slice(-window).find((stored) => stored.EventId === event.EventId);
      if (known) {
        return eventFingerprint(known) === eventFingerprint(event)
          ? { status: 'duplicate', version: known.Version }
          : { status: 'rejected', reason: RejectionReason.EventIdConflict, detail: `EventId: ${event.EventId} differs` };
      }
      const version = stream.length + 1;
      stream.push({ ...event, ID: streamId, Version: version, RecordedAt: new Date().toISOString() });
      return { status: 'stored', version };
    });
  }

  public async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    const stream = this.#streams.get(streamId) ?? [];
    const from = options.fromVersion ?? 1;
    return { events: stream.filter((event) => event.Version >= from).slice(0, options.limit), version: stream.length };
  }
}
