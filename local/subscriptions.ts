/**
 * Subscriptions in the local mode (README "Subscriptions"): the stack's EventSubscription
 * functions, read out of the synthesized template, run in this process on DynamoDB Local's own
 * stream (DescribeStream, GetShardIterator, GetRecords), with the same handler and runtime as
 * on Lambda. A stream poller per shard stands in for Lambda's event source mapping (batch size,
 * the INSERT filter, `batchItemFailures`: the shard goes back to the lowest failed record), and
 * a loop stands in for the replay schedule.
 */
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SubscriptionEnvironment } from '../core/subscription.ts';
import type { SubscriptionHandler, SubscriptionLambda } from '../handlers/subscription.ts';
import { createEventTable } from './provision.ts';
import { StreamPoller } from './stream-poller.ts';
import { subscriptionsFromTemplate, type CfnTemplate, type SubscriptionDefinition } from './template.ts';
import { PROJECT_ROOT, localFunctionArn } from './defaults.ts';

/** Where a local subscription keeps its state (for the CLI: `stack.json`). */
export interface LocalSubscriptionState {
  readonly name: string;
  readonly checkpointTable: string;
  /** Other tables of the subscription by environment variable, e.g. CLAIMS_TABLE_NAME, READ_MODEL_TABLE_NAME. */
  readonly tables: Readonly<Record<string, string>>;
}

/**
 * Local table names: `<subscription>-<what the variable names>`, e.g. `stream-summary-checkpoints`
 * for CHECKPOINT_TABLE_NAME, `stream-summary-claims` for CLAIMS_TABLE_NAME and
 * `stream-summary-read-model` for READ_MODEL_TABLE_NAME.
 */
