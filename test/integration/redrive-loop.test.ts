import type { QueueMode } from '../../core/queue-mode.ts';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { LOCAL_REGION } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { Poller } from '../../local/poller.ts';
import { runLocalRedrive, type CfnTemplate } from '../../local/workflow-runner.ts';
import { createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { drainQueue, validEvent } from '../support/factories.ts';
import { createRedriveQueues, deadLetterMany, redriveTemplate, succeeded } from './redrive-support.ts';

async function arnOf(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return Attributes!['QueueArn']!;
}

/**
 * Events the redrive's validation passes and the ingest refuses again (an `EventId` that holds
 * other content, an `ExpectedVersion` the stream is past) come back into the DLQ as new
 * messages while the run goes on. The run must leave them for the next run, count each event
 * once, and end when the DLQ holds nothing older than the run.
 */
describe('redrive of events the ingest keeps refusing (the synthesized definition, the real ingest handler)', () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  const templates: Partial<Record<QueueMode, CfnTemplate>> = {};
  const pollers: Poller[] = [];

  beforeAll(() => {
    templates.standard = redriveTemplate('standard');
    templates.fifo = redriveTemplate('fifo');
  });
  afterAll(async () => {
    await Promise.all(pollers.map((poller) => poller.stop()));
    dynamo.destroy();
    sqs.destroy();
  });

  for (const mode of ['standard', 'fifo'] as const) {
    it(`${mode}: seven dead letters refused again: each sent once, left for the next run, and the run ends at queueEmpty`, async () => {
      // Prepare: two streams in the store; seven dead letters the ingest will refuse again:
      // four reuse the EventId of a stored event with other content (EventIdConflict), three
      // expect version 0 of a stream that exists (WrongExpectedVersion)
      const tableName = await createTestTable(dynamo, 'redrive-loop');
      const queueUrls = await createRedriveQueues(sqs, mode === 'fifo');
      const ingest = createIngestHandler({ dynamo, sqs, tableName, dlqUrl: queueUrls.deadLetter });
      // The ingest consumes the source queue, before and while the redrive runs
      let consumed = 0;
      const poller = new Poller({
        sqs,
        queueUrl: queueUrls.source,
        queueArn: await arnOf(sqs, queueUrls.source),
        region: LOCAL_REGION,
        handler: ingest,
        batchSize: 10,
        batchingWindowSeconds: 0,
        waitTimeSeconds: 1,
        onBatch: (report) => (consumed += report.deleted),
      });
      pollers.push(poller);
      poller.start();
      for (const event of [
        validEvent({ ID: 'loop-conflict', EventId: 'e-1', Data: { v: 1 } }),
        validEvent({ ID: 'loop-version', EventId: 'v-1' }),
      ]) {
        await deadLetterMany(sqs, queueUrls.source, [JSON.stringify(event)], mode === 'fifo' ? event.ID : undefined);
      }
      await waitUntil(async () => consumed === 2, 'the first two events stored', 30_000, 20);
      consumed = 0;
      const conflicts = [2, 3, 4, 5].map((v) =>
        JSON.stringify(validEvent({ ID: 'loop-conflict', EventId: 'e-1', Data: { v } })),
      );
      const behind = [2, 3, 4].map((n) =>
        JSON.stringify(validEvent({ ID: 'loop-version', EventId: `v-${n}`, ExpectedVersion: 0 })),
      );
      await deadLetterMany(sqs, queueUrls.deadLetter, conflicts, mode === 'fifo' ? 'loop-conflict' : undefined);
      await deadLetterMany(sqs, queueUrls.deadLetter, behind, mode === 'fifo' ? 'loop-version' : undefined);
      let sends = 0;
      const run = () =>
        runLocalRedrive({
          template: templates[mode]!,
          sqsEndpoint: inject('sqsEndpoint'),
          queueUrls,
          input: {},
          // Before each receive, the ingest has handled what the run sent: the events refused
          // again are back in the DLQ by then (the order a busy deployment would produce)
          wrapQueues: (queues) => ({
            ...queues,
            receive: async (request) => {
              await waitUntil(async () => consumed >= sends, 'the ingest consumed what the redrive sent', 30_000, 20);
              return queues.receive(request);
            },
            send: async (message) => {
              await queues.send(message);
              sends += 1;
            },
            delete: (handles) => queues.delete(handles),
            hold: (handles, seconds) => queues.hold(handles, seconds),
            release: (handles) => queues.release(handles),
          }),
        });

      // Act: two runs, one after the other
      const first = await run();
      const sentByFirst = sends;

      const second = await run();

      // Assess: each run sent each event once, counted it once, and left what came back (FIFO:
      // an arrival it holds locks its stream's group, so it reads at least one of each stream)
      const [one, two] = [succeeded(first), succeeded(second)];
      for (const report of [one, two]) {
        const arrived = report.counts.arrivedDuringRun;
        expect(report.counts).toMatchObject({ received: 7 + arrived, redriven: 7, stillRejected: 0, heldBack: 0 });
        expect(arrived).toBe(mode === 'fifo' ? Math.max(2, arrived) : 7);
        expect(arrived).toBeLessThanOrEqual(7);
        expect(report.stoppedBecause).toBe('queueEmpty');
        expect(report.hiddenUntil).toBeNull();
        expect(report.stayed.map((entry) => entry.outcome)).toEqual(Array(arrived).fill('arrivedDuringRun'));
        for (const entry of report.stayed) {
          expect(entry.detail).toMatch(
            entry.ID === 'loop-conflict'
              ? /^entered the DLQ after this run started \(EventIdConflict: .+\): left for the next run$/
              : /^entered the DLQ after this run started \(WrongExpectedVersion: .+\): left for the next run$/,
          );
        }
      }
      expect([sentByFirst, sends]).toEqual([7, 14]);
      expect(first.executions[0]!.history.length).toBeLessThan(60);
      // The DLQ holds the seven, visible, each redriven twice now; the store did not change
      const left = await drainQueue(sqs, queueUrls.deadLetter, { delete: true });
      expect(left).toHaveLength(7);
      expect(
        left.map((message) => message.MessageAttributes?.[MessageAttributeNames.redriveCount]?.StringValue),
      ).toEqual(Array(7).fill('2'));
      const store = new DynamoDbEventStore({ client: dynamo, tableName });
      expect((await store.readStream('loop-conflict')).version).toBe(1);
      expect((await store.readStream('loop-version')).version).toBe(1);
    });
  }
});
