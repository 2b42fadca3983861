import type { SQSBatchResponse } from 'aws-lambda';
import { MessageAttributeNames } from '../../../core/message-attributes.ts';
import type { IngestHandler } from '../../../handlers/ingest.ts';
import type { HttpHandlerOptions } from '@smithy/types';
import { messageEvents, parseEventBody } from '../../../core/event.ts';
import { LOCAL_ACCOUNT } from '../../../local/defaults.ts';
import { lambdaContext, sqsRecord } from '../../support/factories.ts';
import { dlqBytes } from './invariants.ts';
import { QueueModel, type Delivery } from './queue-model.ts';
import { Rng } from './random.ts';
import {
  BELOW,
  WRITE_OPERATIONS,
  type CallHost,
  type DlqAnswer,
  type DlqFault,
  type DlqSendInput,
  type DynamoFault,
} from './sim-http.ts';
import { actorStorage, realSetImmediate, VirtualClock, type Actor } from './virtual-time.ts';
import { EPOCH, type SchedulePlan } from './workload.ts';

/**
 * One schedule: a producer, a source queue model, 2 to 4 containers (each its own handler
 * instance, so its own stream cache) and a DLQ model, driven by a seeded scheduler over virtual
 * time. The scheduler waits until every running invocation is blocked at a yield point (an SDK
 * call waiting for release, a virtual timer) or done, then picks one enabled action:
 * release one pending call (it runs to completion before anything else happens), let an idle
 * container receive a batch, let the producer send its next message, or let time pass to the
 * next timer, visibility timeout or function timeout. Same seed, same schedule, same trace.
 */
export type Handler = IngestHandler;

export const FUNCTION_TIMEOUT_MS = 30_000;
/** The stack's rule: the queue's visibility timeout is 6 x the function timeout. */
export const VISIBILITY_TIMEOUT_MS = 6 * FUNCTION_TIMEOUT_MS;
const MAX_STEPS = 8_000;
const MAX_VIRTUAL_MS = 6 * 60 * 60 * 1000;

interface PendingCall {
  readonly id: number;
  readonly invocationId: number;
  readonly label: string;
  release(): void;
  finished?: () => void;
}

interface Container {
  readonly slot: number;
  /** How far its clock is off SQS's (`Date.now` inside its invocations). */
  readonly clockOffsetMs: number;
  generation: number;
  handler: Handler;
  busy: Invocation | undefined;
}

export interface Invocation {
  readonly id: number;
  readonly container: Container;
  readonly deliveries: readonly Delivery[];
  readonly start: number;
  readonly deadline: number;
  /** Position of its start among the schedule's writes and DLQ sends. */
  readonly startOrder: number;
  state: 'running' | 'returned' | 'threw' | 'killed';
  /** A fault made the outcome of one of its writes unknown to the handler (lost response, hang). */
  unknownOutcome: boolean;
  hung: boolean;
}

export interface DeadLetterSent {
  readonly input: DlqSendInput;
  readonly invocationId: number;
  /** ApproximateReceiveCount of the delivery that sent it. */
  readonly receiveCount: number | undefined;
  readonly accepted: boolean;
  /** Position among the schedule's writes and DLQ sends (`Write.order`). */
  readonly order: number;
  /**
   * When the verdict was reached, at the latest: the position of the invocation's last DynamoDB
   * call on the event's stream before the send (or of its start, if it made none).
   */
  readonly decidedOrder: number;
}

/** An item DynamoDB applied (a PutItem, or one Put of a TransactWriteItems): which stream and version, when (SQS's clock), for which message. */
export interface Write {
  readonly streamId: string;
  readonly version: number;
  readonly eventId: string;
  readonly at: number;
  /** Position among the schedule's writes and DLQ sends. */
  readonly order: number;
  /** The message of the batch that carries this EventId, when only one does. */
  readonly messageId: string | undefined;
}

