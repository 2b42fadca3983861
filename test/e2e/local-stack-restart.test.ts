import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/engines/ports.ts';
import { indexOf, messagesIn, scanEvents, stackClients, StackProcess } from './support.ts';

const EVENTS = 300;
const STREAMS = 3;

function listening(endpoint: string): Promise<boolean> {
  const { port } = new URL(endpoint);
  return new Promise((resolve) => {
    const socket = connect({ port: Number(port), host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('Ctrl-C while consuming, then a restart on the same data folder', () => {
  const stack = new StackProcess();
  const clients: { dynamo: DynamoDBClient; sqs: SQSClient }[] = [];

  afterAll(async () => {
    for (const { dynamo, sqs } of clients) {
      dynamo.destroy();
      sqs.destroy();
    }
    await stack.stop();
  });

  it(
    'stops cleanly, keeps the events on disk, and finishes the queue after the restart',
    { timeout: 120_000 },
    async () => {
      // Prepare: an on-disk stack with one slow-ish consumer, and events waiting
      const args = ['--queue', 'standard', '--concurrency', '1', '--visibility-timeout', '5'];
      const first = await stack.start(args, { onDisk: true });
      const firstClients = stackClients(first);
      clients.push(firstClients);
      const published = await stack.cli([
        'publish',
        '--generate',
        String(EVENTS),
        '--streams',
        String(STREAMS),
        '--stream-prefix',
        'restart',
      ]);
      expect(published.code).toBe(0);
      await waitUntil(
        async () => (await scanEvents(firstClients.dynamo, first.tableName)).length >= 30,
        'some events stored',
        60_000,
        100,
      );

      expect(await messagesIn(firstClients.sqs, first.queueUrl)).toBeGreaterThan(0);

      // Act: Ctrl-C in the middle of consuming
      const firstChild = stack.child!;
      const code = await firstChild.stop('SIGINT');

      // Assess: a clean stop, engines gone, state file removed
      expect(code).toBe(0);
      expect(firstChild.stdout).toContain(
        'SIGINT: stopping (batches in flight finish; Ctrl-C again to force)...\nStopped.\n',
      );
      expect(await listening(first.dynamoDbEndpoint)).toBe(false);
      expect(await listening(first.sqsEndpoint)).toBe(false);
      expect(await listening(first.sfnEndpoint)).toBe(false);
      const stopped = await stack.cli(['stats']);
      expect(stopped.stderr).toBe('eventstore: the local stack is not running; start it with npm start\n');

      // Act: start again on the same data folder (new ports)
      const second = await stack.start(args, { onDisk: true });
      const secondClients = stackClients(second);
      clients.push(secondClients);
      await waitUntil(
        async () =>
          (await messagesIn(secondClients.sqs, second.queueUrl)) === 0 &&
          (await scanEvents(secondClients.dynamo, second.tableName)).length >= EVENTS,
        'the rest of the queue stored',
        60_000,
        250,
      );

      // Assess: every event exactly once, versions gapless per stream
      const stored = await scanEvents(secondClients.dynamo, second.tableName);
      expect(stored).toHaveLength(EVENTS);
      expect(new Set(stored.map(indexOf)).size).toBe(EVENTS);
      for (let stream = 1; stream <= STREAMS; stream += 1) {
        const versions = stored
          .filter((event) => event.ID === `restart-${stream}`)
          .map((event) => event.Version)
          .sort((a, b) => a - b);
        expect(versions).toEqual(Array.from({ length: EVENTS / STREAMS }, (_, index) => index + 1));
      }
      expect(await messagesIn(secondClients.sqs, second.deadLetterQueueUrl)).toBe(0);
    },
  );
});
