import { Duration, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { METRICS_NAMESPACE } from '../../core/metrics.ts';
import { nagAcknowledgement } from './nag.ts';
import { bundledHandler, LAMBDA_RUNTIME, lambdaRole } from './node-function.ts';

/** The ingest handler (engineer A's `handlers/ingest.ts`, export `handler`). */
export const INGEST_ENTRY = fileURLToPath(new URL('../../handlers/ingest.ts', import.meta.url));

/** The ingest function's runtime: the stack's one Node.js runtime. */
export const INGEST_RUNTIME = LAMBDA_RUNTIME;

/** The DynamoDB actions the store (adapters/dynamodb-store.ts) performs, and no others. */
export const TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'] as const;
/** What the SQS event source mapping needs on the source queue. */
export const SOURCE_QUEUE_ACTIONS = [
  'sqs:ChangeMessageVisibility',
  'sqs:DeleteMessage',
  'sqs:GetQueueAttributes',
  'sqs:ReceiveMessage',
] as const;
/** The handler dead-letters rejected events itself. */
export const DLQ_ACTIONS = ['sqs:SendMessage'] as const;
/** Lambda writes the function's logs with these, to its own log group only. */
export { LOG_ACTIONS } from './node-function.ts';

/** The X-Ray actions active tracing adds to the role, on Resource "*". */
export const XRAY_ACTIONS = ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'] as const;

/** cdk-nag finding acknowledged on the ingest function's role, and why. */
export const XRAY_ACKNOWLEDGEMENT = nagAcknowledgement(
  'AwsSolutions-IAM5[Resource::*]',
  'Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords accept no resource ARN, ' +
    'so AWS requires Resource "*" for them; every other statement of this role names its resource.',
);

export interface IngestFunctionProps {
  readonly table: dynamodb.ITable;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly fifo: boolean;
  readonly batchSize: number;
  /** Standard queues only; 0 means none. */
  readonly maxBatchingWindowSeconds: number;
  /** @default - no limit */
  readonly maxConcurrency?: number | undefined;
  readonly dedupWindow: number;
  /** RESEND_WINDOW_SECONDS: the duplicate window's time bound. @default - the handler's (300) */
  readonly resendWindowSeconds?: number | undefined;
  /** The source queue's redrive `maxReceiveCount` (the handler decides on the last delivery). @default - not told */
  readonly maxReceiveCount?: number | undefined;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly logLevel: string;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default INGEST_ENTRY */
  readonly entry?: string;
  /**
   * POWERTOOLS_SERVICE_NAME: the `service` dimension of the function's metrics and the
   * `service` key of its logs, so that two stacks in one account keep their metrics apart.
   * The stack passes its name.
   */
  readonly serviceName: string;
  /**
   * The ingest queue of the mode the stack switched from: the function keeps consuming it (in
   * batches of at most 10, no batching window) until the key is dropped. @default - none
   */
  readonly previousQueue?: sqs.IQueue | undefined;
}

/** The previous mode's event source: FIFO's limit, which suits both kinds. */
export const PREVIOUS_QUEUE_BATCH_SIZE = 10;

/**
 * The construct id of the event source mapping of each queue kind, whether that queue is the
 * current or the previous mode's: the kept queue's mapping keeps its logical id through a mode
 * switch, so CloudFormation only updates it. Were the id tied to the role instead (current or
 * previous), the switch would change the kept mapping's EventSourceArn, which replaces it:
 * CloudFormation creates the replacement and the other mapping of that queue before it deletes
 * the old one, and Lambda refuses a second mapping of one queue and one function (docs/OPERATIONS.md,
 * "Switching the queue mode"). The standard queue's mapping keeps the id it had before ids went by
 * kind, so a standard stack upgrades without a new mapping.
 */
export const QUEUE_SOURCE_IDS = { standard: 'QueueSource', fifo: 'FifoQueueSource' } as const;

/**
 * The ingest Lambda function: handlers/ingest.ts bundled by esbuild (no Docker) as ESM for
 * the current Node.js runtime on arm64, with X-Ray tracing, its own log group, an SQS event
 * source mapping with partial batch responses, and a role whose statements name exact
 * actions on exact resources (no managed policies).
 *
 * @example
 * new IngestFunction(stack, 'IngestFunction', {
 *   table, queue, deadLetterQueue, fifo: false, batchSize: 10, maxBatchingWindowSeconds: 0,
 *   dedupWindow: 50, timeout: Duration.seconds(30), memorySize: 512, logLevel: 'INFO',
 *   serviceName: 'EventStore',
 * });
 */
export class IngestFunction extends Construct {
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;
  public readonly eventSourceMapping: lambda.EventSourceMapping;
  /** On the previous mode's ingest queue, while it is kept. */
  public readonly previousEventSourceMapping: lambda.EventSourceMapping | undefined;

  public constructor(scope: Construct, id: string, props: IngestFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    });
    this.role = this.ingestRole(props);
    this.function = this.ingestFunction(props);
    const sourceId = (fifo: boolean) => (fifo ? QUEUE_SOURCE_IDS.fifo : QUEUE_SOURCE_IDS.standard);
    this.eventSourceMapping = this.queueSource(sourceId(props.fifo), props.queue, {
      batchSize: props.batchSize,
      ...(!props.fifo && props.maxBatchingWindowSeconds > 0
        ? { maxBatchingWindow: Duration.seconds(props.maxBatchingWindowSeconds) }
        : {}),
      ...(props.maxConcurrency !== undefined ? { maxConcurrency: props.maxConcurrency } : {}),
    });
    this.previousEventSourceMapping = props.previousQueue
      ? this.queueSource(sourceId(!props.fifo), props.previousQueue, {
          batchSize: Math.min(props.batchSize, PREVIOUS_QUEUE_BATCH_SIZE),
          ...(props.maxConcurrency !== undefined ? { maxConcurrency: props.maxConcurrency } : {}),
        })
      : undefined;
    Validations.of(this.role).acknowledge(XRAY_ACKNOWLEDGEMENT);
  }

  /** The role: exact actions on the log group, the table, the source queue(s) and the DLQ. */
  private ingestRole(props: IngestFunctionProps): iam.Role {
    const role = lambdaRole(
      this,
      'Role',
      'Ingest function: append events to the event table, dead-letter rejected ones',
      this.logGroup,
    );
    role.addToPolicy(new iam.PolicyStatement({ actions: [...TABLE_ACTIONS], resources: [props.table.tableArn] }));
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: [...SOURCE_QUEUE_ACTIONS],
        resources: [props.queue.queueArn, ...(props.previousQueue ? [props.previousQueue.queueArn] : [])],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({ actions: [...DLQ_ACTIONS], resources: [props.deadLetterQueue.queueArn] }),
    );
    return role;
  }

  /** handlers/ingest.ts bundled with the SDK, traced, told its table, DLQ and limits. */
  private ingestFunction(props: IngestFunctionProps): nodejs.NodejsFunction {
    return new nodejs.NodejsFunction(this, 'Function', {
      ...bundledHandler(props.entry ?? INGEST_ENTRY),
      memorySize: props.memorySize,
      timeout: props.timeout,
      tracing: lambda.Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      description: `Event store ingest (${props.fifo ? 'FIFO' : 'standard'} queue)`,
      environment: {
        TABLE_NAME: props.table.tableName,
        DLQ_URL: props.deadLetterQueue.queueUrl,
        DEDUP_WINDOW: String(props.dedupWindow),
        ...(props.resendWindowSeconds !== undefined
          ? { RESEND_WINDOW_SECONDS: String(props.resendWindowSeconds) }
          : {}),
        ...(props.maxReceiveCount !== undefined ? { MAX_RECEIVE_COUNT: String(props.maxReceiveCount) } : {}),
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel,
        // Stack traces through the bundle's source map.
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
  }

  /** An SQS event source with partial batch responses; it must not poll before the role may receive. */
  private queueSource(
    id: string,
    queue: sqs.IQueue,
    options: Pick<lambda.EventSourceMappingOptions, 'batchSize' | 'maxBatchingWindow' | 'maxConcurrency'>,
  ): lambda.EventSourceMapping {
    const mapping = new lambda.EventSourceMapping(this, id, {
      target: this.function,
      eventSourceArn: queue.queueArn,
      ...options,
      reportBatchItemFailures: true,
    });
    mapping.node.addDependency(this.role);
    return mapping;
  }
}
