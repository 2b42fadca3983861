import { CfnOutput, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { EventSubscription } from './event-subscription.ts';
import { OutputIds } from '../../core/stack-outputs.ts';

/** The example projection's entry (handlers/stream-summary-projection.ts). */
export const STREAM_SUMMARY_ENTRY = fileURLToPath(
  new URL('../../handlers/stream-summary-projection.ts', import.meta.url),
);
/** Its subscription name (metrics, CLI). */
export const STREAM_SUMMARY_NAME = 'stream-summary';
/** The projection's writes to its read model, and no others. */
export const READ_MODEL_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem'] as const;

/** Output ids the CLI reads. */
export const StreamSummaryOutputIds = {
  readModelTable: OutputIds.streamSummaryTableName,
} as const;

export interface StreamSummaryProjectionProps {
  readonly table: dynamodb.Table;
  readonly alarmTopic?: sns.ITopic;
  /** @default true: the read model is rebuilt by a replay, so nothing is lost with it */
  readonly destroyReadModel?: boolean;
}

/**
 * The example projection (`-c exampleProjection=true`): a read model table with one summary per
 * stream (event count, last version, last event type, counts per type), kept by an
 * EventSubscription running handlers/stream-summary-projection.ts.
 *
 * @example
 * new StreamSummaryProjection(stack, 'StreamSummary', { table: events.table });
 */
export class StreamSummaryProjection extends Construct {
  public readonly readModel: dynamodb.Table;
  public readonly subscription: EventSubscription;

  public constructor(scope: Construct, id: string, props: StreamSummaryProjectionProps) {
    super(scope, id);
    this.readModel = new dynamodb.Table(this, 'ReadModel', {
      partitionKey: { name: 'ID', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.destroyReadModel === false ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.subscription = new EventSubscription(this, 'Subscription', {
      table: props.table,
      entry: STREAM_SUMMARY_ENTRY,
      subscriptionName: STREAM_SUMMARY_NAME,
      environment: { READ_MODEL_TABLE_NAME: this.readModel.tableName },
      ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
    });
    this.subscription.role.addToPolicy(
      new iam.PolicyStatement({ actions: [...READ_MODEL_ACTIONS], resources: [this.readModel.tableArn] }),
    );
    new CfnOutput(this, 'ReadModelOutput', {
      value: this.readModel.tableName,
      description: 'Example projection: one summary per stream',
    }).overrideLogicalId(StreamSummaryOutputIds.readModelTable);
  }
}
