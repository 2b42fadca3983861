import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { ConfigurationError } from '../../core/errors.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../core/metrics.ts';
import type * as ingestModule from '../../handlers/ingest.ts';
import { readIngestConfig } from '../../handlers/ingest.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
import { attribute, receiveExactly } from './ingest-helpers.ts';

type IngestModule = typeof ingestModule;

/** A fresh copy of the handler module: a new container, configured from the environment as it is now. */
async function coldStart(): Promise<IngestModule> {
  vi.resetModules();
  return import('../../handlers/ingest.ts');
}

function configurationError(env: Record<string, string | undefined>): unknown {
  try {
    readIngestConfig(env);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('ingest handler configuration', () => {
  it('reads TABLE_NAME, DLQ_URL, DEDUP_WINDOW and RESEND_WINDOW_SECONDS, defaulting them to 50 and 300', () => {
    // Prepare
    const dlqUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/EventStore-DeadLetterQueue';

    // Act
    const defaults = readIngestConfig({ TABLE_NAME: 'events', DLQ_URL: dlqUrl });
    const explicit = readIngestConfig({
      TABLE_NAME: ' events ',
      DLQ_URL: dlqUrl,
      DEDUP_WINDOW: '1000',
      RESEND_WINDOW_SECONDS: '86400',
    });
    const none = readIngestConfig({ TABLE_NAME: 'events', DLQ_URL: dlqUrl, RESEND_WINDOW_SECONDS: '0' });

    // Assess
    expect(defaults).toEqual({ tableName: 'events', dlqUrl, dedupWindow: 50, resendWindowSeconds: 300 });
    expect(explicit).toEqual({ tableName: 'events', dlqUrl, dedupWindow: 1000, resendWindowSeconds: 86_400 });
    expect(none.resendWindowSeconds).toBe(0);
  });

  it.each([
    [
      {},
      'TABLE_NAME: the environment variable is missing; set it to the event table name; DLQ_URL: the environment variable is missing; set it to the dead-letter queue URL',
    ],
    [{ TABLE_NAME: 'events' }, 'DLQ_URL: the environment variable is missing; set it to the dead-letter queue URL'],
    [
      { TABLE_NAME: '', DLQ_URL: 'http://127.0.0.1:1/0/dlq' },
      'TABLE_NAME: the environment variable is empty; set it to the event table name',
    ],
    [{ TABLE_NAME: 'events', DLQ_URL: 'dlq' }, 'DLQ_URL: "dlq" is not a URL; set it to the dead-letter queue URL'],
    [
      { TABLE_NAME: 'events', DLQ_URL: 'http://127.0.0.1:1/0/dlq', DEDUP_WINDOW: '0' },
      'DEDUP_WINDOW: 0 is not an integer from 1 to 1000',
    ],
    [
      { TABLE_NAME: 'events', DLQ_URL: 'http://127.0.0.1:1/0/dlq', DEDUP_WINDOW: '1001' },
      'DEDUP_WINDOW: 1001 is not an integer from 1 to 1000',
    ],
    [
      { TABLE_NAME: 'events', DLQ_URL: 'http://127.0.0.1:1/0/dlq', DEDUP_WINDOW: '2.5' },
      'DEDUP_WINDOW: "2.5" is not an integer from 1 to 1000',
    ],
    [
      { TABLE_NAME: 'events', DLQ_URL: 'http://127.0.0.1:1/0/dlq', DEDUP_WINDOW: 'many' },
      'DEDUP_WINDOW: "many" is not an integer from 1 to 1000',
    ],
    [
      { TABLE_NAME: 'events', DLQ_URL: 'http://127.0.0.1:1/0/dlq', RESEND_WINDOW_SECONDS: '86401' },
      'RESEND_WINDOW_SECONDS: 86401 is not an integer from 0 to 86400',
    ],
    [
      { TABLE_NAME: 'events', DLQ_URL: 'http://127.0.0.1:1/0/dlq', RESEND_WINDOW_SECONDS: '-1' },
      'RESEND_WINDOW_SECONDS: "-1" is not an integer from 0 to 86400',
    ],
    [
      { TABLE_NAME: 'events', DLQ_URL: 'http://127.0.0.1:1/0/dlq', RESEND_WINDOW_SECONDS: '5m' },
      'RESEND_WINDOW_SECONDS: "5m" is not an integer from 0 to 86400',
    ],
  ])('refuses %j with a ConfigurationError naming the variable', (env, message) => {
    // Act
    const error = configurationError(env);

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).message).toBe(`Ingest handler configuration: ${message}`);
  });
});

