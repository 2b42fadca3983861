import type { Rng } from './random.ts';

/**
 * A model of an SQS source queue as the Lambda event source mapping sees it
 * (docs/OPERATIONS.md, "The consumer and what it shows"): in memory and deterministic, because
 * the faults explored here (a lost acknowledgement, a duplicate delivery, a redelivery racing
 * another container) cannot be produced on demand by a real queue. What it models:
 *
 * - visibility timeout: a received message is hidden until `now + visibilityTimeout`, then
 *   delivered again with `ApproximateReceiveCount` one higher;
 * - a delete with an old receipt (the message was received again since) does nothing, like SQS;
 * - `maxReceiveCount`: a message received that many times and not deleted is moved to the DLQ
 *   by the queue itself on the next receive, with no reason attached;
 * - standard: a receive returns visible messages in any order, and now and then delivers a
 *   message again that another consumer holds or already deleted (at-least-once);
 * - FIFO: messages of a group are delivered in send order, a group with a message in flight is
 *   not delivered at all (group lock), and one receive may hold several messages of a group,
 *   in order, and several groups.
 */
export interface QueueMessage {
  readonly id: string;
  readonly body: string;
  /** Position in the producer's send order, from 0. */
  readonly sendIndex: number;
  /** When the producer sent it (virtual epoch ms): the records' `SentTimestamp`. */
  readonly sentAt: number;
  readonly group: string | undefined;
  /** FIFO: the `SequenceNumber` SQS gave it (numbers start again in a new queue). */
  readonly sequence: string | undefined;
  receiveCount: number;
  /** Which receive the current receipt belongs to (deletes with an older one are ignored). */
  receipt: number;
  state: 'visible' | 'inflight' | 'deleted' | 'movedToDlq';
  visibleAt: number;
}

export interface Delivery {
  readonly message: QueueMessage;
  readonly receipt: number;
  readonly receiveCount: number;
  /** A second copy of a message another consumer holds or deleted (standard queues). */
  readonly duplicate: boolean;
}

export interface QueueModelOptions {
  readonly fifo: boolean;
  readonly visibilityTimeoutMs: number;
  readonly maxReceiveCount: number;
  /** Standard queues: chance that a receive also hands out a duplicate of another message. */
  readonly duplicateDeliveryRate: number;
  readonly log: (line: string) => void;
}

export class QueueModel {
  readonly #messages: QueueMessage[] = [];
  readonly #options: QueueModelOptions;

  public constructor(options: QueueModelOptions) {
    this.#options = options;
  }

  public get messages(): readonly QueueMessage[] {
    return this.#messages;
  }

  public send(id: string, body: string, group: string | undefined, now: number, sequence?: string): QueueMessage {
    const message: QueueMessage = {
      id,
      body,
      sendIndex: this.#messages.length,
      sentAt: now,
      group: this.#options.fifo ? group : undefined,
      sequence: this.#options.fifo ? (sequence ?? String(this.#messages.length).padStart(20, '0')) : undefined,
      receiveCount: 0,
      receipt: 0,
      state: 'visible',
      visibleAt: now,
    };
    this.#messages.push(message);
    return message;
  }

