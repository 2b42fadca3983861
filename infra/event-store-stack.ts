import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { ConfigLimits, type EventStoreConfig } from './config.ts';
import { EventTable } from './constructs/event-table.ts';
import { IngestFunction } from './constructs/ingest-function.ts';
import { IngestQueues } from './constructs/ingest-queues.ts';
import { RedriveWorkflow } from '../workflows/redrive-workflow.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { EventSubscription, type EventSubscriptionProps } from './constructs/event-subscription.ts';
import { StreamSummaryProjection } from './constructs/stream-summary.ts';

/** Lambda's guidance for SQS event sources: visibility timeout at least 6 x the function timeout (+ the batching window, infra/config.ts). */
export const VISIBILITY_TIMEOUT_FACTOR = ConfigLimits.visibilityTimeoutFactor;

/** The CfnOutput logical ids consumers (CLI, local mode, README) rely on. */
export const OutputIds = {
  queueUrl: 'QueueUrl',
  deadLetterQueueUrl: 'DeadLetterQueueUrl',
  tableName: 'TableName',
  stateMachineArn: 'StateMachineArn',
  dashboardUrl: 'DashboardUrl',
  queueMode: 'QueueMode',
  alarmTopicArn: 'AlarmTopicArn',
  /** Only while `previousQueue` keeps the previous mode's queues (README, "Switching the queue mode"). */
  previousQueueUrl: 'PreviousQueueUrl',
  previousDeadLetterQueueUrl: 'PreviousDeadLetterQueueUrl',
  previousStateMachineArn: 'PreviousStateMachineArn',
} as const;

export interface EventStoreStackProps extends StackProps {
  readonly config: EventStoreConfig;
  /** Override the ingest handler's entry (tests). @default handlers/ingest.ts */
  readonly ingestEntry?: string;
}

/**
 * The event store: the event table, the ingest queues (standard or FIFO) and the ingest
 * function, with monitoring and the redrive workflow.
 *
 * @example
 * const app = new App();
 * new EventStoreStack(app, 'EventStore', { config: parseConfig(app.node.getAllContext()) });
 */
export class EventStoreStack extends Stack {
  public readonly events: EventTable;
  public readonly queues: IngestQueues;
  public readonly ingest: IngestFunction;
  public readonly monitoring: Monitoring;
  public readonly redrive: RedriveWorkflow;
  /** The redrive workflow of the previous mode's DLQ, while `previousQueue` keeps it. */
  public readonly previousRedrive: RedriveWorkflow | undefined;
  /** The example projection, with `-c exampleProjection=true`. */
  public readonly streamSummary: StreamSummaryProjection | undefined;

