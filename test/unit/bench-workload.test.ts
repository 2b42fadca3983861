import { describe, expect, it } from 'vitest';
import { parseEventBody } from '../../core/event.ts';
import type { PathResult } from '../../bench/baseline.ts';
import { emptyCounts } from '../../bench/capacity.ts';
import { checkTargets, costPerMillion, figuresOf, sqsRequests } from '../../bench/figures.ts';
import { parseBenchOptions } from '../../bench/options.ts';
import { preset, PRESET_NAMES } from '../../bench/presets.ts';
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

  it("puts about 10 % of events in the same second as their stream's previous one", () => {
    const share = (workload.uniqueEvents - workload.distinctStreamSeconds) / workload.uniqueEvents;

    expect(share).toBeGreaterThan(0.08);
    expect(share).toBeLessThan(0.12);
  });

  it("keeps each stream's send order in FIFO order, with a redelivery right after its original", () => {
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

    expect(again.standardOrder.map((message) => message.body)).toEqual(
      workload.standardOrder.map((message) => message.body),
    );
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

describe('bench presets', () => {
  it('has every named workload, and --scale shrinks the events while hot and long-cold keep their streams', () => {
    const hot = preset('hot', 0.05);
    const many = preset('many-streams', 0.05);
    const cold = preset('long-cold', 0.05);

    expect(PRESET_NAMES).toEqual(['hot', 'many-streams', 'long-cold', 'one-stream']);
    expect(preset('hot').workload).toMatchObject({ events: 20_000, streams: 200 });
    expect(preset('hot').containers).toBe(4);
    expect(hot.workload).toMatchObject({ events: 1000, streams: 200 });
    expect(many.workload).toMatchObject({ events: 2000, streams: 1000 });
    expect(many.cacheSize).toBe(50);
    expect(cold).toMatchObject({ containers: 16, containerInvocations: 25, historyPerStream: 500 });
    expect(preset('one-stream').modes).toEqual(['fifo']);
  });

  it('takes --container-invocations and --seed over the preset, and refuses a scale outside (0, 1]', () => {
    expect(preset('long-cold', 1, { containerInvocations: 5, seed: 9 })).toMatchObject({
      containerInvocations: 5,
      workload: { seed: 9 },
    });
    expect(() => preset('hot', 0)).toThrow('scale must be above 0 and at most 1, got 0');
    expect(() => preset('hot', 1.5)).toThrow('scale must be above 0 and at most 1, got 1.5');
  });
});

describe('bench options', () => {
  it('runs every workload for --workload all, and keeps the command for the documents', () => {
    const options = parseBenchOptions(['--workload', 'all', '--scale', '0.05', '--container-invocations', '3']);

    expect(options.workloads).toEqual([...PRESET_NAMES]);
    expect(options).toMatchObject({ scale: 0.05, containerInvocations: 3, mode: 'direct', docs: false });
    expect(options.command).toBe('npm run bench -- --workload all --scale 0.05 --container-invocations 3');
  });

  it('refuses an unknown workload by name', () => {
    expect(() => parseBenchOptions(['--workload', 'warm'])).toThrow(
      /"warm" is not one of hot, many-streams, long-cold, one-stream, all/,
    );
  });
});

describe('bench figures', () => {
  it('counts SQS requests per event for both producer styles from the run', () => {
    const requests = sqsRequests(1000, 980, { receives: 100, deletes: 100 });

    expect(requests.single).toEqual({ sends: 1000, receives: 100, deletes: 100, perEvent: 1200 / 980 });
    expect(requests.batched).toEqual({ sends: 100, receives: 100, deletes: 100, perEvent: 300 / 980 });
  });

  it('costs DynamoDB, SQS and Lambda per million events at the list prices', () => {
    const cost = costPerMillion(
      { write: 1, read: 0.2 },
      0.3,
      { invocationsPerEvent: 0.1, secondsPerInvocation: 0.05 },
      true,
    );

    expect(cost.dynamoDb).toBeCloseTo(0.625 + 0.2 * 0.125, 10);
    expect(cost.sqs).toBeCloseTo(0.3 * 0.5, 10);
    expect(cost.lambda).toBeCloseTo(0.1 * 0.2 + 0.1 * 1e6 * 0.05 * 0.5 * 0.0000133334, 10);
    expect(cost.total).toBeCloseTo(cost.dynamoDb + cost.sqs + cost.lambda, 10);
  });

  it('holds a hot FIFO path to its unit targets and the cost to 1.15 x the floor; the baseline to none', () => {
    const result = (writeUnits: number, readUnits: number): PathResult => ({
      label: 'this project, FIFO',
      messages: 1000,
      validEvents: 1000,
      itemsStored: 1000,
      distinctEventsStored: 1000,
      duplicatesStored: 0,
      lostEvents: 0,
      counts: { ...emptyCounts(), writeUnits, readUnits },
      wallMs: 1000,
      latenciesMs: [],
      invocations: 100,
      invocationMsTotal: 1000,
      retriedRecords: 0,
      appendConflicts: 0,
      consumerRequests: { receives: 100, deletes: 100 },
      notes: [],
    });
    const met = checkTargets('hot', figuresOf(result(1010, 100), 'fifo', true));
    const missed = checkTargets('hot', figuresOf(result(1020, 400), 'fifo', false));

    expect(met.map((check) => [check.figure, check.met])).toEqual([
      ['events lost', true],
      ['duplicates stored', true],
      ['versions gapless per stream', true],
      ['write units per event', true],
      ['read units per event', true],
      ['cost per million events / floor (producers batch)', true],
    ]);
    expect(missed.filter((check) => !check.met).map((check) => check.figure)).toEqual([
      'versions gapless per stream',
      'write units per event',
      'read units per event',
    ]);
    expect(checkTargets('hot', figuresOf(result(1500, 0), 'baseline', undefined))).toEqual([]);
  });
});
