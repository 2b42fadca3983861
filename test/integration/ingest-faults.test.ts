import { DynamoDBClient, type PutItemCommandInput } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { IngestMetric } from '../../core/metrics.ts';
import { LOCAL_ACCOUNT, LOCAL_CREDENTIALS as credentials, LOCAL_REGION } from '../../local/defaults.ts';
import { freePort } from '../../local/engines/ports.ts';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { drainQueue, lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
import { captureMetrics, metricTotal, quietLogger } from './ingest-helpers.ts';

function failedIds(response: SQSBatchResponse): string[] {
  return response.batchItemFailures.map((failure) => failure.itemIdentifier).sort();
}

function idsOf(records: readonly SQSRecord[]): string[] {
  return records.map((record) => record.messageId).sort();
}

describe('ingest handler when things fail', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  const extraClients: { destroy(): void }[] = [];
  let tableName = '';
  let reader: DynamoDbEventStore;

  beforeAll(async () => {
    tableName = await createTestTable(dynamo, 'ingest-faults');
    reader = new DynamoDbEventStore({ client: dynamo, tableName });
  });
  afterAll(() => {
    for (const client of [dynamo, sqs, ...extraClients]) client.destroy();
  });

  const streamId = (prefix = 'order'): string => `${prefix}-${randomUUID()}`;

  it('reports every record failed and sends nothing to the DLQ when DynamoDB is unreachable', async () => {
    // Prepare: a client pointed at a port nothing listens on, one attempt so it fails fast.
    const unreachable = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${await freePort()}`,
      region: LOCAL_REGION,
      credentials,
      maxAttempts: 1,
    });
    extraClients.push(unreachable);
    const dlqUrl = await createTestQueue(sqs, 'faults-dlq');
    const handler = createIngestHandler({ dynamo: unreachable, sqs, tableName, dlqUrl, logger: quietLogger() });
    const [a, b] = [streamId('a'), streamId('b')];
    const records = [
      sqsRecord(validEvent({ ID: a })),
      sqsRecord(validEvent({ ID: b })),
      sqsRecord(validEvent({ ID: a })),
    ];

    // Act
    const response = await handler(sqsEvent(records), lambdaContext());

    // Assess
    expect(failedIds(response)).toEqual(idsOf(records));
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    expect((await reader.readStream(a)).version).toBe(0);
  });

  it('reports an invalid record failed (it stays in the source queue) when the DLQ is unreachable', async () => {
    // Prepare: an SQS client and DLQ URL on a port nothing listens on.
    const port = await freePort();
    const unreachable = new SQSClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: LOCAL_REGION,
      credentials,
      maxAttempts: 1,
    });
    extraClients.push(unreachable);
    const handler = createIngestHandler({
      dynamo,
      sqs: unreachable,
      tableName,
      dlqUrl: `http://127.0.0.1:${port}/${LOCAL_ACCOUNT}/unreachable-dlq`,
      logger: quietLogger(),
    });
    const id = streamId();
    const valid = sqsRecord(validEvent({ ID: id }));
    const invalid = sqsRecord(validEvent({ ID: id, EmitterType: '' }));

    // Act
    const response = await handler(sqsEvent([valid, invalid]), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: invalid.messageId }] });
    expect((await reader.readStream(id)).version).toBe(1);
  });

  it('FIFO: a rejected event whose DLQ send failed holds back its group; the redelivery dead-letters it and writes nothing twice', async () => {
    // Prepare: the first container cannot reach the DLQ; the second one can.
    const port = await freePort();
    const unreachable = new SQSClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: LOCAL_REGION,
      credentials,
      maxAttempts: 1,
    });
    extraClients.push(unreachable);
    const dlqUrl = await createTestQueue(sqs, 'faults-dlq', { fifo: true });
    const broken = createIngestHandler({
      dynamo,
      sqs: unreachable,
      tableName,
      dlqUrl: `http://127.0.0.1:${port}/${LOCAL_ACCOUNT}/unreachable-dlq.fifo`,
      logger: quietLogger(),
    });
    const working = createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger() });
    const [a, b] = [streamId('a'), streamId('b')];
    const invalidA = sqsRecord(validEvent({ ID: a, EmitterId: '' }), { fifo: { groupId: a } });
    const validA = sqsRecord(validEvent({ ID: a, Data: { seq: 2 } }), { fifo: { groupId: a } });
    const validB = sqsRecord(validEvent({ ID: b, Data: { seq: 1 } }), { fifo: { groupId: b } });

    // Act
    const first = await broken(sqsEvent([invalidA, validB, validA]), lambdaContext());
    const redelivered = await working(sqsEvent([invalidA, validA]), lambdaContext());

    // Assess
    expect(failedIds(first)).toEqual(idsOf([invalidA, validA]));
    expect(redelivered).toEqual({ batchItemFailures: [] });
    expect((await reader.readStream(a)).events.map((event) => event.Data?.['seq'])).toEqual([2]);
    expect((await reader.readStream(b)).events.map((event) => event.Data?.['seq'])).toEqual([1]);
    const dead = await drainQueue(sqs, dlqUrl);
    expect(
      dead.map((message) => [
        message.Body,
        message.MessageAttributes?.[MessageAttributeNames.rejectionReason]?.StringValue,
      ]),
    ).toEqual([[invalidA.body, 'SchemaViolation']]);
  });

  it('processes, in the next invocation of the same instance, a FIFO group that failed in the previous one', async () => {
    // Prepare: a real DynamoDB Local client with a middleware that fails the first PutItem of
    // stream `a` as throttled (a fault DynamoDB Local cannot produce on demand).
    const flaky = dynamoClient();
    extraClients.push(flaky);
    const [a, b] = [streamId('a'), streamId('b')];
    let injected = 0;
    flaky.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as Partial<PutItemCommandInput>;
        if (context.commandName === 'PutItemCommand' && input.Item?.['ID']?.S === a && injected === 0) {
          injected += 1;
          throw Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
            name: 'ThrottlingException',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'failFirstPutItemOfStreamA' },
    );
    const dlqUrl = await createTestQueue(sqs, 'faults-dlq', { fifo: true });
    const handler = createIngestHandler({ dynamo: flaky, sqs, tableName, dlqUrl, logger: quietLogger() });
    const recordsA = [1, 2, 3].map((seq) => sqsRecord(validEvent({ ID: a, Data: { seq } }), { fifo: { groupId: a } }));
    const recordsB = [1, 2].map((seq) => sqsRecord(validEvent({ ID: b, Data: { seq } }), { fifo: { groupId: b } }));
    const interleaved = [recordsA[0]!, recordsB[0]!, recordsA[1]!, recordsB[1]!, recordsA[2]!];

    // Act
    const first = await handler(sqsEvent(interleaved), lambdaContext());
    // SQS delivers group `a`'s unacknowledged messages again, in order.
    const second = await handler(sqsEvent(recordsA), lambdaContext());

    // Assess
    expect(injected).toBe(1);
    expect(failedIds(first)).toEqual(idsOf(recordsA));
    expect(second).toEqual({ batchItemFailures: [] });
    for (const [id, count] of [
      [a, 3],
      [b, 2],
    ] as const) {
      const { events } = await reader.readStream(id);
      expect(events.map((event) => [event.Version, event.Data?.['seq']])).toEqual(
        Array.from({ length: count }, (_, index) => [index + 1, index + 1]),
      );
    }
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
  });

  it("counts AppendConflicts when another container moved the stream past this one's cached head", async () => {
    // Prepare: container A caches the stream at version 1; container B then appends version 2.
    const captured = captureMetrics();
    try {
      const dlqUrl = await createTestQueue(sqs, 'faults-dlq');
      const [containerA, containerB] = [1, 2].map(() =>
        createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger(), metrics: captured.metrics }),
      );
      const id = streamId('contended');
      await containerA!(sqsEvent([sqsRecord(validEvent({ ID: id, Data: { by: 'a', n: 1 } }))]), lambdaContext());
      await containerB!(sqsEvent([sqsRecord(validEvent({ ID: id, Data: { by: 'b', n: 2 } }))]), lambdaContext());
      const before = captured.documents().length;

      // Act: A's put at its cached head + 1 loses, it re-reads the tail and appends at 3.
      const response = await containerA!(
        sqsEvent([sqsRecord(validEvent({ ID: id, Data: { by: 'a', n: 3 } }))]),
        lambdaContext(),
      );

      // Assess
      expect(response).toEqual({ batchItemFailures: [] });
      const { events } = await reader.readStream(id);
      expect(events.map((event) => [event.Version, event.Data?.['n']])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      const documents = captured.documents().slice(before);
      expect(metricTotal(documents, IngestMetric.appendConflicts)).toBe(1);
      expect(metricTotal(documents, IngestMetric.eventsStored)).toBe(1);
    } finally {
      captured.restore();
    }
  });

  it('keeps a stream gapless with every event exactly once when 8 containers append to it at once', async () => {
    // Prepare: 8 handler instances (separate caches, like separate containers), 10 events each.
    const captured = captureMetrics();
    try {
      const dlqUrl = await createTestQueue(sqs, 'faults-dlq');
      const id = streamId('hot');
      const handlers = Array.from({ length: 8 }, () =>
        createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger(), metrics: captured.metrics }),
      );
      const batches = handlers.map((_, container) =>
        Array.from({ length: 10 }, (_unused, index) => sqsRecord(validEvent({ ID: id, Data: { container, index } }))),
      );

      // Act: all at once; records a handler reports failed are delivered to it again, as SQS would.
      let pending = batches;
      for (let round = 0; round < 10 && pending.some((records) => records.length > 0); round += 1) {
        const responses = await Promise.all(
          handlers.map((handler, container) => handler(sqsEvent(pending[container]!), lambdaContext())),
        );
        pending = responses.map((response, container) => {
          const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
          return pending[container]!.filter((record) => failed.has(record.messageId));
        });
      }

      // Assess
      expect(pending.flat()).toEqual([]);
      const { events, version } = await reader.readStream(id);
      expect(version).toBe(80);
      expect(events.map((event) => event.Version)).toEqual(Array.from({ length: 80 }, (_, index) => index + 1));
      const sent = batches.flat().map((record) => JSON.parse(record.body) as { Data: unknown });
      const stored = events.map((event) => JSON.stringify(event.Data)).sort();
      expect(stored).toEqual(sent.map((event) => JSON.stringify(event.Data)).sort());
      expect(new Set(events.map((event) => event.EventId)).size).toBe(80);
      expect(metricTotal(captured.documents(), IngestMetric.eventsStored)).toBe(80);
      expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    } finally {
      captured.restore();
    }
  });
});
