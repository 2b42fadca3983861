import { Annotations, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import {
  ConfigLimits,
  ingestRetentionSeconds,
  longestRetryPathSeconds,
  QueueMode,
  type EventStoreConfig,
} from './config.ts';
import { EventTable } from './constructs/event-table.ts';
import { IngestFunction } from './constructs/ingest-function.ts';
import { IngestQueues } from './constructs/ingest-queues.ts';
import { RedriveWorkflow } from '../workflows/redrive-workflow.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { EventSubscription, type EventSubscriptionProps } from './constructs/event-subscription.ts';
import { StreamSummaryProjection } from './constructs/stream-summary.ts';
import { OutputIds } from '../core/stack-outputs.ts';

/** Lambda's guidance for SQS event sources: visibility timeout at least 6 x the function timeout (+ the batching window, infra/config.ts). */
export const VISIBILITY_TIMEOUT_FACTOR = ConfigLimits.visibilityTimeoutFactor;

/**
 * The warnings `cdk synth`, `cdk diff` and `cdk deploy` print whenever a set-once name is given
 * (`--strict` makes them errors): CloudFormation replaces a table or queue whose name changes, so
 * the name must be the same in every deploy of the stack (docs/OPERATIONS.md, "Set-once keys").
 */
export const SetOnceWarnings = {
  tableName: {
    id: 'event-store:set-once-tableName',
    message:
      'tableName is set-once: keep exactly this value in every deploy of this stack. A stack first deployed ' +
      'without it, or with another name, gets a NEW, EMPTY table (the old one is retained out of the stack, and ' +
      'ingest, readers and subscriptions move to the new one). See docs/OPERATIONS.md, "Set-once keys".',
  },
  queueName: {
    id: 'event-store:set-once-queueName',
    message:
      'queueName is set-once: keep exactly this value in every deploy of this stack. A stack first deployed ' +
      'without it, or with another name, gets NEW, EMPTY ingest and dead-letter queues (the old ones, with their ' +
      'messages, are retained out of the stack, unread). See docs/OPERATIONS.md, "Set-once keys".',
  },
} as const;

/** The CfnOutput logical ids consumers (CLI, local mode, README) rely on. */
export { OutputIds } from '../core/stack-outputs.ts';

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
    const fifo = config.queue === QueueMode.fifo;

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
      retentionPeriod: Duration.seconds(
        ingestRetentionSeconds(config.visibilityTimeoutSeconds, config.maxReceiveCount),
      ),
      keepPrevious: config.previousQueue !== undefined,
    });
    this.warnSetOnce(config);
    this.ingest = this.ingestFunction(config, props.ingestEntry);
    this.redrive = new RedriveWorkflow(this, 'Redrive', {
      deadLetterQueue: this.queues.deadLetterQueue,
      sourceQueue: this.queues.queue,
      fifo,
      logExecutionData: config.redriveLogExecutionData,
    });
    this.previousRedrive = this.previousRedriveWorkflow(config);
    this.monitoring = this.eventStoreMonitoring(config);
    this.outputs(config);
    this.streamSummary = config.exampleProjection
      ? new StreamSummaryProjection(this, 'StreamSummary', {
          table: this.events.table,
          alarmTopic: this.monitoring.alarmTopic,
        })
      : undefined;
  }

  /**
   * The CDK app cannot see the deployed stack, so it cannot tell a first deploy from a change: it
   * warns on every synth where a set-once name is given (docs/OPERATIONS.md, "Set-once keys").
   */
  private warnSetOnce(config: EventStoreConfig): void {
    if (config.tableName !== undefined) {
      const { id, message } = SetOnceWarnings.tableName;
      Annotations.of(this.events.table).addWarningV2(id, message);
    }
    if (config.queueName !== undefined) {
      const { id, message } = SetOnceWarnings.queueName;
      Annotations.of(this.queues).addWarningV2(id, message);
    }
  }

  /** The ingest function on the ingest queue (and the previous mode's, while it is kept). */
  private ingestFunction(config: EventStoreConfig, entry: string | undefined): IngestFunction {
    return new IngestFunction(this, 'IngestFunction', {
      table: this.events.table,
      queue: this.queues.queue,
      deadLetterQueue: this.queues.deadLetterQueue,
      fifo: config.queue === QueueMode.fifo,
      batchSize: config.batchSize,
      maxBatchingWindowSeconds: config.maxBatchingWindowSeconds,
      maxConcurrency: config.maxConcurrency,
      dedupWindow: config.dedupWindow,
      resendWindowSeconds: config.resendWindow,
      maxReceiveCount: config.maxReceiveCount,
      timeout: Duration.seconds(config.functionTimeoutSeconds),
      memorySize: config.memorySize,
      logLevel: config.logLevel,
      serviceName: this.stackName,
      previousQueue: this.queues.previous?.queue,
      ...(entry ? { entry } : {}),
    });
  }

  /**
   * The previous DLQ is redriven into the previous ingest queue: both of its own kind, as the
   * workflow expects; the function still consumes that queue.
   */
  private previousRedriveWorkflow(config: EventStoreConfig): RedriveWorkflow | undefined {
    const previous = this.queues.previous;
    return previous
      ? new RedriveWorkflow(this, 'PreviousRedrive', {
          deadLetterQueue: previous.deadLetterQueue,
          sourceQueue: previous.queue,
          fifo: previous.fifo,
          logExecutionData: config.redriveLogExecutionData,
        })
      : undefined;
  }

  /** Dashboard and alarms over the table, the function, both queue pairs and their redrives. */
  private eventStoreMonitoring(config: EventStoreConfig): Monitoring {
    const previous = this.queues.previous;
    return new Monitoring(this, 'Monitoring', {
      table: this.events.table,
      function: this.ingest.function,
      queue: this.queues.queue,
      deadLetterQueue: this.queues.deadLetterQueue,
      redrive: this.redrive.stateMachine,
      serviceName: this.stackName,
      oldestMessageAgeThreshold: Duration.seconds(
        longestRetryPathSeconds(config.visibilityTimeoutSeconds, config.maxReceiveCount),
      ),
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
  }

  /** The {@link OutputIds} the CLI, the local mode and the README rely on. */
  private outputs(config: EventStoreConfig): void {
    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    output(
      OutputIds.stateMachineArn,
      this.redrive.stateMachine.stateMachineArn,
      'Redrive rejected events: start an execution with {} or with fix options',
    );
    const previous = this.queues.previous;
    if (previous && this.previousRedrive) {
      output(
        OutputIds.previousQueueUrl,
        previous.queue.queueUrl,
        `The ${previous.fifo ? QueueMode.fifo : QueueMode.standard} ingest queue kept after the mode switch`,
      );
      output(
        OutputIds.previousDeadLetterQueueUrl,
        previous.deadLetterQueue.queueUrl,
        'Its dead-letter queue: drop previousQueue once both are empty',
      );
      output(
        OutputIds.previousStateMachineArn,
        this.previousRedrive.stateMachine.stateMachineArn,
        'Redrive the previous dead-letter queue into the previous ingest queue',
      );
    }
    output(OutputIds.queueUrl, this.queues.queue.queueUrl, 'Send events here');
    output(
      OutputIds.deadLetterQueueUrl,
      this.queues.deadLetterQueue.queueUrl,
      'Rejected events, with RejectionReason attributes',
    );
    output(OutputIds.tableName, this.events.table.tableName, 'The event table');
    output(OutputIds.dashboardUrl, this.monitoring.dashboardUrl, 'CloudWatch dashboard');
    output(OutputIds.alarmTopicArn, this.monitoring.alarmTopic.topicArn, 'Alarm notifications: subscribe here');
    output(OutputIds.queueMode, config.queue, 'standard or fifo');
  }

  /**
   * Subscribe a projection to the store (README "Subscriptions"): its alarms notify the
   * stack's alarm topic.
   *
   * @example
   * stack.addSubscription('Orders', { entry: 'projections/orders.ts', eventTypes: ['ORDER_PLACED'] });
   */
  public addSubscription(id: string, props: Omit<EventSubscriptionProps, 'table'>): EventSubscription {
    return new EventSubscription(this, id, {
      alarmTopic: this.monitoring.alarmTopic,
      ...props,
      table: this.events.table,
    });
  }
}
