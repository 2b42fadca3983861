import { CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { relative } from 'node:path';
import {
  CheckpointKeys,
  SUBSCRIPTION_DIMENSION,
  SubscriptionDefaults,
  SubscriptionEnvironment,
  SubscriptionMetric,
} from '../../core/subscription.ts';
import { nagAcknowledgement } from './nag.ts';
import { bundledHandler, lambdaRole, PROJECT_ROOT } from './node-function.ts';
import { METRICS_NAMESPACE, MetricDimension, SUBSCRIPTION_SERVICE_NAME } from '../../core/metrics.ts';

/**
 * The subscription function's Powertools service name when POWERTOOLS_SERVICE_NAME is not set (the
 * local mode); a deployed subscription's is its stack's name, so two stacks in one account keep
 * their series apart. Metrics namespace: handlers/subscription.ts.
 */
export { SUBSCRIPTION_SERVICE_NAME };
export const SUBSCRIPTION_METRICS_NAMESPACE = METRICS_NAMESPACE;

/** What the runtime does on the event table: gap fills and catch-up reads (Query), replay (Scan). */
export const SUBSCRIPTION_TABLE_ACTIONS = ['dynamodb:Query', 'dynamodb:Scan'] as const;
/** What Lambda's event source mapping needs on the table's stream. */
export const SUBSCRIPTION_STREAM_ACTIONS = [
  'dynamodb:DescribeStream',
  'dynamodb:GetRecords',
  'dynamodb:GetShardIterator',
] as const;
/** ListStreams takes no resource ARN. */
export const SUBSCRIPTION_LIST_STREAMS_ACTIONS = ['dynamodb:ListStreams'] as const;
/** What Lambda needs to record a discarded batch in the failure queue ("For SQS destinations: sqs:SendMessage"). */
export const FAILURE_QUEUE_ACTIONS = ['sqs:SendMessage'] as const;
/** Checkpoints and replay state (adapters/dynamodb-subscription.ts). */
export const CHECKPOINT_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
] as const;
/**
 * The claims a live batch takes its streams with (README "Subscriptions"): put its claim, read the
 * claims partition, withdraw or re-add a stream, delete a claim. No GetItem, BatchGetItem or Scan:
 * the runtime reads claims only by their one partition.
 */
export const CLAIMS_ACTIONS = [
  'dynamodb:DeleteItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
] as const;
/**
 * The claims table's keys and TTL attribute (README "Subscriptions"): every claim of a subscription
 * under one partition key value, sorted by `Claim` (its deadline, then its owner); DynamoDB's TTL
 * removes a dead claim a while after `ExpiresAt` (epoch seconds).
 */
export const ClaimsTableKeys = {
  partitionKey: 'Key',
  sortKey: 'Claim',
  timeToLiveAttribute: 'ExpiresAt',
} as const;

export const LIST_STREAMS_ACKNOWLEDGEMENT = nagAcknowledgement(
  'AwsSolutions-IAM5[Resource::*]',
  "Lambda's DynamoDB stream event source calls dynamodb:ListStreams, and active tracing xray:PutTraceSegments " +
    'and xray:PutTelemetryRecords, which accept no resource ARN, so AWS requires Resource "*" for them; the ' +
    'stream reads, table reads, checkpoint writes and the failure queue name their resources.',
);

/** Template metadata on the function: the projection's entry, relative to the project (the local mode runs it). */
export const ENTRY_METADATA = 'EventStoreSubscriptionEntry';
/** Output descriptions start with this, then the subscription's name (the CLI finds checkpoint tables by it). */
export const CHECKPOINT_OUTPUT_PREFIX = 'Checkpoints of subscription ';
/** The claims table's output description: this, then the subscription's name (no prefix of the one above). */
export const CLAIMS_OUTPUT_PREFIX = 'Claims of subscription ';

/** The defaults the props document (EventSubscriptionProps). */
const DEFAULT_BATCH_SIZE = 100;
const DEFAULT_MEMORY_SIZE = 256;
const DEFAULT_TIMEOUT = Duration.seconds(60);
const DEFAULT_REPLAY_SCHEDULE = Duration.minutes(1);
const DEFAULT_LAG_ALARM_THRESHOLD = 1000;
/** The lag alarm fires after this many periods (15 minutes) behind. */
const LAG_ALARM_PERIODS = 3;
/** The aggregation period of the subscription's alarms. */
const METRIC_PERIOD = Duration.minutes(5);

