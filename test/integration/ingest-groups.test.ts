/**
 * Groups through the real ingest handler (docs/ARCHITECTURE.md, "Groups"): several events of one
 * stream in one message, stored as a unit or rejected as a unit, on DynamoDB Local with the DLQ
 * (and, for order through a real FIFO queue, the source queue) on fauxqs. A redelivery is the
 * same record handed to the handler again with `ApproximateReceiveCount` 2, as SQS keeps the
 * body, ids and `SentTimestamp`.
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSRecord } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { parseEvent } from '../../core/event.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { IngestMetric } from '../../core/metrics.ts';
import { RejectionReason } from '../../core/reasons.ts';
import type { StoredEvent } from '../../core/store.ts';
import { createIngestHandler, type IngestDependencies, type IngestHandler } from '../../handlers/ingest.ts';
import { LOCAL_CREDENTIALS as credentials, LOCAL_REGION } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { localQueueUrl } from '../../local/engines/sqs-local.ts';
import { Poller } from '../../local/poller.ts';
import { FaultyHttpHandler } from '../faults/fault-injection.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient, uniqueName } from '../support/engines.ts';
import {
  drainQueue,
  lambdaContext,
  sqsEvent,
  sqsRecord,
  validEvent,
  validGroup,
  type GroupBody,
} from '../support/factories.ts';
import { attribute, captureMetrics, metricTotal, quietLogger, receiveExactly } from './ingest-helpers.ts';

/** The same record delivered again: SQS keeps the body, ids and SentTimestamp, and counts the receive. */
function again(record: SQSRecord, receiveCount = 2): SQSRecord {
  return { ...record, attributes: { ...record.attributes, ApproximateReceiveCount: String(receiveCount) } };
}

/** The EventIds the contract gives a group body's events (sent or derived). */
function eventIdsOf(body: GroupBody): string[] {
  const parsed = parseEvent(body);
  if (!parsed.ok || parsed.kind !== 'group') throw new Error('not a valid group');
  return parsed.group.events.map((event) => event.EventId);
}

/** (Version, EventId, GroupIndex, GroupSize) of each event read back. */
function layout(events: readonly StoredEvent[]): [number, string, number | undefined, number | undefined][] {
  return events.map((event) => [event.Version, event.EventId, event.GroupIndex, event.GroupSize]);
}

/** The layout of a group body stored from `first`. */
function groupLayout(body: GroupBody, first: number): [number, string, number, number][] {
  const ids = eventIdsOf(body);
  return ids.map((eventId, index) => [first + index, eventId, index, ids.length]);
}

