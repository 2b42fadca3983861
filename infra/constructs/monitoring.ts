import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ALL_REJECTION_REASONS } from '../../core/reasons.ts';
import { IngestMetric, METRICS_NAMESPACE, MetricDimension } from '../../core/metrics.ts';

/** Where the ingest function's Powertools Metrics go (POWERTOOLS_METRICS_NAMESPACE). */
export { METRICS_NAMESPACE };
/**
 * The dimension that keeps two stacks' metrics apart: Powertools Metrics' default `service`
 * dimension, whose value it reads from POWERTOOLS_SERVICE_NAME. The ingest function's
 * environment sets that to the stack name (ingest-function.ts).
 */
export const SERVICE_DIMENSION = MetricDimension.service;
/** The `EventsRejected` dimension that names the rejection reason (core/reasons.ts). */
export const REASON_DIMENSION = MetricDimension.reason;
/** The handler's metric names (docs/OPERATIONS.md, "The consumer and what it shows"). */
export const MetricNames = IngestMetric;

/** CloudWatch's service principal, the only one the alarm topic lets publish. */
export const CLOUDWATCH_PRINCIPAL = 'cloudwatch.amazonaws.com';

/** The table operations the store performs; their throttles are watched. */
const TABLE_OPERATIONS = [dynamodb.Operation.PUT_ITEM, dynamodb.Operation.QUERY, dynamodb.Operation.GET_ITEM];

/** A queue pair and the redrive workflow that drains its DLQ. */
export interface WatchedQueues {
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  /** The redrive workflow's state machine for this DLQ. */
  readonly redrive: sfn.IStateMachine;
}

export interface MonitoringProps extends WatchedQueues {
  readonly table: dynamodb.ITable;
  readonly function: lambda.IFunction;
  /** The `service` dimension value the ingest function's metrics carry (the stack name). */
  readonly serviceName: string;
  /**
   * Alarm when the ingest queue's oldest message is this old: the consumer is behind or stuck.
   * Default: visibility timeout x maxReceiveCount, the longest a message can wait while it is
   * retried before it is stored or dead-lettered.
   */
  readonly oldestMessageAgeThreshold: Duration;
  /** The pair of the mode the stack switched from, while it is kept. @default - none */
  readonly previous?: WatchedQueues | undefined;
  /** Subscribed to the alarm topic. @default - none; subscribe later in the console */
  readonly alarmEmail?: string | undefined;
  /** Aggregation period of the dashboard and alarms. @default 5 minutes */
  readonly period?: Duration;
}

/** The alarms, by what they watch. */
export interface EventStoreAlarms {
  readonly deadLetterQueueNotEmpty: cloudwatch.Alarm;
  readonly ingestQueueOldestMessage: cloudwatch.Alarm;
  readonly redriveFailed: cloudwatch.Alarm;
  readonly functionErrors: cloudwatch.Alarm;
  readonly functionThrottles: cloudwatch.Alarm;
  readonly tableThrottles: cloudwatch.Alarm;
  readonly previousDeadLetterQueueNotEmpty?: cloudwatch.Alarm;
  readonly previousQueueOldestMessage?: cloudwatch.Alarm;
  readonly previousRedriveFailed?: cloudwatch.Alarm;
}

/**
 * The dashboard (stored, rejected by reason, duplicates, append conflicts, queue and DLQ depth
 * and age, redrive executions, function errors, duration and throttles, table throttles) and the
 * alarms, which notify an SNS topic that an email address can be subscribed to. The custom
 * metrics are this stack's own: they carry `service` = the stack name.
 *
 * - DLQ not empty: visible + in flight (`ApproximateNumberOfMessagesOutstanding`), so a redrive
 *   run, which hides the messages it has received, does not turn it OK and back to ALARM.
 * - Ingest queue: age of the oldest message over the threshold.
 * - Redrive: an execution failed or timed out (not one a user stopped).
 * - Function errors and throttles, table throttles.
 *
 * Every alarm treats missing data as not breaching: SQS stops publishing for an idle empty
 * queue and Lambda, DynamoDB and Step Functions publish throttles and failures only when they
 * happen, so a quiet period turns an alarm OK instead of leaving it in ALARM.
 *
 * @example
 * new Monitoring(stack, 'Monitoring', {
 *   table, function: fn, queue, deadLetterQueue, redrive: stateMachine, serviceName: 'EventStore',
 *   oldestMessageAgeThreshold: Duration.minutes(15), alarmEmail: 'ops@example.com',
 * });
 */
