import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { TableKeys } from '../../core/keys.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';

describe('local engines', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  it('DynamoDB Local creates the event table with the shared key names', async () => {
    const tableName = await createTestTable(dynamo);
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: TableKeys.partitionKey, KeyType: 'HASH' },
      { AttributeName: TableKeys.sortKey, KeyType: 'RANGE' },
    ]);
  });

  it('the SQS server creates a FIFO queue reachable on loopback', async () => {
    const url = await createTestQueue(sqs, 'engines', { fifo: true });
    expect(url.startsWith(inject('sqsEndpoint'))).toBe(true);
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
    expect(Attributes?.['FifoQueue']).toBe('true');
  });

  it('a FIFO receive returns up to the requested number of one group\'s messages, in order, as SQS does (the patch in sqs-local.ts)', async () => {
    // Prepare: five messages of group a, two of group b
    const url = await createTestQueue(sqs, 'fifo-receive', { fifo: true });
    const send = (group: string, body: string) =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageGroupId: group, MessageDeduplicationId: body }));
    for (const n of [1, 2, 3, 4, 5]) await send('a', `a${n}`);
    await send('b', 'b1');
    await send('b', 'b2');
    const receive = async (max: number) =>
      (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: max, VisibilityTimeout: 60, MessageSystemAttributeNames: ['MessageGroupId'] })))
        .Messages ?? [];

    // Act: a receive of 4, then one of 10 while those are in flight
    const first = await receive(4);
    const second = await receive(10);

    // Assess: each group's messages in order; none of a group whose message is in flight elsewhere
    const bodies = (messages: typeof first) => messages.map((message) => message.Body);
    const ofGroup = (messages: typeof first, group: string) => bodies(messages.filter((message) => message.Attributes?.['MessageGroupId'] === group));
    expect(first).toHaveLength(4);
    const firstA = ofGroup(first, 'a');
    const firstB = ofGroup(first, 'b');
    expect(firstA).toEqual(['a1', 'a2', 'a3', 'a4', 'a5'].slice(0, firstA.length));
    expect(firstB).toEqual(['b1', 'b2'].slice(0, firstB.length));
    expect(firstA.length).toBeGreaterThan(1);
    expect(second).toEqual([]);
    // Once the first receive's messages are deleted or released, the rest come in order
    for (const message of first) {
      if (message.Body === firstA.at(-1)) {
        await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 0 }));
      } else {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle! }));
      }
    }
    const rest = await receive(10);
    expect(ofGroup(rest, 'a')).toEqual(['a1', 'a2', 'a3', 'a4', 'a5'].slice(firstA.length - 1));
    expect(ofGroup(rest, 'b')).toEqual(['b1', 'b2'].slice(firstB.length));
  });
});