describe('groups through the ingest handler', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  const closers: { destroy(): void }[] = [];
  let tableName = '';
  let reader: DynamoDbEventStore;

  beforeAll(async () => {
    tableName = await createTestTable(dynamo, 'ingest-groups');
    reader = new DynamoDbEventStore({ client: dynamo, tableName });
  });
  afterAll(() => {
    for (const client of [dynamo, sqs, ...closers]) client.destroy();
  });

  /** A handler instance (one container) with its own DLQ. */
  async function container(
    options: { fifoDlq?: boolean } & Partial<IngestDependencies> = {},
  ): Promise<{ handler: IngestHandler; dlqUrl: string }> {
    const { fifoDlq, ...deps } = options;
    const dlqUrl = await createTestQueue(sqs, 'groups-dlq', { fifo: fifoDlq ?? false });
    return { handler: createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger(), ...deps }), dlqUrl };
  }

  const stream = async (id: string): Promise<StoredEvent[]> => (await reader.readStream(id)).events;
  const newStream = (): string => `order-${randomUUID()}`;

  it('stores a group whole at consecutive versions and counts each of its events: EventsStored, then DuplicateEvents for its redelivery in a warm and a cold container', async () => {
    const captured = captureMetrics();
    try {
      const { handler, dlqUrl } = await container({ metrics: captured.metrics });
      const { handler: cold } = await container({ metrics: captured.metrics });
      const [id, other] = [newStream(), newStream()];
      const body = validGroup(3, { ID: id, ExpectedVersion: 0 });
      const group = sqsRecord(body);

      const first = await handler(sqsEvent([group, sqsRecord(validEvent({ ID: other }))]), lambdaContext());
      const afterFirst = captured.documents().length;
      const redelivered = [
        await handler(sqsEvent([again(group)]), lambdaContext()),
        await cold(sqsEvent([again(group, 3)]), lambdaContext()),
      ];

      expect([first, ...redelivered]).toEqual([
        { batchItemFailures: [] },
        { batchItemFailures: [] },
        { batchItemFailures: [] },
      ]);
      expect(layout(await stream(id))).toEqual(groupLayout(body, 1));
      expect((await stream(other)).map((event) => event.Version)).toEqual([1]);
      const documents = captured.documents();
      expect(metricTotal(documents.slice(0, afterFirst), IngestMetric.eventsStored)).toBe(4);
      expect(metricTotal(documents.slice(afterFirst), IngestMetric.eventsStored)).toBe(0);
      expect(metricTotal(documents.slice(afterFirst), IngestMetric.duplicateEvents)).toBe(6);
      expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    } finally {
      captured.restore();
    }
  });

  describe.each([
    ['standard', false],
    ['FIFO', true],
  ] as const)('%s queue: a group with one bad event is rejected as a unit', (_mode, fifo) => {
    it('nothing of it is stored; the DLQ holds the original body byte for byte, with the reason and a detail naming Events[i]; the next message of the stream is stored', async () => {
      const captured = captureMetrics();
      try {
        const { handler, dlqUrl } = await container({ fifoDlq: fifo, metrics: captured.metrics });
        const id = newStream();
        // Written by hand, with spaces and a key order of its own: the DLQ must keep it as sent.
        const body = `{ "ID": "${id}", "Events": [ {"Timestamp": 1596719980, "EventType": "ORDER_PLACED", "EmitterId": "checkout", "EmitterType": "SYSTEM", "Data": {"total": 12.5}},
          {"EventType": "PAYMENT_RESERVED", "Timestamp": 1596719980000, "EmitterId": "checkout", "EmitterType": "SYSTEM"} ] }`;
        const options = fifo ? { fifo: { groupId: id } } : {};
        const bad = sqsRecord(body, options);
        const next = sqsRecord(validEvent({ ID: id, Data: { after: true } }), options);

        const response = await handler(sqsEvent([bad, next]), lambdaContext());

        expect(response).toEqual({ batchItemFailures: [] });
        const events = await stream(id);
        expect(events.map((event) => [event.Version, event.Data, event.GroupIndex])).toEqual([
          [1, { after: true }, undefined],
        ]);
        const [dead, ...more] = await receiveExactly(sqs, dlqUrl, 1);
        expect(more).toEqual([]);
        expect(dead?.Body).toBe(body);
        expect(attribute(dead!, MessageAttributeNames.rejectionReason)).toBe(RejectionReason.SchemaViolation);
        expect(attribute(dead!, MessageAttributeNames.rejectionDetail)).toBe(
          'Events[1].Timestamp: 1596719980000 looks like milliseconds; send seconds',
        );
        expect(attribute(dead!, MessageAttributeNames.sourceMessageId)).toBe(bad.messageId);
        if (fifo) expect(dead?.Attributes?.['MessageGroupId']).toBe(id);
        const documents = captured.documents();
        expect(metricTotal(documents, IngestMetric.eventsStored)).toBe(1);
        // One per dead letter (a message), whatever the group holds.
        expect(metricTotal(documents, IngestMetric.eventsRejected, RejectionReason.SchemaViolation)).toBe(1);
      } finally {
        captured.restore();
      }
    });
  });

  it("a group the store rejects (one event's EventId stored with other content; a stream past ExpectedVersion) is dead-lettered whole, its detail naming the event", async () => {
    const { handler, dlqUrl } = await container();
    const id = newStream();
    const stored = validGroup(
      [
        { EventId: 'p', Data: { total: 12.5 } },
        { EventId: 'q', Data: { reserved: true } },
      ],
      { ID: id, ExpectedVersion: 0 },
    );
    await handler(sqsEvent([sqsRecord(stored)]), lambdaContext());
    const changed = sqsRecord(
      validGroup(
        [
          { EventId: 'p', Data: { total: 12.5 } },
          { EventId: 'q', Data: { reserved: false } },
        ],
        { ID: id },
      ),
    );
    const late = sqsRecord(validGroup(2, { ID: id, ExpectedVersion: 1 }));

    const response = await handler(sqsEvent([changed, late]), lambdaContext());

    expect(response).toEqual({ batchItemFailures: [] });
    expect(layout(await stream(id))).toEqual(groupLayout(stored, 1));
    const dead = await receiveExactly(sqs, dlqUrl, 2);
    const bySource = new Map(
      dead.map((message) => [attribute(message, MessageAttributeNames.sourceMessageId), message]),
    );
    expect(dead).toHaveLength(2);
    for (const [record, reason, detail] of [
      [
        changed,
        RejectionReason.EventIdConflict,
        `Events[1].EventId: "q" is already stored at version 2 of stream ${JSON.stringify(id)} with different content`,
      ],
      [
        late,
        RejectionReason.WrongExpectedVersion,
        `ExpectedVersion: 1, but stream ${JSON.stringify(id)} already has another event at version 2`,
      ],
    ] as const) {
      const message = bySource.get(record.messageId);
      expect(message?.Body).toBe(record.body);
      expect(attribute(message!, MessageAttributeNames.rejectionReason)).toBe(reason);
      expect(attribute(message!, MessageAttributeNames.rejectionDetail)).toBe(detail);
    }
  });

  it('standard queue: a group and single events of one stream in one batch are stored in record order, the group whole', async () => {
    const { handler } = await container();
    const id = newStream();
    const first = validEvent({ ID: id, Data: { n: 1 } });
    const group = validGroup(3, { ID: id });
    const last = validEvent({ ID: id, Data: { n: 2 } });

    const response = await handler(sqsEvent([sqsRecord(first), sqsRecord(group), sqsRecord(last)]), lambdaContext());

    expect(response).toEqual({ batchItemFailures: [] });
    const events = await stream(id);
    expect(layout(events.slice(1, 4))).toEqual(groupLayout(group, 2));
    expect(events.map((event) => [event.Version, event.Data?.['n']])).toEqual([
      [1, 1],
      [2, undefined],
      [3, undefined],
      [4, undefined],
      [5, 2],
    ]);
  });

  it('FIFO: the redelivery of a group after a later message of its stream was stored is acknowledged as decided, writes nothing, and counts each event as a duplicate', async () => {
    const captured = captureMetrics();
    try {
      const { handler, dlqUrl } = await container({ fifoDlq: true, metrics: captured.metrics });
      const id = newStream();
      const body = validGroup(3, { ID: id });
      const group = sqsRecord(body, { fifo: { groupId: id } });
      const later = sqsRecord(validEvent({ ID: id }), { fifo: { groupId: id } });
      await handler(sqsEvent([group, later]), lambdaContext());
      const before = captured.documents().length;

      const response = await handler(sqsEvent([again(group)]), lambdaContext());

      expect(response).toEqual({ batchItemFailures: [] });
      expect((await stream(id)).map((event) => event.Version)).toEqual([1, 2, 3, 4]);
      const documents = captured.documents().slice(before);
      expect(metricTotal(documents, IngestMetric.duplicateEvents)).toBe(3);
      expect(metricTotal(documents, IngestMetric.eventsStored)).toBe(0);
      expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    } finally {
      captured.restore();
    }
  });

  it("FIFO, through a FIFO queue on fauxqs: groups and single events of one stream keep the producer's order, also when a group's transaction is throttled and the rest of the stream waits for it", async () => {
    // The first transaction of the container is throttled on every SDK attempt (a fake: DynamoDB
    // Local throttles nothing): that group fails, the records after it in its message group are
    // not attempted, and SQS delivers them again after the visibility timeout, in order.
    const http = new FaultyHttpHandler(({ operation, index }) =>
      operation === 'TransactWriteItems' && index < 3 ? 'throttle-before' : undefined,
    );
    const flaky = new DynamoDBClient({
      endpoint: inject('dynamoDbEndpoint'),
      region: LOCAL_REGION,
      credentials,
      maxAttempts: 3,
      requestHandler: http,
    });
    closers.push(flaky, http);
    const { handler, dlqUrl } = await container({ dynamo: flaky, fifoDlq: true });
    const name = `${uniqueName('groups-source')}.fifo`;
    const created = await sqs.send(
      new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', VisibilityTimeout: '1' } }),
    );
    const queueUrl = localQueueUrl(created.QueueUrl!, inject('sqsEndpoint'));
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    );
    const id = newStream();
    const bodies: (GroupBody | ReturnType<typeof validEvent>)[] = [
      validEvent({ ID: id, Data: { step: 1 } }),
      validGroup(2, { ID: id }),
      validEvent({ ID: id, Data: { step: 2 } }),
      validGroup(3, { ID: id, ExpectedVersion: 4 }),
      validEvent({ ID: id, Data: { step: 3 } }),
    ];
    for (const body of bodies) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(body),
          MessageGroupId: id,
          MessageDeduplicationId: randomUUID(),
        }),
      );
    }
    const failedBatches: number[] = [];
    const poller = new Poller({
      sqs,
      queueUrl,
      queueArn: Attributes['QueueArn']!,
      region: LOCAL_REGION,
      handler,
      batchSize: 10,
      batchingWindowSeconds: 0,
      waitTimeSeconds: 1,
      onBatch: (report) => {
        if (report.failed > 0) failedBatches.push(report.failed);
      },
    });

    poller.start();
    try {
      await waitUntil(async () => (await reader.readStream(id)).version >= 8, 'the stream to reach version 8', 30_000);
    } finally {
      await poller.stop();
    }

    expect(
      http
        .of('TransactWriteItems')
        .slice(0, 3)
        .map((attempt) => attempt.fault),
    ).toEqual(['throttle-before', 'throttle-before', 'throttle-before']);
    expect(failedBatches[0]).toBe(4);
    const events = await stream(id);
    expect(events.map((event) => event.Version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(layout(events.slice(1, 3))).toEqual(groupLayout(bodies[1] as GroupBody, 2));
    expect(layout(events.slice(4, 7))).toEqual(groupLayout(bodies[3] as GroupBody, 5));
    expect([events[0], events[3], events[7]].map((event) => event?.Data?.['step'])).toEqual([1, 2, 3]);
    expect(new Set(events.map((event) => event.SourceSequence)).size).toBe(5);
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
  });
});