export function localTableName(subscription: string, variable: string): string {
  const what = variable
    .replace(/_TABLE_NAME$|_TABLE$/, '')
    .toLowerCase()
    .replace(/_/g, '-');
  const named = what === 'checkpoint' ? 'checkpoints' : what;
  return `${subscription}-${named}`.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/** Create a subscription's tables (checkpoints, claims, read model ...) from their template definitions (keys, TTL). */
export async function provisionSubscription(
  dynamo: DynamoDBClient,
  definition: SubscriptionDefinition,
): Promise<LocalSubscriptionState> {
  const names: Record<string, string> = {};
  for (const [variable, table] of Object.entries(definition.tables)) {
    const tableName = localTableName(definition.name, variable);
    await createEventTable(dynamo, tableName, table);
    names[variable] = tableName;
  }
  const checkpointTable = names[SubscriptionEnvironment.checkpointTable];
  if (!checkpointTable)
    throw new Error(`subscription ${definition.name}: no ${SubscriptionEnvironment.checkpointTable} in the template`);
  const { [SubscriptionEnvironment.checkpointTable]: _checkpoints, ...tables } = names;
  return { name: definition.name, checkpointTable, tables };
}

function lambdaContext(name: string, timeoutMs: number): Context {
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: localFunctionArn(name),
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface LocalSubscriptionsOptions {
  readonly dynamo: DynamoDBClient;
  readonly dynamoDbEndpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly eventTable: string;
  readonly template: CfnTemplate;
  /** @default 'TRIM_HORIZON', as the construct's mapping */
  readonly startingPosition?: 'LATEST' | 'TRIM_HORIZON';
  /** How often the replay worker runs (the construct: every minute). @default 1000 ms */
  readonly replayEveryMs?: number;
  /** Run these instead of the template's (tests: a subscription added later). @default the template's */
  readonly definitions?: readonly SubscriptionDefinition[];
  readonly onError?: (subscription: string, error: Error) => void;
}

export interface LocalSubscriptions {
  readonly subscriptions: readonly LocalSubscriptionState[];
  stop(): Promise<void>;
}

/** The subscription's handler module, given the environment the construct would give it. */
async function loadSubscriptionHandler(
  definition: SubscriptionDefinition,
  state: LocalSubscriptionState,
  options: LocalSubscriptionsOptions,
): Promise<SubscriptionHandler & { dispose(): void }> {
  const module = (await import(pathToFileURL(join(PROJECT_ROOT, definition.entry)).href)) as {
    handler?: SubscriptionLambda;
  };
  if (typeof module.handler?.withEnvironment !== 'function') {
    throw new Error(`${definition.entry} does not export handler = subscriptionHandler(...)`);
  }
  return module.handler.withEnvironment(
    {
      ...definition.environment,
      ...state.tables,
      [SubscriptionEnvironment.eventTable]: options.eventTable,
      [SubscriptionEnvironment.checkpointTable]: state.checkpointTable,
    },
    options.dynamo,
  );
}

/**
 * Provision and start the template's subscriptions against DynamoDB Local. The stream poller
 * starts at TRIM_HORIZON like the construct's mapping (events stored before it started are
 * delivered; what was delivered is skipped by the checkpoints), and on every start the replay
 * is asked to scan again from its checkpoints (for records the stream no longer keeps).
 */
export async function startSubscriptions(options: LocalSubscriptionsOptions): Promise<LocalSubscriptions> {
  const definitions = options.definitions ?? subscriptionsFromTemplate(options.template);
  const described = await options.dynamo.send(new DescribeTableCommand({ TableName: options.eventTable }));
  const streamArn = described.Table?.LatestStreamArn;
  if (!streamArn) throw new Error(`table ${options.eventTable} has no stream: subscriptions need one`);
  const streams = new DynamoDBStreamsClient({
    endpoint: options.dynamoDbEndpoint,
    region: options.region,
    credentials: options.credentials,
  });
  const stops: (() => Promise<void>)[] = [];
  const states: LocalSubscriptionState[] = [];
  try {
    for (const definition of definitions) {
      const state = await provisionSubscription(options.dynamo, definition);
      states.push(state);
      const handler = await loadSubscriptionHandler(definition, state, options);
      const timeoutMs = definition.timeoutSeconds * 1000;
      const { DynamoDbCheckpointStore } = await import('../adapters/dynamodb-subscription.ts');
      const checkpoints = new DynamoDbCheckpointStore({ client: options.dynamo, tableName: state.checkpointTable });
      // Scan again from the checkpoints (not a reset: nothing delivered is delivered again).
      const replay = await checkpoints.loadReplay();
      // Counted afresh: the scan visits every stream again (`eventstore subscriptions` counts this scan).
      if (replay?.status === 'done')
        await checkpoints.saveReplay({
          ...replay,
          status: 'pending',
          cursor: undefined,
          lastStream: undefined,
          streams: 0,
          events: 0,
          finishedAt: undefined,
        });

      const report = (error: unknown) =>
        options.onError?.(definition.name, error instanceof Error ? error : new Error(String(error)));
      const poller = new StreamPoller({
        streams,
        streamArn,
        region: options.region,
        batchSize: definition.batchSize,
        eventNames: definition.eventNames,
        startingPosition: options.startingPosition ?? 'TRIM_HORIZON',
        handler: (event) => handler(event, lambdaContext(definition.name, timeoutMs)),
        onError: report,
      });
      poller.start();
      let stopped = false;
      const replayLoop = (async () => {
        while (!stopped) {
          try {
            await handler({ replay: true }, lambdaContext(definition.name, Math.min(timeoutMs, 30_000)));
          } catch (error) {
            report(error);
          }
          for (let waited = 0; waited < (options.replayEveryMs ?? 1000) && !stopped; waited += 100) await sleep(100);
        }
      })();
      stops.push(async () => {
        stopped = true;
        await poller.stop();
        await replayLoop;
        handler.dispose();
      });
    }
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    streams.destroy();
    throw error;
  }
  return {
    subscriptions: states,
    async stop() {
      for (const stop of stops.reverse().splice(0)) await stop().catch(() => undefined);
      streams.destroy();
    },
  };
}
