import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/defaults.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { startDynamoDbLocal, type DynamoDbLocal } from '../local/engines/dynamodb-local.ts';
import { createEventTable } from '../local/provision.ts';
import { measureCeiling } from './ceiling.ts';
import type { Workload } from './workload.ts';

export const BENCH_CREDENTIALS = LOCAL_CREDENTIALS;
export const BENCH_REGION = LOCAL_REGION;

export interface Engine {
  /** A new client on this engine (destroyed with the engine). */
  client(): DynamoDBClient;
  readonly admin: DynamoDBClient;
}

/** Engines running now, so that an interrupted bench (Ctrl-C, kill) stops them on its way out. */
const running = new Set<DynamoDbLocal>();
let signalsHooked = false;

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  const interrupted = () => {
    // The engines' own stop (local/engines/dynamodb-local.ts), then out.
    void Promise.allSettled([...running].map((engine) => engine.stop())).then(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
}

/**
 * Run `measure` on a DynamoDB Local of its own, started and stopped with local/engines, and
 * warmed up first with `warmUpPuts` conditional puts: DynamoDB Local slows down as its
 * in-memory database and stream records grow, so no path pays for another's history, and
 * its JIT is warm before anything is timed.
 */
export async function onFreshEngine<T>(
  run: string,
  workload: Workload,
  warmUpPuts: number,
  measure: (engine: Engine) => Promise<T>,
): Promise<T> {
  hookSignals();
  const dynamo = await startDynamoDbLocal();
  running.add(dynamo);
  const made: DynamoDBClient[] = [];
  const client = () => {
    const created = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: BENCH_REGION,
      credentials: BENCH_CREDENTIALS,
      maxAttempts: 5,
    });
    made.push(created);
    return created;
  };
  try {
    const admin = client();
    const warmUp = `${run}-warmup`;
    await createEventTable(admin, warmUp);
    await measureCeiling(client(), warmUp, workload, 16, warmUpPuts);
    return await measure({ client, admin });
  } finally {
    for (const created of made) created.destroy();
    await dynamo.stop();
    running.delete(dynamo);
  }
}
