import {
  InternalServerError,
  ProvisionedThroughputExceededException,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';

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
