import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { HttpResponse, type HttpRequest } from '@smithy/core/protocols';
import type { HttpHandlerOptions } from '@smithy/types';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import { MessageAttributeNames } from '../../../core/message-attributes.ts';
import { actorStorage } from './virtual-time.ts';

/**
 * The SDK clients' request handler in the fault exploration (a fake only where a real engine
 * cannot produce the fault, see README "How it works"):
 *
 * - Every HTTP attempt of a schedule's code is a yield point: it waits until the scheduler
 *   releases exactly this call, and the scheduler releases the next one only after this one is
 *   over. Real calls to DynamoDB Local would otherwise interleave differently on every run.
 * - DynamoDB calls then go to DynamoDB Local unchanged, unless the schedule injects a fault:
 *   throttling (`ProvisionedThroughputExceededException`, nothing written), a 500, a response
 *   lost after DynamoDB applied the write (a `TimeoutError`), or a call that never answers
 *   until the caller's abort signal (or a throwing request timeout) ends it. A write is a
 *   `PutItem` or a group's `TransactWriteItems` (docs/ARCHITECTURE.md, "Groups"); a transaction
 *   may also be cancelled as a whole by a `TransactionConflict` or a `ThrottlingError` in one of
 *   its items (`TransactionCanceledException`, nothing written), which DynamoDB Local never
 *   produces on its own.
 * - SQS calls (only the handler's `SendMessage` to the DLQ) are answered by the schedule's DLQ
 *   model: success, a network error or a 500 (transient), or SQS's own `InvalidParameterValue`
 *   for a message over the queue's size limit (permanent).
 */
export type DynamoFault =
  | 'throttle'
  | 'server-error'
  | 'lost-response'
  | 'hang-before-write'
  | 'hang-after-write'
  | 'cancel-conflict'
  | 'cancel-throttled';

/** The word a trace label of a read below a known version carries (`Query s below v3`). */
export const BELOW = 'below';

/** The operations that write: a single event's `PutItem`, a group's `TransactWriteItems`. */
export const WRITE_OPERATIONS: ReadonlySet<string> = new Set(['PutItem', 'TransactWriteItems']);
export type DlqFault = 'network' | 'server-error';

export interface DlqSendInput {
  readonly QueueUrl?: string;
  readonly MessageBody?: string;
  readonly MessageAttributes?: Record<string, { DataType?: string; StringValue?: string }>;
  readonly MessageGroupId?: string;
  readonly MessageDeduplicationId?: string;
}

export type DlqAnswer =
  { readonly ok: true; readonly messageId: string } | { readonly ok: false; readonly tooLong: number };

/** What a schedule provides to the calls made inside it. */
export interface CallHost {
  /** Resolves when the scheduler releases the call; `finish` must be called once it is over. Rejects if aborted while waiting. */
  gate(invocationId: number, label: string, abortSignal: HttpHandlerOptions['abortSignal']): Promise<() => void>;
  /** The fault for this attempt of an SDK send (`sendKey` is the same across the SDK's retries). */
  dynamoFault(invocationId: number, sendKey: string, operation: string, label: string): DynamoFault | undefined;
  dlqFault(invocationId: number, sendKey: string, label: string): DlqFault | undefined;
  dlqSend(invocationId: number, input: DlqSendInput): DlqAnswer;
  note(invocationId: number, line: string): void;
  /** Which of `count` actions a cancelled transaction names (drawn from the schedule's fault stream). */
  cancelAt(invocationId: number): (count: number) => number;
  /**
   * An item DynamoDB applied (whether or not its answer reached the caller): a PutItem's, or
   * each Put of a TransactWriteItems. A transaction's idempotent retry (same ClientRequestToken)
   * answers 200 again without writing: the host ignores a version it already has.
   */
  wrote(invocationId: number, eventId: string, streamId: string, version: number): void;
}

/** How the production clients are configured (handlers/ingest.ts `containerIngestHandler`). */
export interface ClientTimeouts {
  readonly requestTimeout?: number;
  readonly throwOnRequestTimeout?: boolean;
}

function target(request: HttpRequest): string {
  const header = request.headers['x-amz-target'] ?? request.headers['X-Amz-Target'] ?? '';
  return header.split('.').pop() ?? '';
}