  public constructor(scope: Construct, id: string, props: EventStoreStackProps) {
    super(scope, id, props);
    const { config } = props;
    const fifo = config.queue === 'fifo';
    const timeout = Duration.seconds(config.functionTimeoutSeconds);

    this.events = new EventTable(this, 'EventTable', {
      tableName: config.tableName,
      retain: config.retainTable,
      provisioned:
        config.billing === 'provisioned' && config.readCapacity !== undefined && config.writeCapacity !== undefined
          ? { readCapacity: config.readCapacity, writeCapacity: config.writeCapacity }
          : undefined,
    });

    this.queues = new IngestQueues(this, 'IngestQueues', {
      fifo,
      queueName: config.queueName,
      maxReceiveCount: config.maxReceiveCount,
      visibilityTimeout: Duration.seconds(config.visibilityTimeoutSeconds),
      keepPrevious: config.previousQueue !== undefined,
    });
    const previous = this.queues.previous;

    this.ingest = new IngestFunction(this, 'IngestFunction', {
      table: this.events.table,
      queue: this.queues.queue,
      deadLetterQueue: this.queues.deadLetterQueue,
      fifo,
      batchSize: config.batchSize,
      maxBatchingWindowSeconds: config.maxBatchingWindowSeconds,
      maxConcurrency: config.maxConcurrency,
      dedupWindow: config.dedupWindow,
      resendWindowSeconds: config.resendWindow,
      maxReceiveCount: config.maxReceiveCount,
      timeout,
      memorySize: config.memorySize,
      logLevel: config.logLevel,
      serviceName: this.stackName,
      previousQueue: previous?.queue,
      ...(props.ingestEntry ? { entry: props.ingestEntry } : {}),
    });

    this.redrive = new RedriveWorkflow(this, 'Redrive', {
      deadLetterQueue: this.queues.deadLetterQueue,
      sourceQueue: this.queues.queue,
      fifo,
      logExecutionData: config.redriveLogExecutionData,
    });
    // The previous DLQ is redriven into the previous ingest queue: both of its own kind, as the
    // workflow expects; the function still consumes that queue.
    this.previousRedrive = previous
      ? new RedriveWorkflow(this, 'PreviousRedrive', {
          deadLetterQueue: previous.deadLetterQueue,
          sourceQueue: previous.queue,
          fifo: previous.fifo,
          logExecutionData: config.redriveLogExecutionData,
        })
      : undefined;

    this.monitoring = new Monitoring(this, 'Monitoring', {
      table: this.events.table,
      function: this.ingest.function,
      queue: this.queues.queue,
      deadLetterQueue: this.queues.deadLetterQueue,
      redrive: this.redrive.stateMachine,
      serviceName: this.stackName,
      oldestMessageAgeThreshold: Duration.seconds(config.visibilityTimeoutSeconds * config.maxReceiveCount),
      previous:
        previous && this.previousRedrive
          ? {
              queue: previous.queue,
              deadLetterQueue: previous.deadLetterQueue,
              redrive: this.previousRedrive.stateMachine,
            }
          : undefined,
      alarmEmail: config.alarmEmail,
    });

    new CfnOutput(this, OutputIds.stateMachineArn, {
      value: this.redrive.stateMachine.stateMachineArn,
      description: 'Redrive rejected events: start an execution with {} or with fix options',
    });
    if (previous && this.previousRedrive) {
      new CfnOutput(this, OutputIds.previousQueueUrl, {
        value: previous.queue.queueUrl,
        description: `The ${previous.fifo ? 'fifo' : 'standard'} ingest queue kept after the mode switch`,
      });
      new CfnOutput(this, OutputIds.previousDeadLetterQueueUrl, {
        value: previous.deadLetterQueue.queueUrl,
        description: 'Its dead-letter queue: drop previousQueue once both are empty',
      });
      new CfnOutput(this, OutputIds.previousStateMachineArn, {
        value: this.previousRedrive.stateMachine.stateMachineArn,
        description: 'Redrive the previous dead-letter queue into the previous ingest queue',
      });
    }

    new CfnOutput(this, OutputIds.queueUrl, {
      value: this.queues.queue.queueUrl,
      description: 'Send events here',
    });
    new CfnOutput(this, OutputIds.deadLetterQueueUrl, {
      value: this.queues.deadLetterQueue.queueUrl,
      description: 'Rejected events, with RejectionReason attributes',
    });
    new CfnOutput(this, OutputIds.tableName, { value: this.events.table.tableName, description: 'The event table' });
    new CfnOutput(this, OutputIds.dashboardUrl, {
      value: this.monitoring.dashboardUrl,
      description: 'CloudWatch dashboard',
    });
    new CfnOutput(this, OutputIds.alarmTopicArn, {
      value: this.monitoring.alarmTopic.topicArn,
      description: 'Alarm notifications: subscribe here',
    });
    new CfnOutput(this, OutputIds.queueMode, { value: config.queue, description: 'standard or fifo' });

    this.streamSummary = config.exampleProjection
      ? new StreamSummaryProjection(this, 'StreamSummary', { table: this.events.table, alarmTopic: this.monitoring.alarmTopic })
      : undefined;
  }

  /**
   * Subscribe a projection to the store (README "Subscriptions"): its alarms notify the
   * stack's alarm topic.
   *
   * @example
   * stack.addSubscription('Orders', { entry: 'projections/orders.ts', eventTypes: ['ORDER_PLACED'] });
   */
  public addSubscription(id: string, props: Omit<EventSubscriptionProps, 'table'>): EventSubscription {
    return new EventSubscription(this, id, { alarmTopic: this.monitoring.alarmTopic, ...props, table: this.events.table });
  }
}
