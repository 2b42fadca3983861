import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface IngestQueuesProps {
  /** FIFO queues (message group = stream id) or standard ones. */
  readonly fifo: boolean;
  /** Base name; the DLQ gets `-dlq`, FIFO queues `.fifo`. @default - CloudFormation names them */
  readonly queueName?: string | undefined;
  /** Receives before SQS moves a message to the DLQ. */
  readonly maxReceiveCount: number;
  /** At least 6 x the consuming function's timeout (Lambda's guidance for SQS sources). */
  readonly visibilityTimeout: Duration;
}

/** How long the DLQ keeps a message: SQS's maximum, 14 days. */
export const DLQ_RETENTION = Duration.days(14);

/** The largest message SQS accepts (1 MiB since January 2026), body and attributes together. */
export const MAX_MESSAGE_BYTES = 1_048_576;

/**
 * The ingest queue and its dead-letter queue, of the same kind (standard or FIFO), with
 * SQS-managed encryption, TLS enforced, and RETAIN so that switching modes never drops
 * messages. The construct ids differ per kind: a mode switch creates new queues and
 * leaves the old ones in place (retained) to drain.
 *
 * @example
 * const queues = new IngestQueues(stack, 'IngestQueues', {
 *   fifo: true, maxReceiveCount: 5, visibilityTimeout: Duration.seconds(180),
 * });
 * queues.queue.queueUrl;
 */
export class IngestQueues extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly fifo: boolean;

  public constructor(scope: Construct, id: string, props: IngestQueuesProps) {
    super(scope, id);
    this.fifo = props.fifo;
    const kind = props.fifo ? 'Fifo' : 'Standard';
    const suffix = props.fifo ? '.fifo' : '';
    const common = {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      // Events up to DynamoDB's 400 KB item limit fit, with room for the DLQ's attributes.
      maxMessageSizeBytes: MAX_MESSAGE_BYTES,
      ...(props.fifo ? { fifo: true, contentBasedDeduplication: true } : {}),
    } satisfies sqs.QueueProps;

    this.deadLetterQueue = new sqs.Queue(this, `${kind}DeadLetterQueue`, {
      ...common,
      ...(props.queueName ? { queueName: `${props.queueName}-dlq${suffix}` } : {}),
      retentionPeriod: DLQ_RETENTION,
    });
    this.queue = new sqs.Queue(this, `${kind}Queue`, {
      ...common,
      ...(props.queueName ? { queueName: `${props.queueName}${suffix}` } : {}),
      visibilityTimeout: props.visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
  }
}
