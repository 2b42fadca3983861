import { Aws, Duration, Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { Limits } from '../../core/keys.ts';

export interface IngestQueuesProps {
  /** FIFO queues (message group = stream id) or standard ones. */
  readonly fifo: boolean;
  /** Base name; the DLQ gets `-dlq`, FIFO queues `.fifo`. @default - generated (see {@link queueNames}) */
  readonly queueName?: string | undefined;
  /** Receives before SQS moves a message to the DLQ. */
  readonly maxReceiveCount: number;
  /** At least 6 x the consuming function's timeout + its batching window (infra/config.ts). */
  readonly visibilityTimeout: Duration;
  /**
   * How long the ingest queues keep a message: longer than the longest retry path (visibility
   * timeout x maxReceiveCount), so SQS moves a failing message to the DLQ before it could delete
   * it, and shorter than the DLQ's 14 days (infra/config.ts `ingestRetentionSeconds`).
   */
  readonly retentionPeriod: Duration;
  /**
   * The other kind's pair, kept after a mode switch until it is empty (README, "Switching the
   * queue mode"). @default - none
   */
  readonly keepPrevious?: boolean;
}

/** How long the DLQ keeps a message: SQS's maximum, 14 days. */
export const DLQ_RETENTION = Duration.days(14);

/** The largest message SQS accepts (1 MiB since January 2026), body and attributes together. */
export const MAX_MESSAGE_BYTES = Limits.maxMessageBytes;

/**
 * The removal policy of the queues and their policies: `RetainExceptOnCreate`. A stack update or
 * delete keeps them (and their messages); a failed deploy that created them deletes them, so a
 * retry does not meet a queue that "already exists".
 */
export const QUEUE_REMOVAL_POLICY = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE;

/** The stack name's share of a generated FIFO queue name. */
export const STACK_PREFIX_CHARS = 40;

/**
 * The first group of the stack's id (`arn:...:stack/<name>/<uuid>`): 8 hex characters that
 * differ for every stack created, even under the same name.
 */
function stackIdGroup(): string {
  return Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', Aws.STACK_ID))));
}

/**
 * The queue names of one kind, or undefined where CloudFormation names the queue.
 *
 * - `queueName` given: `<base>` and `<base>-dlq`, with `.fifo` for FIFO (infra/config.ts keeps
 *   `<base>-dlq.fifo` within SQS's 80 characters).
 * - standard, none given: CloudFormation generates them (it shortens them to fit).
 * - FIFO, none given: CloudFormation would append `.fifo` to a generated name without shortening
 *   it (over 80 characters with a longer stack name), so the app names them:
 *   `<stack name, first 40>-ingest[-dlq]-<8 hex of the stack id>.fifo`, at most 65 characters and
 *   new for every stack created, so queues retained from a deleted stack never collide.
 */
export function queueNames(
  scope: Construct,
  fifo: boolean,
  base: string | undefined,
): { queue: string | undefined; deadLetterQueue: string | undefined } {
  const suffix = fifo ? '.fifo' : '';
  if (base !== undefined) return { queue: `${base}${suffix}`, deadLetterQueue: `${base}-dlq${suffix}` };
  if (!fifo) return { queue: undefined, deadLetterQueue: undefined };
  const prefix = Stack.of(scope).stackName.slice(0, STACK_PREFIX_CHARS);
  const id = stackIdGroup();
  // A string with the token inside, so the literal `.fifo` ending stays visible to CDK's check.
  return { queue: `${prefix}-ingest-${id}${suffix}`, deadLetterQueue: `${prefix}-ingest-dlq-${id}${suffix}` };
}

/** One ingest queue and its dead-letter queue. */
export interface QueuePair {
  readonly fifo: boolean;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
}

/**
 * The ingest queue and its dead-letter queue, of the same kind (standard or FIFO), with
 * SQS-managed encryption and TLS enforced. Queues and their TLS-only policies are
 * `RetainExceptOnCreate`: a mode switch or a stack delete never drops messages, and a queue that
 * leaves the stack keeps its policy. The construct ids differ per kind, so a mode switch creates
 * new queues; with `keepPrevious` the other kind's pair stays in the stack under its old logical
 * ids (nothing replaced) until it is empty.
 *
 * @example
 * const queues = new IngestQueues(stack, 'IngestQueues', {
 *   fifo: true, maxReceiveCount: 5, visibilityTimeout: Duration.seconds(180), retentionPeriod: Duration.days(4),
 * });
 * queues.queue.queueUrl;
 */
export class IngestQueues extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly fifo: boolean;
  /** The pair of the mode the stack switched from, while it is kept. */
  public readonly previous: QueuePair | undefined;

  public constructor(scope: Construct, id: string, props: IngestQueuesProps) {
    super(scope, id);
    this.fifo = props.fifo;
    const current = this.pair(props.fifo, props);
    this.queue = current.queue;
    this.deadLetterQueue = current.deadLetterQueue;
    this.previous = props.keepPrevious ? this.pair(!props.fifo, props) : undefined;
  }

  private pair(fifo: boolean, props: IngestQueuesProps): QueuePair {
    const kind = fifo ? 'Fifo' : 'Standard';
    const names = queueNames(this, fifo, props.queueName);
    const common = {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: QUEUE_REMOVAL_POLICY,
      // Events up to DynamoDB's 400 KB item limit fit, with room for the DLQ's attributes.
      maxMessageSizeBytes: MAX_MESSAGE_BYTES,
      ...(fifo ? { fifo: true, contentBasedDeduplication: true } : {}),
    } satisfies sqs.QueueProps;
    const deadLetterQueue = new sqs.Queue(this, `${kind}DeadLetterQueue`, {
      ...common,
      ...(names.deadLetterQueue !== undefined ? { queueName: names.deadLetterQueue } : {}),
      retentionPeriod: DLQ_RETENTION,
    });
    const queue = new sqs.Queue(this, `${kind}Queue`, {
      ...common,
      ...(names.queue !== undefined ? { queueName: names.queue } : {}),
      visibilityTimeout: props.visibilityTimeout,
      retentionPeriod: props.retentionPeriod,
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
    for (const created of [deadLetterQueue, queue]) {
      // enforceSSL made it; without this it would be deleted when its queue leaves the stack.
      const policy = created.node.tryFindChild('Policy');
      if (!(policy instanceof sqs.QueuePolicy)) throw new Error(`${created.node.path}: no TLS-only queue policy`);
      policy.applyRemovalPolicy(QUEUE_REMOVAL_POLICY);
    }
    return { fifo, queue, deadLetterQueue };
  }
}