export interface WorldRecord {
  readonly plan: SchedulePlan;
  readonly trace: readonly string[];
  readonly queue: QueueModel;
  readonly deadLetters: readonly DeadLetterSent[];
  /** Messages whose handling met a fault that left its outcome unknown (lost ack or response, hang, kill). */
  readonly unknownOutcome: ReadonlySet<string>;
  /** Messages a delivery of which had DynamoDB apply a PutItem of its event, or a transaction of its group. */
  readonly wroteFor: ReadonlySet<string>;
  /** Every item DynamoDB applied (PutItem, or a transaction's Puts), in order. */
  readonly writes: readonly Write[];
  /** Standard queues: messages of which SQS handed out a second copy (at-least-once delivery). */
  readonly copied: ReadonlySet<string>;
  readonly invocations: readonly Invocation[];
  readonly problems: readonly { readonly invariant: string; readonly detail: string }[];
  readonly steps: number;
  readonly faultsInjected: Readonly<Record<string, number>>;
}

export interface WorldOptions {
  readonly plan: SchedulePlan;
  /** Build a fresh container's handler (its own cache), for the DLQ URL given. */
  readonly newHandler: (dlqUrl: string) => Handler;
}

/** The EventIds a message carries: one, a group's, or none when it is invalid. */
function eventIdsOf(body: string): readonly string[] {
  const parsed = parseEventBody(body);
  return parsed.ok ? messageEvents(parsed).map((event) => event.EventId) : [];
}

function abortError(): Error {
  const error = new Error('Request aborted');
  error.name = 'AbortError';
  return error;
}

export class World implements CallHost {
  readonly #plan: SchedulePlan;
  readonly #newHandler: (dlqUrl: string) => Handler;
  readonly #sched: Rng;
  readonly #faults: Rng;
  readonly #noise: Rng;
  readonly #clock: VirtualClock;
  readonly #queue: QueueModel;
  readonly #dlqUrl: string;
  readonly #trace: string[] = [];
  readonly #pending: PendingCall[] = [];
  readonly #containers: Container[] = [];
  readonly #invocations: Invocation[] = [];
  readonly #deadLetters: DeadLetterSent[] = [];
  readonly #copied = new Set<string>();
  readonly #dlqDedup = new Map<string, string>();
  readonly #unknown = new Set<string>();
  readonly #writes = new Set<string>();
  readonly #applied: Write[] = [];
  readonly #problems: { invariant: string; detail: string }[] = [];
  readonly #episodes = new Map<string, { kind: DynamoFault | DlqFault | 'none'; every: boolean }>();
  readonly #injected: Record<string, number> = {};
  #version = 0;
  #inflight = 0;
  #callSequence = 0;
  #invocationSequence = 0;
  #sent = 0;
  #lastSendAt = EPOCH;
  #incarnation = 0;
  #order = 0;
  /** Per invocation and stream: the position at which its last DynamoDB call (or DLQ send) ended. */
  readonly #lastCall = new Map<string, number>();
  /** Messages sent to the current incarnation of the queue. */
  #sentToIncarnation = 0;
  #steps = 0;

