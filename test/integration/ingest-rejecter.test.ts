import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { SqsRejecter, deadLetterGroupId, normaliseRedriveCount } from '../../adapters/sqs-rejecter.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { createTestQueue, sqsClient } from '../support/engines.ts';
import { attribute, receiveExactly } from './ingest-helpers.ts';

describe('SqsRejecter on fauxqs', () => {
  const sqs = sqsClient();
  afterAll(() => sqs.destroy());

  it('sends the body unchanged with the five rejection attributes to a standard DLQ', async () => {
    // Prepare
    const queueUrl = await createTestQueue(sqs, 'rejecter-dlq');
    const rejecter = new SqsRejecter({ client: sqs, queueUrl, now: () => new Date('2026-01-02T03:04:05.678Z') });
    const body = '{"Timestamp":"yesterday", "ID":"order-1"}';

    // Act
    const messageId = await rejecter.reject({
      body,
      reason: RejectionReason.SchemaViolation,
      detail: 'Timestamp: "yesterday" is not an ISO-8601 date-time with a zone',
      sourceMessageId: 'source-1',
      redriveCount: '3',
      streamId: 'order-1',
    });

    // Assess
    const [message] = await receiveExactly(sqs, queueUrl, 1);
    expect(rejecter.fifo).toBe(false);
    expect(message?.MessageId).toBe(messageId);
    expect(message?.Body).toBe(body);
    expect(message?.MessageAttributes).toEqual({
      [MessageAttributeNames.rejectionReason]: { DataType: 'String', StringValue: 'SchemaViolation' },
      [MessageAttributeNames.rejectionDetail]: {
        DataType: 'String',
        StringValue: 'Timestamp: "yesterday" is not an ISO-8601 date-time with a zone',
      },
      [MessageAttributeNames.rejectedAt]: { DataType: 'String', StringValue: '2026-01-02T03:04:05.678Z' },
      [MessageAttributeNames.sourceMessageId]: { DataType: 'String', StringValue: 'source-1' },
      [MessageAttributeNames.redriveCount]: { DataType: 'String', StringValue: '3' },
    });
  });

  it('cuts RejectionDetail to 1,000 characters and leaves the body whole', async () => {
    // Prepare
    const queueUrl = await createTestQueue(sqs, 'rejecter-dlq');
    const rejecter = new SqsRejecter({ client: sqs, queueUrl });
    const body = JSON.stringify({ ID: 'order-1', note: 'z'.repeat(3000) });

    // Act
    await rejecter.reject({
      body,
      reason: RejectionReason.SchemaViolation,
      detail: 'y'.repeat(5000),
      sourceMessageId: 'm-long',
    });

    // Assess
    const [message] = await receiveExactly(sqs, queueUrl, 1);
    expect(attribute(message!, MessageAttributeNames.rejectionDetail)).toBe(`${'y'.repeat(997)}...`);
    expect(message?.Body).toBe(body);
  });

  it('groups FIFO sends by stream id when SQS accepts it, else by the source group, else by a hash', async () => {
    // Prepare
    const queueUrl = await createTestQueue(sqs, 'rejecter-dlq', { fifo: true });
    const rejecter = new SqsRejecter({ client: sqs, queueUrl });
    const longId = `order-${'x'.repeat(200)}`;
    const base = { body: '{}', reason: RejectionReason.InvalidJson, detail: 'body: not JSON' };

    // Act
    await rejecter.reject({ ...base, sourceMessageId: 'm-1', streamId: 'order-1', sourceGroupId: 'group-1' });
    await rejecter.reject({ ...base, sourceMessageId: 'm-2', streamId: longId, sourceGroupId: 'group-2' });
    await rejecter.reject({ ...base, sourceMessageId: 'm-3', streamId: 'Ünïcödé' });

    // Assess
    const messages = await receiveExactly(sqs, queueUrl, 3);
    const groups = new Map(
      messages.map((message) => [
        attribute(message, MessageAttributeNames.sourceMessageId),
        message.Attributes?.['MessageGroupId'],
      ]),
    );
    expect(rejecter.fifo).toBe(true);
    expect(Object.fromEntries(groups)).toEqual({
      'm-1': 'order-1',
      'm-2': 'group-2',
      'm-3': `sha256-${createHash('sha256').update('Ünïcödé').digest('hex')}`,
    });
    expect(messages.map((message) => message.Attributes?.['MessageDeduplicationId']).sort()).toEqual([
      'm-1',
      'm-2',
      'm-3',
    ]);
  });

  it('fails with the SDK error when the DLQ does not exist (the caller reports the record failed)', async () => {
    // Prepare
    const queueUrl = `${await createTestQueue(sqs, 'rejecter-dlq')}-missing`;
    const rejecter = new SqsRejecter({ client: sqs, queueUrl });

    // Act
    const error = await rejecter
      .reject({ body: '{}', reason: RejectionReason.InvalidJson, detail: 'body: not JSON', sourceMessageId: 'm-1' })
      .catch((caught: unknown) => caught);

    // Assess
    expect((error as Error).name).toBe('QueueDoesNotExist');
  });

  it.each([
    [undefined, '0'],
    ['0', '0'],
    ['3', '3'],
    [' 7 ', '7'],
    ['007', '7'],
    ['-1', '0'],
    ['2.5', '0'],
    ['many', '0'],
  ])('keeps a RedriveCount of %j as %j', (value, expected) => {
    expect(normaliseRedriveCount(value)).toBe(expected);
  });

  it('uses the source group when the stream id is missing, and hashes the message id when both are', () => {
    expect(deadLetterGroupId(undefined, 'group-1', 'm-1')).toBe('group-1');
    expect(deadLetterGroupId(undefined, undefined, 'm-1')).toBe(
      `sha256-${createHash('sha256').update('m-1').digest('hex')}`,
    );
  });
});
