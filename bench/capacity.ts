import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { itemBytes } from '../core/storable.ts';

/** What one DynamoDB client spent, counted by an SDK middleware (the store is not changed). */
export interface CapacityCounts {
  /** Requests sent, by operation name (PutItem, Query, GetItem ...): one per command (SDK retries not counted). */
  readonly requests: Record<string, number>;
  /** Write units DynamoDB Local reported, plus an estimate for failed conditional puts (below). */
  writeUnits: number;
  /** Read units DynamoDB Local reported, each consistent read counted at least 1 (as billed). */
  readUnits: number;
  /** Conditional puts that failed their condition. */
  conditionFailures: number;
  /** Write units of failed conditional puts (DynamoDB bills them; no ConsumedCapacity comes back). */
  failedWriteUnits: number;
  /** Errors other than a failed condition, by name (throttling, 5xx, network). */
  readonly errors: Record<string, number>;
  /** Time spent in requests, by operation (ms, from send to response, SDK retries included). */
  readonly requestMs: Record<string, number>;
}

export function emptyCounts(): CapacityCounts {
  return {
    requests: {},
    writeUnits: 0,
    readUnits: 0,
    conditionFailures: 0,
    failedWriteUnits: 0,
    errors: {},
    requestMs: {},
  };
}

export function totalRequests(counts: CapacityCounts): number {
  return Object.values(counts.requests).reduce((sum, n) => sum + n, 0);
}

const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);
const READS = new Set(['Query', 'GetItem', 'Scan']);

interface ConsumedCapacityLike {
  readonly CapacityUnits?: number;
}

/**
 * Add a middleware to `client` that asks every PutItem / Query / GetItem for
 * `ReturnConsumedCapacity: TOTAL`, sums what DynamoDB Local reports, and counts requests.
 *
 * DynamoDB Local reports capacity by item size like DynamoDB, with two gaps this closes:
 * a Query that finds nothing reports 0 (DynamoDB bills at least 1 unit for a consistent
 * read), and a failed conditional put returns no ConsumedCapacity (DynamoDB bills the
 * write): it is counted at the attempted item's size, ceil(bytes / 1 KB).
 *
 * @example
 * ```ts
 * const counts = meterCapacity(client);
 * await store.appendToStream('s', events);
 * console.log(counts.writeUnits, counts.requests['PutItem']);
 * ```
 */
export function meterCapacity(client: DynamoDBClient, counts: CapacityCounts = emptyCounts()): CapacityCounts {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? '').replace(/Command$/, '');
      const input = args.input as Record<string, unknown>;
      if (WRITES.has(operation) || READS.has(operation)) input['ReturnConsumedCapacity'] = 'TOTAL';
      counts.requests[operation] = (counts.requests[operation] ?? 0) + 1;
      const started = performance.now();
      const timed = () => {
        counts.requestMs[operation] = (counts.requestMs[operation] ?? 0) + performance.now() - started;
      };
      try {
        const result = await next(args);
        timed();
        const consumed = (result.output as { ConsumedCapacity?: ConsumedCapacityLike }).ConsumedCapacity;
        const units = consumed?.CapacityUnits ?? 0;
        if (WRITES.has(operation)) counts.writeUnits += units;
        if (READS.has(operation)) {
          counts.readUnits += input['ConsistentRead'] === true ? Math.max(1, units) : Math.max(0.5, units);
        }
        return result;
      } catch (error) {
        timed();
        const name = error instanceof Error ? error.name : 'Error';
        if (name === 'ConditionalCheckFailedException') {
          counts.conditionFailures += 1;
          const item = input['Item'] as Record<string, AttributeValue> | undefined;
          const units = item ? Math.max(1, Math.ceil(itemBytes(unmarshall(item, { wrapNumbers: Number })) / 1024)) : 1;
          counts.failedWriteUnits += units;
          counts.writeUnits += units;
        } else {
          counts.errors[name] = (counts.errors[name] ?? 0) + 1;
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'benchCapacityMeter' },
  );
  return counts;
}