/** The Lambda metric IteratorAge: the age of the last record of each batch, in milliseconds. */
const ITERATOR_AGE_METRIC = 'IteratorAge';
const DEFAULT_ITERATOR_AGE_ALARM_THRESHOLD = Duration.hours(1);
/** The iterator age alarm fires after this many periods (15 minutes) at or over its threshold. */
const ITERATOR_AGE_ALARM_PERIODS = 3;

/**
 * Where the mapping starts on the stream: the oldest record kept (24 hours). AWS: "if you specify
 * LATEST as the starting position for the stream, the event source mapping could miss events during
 * a create or update. To ensure that no events are missed, specify either TRIM_HORIZON or
 * AT_TIMESTAMP." What the runtime already delivered (a replay, or before an update) it skips by
 * its checkpoints.
 */
export const STREAM_STARTING_POSITION = lambda.StartingPosition.TRIM_HORIZON;

/**
 * The mapping discards a record this old, with a trace in the failure queue: an hour before
 * DynamoDB Streams trims it (24 hours), after which Lambda could not say what it lost.
 */
export const STREAM_MAX_RECORD_AGE = Duration.hours(23);

/**
 * The mapping's retries of a failing batch: -1, "retried until the record expires" (AWS Lambda,
 * "Lambda parameters for Amazon DynamoDB event source mappings"), so the backstop is the record
 * age ({@link STREAM_MAX_RECORD_AGE}), a time, not a count. The runtime parks a stream after
 * `maxAttempts` counted failures (an invocation that dies counts too) and lets the shard move on;
 * a batch that waits for a stream another invocation holds (at most until that holder's function
 * timeout) is retried without a count, and a count of such retries would discard the batch before
 * the stream is parked. What the mapping discards at 23 h leaves a trace in the failure queue
 * (docs/OPERATIONS.md, "Subscriptions").
 */
export const MAPPING_RETRY_ATTEMPTS = -1;
/** Lambda's limit on the batch size of a DynamoDB Streams event source ("Maximum: 10,000"). */
const MAX_STREAM_BATCH_SIZE = 10_000;

/** The stream mapping's batch size, refused when Lambda would refuse it (CloudFormation would only say so at deploy). */
export function streamBatchSize(batchSize: number = DEFAULT_BATCH_SIZE): number {
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_STREAM_BATCH_SIZE) {
    throw new Error(
      `EventSubscription: batchSize ${batchSize} is not an integer from 1 to ${MAX_STREAM_BATCH_SIZE} ` +
        "(Lambda's limit for a DynamoDB Streams event source)",
    );
  }
  return batchSize;
}

/**
 * The iterator age alarm's threshold, in milliseconds. IteratorAge is the age of the last record of
 * a batch Lambda sends to the function, and the mapping never sends a record older than
 * {@link STREAM_MAX_RECORD_AGE} (it discards it to the failure queue), so a threshold at or above
 * that age could never be reached: it is refused.
 */
export function iteratorAgeAlarmThresholdMillis(threshold: Duration = DEFAULT_ITERATOR_AGE_ALARM_THRESHOLD): number {
  const millis = threshold.toMilliseconds();
  if (millis < 1 || millis >= STREAM_MAX_RECORD_AGE.toMilliseconds()) {
    throw new Error(
      `EventSubscription: iteratorAgeAlarmThreshold ${threshold.toHumanString()} can never be reached: the mapping ` +
        `discards records older than ${STREAM_MAX_RECORD_AGE.toHumanString()} instead of sending them, so the ` +
        'iterator age stays below that; choose a threshold under it',
    );
  }
  return millis;
}

/** How long the failure queue keeps Lambda's records of discarded batches: SQS's maximum. */
export const FAILURE_QUEUE_RETENTION = Duration.days(14);

/** The attempts before a stream is parked, refused when the handler would refuse it (at deploy rather than at its first batch). */
export function subscriptionMaxAttempts(maxAttempts: number = SubscriptionDefaults.maxAttempts): number {
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new Error(`EventSubscription: maxAttempts ${maxAttempts} is not a whole number >= 1`);
  return maxAttempts;
}