describe('the exported Lambda handler, configured from the environment', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  let tableName = '';
  let dlqUrl = '';
  let reader: DynamoDbEventStore;
  const loaded: IngestModule[] = [];

  beforeAll(async () => {
    tableName = await createTestTable(dynamo, 'ingest-env');
    dlqUrl = await createTestQueue(sqs, 'ingest-env-dlq');
    reader = new DynamoDbEventStore({ client: dynamo, tableName });
  });
  afterEach(() => {
    for (const module of loaded.splice(0)) module.disposeIngestHandler();
    vi.unstubAllEnvs();
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  function stubEnvironment(overrides: Record<string, string | undefined> = {}): void {
    const env: Record<string, string | undefined> = {
      TABLE_NAME: tableName,
      DLQ_URL: dlqUrl,
      AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoDbEndpoint'),
      AWS_ENDPOINT_URL_SQS: inject('sqsEndpoint'),
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      ...overrides,
    };
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  }

  it('stores valid events and dead-letters invalid ones through the SDK endpoints in the environment', async () => {
    // Prepare
    stubEnvironment();
    const ingest = await coldStart();
    loaded.push(ingest);
    const id = `env-${randomUUID()}`;
    const valid = sqsRecord(validEvent({ ID: id }));
    const invalid = sqsRecord(validEvent({ ID: id, EventType: undefined }));

    // Act
    const response = await ingest.handler(sqsEvent([valid, invalid]), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect((await reader.readStream(id)).version).toBe(1);
    const [dead] = await receiveExactly(sqs, dlqUrl, 1);
    expect(attribute(dead!, MessageAttributeNames.sourceMessageId)).toBe(invalid.messageId);
    expect(attribute(dead!, MessageAttributeNames.rejectionDetail)).toBe('EventType: required field is missing');
  });

  it('checks DEDUP_WINDOW recent events for duplicates in a container that has not seen the stream', async () => {
    // Prepare: one container stores four events; a second one (window 3) gets the first and last again.
    stubEnvironment({ DEDUP_WINDOW: '3' });
    const id = `window-${randomUUID()}`;
    const bodies = [1, 2, 3, 4].map((seq) => JSON.stringify(validEvent({ ID: id, Data: { seq } })));
    const first = await coldStart();
    loaded.push(first);
    await first.handler(sqsEvent(bodies.map((body) => sqsRecord(body))), lambdaContext());
    const second = await coldStart();
    loaded.push(second);

    // Act
    const lastAgain = await second.handler(sqsEvent([sqsRecord(bodies[3]!)]), lambdaContext());
    const firstAgain = await second.handler(sqsEvent([sqsRecord(bodies[0]!)]), lambdaContext());

    // Assess: the last one is within the window (a duplicate); the first is beyond it, so the
    // standard-queue trade-off applies and it is stored again (docs/ARCHITECTURE.md, "Appending and idempotency").
    expect([lastAgain, firstAgain]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    const stored = await reader.readStream(id);
    expect(stored.events.map((event) => event.Data?.['seq'])).toEqual([1, 2, 3, 4, 1]);
  });

  it('fails each invocation with a ConfigurationError naming DLQ_URL while it is missing, then works once it is set', async () => {
    // Prepare
    stubEnvironment({ DLQ_URL: undefined });
    const ingest = await coldStart();
    loaded.push(ingest);
    const id = `config-${randomUUID()}`;
    const record = sqsRecord(validEvent({ ID: id }));

    // Act
    const failure = await ingest.handler(sqsEvent([record]), lambdaContext()).catch((error: unknown) => error);
    vi.stubEnv('DLQ_URL', dlqUrl);
    const response = await ingest.handler(sqsEvent([record]), lambdaContext());

    // Assess
    // A fresh module graph has its own ConfigurationError class: compare by name.
    expect((failure as Error).name).toBe('ConfigurationError');
    expect((failure as Error).message).toBe(
      'Ingest handler configuration: DLQ_URL: the environment variable is missing; set it to the dead-letter queue URL',
    );
    expect(response).toEqual({ batchItemFailures: [] });
    expect((await reader.readStream(id)).version).toBe(1);
  });
});