function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): { response: HttpResponse } {
  const text = JSON.stringify(body);
  return {
    response: new HttpResponse({
      statusCode,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'sim', ...headers },
      body: Readable.from([Buffer.from(text)]),
    }),
  };
}

function abortError(signal: HttpHandlerOptions['abortSignal']): Error {
  const reason = signal && 'reason' in signal ? (signal as { reason?: unknown }).reason : undefined;
  const error = new Error('Request aborted');
  error.name = 'AbortError';
  if (reason instanceof Error) error.cause = reason;
  return error;
}

function onAbort(signal: HttpHandlerOptions['abortSignal'], listener: () => void): void {
  if (!signal) return;
  const target = signal as {
    addEventListener?: (type: string, fn: () => void, options: { once: boolean }) => void;
    onabort?: unknown;
  };
  if (typeof target.addEventListener === 'function') target.addEventListener('abort', listener, { once: true });
  else target.onabort = listener;
}

async function collect(body: unknown): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

type WireItem = Record<string, { S?: string; N?: string }>;

/** The items a write puts: a PutItem's one, a TransactWriteItems' Puts in order. */
export function writtenItems(operation: string, input: Record<string, unknown>): WireItem[] {
  if (operation === 'PutItem') return [input['Item'] as WireItem];
  if (operation !== 'TransactWriteItems') return [];
  const actions = (input['TransactItems'] ?? []) as { Put?: { Item?: WireItem } }[];
  return actions.flatMap((action) => (action.Put?.Item ? [action.Put.Item] : []));
}

/**
 * A short description of a DynamoDB call for the trace: operation, stream, version, EventId
 * (a transaction: its versions and EventIds). The stream is always the second word.
 */
export function describeDynamoCall(operation: string, input: Record<string, unknown>): string {
  if (operation === 'TransactWriteItems') {
    const items = writtenItems(operation, input);
    const versions = items.map((item) => item['Version']?.N ?? '?');
    const span = versions.length > 1 ? `v${versions[0]}..v${versions.at(-1)}` : `v${versions[0] ?? '?'}`;
    const ids = items.map((item) => item['EventId']?.S ?? '?').join(',');
    return [operation, items[0]?.['ID']?.S ?? '?', span, ids].join(' ');
  }
  const item = input['Item'] as Record<string, Record<string, string>> | undefined;
  const key = input['Key'] as Record<string, Record<string, string>> | undefined;
  const values = input['ExpressionAttributeValues'] as Record<string, Record<string, string>> | undefined;
  const stream = item?.['ID']?.['S'] ?? key?.['ID']?.['S'] ?? values?.[':id']?.['S'] ?? '?';
  const version = item?.['Version']?.['N'] ?? key?.['Version']?.['N'] ?? values?.[':head']?.['N'];
  const eventId = item?.['EventId']?.['S'];
  // A read of older events for the duplicate window (below what the reader knows): it never
  // moves the reader's head (see `World.gate`).
  const below = values?.[':below']?.['N'];
  return [
    operation,
    stream,
    version === undefined ? '' : `v${version}`,
    below === undefined ? '' : `${BELOW} v${below}`,
    eventId ?? '',
  ]
    .filter(Boolean)
    .join(' ');
}

export class SimHttpHandler {
  public readonly metadata = { handlerProtocol: 'http/1.1' };
  readonly #service: 'dynamodb' | 'sqs';
  readonly #real: NodeHttpHandler | undefined;
  readonly #timeouts: ClientTimeouts;
  readonly #counter: { realCalls: number };

  /**
   * `real` is the connection pool to DynamoDB Local, shared by every schedule's clients (each
   * schedule has its own clients: the SDK's retry quota is per client, and a shared one would
   * let one schedule's faults change another's retries). `counter` counts requests that reached it.
   */
  public constructor(
    service: 'dynamodb' | 'sqs',
    options: { timeouts?: ClientTimeouts; real?: NodeHttpHandler; counter?: { realCalls: number } } = {},
  ) {
    this.#service = service;
    this.#real = options.real;
    this.#timeouts = options.timeouts ?? {};
    this.#counter = options.counter ?? { realCalls: 0 };
  }

  public updateHttpClientConfig(): void {}

  public httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  /** The shared connection pool outlives a schedule's clients: its owner destroys it. */
  public destroy(): void {}

