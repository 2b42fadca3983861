import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { join } from 'node:path';
import type { QueueMode } from '../core/store.ts';
import { startConsumers } from './consumers.ts';
import { startDynamoDbLocal, type DynamoDbLocal } from './engines/dynamodb-local.ts';
import { startSqsLocal, type SqsLocal } from './engines/sqs-local.ts';
import type { BatchReport } from './poller.ts';
import { createEventTable, createQueues, type LocalQueues } from './provision.ts';
import { startSfnServer, type SfnServer } from './sfn-server.ts';
import { removeState, writeState, type LocalStackState } from './state.ts';
import { startSubscriptions } from './subscriptions.ts';
import { loadDefinitions, type StackDefinitions } from './template.ts';
import { redriveDefinitionFrom, runLocalRedrive } from './workflow-runner.ts';
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
  /** Told what the start-up does next (`npm start` prints it: the start takes seconds). */
  readonly onStep?: (step: string) => void;
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

/** Pollers at most, when neither the options nor the template's maximum concurrency say fewer. */
const MAX_DEFAULT_CONCURRENCY = 4;

/** What has been started, stopped in reverse order (each stop's failure ignored). */
class Stops {
  readonly #stops: (() => Promise<void>)[] = [];

  public push(stop: () => Promise<void>): void {
    this.#stops.push(stop);
  }

  public readonly stopAll = async (): Promise<void> => {
    for (const stop of this.#stops.reverse().splice(0)) await stop().catch(() => undefined);
  };
}

/** DynamoDB Local and fauxqs, started together; whichever started is stopped if the other fails. */
async function startEngines(options: LocalStackOptions, stops: Stops): Promise<[DynamoDbLocal, SqsLocal]> {
  const inMemory = options.inMemory ?? false;
  const dynamoPort = portOption(options.dynamoDbPort, LocalPorts.dynamoDb);
  const sqsPort = portOption(options.sqsPort, LocalPorts.sqs);
  const results = await Promise.allSettled([
    startDynamoDbLocal({
      ...(dynamoPort !== undefined ? { port: dynamoPort } : {}),
      ...(inMemory ? {} : { dataDir: join(options.dataDir, 'dynamodb') }),
    }),
    startSqsLocal({
      ...(sqsPort !== undefined ? { port: sqsPort } : {}),
      ...(inMemory ? {} : { dataDir: join(options.dataDir, 'sqs') }),
    }),
  ]);
  const started = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  for (const engine of started) stops.push(() => engine.stop());
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  const [dynamo, sqs] = started as [DynamoDbLocal, SqsLocal];
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
  return [dynamo, sqs];
}

/** The event table and the queues, as the template defines them. */
async function provision(
  dynamo: DynamoDbLocal,
  sqs: SqsLocal,
  definitions: StackDefinitions,
  options: LocalStackOptions,
): Promise<LocalQueues> {
  const dynamoClient = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const sqsClient = new SQSClient({ endpoint: sqs.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  try {
    await createEventTable(dynamoClient, LocalNames.table, definitions.table);
    return await createQueues(sqsClient, sqs.endpoint, definitions, {
      name: LocalNames.queue,
      ...(options.visibilityTimeout !== undefined ? { visibilityTimeout: options.visibilityTimeout } : {}),
    });
  } finally {
    dynamoClient.destroy();
    sqsClient.destroy();
  }
}

/** The template's redrive state machine, run by the local runner behind a loopback Step Functions API. */
async function startRedriveApi(
  definitions: StackDefinitions,
  sqs: SqsLocal,
  queues: LocalQueues,
  options: LocalStackOptions,
): Promise<{ sfn: SfnServer; stateMachineArn: string }> {
  const stateMachineArn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${LocalNames.stateMachine}`;
  const queueUrls = { source: queues.queueUrl, deadLetter: queues.deadLetterQueueUrl };
  const sfnPort = portOption(options.sfnPort, LocalPorts.stepFunctions);
  const sfn = await startSfnServer(
    [
      {
        arn: stateMachineArn,
        name: LocalNames.stateMachine,
        definition: JSON.stringify(redriveDefinitionFrom(definitions.template, queueUrls)),
        run: async (input, execution) => {
          const result = await runLocalRedrive({
            template: definitions.template,
            sqsEndpoint: sqs.endpoint,
            queueUrls,
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
  return { sfn, stateMachineArn };
}

/** The template's subscriptions on the table's stream; their state for `stack.json`. */
async function runSubscriptions(
  dynamo: DynamoDbLocal,
  definitions: StackDefinitions,
  options: LocalStackOptions,
  stops: Stops,
): Promise<LocalStackState['subscriptions']> {
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  stops.push(async () => client.destroy());
  const running = await startSubscriptions({
    dynamo: client,
    dynamoDbEndpoint: dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    eventTable: LocalNames.table,
    template: definitions.template,
    onError: (name, error) => options.onError?.(new Error(`subscription ${name}: ${error.message}`, { cause: error })),
  });
  stops.push(() => running.stop());
  return running.subscriptions;
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
  // Synthesizing can take seconds: do it while the engines start (a port taken fails fast).
  options.onStep?.("starting DynamoDB Local and the SQS server, synthesizing the CDK app's template");
  const pendingDefinitions = loadDefinitions(options.queueMode, options.context ?? {});
  pendingDefinitions.catch(() => undefined);
  const stops = new Stops();
  try {
    const [dynamo, sqs] = await startEngines(options, stops);
    const definitions = await pendingDefinitions;
    options.onStep?.('creating the table and queues from the template');
    const queues = await provision(dynamo, sqs, definitions, options);
    options.onStep?.("starting the redrive workflow's Step Functions API, the subscriptions and the pollers");
    const { sfn, stateMachineArn } = await startRedriveApi(definitions, sqs, queues, options);
    stops.push(() => sfn.stop());

    const concurrency =
      options.concurrency ??
      Math.min(MAX_DEFAULT_CONCURRENCY, definitions.consumer.maximumConcurrency ?? MAX_DEFAULT_CONCURRENCY);
    let state: LocalStackState = {
      pid: process.pid,
      queueMode: options.queueMode,
      region: LOCAL_REGION,
      inMemory: options.inMemory ?? false,
      dataDir: options.dataDir,
      dynamoDbEndpoint: dynamo.endpoint,
      ...(dynamo.pid !== undefined ? { dynamoDbPid: dynamo.pid } : {}),
      sqsEndpoint: sqs.endpoint,
      sfnEndpoint: sfn.endpoint,
      tableName: LocalNames.table,
      ...queues,
      stateMachineArn,
      concurrency,
      startedAt: new Date().toISOString(),
      ...(options.context && Object.keys(options.context).length > 0 ? { context: options.context } : {}),
    };
    if (options.subscriptions !== false) {
      // As for the ingest function (local/consumers.ts): no CloudWatch here, so no metric (EMF)
      // lines unless asked for; the local replay runs every second and would print one each time.
      process.env['POWERTOOLS_METRICS_DISABLED'] ??= 'true';
      state = { ...state, subscriptions: await runSubscriptions(dynamo, definitions, options, stops) };
    }
    if (concurrency > 0) {
      const consumers = await startConsumers({
        state,
        consumer: definitions.consumer,
        concurrency,
        ...(options.onBatch ? { onBatch: options.onBatch } : {}),
        ...(options.onError ? { onError: options.onError } : {}),
      });
      stops.push(() => consumers.stop());
    }
    writeState(state);
    stops.push(async () => removeState(options.dataDir));
    return { state, definitions, stop: stops.stopAll };
  } catch (error) {
    await stops.stopAll();
    throw error;
  }
}
