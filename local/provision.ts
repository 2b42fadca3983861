import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { localQueueUrl } from './engines/sqs-local.ts';
import { loadDefinitions, type QueueDefinition, type StackDefinitions, type TableDefinition } from './template.ts';

/**
 * Create the event table from the stack's template (its KeySchema, AttributeDefinitions,
 * StreamSpecification and TimeToLiveSpecification; billing on demand), or a subscription's
 * table from its definition. An existing table of that name is kept (its TTL turned on when the
 * definition has one), so an on-disk stack restarts with its events.
 *
 * @example
 * ```ts
 * await createEventTable(new DynamoDBClient({ endpoint }), 'events');
 * ```
 */
export async function createEventTable(
  client: DynamoDBClient,
  tableName: string,
  definition?: TableDefinition,
): Promise<void> {
  const table = definition ?? (await loadDefinitions('standard')).table;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: table.AttributeDefinitions,
        KeySchema: table.KeySchema,
        BillingMode: 'PAY_PER_REQUEST',
        ...(table.StreamSpecification
          ? { StreamSpecification: { StreamEnabled: true, StreamViewType: table.StreamSpecification.StreamViewType } }
          : {}),
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
    await client.send(new DescribeTableCommand({ TableName: tableName }));
  }
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: tableName });
  if (table.TimeToLiveSpecification?.Enabled)
    await enableTimeToLive(client, tableName, table.TimeToLiveSpecification.AttributeName);
}

/** Turn TTL on unless it already is (UpdateTimeToLive refuses to enable it twice). */
async function enableTimeToLive(client: DynamoDBClient, tableName: string, attributeName: string): Promise<void> {
  const { TimeToLiveDescription: current } = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
  if (
    (current?.TimeToLiveStatus === 'ENABLED' || current?.TimeToLiveStatus === 'ENABLING') &&
    current.AttributeName === attributeName
  )
    return;
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: attributeName, Enabled: true },
    }),
  );
}

/** The SQS attributes a queue definition from the template stands for. */
export function queueAttributes(definition: QueueDefinition, deadLetterArn?: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  if (definition.fifo) attributes['FifoQueue'] = 'true';
  if (definition.contentBasedDeduplication) attributes['ContentBasedDeduplication'] = 'true';
  if (definition.visibilityTimeout !== undefined)
    attributes['VisibilityTimeout'] = String(definition.visibilityTimeout);
  if (definition.maximumMessageSize !== undefined)
    attributes['MaximumMessageSize'] = String(definition.maximumMessageSize);
  if (definition.messageRetentionPeriod !== undefined) {
    attributes['MessageRetentionPeriod'] = String(definition.messageRetentionPeriod);
  }
  if (deadLetterArn && definition.maxReceiveCount !== undefined) {
    attributes['RedrivePolicy'] = JSON.stringify({
      deadLetterTargetArn: deadLetterArn,
      maxReceiveCount: definition.maxReceiveCount,
    });
  }
  return attributes;
}

export interface LocalQueues {
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly deadLetterQueueArn: string;
}

async function createQueue(client: SQSClient, endpoint: string, name: string, attributes: Record<string, string>) {
  let url: string;
  try {
    const created = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    url = localQueueUrl(created.QueueUrl!, endpoint);
  } catch (error) {
    // A queue kept on disk from a run with other settings (the template changed): update it.
    if (!(error instanceof Error && /QueueNameExists|QueueAlreadyExists/.test(error.name))) throw error;
    url = localQueueUrl((await client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!, endpoint);
    const { FifoQueue: _fifo, ...changeable } = attributes;
    await client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: changeable }));
  }
  const described = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return { url, arn: described.Attributes!['QueueArn']! };
}

export interface CreateQueuesOptions {
  /** The source queue's name without the `.fifo` suffix; the DLQ is `<name>-dlq`. */
  readonly name: string;
  /** Overrides the template's visibility timeout of the source queue (tests of redelivery). */
  readonly visibilityTimeout?: number;
}

/**
 * Create the source queue and its DLQ from the stack's template (FIFO, content-based
 * deduplication, visibility timeout, retention, redrive policy with its maxReceiveCount).
 * Returns loopback URLs that the SDK and the handler can use as they are.
 */
export async function createQueues(
  client: SQSClient,
  endpoint: string,
  definitions: Pick<StackDefinitions, 'queue' | 'deadLetterQueue'>,
  options: CreateQueuesOptions,
): Promise<LocalQueues> {
  const suffix = definitions.queue.fifo ? '.fifo' : '';
  const dlq = await createQueue(
    client,
    endpoint,
    `${options.name}-dlq${suffix}`,
    queueAttributes(definitions.deadLetterQueue),
  );
  const sourceAttributes = queueAttributes(definitions.queue, dlq.arn);
  if (options.visibilityTimeout !== undefined)
    sourceAttributes['VisibilityTimeout'] = String(options.visibilityTimeout);
  const source = await createQueue(client, endpoint, `${options.name}${suffix}`, sourceAttributes);
  return { queueUrl: source.url, queueArn: source.arn, deadLetterQueueUrl: dlq.url, deadLetterQueueArn: dlq.arn };
}
