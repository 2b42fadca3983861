import { SendMessageBatchCommand, type SendMessageBatchCommandOutput, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { publishOutcomes } from '../../cli/outcomes.ts';
import { publishMessages, type Outgoing } from '../../cli/publish.ts';
import type { Target } from '../../cli/target.ts';
import { LOCAL_ACCOUNT, LOCAL_REGION } from '../../local/defaults.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { drainQueue, parsedEvent, parsedGroup, validEvent, validGroup } from '../support/factories.ts';

function event(streamId: string, n: number): Outgoing {
  return { body: JSON.stringify({ ID: streamId, n }), streamId, eventId: `${streamId}-${n}` };
}

function targetOn(
  sqs: SQSClient,
  queueUrl: string,
  fifo: boolean,
  table?: { dynamo: DynamoDBClient; tableName: string },
): Target {
  return {
    kind: 'local',
    label: 'test queue',
    region: LOCAL_REGION,
    queueMode: fifo ? 'fifo' : 'standard',
    queueUrl,
    deadLetterQueueUrl: queueUrl,
    tableName: table?.tableName ?? 'unused',
    stateMachineArn: 'unused',
    sqs,
    dynamo: table?.dynamo ?? (undefined as never),
    sfn: undefined as never,
    close: () => undefined,
  };
}

describe('publish: batches of 10 in parallel', () => {
  const sqs = sqsClient();

  afterAll(() => sqs.destroy());

  it('keeps each stream in send order on a FIFO queue, with group and deduplication ids', async () => {
    // Prepare
    const queueUrl = await createTestQueue(sqs, 'publish-order', { fifo: true });
    const messages = Array.from({ length: 100 }, (_, index) => event(`s${index % 5}`, Math.floor(index / 5)));

    // Act
    const report = await publishMessages(targetOn(sqs, queueUrl, true), messages, { parallel: 4 });

    // Assess
    expect(report).toMatchObject({ sent: 100, failed: 0, errors: [] });
    // Two empty receives in a row: a group whose messages were just deleted may show again only on the next.
    const received = await drainQueue(sqs, queueUrl, { delete: true, emptyReceives: 2 });
    expect(received).toHaveLength(100);
    for (let stream = 0; stream < 5; stream += 1) {
      const ofStream = received.filter((message) => message.Attributes?.['MessageGroupId'] === `s${stream}`);
      expect(ofStream.map((message) => (JSON.parse(message.Body!) as { n: number }).n)).toEqual(
        Array.from({ length: 20 }, (_, n) => n),
      );
    }
    expect(
      received.every((message) => /^[0-9a-f]{64}$/.test(message.Attributes?.['MessageDeduplicationId'] ?? '')),
    ).toBe(true);
  });

  it('retries entries SQS failed and a batch that could not be sent, and counts sender faults', async () => {
    // Prepare: a real client on fauxqs, wrapped to inject what fauxqs cannot produce (a fault
    // injection, not a mock of SQS): the first batch is refused outright (network error), the
    // second has one entry failed by the server (retryable), and an entry whose body is
    // "refuse-me" is failed as the sender's fault (not retried).
    const queueUrl = await createTestQueue(sqs, 'publish-retry');
    let calls = 0;
    const faulty = {
      send: async (command: SendMessageBatchCommand): Promise<SendMessageBatchCommandOutput> => {
        // The queue's size is read as it is.
        if (!(command instanceof SendMessageBatchCommand)) return sqs.send(command) as never;
        calls += 1;
        if (calls === 1) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
        const entries = command.input.Entries ?? [];
        const refused = entries.filter(
          (entry) => entry.MessageBody === 'refuse-me' || (calls === 2 && entry === entries[0]),
        );
        const forwarded = entries.filter((entry) => !refused.includes(entry));
        const result =
          forwarded.length > 0
            ? await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: forwarded }))
            : { Successful: [], Failed: [] };
        return {
          $metadata: {},
          Successful: result.Successful ?? [],
          Failed: [
            ...(result.Failed ?? []),
            ...refused.map((entry) => ({
              Id: entry.Id!,
              Code: entry.MessageBody === 'refuse-me' ? 'InvalidMessageContents' : 'InternalError',
              SenderFault: entry.MessageBody === 'refuse-me',
              Message: entry.MessageBody === 'refuse-me' ? 'refused' : 'try again',
            })),
          ],
        };
      },
    } as unknown as SQSClient;
    const messages = [
      ...Array.from({ length: 25 }, (_, index) => event('s', index)),
      { body: 'refuse-me', streamId: undefined, eventId: undefined },
    ];

    // Act
    const report = await publishMessages(targetOn(faulty, queueUrl, false), messages, { parallel: 1 });

    // Assess
    expect(report).toMatchObject({ sent: 25, failed: 1, errors: ['InvalidMessageContents: refused'] });
    const bodies = (await drainQueue(sqs, queueUrl, { delete: true, emptyReceives: 2 })).map(
      (message) => message.Body!,
    );
    expect(bodies.sort()).toEqual(
      messages
        .slice(0, 25)
        .map((message) => message.body)
        .sort(),
    );
  });

  it("fills each request up to the queue's MaximumMessageSize (1 MiB queues take 10 bodies of 100 KB at once)", async () => {
    // Prepare: a 1 MiB queue and a 256 KiB one; count the batch requests
    const large = await createTestQueue(sqs, 'publish-1mib', { attributes: { MaximumMessageSize: '1048576' } });
    const small = await createTestQueue(sqs, 'publish-256kib', { attributes: { MaximumMessageSize: '262144' } });
    const counting = sqsClient();
    const batches: number[] = [];
    counting.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand')
          batches.push((args.input as { Entries: unknown[] }).Entries.length);
        return next(args);
      },
      { step: 'initialize', name: 'countBatches' },
    );
    const messages = Array.from({ length: 10 }, (_, n) => ({
      body: `{"n":${n},"pad":"${'x'.repeat(100 * 1024)}"}`,
      streamId: undefined,
      eventId: undefined,
    }));

    // Act
    try {
      const intoLarge = await publishMessages(targetOn(counting, large, false), messages, { parallel: 1 });
      const largeBatches = batches.splice(0);
      const intoSmall = await publishMessages(targetOn(counting, small, false), messages, { parallel: 1 });

      // Assess
      expect(intoLarge).toMatchObject({ sent: 10, failed: 0 });
      expect(largeBatches).toEqual([10]);
      expect(intoSmall).toMatchObject({ sent: 10, failed: 0 });
      expect(batches).toEqual([2, 2, 2, 2, 2]);
    } finally {
      counting.destroy();
    }
    expect(await drainQueue(sqs, large, { delete: true, emptyReceives: 2 })).toHaveLength(10);
    expect(await drainQueue(sqs, small, { delete: true, emptyReceives: 2 })).toHaveLength(10);
  });

  it("refuses at once a body over the queue's MaximumMessageSize (a group too large for one message), sending the rest", async () => {
    // Prepare: a 1 MiB queue; a group whose body is 1,100,000 bytes, and a small event
    const queueUrl = await createTestQueue(sqs, 'publish-too-large', { attributes: { MaximumMessageSize: '1048576' } });
    const counting = sqsClient();
    let batches = 0;
    counting.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand') batches += 1;
        return next(args);
      },
      { step: 'initialize', name: 'countBatches' },
    );
    const body = JSON.stringify({ ID: 'big', Events: [{ pad: 'x'.repeat(550_000) }, { pad: 'y'.repeat(549_960) }] });
    const large: Outgoing = { body, streamId: 'big', eventId: undefined, events: 2 };

    // Act
    try {
      const report = await publishMessages(targetOn(counting, queueUrl, false), [large, event('small', 1)], {
        parallel: 1,
      });

      // Assess: one request, for the small one; the group's refusal says why, no retries
      expect(report).toMatchObject({
        sent: 1,
        failed: 1,
        errors: [
          `a group of 2 events of stream big takes ${Buffer.byteLength(body)} bytes, over the queue's MaximumMessageSize of 1048576; split the group into several messages`,
        ],
      });
      expect(batches).toBe(1);
    } finally {
      counting.destroy();
    }
    expect(await drainQueue(sqs, queueUrl, { delete: true, emptyReceives: 2 })).toHaveLength(1);
  });

  it('gives up after the attempts and reports the last error', async () => {
    // Prepare: fault injection, every send fails
    const failing = {
      send: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { name: 'Error' });
      },
    } as unknown as SQSClient;

    // Act
    const report = await publishMessages(
      targetOn(failing, `http://127.0.0.1:1/${LOCAL_ACCOUNT}/q`, false),
      [event('s', 1)],
      { attempts: 2 },
    );

    // Assess
    expect(report).toMatchObject({ sent: 0, failed: 1, errors: ['Error: connect ECONNREFUSED 127.0.0.1:1'] });
  });
});

