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

    it(
      'stores groups as units: --generate --group-size, a rejected group redriven by an Events.<i> fix, a group from stdin with ExpectedVersion',
      { timeout: 150_000 },
      async () => {
        // Prepare
        const groups = `${prefix}-groups`;
        const before = await scanEvents(dynamo, stack.state.tableName);
        const ofGroups = async () =>
          (await scanEvents(dynamo, stack.state.tableName)).filter((event) => event.ID.startsWith(`${groups}-`));

        // Act: 60 events in groups of 3 over 4 streams, 10 % of the groups invalid (their first event lacks EmitterType)
        const published = await stack.cli([
          'publish',
          ...['--generate', '60', '--streams', '4', '--group-size', '3', '--invalid-ratio', '0.1'],
          ...['--stream-prefix', groups, '--wait'],
        ]);

        // Assess: the lines count messages and events; the invalid groups are rejected whole
        expect(published.stderr).toBe('');
        expect(published.code).toBe(0);
        const lines = published.stdout.trimEnd().split('\n');
        expect(lines[0]).toMatch(
          new RegExp(
            `^published 20 of 20 messages \\(60 events\\) to the local stack \\(${mode} queue\\) in .*; 2 group\\(s\\) invalid on purpose \\(Events\\.0 lacks EmitterType\\)$`,
          ),
        );
        expect(lines[1]).toMatch(
          /^stored 18 messages \(54 events\), rejected 2 messages \(6 events\) \(SchemaViolation 2\) in \d+\.\d s; /,
        );
        const expectGroupsWhole = (events: readonly StoredEvent[], count: number, inSendOrder: boolean) => {
          expect(events).toHaveLength(count);
          for (const [, stream] of byStream(events)) {
            expect(stream.map((event) => event.Version)).toEqual(stream.map((_, position) => position + 1));
            // Every group whole, in its order, at consecutive versions: GroupIndex 0, 1, 2 and the generator's indexes in a row
            stream.forEach((event, position) => {
              expect(event).toMatchObject({ GroupSize: 3, GroupIndex: position % 3 });
              if (event.GroupIndex! > 0) expect(indexOf(event)).toBe(indexOf(stream[position - 1]!) + 1);
            });
            if (inSendOrder) {
              const sequences = stream.map((event) => Number(event.Data?.['sequence']));
              expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
            }
          }
        };
        // FIFO: each stream's groups in send order (a redriven group comes after the later ones)
        expectGroupsWhole(await ofGroups(), 54, mode === 'fifo');
        const listed = JSON.parse((await stack.cli(['rejected', '--json'])).stdout) as Rejected[];
        expect(listed.map((letter) => [letter.reason, letter.detail])).toEqual([
          ['SchemaViolation', 'Events[0].EmitterType: required field is missing'],
          ['SchemaViolation', 'Events[0].EmitterType: required field is missing'],
        ]);

        // Assess: read shows which events were written together (table and JSON)
        const table = await stack.cli(['read', `${groups}-1`, '--limit', '3']);
        expect(
          table.stdout
            .split('\n')
            .slice(1, 6)
            .map((line) => line.split(/ {2,}/).slice(0, 2)),
        ).toEqual([
          ['Version', 'Group'],
          [expect.stringMatching(/^-+$/), expect.stringMatching(/^-+$/)],
          ['1', '1/3'],
          ['2', '2/3'],
          ['3', '3/3'],
        ]);
        const json = JSON.parse((await stack.cli(['read', `${groups}-1`, '--json'])).stdout) as {
          events: StoredEvent[];
        };
        expect(json.events.slice(0, 3).map((event) => [event.GroupIndex, event.GroupSize])).toEqual([
          [0, 3],
          [1, 3],
          [2, 3],
        ]);

        // Act: repair the first event of each rejected group
        const redriven = await stack.cli(['redrive', '--set', 'Events.0.EmitterType=SYSTEM', '--json']);

        // Assess: both groups go back and are stored whole
        expect(redriven.code).toBe(0);
        expect(
          (JSON.parse(redriven.stdout) as { output: { counts: Record<string, number> } }).output.counts,
        ).toMatchObject({
          received: 2,
          redriven: 2,
          stillRejected: 0,
        });
        await drained(before.length + 60, 0);
        expectGroupsWhole(await ofGroups(), 60, false);

        // Act: a group from stdin at ExpectedVersion 0, sent twice (a producer's retry), then another group at 0
        const streamId = `${prefix}-group-stdin`;
        const group = (type: string) =>
          JSON.stringify({
            ID: streamId,
            ExpectedVersion: 0,
            Events: ['ORDER_PLACED', type, 'STOCK_RESERVED'].map((EventType, n) => ({
              Timestamp: 1596719980,
              EventType,
              EmitterId: 'checkout',
              EmitterType: 'SYSTEM',
              Data: { n, price: 1.5 },
            })),
          });
        const first = await stack.cli(['publish', '-', '--wait'], group('PAYMENT_RESERVED'));
        const retry = await stack.cli(['publish', '-', '--wait'], group('PAYMENT_RESERVED'));
        const late = await stack.cli(['publish', '-', '--wait'], group('PAYMENT_DECLINED'));

        // Assess: stored once at versions 1 to 3; the other group is refused whole
        expect(first.stdout).toMatch(/\nstored 1 message \(3 events\), rejected 0 messages \(0 events\) in /);
        expect(retry.stdout).toMatch(/\nstored 1 message \(3 events\), rejected 0 messages \(0 events\) in /);
        expect(late.stdout).toMatch(
          /\nstored 0 messages \(0 events\), rejected 1 message \(3 events\) \(WrongExpectedVersion 1\) in /,
        );
        const read = JSON.parse((await stack.cli(['read', streamId, '--json'])).stdout) as {
          version: number;
          events: StoredEvent[];
        };
        expect(read.version).toBe(3);
        expect(read.events.map((event) => [event.Version, event.EventType, event.GroupIndex, event.GroupSize])).toEqual(
          [
            [1, 'ORDER_PLACED', 0, 3],
            [2, 'PAYMENT_RESERVED', 1, 3],
            [3, 'STOCK_RESERVED', 2, 3],
          ],
        );
        const [letter] = JSON.parse((await stack.cli(['rejected', '--json'])).stdout) as Rejected[];
        expect(letter).toMatchObject({ streamId, reason: 'WrongExpectedVersion', body: group('PAYMENT_DECLINED') });
      },
    );
  });
}
