import { GetQueueAttributesCommand, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCAL_REGION } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { Poller, type BatchReport, type SqsHandler } from '../../local/poller.ts';
import { createTestQueue, sqsClient } from '../support/engines.ts';

describe('the local poller (Lambda event source mapping behaviour)', () => {
  const sqs = sqsClient();
  const pollers: Poller[] = [];

  afterAll(async () => {
    await Promise.all(pollers.map((poller) => poller.stop()));
    sqs.destroy();
  });

  async function arnOf(queueUrl: string): Promise<string> {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    );
    return Attributes!['QueueArn']!;
  }

  async function depth(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(Attributes['ApproximateNumberOfMessages']),
      inFlight: Number(Attributes['ApproximateNumberOfMessagesNotVisible']),
    };
  }

  function startPoller(queueUrl: string, queueArn: string, handler: SqsHandler, reports: BatchReport[]): Poller {
    const poller = new Poller({
      sqs,
      queueUrl,
      queueArn,
      region: LOCAL_REGION,
      handler,
      batchSize: 10,
      batchingWindowSeconds: 0,
      waitTimeSeconds: 1,
      onBatch: (report) => reports.push(report),
    });
    pollers.push(poller);
    poller.start();
    return poller;
  }

  it('hands the handler Lambda-shaped FIFO records', async () => {
    // Prepare
    const queueUrl = await createTestQueue(sqs, 'poller-shape', { fifo: true });
    const queueArn = await arnOf(queueUrl);
    const body = '{"hello":"world"}';
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: body,
        MessageGroupId: 'order-1',
        MessageDeduplicationId: 'dedup-1',
        MessageAttributes: {
          Trace: { DataType: 'String', StringValue: 'abc' },
          Count: { DataType: 'Number', StringValue: '3' },
        },
      }),
    );
    const events: SQSEvent[] = [];
    const reports: BatchReport[] = [];

    // Act
    const poller = startPoller(
      queueUrl,
      queueArn,
      async (event) => {
        events.push(event);
        return { batchItemFailures: [] };
      },
      reports,
    );
    await waitUntil(async () => reports.length === 1, 'one batch', 10_000);
    await poller.stop();

    // Assess
    const [record] = events[0]!.Records;
    expect(record).toMatchObject({
      body,
      md5OfBody: createHash('md5').update(body).digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: LOCAL_REGION,
      messageAttributes: {
        Trace: { stringValue: 'abc', stringListValues: [], binaryListValues: [], dataType: 'String' },
        Count: { stringValue: '3', stringListValues: [], binaryListValues: [], dataType: 'Number' },
      },
    });
    expect(record!.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(record!.receiptHandle.length).toBeGreaterThan(0);
    expect(record!.attributes).toMatchObject({
      ApproximateReceiveCount: '1',
      MessageGroupId: 'order-1',
      MessageDeduplicationId: 'dedup-1',
    });
    expect(record!.attributes.SequenceNumber).toMatch(/^\d+$/);
    expect(Number(record!.attributes.SentTimestamp)).toBeGreaterThan(Date.now() - 60_000);
    expect(reports).toEqual([{ received: 1, deleted: 1, failed: 0 }]);
    expect(await depth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('deletes what the partial batch response did not fail and leaves the rest to come back', async () => {
    // Prepare
    const queueUrl = await createTestQueue(sqs, 'poller-partial', { attributes: { VisibilityTimeout: '1' } });
    const queueArn = await arnOf(queueUrl);
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: ['a', 'b', 'c'].map((id) => ({ Id: id, MessageBody: id })),
      }),
    );
    const deliveries = new Map<string, number>();
    const reports: BatchReport[] = [];

    // Act: fail "b" the first time it comes
    const poller = startPoller(
      queueUrl,
      queueArn,
      async (event): Promise<SQSBatchResponse> => {
        const failures = [];
        for (const record of event.Records) {
          const seen = (deliveries.get(record.body) ?? 0) + 1;
          deliveries.set(record.body, seen);
          if (record.body === 'b' && seen === 1) failures.push({ itemIdentifier: record.messageId });
        }
        return { batchItemFailures: failures };
      },
      reports,
    );
    await waitUntil(
      async () => deliveries.get('b') === 2 && (await depth(queueUrl)).inFlight === 0,
      'b delivered again',
      15_000,
    );
    await poller.stop();

    // Assess
    expect(Object.fromEntries(deliveries)).toEqual({ a: 1, b: 2, c: 1 });
    expect(await depth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect(reports.reduce((sum, report) => sum + report.failed, 0)).toBe(1);
  });

  it('leaves the whole batch when the handler throws, as a Lambda function error does', async () => {
    // Prepare
    const queueUrl = await createTestQueue(sqs, 'poller-throw', { attributes: { VisibilityTimeout: '30' } });
    const queueArn = await arnOf(queueUrl);
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: ['x', 'y'].map((id) => ({ Id: id, MessageBody: id })),
      }),
    );
    const reports: BatchReport[] = [];

    // Act
    const poller = startPoller(
      queueUrl,
      queueArn,
      async () => {
        throw new Error('handler broke');
      },
      reports,
    );
    await waitUntil(
      async () => reports.reduce((sum, report) => sum + report.received, 0) === 2,
      'both received',
      10_000,
    );
    await poller.stop();

    // Assess
    expect(reports.every((report) => report.deleted === 0 && report.error?.message === 'handler broke')).toBe(true);
    expect(await depth(queueUrl)).toEqual({ visible: 0, inFlight: 2 });
  });
});
