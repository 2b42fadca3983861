import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/defaults.ts';
import { localQueueUrl, startSqsLocal, type SqsLocal } from '../../local/engines/sqs-local.ts';

describe('the local SQS server with data on disk (npm start without --in-memory)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sqs-disk-'));
  let sqs: SqsLocal | undefined;
  let client: SQSClient | undefined;
  afterAll(async () => {
    client?.destroy();
    await sqs?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('makes a received message visible again with ChangeMessageVisibility 0, and it survives a restart', async () => {
    // Prepare
    sqs = await startSqsLocal({ dataDir });
    client = new SQSClient({ endpoint: sqs.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const created = await client.send(new CreateQueueCommand({ QueueName: 'disk-queue' }));
    const queueUrl = localQueueUrl(created.QueueUrl!, sqs.endpoint);
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'kept' }));
    const first = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, VisibilityTimeout: 300 }));

    // Act
    await client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: first.Messages![0]!.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    );
    const again = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        VisibilityTimeout: 0,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
    await sqs.stop();
    sqs = await startSqsLocal({ dataDir, port: sqs.port });
    const afterRestart = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, VisibilityTimeout: 0 }));

    // Assess
    expect(again.Messages?.map((message) => message.Body)).toEqual(['kept']);
    expect(again.Messages?.[0]?.Attributes?.['ApproximateReceiveCount']).toBe('2');
    expect(afterRestart.Messages?.map((message) => message.Body)).toEqual(['kept']);
  });
});
