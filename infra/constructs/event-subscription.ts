import { CfnOutput, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
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
import { Construct } from 'constructs';
import { relative } from 'node:path';
import {
  CheckpointKeys,
  SUBSCRIPTION_DIMENSION,
  SubscriptionDefaults,
  SubscriptionEnvironment,
  SubscriptionMetric,
} from '../../core/subscription.ts';
import { bundledHandler, lambdaRole, PROJECT_ROOT } from './node-function.ts';
import { METRICS_NAMESPACE, MetricDimension, SUBSCRIPTION_SERVICE_NAME } from '../../core/metrics.ts';

/** The subscription function's Powertools service name and metrics namespace (handlers/subscription.ts). */
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
/** Checkpoints and replay state (adapters/dynamodb-subscription.ts). */
export const CHECKPOINT_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
] as const;

export const LIST_STREAMS_ACKNOWLEDGEMENT = {
  id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
  reason:
    "Lambda's DynamoDB stream event source calls dynamodb:ListStreams, which accepts no resource ARN, so " +
    'AWS requires Resource "*" for it; the stream reads, table reads and checkpoint writes name their resources.',
} as const;

/** Template metadata on the function: the projection's entry, relative to the project (the local mode runs it). */
export const ENTRY_METADATA = 'EventStoreSubscriptionEntry';
/** Output descriptions start with this, then the subscription's name (the CLI finds checkpoint tables by it). */
export const CHECKPOINT_OUTPUT_PREFIX = 'Checkpoints of subscription ';

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

/** The payload of the replay schedule. */
export const REPLAY_INPUT = { replay: true } as const;

export interface EventSubscriptionProps {
  /** The event store's table; its stream (NEW_IMAGE) feeds the subscription. */
  readonly table: dynamodb.Table;
  /** The projection file: it exports `handler = subscriptionHandler({ projection })` (handlers/subscription.ts). */
  readonly entry: string;
  /** Names the subscription in metrics, logs and the CLI. @default the construct id */
  readonly subscriptionName?: string;
  /** Records per invocation. @default 100 */
  readonly batchSize?: number;
  /** Concurrent batches per shard (a stream's records stay in order). @default 1 */
  readonly parallelizationFactor?: number;
  /** Failed attempts at one version before its stream is parked. @default 5 */
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
  /** Alarms notify this topic. @default - no action */
  readonly alarmTopic?: sns.ITopic;
  /** The checkpoint table goes with the stack (DESTROY) or stays (RETAIN). @default RemovalPolicy.DESTROY */
  readonly checkpointRemovalPolicy?: RemovalPolicy;
  /** @default 'INFO' */
  readonly logLevel?: string;
}

/**
 * A subscription to the event store (README "Subscriptions"): a Lambda function running the
 * projection in `entry` on the event table's stream, its own checkpoint table, a replay
 * schedule, alarms on parked streams and lag, and a role whose statements name exact actions
 * on exact resources (ListStreams excepted: it takes no ARN).
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
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;
  public readonly eventSourceMapping: lambda.EventSourceMapping;
  public readonly replaySchedule: events.Rule;
  public readonly alarms: { readonly parkedStreams: cloudwatch.Alarm; readonly lag: cloudwatch.Alarm };

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
    this.logGroup = new logs.LogGroup(this, 'LogGroup', { retention: logs.RetentionDays.ONE_MONTH });
    this.role = this.subscriptionRole(props.table, streamArn);
    this.function = this.projectionFunction(props);
    new CfnOutput(this, 'CheckpointTableName', {
      value: this.checkpointTable.tableName,
      description: `${CHECKPOINT_OUTPUT_PREFIX}${this.subscriptionName}`,
    });
    this.eventSourceMapping = this.streamSource(streamArn, props);
    this.replaySchedule = new events.Rule(this, 'ReplaySchedule', {
      description: `Subscription ${this.subscriptionName}: replay and resumes (returns at once when there is nothing to do)`,
      schedule: events.Schedule.rate(props.replaySchedule ?? DEFAULT_REPLAY_SCHEDULE),
      targets: [
        new targets.LambdaFunction(this.function, {
          event: events.RuleTargetInput.fromObject(REPLAY_INPUT),
          retryAttempts: 0,
        }),
      ],
    });
    this.alarms = this.subscriptionAlarms(props);
  }

  /** Exact actions on the log group, the table, its stream and the checkpoint table; ListStreams on "*". */
  private subscriptionRole(table: dynamodb.Table, streamArn: string): iam.Role {
    const role = lambdaRole(
      this,
      'Role',
      `Subscription ${this.subscriptionName}: read the event table and its stream, write its checkpoints`,
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
      description: `Event store subscription ${this.subscriptionName}`,
      environment: {
        ...props.environment,
        [SubscriptionEnvironment.name]: this.subscriptionName,
        [SubscriptionEnvironment.eventTable]: props.table.tableName,
        [SubscriptionEnvironment.checkpointTable]: this.checkpointTable.tableName,
        [SubscriptionEnvironment.maxAttempts]: String(props.maxAttempts ?? SubscriptionDefaults.maxAttempts),
        [SubscriptionEnvironment.replayReadUnits]: String(
          props.replayReadUnitsPerSecond ?? SubscriptionDefaults.replayReadUnitsPerSecond,
        ),
        ...(props.eventTypes && props.eventTypes.length > 0
          ? { [SubscriptionEnvironment.eventTypes]: props.eventTypes.join(',') }
          : {}),
        POWERTOOLS_SERVICE_NAME: SUBSCRIPTION_SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: SUBSCRIPTION_METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
    (fn.node.defaultChild as lambda.CfnFunction).addMetadata(ENTRY_METADATA, relative(PROJECT_ROOT, props.entry));
    return fn;
  }

  /** New INSERTs of the table's stream, in order per shard; Lambda never skips records on its own. */
  private streamSource(streamArn: string, props: EventSubscriptionProps): lambda.EventSourceMapping {
    const mapping = new lambda.EventSourceMapping(this, 'StreamSource', {
      target: this.function,
      eventSourceArn: streamArn,
      // New events only: what is already in the table comes through the replay.
      startingPosition: lambda.StartingPosition.LATEST,
      batchSize: props.batchSize ?? DEFAULT_BATCH_SIZE,
      parallelizationFactor: props.parallelizationFactor ?? 1,
      reportBatchItemFailures: true,
      // The runtime parks a failing stream itself; Lambda must never skip records on its own.
      retryAttempts: -1,
      bisectBatchOnError: false,
      // The store only inserts.
      filters: [lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.isEqual('INSERT') })],
    });
    mapping.node.addDependency(this.role);
    return mapping;
  }

  /** Parked streams and lag, on this subscription's metrics; they notify `alarmTopic` when given. */
  private subscriptionAlarms(props: EventSubscriptionProps): EventSubscription['alarms'] {
    const alarms = {
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
    if (props.alarmTopic) {
      for (const alarm of Object.values(alarms)) alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
    }
    return alarms;
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
        [MetricDimension.service]: SUBSCRIPTION_SERVICE_NAME,
        [SUBSCRIPTION_DIMENSION]: this.subscriptionName,
      },
      statistic,
      period: METRIC_PERIOD,
    });
  }
}
