import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TableKeys } from '../../core/keys.ts';

export interface EventTableProps {
  /** Physical name. @default - CloudFormation generates one */
  readonly tableName?: string | undefined;
  /**
   * RetainExceptOnCreate with deletion protection (true) or DESTROY without it (false).
   * @default true
   */
  readonly retain?: boolean;
  /** Provisioned capacity; absent means on-demand billing. @default - on demand */
  readonly provisioned?: { readonly readCapacity: number; readonly writeCapacity: number } | undefined;
}

/**
 * The event table (docs/ARCHITECTURE.md, "The table"): `ID` (S) + `Version` (N) from core/keys.ts, streams
 * with new images, point-in-time recovery, deletion protection and `RetainExceptOnCreate` by
 * default: kept by every stack update or delete, deleted only by the rollback of the deploy that
 * created it, so a failed first deploy can simply be retried (docs/OPERATIONS.md, "Switching the queue mode, recovering, cleaning up").
 *
 * Nothing here depends on the queue mode, so switching modes never replaces the table.
 *
 * @example
 * const events = new EventTable(stack, 'EventTable', { retain: true });
 * events.table.tableName;
 */
export class EventTable extends Construct {
  public readonly table: dynamodb.Table;

  public constructor(scope: Construct, id: string, props: EventTableProps = {}) {
    super(scope, id);
    const retain = props.retain ?? true;
    this.table = new dynamodb.Table(this, 'Table', {
      tableName: props.tableName,
      partitionKey: { name: TableKeys.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TableKeys.sortKey, type: dynamodb.AttributeType.NUMBER },
      ...(props.provisioned
        ? {
            billingMode: dynamodb.BillingMode.PROVISIONED,
            readCapacity: props.provisioned.readCapacity,
            writeCapacity: props.provisioned.writeCapacity,
          }
        : { billingMode: dynamodb.BillingMode.PAY_PER_REQUEST }),
      stream: dynamodb.StreamViewType.NEW_IMAGE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      removalPolicy: retain ? RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE : RemovalPolicy.DESTROY,
    });
  }
}
