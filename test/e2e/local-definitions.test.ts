import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { synthesizeTemplate } from '../../infra/synth.ts';
import { createEventTable, createQueues } from '../../local/provision.ts';
import { loadDefinitions } from '../../local/template.ts';
import { dynamoClient, sqsClient, uniqueName } from '../support/engines.ts';

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}

/** The template's resources of one type, read straight from a fresh synth (not through local/template.ts). */
function resourcesOf(template: Record<string, unknown>, type: string): Resource[] {
  return Object.values(template['Resources'] as Record<string, Resource>).filter((resource) => resource.Type === type);
}

describe('the local table and queues match the CDK template', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();

  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  it('creates the table with the template KeySchema, AttributeDefinitions and StreamSpecification', async () => {
    // Prepare
    const [table] = resourcesOf(synthesizeTemplate({ queue: 'standard' }), 'AWS::DynamoDB::Table');
    const tableName = uniqueName('definitions');

    // Act
    await createEventTable(dynamo, tableName);
    const described = (await dynamo.send(new DescribeTableCommand({ TableName: tableName }))).Table!;

    // Assess
    expect(described.KeySchema).toEqual(table!.Properties['KeySchema']);
    expect(described.AttributeDefinitions).toEqual(table!.Properties['AttributeDefinitions']);
    expect(described.StreamSpecification).toEqual({
      StreamEnabled: true,
      StreamViewType: (table!.Properties['StreamSpecification'] as { StreamViewType: string }).StreamViewType,
    });
  });

  it.each(['standard', 'fifo'] as const)(
    'creates the %s queue and DLQ with the template attributes and redrive policy',
    async (mode) => {
      // Prepare
      const template = synthesizeTemplate({ queue: mode });
      const queues = resourcesOf(template, 'AWS::SQS::Queue');
      const source = queues.find((queue) => queue.Properties['RedrivePolicy'] !== undefined)!;
      const deadLetter = queues.find((queue) => queue.Properties['RedrivePolicy'] === undefined)!;
      const definitions = await loadDefinitions(mode);

      // Act
      const created = await createQueues(sqs, inject('sqsEndpoint'), definitions, {
        name: uniqueName(`definitions-${mode}`),
      });
      const attributesOf = async (queueUrl: string) =>
        (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }))).Attributes!;
      const sourceAttributes = await attributesOf(created.queueUrl);
      const deadLetterAttributes = await attributesOf(created.deadLetterQueueUrl);

      // Assess
      const fifo = mode === 'fifo';
      expect(created.queueUrl.endsWith('.fifo')).toBe(fifo);
      expect(created.deadLetterQueueUrl.endsWith('.fifo')).toBe(fifo);
      expect(source.Properties['FifoQueue'] ?? false).toBe(fifo);
      expect(sourceAttributes['FifoQueue'] ?? 'false').toBe(String(fifo));
      expect(deadLetterAttributes['FifoQueue'] ?? 'false').toBe(String(fifo));
      expect(sourceAttributes['ContentBasedDeduplication'] ?? 'false').toBe(
        String(source.Properties['ContentBasedDeduplication'] ?? false),
      );
      expect(sourceAttributes['VisibilityTimeout']).toBe(String(source.Properties['VisibilityTimeout']));
      expect(deadLetterAttributes['MessageRetentionPeriod']).toBe(
        String(deadLetter.Properties['MessageRetentionPeriod']),
      );
      const redrive = JSON.parse(sourceAttributes['RedrivePolicy']!) as {
        deadLetterTargetArn: string;
        maxReceiveCount: number;
      };
      expect(redrive).toEqual({
        deadLetterTargetArn: deadLetterAttributes['QueueArn'],
        maxReceiveCount: Number((source.Properties['RedrivePolicy'] as { maxReceiveCount: number }).maxReceiveCount),
      });
    },
  );

  it('updates queues kept from a run with other settings instead of failing', async () => {
    // Prepare: queues as an earlier run left them (another visibility timeout)
    const definitions = await loadDefinitions('standard');
    const name = uniqueName('definitions-again');
    await createQueues(sqs, inject('sqsEndpoint'), definitions, { name, visibilityTimeout: 7 });

    // Act
    const again = await createQueues(sqs, inject('sqsEndpoint'), definitions, { name });

    // Assess
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: again.queueUrl,
        AttributeNames: ['VisibilityTimeout', 'RedrivePolicy'],
      }),
    );
    expect(Attributes?.['VisibilityTimeout']).toBe(String(definitions.queue.visibilityTimeout));
    expect(JSON.parse(Attributes?.['RedrivePolicy'] ?? '{}')).toEqual({
      deadLetterTargetArn: again.deadLetterQueueArn,
      maxReceiveCount: definitions.queue.maxReceiveCount,
    });
  });

  it('reads the consumer settings from the event source mapping', async () => {
    // Prepare
    const [mapping] = resourcesOf(synthesizeTemplate({ queue: 'fifo' }), 'AWS::Lambda::EventSourceMapping');

    // Act
    const { consumer } = await loadDefinitions('fifo');

    // Assess
    expect(consumer.batchSize).toBe(mapping!.Properties['BatchSize']);
    expect(consumer.maximumBatchingWindowInSeconds).toBe(mapping!.Properties['MaximumBatchingWindowInSeconds'] ?? 0);
    expect(consumer.maximumConcurrency).toBe(
      (mapping!.Properties['ScalingConfig'] as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency,
    );
    expect(consumer.reportBatchItemFailures).toBe(true);
  });
});
