import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueMode } from '../../core/queue-mode.ts';
import type { StoredEvent } from '../../core/store.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { byStream, indexOf, messagesIn, scanEvents, stackClients, StackProcess } from './support.ts';

const EVENTS = 1000;
const STREAMS = 20;
const INVALID = 50;

interface Rejected {
  messageId: string;
  streamId: string | undefined;
  reason: string | undefined;
  detail: string | undefined;
  body: string;
}

/**
 * The local stack end to end, as a user drives it: `npm start` (here: local/start.ts in memory
 * on free ports), then the CLI publishes 1,000 events over 20 streams with 5% invalid, the
 * pollers feed the real handler, `read` and the table show every valid event once (FIFO: in
 * send order), `rejected` lists the invalid ones with reasons, and `redrive --set` stores them.
 */
export function describeLocalStack(mode: QueueMode): void {
  describe(`the local stack end to end (${mode} queue)`, () => {
    const stack = new StackProcess();
    const prefix = `e2e-${mode}`;
    let dynamo: DynamoDBClient;
    let sqs: SQSClient;

    beforeAll(async () => {
      const state = await stack.start(['--queue', mode, '--concurrency', '4']);
      ({ dynamo, sqs } = stackClients(state));
    });

    afterAll(async () => {
      dynamo?.destroy();
      sqs?.destroy();
      await stack.stop();
      expect(stack.child?.stdout).toContain('Stopped.');
    });

    const drained = async (stored: number, deadLetters: number) => {
      const { state } = stack;
      await waitUntil(
        async () =>
          (await messagesIn(sqs, state.queueUrl)) === 0 &&
          (await messagesIn(sqs, state.deadLetterQueueUrl)) === deadLetters &&
          (await scanEvents(dynamo, state.tableName)).length === stored,
        `${stored} events stored and ${deadLetters} dead-lettered`,
        60_000,
        250,
      );
    };

    it('prints what a user needs: mode, endpoints, queue URLs, table, next commands', () => {
      // Assess
      const { state } = stack;
      const out = stack.child!.stdout;
      expect(out).toContain(`Event store running locally: ${mode} queue, data in memory: nothing is kept after Ctrl-C`);
      expect(out).toContain(`  DynamoDB        ${state.dynamoDbEndpoint}   table ${state.tableName}`);
      expect(out).toContain(`  queue           ${state.queueUrl}`);
      expect(out).toContain(`  dead letters    ${state.deadLetterQueueUrl}`);
      expect(out).toContain(`  Step Functions  ${state.sfnEndpoint}   ${state.stateMachineArn}`);
      expect(out).toContain('  consumers       4 poller(s), batch size 10, batching window 0 s');
      expect(out).toContain('  npx eventstore publish --generate 1000 --streams 20');
      expect(state.queueUrl.endsWith('.fifo')).toBe(mode === 'fifo');
    });

    it(
      'stores every valid event exactly once, lists the invalid ones, and redrives them',
      { timeout: 150_000 },
      async () => {
        // Act: publish through the CLI
        const published = await stack.cli([
          'publish',
          '--generate',
          String(EVENTS),
          '--streams',
          String(STREAMS),
          '--invalid-ratio',
          '0.05',
          '--stream-prefix',
          prefix,
        ]);

        // Assess: the summary line, then the queue drains into the table and the DLQ
        expect(published.stderr).toBe('');
        expect(published.code).toBe(0);
        expect(published.stdout).toContain(
          `published ${EVENTS} of ${EVENTS} events to the local stack (${mode} queue)`,
        );
        expect(published.stdout).toContain(`${INVALID} invalid on purpose`);
        await drained(EVENTS - INVALID, INVALID);

        const stored = await scanEvents(dynamo, stack.state.tableName);
        const indexes = stored.map(indexOf);
        expect(new Set(indexes).size).toBe(EVENTS - INVALID);
        const missing = Array.from({ length: EVENTS }, (_, index) => index).filter((index) => !indexes.includes(index));
        expect(missing).toHaveLength(INVALID);
        const streams = byStream(stored);
        expect(streams.size).toBe(STREAMS);
        for (const [streamId, events] of streams) {
          expect(events.map((event) => event.Version)).toEqual(events.map((_, position) => position + 1));
          expect(events.every((event) => event.ID === streamId && event.EmitterType === 'SYSTEM')).toBe(true);
          if (mode === 'fifo') {
            // Send order: generated events carry their sequence within the stream.
            const sequences = events.map((event) => Number(event.Data?.['sequence']));
            expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
          }
        }

        // Assess: `read --json` returns what the table holds, for a few streams
        for (const streamId of [`${prefix}-1`, `${prefix}-7`, `${prefix}-${STREAMS}`]) {
          const read = await stack.cli(['read', streamId, '--json']);
          expect(read.code).toBe(0);
          const result = JSON.parse(read.stdout) as { streamId: string; version: number; events: StoredEvent[] };
          expect(result.streamId).toBe(streamId);
          expect(result.version).toBe(streams.get(streamId)!.length);
          expect(result.events).toEqual(streams.get(streamId));
        }
        const backward = JSON.parse(
          (await stack.cli(['read', `${prefix}-1`, '--json', '--backward', '--limit', '2'])).stdout,
        ) as { events: StoredEvent[] };
        expect(backward.events.map((event) => event.Version)).toEqual([
          streams.get(`${prefix}-1`)!.length,
          streams.get(`${prefix}-1`)!.length - 1,
        ]);

        // Assess: `rejected` lists them with their reason, and leaves them in the DLQ
        const listed = await stack.cli(['rejected', '--json', '--limit', '100']);
        expect(listed.code).toBe(0);
        const rejected = JSON.parse(listed.stdout) as Rejected[];
        // Every dead letter, in both modes (FIFO: SQS returns up to 10 of a group per receive).
        expect(rejected).toHaveLength(INVALID);
        for (const message of rejected) {
          expect(message.reason).toBe('SchemaViolation');
          expect(message.detail).toBe('EmitterType: required field is missing');
          expect(missing).toContain(indexOf(JSON.parse(message.body) as StoredEvent));
        }
        expect(await messagesIn(sqs, stack.state.deadLetterQueueUrl)).toBe(INVALID);
        const stats = JSON.parse((await stack.cli(['stats', '--json'])).stdout) as {
          eventsStored: number;
          deadLetterQueue: { visible: number };
          queue: { visible: number; inFlight: number };
          rejectedByReason: Record<string, number>;
        };
        expect(stats.eventsStored).toBe(EVENTS - INVALID);
        expect(stats.deadLetterQueue.visible).toBe(INVALID);
        expect(stats.queue).toMatchObject({ visible: 0, inFlight: 0 });
        expect(Object.keys(stats.rejectedByReason)).toEqual(['SchemaViolation']);

        // Act: a dry run first
        const dryRun = await stack.cli(['redrive', '--dry-run', '--set', 'EmitterType=SYSTEM', '--json']);

        // Assess: it says what it would do and changes nothing
        expect(dryRun.code).toBe(0);
        expect(
          (JSON.parse(dryRun.stdout) as { output: { counts: Record<string, number> } }).output.counts,
        ).toMatchObject({
          wouldRedrive: rejected.length,
          redriven: 0,
        });
        expect(await messagesIn(sqs, stack.state.deadLetterQueueUrl)).toBe(INVALID);
        expect(await scanEvents(dynamo, stack.state.tableName)).toHaveLength(EVENTS - INVALID);

        // Act: repair and redrive them
        const redriven = await stack.cli(['redrive', '--set', 'EmitterType=SYSTEM', '--json']);

        // Assess: the workflow sent all of them back, and they are stored
        expect(redriven.stderr).toBe('');
        expect(redriven.code).toBe(0);
        const execution = JSON.parse(redriven.stdout) as { status: string; output: { counts: Record<string, number> } };
        expect(execution.status).toBe('SUCCEEDED');
        expect(execution.output.counts).toMatchObject({ received: INVALID, redriven: INVALID, stillRejected: 0 });
        await drained(EVENTS, 0);
        const all = await scanEvents(dynamo, stack.state.tableName);
        expect(new Set(all.map(indexOf)).size).toBe(EVENTS);
        expect(all.every((event) => event.EmitterType === 'SYSTEM')).toBe(true);
        const empty = await stack.cli(['rejected']);
        expect(empty.stdout).toBe('the dead-letter queue of the local stack is empty\n');
      },
    );

    it(
      'publishes a JSON array and JSON lines from stdin, a producer retry stored once',
      { timeout: 60_000 },
      async () => {
        // Prepare: the same event (same EventId, same content) twice, as a retrying producer sends it
        const streamId = `${prefix}-stdin`;
        const event = (n: number) => ({
          Timestamp: '2026-01-02T03:04:05Z',
          EventType: 'ITEM_ADDED',
          ID: streamId,
          EmitterId: 'shop',
          EmitterType: 'USER',
          EventId: `evt-${n}`,
          Data: { n },
        });
        const before = (await scanEvents(dynamo, stack.state.tableName)).length;
        const deadLettersBefore = await messagesIn(sqs, stack.state.deadLetterQueueUrl);

        // Act
        const array = await stack.cli(['publish', '-'], JSON.stringify([event(1), event(2), event(1)]));
        const lines = await stack.cli(['publish', '-'], `${JSON.stringify(event(3))}\n\n${JSON.stringify(event(2))}\n`);

        // Assess
        expect(array.stdout).toContain(`published 3 of 3 events to the local stack (${mode} queue)`);
        expect(lines.stdout).toContain(`published 2 of 2 events to the local stack (${mode} queue)`);
        await drained(before + 3, deadLettersBefore);
        const read = JSON.parse((await stack.cli(['read', streamId, '--json'])).stdout) as {
          version: number;
          events: StoredEvent[];
        };
        expect(read.version).toBe(3);
        expect(read.events.map((stored) => stored.EventId)).toEqual(['evt-1', 'evt-2', 'evt-3']);
        expect(read.events[0]).toMatchObject({
          ID: streamId,
          Version: 1,
          Timestamp: '2026-01-02T03:04:05Z',
          EmitterType: 'USER',
          Data: { n: 1 },
        });
        const table = await stack.cli(['read', streamId, '--from', '2']);
        expect(table.code).toBe(0);
        expect(table.stdout.split('\n').slice(0, 2)).toEqual([
          `stream ${streamId}: version 3, showing 2 event(s)`,
          expect.stringMatching(/^Version +EventType +Timestamp +EmitterType +EmitterId +RecordedAt +EventId +Data$/),
        ]);
      },
    );
  });
}