describe('publish outcomes of groups (cli/outcomes.ts, on DynamoDB Local)', () => {
  const sqs = sqsClient();
  const dynamo = dynamoClient();

  afterAll(() => {
    sqs.destroy();
    dynamo.destroy();
  });

  it('a group is stored when every one of its events is, at its first version with its count; not when only some EventIds are', async () => {
    // Prepare: a stored group of 3 (versions 2 to 4 after a single event), and a second group that
    // reuses the first group's explicit EventIds with another last event (the store refuses it)
    const tableName = await createTestTable(dynamo, 'publish-outcomes');
    const store = new DynamoDbEventStore({ client: dynamo, tableName });
    const single = validEvent({ ID: 'order-1', EventId: 'single' });
    await store.appendToStream('order-1', [parsedEvent(single)]);
    const events = [{ EventId: 'placed' }, { EventId: 'reserved' }, { EventId: 'shipped', EventType: 'ORDER_SHIPPED' }];
    expect(await store.appendGroup(parsedGroup(events, { ID: 'order-1' }))).toEqual({
      status: 'stored',
      version: 2,
      count: 3,
    });
    const group = validGroup(events, { ID: 'order-1' });
    const other = validGroup([events[0]!, events[1]!, { EventId: 'shipped', EventType: 'ORDER_CANCELLED' }], {
      ID: 'order-1',
    });
    const target = targetOn(sqs, 'unused', false, { dynamo, tableName });

    // Act
    const outcomes = await publishOutcomes(
      target,
      [JSON.stringify(single), JSON.stringify(group), JSON.stringify(other)],
      {
        since: Date.now(),
        deadLetters: false,
      },
    );

    // Assess
    expect(outcomes).toEqual([
      { status: 'stored', streamId: 'order-1', version: 1, earlier: false },
      { status: 'stored', streamId: 'order-1', version: 2, count: 3, earlier: false },
      { status: 'pending' },
    ]);
  });
});