export class Monitoring extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly alarmTopic: sns.Topic;
  public readonly alarms: EventStoreAlarms;

  public constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const period = props.period ?? Duration.minutes(5);

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: 'Event store alarms', enforceSSL: true });
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    /** One of this stack's custom metrics (docs/OPERATIONS.md, "The consumer and what it shows"). */
    const custom = (metricName: string, label: string, extra: Record<string, string> = {}): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { [SERVICE_DIMENSION]: props.serviceName, ...extra },
        statistic: cloudwatch.Stats.SUM,
        period,
        label,
      });
    const rejectedByReason = ALL_REJECTION_REASONS.map((reason) =>
      custom(MetricNames.eventsRejected, reason, { [REASON_DIMENSION]: reason }),
    );

    const outstanding = (queue: sqs.IQueue): cloudwatch.IMetric =>
      queue.metricApproximateNumberOfMessagesOutstanding({ period, statistic: cloudwatch.Stats.MAXIMUM, label: 'Messages' });
    // No label on what an alarm uses: a label turns it into a metric-math alarm.
    const oldest = (queue: sqs.IQueue, label?: string): cloudwatch.Metric =>
      queue.metricApproximateAgeOfOldestMessage({ period, statistic: cloudwatch.Stats.MAXIMUM, ...(label ? { label } : {}) });
    const executionsFailed = (machine: sfn.IStateMachine): cloudwatch.IMetric =>
      new cloudwatch.MathExpression({
        expression: 'FILL(failed, 0) + FILL(timedOut, 0)',
        usingMetrics: {
          failed: machine.metricFailed({ period, statistic: cloudwatch.Stats.SUM }),
          timedOut: machine.metricTimedOut({ period, statistic: cloudwatch.Stats.SUM }),
        },
        label: 'Failed or timed out',
        period,
      });
    const functionErrors = props.function.metricErrors({ period, statistic: cloudwatch.Stats.SUM });
    const functionThrottles = props.function.metricThrottles({ period, statistic: cloudwatch.Stats.SUM });
    const tableThrottles = props.table.metricThrottledRequestsForOperations({
      operations: TABLE_OPERATIONS,
      period,
      statistic: cloudwatch.Stats.SUM,
    });

    const alarm = (
      alarmId: string,
      metric: cloudwatch.IMetric,
      description: string,
      threshold = 1,
    ): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      created.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      created.addOkAction(new actions.SnsAction(this.alarmTopic));
      return created;
    };
    const ageThreshold = props.oldestMessageAgeThreshold.toSeconds();
    const queueAlarms = (prefix: string, watched: WatchedQueues, which: string) => ({
      dlq: alarm(
        `${prefix}DeadLetterQueueNotEmpty`,
        outstanding(watched.deadLetterQueue),
        `Events wait in the ${which}dead-letter queue (visible or being redriven): read their RejectionReason, ` +
          'fix, then run the redrive workflow.',
      ),
      oldest: alarm(
        `${prefix}IngestQueueOldestMessage`,
        oldest(watched.queue),
        `The ${which}ingest queue's oldest message is ${ageThreshold} s old or more: the ingest function is ` +
          'behind or failing; see its errors and throttles.',
        ageThreshold,
      ),
      redrive: alarm(
        `${prefix}RedriveFailed`,
        executionsFailed(watched.redrive),
        `A redrive execution of the ${which}dead-letter queue failed or timed out: open it in the Step Functions ` +
          'console (an input that is not valid fails it too).',
      ),
    });
    const current = queueAlarms('', props, '');
    const previous = props.previous ? queueAlarms('Previous', props.previous, 'previous mode\'s ') : undefined;
    this.alarms = {
      deadLetterQueueNotEmpty: current.dlq,
      ingestQueueOldestMessage: current.oldest,
      redriveFailed: current.redrive,
      functionErrors: alarm(
        'FunctionErrors',
        functionErrors,
        'The ingest function failed whole invocations (not single events): see its log group.',
      ),
      functionThrottles: alarm(
        'FunctionThrottles',
        functionThrottles,
        'The ingest function was throttled: check account concurrency and maxConcurrency.',
      ),
      tableThrottles: alarm(
        'TableThrottles',
        tableThrottles,
        'DynamoDB throttled the event table (PutItem, Query, GetItem): check hot streams or capacity.',
      ),
      ...(previous
        ? {
            previousDeadLetterQueueNotEmpty: previous.dlq,
            previousQueueOldestMessage: previous.oldest,
            previousRedriveFailed: previous.redrive,
          }
        : {}),
    };

    // Only CloudWatch may publish, and only for this account's alarms of this stack (the
    // confused-deputy conditions of AWS's SNS access policy examples). enforceSSL made the
    // topic policy, which replaces SNS's default policy: without this statement no alarm
    // notification would be delivered.
    const alarmArns = Object.values(this.alarms).map((each: cloudwatch.Alarm) => each.alarmArn);
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal(CLOUDWATCH_PRINCIPAL)],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
          ArnEquals: { 'aws:SourceArn': alarmArns },
        },
      }),
    );

    const width = 8;
    const queueRow = (watched: WatchedQueues, which: string): cloudwatch.IWidget[] => [
      new cloudwatch.GraphWidget({
        title: `${which}Dead-letter queue`,
        left: [outstanding(watched.deadLetterQueue)],
        right: [oldest(watched.deadLetterQueue, 'Age of oldest (s)')],
        width,
      }),
      new cloudwatch.GraphWidget({
        title: `${which}Ingest queue`,
        left: [
          watched.queue.metricApproximateNumberOfMessagesVisible({
            period,
            statistic: cloudwatch.Stats.MAXIMUM,
            label: 'Visible',
          }),
        ],
        right: [oldest(watched.queue, 'Age of oldest (s)')],
        width,
      }),
      new cloudwatch.GraphWidget({
        title: `${which}Redrive executions`,
        left: [
          watched.redrive.metricStarted({ period, statistic: cloudwatch.Stats.SUM, label: 'Started' }),
          watched.redrive.metricSucceeded({ period, statistic: cloudwatch.Stats.SUM, label: 'Succeeded' }),
          executionsFailed(watched.redrive),
        ],
        width,
      }),
    ];
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.TextWidget({
            markdown:
              `## Event store ${props.serviceName}\nEvents stored, rejected (by reason: ` +
              `${ALL_REJECTION_REASONS.join(', ')}), duplicates and append conflicts of this stack ` +
              `(dimension ${SERVICE_DIMENSION}=${props.serviceName}); queues, redrive, function and table below.`,
            width: 24,
            height: 2,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Events stored',
            left: [custom(MetricNames.eventsStored, MetricNames.eventsStored)],
            width,
          }),
          new cloudwatch.GraphWidget({ title: 'Events rejected by reason', left: rejectedByReason, width }),
          new cloudwatch.GraphWidget({
            title: 'Duplicates and append conflicts',
            left: [
              custom(MetricNames.duplicateEvents, MetricNames.duplicateEvents),
              custom(MetricNames.appendConflicts, MetricNames.appendConflicts),
            ],
            width,
          }),
        ],
        queueRow(props, ''),
        ...(props.previous ? [queueRow(props.previous, 'Previous mode: ')] : []),
        [
          new cloudwatch.GraphWidget({
            title: 'Function errors and throttles',
            left: [functionErrors, functionThrottles],
            width,
          }),
          new cloudwatch.GraphWidget({
            title: 'Function duration',
            left: [
              props.function.metricDuration({ period, statistic: cloudwatch.Stats.p(50) }),
              props.function.metricDuration({ period, statistic: cloudwatch.Stats.p(99) }),
              props.function.metricDuration({ period, statistic: cloudwatch.Stats.MAXIMUM }),
            ],
            width,
          }),
          new cloudwatch.GraphWidget({
            title: 'Table throttled requests',
            left: [tableThrottles],
            width,
          }),
        ],
        [
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            alarms: Object.values(this.alarms),
            width: 24,
          }),
        ],
      ],
    });
  }

  /** The console URL of the dashboard. */
  public get dashboardUrl(): string {
    const region = Stack.of(this).region;
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${this.dashboard.dashboardName}`;
  }
}
