import { describe, expect, it } from 'vitest';
import { parseEventBody } from '../../core/event.ts';
import { percentile } from '../../bench/records.ts';
import { defaultWorkload, generateWorkload } from '../../bench/workload.ts';

// The bench's figures are only as good as its workload: check it is what the README says.

describe('bench workload', () => {
  const workload = generateWorkload({ ...defaultWorkload, events: 5000, streams: 50, seed: 7 });

  it('has the asked number of messages, 2 % of them redeliveries of an earlier body', () => {
    const redeliveries = workload.standardOrder.filter((message) => message.redelivery);

    expect(workload.standardOrder).toHaveLength(5000);
    expect(workload.fifoOrder).toHaveLength(5000);
    expect(redeliveries).toHaveLength(100);
    expect(workload.uniqueEvents).toBe(4900);
    expect(new Set(workload.standardOrder.map((message) => message.eventId)).size).toBe(4900);
  });

  it('keeps every stored item at 1 KB or less, every body valid, without EventId', () => {
    for (const message of workload.standardOrder) {
      const parsed = parseEventBody(message.body);
      expect(parsed.ok).toBe(true);
      expect(JSON.parse(message.body)).not.toHaveProperty('EventId');
    }
    expect(workload.largestItemBytes).toBeLessThanOrEqual(1024);
  });

  it('puts about 10 % of events in the same second as their stream\'s previous one', () => {
    const share = (workload.uniqueEvents - workload.distinctStreamSeconds) / workload.uniqueEvents;

    expect(share).toBeGreaterThan(0.08);
    expect(share).toBeLessThan(0.12);
  });

  it('keeps each stream\'s send order in FIFO order, with a redelivery right after its original', () => {
    const lastSequence = new Map<string, number>();
    workload.fifoOrder.forEach((message, index) => {
      if (message.redelivery) {
        expect(workload.fifoOrder[index - 1]?.eventId).toBe(message.eventId);
        return;
      }
      const sequence = (JSON.parse(message.body) as { Data: { sequence: number } }).Data.sequence;
      expect(sequence).toBeGreaterThan(lastSequence.get(message.streamId) ?? -1);
      lastSequence.set(message.streamId, sequence);
    });
  });

  it('is the same for the same seed and differs for another', () => {
    const again = generateWorkload({ ...defaultWorkload, events: 5000, streams: 50, seed: 7 });
    const other = generateWorkload({ ...defaultWorkload, events: 5000, streams: 50, seed: 8 });

    expect(again.standardOrder.map((message) => message.body)).toEqual(workload.standardOrder.map((message) => message.body));
    expect(other.standardOrder[0]?.body).not.toBe(workload.standardOrder[0]?.body);
  });
});

describe('percentile', () => {
  it('takes the nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, index) => 100 - index);

    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([], 50)).toBe(0);
  });
});
