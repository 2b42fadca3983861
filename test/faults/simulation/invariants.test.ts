import { describe, expect, it } from 'vitest';
import { eventItem, parseEventBody, type ValidEvent } from '../../../core/event.ts';
import { MessageAttributeNames } from '../../../core/message-attributes.ts';
import type { StoredEvent } from '../../../core/store.ts';
import { checkSchedule, type Finding } from './invariants.ts';
import { QueueModel } from './queue-model.ts';
import { Rng } from './random.ts';
import { EPOCH, planSchedule, type PlannedMessage, type SchedulePlan } from './workload.ts';
import type { DeadLetterSent, Write, WorldRecord } from './world.ts';

// The group invariants of the fault exploration (issue 22) on hand-made outcomes, without
// DynamoDB: each must hold for a store that keeps its promise and fail for one that breaks it,
// or the explorer could not tell them apart.

const STREAM = 's';

function event(index: number, j: number, data: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Timestamp: 1_763_900_000 + index,
    EventType: 'ORDER_UPDATED',
    EmitterId: 'simulation',
    EmitterType: 'SYSTEM',
    Data: { n: index, j, ...data },
    EventId: `e${index}.${j}`,
  };
}

const group = (...events: Record<string, unknown>[]): string => JSON.stringify({ ID: STREAM, Events: events });
const single = (one: Record<string, unknown>): string => JSON.stringify({ ...one, ID: STREAM });

function message(id: string, body: string): PlannedMessage {
  return { id, body, streamId: STREAM, label: id, sendDelayMs: 0, group: undefined, incarnation: 0 };
}

function validEvents(body: string): readonly ValidEvent[] {
  const parsed = parseEventBody(body);
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.kind === 'event' ? [parsed.event] : parsed.group.events;
}

/** A stream as the store would hold it: each entry a message's events at the next versions, as a group or one by one. */
function streamOf(...writes: { body: string; asGroup?: boolean; only?: number[] }[]): StoredEvent[] {
  const stored: StoredEvent[] = [];
  for (const { body, asGroup = true, only } of writes) {
    const events = validEvents(body);
    events.forEach((one, index) => {
      if (only !== undefined && !only.includes(index)) return;
      const shape =
        asGroup && events.length > 0 && body.includes('"Events"') ? { index, size: events.length } : undefined;
      const item = eventItem(one, stored.length + 1, new Date(EPOCH + stored.length).toISOString(), undefined, shape);
      stored.push(item as unknown as StoredEvent);
    });
  }
  return stored;
}

interface Outcome {
  readonly messages: readonly PlannedMessage[];
  readonly stored: StoredEvent[];
  readonly deadLetters?: readonly { source: string; body: string; reason: string; detail: string }[];
  readonly writes?: readonly Write[];
  readonly fifo?: boolean;
  readonly dedupWindow?: number;
}

/** Every message sent at EPOCH, received once and deleted (acknowledged). */
async function verdict(outcome: Outcome): Promise<{ violations: readonly Finding[]; notes: readonly Finding[] }> {
  const plan: SchedulePlan = {
    ...planSchedule(1, 0),
    fifo: outcome.fifo ?? false,
    streams: [STREAM],
    history: [],
    messages: outcome.messages,
    dedupWindow: outcome.dedupWindow ?? 50,
    groupMode: 'id',
  };
  const queue = new QueueModel({
    fifo: plan.fifo,
    visibilityTimeoutMs: 1_000,
    maxReceiveCount: 3,
    duplicateDeliveryRate: 0,
    log: () => undefined,
  });
  for (const sent of outcome.messages) queue.send(sent.id, sent.body, plan.fifo ? STREAM : undefined, EPOCH);
  for (const delivery of queue.receive(EPOCH, outcome.messages.length, new Rng(1))) queue.delete(delivery);
  const deadLetters: DeadLetterSent[] = (outcome.deadLetters ?? []).map((letter, position) => ({
    input: {
      MessageBody: letter.body,
      MessageAttributes: {
        [MessageAttributeNames.rejectionReason]: { DataType: 'String', StringValue: letter.reason },
        [MessageAttributeNames.rejectionDetail]: { DataType: 'String', StringValue: letter.detail },
        [MessageAttributeNames.rejectedAt]: { DataType: 'String', StringValue: new Date(EPOCH).toISOString() },
        [MessageAttributeNames.sourceMessageId]: { DataType: 'String', StringValue: letter.source },
        [MessageAttributeNames.redriveCount]: { DataType: 'Number', StringValue: '0' },
      },
    },
    invocationId: 1,
    receiveCount: 1,
    accepted: true,
    order: 1000 + position,
    decidedOrder: 1000 + position,
  }));
  const record: WorldRecord = {
    plan,
    trace: [],
    queue,
    deadLetters,
    unknownOutcome: new Set(),
    wroteFor: new Set((outcome.writes ?? []).flatMap((write) => (write.messageId ? [write.messageId] : []))),
    writes: outcome.writes ?? [],
    copied: new Set(),
    invocations: [],
    problems: [],
    steps: 0,
    faultsInjected: {},
  };
  return checkSchedule(record, async (streamId) => (streamId === STREAM ? outcome.stored : []));
}