  /**
   * The real exchange with DynamoDB Local, body read to the end, outside the schedule's
   * virtual time. An error answer is noted in the trace.
   */
  async #passThrough(
    request: HttpRequest,
    note?: (line: string) => void,
    wrote?: () => void,
  ): Promise<{ response: HttpResponse }> {
    const real = this.#real;
    if (!real) throw new Error('no real endpoint behind the SQS model');
    this.#counter.realCalls += 1;
    const { statusCode, headers, body } = await actorStorage.exit(async () => {
      const { response } = await real.handle(request, {});
      return { statusCode: response.statusCode, headers: response.headers, body: await collect(response.body) };
    });
    if (statusCode === 200) wrote?.();
    if (statusCode >= 300 && note) {
      let type: string;
      try {
        type =
          String((JSON.parse(body.toString('utf8')) as { __type?: string }).__type ?? '')
            .split('#')
            .pop() ?? '';
      } catch {
        type = 'unreadable error';
      }
      note(`  -> ${statusCode} ${type}`);
    }
    // Without its Date header: the schedule's clock is virtual, and the SDK would otherwise
    // "correct" a clock skew (shared by every schedule on the client) and retry what it should not.
    const { date: _date, Date: _Date, ...kept } = headers;
    return { response: new HttpResponse({ statusCode, headers: kept, body: Readable.from([body]) }) };
  }

  public async handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    const actor = actorStorage.getStore();
    const operation = target(request);
    const input = JSON.parse(bodyText(request.body) || '{}') as Record<string, unknown>;
    if (!actor) {
      // Warm-up calls outside a schedule: the SDK resolves a client's configuration (reading
      // files) on its first call, which the scheduler must not see. Answered here, at no cost.
      if (operation === 'ListTables') return jsonResponse(200, { TableNames: [] });
      if (this.#service === 'dynamodb') return this.#passThrough(request);
      return jsonResponse(200, { MessageId: 'warm-up', MD5OfMessageBody: md5(String(input['MessageBody'] ?? '')) });
    }
    const { host, invocationId } = actor;
    const sendKey = request.headers['amz-sdk-invocation-id'] ?? `${invocationId}-${operation}`;
    const label =
      this.#service === 'dynamodb'
        ? describeDynamoCall(operation, input)
        : `DLQ ${operation} ${String((input['MessageAttributes'] as Record<string, { StringValue?: string }> | undefined)?.[MessageAttributeNames.sourceMessageId]?.StringValue ?? '')}`;
    const finish = await host.gate(invocationId, label, options.abortSignal);
    let finished = false;
    const done = (): void => {
      if (!finished) finish();
      finished = true;
    };
    try {
      if (options.abortSignal?.aborted) throw abortError(options.abortSignal);
      return this.#service === 'dynamodb'
        ? await this.#dynamo(request, input, options, host, invocationId, sendKey, operation, label, done)
        : this.#sqs(operation, input, host, invocationId, sendKey, label);
    } finally {
      done();
    }
  }

  async #dynamo(
    request: HttpRequest,
    input: Record<string, unknown>,
    options: HttpHandlerOptions,
    host: CallHost,
    invocationId: number,
    sendKey: string,
    operation: string,
    label: string,
    done: () => void,
  ): Promise<{ response: HttpResponse }> {
    const fault = host.dynamoFault(invocationId, sendKey, operation, label);
    const items = writtenItems(operation, input).filter((item) => item['EventId']?.S !== undefined);
    const wrote =
      items.length === 0
        ? undefined
        : () => {
            for (const item of items)
              host.wrote(invocationId, item['EventId']?.S ?? '', item['ID']?.S ?? '', Number(item['Version']?.N));
          };
    switch (fault) {
      case 'throttle':
        return jsonResponse(400, {
          __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
          message: 'simulated: The level of configured provisioned throughput for the table was exceeded.',
        });
      case 'server-error':
        return jsonResponse(500, {
          __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
          message: 'simulated: Internal server error',
        });
      case 'cancel-conflict':
      case 'cancel-throttled':
        return cancelled(
          writtenItems(operation, input).length,
          fault === 'cancel-conflict',
          host.cancelAt(invocationId),
        );
      case 'lost-response': {
        await this.#passThrough(request, undefined, wrote);
        throw Object.assign(new Error(`simulated: the response to ${label} was lost after DynamoDB applied it`), {
          name: 'TimeoutError',
          code: 'ETIMEDOUT',
        });
      }
      case 'hang-before-write':
      case 'hang-after-write': {
        if (fault === 'hang-after-write') await this.#passThrough(request, undefined, wrote);
        done();
        return this.#hang(options, host, invocationId, label);
      }
      default:
        return this.#passThrough(request, (line) => host.note(invocationId, `${label}${line}`), wrote);
    }
  }

  /**
   * A call that never answers: only the caller's abort signal (the invocation's deadline,
   * docs/ARCHITECTURE.md "Deadlines"), or a throwing request timeout, ends it.
   */
  #hang(options: HttpHandlerOptions, host: CallHost, invocationId: number, label: string): Promise<never> {
    return new Promise<never>((_resolve, reject) => {
      onAbort(options.abortSignal, () => {
        host.note(invocationId, `hung ${label} aborted by the caller`);
        reject(abortError(options.abortSignal));
      });
      const timeout = options.requestTimeout ?? this.#timeouts.requestTimeout;
      if (timeout) {
        // As @smithy/node-http-handler does: without throwOnRequestTimeout the timeout only warns.
        setTimeout(() => {
          if (this.#timeouts.throwOnRequestTimeout) {
            host.note(invocationId, `hung ${label} ended by its ${timeout} ms request timeout`);
            reject(
              Object.assign(new Error(`simulated: ${label} exceeded the ${timeout} ms requestTimeout`), {
                name: 'TimeoutError',
                code: 'ETIMEDOUT',
              }),
            );
          } else {
            host.note(
              invocationId,
              `hung ${label} passed its ${timeout} ms request timeout, which only warns (no throwOnRequestTimeout)`,
            );
          }
        }, timeout);
      }
    });
  }

  #sqs(
    operation: string,
    input: Record<string, unknown>,
    host: CallHost,
    invocationId: number,
    sendKey: string,
    label: string,
  ): { response: HttpResponse } {
    if (operation !== 'SendMessage') {
      return jsonResponse(400, {
        __type: 'com.amazon.coral.service#UnknownOperationException',
        message: `simulated DLQ: ${operation} is not modelled`,
      });
    }
    const fault = host.dlqFault(invocationId, sendKey, label);
    if (fault === 'network') {
      throw Object.assign(new Error('simulated: socket hang up'), { code: 'ECONNRESET' });
    }
    if (fault === 'server-error') {
      return jsonResponse(
        500,
        { __type: 'com.amazon.coral.service#InternalFailure', message: 'simulated: internal failure' },
        {
          'x-amzn-query-error': 'InternalFailure;Receiver',
        },
      );
    }
    const answer = host.dlqSend(invocationId, input as DlqSendInput);
    if (!answer.ok) {
      return jsonResponse(
        400,
        {
          __type: 'com.amazon.coral.service#InvalidParameterValueException',
          message: `One or more parameters are invalid. Reason: Message must be shorter than ${answer.tooLong} bytes.`,
        },
        { 'x-amzn-query-error': 'InvalidParameterValue;Sender' },
      );
    }
    return jsonResponse(200, {
      MessageId: answer.messageId,
      MD5OfMessageBody: md5(String(input['MessageBody'] ?? '')),
    });
  }
}

/**
 * A `TransactionCanceledException` as DynamoDB (and DynamoDB Local) shapes it: one reason per
 * action, `None` for the others, nothing written. `TransactionConflict`: another transaction
 * held the item; `ThrottlingError`: its partition was throttled.
 */
function cancelled(actions: number, conflict: boolean, pick: (count: number) => number): { response: HttpResponse } {
  const at = pick(Math.max(1, actions));
  const reason = conflict
    ? { Code: 'TransactionConflict', Message: 'simulated: Transaction is ongoing for the item' }
    : {
        Code: 'ThrottlingError',
        Message:
          'simulated: Throughput exceeds the current capacity for one or more global secondary indexes or the table',
      };
  const reasons = Array.from({ length: Math.max(1, actions) }, (_, index) =>
    index === at ? reason : { Code: 'None' },
  );
  return jsonResponse(400, {
    __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
    CancellationReasons: reasons,
    Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
  });
}

function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  // The SDK's JSON body is a Uint8Array with string methods that warn: read its bytes.
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  return '';
}

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}
