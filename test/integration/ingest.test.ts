import type { Message } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { deriveEventId, type EventInput } from '../../core/event.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { IngestMetric, MetricDimension, SERVICE_NAME } from '../../core/metrics.ts';
import { createIngestHandler, type IngestDependencies, type IngestHandler } from '../../handlers/ingest.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { drainQueue, fifoBatch, lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
import { attribute, captureMetrics, metricTotal, quietLogger, receiveExactly } from './ingest-helpers.ts';

describe('ingest handler on DynamoDB Local and fauxqs', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  let tableName = '';
  let reader: DynamoDbEventStore;

  beforeAll(async () => {
    tableName = await createTestTable(dynamo, 'ingest');
    reader = new DynamoDbEventStore({ client: dynamo, tableName });
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  /** A handler instance (one container) with its own DLQ. */
  async function setup(
    options: { fifoDlq?: boolean } & Partial<IngestDependencies> = {},
  ): Promise<{ handler: IngestHandler; dlqUrl: string }> {
    const { fifoDlq, ...deps } = options;
    const dlqUrl = await createTestQueue(sqs, 'ingest-dlq', { fifo: fifoDlq ?? false });
    const handler = createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger(), ...deps });
    return { handler, dlqUrl };
  }

  const streamId = (prefix = 'order'): string => `${prefix}-${randomUUID()}`;

  it('stores the original design example event at version 1 with every field, a derived EventId and RecordedAt', async () => {
    // Prepare
    const { handler, dlqUrl } = await setup();
    const id = streamId();
    const body = `{"Timestamp":1596719980,"EventType":"EVENT_EXAMPLE","ID":"${id}","EmitterId":"emitter-42","EmitterType":"SYSTEM","Data":{"example":"value","nested":{"list":[1,"two",true,null]},"amount":12.5}}`;
    const before = new Date().toISOString();

    // Act
    const response = await handler(sqsEvent([sqsRecord(body)]), lambdaContext());

    // Assess
    const after = new Date().toISOString();
    expect(response).toEqual({ batchItemFailures: [] });
    const { events, version } = await reader.readStream(id);
    expect(version).toBe(1);
    expect(events).toEqual([
      {
        ID: id,
        Version: 1,
        Timestamp: 1596719980,
        EventType: 'EVENT_EXAMPLE',
        EmitterId: 'emitter-42',
        EmitterType: 'SYSTEM',
        Data: { example: 'value', nested: { list: [1, 'two', true, null] }, amount: 12.5 },
        EventId: deriveEventId(JSON.parse(body) as EventInput),
        RecordedAt: expect.any(String),
      },
    ]);
    expect(events[0]?.EventId).toMatch(/^sha256:[0-9a-f]{64}$/);
    const recordedAt = events[0]?.RecordedAt ?? '';
    expect(recordedAt >= before && recordedAt <= after).toBe(true);
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
  });

  it('stores two events of one ID with the same Timestamp as versions 1 and 2 (the original design overwrote one)', async () => {
    // Prepare
    const { handler } = await setup();
    const id = streamId();
    const first = validEvent({ ID: id, Timestamp: 1596719980, Data: { step: 'created' } });
    const second = validEvent({ ID: id, Timestamp: 1596719980, Data: { step: 'paid' } });

    // Act
    const response = await handler(sqsEvent([sqsRecord(first), sqsRecord(second)]), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    const { events, version } = await reader.readStream(id);
    expect(version).toBe(2);
    expect(events.map((event) => [event.Version, event.Timestamp, event.Data])).toEqual([
      [1, 1596719980, { step: 'created' }],
      [2, 1596719980, { step: 'paid' }],
    ]);
  });

  it('stores an event delivered twice (a new message id each time) once and counts DuplicateEvents', async () => {
    // Prepare
    const captured = captureMetrics();
    try {
      const { handler, dlqUrl } = await setup({ metrics: captured.metrics });
      const otherContainer = createIngestHandler({
        dynamo,
        sqs,
        tableName,
        dlqUrl,
        logger: quietLogger(),
        metrics: captured.metrics,
      });
      const id = streamId();
      const body = JSON.stringify(validEvent({ ID: id }));

      // Act
      const stored = await handler(sqsEvent([sqsRecord(body)]), lambdaContext());
      const againSameContainer = await handler(sqsEvent([sqsRecord(body)]), lambdaContext());
      const againOtherContainer = await otherContainer(sqsEvent([sqsRecord(body)]), lambdaContext());

      // Assess
      expect([stored, againSameContainer, againOtherContainer]).toEqual([
        { batchItemFailures: [] },
        { batchItemFailures: [] },
        { batchItemFailures: [] },
      ]);
      const { events, version } = await reader.readStream(id);
      expect(version).toBe(1);
      expect(events).toHaveLength(1);
      const documents = captured.documents();
      expect(metricTotal(documents, IngestMetric.eventsStored)).toBe(1);
      expect(metricTotal(documents, IngestMetric.duplicateEvents)).toBe(2);
      expect(metricTotal(documents, IngestMetric.eventsRejected)).toBe(0);
      expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
    } finally {
      captured.restore();
    }
  });

  it('stores once an event that arrives twice in the same standard batch', async () => {
    // Prepare: SQS delivers at least once; both copies can land in one batch.
    const { handler } = await setup();
    const id = streamId();
    const body = JSON.stringify(validEvent({ ID: id }));
    const other = JSON.stringify(validEvent({ ID: id, Data: { other: true } }));

    // Act
    const response = await handler(sqsEvent([sqsRecord(body), sqsRecord(other), sqsRecord(body)]), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    const { events } = await reader.readStream(id);
    expect(events.map((event) => [event.Version, event.Data])).toEqual([
      [1, { example: 'value', amount: 42 }],
      [2, { other: true }],
    ]);
  });

  it('stores the valid events of a mixed batch and dead-letters each invalid one with its reason, reporting no failure', async () => {
    // Prepare
    const captured = captureMetrics();
    try {
      const { handler, dlqUrl } = await setup({ metrics: captured.metrics });
      const id = streamId();
      const invalidId = streamId('invalid');
      const first = sqsRecord(validEvent({ ID: id, Data: { n: 1 } }));
      const notJson = sqsRecord('{"Timestamp": ');
      const missingEmitter = sqsRecord(validEvent({ ID: invalidId, EmitterId: undefined }), {
        messageAttributes: { [MessageAttributeNames.redriveCount]: '2' },
      });
      const second = sqsRecord(validEvent({ ID: id, Data: { n: 2 } }));
      const array = sqsRecord('[1,2]');
      const milliseconds = sqsRecord(validEvent({ ID: invalidId, Timestamp: 1596719980000 }));
      const before = new Date().toISOString();

      // Act
      const response = await handler(
        sqsEvent([first, notJson, missingEmitter, second, array, milliseconds]),
        lambdaContext(),
      );

      // Assess
      const after = new Date().toISOString();
      expect(response).toEqual({ batchItemFailures: [] });
      const { events } = await reader.readStream(id);
      expect(events.map((event) => event.Data)).toEqual([{ n: 1 }, { n: 2 }]);
      expect((await reader.readStream(invalidId)).version).toBe(0);

      const dead = await receiveExactly(sqs, dlqUrl, 4);
      const bySource = new Map(
        dead.map((message: Message) => [attribute(message, MessageAttributeNames.sourceMessageId), message]),
      );
      expect(dead).toHaveLength(4);
      const expected = [
        [notJson, 'InvalidJson', 'body: not JSON (Unexpected end of JSON input)', '0'],
        [missingEmitter, 'SchemaViolation', 'EmitterId: required field is missing', '2'],
        [array, 'InvalidJson', 'body: expected a JSON object, got array', '0'],
        [milliseconds, 'SchemaViolation', 'Timestamp: 1596719980000 looks like milliseconds; send seconds', '0'],
      ] as const;
      for (const [record, reason, detail, redriveCount] of expected) {
        const message = bySource.get(record.messageId);
        expect(message?.Body).toBe(record.body);
        expect(attribute(message!, MessageAttributeNames.rejectionReason)).toBe(reason);
        expect(attribute(message!, MessageAttributeNames.rejectionDetail)).toBe(detail);
        expect(attribute(message!, MessageAttributeNames.redriveCount)).toBe(redriveCount);
        const rejectedAt = attribute(message!, MessageAttributeNames.rejectedAt)!;
        expect(new Date(rejectedAt).toISOString()).toBe(rejectedAt);
        expect(rejectedAt >= before && rejectedAt <= after).toBe(true);
        expect(Object.values(message!.MessageAttributes ?? {}).map((value) => value.DataType)).toEqual([
          'String',
          'String',
          'String',
          'String',
          'String',
        ]);
      }
      const documents = captured.documents();
      expect(metricTotal(documents, IngestMetric.eventsStored)).toBe(2);
      expect(metricTotal(documents, IngestMetric.eventsRejected, 'InvalidJson')).toBe(2);
      expect(metricTotal(documents, IngestMetric.eventsRejected, 'SchemaViolation')).toBe(2);
      const rejectedSets = documents.filter((document) => document[MetricDimension.reason] !== undefined);
      expect(rejectedSets.map((document) => document._aws.CloudWatchMetrics[0]?.Dimensions)).toEqual([
        [[MetricDimension.service, MetricDimension.reason]],
        [[MetricDimension.service, MetricDimension.reason]],
      ]);
    } finally {
      captured.restore();
    }
  });

  it('keeps the order of a FIFO batch of one stream, and a redelivered FIFO batch writes nothing twice', async () => {
    // Prepare
    const { handler, dlqUrl } = await setup({ fifoDlq: true });
    const id = streamId();
    const bodies = Array.from({ length: 10 }, (_, index) =>
      validEvent({ ID: id, Timestamp: 1596719980, Data: { seq: index + 1 } }),
    );
    const batch = fifoBatch(id, bodies);

    // Act
    const first = await handler(batch, lambdaContext());
    const redelivered = await handler(batch, lambdaContext());
    // Another container that has never seen the stream gets the batch's last five again:
    // the tail it reads (a full FIFO batch) is enough to recognise them.
    const otherContainer = createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger() });
    const tailRedelivered = await otherContainer({ Records: batch.Records.slice(5) }, lambdaContext());

    // Assess
    expect([first, redelivered, tailRedelivered]).toEqual([
      { batchItemFailures: [] },
      { batchItemFailures: [] },
      { batchItemFailures: [] },
    ]);
    const { events, version } = await reader.readStream(id);
    expect(version).toBe(10);
    expect(events.map((event) => [event.Version, event.Data?.['seq']])).toEqual(
      Array.from({ length: 10 }, (_, index) => [index + 1, index + 1]),
    );
    expect(await drainQueue(sqs, dlqUrl)).toEqual([]);
  });

  it('recognises a FIFO redelivery that holds fewer messages of the stream than the batch that stored them', async () => {
    // Prepare: one container stores a batch of three and "crashes" (its response is lost), so
    // SQS delivers the group again from its first message; this receive returned only one.
    const { handler, dlqUrl } = await setup({ fifoDlq: true });
    const id = streamId();
    const batch = fifoBatch(
      id,
      [1, 2, 3].map((seq) => validEvent({ ID: id, Data: { seq } })),
    );
    await handler(batch, lambdaContext());
    const otherContainer = createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger() });

    // Act
    const response = await otherContainer({ Records: batch.Records.slice(0, 1) }, lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    const { events } = await reader.readStream(id);
    expect(events.map((event) => event.Data?.['seq'])).toEqual([1, 2, 3]);
  });

  it('keeps each stream in order in a FIFO batch of interleaved message groups', async () => {
    // Prepare
    const { handler } = await setup({ fifoDlq: true });
    const [a, b] = [streamId('a'), streamId('b')];
    const records = [1, 2, 3, 4, 5].flatMap((seq) => [
      sqsRecord(validEvent({ ID: a, Data: { seq } }), { fifo: { groupId: a } }),
      sqsRecord(validEvent({ ID: b, Data: { seq } }), { fifo: { groupId: b } }),
    ]);

    // Act
    const response = await handler(sqsEvent(records), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    for (const id of [a, b]) {
      const { events } = await reader.readStream(id);
      expect(events.map((event) => [event.Version, event.Data?.['seq']])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
        [5, 5],
      ]);
    }
  });

  it('dead-letters an item over 400 KB as ItemTooLarge and data DynamoDB refuses as UnstorableData', async () => {
    // Prepare
    const { handler, dlqUrl } = await setup();
    const id = streamId();
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let level = 0; level < 32; level += 1) deep = { d: deep };
    const tooLarge = sqsRecord(validEvent({ ID: id, Data: { blob: 'x'.repeat(410 * 1024) } }));
    const tooDeep = sqsRecord(validEvent({ ID: id, Data: deep }));
    const emptyKey = sqsRecord(validEvent({ ID: id, Data: { '': 1 } }));
    const outOfRange = sqsRecord(
      `{"Timestamp":1596719980,"EventType":"EVENT_EXAMPLE","ID":"${id}","EmitterId":"e","EmitterType":"SYSTEM","Data":{"n":1e200}}`,
    );
    const fine = sqsRecord(validEvent({ ID: id, Data: { ok: true } }));

    // Act
    const response = await handler(sqsEvent([tooLarge, tooDeep, emptyKey, outOfRange, fine]), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    const { events } = await reader.readStream(id);
    expect(events.map((event) => [event.Version, event.Data])).toEqual([[1, { ok: true }]]);
    const dead = await receiveExactly(sqs, dlqUrl, 4);
    const bySource = new Map(
      dead.map((message) => [attribute(message, MessageAttributeNames.sourceMessageId), message]),
    );
    expect(dead).toHaveLength(4);
    const expected = [
      [
        tooLarge,
        'ItemTooLarge',
        "item: about 411 KB, over DynamoDB's 400 KB item limit; store large payloads elsewhere (S3) and send a reference",
      ],
      [tooDeep, 'UnstorableData', `Data${'.d'.repeat(31)}: nested deeper than DynamoDB's 32 levels`],
      [emptyKey, 'UnstorableData', 'Data: has an empty key, which DynamoDB refuses'],
      [
        outOfRange,
        'UnstorableData',
        "Data.n: 1e+200 is outside DynamoDB's number range (1e-130 to 1e126); send it as a string",
      ],
    ] as const;
    for (const [record, reason, detail] of expected) {
      const message = bySource.get(record.messageId);
      expect(message?.Body).toBe(record.body);
      expect([
        attribute(message!, MessageAttributeNames.rejectionReason),
        attribute(message!, MessageAttributeNames.rejectionDetail),
      ]).toEqual([reason, detail]);
    }
  });

  it('dead-letters WrongExpectedVersion and EventIdConflict with their codes', async () => {
    // Prepare: maxReceiveCount 1, so a stream still behind ExpectedVersion is final on this delivery.
    const { handler, dlqUrl } = await setup({ maxReceiveCount: 1 });
    const id = streamId();
    const created = validEvent({ ID: id, ExpectedVersion: 0, EventId: 'evt-1', Data: { a: 1 } });
    await handler(sqsEvent([sqsRecord(created)]), lambdaContext());
    const stale = sqsRecord(validEvent({ ID: id, ExpectedVersion: 0, EventId: 'evt-2' }));
    const ahead = sqsRecord(validEvent({ ID: id, ExpectedVersion: 5, EventId: 'evt-3' }));
    const conflicting = sqsRecord(validEvent({ ID: id, EventId: 'evt-1', Data: { a: 2 } }));
    const next = sqsRecord(validEvent({ ID: id, ExpectedVersion: 1, EventId: 'evt-4' }));

    // Act
    const response = await handler(sqsEvent([stale, ahead, conflicting, next]), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    const { events } = await reader.readStream(id);
    expect(events.map((event) => [event.Version, event.EventId])).toEqual([
      [1, 'evt-1'],
      [2, 'evt-4'],
    ]);
    const dead = await receiveExactly(sqs, dlqUrl, 3);
    const bySource = new Map(
      dead.map((message) => [attribute(message, MessageAttributeNames.sourceMessageId), message]),
    );
    expect(dead).toHaveLength(3);
    const expected = [
      [
        stale,
        'WrongExpectedVersion',
        `ExpectedVersion: 0, but stream ${JSON.stringify(id)} already has another event at version 1`,
      ],
      [
        ahead,
        'WrongExpectedVersion',
        `ExpectedVersion: 5, but stream ${JSON.stringify(id)} is at version 1 (still so at delivery 1 of 1)`,
      ],
      [
        conflicting,
        'EventIdConflict',
        `EventId: "evt-1" is already stored at version 1 of stream ${JSON.stringify(id)} with different content`,
      ],
    ] as const;
    for (const [record, reason, detail] of expected) {
      const message = bySource.get(record.messageId);
      expect(message?.Body).toBe(record.body);
      expect([
        attribute(message!, MessageAttributeNames.rejectionReason),
        attribute(message!, MessageAttributeNames.rejectionDetail),
      ]).toEqual([reason, detail]);
    }
  });

  it('sends rejected events to a FIFO DLQ grouped by stream id, deduplicated by source message id', async () => {
    // Prepare
    const { handler, dlqUrl } = await setup({ fifoDlq: true });
    const id = streamId();
    const invalid = sqsRecord(validEvent({ ID: id, EventType: 'not upper case' }), { fifo: { groupId: id } });
    const notJson = sqsRecord('not json', { fifo: { groupId: 'group-of-garbage' } });

    // Act: the second delivery of the same messages (their acknowledgement was lost) sends nothing new.
    const first = await handler(sqsEvent([invalid, notJson]), lambdaContext());
    const again = await handler(sqsEvent([invalid, notJson]), lambdaContext());

    // Assess
    expect([first, again]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    const dead = await receiveExactly(sqs, dlqUrl, 2);
    expect(dead).toHaveLength(2);
    const bySource = new Map(
      dead.map((message) => [attribute(message, MessageAttributeNames.sourceMessageId), message]),
    );
    expect(bySource.get(invalid.messageId)?.Attributes?.['MessageGroupId']).toBe(id);
    expect(bySource.get(invalid.messageId)?.Attributes?.['MessageDeduplicationId']).toBe(invalid.messageId);
    expect(attribute(bySource.get(invalid.messageId)!, MessageAttributeNames.rejectionDetail)).toBe(
      'EventType: "not upper case" must be upper snake case like EVENT_EXAMPLE',
    );
    expect(bySource.get(notJson.messageId)?.Attributes?.['MessageGroupId']).toBe('group-of-garbage');
    expect(attribute(bySource.get(notJson.messageId)!, MessageAttributeNames.rejectionReason)).toBe('InvalidJson');
  });

  it('logs one summary line per invocation, rejections with the message id as correlation id, and bodies only at debug', async () => {
    // Prepare: real Powertools Loggers (POWERTOOLS_DEV prints through the global console), captured.
    const lines: Record<string, unknown>[] = [];
    const capture = (...args: unknown[]): void => {
      lines.push(JSON.parse(String(args[0])) as Record<string, unknown>);
    };
    const spies = (['debug', 'info', 'warn', 'error', 'log'] as const).map((method) =>
      vi.spyOn(console, method).mockImplementation(capture),
    );
    try {
      const id = streamId();
      const secret = `payload-${randomUUID()}`;
      const valid = sqsRecord(validEvent({ ID: id, Data: { secret } }));
      const invalid = sqsRecord(validEvent({ ID: id, EmitterId: '', Data: { secret } }));
      const { handler: atInfo } = await setup({ logger: new Logger({ serviceName: SERVICE_NAME, logLevel: 'INFO' }) });
      const { handler: atDebug } = await setup({
        logger: new Logger({ serviceName: SERVICE_NAME, logLevel: 'DEBUG' }),
      });

      // Act
      await atInfo(sqsEvent([valid, invalid]), lambdaContext());
      const infoLines = lines.splice(0);
      await atDebug(sqsEvent([sqsRecord(validEvent({ ID: streamId(), Data: { secret } }))]), lambdaContext());
      const debugLines = lines.splice(0);

      // Assess
      expect(JSON.stringify(infoLines)).not.toContain(secret);
      expect(infoLines.filter((line) => line['message'] === 'batch processed')).toEqual([
        expect.objectContaining({
          level: 'INFO',
          service: SERVICE_NAME,
          mode: 'standard',
          records: 2,
          stored: 1,
          duplicates: 0,
          rejected: { SchemaViolation: 1 },
          failed: 0,
        }),
      ]);
      expect(infoLines.filter((line) => line['message'] === 'event rejected and sent to the DLQ')).toEqual([
        expect.objectContaining({
          correlation_id: invalid.messageId,
          messageId: invalid.messageId,
          streamId: id,
          reason: 'SchemaViolation',
          detail: 'EmitterId: must not be empty',
        }),
      ]);
      const bodies = debugLines.filter((line) => line['level'] === 'DEBUG' && typeof line['body'] === 'string');
      expect(bodies).toHaveLength(1);
      expect(bodies[0]?.['body']).toContain(secret);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('keeps RejectionDetail sendable: long field names cut, characters SQS refuses replaced', async () => {
    // Prepare
    const { handler, dlqUrl } = await setup({ fifoDlq: true });
    const id = streamId();
    const long = sqsRecord(validEvent({ ID: id, [`Unknown${'x'.repeat(2000)}`]: 1 }), {
      fifo: { groupId: 'long-detail' },
    });
    const control = sqsRecord(validEvent({ ID: streamId(), 'Bad\u0001Key': 1 }), {
      fifo: { groupId: 'control-detail' },
    });
    // A stream id SQS refuses as a message group id: the source record's group is used instead.
    const unicodeId = `Ünïcödé stream ${randomUUID()}`;
    const unicode = sqsRecord(validEvent({ ID: unicodeId, EmitterType: '' }), { fifo: { groupId: 'unicode-group' } });

    // Act
    const response = await handler(sqsEvent([long, control, unicode]), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    const dead = await receiveExactly(sqs, dlqUrl, 3);
    const bySource = new Map(
      dead.map((message) => [attribute(message, MessageAttributeNames.sourceMessageId), message]),
    );
    const longDetail = attribute(bySource.get(long.messageId)!, MessageAttributeNames.rejectionDetail)!;
    // The contract cuts a long field name; the rejecter's own 1,000-character cut is tested in ingest-rejecter.test.ts.
    expect(longDetail).toBe(
      `Unknown${'x'.repeat(54)}...: unknown field; allowed fields are Timestamp, EventType, ID, EmitterId, EmitterType, Data, EventId, ExpectedVersion`,
    );
    expect(bySource.get(long.messageId)?.Body).toBe(long.body);
    expect(attribute(bySource.get(control.messageId)!, MessageAttributeNames.rejectionDetail)).toBe(
      'Bad\uFFFDKey: unknown field; allowed fields are Timestamp, EventType, ID, EmitterId, EmitterType, Data, EventId, ExpectedVersion',
    );
    expect(bySource.get(unicode.messageId)?.Attributes?.['MessageGroupId']).toBe('unicode-group');
    expect(attribute(bySource.get(unicode.messageId)!, MessageAttributeNames.rejectionDetail)).toBe(
      'EmitterType: must not be empty',
    );
  });

  it('has the tracer capture both SDK clients (off here: POWERTOOLS_TRACE_ENABLED=false)', async () => {
    // Prepare
    const tracer = new Tracer({ serviceName: SERVICE_NAME });
    const capture = vi.spyOn(tracer, 'captureAWSv3Client');

    // Act
    const { handler } = await setup({ tracer });
    const response = await handler(sqsEvent([sqsRecord(validEvent())]), lambdaContext());

    // Assess
    expect(tracer.isTracingEnabled()).toBe(false);
    expect(capture.mock.calls.map(([client]) => client)).toEqual([dynamo, sqs]);
    expect(response).toEqual({ batchItemFailures: [] });
  });
});
