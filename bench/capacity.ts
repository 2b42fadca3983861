import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { itemBytes } from '../core/storable.ts';

/** What one DynamoDB client spent, counted by an SDK middleware (the store is not changed). */
export interface CapacityCounts {
  /** Requests sent, by operation name (PutItem, Query, GetItem ...): one per command (SDK retries not counted). */
  readonly requests: Record<string, number>;
  /**
   * Write units: DynamoDB Local's for PutItem, plus an estimate for failed conditional puts
   * (below); a TransactWriteItems counted from its items as DynamoDB bills it (below).
   */
  writeUnits: number;
  /** Read units DynamoDB Local reported, each consistent read counted at least 1 (as billed). */
  readUnits: number;
  /** Conditional puts that failed their condition, and transactions cancelled (`TransactionCanceledException`). */
  conditionFailures: number;
  /** Write units of failed conditional puts and cancelled transactions (no ConsumedCapacity comes back). */
  failedWriteUnits: number;
  /** Transactions cancelled (a subset of `conditionFailures`). */
  cancelledTransactions: number;
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
    cancelledTransactions: 0,
    errors: {},
    requestMs: {},
  };
}

export function totalRequests(counts: CapacityCounts): number {
  return Object.values(counts.requests).reduce((sum, n) => sum + n, 0);
}

const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);
const READS = new Set(['Query', 'GetItem', 'Scan']);
const TRANSACTION = 'TransactWriteItems';

/** DynamoDB bills a transactional write twice: a prepare and a commit, each 1 unit per started KB of the item. */
export const TRANSACTIONAL_WRITE_FACTOR = 2;

interface ConsumedCapacityLike {
  readonly CapacityUnits?: number;
}

/** 1 write unit per started KB of a marshalled item (at least 1), as DynamoDB bills a standard write. */
function itemWriteUnits(item: Record<string, AttributeValue>): number {
  return Math.max(1, Math.ceil(itemBytes(unmarshall(item, { wrapNumbers: Number })) / 1024));
}

/**
 * What DynamoDB bills a TransactWriteItems of Puts: 2 write units per started KB of each item
 * (AWS, "transactional write requests"), computed from the items. DynamoDB Local's own figure
 * is not per item (test/unit/bench-capacity.test.ts: 20 items of 0.2 KB report 2 units, not 40),
 * so it is not used.
 */
export function transactionWriteUnits(input: Record<string, unknown>): number {
  const actions = (input['TransactItems'] ?? []) as { Put?: { Item?: Record<string, AttributeValue> } }[];
  return actions.reduce(
    (sum, action) => sum + (action.Put?.Item ? TRANSACTIONAL_WRITE_FACTOR * itemWriteUnits(action.Put.Item) : 0),
    0,
  );
}

/**
 * Add a middleware to `client` that asks every PutItem / Query / GetItem for
 * `ReturnConsumedCapacity: TOTAL`, sums what DynamoDB Local reports, and counts requests.
 *
 * DynamoDB Local reports capacity by item size like DynamoDB, with two gaps this closes:
 * a Query that finds nothing reports 0 (DynamoDB bills at least 1 unit for a consistent
 * read), and a failed conditional put returns no ConsumedCapacity (DynamoDB bills the
 * write): it is counted at the attempted item's size, ceil(bytes / 1 KB). A group's
 * TransactWriteItems is counted from its items, 2 units per started KB of each (DynamoDB
 * Local's figure for a transaction is not per item); a cancelled one the same (assumed).
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
      if (WRITES.has(operation) || READS.has(operation) || operation === TRANSACTION)
        input['ReturnConsumedCapacity'] = 'TOTAL';
      counts.requests[operation] = (counts.requests[operation] ?? 0) + 1;
      const started = performance.now();
      const timed = () => {
        counts.requestMs[operation] = (counts.requestMs[operation] ?? 0) + performance.now() - started;
      };
      try {
        const result = await next(args);
        timed();
        if (operation === TRANSACTION) {
          counts.writeUnits += transactionWriteUnits(input);
          return result;
        }
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
          const units = item ? itemWriteUnits(item) : 1;
          counts.failedWriteUnits += units;
          counts.writeUnits += units;
        } else if (name === 'TransactionCanceledException') {
          // Counted as if it had landed: an assumption (an upper bound), as a failed
          // conditional put is billed at the attempted item's size.
          counts.conditionFailures += 1;
          counts.cancelledTransactions += 1;
          const units = transactionWriteUnits(input);
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
