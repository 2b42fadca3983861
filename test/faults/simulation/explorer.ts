import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { BatchWriteItemCommand, DynamoDBClient, ListTablesCommand, type WriteRequest } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDbEventStore } from '../../../adapters/dynamodb-store.ts';
import { eventItem, parseEventBody } from '../../../core/event.ts';
import { createIngestHandler, SDK_TIMEOUTS } from '../../../handlers/ingest.ts';
import { LOCAL_ACCOUNT, LOCAL_CREDENTIALS as credentials, LOCAL_REGION } from '../../../local/defaults.ts';
import { checkSchedule, type Finding } from './invariants.ts';
import { SimHttpHandler, type ClientTimeouts } from './sim-http.ts';
import { World, type WorldRecord } from './world.ts';
import { planSchedule, SIM_RESEND_WINDOW_SECONDS, type HistoryEvent, type SchedulePlan } from './workload.ts';

/**
 * The SDK clients of the handler under test are configured as the deployed function's
 * (handlers/ingest.ts `SDK_TIMEOUTS`): the hung-call fault honours their request timeout, and
 * whether that timeout throws.
 */
export const PRODUCTION_TIMEOUTS: ClientTimeouts = SDK_TIMEOUTS;

export interface ScheduleOutcome {
  readonly plan: SchedulePlan;
  readonly record: WorldRecord;
  readonly violations: readonly Finding[];
  readonly notes: readonly Finding[];
}

export interface Explorer {
  /** Run one schedule on `tableName` (streams are named by seed and index, so a table holds each schedule once). */
  runSchedule(seed: number, index: number): Promise<ScheduleOutcome>;
  /** Requests that reached DynamoDB Local from the handlers under test so far. */
  dynamoCalls(): number;
  destroy(): void;
}

/**
 * Every schedule gets its own SDK clients (the retry quota is per client) on one shared
 * connection pool to DynamoDB Local, warmed up outside the schedule: the SDK resolves its
 * configuration on the first call, with file reads the scheduler must not see. Calls are
 * attributed to their schedule and invocation by `actorStorage`.
 */
export async function createExplorer(options: { endpoint: string; tableName: string }): Promise<Explorer> {
  const pool = new NodeHttpHandler({ connectionTimeout: 5_000 });
  const counter = { realCalls: 0 };
  const reader = new DynamoDBClient({ endpoint: options.endpoint, region: LOCAL_REGION, credentials });
  const store = new DynamoDbEventStore({ client: reader, tableName: options.tableName });

  /** The events stored before the schedule, written as the store writes them (core/event.ts `eventItem`). */
  async function writeHistory(history: readonly HistoryEvent[]): Promise<void> {
    const requests: WriteRequest[] = history.map((old) => {
      const parsed = parseEventBody(old.body);
      if (!parsed.ok) throw new Error(`history event ${old.body} is not valid: ${parsed.detail}`);
      if (parsed.kind !== 'event') throw new Error('expected one event, got a group');
      const item = eventItem(parsed.event, old.version, new Date(old.recordedAt).toISOString(), old.sequence);
      return { PutRequest: { Item: marshall(item, { removeUndefinedValues: true }) } };
    });
    for (let start = 0; start < requests.length; start += 25) {
      let pending = requests.slice(start, start + 25);
      while (pending.length > 0) {
        const result = await reader.send(new BatchWriteItemCommand({ RequestItems: { [options.tableName]: pending } }));
        pending = result.UnprocessedItems?.[options.tableName] ?? [];
      }
    }
  }

  async function clients(): Promise<{ dynamo: DynamoDBClient; sqs: SQSClient }> {
    const dynamo = new DynamoDBClient({
      endpoint: options.endpoint,
      region: LOCAL_REGION,
      credentials,
      maxAttempts: 3,
      requestHandler: new SimHttpHandler('dynamodb', { timeouts: PRODUCTION_TIMEOUTS, real: pool, counter }),
    });
    const sqs = new SQSClient({
      endpoint: 'http://127.0.0.1:9',
      region: LOCAL_REGION,
      credentials,
      maxAttempts: 3,
      requestHandler: new SimHttpHandler('sqs', { timeouts: PRODUCTION_TIMEOUTS }),
    });
    await dynamo.send(new ListTablesCommand({}));
    await sqs.send(
      new SendMessageCommand({ QueueUrl: `http://127.0.0.1:9/${LOCAL_ACCOUNT}/warm-up`, MessageBody: 'warm-up' }),
    );
    return { dynamo, sqs };
  }

  return {
    async runSchedule(seed, index) {
      const plan = planSchedule(seed, index);
      await writeHistory(plan.history);
      const { dynamo, sqs } = await clients();
      const logger = new Logger({ serviceName: 'event-store-simulation', logLevel: 'SILENT' });
      const metrics = new Metrics({ namespace: 'EventStoreSimulation', serviceName: 'event-store-simulation' });
      const tracer = new Tracer({ serviceName: 'event-store-simulation', enabled: false });
      const world = new World({
        plan,
        newHandler: (dlqUrl) => {
          return createIngestHandler({
            dynamo,
            sqs,
            tableName: options.tableName,
            dlqUrl,
            logger,
            metrics,
            tracer,
            // The queue model's redrive setting and the DLQ model's size limit, as the stack passes the real ones.
            maxReceiveCount: plan.maxReceiveCount,
            dedupWindow: plan.dedupWindow,
            // The stack's default resend window: the invariants check the promise it makes.
            resendWindowSeconds: SIM_RESEND_WINDOW_SECONDS,
            ...(plan.handlerKnowsDlqLimit ? { dlqMaxMessageBytes: plan.dlqMaxBytes } : {}),
          });
        },
      });
      try {
        const record = await world.run();
        // Backward without a start version is a single Query per stream.
        const verdict = await checkSchedule(record, async (streamId) =>
          (await store.readStream(streamId, { direction: 'backward' })).events.reverse(),
        );
        return { plan, record, violations: verdict.violations, notes: verdict.notes };
      } finally {
        dynamo.destroy();
        sqs.destroy();
      }
    },
    dynamoCalls: () => counter.realCalls,
    destroy() {
      pool.destroy();
      reader.destroy();
    },
  };
}

/** Run `indexes` with at most `concurrency` schedules at once (they touch disjoint streams). */
export async function runMany(
  explorer: Explorer,
  seed: number,
  indexes: readonly number[],
  concurrency: number,
  onOutcome: (outcome: ScheduleOutcome) => void,
  /** Start no schedule after this time (`Date.now()`); the caller reports how many ran. */
  deadline = Infinity,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < indexes.length && Date.now() < deadline) {
      const index = indexes[next] as number;
      next += 1;
      onOutcome(await explorer.runSchedule(seed, index));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, indexes.length) }, worker));
}

/** The one-line replay command of a schedule. */
export function replayCommand(seed: number, index: number): string {
  return `SIM_SEED=${seed} SIM_SCHEDULE=${index} npm run test:explore`;
}
