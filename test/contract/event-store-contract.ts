import { describe, expect, it } from 'vitest';
import { parseEvent, type ValidEvent, type ValidGroup } from '../../core/event.ts';
import { RejectionReason } from '../../core/reasons.ts';
import type { AppendOutcome, EventStore, StoredEvent } from '../../core/store.ts';
import { randomUUID } from 'node:crypto';
import { parsedEvent, parsedGroup, type EventBody } from '../support/factories.ts';

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

/**
 * A valid group of `streamId` (docs/ARCHITECTURE.md, "Groups"): `events` new events (every one
 * differs from every other), or one override object per event; `ExpectedVersion` when given.
 */
export function makeGroup(
  streamId: string,
  events: number | readonly EventBody[],
  expectedVersion?: number,
): ValidGroup {
  const bodies = typeof events === 'number' ? Array.from({ length: events }, (): EventBody => ({})) : events;
  return parsedGroup(
    bodies.map((overrides) => {
      counter += 1;
      return { EmitterId: 'contract-test', Data: { n: counter }, ...overrides };
    }),
    { ID: streamId, ExpectedVersion: expectedVersion },
  );
}

/** Stored events as (Version, EventId, GroupIndex, GroupSize), to compare a stream with what was sent. */
function layout(events: readonly StoredEvent[]): [number, string, number | undefined, number | undefined][] {
  return events.map((event) => [event.Version, event.EventId, event.GroupIndex, event.GroupSize]);
}