/** cdk-nag: the failure queue has no DLQ of its own, and why none would help. */
export const FAILURE_QUEUE_ACKNOWLEDGEMENT = nagAcknowledgement(
  'AwsSolutions-SQS3',
  "The subscription's failure queue is itself the dead-letter destination of its stream mapping: Lambda " +
    'writes the record of each discarded batch there, nothing consumes it (a DLQ behind it would never ' +
    'receive a message), and an alarm fires on its depth.',
);

/** The payload of the replay schedule. */
export const REPLAY_INPUT = { replay: true } as const;

export interface EventSubscriptionProps {
  /** The event store's table; its stream (NEW_IMAGE) feeds the subscription. */
  readonly table: dynamodb.Table;
  /** The projection file: it exports `handler = subscriptionHandler({ projection })` (handlers/subscription.ts). */
  readonly entry: string;
  /** Names the subscription in metrics, logs and the CLI. @default the construct id */
  readonly subscriptionName?: string;
  /** Records per invocation, 1 to 10,000. @default 100 */
  readonly batchSize?: number;
  /**
   * Concurrent batches per shard. Lambda keeps order per item only ("When you increase the number
   * of concurrent batches per shard, Lambda still ensures in-order processing at the item
   * (partition and sort key) level"), and every event is its own item, so one stream's versions
   * can be in concurrent batches. The runtime still hands each stream to one invocation at a time
   * whatever the factor: every batch takes a lease on the stream's checkpoint before it delivers,
   * and a batch that finds the stream held waits for it (README "Subscriptions"). A factor above
   * 1 adds throughput across streams, not within one. @default 1
   */
  readonly parallelizationFactor?: number;
  /**
   * Failed attempts at one version before its stream is parked (a whole number >= 1); the mapping
   * retries a batch until its records are 23 hours old ({@link MAPPING_RETRY_ATTEMPTS}). @default 5
   */
  readonly maxAttempts?: number;
  /** Only these event types reach the projection (versions still advance over the others). @default all */
  readonly eventTypes?: readonly string[];
  /** Read units per second a replay may use. @default 50 */
  readonly replayReadUnitsPerSecond?: number;
  /** How often the replay worker runs while it has work (it returns at once otherwise). @default 1 minute */
  readonly replaySchedule?: Duration;
  /** @default 60 seconds */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** More environment for the projection (e.g. its read model table). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Alarm when a batch ends this many versions behind for 15 minutes. @default 1000 */
  readonly lagAlarmThreshold?: number;
  /**
   * Alarm when the mapping's iterator age (the last record of a batch) is this old for 15 minutes:
   * the subscription falls behind the stream, whose records expire after 24 hours. Under
   * {@link STREAM_MAX_RECORD_AGE} (an older one could never be reached). @default 1 hour
   */
  readonly iteratorAgeAlarmThreshold?: Duration;
  /** Alarms notify this topic. @default - no action */
  readonly alarmTopic?: sns.ITopic;
  /**
   * The checkpoint table, the claims table and the failure queue go with the stack (DESTROY) or
   * stay (RETAIN).
   * @default RemovalPolicy.DESTROY
   */
  readonly checkpointRemovalPolicy?: RemovalPolicy;
  /** @default 'INFO' */
  readonly logLevel?: string;
}

/** The alarms of a subscription, by what they watch. */
export interface SubscriptionAlarms {
  readonly parkedStreams: cloudwatch.Alarm;
  readonly lag: cloudwatch.Alarm;
  /** Whole invocations failed (a crash, a timeout, an init error): the runtime could not count them itself. */
  readonly errors: cloudwatch.Alarm;
  /** The mapping falls behind the stream. */
  readonly iteratorAge: cloudwatch.Alarm;
  /** Lambda discarded a batch: its record is in the failure queue. */
  readonly discardedBatches: cloudwatch.Alarm;
}

/**
 * A subscription to the event store (README "Subscriptions"): a Lambda function running the
 * projection in `entry` on the event table's stream (from TRIM_HORIZON), its own checkpoint
 * and claims tables, a replay schedule, a failure queue where the mapping records any batch it discards,
 * alarms on parked streams, lag, function errors, iterator age and discarded batches, X-Ray
 * tracing, and a role whose statements name exact actions on exact resources (ListStreams and
 * X-Ray excepted: they take no ARN).
 *
 * @example
 * const summary = new EventSubscription(stack, 'StreamSummary', {
 *   table: events.table,
 *   entry: 'handlers/stream-summary-projection.ts',
 *   maxAttempts: 5,
 * });
 * readModel.grant(summary.function, 'dynamodb:UpdateItem');
 */
