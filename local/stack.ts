import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { join } from 'node:path';
import type { QueueMode } from '../core/store.ts';
import { redriveDefinitionFrom, runLocalRedrive } from '../workflows/local-runner.ts';
import { startConsumers, type Consumers } from './consumers.ts';
import { startDynamoDbLocal, type DynamoDbLocal } from './engines/dynamodb-local.ts';
import { startSqsLocal, type SqsLocal } from './engines/sqs-local.ts';
import type { BatchReport } from './poller.ts';
import { createEventTable, createQueues, type LocalQueues } from './provision.ts';
import { startSfnServer, type SfnServer } from './sfn-server.ts';
import { removeState, writeState, type LocalStackState } from './state.ts';
import { startSubscriptions } from './subscriptions.ts';
import { loadDefinitions, type StackDefinitions } from './template.ts';
import { LOCAL_ACCOUNT, LOCAL_CREDENTIALS, LOCAL_REGION, LocalPorts } from './defaults.ts';

/** The local region and account (local/defaults.ts). */
export { LOCAL_ACCOUNT, LOCAL_REGION };
/** Names of the local resources (the deployed stack lets CloudFormation name them). */
export const LocalNames = {
  table: 'events',
  queue: 'events',
  stateMachine: 'Redrive',
} as const;

export interface LocalStackOptions {
  readonly queueMode: QueueMode;
  /**
   * CDK context for the template the local stack is built from (`npm start -c key=value`,
   * validated by infra/config.ts as `cdk deploy` validates it): batch size, batching window,
   * concurrency, maxReceiveCount, dedupWindow, timeouts. @default {} (the stack's defaults)
   */
  readonly context?: Readonly<Record<string, string>>;
  /** Keep nothing on disk (tests). @default false: data under `<dataDir>/dynamodb` and `<dataDir>/sqs` */
  readonly inMemory?: boolean;
  /** The data folder; the state file `stack.json` is written there too. */
  readonly dataDir: string;
  /** Pollers running at once. @default the template's maximum concurrency, at most 4 */
  readonly concurrency?: number;
  /** 0 = any free port. @default LocalPorts.dynamoDb (8000) */
  readonly dynamoDbPort?: number;
  /** 0 = any free port. @default LocalPorts.sqs (9324) */
  readonly sqsPort?: number;
  /** 0 = any free port. @default LocalPorts.stepFunctions (8083) */
  readonly sfnPort?: number;
  /** Override the source queue's visibility timeout (seconds), e.g. short for redelivery tests. */
  readonly visibilityTimeout?: number;
  readonly onBatch?: (report: BatchReport) => void;
  readonly onError?: (error: Error) => void;
  /** Run the template's subscriptions (the example projection) on the table's stream. @default true */
  readonly subscriptions?: boolean;
}

export interface LocalStack {
  readonly state: LocalStackState;
  readonly definitions: StackDefinitions;
  /** Stop consumers (in-flight batches finish), the Step Functions API, then the engines. */
  stop(): Promise<void>;
}

function portOption(value: number | undefined, fallback: number): number | undefined {
  const port = value ?? fallback;
  return port === 0 ? undefined : port;
}

