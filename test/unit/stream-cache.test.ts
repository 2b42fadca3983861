import { describe, expect, it } from 'vitest';
import { duplicateWindow, StreamHeadCache, type CachedEvent } from '../../core/stream-cache.ts';

/** The event at `version`, recorded at `recordedAt` (default: version x 1000 ms). */
function at(version: number, recordedAt = version * 1000): CachedEvent {
  return { version, eventId: `e${version}`, fingerprint: `f${version}`, recordedAt };
}

/** Versions from..to, oldest first. */
function run(from: number, to: number): CachedEvent[] {
  return Array.from({ length: to - from + 1 }, (_, index) => at(from + index));
}

const versions = (events: readonly CachedEvent[] | undefined): number[] | undefined =>
  events?.map((event) => event.version);

describe('duplicateWindow', () => {
  it('without a time bound is the newest `window` events, newest first', () => {
    expect(versions(duplicateWindow({ version: 5, tail: run(1, 5) }, { window: 3 }))).toEqual([5, 4, 3]);
    expect(versions(duplicateWindow({ version: 5, tail: run(1, 5) }, { window: 50 }))).toEqual([5, 4, 3, 2, 1]);
  });

  it('ends before the first event (newest first) recorded before notBefore, even when a newer one is older again', () => {
    const tail = [at(1), at(2), at(3, 9000), at(4, 2500), at(5)];

    expect(versions(duplicateWindow({ version: 5, tail }, { window: 50, notBefore: 3000 }))).toEqual([5]);
    expect(versions(duplicateWindow({ version: 5, tail }, { window: 50, notBefore: 2000 }))).toEqual([5, 4, 3, 2]);
  });

  it('an event recorded exactly at notBefore is in the window; an unreadable RecordedAt never ends it', () => {
    expect(versions(duplicateWindow({ version: 3, tail: run(1, 3) }, { window: 50, notBefore: 2000 }))).toEqual([3, 2]);
    const unreadable = [at(1), at(2, Number.NaN), at(3)];
    expect(versions(duplicateWindow({ version: 3, tail: unreadable }, { window: 50, notBefore: 2500 }))).toEqual([
      3, 2,
    ]);
  });

  it('is undecided while every event known is recent, fewer than `window`, and version 1 is not among them', () => {
    expect(duplicateWindow({ version: 9, tail: run(6, 9) }, { window: 50, notBefore: 1000 })).toBeUndefined();
    expect(duplicateWindow({ version: 9, tail: run(6, 9) }, { window: 50 })).toBeUndefined();
    expect(duplicateWindow({ version: 9, tail: [] }, { window: 1 })).toBeUndefined();
    expect(versions(duplicateWindow({ version: 9, tail: run(6, 9) }, { window: 4, notBefore: 1000 }))).toEqual([
      9, 8, 7, 6,
    ]);
    expect(versions(duplicateWindow({ version: 4, tail: run(1, 4) }, { window: 50, notBefore: 1000 }))).toEqual([
      4, 3, 2, 1,
    ]);
    expect(versions(duplicateWindow({ version: 9, tail: run(6, 9) }, { window: 50, notBefore: 7000 }))).toEqual([
      9, 8, 7,
    ]);
  });

  it('of an empty stream is empty', () => {
    expect(duplicateWindow({ version: 0, tail: [] }, { window: 50, notBefore: 0 })).toEqual([]);
  });

  it('of a redelivery (since) holds every event recorded since, however many, then `window` counted from the first one before', () => {
    // Versions 1..20 recorded at 1 s, 2 s ... 20 s; the message was sent (less the allowance) at 12.5 s.
    const tail = run(1, 20);

    expect(versions(duplicateWindow({ version: 20, tail }, { window: 3, since: 12_500 }))).toEqual([
      20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
    ]);
    // Still bounded by notBefore, and undecided while the count from the first older event is short.
    expect(versions(duplicateWindow({ version: 20, tail }, { window: 3, since: 12_500, notBefore: 11_000 }))).toEqual([
      20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    ]);
    expect(duplicateWindow({ version: 20, tail: run(11, 20) }, { window: 3, since: 12_500 })).toBeUndefined();
    expect(duplicateWindow({ version: 20, tail: run(14, 20) }, { window: 3, since: 12_500 })).toBeUndefined();
  });

  it('of a redelivery holds every event the first delivery window held, whatever was appended since', () => {
    // First delivery at head 12 (sent at 11.5 s): the newest 3. Then 30 more events.
    const first = duplicateWindow({ version: 12, tail: run(1, 12) }, { window: 3, notBefore: 0 });
    const later = duplicateWindow({ version: 42, tail: run(1, 42) }, { window: 3, notBefore: 0, since: 11_500 });

    expect(versions(first)).toEqual([12, 11, 10]);
    expect(versions(later)).toEqual(expect.arrayContaining(versions(first) ?? []));
    // An unreadable RecordedAt never starts the count: the window only grows.
    const unreadable = [...run(1, 4), at(5, Number.NaN), at(6)];
    expect(versions(duplicateWindow({ version: 6, tail: unreadable }, { window: 1, since: 5_500 }))).toEqual([6, 5, 4]);
  });

  it('never ends inside a group: a count cap that falls inside one reaches down to its first event (docs/ARCHITECTURE.md, "Groups")', () => {
    // Versions 1 and 2 alone, 3..6 a group of 4 (one RecordedAt), 7 and 8 alone.
    const grouped = (version: number): CachedEvent => ({ ...at(version, 3000), groupIndex: version - 3 });
    const tail = [at(1), at(2), grouped(3), grouped(4), grouped(5), grouped(6), at(7), at(8)];

    expect(versions(duplicateWindow({ version: 8, tail }, { window: 2 }))).toEqual([8, 7]);
    expect(versions(duplicateWindow({ version: 8, tail }, { window: 3 }))).toEqual([8, 7, 6, 5, 4, 3]);
    expect(versions(duplicateWindow({ version: 8, tail }, { window: 6 }))).toEqual([8, 7, 6, 5, 4, 3]);
    expect(versions(duplicateWindow({ version: 8, tail }, { window: 7 }))).toEqual([8, 7, 6, 5, 4, 3, 2]);
    // A redelivery's count starts below `since`, and ends at a group's first event too.
    expect(versions(duplicateWindow({ version: 8, tail }, { window: 1, since: 7_000 }))).toEqual([8, 7, 6, 5, 4, 3]);
    // The group's first event is not known yet: undecided, older events must be read.
    expect(duplicateWindow({ version: 8, tail: tail.slice(3) }, { window: 3 })).toBeUndefined();
    // A time bound ends it before the whole group (they share RecordedAt) or not at all.
    expect(versions(duplicateWindow({ version: 8, tail }, { window: 50, notBefore: 3001 }))).toEqual([8, 7]);
  });
});

