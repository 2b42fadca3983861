import { describe, expect, it } from 'vitest';
import { parseEvent, type ValidEvent } from '../../core/event.ts';
import { RejectionReason } from '../../core/reasons.ts';
import type { EventStore } from '../../core/store.ts';
import { randomUUID } from 'node:crypto';
import { parsedEvent } from '../support/factories.ts';

export interface StoreFactory {
  /** A store over the suite's table; each call is a separate container (its own cache). */
  create(hooks?: { onConflict?: (streamId: string) => void }): EventStore;
}

let counter = 0;

/** A valid event for `streamId`; every call differs unless the overrides say otherwise. */
export function makeEvent(streamId: string, overrides: Record<string, unknown> = {}): ValidEvent {
  counter += 1;
  return parsedEvent({ ID: streamId, EmitterId: 'contract-test', Data: { n: counter }, ...overrides });
}

function newStream(): string {
  return `stream-${randomUUID()}`;
}

/**
 * The behaviour every event store must have (docs/ARCHITECTURE.md, "Appending and idempotency"). Run it with a factory
 * for each implementation; no case is skipped.
 */
export function eventStoreContract(name: string, factory: StoreFactory): void {
  describe(`${name}: event store contract`, () => {
    it('appends and reads back an event with every field, at version 1', async () => {
      const store = factory.create();
      const id = newStream();
      const event = makeEvent(id, { Data: { amount: 12.5, tags: ['a', 'b'], nested: { ok: true, none: null } } });

      const outcomes = await store.appendToStream(id, [event]);
      const read = await store.readStream(id);

      expect(outcomes).toEqual([{ status: 'stored', version: 1 }]);
      expect(read.version).toBe(1);
      expect(read.events).toHaveLength(1);
      const [stored] = read.events;
      expect(stored).toMatchObject({
        ID: id,
        Version: 1,
        EventId: event.EventId,
        EventType: 'EVENT_EXAMPLE',
        Timestamp: 1596719980,
        EmitterId: 'contract-test',
        EmitterType: 'SYSTEM',
        Data: { amount: 12.5, tags: ['a', 'b'], nested: { ok: true, none: null } },
      });
      expect(Date.parse(stored!.RecordedAt)).not.toBeNaN();
    });

    it('numbers versions 1, 2, 3 ... without gaps across appends and stores', async () => {
      const id = newStream();
      const first = factory.create();
      const second = factory.create();

      const a = await first.appendToStream(id, [makeEvent(id), makeEvent(id)]);
      const b = await second.appendToStream(id, [makeEvent(id)]);
      const c = await first.appendToStream(id, [makeEvent(id), makeEvent(id)]);

      expect([...a, ...b, ...c].map((outcome) => outcome.status === 'stored' && outcome.version)).toEqual([
        1, 2, 3, 4, 5,
      ]);
      expect((await first.readStream(id)).events.map((event) => event.Version)).toEqual([1, 2, 3, 4, 5]);
    });

    it('keeps two events with the same Timestamp (the original design overwrote one)', async () => {
      const store = factory.create();
      const id = newStream();

      const outcomes = await store.appendToStream(id, [
        makeEvent(id, { Timestamp: 1596719980 }),
        makeEvent(id, { Timestamp: 1596719980 }),
      ]);

      expect(outcomes).toEqual([
        { status: 'stored', version: 1 },
        { status: 'stored', version: 2 },
      ]);
    });

    it('acknowledges a redelivered event once, in the same and in another container', async () => {
      const id = newStream();
      const event = makeEvent(id);
      const store = factory.create();
      await store.appendToStream(id, [event, makeEvent(id)]);

      const sameContainer = await store.appendToStream(id, [event]);
      const otherContainer = await factory.create().appendToStream(id, [event]);

      expect(sameContainer).toEqual([{ status: 'duplicate', version: 1 }]);
      expect(otherContainer).toEqual([{ status: 'duplicate', version: 1 }]);
      expect((await store.readStream(id)).version).toBe(2);
    });

    it('recognises an event sent again without EventId by its derived id', async () => {
      const id = newStream();
      const body = {
        Timestamp: '2020-08-06T13:19:40Z',
        EventType: 'ORDER_PLACED',
        ID: id,
        EmitterId: 'web',
        EmitterType: 'USER',
        Data: { b: 1, a: 2 },
      };
      const first = parseEvent(body);
      const again = parseEvent({
        Data: { a: 2, b: 1 },
        EmitterType: 'USER',
        EmitterId: 'web',
        ID: id,
        EventType: 'ORDER_PLACED',
        Timestamp: '2020-08-06T13:19:40Z',
      });
      if (!first.ok || !again.ok) throw new Error('test events are invalid');
      if (first.kind !== 'event' || again.kind !== 'event') throw new Error('expected single events');

      await factory.create().appendToStream(id, [first.event]);
      const outcome = await factory.create().appendToStream(id, [again.event]);

      expect(outcome).toEqual([{ status: 'duplicate', version: 1 }]);
    });

    it('rejects the same EventId with different content as EventIdConflict', async () => {
      const id = newStream();
      const store = factory.create();
      await store.appendToStream(id, [makeEvent(id, { EventId: 'evt-1', Data: { v: 1 } })]);

      const cached = await store.appendToStream(id, [makeEvent(id, { EventId: 'evt-1', Data: { v: 2 } })]);
      const cold = await factory.create().appendToStream(id, [makeEvent(id, { EventId: 'evt-1', EventType: 'OTHER' })]);

      const expected = {
        status: 'rejected',
        reason: RejectionReason.EventIdConflict,
        detail: `EventId: "evt-1" is already stored at version 1 of stream ${JSON.stringify(id)} with different content`,
      };
      expect(cached).toEqual([expected]);
      expect(cold).toEqual([expected]);
      expect((await store.readStream(id)).version).toBe(1);
    });

    it('ExpectedVersion 0 creates a stream and is rejected once the stream exists', async () => {
      const id = newStream();
      const store = factory.create();

      const created = await store.appendToStream(id, [makeEvent(id, { ExpectedVersion: 0 })]);
      const again = await factory.create().appendToStream(id, [makeEvent(id, { ExpectedVersion: 0 })]);

      expect(created).toEqual([{ status: 'stored', version: 1 }]);
      expect(again).toEqual([
        {
          status: 'rejected',
          reason: RejectionReason.WrongExpectedVersion,
          detail: `ExpectedVersion: 0, but stream ${JSON.stringify(id)} already has another event at version 1`,
        },
      ]);
    });

    it('ExpectedVersion n appends at n + 1 only when the stream is exactly at n; a stream below n is behind, not rejected', async () => {
      const id = newStream();
      const writer = factory.create();
      await writer.appendToStream(id, [makeEvent(id), makeEvent(id)]);

      const tooFar = await factory.create().appendToStream(id, [makeEvent(id, { ExpectedVersion: 5 })]);
      const exact = await factory.create().appendToStream(id, [makeEvent(id, { ExpectedVersion: 2 })]);
      const stale = await writer.appendToStream(id, [makeEvent(id, { ExpectedVersion: 2 })]);

      expect(tooFar).toEqual([
        {
          status: 'behind',
          expected: 5,
          actual: 2,
          detail: `ExpectedVersion: 5, but stream ${JSON.stringify(id)} is at version 2`,
        },
      ]);
      expect(exact).toEqual([{ status: 'stored', version: 3 }]);
      expect(stale).toEqual([
        {
          status: 'rejected',
          reason: RejectionReason.WrongExpectedVersion,
          detail: `ExpectedVersion: 2, but stream ${JSON.stringify(id)} already has another event at version 3`,
        },
      ]);
      expect((await writer.readStream(id)).events.map((event) => event.Version)).toEqual([1, 2, 3]);
    });

    it('an EventId already in the stream is a duplicate or a conflict whatever ExpectedVersion says (a producer retry that re-read the stream)', async () => {
      const id = newStream();
      const first = makeEvent(id, { EventId: 'e1', ExpectedVersion: 0 });
      await factory.create().appendToStream(id, [first]);

      const retried = await factory.create().appendToStream(id, [{ ...first, ExpectedVersion: 1 }]);
      const changed = await factory
        .create()
        .appendToStream(id, [{ ...first, ExpectedVersion: 1, Data: { other: true } }]);

      expect(retried).toEqual([{ status: 'duplicate', version: 1 }]);
      expect(changed).toEqual([
        {
          status: 'rejected',
          reason: RejectionReason.EventIdConflict,
          detail: `EventId: "e1" is already stored at version 1 of stream ${JSON.stringify(id)} with different content`,
        },
      ]);
      expect((await factory.create().readStream(id)).events.map((event) => event.EventId)).toEqual(['e1']);
    });

    it('ExpectedVersion redelivered after it was stored is a duplicate, not a wrong version', async () => {
      const id = newStream();
      const event = makeEvent(id, { ExpectedVersion: 0 });
      await factory.create().appendToStream(id, [event]);

      const outcome = await factory.create().appendToStream(id, [event]);

      expect(outcome).toEqual([{ status: 'duplicate', version: 1 }]);
    });

    it('a stale cache loses the conditional put, reports a conflict and appends after the real head', async () => {
      const id = newStream();
      const conflicts: string[] = [];
      const cached = factory.create({ onConflict: (streamId) => conflicts.push(streamId) });
      await cached.appendToStream(id, [makeEvent(id)]);
      await factory.create().appendToStream(id, [makeEvent(id), makeEvent(id)]);

      const outcome = await cached.appendToStream(id, [makeEvent(id)]);

      expect(outcome).toEqual([{ status: 'stored', version: 4 }]);
      expect(conflicts).toEqual([id]);
    });

    it('8 containers appending to one stream at once end gapless with every event once', async () => {
      const id = newStream();
      const batches = Array.from({ length: 8 }, () => Array.from({ length: 5 }, () => makeEvent(id)));

      // A container that loses every one of its conditional puts reports the rest failed, and
      // SQS delivers them again: do the same (at most 5 rounds) before checking the outcome.
      const results = await Promise.all(
        batches.map(async (events) => {
          const container = factory.create();
          let pending = [...events];
          const outcomes = [];
          for (let round = 0; round < 5 && pending.length > 0; round += 1) {
            const attempt = await container.appendToStream(id, pending);
            outcomes.push(...attempt.filter((outcome) => outcome.status !== 'failed'));
            pending = pending.filter((_, index) => attempt[index]?.status === 'failed');
          }
          return outcomes;
        }),
      );
      const read = await factory.create().readStream(id);

      expect(results.flat().filter((outcome) => outcome.status !== 'stored')).toEqual([]);
      expect(read.events.map((event) => event.Version)).toEqual(Array.from({ length: 40 }, (_, index) => index + 1));
      expect(new Set(read.events.map((event) => event.EventId))).toEqual(
        new Set(batches.flat().map((event) => event.EventId)),
      );
    });

    it('rejects an item over 400 KB as ItemTooLarge without writing it', async () => {
      const id = newStream();
      const store = factory.create();

      const outcome = await store.appendToStream(id, [
        makeEvent(id, { Data: { blob: 'x'.repeat(410 * 1024) } }),
        makeEvent(id),
      ]);

      expect(outcome[0]).toMatchObject({ status: 'rejected', reason: RejectionReason.ItemTooLarge });
      expect(outcome[1]).toEqual({ status: 'stored', version: 1 });
    });

    it('reads forward and backward, from a version, with a limit, across pages', async () => {
      const id = newStream();
      const store = factory.create();
      const events = Array.from({ length: 25 }, (_, index) =>
        makeEvent(id, { Data: { index, pad: 'p'.repeat(2000) } }),
      );
      await store.appendToStream(id, events);

      const all = await store.readStream(id);
      const forward = await store.readStream(id, { fromVersion: 10, limit: 5 });
      const backward = await store.readStream(id, { direction: 'backward', limit: 3 });
      const backwardFrom = await store.readStream(id, { direction: 'backward', fromVersion: 4 });
      const empty = await store.readStream(newStream());

      expect(all.events.map((event) => event.Version)).toEqual(Array.from({ length: 25 }, (_, index) => index + 1));
      expect(all.version).toBe(25);
      expect(forward.events.map((event) => event.Version)).toEqual([10, 11, 12, 13, 14]);
      expect(forward.version).toBe(25);
      expect(backward.events.map((event) => event.Version)).toEqual([25, 24, 23]);
      expect(backward.version).toBe(25);
      expect(backwardFrom.events.map((event) => event.Version)).toEqual([4, 3, 2, 1]);
      expect(backwardFrom.version).toBe(25);
      expect(empty).toEqual({ events: [], version: 0 });
    });

    it('refuses a read with a nonsensical limit', async () => {
      await expect(factory.create().readStream('any', { limit: 0 })).rejects.toThrow(
        'readStream: limit must be a whole number >= 1, got 0',
      );
    });
  });
}
