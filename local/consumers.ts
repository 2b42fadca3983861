import { SQSClient } from '@aws-sdk/client-sqs';
import { Poller, type BatchReport, type SqsHandler } from './poller.ts';
import type { LocalStackState } from './state.ts';
import type { ConsumerDefinition } from './template.ts';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../core/metrics.ts';
import { LOCAL_CREDENTIALS } from './defaults.ts';

/** The local engines' credentials (local/defaults.ts). */
export { LOCAL_CREDENTIALS };

export interface ConsumersOptions {
  readonly state: LocalStackState;
  readonly consumer: ConsumerDefinition;
  /** Pollers running at once (like concurrent Lambda invocations). */
  readonly concurrency: number;
  readonly onBatch?: (report: BatchReport) => void;
  readonly onError?: (error: Error) => void;
  readonly onReceive?: (count: number) => void;
}

export interface Consumers {
  /** Stop receiving; resolves when every batch in flight is handled and acknowledged. */
  stop(): Promise<void>;
}

/**
 * Configure this process as the ingest function's container (the environment the CDK stack
 * gives it, pointed at the local engines) and load the real handler.
 */
export async function loadIngestHandler(state: LocalStackState, consumer: ConsumerDefinition): Promise<SqsHandler> {
  const env = process.env;
  for (const [name, value] of Object.entries(consumer.environment)) {
    // NODE_OPTIONS is for the Lambda runtime's node, not for this process's children.
    if (name !== 'NODE_OPTIONS') env[name] ??= value;
  }
  Object.assign(env, {
    TABLE_NAME: state.tableName,
    DLQ_URL: state.deadLetterQueueUrl,
    AWS_REGION: state.region,
    AWS_ENDPOINT_URL_DYNAMODB: state.dynamoDbEndpoint,
    AWS_ENDPOINT_URL_SQS: state.sqsEndpoint,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  });
  delete env['AWS_SESSION_TOKEN'];
  delete env['AWS_PROFILE'];
  env['AWS_EC2_METADATA_DISABLED'] = 'true';
  env['POWERTOOLS_SERVICE_NAME'] ??= SERVICE_NAME;
  env['POWERTOOLS_METRICS_NAMESPACE'] ??= METRICS_NAMESPACE;
  env['POWERTOOLS_LOG_LEVEL'] ??= 'INFO';
  // No X-Ray daemon and no CloudWatch here: traces off, metrics (EMF lines) off unless asked for.
  env['POWERTOOLS_TRACE_ENABLED'] ??= 'false';
  env['POWERTOOLS_METRICS_DISABLED'] ??= 'true';
  // Imported only now: the handler reads its configuration from the environment set above.
  const ingest = await import('../handlers/ingest.ts');
  return ingest.handler;
}

/** Destroy the SDK clients the handler built from the environment (idle sockets keep a process alive). */
export async function disposeIngestHandler(): Promise<void> {
  const ingest = await import('../handlers/ingest.ts');
  ingest.disposeIngestHandler();
}

/** Start `concurrency` pollers that feed the real ingest handler, as Lambda's event source mapping does. */
export async function startConsumers(options: ConsumersOptions): Promise<Consumers> {
  const { state, consumer } = options;
  const handler = await loadIngestHandler(state, consumer);
  const sqs = new SQSClient({ endpoint: state.sqsEndpoint, region: state.region, credentials: LOCAL_CREDENTIALS });
  const pollers = Array.from(
    { length: options.concurrency },
    () =>
      new Poller({
        sqs,
        queueUrl: state.queueUrl,
        queueArn: state.queueArn,
        region: state.region,
        handler,
        batchSize: consumer.batchSize,
        batchingWindowSeconds: consumer.maximumBatchingWindowInSeconds,
        timeoutSeconds: consumer.timeoutSeconds,
        ...(options.onBatch ? { onBatch: options.onBatch } : {}),
        ...(options.onError ? { onError: options.onError } : {}),
        ...(options.onReceive ? { onReceive: (records) => options.onReceive?.(records.length) } : {}),
      }),
  );
  for (const poller of pollers) poller.start();
  return {
    async stop() {
      await Promise.all(pollers.map((poller) => poller.stop()));
      sqs.destroy();
      await disposeIngestHandler();
    },
  };
}