const broken = (findings: readonly Finding[]): string[] => [...new Set(findings.map((finding) => finding.invariant))];

describe("the fault exploration's group invariants", () => {
  const g = group(event(0, 0), event(0, 1), event(0, 2));

  it('hold for a group stored whole, in order, once, next to single events', async () => {
    const one = single(event(1, 0));
    const result = await verdict({
      messages: [message('m0', g), message('m1', one)],
      stored: streamOf({ body: g }, { body: one }),
      fifo: true,
    });
    expect(result.violations).toEqual([]);
  });

  it('fail when only part of a group is stored (nothing-lost names the events missing)', async () => {
    const result = await verdict({ messages: [message('m0', g)], stored: streamOf({ body: g, only: [0, 1] }) });
    expect(broken(result.violations)).toEqual(['group-all-or-nothing', 'nothing-lost']);
    expect(result.violations[0]?.detail).toContain('the group of 3 from v1 is not whole: v3 is missing');
  });

  it("fail when a group's events are stored one by one, or in another order", async () => {
    const alone = await verdict({ messages: [message('m0', g)], stored: streamOf({ body: g, asGroup: false }) });
    expect(broken(alone.violations)).toEqual(['group-all-or-nothing']);
    expect(alone.violations[0]?.detail).toContain('was only ever sent inside a group, yet is stored alone');

    const reordered = group(event(0, 1), event(0, 0), event(0, 2));
    const swapped = await verdict({ messages: [message('m0', g)], stored: streamOf({ body: reordered }) });
    expect(broken(swapped.violations)).toEqual(['group-all-or-nothing']);
    expect(swapped.violations[0]?.detail).toContain('stored as a group no message sent');
  });

  it('fail once per copy when a resend inside the window stores a group again', async () => {
    const result = await verdict({
      messages: [message('m0', g), message('m1', g)],
      stored: streamOf({ body: g }, { body: g }),
    });
    expect(result.violations.map((finding) => finding.invariant)).toEqual(['group-stored-once']);
    expect(result.violations[0]?.detail).toContain('v4..v6 a group of 3');
  });

  it('fail when a rejected group is dead-lettered in parts, or stored as well', async () => {
    const parted = await verdict({
      messages: [message('m0', g)],
      stored: [],
      deadLetters: [{ source: 'm0', body: single(event(0, 1)), reason: 'SchemaViolation', detail: 'Events[1].x' }],
    });
    expect(broken(parted.violations)).toEqual(['dead-letter-original-body']);

    const both = await verdict({
      messages: [message('m0', g)],
      stored: streamOf({ body: g }),
      deadLetters: [{ source: 'm0', body: g, reason: 'WrongExpectedVersion', detail: 'behind' }],
    });
    expect(broken(both.violations)).toEqual(['not-stored-and-dead-lettered']);
  });

  it('allow a single event resent inside a group to be refused, and a group of which one event came alone before', async () => {
    const one = single(event(0, 0));
    const result = await verdict({
      messages: [message('m0', one), message('m1', g)],
      stored: streamOf({ body: one }),
      deadLetters: [
        {
          source: 'm1',
          body: g,
          reason: 'EventIdConflict',
          detail: `Events[0].EventId: "e0.0" is already stored at version 1 of stream "${STREAM}"`,
        },
      ],
    });
    expect(result.violations).toEqual([]);
  });

  it("count the duplicate window down to a group's first event when its count cap ends inside the group", async () => {
    // dedupWindow 1, a group of 3 at v1..v3: the window of a message decided at v3 holds v1.
    const conflict = single(event(0, 0, { changed: true }));
    const named = {
      source: 'm1',
      body: conflict,
      reason: 'EventIdConflict',
      detail: `EventId: "e0.0" is already stored at version 1 of stream "${STREAM}" with different content`,
    };
    const result = await verdict({
      messages: [message('m0', g), message('m1', conflict)],
      stored: streamOf({ body: g }),
      deadLetters: [named],
      writes: [1, 2, 3].map((version) => ({
        streamId: STREAM,
        version,
        eventId: `e0.${version - 1}`,
        at: EPOCH,
        order: version,
        messageId: 'm0',
      })),
      dedupWindow: 1,
    });
    expect(result.violations).toEqual([]);

    // The same conflict for a single event three versions down is the stale verdict the check exists for.
    const singles = [single(event(0, 0)), single(event(1, 0)), single(event(2, 0))];
    const stale = await verdict({
      messages: [...singles.map((body, index) => message(`s${index}`, body)), message('m1', conflict)],
      stored: streamOf(...singles.map((body) => ({ body }))),
      deadLetters: [named],
      writes: [1, 2, 3].map((version) => ({
        streamId: STREAM,
        version,
        eventId: `e${version - 1}.0`,
        at: EPOCH,
        order: version,
        messageId: `s${version - 1}`,
      })),
      dedupWindow: 1,
    });
    expect(broken(stale.violations)).toEqual(['verdict-as-cold']);
  });
});
