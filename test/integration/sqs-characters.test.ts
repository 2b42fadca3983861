import {
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestQueue, sqsClient } from '../support/engines.ts';

/**
 * The characters a message body may hold, on the local SQS server as on SQS: "#x9 | #xA | #xD |
 * #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF", anything else refused with
 * `InvalidMessageContents` (fauxqs refused every character above U+FFFF: the patch in
 * local/engines/fauxqs-characters.ts).
 */
describe('message body characters on the local SQS server, as SQS allows them', () => {
  let sqs: SQSClient;
  let queueUrl: string;

  beforeAll(async () => {
    sqs = sqsClient();
    queueUrl = await createTestQueue(sqs, 'characters');
  });

  afterAll(() => sqs.destroy());

  async function receiveAll(count: number): Promise<string[]> {
    const bodies: string[] = [];
    for (let round = 0; round < 10 && bodies.length < count; round += 1) {
      const received = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      bodies.push(...(received.Messages ?? []).map((message) => message.Body!));
    }
    return bodies;
  }

  it('a body with characters above U+FFFF (an emoji, U+10FFFF) is accepted by SendMessage and SendMessageBatch, and received as sent', async () => {
    // Prepare
    const one = '{"ID":"order-1","Data":{"note":"\u{1F600} ok"}}';
    const batch = ['\u{10000}', `x\u{10FFFF}y`];

    // Act
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: one }));
    const batched = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: batch.map((MessageBody, index) => ({ Id: `m${index}`, MessageBody })),
      }),
    );

    // Assess (the SDK checks each MD5 of body against the text it sent)
    expect(sent.MessageId).toBeDefined();
    expect(batched.Failed ?? []).toEqual([]);
    expect((await receiveAll(3)).sort()).toEqual([one, ...batch].sort());
  });

  it('a lone half of a surrogate pair, U+FFFE and a control character are refused with InvalidMessageContents', async () => {
    // Act
    const bodies = ['a\uD83Db', 'a\uDE00', '\uFFFE', 'a\u0001'];
    const single = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: bodies[0] })).then(
      () => 'accepted',
      (error: Error) => error.name,
    );
    const batched = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.map((MessageBody, index) => ({ Id: `bad${index}`, MessageBody })),
      }),
    );

    // Assess
    expect(single).toMatch(/InvalidMessageContents$/);
    expect(batched.Successful ?? []).toEqual([]);
    expect((batched.Failed ?? []).map((failure) => failure.Code)).toEqual(bodies.map(() => 'InvalidMessageContents'));
  });
});
