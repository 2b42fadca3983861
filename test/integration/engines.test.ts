import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
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

  it("a FIFO receive returns up to the requested number of one group's messages, in order, as SQS does (the patch in sqs-local.ts)", async () => {
    // Prepare: five messages of group a, two of group b
    const url = await createTestQueue(sqs, 'fifo-receive', { fifo: true });
    const send = (group: string, body: string) =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: body,
          MessageGroupId: group,
          MessageDeduplicationId: body,
        }),
      );
    for (const n of [1, 2, 3, 4, 5]) await send('a', `a${n}`);
    await send('b', 'b1');
    await send('b', 'b2');
    const receive = async (max: number) =>
      (
        await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: max,
            VisibilityTimeout: 60,
            MessageSystemAttributeNames: ['MessageGroupId'],
          }),
        )
      ).Messages ?? [];

    // Act: a receive of 4, then one of 10 while those are in flight
    const first = await receive(4);
    const second = await receive(10);

    // Assess: as many of one group as it can, in order; nothing of a group in flight elsewhere
    const bodies = (messages: typeof first) => messages.map((message) => message.Body);
    expect(bodies(first)).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(first.every((message) => message.Attributes?.['MessageGroupId'] === 'a')).toBe(true);
    expect(bodies(second)).toEqual(['b1', 'b2']);
    expect(await receive(10)).toEqual([]);
    // Group a stays locked while one of its messages is in flight; then the rest come in order
    for (const message of [...first.slice(0, 3), ...second]) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle! }));
    }
    expect(await receive(10)).toEqual([]);
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url,
        ReceiptHandle: first[3]!.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    );
    expect(bodies(await receive(10))).toEqual(['a4', 'a5']);
  });

  it('FIFO messages made visible again come back in send order, whatever order they were released in', async () => {
    // Prepare: three messages of one group received together
    const url = await createTestQueue(sqs, 'fifo-release', { fifo: true });
    for (const n of [1, 2, 3]) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: `m${n}`,
          MessageGroupId: 'g',
          MessageDeduplicationId: `m${n}`,
        }),
      );
    }
    const receive = async () =>
      (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 })))
        .Messages ?? [];
    const held = await receive();
    expect(held.map((message) => message.Body)).toEqual(['m1', 'm2', 'm3']);

    // Act: release them first to last, then receive again
    for (const message of held) {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: message.ReceiptHandle!,
          VisibilityTimeout: 0,
        }),
      );
    }
    const again = await receive();

    // Assess
    expect(again.map((message) => message.Body)).toEqual(['m1', 'm2', 'm3']);
  });
});