export class EventSubscription extends Construct {
  public readonly subscriptionName: string;
  public readonly checkpointTable: dynamodb.Table;
  /** The claims a live batch takes its streams with (README "Subscriptions"). */
  public readonly claimsTable: dynamodb.Table;
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;
  public readonly eventSourceMapping: lambda.EventSourceMapping;
  /** The mapping's on-failure destination: Lambda's record of every batch it discards. */
  public readonly failureQueue: sqs.Queue;
  public readonly replaySchedule: events.Rule;
  public readonly alarms: SubscriptionAlarms;

  public constructor(scope: Construct, id: string, props: EventSubscriptionProps) {
    super(scope, id);
    this.subscriptionName = props.subscriptionName ?? id;
    const streamArn = props.table.tableStreamArn;
    if (!streamArn) throw new Error(`EventSubscription ${id}: the event table has no stream; enable it with NEW_IMAGE`);

    this.checkpointTable = new dynamodb.Table(this, 'Checkpoints', {
      partitionKey: { name: CheckpointKeys.partitionKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.checkpointRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.claimsTable = this.claimTable(props);
    this.logGroup = new logs.LogGroup(this, 'LogGroup', { retention: logs.RetentionDays.ONE_MONTH });
    this.failureQueue = this.discardedBatchQueue(props);
    this.role = this.subscriptionRole(props.table, streamArn);
    this.function = this.projectionFunction(props);
    new CfnOutput(this, 'CheckpointTableName', {
      value: this.checkpointTable.tableName,
      description: `${CHECKPOINT_OUTPUT_PREFIX}${this.subscriptionName}`,
    });
    new CfnOutput(this, 'ClaimsTableName', {
      value: this.claimsTable.tableName,
      description: `${CLAIMS_OUTPUT_PREFIX}${this.subscriptionName}`,
    });
    this.eventSourceMapping = this.streamSource(streamArn, props);
    this.replaySchedule = this.replayRule(props);
    this.alarms = this.subscriptionAlarms(props);
  }

  /**
   * The claims table, made as the checkpoint table is: on demand, point-in-time recovery on, the
   * same removal policy (the subscription's state goes or stays as one), DynamoDB's default
   * encryption like every table of the stack. Claims live for one invocation; TTL on `ExpiresAt`
   * clears those a dead invocation left (within days of expiring, not at once).
   */
  private claimTable(props: EventSubscriptionProps): dynamodb.Table {
    return new dynamodb.Table(this, 'Claims', {
      partitionKey: { name: ClaimsTableKeys.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: ClaimsTableKeys.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: ClaimsTableKeys.timeToLiveAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.checkpointRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
  }

  /** The replay worker's schedule: it returns at once when there is nothing to do. */
  private replayRule(props: EventSubscriptionProps): events.Rule {
    return new events.Rule(this, 'ReplaySchedule', {
      description: `Subscription ${this.subscriptionName}: replay and resumes (returns at once when there is nothing to do)`,
      schedule: events.Schedule.rate(props.replaySchedule ?? DEFAULT_REPLAY_SCHEDULE),
      targets: [
        new targets.LambdaFunction(this.function, {
          event: events.RuleTargetInput.fromObject(REPLAY_INPUT),
          retryAttempts: 0,
        }),
      ],
    });
  }

  /** Standard (Lambda's destinations are), SQS-managed encryption, TLS only, 14 days. */
  private discardedBatchQueue(props: EventSubscriptionProps): sqs.Queue {
    const queue = new sqs.Queue(this, 'FailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: FAILURE_QUEUE_RETENTION,
      removalPolicy: props.checkpointRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    Validations.of(queue).acknowledge(FAILURE_QUEUE_ACKNOWLEDGEMENT);
    return queue;
  }

  /** Exact actions on the log group, the table, its stream, the checkpoint and claims tables and the failure queue; ListStreams on "*". */
  private subscriptionRole(table: dynamodb.Table, streamArn: string): iam.Role {
    const role = lambdaRole(
      this,
      'Role',
      `Subscription ${this.subscriptionName}: read the event table and its stream, write its checkpoints and claims`,
      this.logGroup,
    );
    role.addToPolicy(
      new iam.PolicyStatement({ actions: [...SUBSCRIPTION_TABLE_ACTIONS], resources: [table.tableArn] }),
    );
    role.addToPolicy(new iam.PolicyStatement({ actions: [...SUBSCRIPTION_STREAM_ACTIONS], resources: [streamArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: [...SUBSCRIPTION_LIST_STREAMS_ACTIONS], resources: ['*'] }));
    role.addToPolicy(
      new iam.PolicyStatement({ actions: [...CHECKPOINT_ACTIONS], resources: [this.checkpointTable.tableArn] }),
    );
    role.addToPolicy(new iam.PolicyStatement({ actions: [...CLAIMS_ACTIONS], resources: [this.claimsTable.tableArn] }));
    role.addToPolicy(
      new iam.PolicyStatement({ actions: [...FAILURE_QUEUE_ACTIONS], resources: [this.failureQueue.queueArn] }),
    );
    Validations.of(role).acknowledge(LIST_STREAMS_ACKNOWLEDGEMENT);
    return role;
  }

  /** The projection in `entry`, bundled with the SDK, told its tables and settings; its entry in the template's metadata. */
  private projectionFunction(props: EventSubscriptionProps): nodejs.NodejsFunction {
    const fn = new nodejs.NodejsFunction(this, 'Function', {
      ...bundledHandler(props.entry),
      memorySize: props.memorySize ?? DEFAULT_MEMORY_SIZE,
      timeout: props.timeout ?? DEFAULT_TIMEOUT,
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      description: `Event store subscription ${this.subscriptionName}`,
      environment: {
        ...props.environment,
        [SubscriptionEnvironment.name]: this.subscriptionName,
        [SubscriptionEnvironment.eventTable]: props.table.tableName,
        [SubscriptionEnvironment.checkpointTable]: this.checkpointTable.tableName,
        [SubscriptionEnvironment.claimsTable]: this.claimsTable.tableName,
        [SubscriptionEnvironment.maxAttempts]: String(subscriptionMaxAttempts(props.maxAttempts)),
        [SubscriptionEnvironment.replayReadUnits]: String(
          props.replayReadUnitsPerSecond ?? SubscriptionDefaults.replayReadUnitsPerSecond,
        ),
        ...(props.eventTypes && props.eventTypes.length > 0
          ? { [SubscriptionEnvironment.eventTypes]: props.eventTypes.join(',') }
          : {}),
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: SUBSCRIPTION_METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
    (fn.node.defaultChild as lambda.CfnFunction).addMetadata(ENTRY_METADATA, relative(PROJECT_ROOT, props.entry));
    return fn;
  }

  /**
   * New INSERTs of the table's stream from TRIM_HORIZON. The runtime parks a failing stream itself;
   * Lambda gives up on a batch only past the record age (no retry count), and then records it in the
   * failure queue (docs/OPERATIONS.md, "Subscriptions").
   */
  private streamSource(streamArn: string, props: EventSubscriptionProps): lambda.EventSourceMapping {
    const mapping = new lambda.EventSourceMapping(this, 'StreamSource', {
      target: this.function,
      eventSourceArn: streamArn,
      startingPosition: STREAM_STARTING_POSITION,
      batchSize: streamBatchSize(props.batchSize),
      parallelizationFactor: props.parallelizationFactor ?? 1,
      reportBatchItemFailures: true,
      retryAttempts: MAPPING_RETRY_ATTEMPTS,
      maxRecordAge: STREAM_MAX_RECORD_AGE,
      // The queue's ARN only: the role's statement (subscriptionRole) allows exactly SendMessage.
      onFailure: { bind: () => ({ destination: this.failureQueue.queueArn }) },
      bisectBatchOnError: false,
      // The store only inserts.
      filters: [lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.isEqual('INSERT') })],
    });
    mapping.node.addDependency(this.role);
    return mapping;
  }

  /**
   * The `service` dimension of this subscription's metrics and the `service` of its logs: the
   * stack's name (POWERTOOLS_SERVICE_NAME, read by handlers/subscription.ts).
   */
  public get serviceName(): string {
    return Stack.of(this).stackName;
  }

  /**
   * Parked streams and lag on this subscription's metrics; whole-invocation errors and iterator
   * age on the function's; discarded batches on the failure queue's depth. They notify
   * `alarmTopic` when given.
   */
  private subscriptionAlarms(props: EventSubscriptionProps): SubscriptionAlarms {
    const alarms: SubscriptionAlarms = {
      ...this.runtimeAlarms(props),
      ...this.mappingAlarms(props),
    };
    if (props.alarmTopic) {
      for (const alarm of Object.values(alarms)) alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
    }
    return alarms;
  }

  /** What the runtime reports: parked streams and lag. */
  private runtimeAlarms(props: EventSubscriptionProps): Pick<SubscriptionAlarms, 'parkedStreams' | 'lag'> {
    return {
      parkedStreams: this.alarm('ParkedStreamsAlarm', {
        alarmDescription: `Subscription ${this.subscriptionName}: a stream was parked or a parked stream received events; see eventstore subscriptions`,
        metric: this.metric(SubscriptionMetric.streamsParked, cloudwatch.Stats.SUM),
        threshold: 1,
        evaluationPeriods: 1,
      }),
      lag: this.alarm('LagAlarm', {
        alarmDescription: `Subscription ${this.subscriptionName}: batches end far behind the newest stored versions`,
        metric: this.metric(SubscriptionMetric.lag, cloudwatch.Stats.MAXIMUM),
        threshold: props.lagAlarmThreshold ?? DEFAULT_LAG_ALARM_THRESHOLD,
        evaluationPeriods: LAG_ALARM_PERIODS,
      }),
    };
  }

  /** What Lambda reports: whole invocations that failed, the iterator age, batches it discarded. */
  private mappingAlarms(
    props: EventSubscriptionProps,
  ): Pick<SubscriptionAlarms, 'errors' | 'iteratorAge' | 'discardedBatches'> {
    const iteratorAge = props.iteratorAgeAlarmThreshold ?? DEFAULT_ITERATOR_AGE_ALARM_THRESHOLD;
    const iteratorAgeThreshold = iteratorAgeAlarmThresholdMillis(iteratorAge);
    return {
      errors: this.alarm('ErrorsAlarm', {
        alarmDescription:
          `Subscription ${this.subscriptionName}: whole invocations failed (crash, timeout, out of memory, init ` +
          'error); each counts as an attempt of the streams it held. See the function log group.',
        metric: this.function.metricErrors({ period: METRIC_PERIOD, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        evaluationPeriods: 1,
      }),
      iteratorAge: this.alarm('IteratorAgeAlarm', {
        alarmDescription:
          `Subscription ${this.subscriptionName}: the stream mapping is ${iteratorAge.toHumanString()} or more ` +
          'behind; DynamoDB Streams keeps records 24 hours and the mapping discards them at ' +
          `${STREAM_MAX_RECORD_AGE.toHumanString()} (to the failure queue).`,
        metric: this.function.metric(ITERATOR_AGE_METRIC, {
          period: METRIC_PERIOD,
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: iteratorAgeThreshold,
        evaluationPeriods: ITERATOR_AGE_ALARM_PERIODS,
      }),
      discardedBatches: this.alarm('DiscardedBatchesAlarm', {
        alarmDescription:
          `Subscription ${this.subscriptionName}: Lambda discarded a batch of stream records (see the failure ` +
          'queue): the events are in the table; fix the cause, then replay the subscription (docs/OPERATIONS.md).',
        metric: this.failureQueue.metricApproximateNumberOfMessagesVisible({
          period: METRIC_PERIOD,
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 1,
        evaluationPeriods: 1,
      }),
    };
  }

  private alarm(
    id: string,
    props: Pick<cloudwatch.AlarmProps, 'alarmDescription' | 'metric' | 'threshold' | 'evaluationPeriods'>,
  ): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, id, {
      ...props,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /** One of this subscription's metrics (handlers/subscription.ts). */
  private metric(metricName: string, statistic: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: SUBSCRIPTION_METRICS_NAMESPACE,
      metricName,
      dimensionsMap: {
        [MetricDimension.service]: this.serviceName,
        [SUBSCRIPTION_DIMENSION]: this.subscriptionName,
      },
      statistic,
      period: METRIC_PERIOD,
    });
  }
}
