import { Duration, Lazy, Stack } from 'aws-cdk-lib';
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

/** The aggregation period of the dashboard and alarms, unless MonitoringProps.period says otherwise. */
const DEFAULT_PERIOD = Duration.minutes(5);
/** The time range the dashboard opens with. */
const DASHBOARD_INTERVAL = Duration.hours(3);
/** Dashboard grid units: a row is 24 wide and holds three graphs; the title is 2 high. */
const FULL_WIDTH = 24;
const WIDGET_WIDTH = 8;
const TITLE_HEIGHT = 2;

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
  private readonly props: MonitoringProps;
  private readonly period: Duration;

  public constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.props = props;
    this.period = props.period ?? DEFAULT_PERIOD;
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: 'Event store alarms', enforceSSL: true });
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }
    this.alarms = this.eventStoreAlarms();
    this.allowAlarmsToPublish();
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: DASHBOARD_INTERVAL,
      widgets: this.dashboardRows(),
    });
  }

  // --- metrics ------------------------------------------------------------------------------

  /** One of this stack's custom metrics (docs/OPERATIONS.md, "The consumer and what it shows"). */
  private custom(metricName: string, label: string, extra: Record<string, string> = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { [SERVICE_DIMENSION]: this.props.serviceName, ...extra },
      statistic: cloudwatch.Stats.SUM,
      period: this.period,
      label,
    });
  }

  private outstanding(queue: sqs.IQueue): cloudwatch.IMetric {
    return queue.metricApproximateNumberOfMessagesOutstanding({
      period: this.period,
      statistic: cloudwatch.Stats.MAXIMUM,
      label: 'Messages',
    });
  }

  /** No label on what an alarm uses: a label turns it into a metric-math alarm. */
  private oldest(queue: sqs.IQueue, label?: string): cloudwatch.Metric {
    return queue.metricApproximateAgeOfOldestMessage({
      period: this.period,
      statistic: cloudwatch.Stats.MAXIMUM,
      ...(label ? { label } : {}),
    });
  }

  private executionsFailed(machine: sfn.IStateMachine): cloudwatch.IMetric {
    const period = this.period;
    return new cloudwatch.MathExpression({
      expression: 'FILL(failed, 0) + FILL(timedOut, 0)',
      usingMetrics: {
        failed: machine.metricFailed({ period, statistic: cloudwatch.Stats.SUM }),
        timedOut: machine.metricTimedOut({ period, statistic: cloudwatch.Stats.SUM }),
      },
      label: 'Failed or timed out',
      period,
    });
  }

  private functionErrors(): cloudwatch.Metric {
    return this.props.function.metricErrors({ period: this.period, statistic: cloudwatch.Stats.SUM });
  }

  private functionThrottles(): cloudwatch.Metric {
    return this.props.function.metricThrottles({ period: this.period, statistic: cloudwatch.Stats.SUM });
  }

  private tableThrottles(): cloudwatch.IMetric {
    return this.props.table.metricThrottledRequestsForOperations({
      operations: TABLE_OPERATIONS,
      period: this.period,
      statistic: cloudwatch.Stats.SUM,
    });
  }

  // --- alarms -------------------------------------------------------------------------------

  /** An alarm at `threshold` or more, missing data not breaching, notifying the topic of ALARM and OK. */
  private alarm(alarmId: string, metric: cloudwatch.IMetric, description: string, threshold = 1): cloudwatch.Alarm {
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
  }

  /** A queue pair's alarms: its DLQ not empty, its ingest queue's oldest message, its redrive failed. */
  private queueAlarms(prefix: string, watched: WatchedQueues, which: string) {
    const ageThreshold = this.props.oldestMessageAgeThreshold.toSeconds();
    return {
      dlq: this.alarm(
        `${prefix}DeadLetterQueueNotEmpty`,
        this.outstanding(watched.deadLetterQueue),
        `Events wait in the ${which}dead-letter queue (visible or being redriven): read their RejectionReason, ` +
          'fix, then run the redrive workflow.',
      ),
      oldest: this.alarm(
        `${prefix}IngestQueueOldestMessage`,
        this.oldest(watched.queue),
        `The ${which}ingest queue's oldest message is ${ageThreshold} s old or more: the ingest function is ` +
          'behind or failing; see its errors and throttles.',
        ageThreshold,
      ),
      redrive: this.alarm(
        `${prefix}RedriveFailed`,
        this.executionsFailed(watched.redrive),
        `A redrive execution of the ${which}dead-letter queue failed or timed out: open it in the Step Functions ` +
          'console (an input that is not valid fails it too).',
      ),
    };
  }

  private eventStoreAlarms(): EventStoreAlarms {
    const current = this.queueAlarms('', this.props, '');
    const previous = this.props.previous
      ? this.queueAlarms('Previous', this.props.previous, "previous mode's ")
      : undefined;
    return {
      deadLetterQueueNotEmpty: current.dlq,
      ingestQueueOldestMessage: current.oldest,
      redriveFailed: current.redrive,
      functionErrors: this.alarm(
        'FunctionErrors',
        this.functionErrors(),
        'The ingest function failed whole invocations (not single events): see its log group.',
      ),
      functionThrottles: this.alarm(
        'FunctionThrottles',
        this.functionThrottles(),
        'The ingest function was throttled: check account concurrency and maxConcurrency.',
      ),
      tableThrottles: this.alarm(
        'TableThrottles',
        this.tableThrottles(),
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
  }

  /**
   * Only CloudWatch may publish, and only for this account's alarms of this stack (the
   * confused-deputy conditions of AWS's SNS access policy examples). enforceSSL made the topic
   * policy, which replaces SNS's default policy: without this statement no alarm notification
   * would be delivered. The list of alarms is read when the template is written, from every alarm
   * in the stack whose actions name the topic: the alarms added later (subscriptions, the
   * stack's `addSubscription`, a user's own) are allowed too.
   */
  private allowAlarmsToPublish(): void {
    const alarmArns = Lazy.list({ produce: () => this.alarmsNotifyingTopic().map((alarm) => alarm.attrArn) });
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
  }

  /** Every alarm of the stack with the topic among its alarm, OK or insufficient-data actions. */
  private alarmsNotifyingTopic(): cloudwatch.CfnAlarm[] {
    const stack = Stack.of(this);
    const topic = JSON.stringify(stack.resolve(this.alarmTopic.topicArn));
    return stack.node
      .findAll()
      .filter((node): node is cloudwatch.CfnAlarm => node instanceof cloudwatch.CfnAlarm)
      .filter((alarm) => {
        const actions = [alarm.alarmActions, alarm.okActions, alarm.insufficientDataActions].flatMap(
          (list) => (stack.resolve(list) as unknown[] | undefined) ?? [],
        );
        return actions.some((action) => JSON.stringify(action) === topic);
      });
  }

  // --- dashboard ----------------------------------------------------------------------------

  private graph(title: string, left: cloudwatch.IMetric[], right?: cloudwatch.IMetric[]): cloudwatch.GraphWidget {
    return new cloudwatch.GraphWidget({ title, left, ...(right ? { right } : {}), width: WIDGET_WIDTH });
  }

  /** A queue pair's row: DLQ depth and age, ingest queue depth and age, redrive executions. */
  private queueRow(watched: WatchedQueues, which: string): cloudwatch.IWidget[] {
    const period = this.period;
    return [
      this.graph(
        `${which}Dead-letter queue`,
        [this.outstanding(watched.deadLetterQueue)],
        [this.oldest(watched.deadLetterQueue, 'Age of oldest (s)')],
      ),
      this.graph(
        `${which}Ingest queue`,
        [
          watched.queue.metricApproximateNumberOfMessagesVisible({
            period,
            statistic: cloudwatch.Stats.MAXIMUM,
            label: 'Visible',
          }),
        ],
        [this.oldest(watched.queue, 'Age of oldest (s)')],
      ),
      this.graph(`${which}Redrive executions`, [
        watched.redrive.metricStarted({ period, statistic: cloudwatch.Stats.SUM, label: 'Started' }),
        watched.redrive.metricSucceeded({ period, statistic: cloudwatch.Stats.SUM, label: 'Succeeded' }),
        this.executionsFailed(watched.redrive),
      ]),
    ];
  }

  /** What the handler counts: stored, rejected by reason, duplicates and append conflicts. */
  private eventsRow(): cloudwatch.IWidget[] {
    const rejectedByReason = ALL_REJECTION_REASONS.map((reason) =>
      this.custom(MetricNames.eventsRejected, reason, { [REASON_DIMENSION]: reason }),
    );
    return [
      this.graph('Events stored', [this.custom(MetricNames.eventsStored, MetricNames.eventsStored)]),
      this.graph('Events rejected by reason', rejectedByReason),
      this.graph('Duplicates and append conflicts', [
        this.custom(MetricNames.duplicateEvents, MetricNames.duplicateEvents),
        this.custom(MetricNames.appendConflicts, MetricNames.appendConflicts),
      ]),
    ];
  }

  /** The ingest function's errors, throttles and duration; the table's throttles. */
  private functionRow(): cloudwatch.IWidget[] {
    const duration = (statistic: string) => this.props.function.metricDuration({ period: this.period, statistic });
    return [
      this.graph('Function errors and throttles', [this.functionErrors(), this.functionThrottles()]),
      this.graph('Function duration', [
        duration(cloudwatch.Stats.p(50)),
        duration(cloudwatch.Stats.p(99)),
        duration(cloudwatch.Stats.MAXIMUM),
      ]),
      this.graph('Table throttled requests', [this.tableThrottles()]),
    ];
  }

  private dashboardRows(): cloudwatch.IWidget[][] {
    const { serviceName, previous } = this.props;
    return [
      [
        new cloudwatch.TextWidget({
          markdown:
            `## Event store ${serviceName}\nEvents stored, rejected (by reason: ` +
            `${ALL_REJECTION_REASONS.join(', ')}), duplicates and append conflicts of this stack ` +
            `(dimension ${SERVICE_DIMENSION}=${serviceName}); queues, redrive, function and table below.`,
          width: FULL_WIDTH,
          height: TITLE_HEIGHT,
        }),
      ],
      this.eventsRow(),
      this.queueRow(this.props, ''),
      ...(previous ? [this.queueRow(previous, 'Previous mode: ')] : []),
      this.functionRow(),
      [new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarms), width: FULL_WIDTH })],
    ];
  }

  /** The console URL of the dashboard. */
  public get dashboardUrl(): string {
    const region = Stack.of(this).region;
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${this.dashboard.dashboardName}`;
  }
}
