import {
  InternalServerError,
  ProvisionedThroughputExceededException,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { HttpResponse, type HttpRequest } from '@smithy/core/protocols';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { HttpHandlerOptions } from '@smithy/types';
import { Readable } from 'node:stream';

/**
 * Fault injection a real engine cannot produce on demand: an SDK middleware on a DynamoDB
 * client that fails chosen requests. It sits in the `deserialize` step, inside the SDK's
 * retry loop, so every attempt (retries included) passes through it, as on the wire.
 */
export interface FaultPlan {
  /** Decide for one attempt of `operation` (PutItem, Query ...), n-th attempt overall (from 1). */
  decide(operation: string, attempt: number): Fault | undefined;
}

export type Fault =
  /** Throttled before DynamoDB saw the request: nothing written. */
  | 'throttle-before'
  /** A 500 before DynamoDB saw the request: nothing written. */
  | 'error-before'
  /** A 500 after DynamoDB applied the request: the write happened, its response was lost. */
  | 'error-after'
  /** The process dies here: the request is not sent, and the caller gets a crash error. */
  | 'crash-before';

export interface FaultLog {
  readonly injected: Record<Fault, number>;
  readonly attempts: Record<string, number>;
}

/** Thrown for `crash-before`: stands for the container dying mid-batch. */
export class SimulatedCrashError extends Error {
  public constructor(operation: string) {
    super(`simulated crash before ${operation}`);
    this.name = 'SimulatedCrashError';
  }
}

function throttled(): Error {
  return new ProvisionedThroughputExceededException({
    message: 'injected: the level of configured provisioned throughput for the table was exceeded',
    $metadata: { httpStatusCode: 400 },
  });
}

function serverError(): Error {
  return new InternalServerError({ message: 'injected: internal server error', $metadata: { httpStatusCode: 500 } });
}

export function injectFaults(client: DynamoDBClient, plan: FaultPlan): FaultLog {
  const log: FaultLog = {
    injected: { 'throttle-before': 0, 'error-before': 0, 'error-after': 0, 'crash-before': 0 },
    attempts: {},
  };
  let attempt = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? '').replace(/Command$/, '');
      attempt += 1;
      log.attempts[operation] = (log.attempts[operation] ?? 0) + 1;
      const fault = plan.decide(operation, attempt);
      if (fault) log.injected[fault] += 1;
      if (fault === 'throttle-before') throw throttled();
      if (fault === 'error-before') throw serverError();
      if (fault === 'crash-before') throw new SimulatedCrashError(operation);
      const result = await next(args);
      if (fault === 'error-after') throw serverError();
      return result;
    },
    { step: 'deserialize', name: 'faultInjection', priority: 'high' },
  );
  return log;
}

/** A plan that fails a share of the attempts of some operations, from a seeded random source. */
export function randomFaults(
  random: () => number,
  rates: Partial<Record<Fault, number>>,
  operations: ReadonlySet<string> = new Set(['PutItem', 'Query', 'GetItem']),
): FaultPlan {
  return {
    decide(operation) {
      if (!operations.has(operation)) return undefined;
      let roll = random();
      for (const [fault, rate] of Object.entries(rates) as [Fault, number][]) {
        if (roll < rate) return fault;
        roll -= rate;
      }
      return undefined;
    },
  };
}

/**
 * What a {@link FaultyHttpHandler} does with one HTTP attempt (the SDK's retries included).
 * A fake only where DynamoDB Local cannot produce the fault on demand.
 */
export type HttpFault =
  /** DynamoDB applies the request, and its response is lost (a `TimeoutError`, which the SDK retries). */
  | 'lost-after'
  /** The call never answers and nothing reaches DynamoDB; only the caller's abort signal ends it. */
  | 'hang-before'
  /** DynamoDB applies the request, then the call never answers; only the caller's abort signal ends it. */
  | 'hang-after'
  /** Throttled before DynamoDB saw it (`ProvisionedThroughputExceededException`, which the SDK retries). */
  | 'throttle-before'
  /**
   * A single write refused because a transaction is in progress on its item
   * (`TransactionConflictException`, which the SDK does not retry), before DynamoDB saw it: a fake,
   * DynamoDB Local serialises transactions.
   */
  | 'transaction-conflict'
  /**
   * DynamoDB answers, and a transaction's cancellation reasons keep only the first
   * `ConditionalCheckFailed` with its item, the others turned to `None`: a fake of an answer the
   * API reference does not rule out (it promises an ordered list, not a reason per failed
   * condition), which DynamoDB Local never gives.
   */
  | 'first-reason-only'
  /**
   * A transaction cancelled for the reason given to each item (`TransactionConflict`,
   * `ThrottlingError` ...; `None` for the others), before DynamoDB saw it: DynamoDB Local
   * serialises transactions and throttles nothing, so these answers are fakes.
   */
  | { readonly cancel: string };

/** One HTTP attempt as the handler saw it. */
export interface HttpAttempt {
  readonly operation: string;
  /** The request's JSON body. */
  readonly input: Record<string, unknown>;
  readonly fault: HttpFault | undefined;
  /** The HTTP status DynamoDB answered with (undefined: it was not asked, or the answer was lost). */
  readonly status: number | undefined;
  /** DynamoDB's error type (`TransactionCanceledException` ...), when it answered with one. */
  readonly errorType: string | undefined;
}

function requestText(body: unknown): string {
  if (typeof body === 'string') return body;
  // The SDK's JSON body is a Uint8Array with string methods that warn: read its bytes.
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  return '';
}

