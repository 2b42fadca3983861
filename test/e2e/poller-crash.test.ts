import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/engines/ports.ts';
import { indexOf, messagesIn, scanEvents, stackClients, StackProcess, type Child } from './support.ts';

const EVENTS = 60;
const STREAMS = 3;
const VISIBILITY_SECONDS = 2;

describe.each(['standard', 'fifo'] as const)('a consumer killed in the middle of a batch (%s queue)', (mode) => {
  const stack = new StackProcess();
  const children: Child[] = [];
  let dynamo: DynamoDBClient;
  let sqs: SQSClient;

  beforeAll(async () => {
    // No consumers in the stack itself; a short visibility timeout so redelivery comes soon.
    const state = await stack.start([
      '--queue',
      mode,
      '--concurrency',
      '0',
      '--visibility-timeout',
      String(VISIBILITY_SECONDS),
    ]);
    ({ dynamo, sqs } = stackClients(state));
  });

  afterAll(async () => {
    for (const child of children) await child.stop('SIGKILL');
    dynamo?.destroy();
    sqs?.destroy();
    await stack.stop();
  });

  it('loses nothing and stores nothing twice once the messages are visible again', { timeout: 90_000 }, async () => {
    // Prepare: events in the queue, nobody consuming yet
    const published = await stack.cli([
      'publish',
      '--generate',
      String(EVENTS),
      '--streams',
      String(STREAMS),
      '--stream-prefix',
      'crash',
    ]);
    expect(published.code).toBe(0);
    expect(await messagesIn(sqs, stack.state.queueUrl)).toBe(EVENTS);

    // Act: a consumer stores half of its first batch, then is killed before acknowledging any of it
    const crashing = stack.fixture('crashing-consumer.ts');
    children.push(crashing);
    await crashing.waitFor('HALF-STORED', 60_000);
    crashing.process.kill('SIGKILL');
    await crashing.exited;
    const storedBeforeRecovery = (await scanEvents(dynamo, stack.state.tableName)).length;
    const batch = /HALF-STORED (\d+) of (\d+)/.exec(crashing.stdout)!;
    expect(storedBeforeRecovery).toBe(Number(batch[1]));
    expect(Number(batch[2])).toBeGreaterThan(Number(batch[1]));
    expect(await messagesIn(sqs, stack.state.queueUrl)).toBe(EVENTS);

    // Act: a healthy consumer takes over
    const consumer = stack.consumer(['--concurrency', '2']);
    children.push(consumer);
    await waitUntil(
      async () =>
        (await messagesIn(sqs, stack.state.queueUrl)) === 0 &&
        (await scanEvents(dynamo, stack.state.tableName)).length >= EVENTS,
      'the queue drained into the table',
      60_000,
      250,
    );

    // Assess: every event stored exactly once, versions gapless, the killed batch among them
    const stored = await scanEvents(dynamo, stack.state.tableName);
    expect(stored).toHaveLength(EVENTS);
    expect(new Set(stored.map(indexOf)).size).toBe(EVENTS);
    for (let stream = 1; stream <= STREAMS; stream += 1) {
      const events = stored.filter((event) => event.ID === `crash-${stream}`).sort((a, b) => a.Version - b.Version);
      expect(events.map((event) => event.Version)).toEqual(
        Array.from({ length: EVENTS / STREAMS }, (_, index) => index + 1),
      );
      if (mode === 'fifo') {
        // FIFO keeps send order through the crash: the group waits for its unacknowledged messages.
        expect(events.map((event) => event.Data?.['sequence'])).toEqual(
          Array.from({ length: EVENTS / STREAMS }, (_, index) => index + 1),
        );
      }
    }
    expect(await messagesIn(sqs, stack.state.deadLetterQueueUrl)).toBe(0);
    expect(await consumer.stop('SIGINT')).toBe(0);
  });
});