  public constructor(options: WorldOptions) {
    const { plan } = options;
    this.#plan = plan;
    this.#newHandler = options.newHandler;
    this.#sched = Rng.derive(plan.seed, plan.index, 'scheduler');
    this.#faults = Rng.derive(plan.seed, plan.index, 'faults');
    this.#noise = Rng.derive(plan.seed, plan.index, 'Math.random');
    this.#clock = new VirtualClock(EPOCH, () => this.#bump());
    this.#dlqUrl = `http://127.0.0.1:9/${LOCAL_ACCOUNT}/sim-${plan.index}-dlq${plan.fifo ? '.fifo' : ''}`;
    this.#queue = new QueueModel({
      fifo: plan.fifo,
      visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS,
      maxReceiveCount: plan.maxReceiveCount,
      duplicateDeliveryRate: plan.faults.duplicateDelivery,
      log: (line) => this.#log(line),
    });
    for (let slot = 0; slot < plan.containers; slot += 1) {
      this.#containers.push({
        slot,
        clockOffsetMs: plan.clockOffsetsMs[slot] ?? 0,
        generation: 1,
        handler: this.#newHandler(this.#dlqUrl),
        busy: undefined,
      });
    }
  }

  #bump(): void {
    this.#version += 1;
  }

  #log(line: string): void {
    const text = `t+${((this.#clock.now - EPOCH) / 1000).toFixed(3)}s ${line}`;
    this.#trace.push(text);
  }

  #who(invocationId: number): string {
    const invocation = this.#invocations[invocationId - 1];
    return invocation ? `c${invocation.container.slot}/inv${invocationId}` : `inv${invocationId}`;
  }

  #count(kind: string): void {
    this.#injected[kind] = (this.#injected[kind] ?? 0) + 1;
  }

  // ---- CallHost: what the SDK calls of this schedule report to ----

  public gate(
    invocationId: number,
    label: string,
    abortSignal: HttpHandlerOptions['abortSignal'],
  ): Promise<() => void> {
    return new Promise((resolve, reject) => {
      const call: PendingCall = {
        id: (this.#callSequence += 1),
        invocationId,
        label,
        release: () => {
          this.#pending.splice(this.#pending.indexOf(call), 1);
          this.#inflight += 1;
          resolve(() => {
            this.#inflight -= 1;
            // What the caller decides next, it decides knowing at most what this call saw; a
            // read of older events (below what it knows) tells it nothing newer.
            const words = label.split(' ');
            if (words[2] !== BELOW) this.#lastCall.set(`${invocationId}\u0000${words[1] ?? ''}`, (this.#order += 1));
            this.#bump();
            call.finished?.();
          });
        },
      };
      if (abortSignal) {
        const onAbort = (): void => {
          const at = this.#pending.indexOf(call);
          if (at < 0) return;
          this.#pending.splice(at, 1);
          this.#log(`${this.#who(invocationId)} ${label}: aborted by the caller before it answered`);
          this.#bump();
          reject(abortError());
        };
        const signal = abortSignal as {
          addEventListener?: (type: string, fn: () => void, options: { once: boolean }) => void;
          onabort?: unknown;
        };
        if (typeof signal.addEventListener === 'function') signal.addEventListener('abort', onAbort, { once: true });
        else signal.onabort = onAbort;
      }
      this.#pending.push(call);
      this.#bump();
    });
  }

  #episode(
    sendKey: string,
    decide: () => { kind: DynamoFault | DlqFault | 'none'; every: boolean },
  ): DynamoFault | DlqFault | undefined {
    let episode = this.#episodes.get(sendKey);
    if (!episode) {
      episode = decide();
      this.#episodes.set(sendKey, episode);
      if (episode.kind !== 'none') return episode.kind;
      return undefined;
    }
    return episode.every && episode.kind !== 'none' ? episode.kind : undefined;
  }

  public dynamoFault(invocationId: number, sendKey: string, operation: string, label: string): DynamoFault | undefined {
    const rates = this.#plan.faults;
    const episodic = this.#episode(sendKey, () => {
      if (this.#faults.chance(rates.hang)) {
        return {
          kind: WRITE_OPERATIONS.has(operation) && this.#faults.chance(0.5) ? 'hang-after-write' : 'hang-before-write',
          every: false,
        };
      }
      if (this.#faults.chance(rates.dynamoOutage)) return { kind: 'throttle', every: true };
      return { kind: 'none', every: false };
    }) as DynamoFault | undefined;
    let fault = episodic;
    if (!fault && this.#faults.chance(rates.dynamoBlip)) fault = this.#faults.chance(0.5) ? 'throttle' : 'server-error';
    if (!fault && WRITE_OPERATIONS.has(operation) && this.#faults.chance(rates.lostResponse)) fault = 'lost-response';
    // A group's transaction cancelled by another's on one of its items, or by throttling.
    if (!fault && operation === 'TransactWriteItems' && this.#faults.chance(rates.cancelled))
      fault = this.#faults.chance(0.5) ? 'cancel-conflict' : 'cancel-throttled';
    if (fault) {
      this.#count(`dynamodb ${fault}`);
      this.#log(`${this.#who(invocationId)} ${label}: injected ${fault}`);
      const invocation = this.#invocations[invocationId - 1];
      if (invocation && (fault === 'lost-response' || fault.startsWith('hang'))) {
        invocation.unknownOutcome = true;
        if (fault.startsWith('hang')) invocation.hung = true;
      }
    } else {
      this.#log(`${this.#who(invocationId)} ${label}`);
    }
    return fault;
  }

  public dlqFault(invocationId: number, sendKey: string, label: string): DlqFault | undefined {
    const rates = this.#plan.faults;
    const pickKind = (): DlqFault => (this.#faults.chance(0.5) ? 'network' : 'server-error');
    let fault = this.#episode(sendKey, () =>
      this.#faults.chance(rates.dlqOutage) ? { kind: pickKind(), every: true } : { kind: 'none', every: false },
    ) as DlqFault | undefined;
    if (!fault && this.#faults.chance(rates.dlqBlip)) fault = pickKind();
    if (fault) {
      this.#count(`dlq ${fault}`);
      this.#log(`${this.#who(invocationId)} ${label}: injected ${fault}`);
    }
    return fault;
  }

  public dlqSend(invocationId: number, input: DlqSendInput): DlqAnswer {
    const attributes = input.MessageAttributes ?? {};
    const size = dlqBytes(input);
    const source = attributes[MessageAttributeNames.sourceMessageId]?.StringValue;
    const invocation = this.#invocations[invocationId - 1];
    const delivery = invocation?.deliveries.find((candidate) => candidate.message.id === source);
    const reason = attributes[MessageAttributeNames.rejectionReason]?.StringValue;
    const parsed = parseEventBody(input.MessageBody ?? '');
    const stream = parsed.ok && parsed.kind === 'event' ? parsed.event.ID : parsed.streamId;
    const decidedOrder = Math.max(
      invocation?.startOrder ?? 0,
      this.#lastCall.get(`${invocationId}\u0000${stream ?? ''}`) ?? 0,
    );
    if (size > this.#plan.dlqMaxBytes) {
      this.#count('dlq message too long');
      this.#log(
        `${this.#who(invocationId)} DLQ SendMessage ${source}: ${size} bytes, over the ${this.#plan.dlqMaxBytes}-byte limit (InvalidParameterValue)`,
      );
      this.#deadLetters.push({
        input,
        invocationId,
        receiveCount: delivery?.receiveCount,
        accepted: false,
        order: (this.#order += 1),
        decidedOrder,
      });
      return { ok: false, tooLong: this.#plan.dlqMaxBytes };
    }
    this.#deadLetters.push({
      input,
      invocationId,
      receiveCount: delivery?.receiveCount,
      accepted: true,
      order: (this.#order += 1),
      decidedOrder,
    });
    const dedup = input.MessageDeduplicationId;
    if (this.#plan.fifo && dedup !== undefined && this.#dlqDedup.has(dedup)) {
      this.#log(`${this.#who(invocationId)} DLQ SendMessage ${source} (${reason}): deduplicated by SQS`);
      return { ok: true, messageId: this.#dlqDedup.get(dedup) ?? '' };
    }
    const messageId = `dlq-${this.#deadLetters.length}`;
    if (dedup !== undefined) this.#dlqDedup.set(dedup, messageId);
    this.#log(
      `${this.#who(invocationId)} DLQ SendMessage ${source}: dead-lettered (${reason}: ${attributes[MessageAttributeNames.rejectionDetail]?.StringValue ?? ''})`,
    );
    return { ok: true, messageId };
  }

  public wrote(invocationId: number, eventId: string, streamId: string, version: number): void {
    // A version is written once (`attribute_not_exists(Version)`): a second 200 for it is a
    // transaction's idempotent retry (the same ClientRequestToken), which writes nothing.
    if (this.#applied.some((write) => write.streamId === streamId && write.version === version)) return;
    // Attributed to the message of the batch that carries this EventId, when only one does.
    const invocation = this.#invocations[invocationId - 1];
    const carriers = (invocation?.deliveries ?? []).filter((delivery) =>
      eventIdsOf(delivery.message.body).includes(eventId),
    );
    const [only] = carriers;
    if (carriers.length === 1 && only) this.#writes.add(only.message.id);
    this.#applied.push({
      streamId,
      version,
      eventId,
      at: this.#clock.now,
      order: (this.#order += 1),
      messageId: carriers.length === 1 ? only?.message.id : undefined,
    });
  }

  public note(invocationId: number, line: string): void {
    this.#log(`${this.#who(invocationId)} ${line}`);
  }

  public cancelAt(_invocationId: number): (count: number) => number {
    return (count) => this.#faults.int(0, count - 1);
  }

  // ---- the scheduler ----

  /** Wait until nothing of this schedule can move without the scheduler (see the class comment). */
  async #quiesce(): Promise<void> {
    let seen: number;
    do {
      seen = this.#version;
      await realSetImmediate();
    } while (seen !== this.#version || this.#inflight > 0);
  }

  #running(): Invocation[] {
    return this.#invocations.filter((invocation) => invocation.state === 'running');
  }

  #finished(): boolean {
    return this.#sent === this.#plan.messages.length && this.#queue.outstanding === 0 && this.#running().length === 0;
  }

  #problem(invariant: string, detail: string): void {
    this.#problems.push({ invariant, detail });
    this.#log(`PROBLEM ${invariant}: ${detail}`);
  }

  public async run(): Promise<WorldRecord> {
    const plan = this.#plan;
    this.#log(
      `schedule ${plan.index}: ${plan.fifo ? 'FIFO' : 'standard'}, ${plan.containers} containers, batch size ${plan.batchSize}, ` +
        `maxReceiveCount ${plan.maxReceiveCount}, DLQ limit ${plan.dlqMaxBytes} bytes (${plan.handlerKnowsDlqLimit ? 'the handler is told' : 'not told to the handler'}), ` +
        `faults ${JSON.stringify(plan.faults)}${plan.paths.length > 0 ? `; paths: ${plan.paths.join(', ')}` : ''}`,
    );
    for (const old of plan.history)
      this.#log(
        `before: ${old.streamId} v${old.version} ${String((JSON.parse(old.body) as { EventId?: unknown }).EventId)} recorded at t${((old.recordedAt - EPOCH) / 1000).toFixed(3)}s${old.sequence === undefined ? '' : ` (SourceSequence ${old.sequence})`}`,
      );
    for (const message of plan.messages) this.#log(`plan ${message.id}: ${message.label}`);
    for (;;) {
      await this.#quiesce();
      this.#expire();
      if (this.#finished()) break;
      this.#steps += 1;
      if (this.#steps > MAX_STEPS || this.#clock.now - EPOCH > MAX_VIRTUAL_MS) {
        this.#problem(
          'drained',
          `not done after ${this.#steps - 1} steps and ${Math.round((this.#clock.now - EPOCH) / 1000)} s: ${this.#queue.outstanding} messages still in the queue`,
        );
        break;
      }
      if (!(await this.#step())) {
        this.#problem(
          'drained',
          `nothing can happen any more, yet ${this.#queue.outstanding} messages are in the queue and ${this.#running().length} invocations run`,
        );
        break;
      }
    }
    for (const error of this.#clock.errors)
      this.#problem('timer-callbacks', `a timer callback threw: ${String(error)}`);
    return {
      plan,
      trace: this.#trace,
      queue: this.#queue,
      deadLetters: this.#deadLetters,
      unknownOutcome: this.#unknown,
      wroteFor: this.#writes,
      writes: this.#applied,
      copied: this.#copied,
      invocations: this.#invocations,
      problems: this.#problems,
      steps: this.#steps,
      faultsInjected: this.#injected,
    };
  }

  /** Lambda ends an invocation at the function timeout and resets its container. */
  #expire(): void {
    for (const invocation of this.#running()) {
      if (invocation.deadline > this.#clock.now) continue;
      invocation.state = 'killed';
      for (const call of [...this.#pending]) {
        if (call.invocationId === invocation.id) this.#pending.splice(this.#pending.indexOf(call), 1);
      }
      this.#clock.dropInvocation(invocation.id);
      for (const delivery of invocation.deliveries) this.#unknown.add(delivery.message.id);
      const container = invocation.container;
      container.busy = undefined;
      container.generation += 1;
      container.handler = this.#newHandler(this.#dlqUrl);
      this.#log(
        `${this.#who(invocation.id)} KILLED at the function timeout (${FUNCTION_TIMEOUT_MS / 1000} s); its batch returns after the visibility timeout; container c${container.slot} starts fresh`,
      );
      this.#bump();
    }
  }

  async #step(): Promise<boolean> {
    type Action = { weight: number; run: () => Promise<void> | void; what: string };
    const actions: Action[] = [];
    for (const call of [...this.#pending].sort((a, b) => a.id - b.id)) {
      actions.push({ weight: 1, what: 'call', run: () => this.#release(call) });
    }
    if (this.#queue.hasDeliverable(this.#clock.now)) {
      for (const container of this.#containers) {
        if (!container.busy) actions.push({ weight: 1, what: 'poll', run: () => this.#poll(container) });
      }
    }
    const sendAt = this.#nextSendAt();
    if (sendAt !== undefined && sendAt <= this.#clock.now && this.#maySend())
      actions.push({ weight: 1.5, what: 'send', run: () => this.#send() });
    const next = [
      this.#clock.nextDue(),
      this.#queue.nextVisibleAt(this.#clock.now),
      sendAt,
      ...this.#running().map((invocation) => invocation.deadline),
    ]
      .filter((time): time is number => time !== undefined && time > this.#clock.now)
      .reduce<number | undefined>((min, time) => (min === undefined || time < min ? time : min), undefined);
    const dueNow = this.#clock.nextDue() !== undefined && (this.#clock.nextDue() ?? Infinity) <= this.#clock.now;
    if (dueNow) actions.push({ weight: 1, what: 'timers', run: () => void this.#clock.advanceTo(this.#clock.now) });
    if (next !== undefined && actions.length === 0) {
      actions.push({ weight: 1, what: 'time', run: () => this.#advance(next) });
    } else if (next !== undefined) {
      // Time may also pass while other things could happen: up to the next timer (a backoff,
      // the handler's own deadline), rarely while calls are in flight (they were slow), and
      // never to a function timeout, which only a hung call (an injected fault) reaches.
      const timer = this.#clock.nextDue();
      const deadlines = this.#running().map((invocation) => invocation.deadline);
      if (timer !== undefined && timer > this.#clock.now && deadlines.every((deadline) => timer < deadline)) {
        actions.push({ weight: this.#pending.length > 0 ? 0.02 : 0.5, what: 'time', run: () => this.#advance(timer) });
      }
      // A producer waiting to resend: its time may come while containers are busy.
      if (sendAt !== undefined && sendAt > this.#clock.now && deadlines.every((deadline) => sendAt < deadline)) {
        actions.push({ weight: this.#pending.length > 0 ? 0.02 : 0.5, what: 'time', run: () => this.#advance(sendAt) });
      }
    }
    if (actions.length === 0) return false;
    const chosen = actions[this.#sched.weighted(actions.map((action) => action.weight))] as Action;
    await chosen.run();
    return true;
  }

  #advance(time: number): void {
    const pending = this.#pending.length;
    const slow =
      pending > 0
        ? ` while ${pending} calls are in flight (${this.#pending.map((call) => `${this.#who(call.invocationId)} ${call.label}`).join('; ')})`
        : '';
    this.#log(`time passes: +${((time - this.#clock.now) / 1000).toFixed(3)} s${slow}`);
    this.#clock.advanceTo(time);
    this.#bump();
  }

  async #release(call: PendingCall): Promise<void> {
    const finished = new Promise<void>((resolve) => {
      call.finished = resolve;
    });
    call.release();
    await finished;
  }

  /** When the producer may send its next message (undefined: all sent). */
  #nextSendAt(): number | undefined {
    const message = this.#plan.messages[this.#sent];
    return message ? this.#lastSendAt + message.sendDelayMs : undefined;
  }

  /**
   * A message for the next incarnation of the queue waits until the current one is drained and
   * no invocation runs: then the queue is deleted and created again (docs/OPERATIONS.md).
   */
  #maySend(): boolean {
    const message = this.#plan.messages[this.#sent];
    if (!message || message.incarnation === this.#incarnation) return true;
    return this.#queue.outstanding === 0 && this.#running().length === 0;
  }

  #send(): void {
    const message = this.#plan.messages[this.#sent];
    this.#sent += 1;
    if (!message) return;
    if (message.incarnation !== this.#incarnation) {
      this.#incarnation = message.incarnation;
      this.#sentToIncarnation = 0;
      this.#log(
        `the source queue is deleted and created again (incarnation ${this.#incarnation + 1}): its sequence numbers start at ${String(this.#plan.sequenceBases[this.#incarnation] ?? 1n)}`,
      );
    }
    const base = this.#plan.sequenceBases[this.#incarnation] ?? 1n;
    const sequence = String(base + BigInt(this.#sentToIncarnation)).padStart(20, '0');
    this.#sentToIncarnation += 1;
    this.#lastSendAt = this.#clock.now;
    this.#queue.send(message.id, message.body, message.group, this.#clock.now, sequence);
    this.#log(
      `producer sends ${message.id} (${message.label})${this.#plan.fifo ? ` [group ${message.group ?? ''}, sequence ${sequence}]` : ''}`,
    );
    this.#bump();
  }

  #poll(container: Container): void {
    const deliveries = this.#queue.receive(this.#clock.now, this.#plan.batchSize, this.#sched);
    if (deliveries.length === 0) {
      this.#bump();
      return;
    }
    const id = (this.#invocationSequence += 1);
    const invocation: Invocation = {
      id,
      container,
      deliveries,
      start: this.#clock.now,
      deadline: this.#clock.now + FUNCTION_TIMEOUT_MS,
      startOrder: (this.#order += 1),
      state: 'running',
      unknownOutcome: false,
      hung: false,
    };
    this.#invocations.push(invocation);
    container.busy = invocation;
    for (const delivery of deliveries) if (delivery.duplicate) this.#copied.add(delivery.message.id);
    this.#log(
      `${this.#who(id)} receives ${deliveries.map((d) => `${d.message.id}(rc=${d.receiveCount}${d.duplicate ? ', duplicate delivery' : ''})`).join(' ')}`,
    );
    const records = deliveries.map((delivery) => {
      const record = sqsRecord(delivery.message.body, {
        messageId: delivery.message.id,
        queueName: this.#plan.queueNames[this.#incarnation],
        receiveCount: delivery.receiveCount,
        fifo: this.#plan.fifo
          ? { groupId: delivery.message.group ?? 'group', sequenceNumber: delivery.message.sequence }
          : undefined,
      });
      // SQS stamps SentTimestamp when the producer sent the message (virtual time): every
      // delivery of it carries the same one, which bounds the duplicate window.
      const sent = String(delivery.message.sentAt);
      return {
        ...record,
        attributes: {
          ...record.attributes,
          SentTimestamp: sent,
          ApproximateFirstReceiveTimestamp: String(this.#clock.now),
        },
      };
    });
    const context = lambdaContext({
      awsRequestId: `sim-${this.#plan.index}-inv${id}`,
      getRemainingTimeInMillis: () => Math.max(0, invocation.deadline - this.#clock.now),
    });
    const actor: Actor = {
      clock: this.#clock,
      invocationId: id,
      random: () => this.#noise.next(),
      host: this,
      clockOffsetMs: container.clockOffsetMs,
    };
    actorStorage
      .run(actor, () => container.handler({ Records: records }, context))
      .then(
        (response) => this.#returned(invocation, response),
        (error: unknown) => this.#threw(invocation, error),
      );
    this.#bump();
  }

  #returned(invocation: Invocation, response: SQSBatchResponse): void {
    if (invocation.state !== 'running') return;
    invocation.state = 'returned';
    invocation.container.busy = undefined;
    const failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    for (const identifier of failed) {
      if (!invocation.deliveries.some((delivery) => delivery.message.id === identifier)) {
        this.#problem(
          'response',
          `${this.#who(invocation.id)} reported ${identifier} failed, which is not in its batch`,
        );
      }
    }
    const parts: string[] = [];
    for (const delivery of invocation.deliveries) {
      const id = delivery.message.id;
      if (invocation.unknownOutcome) this.#unknown.add(id);
      if (failed.has(id)) {
        parts.push(`${id} failed`);
        continue;
      }
      if (this.#faults.chance(this.#plan.faults.lostAck)) {
        this.#count('lost acknowledgement');
        this.#unknown.add(id);
        parts.push(`${id} done but its delete was lost`);
        continue;
      }
      const result = this.#queue.delete(delivery);
      if (result !== 'deleted') this.#unknown.add(id);
      parts.push(`${id} done (${result})`);
    }
    this.#log(`${this.#who(invocation.id)} returns: ${parts.join(', ')}`);
    this.#bump();
  }

  #threw(invocation: Invocation, error: unknown): void {
    if (invocation.state !== 'running') return;
    invocation.state = 'threw';
    invocation.container.busy = undefined;
    for (const delivery of invocation.deliveries) this.#unknown.add(delivery.message.id);
    this.#log(
      `${this.#who(invocation.id)} THREW (the whole batch returns after the visibility timeout): ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
    this.#bump();
  }
}