/**
 * Bring the whole event store up on this machine: DynamoDB Local and fauxqs on loopback, the
 * table and queues created from the CDK app's synthesized template, pollers feeding the real
 * ingest handler, and the redrive state machine behind a loopback Step Functions API. Writes
 * `<dataDir>/stack.json` for the command-line tool.
 *
 * @example
 * ```ts
 * const stack = await startLocalStack({ queueMode: 'fifo', inMemory: true, dataDir: '/tmp/x', dynamoDbPort: 0, sqsPort: 0, sfnPort: 0 });
 * await stack.stop();
 * ```
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const inMemory = options.inMemory ?? false;
  // Synthesizing can take seconds: do it while the engines start (a port taken fails fast).
  const pendingDefinitions = loadDefinitions(options.queueMode, options.context ?? {});
  pendingDefinitions.catch(() => undefined);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse().splice(0)) await stop().catch(() => undefined);
  };
  try {
    const dynamoPort = portOption(options.dynamoDbPort, LocalPorts.dynamoDb);
    const sqsPort = portOption(options.sqsPort, LocalPorts.sqs);
    const [dynamo, sqsServer] = await Promise.allSettled([
      startDynamoDbLocal({
        ...(dynamoPort !== undefined ? { port: dynamoPort } : {}),
        ...(inMemory ? {} : { dataDir: join(options.dataDir, 'dynamodb') }),
      }),
      startSqsLocal({
        ...(sqsPort !== undefined ? { port: sqsPort } : {}),
        ...(inMemory ? {} : { dataDir: join(options.dataDir, 'sqs') }),
      }),
    ]).then((results) => {
      const started = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      for (const engine of started) stops.push(() => engine.stop());
      const failed = results.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
      return started as [DynamoDbLocal, SqsLocal];
    });
    // Should this process end without stop() (an uncaught error, process.exit), take Java with it.
    const killJava = () => {
      if (dynamo.pid !== undefined) {
        try {
          process.kill(dynamo.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    };
    process.once('exit', killJava);
    stops.push(async () => {
      process.off('exit', killJava);
    });
    const definitions = await pendingDefinitions;

    const credentials = LOCAL_CREDENTIALS;
    const dynamoClient = new DynamoDBClient({ endpoint: dynamo.endpoint, region: LOCAL_REGION, credentials });
    const sqsClient = new SQSClient({ endpoint: sqsServer.endpoint, region: LOCAL_REGION, credentials });
    let queues: LocalQueues;
    try {
      await createEventTable(dynamoClient, LocalNames.table, definitions.table);
      queues = await createQueues(sqsClient, sqsServer.endpoint, definitions, {
        name: LocalNames.queue,
        ...(options.visibilityTimeout !== undefined ? { visibilityTimeout: options.visibilityTimeout } : {}),
      });
    } finally {
      dynamoClient.destroy();
      sqsClient.destroy();
    }

    const stateMachineArn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${LocalNames.stateMachine}`;
    const sfnPort = portOption(options.sfnPort, LocalPorts.stepFunctions);
    const sfn: SfnServer = await startSfnServer(
      [
        {
          arn: stateMachineArn,
          name: LocalNames.stateMachine,
          definition: JSON.stringify(
            redriveDefinitionFrom(definitions.template, { source: queues.queueUrl, deadLetter: queues.deadLetterQueueUrl }),
          ),
          run: async (input, execution) => {
            const result = await runLocalRedrive({
              template: definitions.template,
              sqsEndpoint: sqsServer.endpoint,
              queueUrls: { source: queues.queueUrl, deadLetter: queues.deadLetterQueueUrl },
              input,
              stateMachineArn,
              name: execution.name,
              onExecution: (started) => execution.track(started),
            });
            if (result.status === 'FAILED') {
              const error = new Error(result.cause);
              error.name = result.error;
              throw error;
            }
            return result.output;
          },
        },
      ],
      sfnPort !== undefined ? { port: sfnPort } : {},
    );
    stops.push(() => sfn.stop());

    const concurrency = options.concurrency ?? Math.min(4, definitions.consumer.maximumConcurrency ?? 4);
    let state: LocalStackState = {
      pid: process.pid,
      queueMode: options.queueMode,
      region: LOCAL_REGION,
      inMemory,
      dataDir: options.dataDir,
      dynamoDbEndpoint: dynamo.endpoint,
      sqsEndpoint: sqsServer.endpoint,
      sfnEndpoint: sfn.endpoint,
      tableName: LocalNames.table,
      ...queues,
      stateMachineArn,
      concurrency,
      startedAt: new Date().toISOString(),
      ...(options.context && Object.keys(options.context).length > 0 ? { context: options.context } : {}),
    };

    if (options.subscriptions !== false) {
      const subscriptionClient = new DynamoDBClient({ endpoint: dynamo.endpoint, region: LOCAL_REGION, credentials });
      stops.push(async () => subscriptionClient.destroy());
      const running = await startSubscriptions({
        dynamo: subscriptionClient,
        dynamoDbEndpoint: dynamo.endpoint,
        region: LOCAL_REGION,
        credentials,
        eventTable: LocalNames.table,
        template: definitions.template,
        onError: (name, error) => options.onError?.(new Error(`subscription ${name}: ${error.message}`, { cause: error })),
      });
      stops.push(() => running.stop());
      state = { ...state, subscriptions: running.subscriptions };
    }

    let consumers: Consumers | undefined;
    if (concurrency > 0) {
      consumers = await startConsumers({
        state,
        consumer: definitions.consumer,
        concurrency,
        ...(options.onBatch ? { onBatch: options.onBatch } : {}),
        ...(options.onError ? { onError: options.onError } : {}),
      });
      const running = consumers;
      stops.push(() => running.stop());
    }
    writeState(state);
    stops.push(async () => removeState(options.dataDir));
    return { state, definitions, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
