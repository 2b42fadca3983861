import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ALL_REJECTION_REASONS } from '../../core/reasons.ts';

/** Where the ingest function's Powertools Metrics go (POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'EventStore';
/** POWERTOOLS_SERVICE_NAME, also Powertools' default `service` dimension. */
export const SERVICE_NAME = 'event-store';
/** The handler's metric names (DESIGN section 5). */
export const MetricNames = {
  eventsStored: 'EventsStored',
  eventsRejected: 'EventsRejected',
  duplicateEvents: 'DuplicateEvents',
  appendConflicts: 'AppendConflicts',
} as const;

/** The table operations the store performs; their throttles are watched. */
const TABLE_OPERATIONS = [dynamodb.Operation.PUT_ITEM, dynamodb.Operation.QUERY, dynamodb.Operation.GET_ITEM];

export interface MonitoringProps {
  readonly table: dynamodb.ITable;
  readonly function: lambda.IFunction;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  /** Subscribed to the alarm topic. @default - none; subscribe later in the console */
  readonly alarmEmail?: string | undefined;
  /** Aggregation period of the dashboard and alarms. @default 5 minutes */
  readonly period?: Duration;
}

/**
 * The dashboard (stored, rejected by reason, duplicates, append conflicts, queue and DLQ depth
 * and age, function errors, duration and throttles, table throttles) and the alarms (DLQ not
 * empty, function errors, function throttles, table throttles), which notify an SNS topic
 * that an email address can be subscribed to.
 *
 * @example
 * new Monitoring(stack, 'Monitoring', { table, function: fn, queue, deadLetterQueue, alarmEmail: 'ops@example.com' });
 */
export class Monitoring extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly alarmTopic: sns.Topic;
  public readonly alarms: {
    readonly deadLetterQueueNotEmpty: cloudwatch.Alarm;
    readonly functionErrors: cloudwatch.Alarm;
    readonly functionThrottles: cloudwatch.Alarm;
    readonly tableThrottles: cloudwatch.Alarm;
  };

  public constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const period = props.period ?? Duration.minutes(5);
    const seconds = period.toSeconds();

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: 'Event store alarms', enforceSSL: true });
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    // Custom metrics: SEARCH matches whatever dimensions Powertools adds (service, Reason).
    const search = (metricName: string, label: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${metricName}"', 'Sum', ${seconds})`,
        label,
        period,
        usingMetrics: {},
      });
    // Lists one line per dimension set, i.e. per Reason (core/reasons.ts) and service.
    const rejectedByReason = search(MetricNames.eventsRejected, '');

    const dlqDepth = props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period,
      statistic: cloudwatch.Stats.MAXIMUM,
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
    ): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      created.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      created.addOkAction(new actions.SnsAction(this.alarmTopic));
      return created;
    };
    this.alarms = {
      deadLetterQueueNotEmpty: alarm(
        'DeadLetterQueueNotEmpty',
        dlqDepth,
        'Events wait in the dead-letter queue: read their RejectionReason, fix, then run the redrive workflow.',
      ),
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
    };

    const width = 8;
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.TextWidget({
            markdown:
              '## Event store\nEvents stored, rejected (by reason: ' +
              `${ALL_REJECTION_REASONS.join(', ')}), duplicates and append conflicts; ` +
              'queues, function and table below.',
            width: 24,
            height: 2,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Events stored',
            left: [search(MetricNames.eventsStored, 'EventsStored')],
            width,
          }),
          new cloudwatch.GraphWidget({ title: 'Events rejected by reason', left: [rejectedByReason], width }),
          new cloudwatch.GraphWidget({
            title: 'Duplicates and append conflicts',
            left: [
              search(MetricNames.duplicateEvents, 'DuplicateEvents'),
              search(MetricNames.appendConflicts, 'AppendConflicts'),
            ],
            width,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Dead-letter queue',
            left: [dlqDepth.with({ label: 'Messages' })],
            right: [
              props.deadLetterQueue.metricApproximateAgeOfOldestMessage({
                period,
                statistic: cloudwatch.Stats.MAXIMUM,
                label: 'Age of oldest (s)',
              }),
            ],
            width,
          }),
          new cloudwatch.GraphWidget({
            title: 'Ingest queue',
            left: [
              props.queue.metricApproximateNumberOfMessagesVisible({
                period,
                statistic: cloudwatch.Stats.MAXIMUM,
                label: 'Visible',
              }),
            ],
            right: [
              props.queue.metricApproximateAgeOfOldestMessage({
                period,
                statistic: cloudwatch.Stats.MAXIMUM,
                label: 'Age of oldest (s)',
              }),
            ],
            width,
          }),
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            alarms: Object.values(this.alarms),
            width,
          }),
        ],
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
      ],
    });
  }

  /** The console URL of the dashboard. */
  public get dashboardUrl(): string {
    const region = Stack.of(this).region;
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${this.dashboard.dashboardName}`;
  }
}
