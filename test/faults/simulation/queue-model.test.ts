import { describe, expect, it } from 'vitest';
import { QueueModel } from './queue-model.ts';
import { Rng } from './random.ts';

// The fault exploration is only as good as its queue model: these pin the SQS behaviour it
// claims (test/faults/simulation/queue-model.ts), without DynamoDB.

const VISIBILITY = 1_000;

function queue(fifo: boolean, maxReceiveCount = 3, duplicateDeliveryRate = 0): { model: QueueModel; log: string[] } {
  const log: string[] = [];
  const model = new QueueModel({
    fifo,
    visibilityTimeoutMs: VISIBILITY,
    maxReceiveCount,
    duplicateDeliveryRate,
    log: (line) => log.push(line),
  });
  return { model, log };
}

describe('the queue model of the fault exploration', () => {
  it('FIFO: delivers a group in send order and nothing more of it while one of its messages is in flight', () => {
    const { model } = queue(true);
    for (const [id, group] of [
      ['a1', 'A'],
      ['b1', 'B'],
      ['a2', 'A'],
      ['a3', 'A'],
    ] as const)
      model.send(id, id, group, 0);
    const rng = new Rng(1);

    const first = model.receive(0, 10, rng);
    const aIds = first.filter((d) => d.message.group === 'A').map((d) => d.message.id);
    expect(aIds).toEqual(['a1', 'a2', 'a3'].slice(0, aIds.length));
    expect(aIds.length).toBeGreaterThan(0);

    // Group A is locked while any of its messages is in flight: a second receive gets none of it.
    const second = model.receive(0, 10, rng);
    expect(second.filter((d) => d.message.group === 'A')).toEqual([]);
  });

  it('FIFO: a message that is not deleted comes back after the visibility timeout before the rest of its group', () => {
    const { model } = queue(true);
    model.send('a1', 'a1', 'A', 0);
    model.send('a2', 'a2', 'A', 0);
    const rng = new Rng(2);
    const [head] = model.receive(0, 1, rng);
    expect(head?.message.id).toBe('a1');

    expect(model.receive(VISIBILITY - 1, 10, rng)).toEqual([]);
    const again = model.receive(VISIBILITY, 1, rng);
    expect(again.map((d) => [d.message.id, d.receiveCount])).toEqual([['a1', 2]]);
  });

  it('moves a message the queue delivered maxReceiveCount times to the DLQ on the next receive, with no reason', () => {
    const { model, log } = queue(false, 2);
    model.send('m', 'm', undefined, 0);
    const rng = new Rng(3);
    expect(model.receive(0, 10, rng).map((d) => d.receiveCount)).toEqual([1]);
    expect(model.receive(VISIBILITY, 10, rng).map((d) => d.receiveCount)).toEqual([2]);

    expect(model.receive(2 * VISIBILITY, 10, rng)).toEqual([]);
    expect(model.messages[0]?.state).toBe('movedToDlq');
    expect(log).toEqual(['queue moves m to the DLQ after 2 receives (no reason attached)']);
  });

  it('ignores a delete with the receipt of an earlier delivery, as SQS may', () => {
    const { model } = queue(false);
    model.send('m', 'm', undefined, 0);
    const rng = new Rng(4);
    const [early] = model.receive(0, 10, rng);
    const [late] = model.receive(VISIBILITY, 10, rng);

    expect(early && model.delete(early)).toBe('stale receipt');
    expect(late && model.delete(late)).toBe('deleted');
    expect(model.outstanding).toBe(0);
  });

  it('standard: now and then hands out a copy of a message another consumer holds', () => {
    const { model } = queue(false, 5, 1);
    model.send('m1', 'm1', undefined, 0);
    model.send('m2', 'm2', undefined, 0);
    const rng = new Rng(5);
    const first = model.receive(0, 1, rng);
    const second = model.receive(0, 10, rng);

    expect(second.filter((d) => d.duplicate).map((d) => d.message.id)).toEqual(first.map((d) => d.message.id));
  });
});
