import { describe, expect, it } from 'vitest';
import { parseEventBody } from '../../core/event.ts';
import type { PathResult } from '../../bench/baseline.ts';
import { emptyCounts } from '../../bench/capacity.ts';
import { checkTargets, costPerMillion, figuresOf, sqsRequests } from '../../bench/figures.ts';
import { parseBenchOptions } from '../../bench/options.ts';
import { preset, PRESET_NAMES } from '../../bench/presets.ts';
import { percentile } from '../../bench/records.ts';
import { COMMAND_EVENTS, defaultWorkload, generateGroupWorkload, generateWorkload } from '../../bench/workload.ts';
import { itemBytes } from '../../core/storable.ts';
import { UncheckedMemoryAppender } from '../../bench/unchecked-memory-appender.ts';
import { canonicalJson, eventItem, PLACEHOLDER_RECORDED_AT, messageEvents } from '../../core/event.ts';

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

describe('bench group workload', () => {
  const options = { ...defaultWorkload, events: 2_000, streams: 50, seed: 7 };
  const bySize = new Map([1, 2, 5, 20].map((size) => [size, generateGroupWorkload(options, size)]));

  it('sends the same events to the same streams in the same order, one per message or in groups of 2, 5 and 20', () => {
    const eventsOf = (size: number) =>
      bySize
        .get(size)!
        .fifoOrder.filter((message) => !message.redelivery)
        .flatMap((message) => {
          const parsed = parseEventBody(message.body);
          if (!parsed.ok) throw new Error(parsed.detail);
          return messageEvents(parsed).map(({ EventId: _id, ...event }) => canonicalJson(event));
        });
    const singles = eventsOf(1);

    // 2,000 messages less 2 % redelivered = 1,960 events, rounded down to commands of 20.
    expect(singles).toHaveLength(1960);
    for (const size of [2, 5, 20]) {
      const workload = bySize.get(size)!;
      expect(eventsOf(size)).toEqual(singles);
      expect(workload.uniqueEvents).toBe(1960);
      expect(workload.standardOrder.filter((message) => !message.redelivery)).toHaveLength(1960 / size);
      expect(workload.standardOrder.filter((message) => message.redelivery)).toHaveLength(
        Math.round((1960 / size) * 0.02),
      );
      expect(workload.standardOrder.every((message) => message.eventIds.length === size)).toBe(true);
      expect(new Set(workload.standardOrder.flatMap((message) => message.eventIds)).size).toBe(1960);
    }
    expect(JSON.parse(bySize.get(1)!.standardOrder[0]!.body)).not.toHaveProperty('Events');
  });

  it('keeps every item of a group at 1 KB or less with its GroupSize and GroupIndex', () => {
    for (const message of bySize.get(20)!.standardOrder) {
      const parsed = parseEventBody(message.body);
      if (!parsed.ok || parsed.kind !== 'group') throw new Error('expected a valid group');
      expect(parsed.group.events).toHaveLength(COMMAND_EVENTS);
      for (const [index, event] of parsed.group.events.entries()) {
        const item = eventItem(
          event,
          99_999,
          PLACEHOLDER_RECORDED_AT,
          `${'9'.repeat(20)}@${'q'.repeat(8)}@${'9'.repeat(13)}`,
          {
            index,
            size: 100,
          },
        );
        expect(itemBytes(item)).toBeLessThanOrEqual(1024);
      }
    }
    expect(bySize.get(20)!.largestItemBytes).toBeLessThanOrEqual(1024);
  });

  it('refuses a group size that does not divide a command', () => {
    expect(() => generateGroupWorkload(options, 3)).toThrow('group size 3 does not divide a command of 20 events');
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

    expect(PRESET_NAMES).toEqual(['hot', 'many-streams', 'long-cold', 'one-stream', 'groups']);
    expect(preset('groups', 0.1)).toMatchObject({
      groupSizes: [2, 5, 20],
      modes: ['standard', 'fifo'],
      workload: { events: 2000, streams: 200 },
    });
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
      /"warm" is not one of hot, many-streams, long-cold, one-stream, groups, all/,
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

  it("holds a group's path to 2.1 write units per event, and to the same run's single events for reads and events/s", () => {
    const result = (writeUnits: number, readUnits: number, wallMs: number): PathResult => ({
      label: 'this project, standard',
      messages: 100,
      validEvents: 1000,
      itemsStored: 1000,
      distinctEventsStored: 1000,
      duplicatesStored: 0,
      lostEvents: 0,
      counts: { ...emptyCounts(), writeUnits, readUnits },
      wallMs,
      latenciesMs: [],
      invocations: 10,
      invocationMsTotal: 1000,
      retriedRecords: 0,
      appendConflicts: 0,
      consumerRequests: { receives: 10, deletes: 10 },
      notes: [],
    });
    const single = figuresOf(result(1050, 300, 5000), 'standard', true, 1);
    const fast = figuresOf(result(2000, 100, 1000), 'standard', true, 5);
    const slow = figuresOf(result(2200, 400, 9000), 'standard', true, 20);
    const sameRun = [single, fast, slow];
    const figures = (checks: ReturnType<typeof checkTargets>) =>
      checks
        .filter((check) => !['events lost', 'duplicates stored', 'versions gapless per stream'].includes(check.figure))
        .map((check) => [check.figure, check.target, check.met]);

    expect(figures(checkTargets('groups', single, sameRun))).toEqual([
      ['write units per event', '<= 1.1', true],
      ['read units per event', '<= 0.4', true],
      ['cost per million events / floor (producers batch)', '<= 1.15', true],
    ]);
    expect(figures(checkTargets('groups', fast, sameRun))).toEqual([
      ['write units per event', '<= 2.1', true],
      ['read units per event', "<= single events' 0.300", true],
      ['events/s', ">= single events' 200", true],
      ['cost per million events / floor (producers batch)', '<= 1.15', true],
    ]);
    expect(
      figures(checkTargets('groups', slow, sameRun))
        .filter(([, , met]) => !met)
        .map(([figure]) => figure),
    ).toEqual(['write units per event', 'read units per event', 'events/s']);
    // A group's floor is a transaction's 2 write units per event.
    expect(fast.floor.batched).toBeGreaterThan(single.floor.batched);
    expect(checkTargets('groups', fast, sameRun).every((check) => check.groupSize === 5)).toBe(true);
  });
});

describe("the bench's in-memory appender (handler CPU only)", () => {
  const groupOf = (...data: number[]) => {
    const parsed = parseEventBody(
      JSON.stringify({
        ID: 'g',
        Events: data.map((n, index) => ({
          Timestamp: 1_763_900_000,
          EventType: 'ORDER_UPDATED',
          EmitterId: 'bench',
          EmitterType: 'SYSTEM',
          Data: { n },
          EventId: `e${index}`,
        })),
      }),
    );
    if (!parsed.ok || parsed.kind !== 'group') throw new Error('expected a group');
    return parsed.group;
  };

  it('gives a group one outcome: stored whole at consecutive versions, a duplicate, or a conflict naming the event', async () => {
    const appender = new UncheckedMemoryAppender();

    expect(await appender.appendGroup(groupOf(1, 2, 3))).toEqual({ status: 'stored', version: 1, count: 3 });
    expect(await appender.appendGroup(groupOf(1, 2, 3))).toEqual({ status: 'duplicate', version: 1, count: 3 });
    expect(await appender.appendGroup(groupOf(1, 2, 9))).toMatchObject({
      status: 'rejected',
      reason: 'EventIdConflict',
      detail: 'Events[2].EventId: e2 is already stored at version 3 with other content',
    });
    expect(await appender.appendGroup(groupOf(1, 2, 3, 4))).toMatchObject({
      detail: 'Events[0].EventId: e0 is already stored at version 1, and other events of the group are not',
    });
    const { events } = await appender.readStream('g');
    expect(events.map((event) => [event.Version, event.EventId, event.GroupIndex, event.GroupSize])).toEqual([
      [1, 'e0', 0, 3],
      [2, 'e1', 1, 3],
      [3, 'e2', 2, 3],
    ]);
  });
});