/** The layout a group stored from `first` has. */
function groupLayout(group: ValidGroup, first: number): [number, string, number, number][] {
  return group.events.map((event, index) => [first + index, event.EventId, index, group.events.length]);
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

    describe('groups: several events of one stream, all or nothing (docs/ARCHITECTURE.md, "Groups")', () => {
      it('stores a group at consecutive versions with GroupSize and GroupIndex, one RecordedAt, and a single event after it without them', async () => {
        const store = factory.create();
        const id = newStream();
        const group = makeGroup(id, [
          { EventType: 'ORDER_PLACED' },
          { EventType: 'PAYMENT_RESERVED', EventId: 'pay-1' },
          {},
        ]);
        const single = makeEvent(id);

        const outcome = await store.appendGroup(group);
        const after = await store.appendToStream(id, [single]);
        const read = await factory.create().readStream(id);

        expect(outcome).toEqual({ status: 'stored', version: 1, count: 3 });
        expect(after).toEqual([{ status: 'stored', version: 4 }]);
        expect(layout(read.events)).toEqual([...groupLayout(group, 1), [4, single.EventId, undefined, undefined]]);
        expect(read.events.map((event) => event.EventType)).toEqual([
          'ORDER_PLACED',
          'PAYMENT_RESERVED',
          'EVENT_EXAMPLE',
          'EVENT_EXAMPLE',
        ]);
        expect(read.events[1]?.EventId).toBe('pay-1');
        expect(new Set(read.events.slice(0, 3).map((event) => event.RecordedAt)).size).toBe(1);
        expect(read.events.map((event) => event.Data)).toEqual([
          ...group.events.map((event) => event.Data),
          single.Data,
        ]);
      });

      it('ExpectedVersion n stores the group at n + 1 .. n + k only when the stream is exactly at n: past n is WrongExpectedVersion, below n is behind', async () => {
        const id = newStream();
        const writer = factory.create();
        await writer.appendToStream(id, [makeEvent(id), makeEvent(id)]);
        const exact = makeGroup(id, 3, 2);

        const tooFar = await factory.create().appendGroup(makeGroup(id, 2, 5));
        const stored = await factory.create().appendGroup(exact);
        const taken = await factory.create().appendGroup(makeGroup(id, 2, 4));
        const staleCache = await writer.appendGroup(makeGroup(id, 2, 2));

        expect(tooFar).toEqual({
          status: 'behind',
          expected: 5,
          actual: 2,
          detail: `ExpectedVersion: 5, but stream ${JSON.stringify(id)} is at version 2`,
        });
        expect(stored).toEqual({ status: 'stored', version: 3, count: 3 });
        const wrong = (expected: number): AppendOutcome => ({
          status: 'rejected',
          reason: RejectionReason.WrongExpectedVersion,
          detail: `ExpectedVersion: ${expected}, but stream ${JSON.stringify(id)} already has another event at version ${expected + 1}`,
        });
        expect(taken).toEqual(wrong(4));
        expect(staleCache).toEqual(wrong(2));
        const read = await factory.create().readStream(id);
        expect(read.version).toBe(5);
        expect(layout(read.events.slice(2))).toEqual(groupLayout(exact, 3));
      });

      it('acknowledges a group sent again as one duplicate (first version, count) in the same and another container, also with a new ExpectedVersion', async () => {
        const id = newStream();
        const store = factory.create();
        const group = makeGroup(id, 3, 0);
        await store.appendGroup(group);
        await store.appendToStream(id, [makeEvent(id)]);

        const sameContainer = await store.appendGroup(group);
        const otherContainer = await factory.create().appendGroup(group);
        const reread = await factory.create().appendGroup({ ...group, ExpectedVersion: 4 });

        for (const outcome of [sameContainer, otherContainer, reread]) {
          expect(outcome).toEqual({ status: 'duplicate', version: 1, count: 3 });
        }
        expect((await store.readStream(id)).version).toBe(4);
      });

      it('rejects a group some of whose events are stored and others not as EventIdConflict naming the event, and stores none of it', async () => {
        const id = newStream();
        const first = makeGroup(id, [{ EventId: 'a' }, { EventId: 'b', Data: { same: true } }]);
        const store = factory.create();
        await store.appendGroup(first);
        const overlapping = makeGroup(id, [{ EventId: 'c' }, { EventId: 'b', Data: { same: true } }]);

        const cached = await store.appendGroup(overlapping);
        const cold = await factory.create().appendGroup(overlapping);

        const expected = {
          status: 'rejected',
          reason: RejectionReason.EventIdConflict,
          detail: `Events[1].EventId: "b" is already stored at version 2 of stream ${JSON.stringify(id)}, but Events[0] of this group is not stored with it: a group is stored all or nothing`,
        };
        expect(cached).toEqual(expected);
        expect(cold).toEqual(expected);
        expect(layout((await store.readStream(id)).events)).toEqual(groupLayout(first, 1));
      });

      it('rejects a group sent again with one event changed as EventIdConflict naming that event, in a cached and a cold container', async () => {
        const id = newStream();
        const group = makeGroup(id, [{ EventId: 'p' }, { EventId: 'q', Data: { total: 12.5 } }, { EventId: 'r' }]);
        const store = factory.create();
        await store.appendGroup(group);
        const changed: ValidGroup = {
          ...group,
          events: group.events.map((event, index) => (index === 1 ? { ...event, Data: { total: 13 } } : event)),
        };

        const cached = await store.appendGroup(changed);
        const cold = await factory.create().appendGroup({ ...changed, ExpectedVersion: 3 });

        const expected = {
          status: 'rejected',
          reason: RejectionReason.EventIdConflict,
          detail: `Events[1].EventId: "q" is already stored at version 2 of stream ${JSON.stringify(id)} with different content`,
        };
        expect(cached).toEqual(expected);
        expect(cold).toEqual(expected);
        expect((await store.readStream(id)).version).toBe(3);
      });

      it('a group, then single events, then a group on one stream: every event once, in order, groups whole', async () => {
        const id = newStream();
        const [a, b] = [factory.create(), factory.create()];
        const first = makeGroup(id, 2);
        const singles = [makeEvent(id), makeEvent(id)];
        const second = makeGroup(id, 3, 4);

        const outcomes = [
          await a.appendGroup(first),
          ...(await b.appendToStream(id, singles)),
          await a.appendGroup(second),
          ...(await b.appendToStream(id, [makeEvent(id, { ExpectedVersion: 7 })])),
        ];

        expect(outcomes).toEqual([
          { status: 'stored', version: 1, count: 2 },
          { status: 'stored', version: 3 },
          { status: 'stored', version: 4 },
          { status: 'stored', version: 5, count: 3 },
          { status: 'stored', version: 8 },
        ]);
        const { events } = await factory.create().readStream(id);
        expect(layout(events.slice(0, 2))).toEqual(groupLayout(first, 1));
        expect(layout(events.slice(2, 4))).toEqual(
          singles.map((event, index) => [3 + index, event.EventId, undefined, undefined]),
        );
        expect(layout(events.slice(4, 7))).toEqual(groupLayout(second, 5));
        expect(events.map((event) => event.Version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      });

      it("stores a group of 100 events (DynamoDB's most items a transaction) whole, and recognises it again", async () => {
        const id = newStream();
        const group = makeGroup(id, 100, 0);

        const stored = await factory.create().appendGroup(group);
        const again = await factory.create().appendGroup(group);

        expect(stored).toEqual({ status: 'stored', version: 1, count: 100 });
        expect(again).toEqual({ status: 'duplicate', version: 1, count: 100 });
        expect(layout((await factory.create().readStream(id)).events)).toEqual(groupLayout(group, 1));
      });

      it('a stale cache loses the transaction and stores the whole group after the real head, nothing at the versions that were taken', async () => {
        const id = newStream();
        const conflicts: string[] = [];
        const cached = factory.create({ onConflict: (streamId) => conflicts.push(streamId) });
        await cached.appendToStream(id, [makeEvent(id)]);
        const theirs = [makeEvent(id), makeEvent(id)];
        await factory.create().appendToStream(id, theirs);
        const group = makeGroup(id, 4);

        const outcome = await cached.appendGroup(group);

        expect(outcome).toEqual({ status: 'stored', version: 4, count: 4 });
        expect(conflicts).toEqual([id]);
        const { events } = await factory.create().readStream(id);
        expect(layout(events.slice(1, 3))).toEqual(
          theirs.map((event, index) => [2 + index, event.EventId, undefined, undefined]),
        );
        expect(layout(events.slice(3))).toEqual(groupLayout(group, 4));
      });

      it('rejects a group with an item over 400 KB as a unit, naming the event, and stores none of it', async () => {
        const id = newStream();
        const store = factory.create();

        const outcome = await store.appendGroup(makeGroup(id, [{}, { Data: { blob: 'x'.repeat(410 * 1024) } }]));

        expect(outcome).toMatchObject({ status: 'rejected', reason: RejectionReason.ItemTooLarge });
        expect(outcome.status === 'rejected' && outcome.detail).toMatch(/^Events\[1\]\.item: /);
        expect((await store.readStream(id)).version).toBe(0);
      });

      it('the same group from 2 containers at once (a copy of one message, or a resend) is stored once: one stored, the other a duplicate', async () => {
        for (const expectedVersion of [undefined, 0]) {
          const id = newStream();
          const group = makeGroup(id, 5, expectedVersion);

          const outcomes = await Promise.all([
            factory.create().appendGroup(group),
            factory.create().appendGroup(group),
          ]);

          expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['duplicate', 'stored']);
          for (const outcome of outcomes) expect(outcome).toMatchObject({ version: 1, count: 5 });
          expect(layout((await factory.create().readStream(id)).events)).toEqual(groupLayout(group, 1));
        }
      });

      it('refuses a group the contract would never give it (no events, an event of another stream, one EventId twice, an ExpectedVersion of its own) with an error naming the event', async () => {
        const store = factory.create();
        const id = newStream();
        const group = makeGroup(id, 2);
        const [first, second] = group.events as [ValidEvent, ValidEvent];

        await expect(store.appendGroup({ ID: id, events: [] })).rejects.toThrow(
          `group of stream ${id}: 0 events; a group has 1 to 100`,
        );
        await expect(store.appendGroup({ ID: id, events: [first, { ...second, ID: 'other' }] })).rejects.toThrow(
          `Events[1] (${second.EventId}) belongs to stream other, not ${id}`,
        );
        await expect(
          store.appendGroup({ ID: id, events: [first, { ...second, EventId: first.EventId }] }),
        ).rejects.toThrow(`group of stream ${id}: Events[1] has the EventId of Events[0] (${first.EventId})`);
        await expect(store.appendGroup({ ID: id, events: [first, { ...second, ExpectedVersion: 1 }] })).rejects.toThrow(
          `group of stream ${id}: Events[1] has an ExpectedVersion of its own; a group has one, next to its events`,
        );
        expect((await store.readStream(id)).version).toBe(0);
      });

      it('groups from 4 containers on one stream at once never interleave and never share versions: each stored once, whole, in order', async () => {
        const id = newStream();
        const groups = Array.from({ length: 4 }, () =>
          Array.from({ length: 3 }, (_, index) => makeGroup(id, 2 + index)),
        );

        // A container that loses every attempt reports the group failed, and SQS delivers it
        // again: do the same (at most 5 rounds) before checking the outcome.
        const results = await Promise.all(
          groups.map(async (mine) => {
            const container = factory.create();
            const outcomes: AppendOutcome[] = [];
            for (const group of mine) {
              for (let round = 0; round < 5; round += 1) {
                const outcome = await container.appendGroup(group);
                if (outcome.status !== 'failed') {
                  outcomes.push(outcome);
                  break;
                }
              }
            }
            return outcomes;
          }),
        );
        const { events } = await factory.create().readStream(id);

        expect(results.flat().map((outcome) => outcome.status)).toEqual(Array.from({ length: 12 }, () => 'stored'));
        expect(events.map((event) => event.Version)).toEqual(Array.from({ length: 36 }, (_, index) => index + 1));
        const byFirstVersion = new Map<number, ValidGroup>();
        for (const [container, mine] of groups.entries()) {
          for (const [index, group] of mine.entries()) {
            const outcome = results[container]?.[index];
            if (outcome?.status !== 'stored') throw new Error('not stored');
            byFirstVersion.set(outcome.version, group);
          }
        }
        expect(byFirstVersion.size).toBe(12);
        for (const [first, group] of byFirstVersion) {
          expect(layout(events.slice(first - 1, first - 1 + group.events.length))).toEqual(groupLayout(group, first));
        }
      });
    });
  });
}
