import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import type { EventStore } from '../../core/store.ts';
import { createIngestHandler, SDK_TIMEOUTS } from '../../handlers/ingest.ts';
import { MAX_CONCURRENT_REQUESTS } from '../../handlers/ingest-batch.ts';
import { LOCAL_CREDENTIALS as credentials, LOCAL_REGION } from '../../local/defaults.ts';
import { createTestQueue, createTestTable, dynamoClient } from '../support/engines.ts';
import { lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
import { quietLogger, receiveExactly } from './ingest-helpers.ts';

// Issue 19, "Also seen": a standard batch runs its records at once, and the SDK's HTTP agent
// has 50 sockets; the connection timeout (3 s, SDK_TIMEOUTS) starts when a request is handed to
// the agent, not when it gets a socket (@smithy/node-http-handler, setConnectionTimeout), so a
// request that only waited for a socket failed with TimeoutError. The batch bounds its
// concurrent requests to the agent's sockets (handlers/ingest-batch.ts).

/** Clients as the deployed function builds them: the SDK's default agent, the function's timeouts. */
function productionLikeClients(): { dynamo: DynamoDBClient; sqs: SQSClient } {
  const common = { region: LOCAL_REGION, credentials, requestHandler: SDK_TIMEOUTS };
  return {
    dynamo: new DynamoDBClient({ ...common, endpoint: inject('dynamoDbEndpoint') }),
    sqs: new SQSClient({ ...common, endpoint: inject('sqsEndpoint') }),
  };
}

describe('a standard batch of 1,000 records', () => {
  const { dynamo, sqs } = productionLikeClients();
  /** For reading back, with no timeouts of its own. */
  const plain = dynamoClient();
  let tableName = '';

  beforeAll(async () => {
    tableName = await createTestTable(dynamo, 'sockets');
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
    plain.destroy();
  });

  it('stores every record, none failing for want of a socket', async () => {
    // Prepare: 1,000 records of 1,000 new streams (each a tail read and a put), plus 50
    // invalid ones the handler dead-letters (SQS sends on the same batch).
    const dlqUrl = await createTestQueue(sqs, 'sockets-dlq');
    const logger = quietLogger();
    const warnings = vi.spyOn(logger, 'warn');
    const handler = createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger });
    const prefix = `sockets-${randomUUID().slice(0, 8)}`;
    const valid = Array.from({ length: 1_000 }, (_, index) =>
      sqsRecord(validEvent({ ID: `${prefix}-${index}`, Data: { index } })),
    );
    const invalid = Array.from({ length: 50 }, (_, index) => sqsRecord({ ID: `${prefix}-bad-${index}` }));
    const records = [...valid, ...invalid];

    // Act
    const started = Date.now();
    const response = await handler(sqsEvent(records), lambdaContext({ getRemainingTimeInMillis: () => 120_000 }));
    const elapsed = Date.now() - started;

    // Assess
    console.log(
      `batch-sockets: ${records.length} records in ${elapsed} ms, ${response.batchItemFailures.length} failed`,
    );
    const timeouts = warnings.mock.calls.filter((call) => JSON.stringify(call).includes('TimeoutError'));
    console.log(`batch-sockets: ${timeouts.length} records failed with TimeoutError`);
    expect(timeouts).toEqual([]);
    expect(response).toEqual({ batchItemFailures: [] });
    const reader = new DynamoDbEventStore({ client: plain, tableName });
    const versions = await Promise.all(
      valid.map(async (_, index) => (await reader.readStream(`${prefix}-${index}`)).version),
    );
    expect(versions.filter((version) => version !== 1)).toEqual([]);
    expect(await receiveExactly(sqs, dlqUrl, invalid.length)).toHaveLength(invalid.length);
  }, 240_000);

  it('never has more records in the store at once than maxConcurrentRequests', async () => {
    // Prepare: the real store, watched (not faked) to count the appends in flight.
    const dlqUrl = await createTestQueue(sqs, 'sockets-dlq');
    const real = new DynamoDbEventStore({ client: dynamo, tableName });
    let inFlight = 0;
    let most = 0;
    const store: EventStore = {
      appendToStream: async (...args) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        try {
          return await real.appendToStream(...args);
        } finally {
          inFlight -= 1;
        }
      },
      appendGroup: (...args) => real.appendGroup(...args),
      readStream: (...args) => real.readStream(...args),
    };
    const handler = createIngestHandler({ dynamo, sqs, tableName, dlqUrl, store, logger: quietLogger() });
    const prefix = `bounded-${randomUUID().slice(0, 8)}`;
    // Three events per stream: the later ones wait for the earlier without holding a slot.
    const records = Array.from({ length: 300 }, (_, index) =>
      sqsRecord(validEvent({ ID: `${prefix}-${index % 100}`, Data: { index } })),
    );

    // Act
    const response = await handler(sqsEvent(records), lambdaContext({ getRemainingTimeInMillis: () => 120_000 }));

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(most).toBe(MAX_CONCURRENT_REQUESTS);
    const reader = new DynamoDbEventStore({ client: plain, tableName });
    const versions = await Promise.all(
      Array.from({ length: 100 }, async (_, index) => (await reader.readStream(`${prefix}-${index}`)).version),
    );
    expect(versions.filter((version) => version !== 3)).toEqual([]);
  }, 120_000);
});