describe('StreamHeadCache', () => {
  it('remembers a stream head and its newest events', () => {
    const cache = new StreamHeadCache({ maxStreams: 10, window: 3 });

    cache.remember('s', at(1));
    cache.remember('s', at(2));

    expect(cache.get('s')?.version).toBe(2);
    expect(cache.get('s')?.tail).toEqual([at(1), at(2)]);
  });

  it('keeps only the newest `window` events of a stream', () => {
    const cache = new StreamHeadCache({ maxStreams: 10, window: 2 });

    for (let version = 1; version <= 4; version += 1) cache.remember('s', at(version));

    expect(versions(cache.get('s')?.tail)).toEqual([3, 4]);
  });

  it('loads events read newest first, oldest first, as far as they are contiguous and fit', () => {
    const cache = new StreamHeadCache({ maxStreams: 10, window: 2 });
    const roomy = new StreamHeadCache({ maxStreams: 10, window: 10 });

    const head = cache.load('s', [at(7), at(6), at(5)]);
    const gap = roomy.load('t', [at(7), at(6), at(4)]);
    const empty = roomy.load('u', []);

    expect(head.version).toBe(7);
    expect(versions(head.tail)).toEqual([6, 7]);
    expect(versions(gap.tail)).toEqual([6, 7]);
    expect(empty).toEqual({ version: 0, tail: [] });
  });

  it('extends a head downward with older events, newest first, and upward by the next version only', () => {
    const cache = new StreamHeadCache({ maxStreams: 10, window: 10 });
    const head = cache.load('s', [at(9), at(8)]);

    cache.extendDown(head, [at(7), at(6)]);
    cache.extendDown(head, [at(4)]);
    cache.extend(head, at(10));

    expect(versions(head.tail)).toEqual([6, 7, 8, 9, 10]);
    cache.extend(head, at(12));
    expect(head.version).toBe(12);
    expect(versions(head.tail)).toEqual([12]);
  });

  it('evicts the least recently used stream when full', () => {
    const cache = new StreamHeadCache({ maxStreams: 2, window: 5 });
    cache.remember('a', at(1));
    cache.remember('b', at(1));

    cache.get('a');
    cache.remember('c', at(1));

    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.version).toBe(1);
    expect(cache.get('c')?.version).toBe(1);
    expect(cache.size).toBe(2);
  });

  it('forgets a stream, and caches nothing when its size is 0', () => {
    const cache = new StreamHeadCache({ maxStreams: 5, window: 5 });
    cache.remember('a', at(1));
    const disabled = new StreamHeadCache({ maxStreams: 0, window: 5 });

    cache.forget('a');
    disabled.remember('a', at(1));

    expect(cache.get('a')).toBeUndefined();
    expect(disabled.get('a')).toBeUndefined();
  });
});

describe('StreamHeadCache.extend', () => {
  it('advances a head the caller holds and trims it to the window, evicted or not', () => {
    const cache = new StreamHeadCache({ maxStreams: 1, window: 2 });
    cache.remember('a', at(1));
    const held = cache.get('a')!;
    cache.remember('b', at(1));

    cache.extend(held, at(2));
    cache.extend(held, at(3));

    expect(held.version).toBe(3);
    expect(versions(held.tail)).toEqual([2, 3]);
    expect(cache.get('a')).toBeUndefined();
  });
});
