import { describe, expect, it } from 'vitest';
import { laterMessage, parseSourceSequence, sequenceBefore, sourceSequence } from '../../core/fifo.ts';

// The FIFO SourceSequence (core/fifo.ts): SQS numbers grow only within one group of one queue,
// and a queue deleted and created again under the same name numbers from 1 again.

const QUEUE = 'arn:aws:sqs:eu-west-1:123456789012:events.fifo';
const OTHER = 'arn:aws:sqs:eu-west-1:123456789012:events-v2.fifo';
const read = (stored: string) => parseSourceSequence(stored)!;

describe('SourceSequence', () => {
  it('stores the number, a tag of the queue ARN and the send time, and reads them back', () => {
    const stored = sourceSequence('18900000000000000005', QUEUE, 1_796_000_000_000);

    expect(stored).toMatch(/^18900000000000000005@[\w-]{8}@1796000000000$/);
    expect(read(stored)).toEqual({
      sequence: '18900000000000000005',
      queueTag: stored.split('@')[1],
      sentAt: 1_796_000_000_000,
    });
    expect(sourceSequence('1', QUEUE, 1).split('@')[1]).not.toBe(sourceSequence('1', OTHER, 1).split('@')[1]);
  });

  it('reads a number written by an earlier version (no tag) as unknown: never compared', () => {
    expect(parseSourceSequence('18900000000000000005')).toBeUndefined();
    expect(parseSourceSequence(undefined)).toBeUndefined();
  });

  it('compares numbers of one queue only, as numbers of any length', () => {
    expect(sequenceBefore(read(sourceSequence('9', QUEUE, 1)), read(sourceSequence('10', QUEUE, 1)))).toBe(true);
    expect(sequenceBefore(read(sourceSequence('10', QUEUE, 1)), read(sourceSequence('9', QUEUE, 1)))).toBe(false);
    expect(sequenceBefore(read(sourceSequence('9', QUEUE, 1)), read(sourceSequence('10', OTHER, 1)))).toBe(false);
  });

  it('a later message is a higher number of the same queue sent strictly after: a recreated queue (numbers from 1 again) or the same millisecond is not', () => {
    const mine = read(sourceSequence('3', QUEUE, 2_000));

    expect(laterMessage(read(sourceSequence('4', QUEUE, 2_001)), mine)).toBe(true);
    // The queue's earlier incarnation: higher numbers, sent before this one.
    expect(laterMessage(read(sourceSequence('12', QUEUE, 1_000)), mine)).toBe(false);
    expect(laterMessage(read(sourceSequence('4', QUEUE, 2_000)), mine)).toBe(false);
    expect(laterMessage(read(sourceSequence('4', OTHER, 3_000)), mine)).toBe(false);
  });
});
