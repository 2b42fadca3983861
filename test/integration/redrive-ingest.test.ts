import { DeleteMessageCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import type { RedriveReport } from '../../core/redrive-run.ts';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { runLocalRedrive, type CfnTemplate } from '../../local/workflow-runner.ts';
import { createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
import { createRedriveQueues, redriveTemplate } from './redrive-support.ts';

async function receiveOne(sqs: SQSClient, queueUrl: string): Promise<Message | undefined> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 1,
      VisibilityTimeout: 60,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
    }),
  );
  return Messages[0];
}

/** The record Lambda's event source mapping would hand the function for this message. */
function asRecord(message: Message): SQSRecord {
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (value.StringValue !== undefined) attributes[name] = value.StringValue;
  }
  return sqsRecord(message.Body!, {
    messageId: message.MessageId!,
    fifo: {
      groupId: message.Attributes!['MessageGroupId']!,
      ...(message.Attributes?.['MessageDeduplicationId']
        ? { deduplicationId: message.Attributes['MessageDeduplicationId'] }
        : {}),
    },
    messageAttributes: attributes,
  });
}

describe('redrive end to end: rejected by the ingest handler, fixed by the workflow, stored by the handler', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  let fifo: CfnTemplate;

  beforeAll(() => {
    fifo = redriveTemplate('fifo');
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  it('FIFO: three events of one stream rejected for a schema error come back in order and are stored; the unfixable one stays', async () => {
    // Prepare: the real handler dead-letters events without EmitterType (and one with a bad EventType)
    const tableName = await createTestTable(dynamo, 'redrive-e2e');
    const queueUrls = await createRedriveQueues(sqs, true);
    const handler = createIngestHandler({ dynamo, sqs, tableName, dlqUrl: queueUrls.deadLetter });
    const rejected = await handler(
      sqsEvent([
        ...[1, 2, 3].map((step) =>
          sqsRecord(validEvent({ ID: 'e2e-order', EventId: `step-${step}`, EmitterType: undefined }), {
            fifo: { groupId: 'e2e-order' },
          }),
        ),
        sqsRecord(validEvent({ ID: 'e2e-other', EventType: 'lower case', EmitterType: undefined }), {
          fifo: { groupId: 'e2e-other' },
        }),
      ]),
      lambdaContext(),
    );
    expect(rejected.batchItemFailures).toEqual([]);

    // Act: the workflow as synthesized, then the handler consumes what came back
    const result = await runLocalRedrive({
      template: fifo,
      sqsEndpoint: inject('sqsEndpoint'),
      queueUrls,
      input: { fix: { set: { EmitterType: 'SYSTEM' } } },
    });
    const consumed: SQSRecord[] = [];
    for (;;) {
      const message = await receiveOne(sqs, queueUrls.source);
      if (!message) break;
      const record = asRecord(message);
      const response = await handler(sqsEvent([record]), lambdaContext());
      expect(response.batchItemFailures).toEqual([]);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrls.source, ReceiptHandle: message.ReceiptHandle! }));
      consumed.push(record);
    }

    // Assess: the report
    expect(result.status).toBe('SUCCEEDED');
    const report = (result as { output: RedriveReport }).output;
    expect(report.counts).toMatchObject({ received: 4, redriven: 3, stillRejected: 1 });
    expect(report.stayed).toEqual([
      expect.objectContaining({
        ID: 'e2e-other',
        outcome: 'stillRejected',
        reason: 'SchemaViolation',
        detail: 'EventType: "lower case" must be upper snake case like EVENT_EXAMPLE',
      }),
    ]);
    // The handler saw them in order, each marked as redriven once
    expect(consumed.map((record) => JSON.parse(record.body).EventId)).toEqual(['step-1', 'step-2', 'step-3']);
    expect(consumed.map((record) => record.messageAttributes[MessageAttributeNames.redriveCount]?.stringValue)).toEqual(
      ['1', '1', '1'],
    );
    // The stream holds the fixed events at versions 1..3
    const store = new DynamoDbEventStore({ client: dynamo, tableName });
    const stream = await store.readStream('e2e-order');
    expect(stream.version).toBe(3);
    expect(stream.events.map((stored) => [stored.Version, stored.EventId, stored.EmitterType])).toEqual([
      [1, 'step-1', 'SYSTEM'],
      [2, 'step-2', 'SYSTEM'],
      [3, 'step-3', 'SYSTEM'],
    ]);
    // Only the unfixable one is left in the DLQ, with the handler's reason
    const left = await receiveOne(sqs, queueUrls.deadLetter);
    expect(JSON.parse(left!.Body!).ID).toBe('e2e-other');
    expect(left!.MessageAttributes?.[MessageAttributeNames.rejectionReason]?.StringValue).toBe('SchemaViolation');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrls.deadLetter, ReceiptHandle: left!.ReceiptHandle! }));
    expect(await receiveOne(sqs, queueUrls.deadLetter)).toBeUndefined();
  });
});
