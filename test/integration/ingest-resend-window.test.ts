import type { SQSRecord } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { CLOCK_SKEW_MS } from '../../core/store.ts';
import { createIngestHandler, type IngestHandler } from '../../handlers/ingest.ts';
import { duplicateBound } from '../../handlers/ingest-batch.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
import { quietLogger } from './ingest-helpers.ts';

// The idempotency promise with the duplicate window's time bound (README "Idempotency",
// docs/ARCHITECTURE.md "Appending and idempotency"): a redelivery of a message is recognised
// however late it comes; a producer's resend when the first copy was recorded at most
// resendWindow before the resend was sent. Every delivery below goes to a new container (a
// cold store), the case the bound makes cheap.

/** `record` as SQS would deliver it with this SentTimestamp (and, when given, as redriven). */
function sentAt(record: SQSRecord, sent: number, redriveCount?: string): SQSRecord {
  return {
    ...record,
    attributes: { ...record.attributes, SentTimestamp: String(sent) },
    ...(redriveCount !== undefined
      ? {
          messageAttributes: {
            [MessageAttributeNames.redriveCount]: {
              stringValue: redriveCount,
              stringListValues: [],
              binaryListValues: [],
              dataType: 'Number',
            },
          },
        }
      : {}),
  };
}

describe('ingest: the duplicate window bound by SentTimestamp and resendWindow', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  let tableName = '';
  let dlqUrl = '';
  let reader: DynamoDbEventStore;
  beforeAll(async () => {
    tableName = await createTestTable(dynamo, 'resend');
    dlqUrl = await createTestQueue(sqs, 'resend-dlq');
    reader = new DynamoDbEventStore({ client: dynamo, tableName });
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  const container = (): IngestHandler =>
    createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger(), resendWindowSeconds: 300 });

  it('recognises a late redelivery and a resend inside the window, stores a resend outside it, and never bounds a redrive', async () => {
    // Prepare: the event, then 5 more events of the stream.
    const id = `resend-${randomUUID()}`;
    const body = JSON.stringify(validEvent({ ID: id, EventId: 'evt-first' }));
    const first = sqsRecord(body);
    await container()(sqsEvent([first]), lambdaContext());
    await container()(
      sqsEvent(Array.from({ length: 5 }, (_, n) => sqsRecord(validEvent({ ID: id, Data: { n } })))),
      lambdaContext(),
    );
    const recorded = Date.parse((await reader.readStream(id, { limit: 1 })).events[0]!.RecordedAt);

    // Act
    const redelivery = await container()(sqsEvent([first]), lambdaContext());
    const resendInside = await container()(sqsEvent([sentAt(sqsRecord(body), recorded + 299_000)]), lambdaContext());
    const redrive = await container()(sqsEvent([sentAt(sqsRecord(body), recorded + 3_600_000, '1')]), lambdaContext());
    const afterRecognised = (await reader.readStream(id)).version;
    const resendOutside = await container()(
      sqsEvent([sentAt(sqsRecord(body), recorded + 300_000 + CLOCK_SKEW_MS + 1_000)]),
      lambdaContext(),
    );

    // Assess
    for (const response of [redelivery, resendInside, redrive, resendOutside])
      expect(response).toEqual({ batchItemFailures: [] });
    expect(afterRecognised).toBe(6);
    const { events } = await reader.readStream(id);
    expect(events.map((event) => event.EventId).filter((eventId) => eventId === 'evt-first')).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ Version: 7, EventId: 'evt-first' });
  });

  it('bounds a record by SentTimestamp - resendWindow - CLOCK_SKEW_MS; none without a usable SentTimestamp, for a redrive, or with no resendWindow', () => {
    const record = sentAt(sqsRecord(validEvent()), 1_800_000_000_000);

    expect(duplicateBound(record, 300_000)).toBe(1_800_000_000_000 - 300_000 - CLOCK_SKEW_MS);
    expect(duplicateBound(record, 0)).toBe(1_800_000_000_000 - CLOCK_SKEW_MS);
    expect(duplicateBound(record, undefined)).toBeUndefined();
    expect(duplicateBound(sentAt(record, 1_800_000_000_000, '2'), 300_000)).toBeUndefined();
    expect(
      duplicateBound({ ...record, attributes: { ...record.attributes, SentTimestamp: '' } }, 300_000),
    ).toBeUndefined();
    expect(
      duplicateBound({ ...record, attributes: { ...record.attributes, SentTimestamp: 'soon' } }, 300_000),
    ).toBeUndefined();
  });
});