  #available(message: QueueMessage, now: number): boolean {
    return message.state === 'visible' || (message.state === 'inflight' && message.visibleAt <= now);
  }

  /** Whether a receive now would deliver (or move) anything. */
  public hasDeliverable(now: number): boolean {
    if (!this.#options.fifo) return this.#messages.some((message) => this.#available(message, now));
    return this.#fifoHeads(now).length > 0;
  }

  /** Messages not yet deleted or moved. */
  public get outstanding(): number {
    return this.#messages.filter((message) => message.state === 'visible' || message.state === 'inflight').length;
  }

  /** When the next hidden message becomes visible again. */
  public nextVisibleAt(now: number): number | undefined {
    let next: number | undefined;
    for (const message of this.#messages) {
      if (message.state === 'inflight' && message.visibleAt > now && (next === undefined || message.visibleAt < next)) {
        next = message.visibleAt;
      }
    }
    return next;
  }

  /** FIFO: the first undeleted message of every group that is not locked, in group order. */
  #fifoHeads(now: number): QueueMessage[] {
    const heads: QueueMessage[] = [];
    const seen = new Set<string>();
    for (const message of this.#messages) {
      const group = message.group ?? '';
      if (seen.has(group) || message.state === 'deleted' || message.state === 'movedToDlq') continue;
      seen.add(group);
      if (this.#available(message, now)) heads.push(message);
    }
    return heads;
  }

  /** Move a message that used up its receives to the DLQ, as SQS's redrive policy does. */
  #exhausted(message: QueueMessage): boolean {
    if (message.receiveCount < this.#options.maxReceiveCount) return false;
    message.state = 'movedToDlq';
    this.#options.log(
      `queue moves ${message.id} to the DLQ after ${message.receiveCount} receives (no reason attached)`,
    );
    return true;
  }

  #deliver(message: QueueMessage, now: number, duplicate = false): Delivery {
    message.receiveCount += 1;
    message.receipt += 1;
    if (!duplicate || message.state !== 'deleted') {
      message.state = 'inflight';
      message.visibleAt = now + this.#options.visibilityTimeoutMs;
    }
    return { message, receipt: message.receipt, receiveCount: message.receiveCount, duplicate };
  }

  public receive(now: number, maxMessages: number, rng: Rng): Delivery[] {
    return this.#options.fifo ? this.#receiveFifo(now, maxMessages, rng) : this.#receiveStandard(now, maxMessages, rng);
  }

  #receiveStandard(now: number, maxMessages: number, rng: Rng): Delivery[] {
    const candidates = rng.shuffle(this.#messages.filter((message) => this.#available(message, now)));
    const deliveries: Delivery[] = [];
    for (const message of candidates) {
      if (deliveries.length >= maxMessages) break;
      if (this.#exhausted(message)) continue;
      deliveries.push(this.#deliver(message, now));
    }
    if (deliveries.length < maxMessages && rng.chance(this.#options.duplicateDeliveryRate)) {
      const others = this.#messages.filter(
        (message) =>
          (message.state === 'inflight' || message.state === 'deleted') &&
          !deliveries.some((d) => d.message === message),
      );
      if (others.length > 0) deliveries.push(this.#deliver(rng.pick(others), now, true));
    }
    return deliveries;
  }

  #receiveFifo(now: number, maxMessages: number, rng: Rng): Delivery[] {
    const deliveries: Delivery[] = [];
    // Heads that used up their receives go first, which may free their groups' next message.
    for (let moved = true; moved;) {
      moved = false;
      for (const head of this.#fifoHeads(now)) if (this.#exhausted(head)) moved = true;
    }
    for (const head of rng.shuffle(this.#fifoHeads(now))) {
      if (deliveries.length >= maxMessages) break;
      // A receive returns "up to" its maximum: take 1 to all of the group's visible run, in order.
      const run: QueueMessage[] = [];
      for (const message of this.#messages) {
        if (message.group !== head.group || message.sendIndex < head.sendIndex) continue;
        if (message.state === 'deleted' || message.state === 'movedToDlq') continue;
        if (!this.#available(message, now) || message.receiveCount >= this.#options.maxReceiveCount) break;
        run.push(message);
      }
      const take = Math.min(maxMessages - deliveries.length, rng.int(1, Math.max(1, run.length)));
      for (const message of run.slice(0, take)) deliveries.push(this.#deliver(message, now));
    }
    return deliveries;
  }

  /** The event source mapping deletes a record the handler did not report failed. */
  public delete(delivery: Delivery): 'deleted' | 'stale receipt' | 'already gone' {
    const { message } = delivery;
    if (message.state === 'deleted' || message.state === 'movedToDlq') return 'already gone';
    if (message.receipt !== delivery.receipt) return 'stale receipt';
    message.state = 'deleted';
    return 'deleted';
  }
}