async function responseBytes(body: unknown): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function jsonAnswer(statusCode: number, body: unknown): { response: HttpResponse } {
  return {
    response: new HttpResponse({
      statusCode,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'injected' },
      body: Readable.from([Buffer.from(JSON.stringify(body))]),
    }),
  };
}

/**
 * A DynamoDB client's HTTP handler that sends every request to the real engine (DynamoDB Local)
 * unless `plan` injects a fault into that attempt, and logs every attempt. At the HTTP level,
 * below the SDK's retries (each retry is an attempt here, with the same body: a transaction's
 * `ClientRequestToken` included) and with the caller's abort signal, as on the wire.
 *
 * @example
 * ```ts
 * const http = new FaultyHttpHandler((attempt) => (attempt.operation === 'TransactWriteItems' ? 'lost-after' : undefined));
 * const client = new DynamoDBClient({ endpoint, requestHandler: http });
 * ```
 */
export class FaultyHttpHandler {
  public readonly metadata = { handlerProtocol: 'http/1.1' };
  public readonly attempts: HttpAttempt[] = [];
  /** Called before an attempt that is passed through is sent (a gate for interleavings). */
  public beforeSend: (attempt: { operation: string; input: Record<string, unknown> }) => Promise<void> = () =>
    Promise.resolve();
  readonly #real = new NodeHttpHandler();
  readonly #plan: (attempt: {
    operation: string;
    input: Record<string, unknown>;
    index: number;
  }) => HttpFault | undefined;

  public constructor(
    plan: (attempt: { operation: string; input: Record<string, unknown>; index: number }) => HttpFault | undefined,
  ) {
    this.#plan = plan;
  }

  public updateHttpClientConfig(): void {}

  public httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  public destroy(): void {
    this.#real.destroy();
  }

  /** The attempts of one operation, in order. */
  public of(operation: string): HttpAttempt[] {
    return this.attempts.filter((attempt) => attempt.operation === operation);
  }

  public async handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    const target = String(request.headers['x-amz-target'] ?? '');
    const operation = target.split('.').pop() ?? '';
    const input = JSON.parse(requestText(request.body) || '{}') as Record<string, unknown>;
    const index = this.attempts.filter((attempt) => attempt.operation === operation).length;
    const fault = this.#plan({ operation, input, index });
    const logged = {
      operation,
      input,
      fault,
      status: undefined as number | undefined,
      errorType: undefined as string | undefined,
    };
    this.attempts.push(logged);
    if (fault === 'throttle-before') {
      logged.errorType = 'ProvisionedThroughputExceededException';
      return jsonAnswer(400, {
        __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
        message: 'injected: The level of configured provisioned throughput for the table was exceeded.',
      });
    }
    if (fault === 'transaction-conflict') {
      logged.errorType = 'TransactionConflictException';
      return jsonAnswer(400, {
        __type: 'com.amazonaws.dynamodb.v20120810#TransactionConflictException',
        message: 'injected: Transaction is ongoing for the item',
      });
    }
    if (typeof fault === 'object') {
      const items = (input['TransactItems'] as unknown[] | undefined) ?? [];
      const reasons = items.map((_, item) =>
        item === 0 ? { Code: fault.cancel, Message: `injected: ${fault.cancel}` } : { Code: 'None' },
      );
      logged.errorType = 'TransactionCanceledException';
      return jsonAnswer(400, {
        __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
        Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((reason) => reason.Code).join(', ')}]`,
        CancellationReasons: reasons,
      });
    }
    if (fault === 'hang-before') return this.#hang(options);
    await this.beforeSend({ operation, input });
    const { response } = await this.#real.handle(request, options);
    const body = await responseBytes(response.body);
    logged.status = response.statusCode;
    if (response.statusCode >= 300) {
      logged.errorType = String((JSON.parse(body.toString('utf8')) as { __type?: string }).__type ?? '')
        .split('#')
        .pop();
    }
    if (fault === 'lost-after') {
      logged.status = undefined;
      throw Object.assign(new Error(`injected: the response to ${operation} was lost after DynamoDB applied it`), {
        name: 'TimeoutError',
        code: 'ETIMEDOUT',
      });
    }
    if (fault === 'hang-after') {
      logged.status = undefined;
      return this.#hang(options);
    }
    if (fault === 'first-reason-only' && logged.errorType === 'TransactionCanceledException') {
      const answer = JSON.parse(body.toString('utf8')) as { CancellationReasons?: { Code?: string }[] };
      let kept = false;
      answer.CancellationReasons = (answer.CancellationReasons ?? []).map((reason) => {
        if (reason.Code !== 'ConditionalCheckFailed' || kept) return { Code: 'None' };
        kept = true;
        return reason;
      });
      const rewritten = Buffer.from(JSON.stringify(answer));
      const headers = { ...response.headers, 'content-length': String(rewritten.length) };
      return { response: new HttpResponse({ ...response, headers, body: Readable.from([rewritten]) }) };
    }
    return { response: new HttpResponse({ ...response, body: Readable.from([body]) }) };
  }

  #hang(options: HttpHandlerOptions): Promise<never> {
    return new Promise<never>((_resolve, reject) => {
      const signal = options.abortSignal as AbortSignal | undefined;
      const abort = (): void => reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
      if (signal?.aborted) abort();
      signal?.addEventListener('abort', abort, { once: true });
    });
  }
}
