import { describe, expect, it } from 'vitest';
import { StreamHeadCache } from '../../core/stream-cache.ts';

describe('StreamHeadCache', () => {
  it('remembers a stream head and its recent EventIds', () => {
    const cache = new StreamHeadCache({ maxStreams: 10, window: 3 });

    cache.remember('s', 1, 'e1', 'f1');
    cache.remember('s', 2, 'e2', 'f2');

    expect(cache.get('s')?.version).toBe(2);
    expect([...cache.get('s')!.recent.entries()]).toEqual([
      ['e1', { version: 1, fingerprint: 'f1' }],
      ['e2', { version: 2, fingerprint: 'f2' }],
    ]);
  });

  it('keeps only the newest `window` EventIds of a stream', () => {
    const cache = new StreamHeadCache({ maxStreams: 10, window: 2 });

    for (let version = 1; version <= 4; version += 1) cache.remember('s', version, `e${version}`, 'f');

    expect([...cache.get('s')!.recent.keys()]).toEqual(['e3', 'e4']);
  });

  it('loads a tail read newest-first and orders it oldest-first', () => {
    const cache = new StreamHeadCache({ maxStreams: 10, window: 2 });

    const head = cache.load('s', 7, [
      { eventId: 'e7', version: 7, fingerprint: 'f7' },
      { eventId: 'e6', version: 6, fingerprint: 'f6' },
      { eventId: 'e5', version: 5, fingerprint: 'f5' },
    ]);

    expect(head.version).toBe(7);
    expect([...head.recent.keys()]).toEqual(['e6', 'e7']);
  });

  it('evicts the least recently used stream when full', () => {
    const cache = new StreamHeadCache({ maxStreams: 2, window: 5 });
    cache.remember('a', 1, 'a1', 'f');
    cache.remember('b', 1, 'b1', 'f');

    cache.get('a');
    cache.remember('c', 1, 'c1', 'f');

    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.version).toBe(1);
    expect(cache.get('c')?.version).toBe(1);
    expect(cache.size).toBe(2);
  });

  it('forgets a stream, and caches nothing when its size is 0', () => {
    const cache = new StreamHeadCache({ maxStreams: 5, window: 5 });
    cache.remember('a', 1, 'a1', 'f');
    const disabled = new StreamHeadCache({ maxStreams: 0, window: 5 });

    cache.forget('a');
    disabled.remember('a', 1, 'a1', 'f');

    expect(cache.get('a')).toBeUndefined();
    expect(disabled.get('a')).toBeUndefined();
  });
});

describe('StreamHeadCache.extend', () => {
  it('advances a head the caller holds and trims it to the window, evicted or not', () => {
    const cache = new StreamHeadCache({ maxStreams: 1, window: 2 });
    cache.remember('a', 1, 'a1', 'f');
    const held = cache.get('a')!;
    cache.remember('b', 1, 'b1', 'f');

    cache.extend(held, 2, 'a2', 'f');
    cache.extend(held, 3, 'a3', 'f');

    expect(held.version).toBe(3);
    expect([...held.recent.keys()]).toEqual(['a2', 'a3']);
    expect(cache.get('a')).toBeUndefined();
  });
});
