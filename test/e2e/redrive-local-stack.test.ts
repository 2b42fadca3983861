import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../core/store.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { messagesIn, scanEvents, stackClients, StackProcess } from './support.ts';

const BIG = '12345678901234567890';

/** An event's JSON text, written by hand so that its number literals are exactly these. */
function eventText(
  id: string,
  eventId: string,
  options: { emitterType?: boolean; expectedVersion?: number; data?: string } = {},
): string {
  return (
    `{"Timestamp":1596719980,"EventType":"PAYMENT_TAKEN","ID":"${id}","EmitterId":"till-7"` +
    `${options.emitterType === false ? '' : ',"EmitterType":"SYSTEM"'},"EventId":"${eventId}"` +
    `${options.expectedVersion !== undefined ? `,"ExpectedVersion":${options.expectedVersion}` : ''}` +
    `,"Data":${options.data ?? '{}'}}`
  );
}

interface Rejected {
  readonly messageId: string;
  readonly streamId: string | undefined;
  readonly reason: string | undefined;
}

/**
 * The redrive through the local stack and the CLI, in FIFO mode, as a user runs it: events
 * the real ingest dead-lettered are listed, redriven with no options and with a fix, and read
 * back from the table as DynamoDB holds them.
 */
describe('redrive on the local stack (FIFO queue), through the CLI', () => {
  const stack = new StackProcess();
  let dynamo: DynamoDBClient;
  let sqs: SQSClient;

  beforeAll(async () => {
    const state = await stack.start(['--queue', 'fifo', '--concurrency', '2']);
    ({ dynamo, sqs } = stackClients(state));
  });

  afterAll(async () => {
    dynamo?.destroy();
    sqs?.destroy();
    await stack.stop();
  });

  const deadLetters = (count: number) =>
    waitUntil(
      async () => (await messagesIn(sqs, stack.state.deadLetterQueueUrl)) === count,
      `${count} dead letters`,
      60_000,
      250,
    );
  const rawItem = async (id: string, version: number) =>
    (
      await dynamo.send(
        new GetItemCommand({
          TableName: stack.state.tableName,
          Key: { ID: { S: id }, Version: { N: String(version) } },
          ConsistentRead: true,
        }),
      )
    ).Item;
  const stream = async (id: string) =>
    (await scanEvents(dynamo, stack.state.tableName))
      .filter((event) => event.ID === id)
      .sort((a, b) => a.Version - b.Version);

  it(
    "lists every dead letter, redrives with {} and with a fix, keeps number literals and a stream's order",
    { timeout: 240_000 },
    async () => {
      // Prepare: 8 events without EmitterType over 7 streams (two share one); 30 of one stream;
      // one with ExpectedVersion 1 on a new stream (WrongExpectedVersion) carrying a literal a
      // double cannot hold; one without EmitterType carrying the same literal.
      const eight = Array.from({ length: 8 }, (_, n) =>
        eventText(`listed-${Math.max(1, n)}`, `listed-${n}`, { emitterType: false }),
      );
      const thirty = Array.from({ length: 30 }, (_, n) => eventText('long', `step-${n + 1}`, { emitterType: false }));
      const exact = eventText('exact', 'exact-2', {
        expectedVersion: 1,
        data: `{"amountMinor":${BIG},"note":"caf\\u00e9"}`,
      });
      const fixed = eventText('fixed', 'fixed-1', { emitterType: false, data: `{"amountMinor":${BIG},"tag":"a\\/b"}` });
      expect((await stack.cli(['publish', '-'], eight.join('\n'))).code).toBe(0);
      await deadLetters(8);

      // Act 1: `rejected` in FIFO mode
      const listed = JSON.parse((await stack.cli(['rejected', '--json', '--limit', '100'])).stdout) as Rejected[];

      // Assess 1: all 8, the two of one stream included
      expect(listed).toHaveLength(8);
      expect(listed.filter((message) => message.streamId === 'listed-1')).toHaveLength(2);
      expect(listed.every((message) => message.reason === 'SchemaViolation')).toBe(true);

      // Prepare 2
      expect((await stack.cli(['publish', '-'], [...thirty, exact, fixed].join('\n'))).code).toBe(0);
      await deadLetters(40);
      expect((await stack.cli(['publish', '-'], eventText('exact', 'exact-1'))).code).toBe(0);
      await waitUntil(async () => (await stream('exact')).length === 1, 'exact-1 stored', 30_000, 250);

      // Act 2: a redrive with no options sends back, byte for byte, what is valid now
      const plain = await stack.cli(['redrive', '--json']);

      // Assess 2: the event stored at version 2 with its literal exactly; the rest stayed
      expect(plain.code).toBe(0);
      expect((JSON.parse(plain.stdout) as { output: { counts: Record<string, number> } }).output.counts).toMatchObject({
        redriven: 1,
      });
      await waitUntil(async () => (await stream('exact')).length === 2, 'exact-2 stored', 30_000, 250);
      const exactItem = await rawItem('exact', 2);
      expect(exactItem?.['EventId']).toEqual({ S: 'exact-2' });
      expect(exactItem?.['Data']).toEqual({ M: { amountMinor: { N: BIG }, note: { S: 'café' } } });
      await deadLetters(39);

      // Act 3: the fix
      const repaired = await stack.cli(['redrive', '--set', 'EmitterType=SYSTEM', '--json']);

      // Assess 3: every dead letter went back; the 30 of one stream in their order
      expect(repaired.code).toBe(0);
      expect(
        (JSON.parse(repaired.stdout) as { output: { counts: Record<string, number> } }).output.counts,
      ).toMatchObject({ received: 39, redriven: 39, stillRejected: 0 });
      await deadLetters(0);
      await waitUntil(
        async () => (await stream('long')).length === 30 && (await stream('fixed')).length === 1,
        'all stored',
        60_000,
        250,
      );
      const long: StoredEvent[] = await stream('long');
      expect(long.map((event) => [event.Version, event.EventId])).toEqual(
        Array.from({ length: 30 }, (_, n) => [n + 1, `step-${n + 1}`]),
      );
      const fixedItem = await rawItem('fixed', 1);
      expect(fixedItem).toMatchObject({
        EventId: { S: 'fixed-1' },
        EmitterType: { S: 'SYSTEM' },
        EmitterId: { S: 'till-7' },
        Timestamp: { N: '1596719980' },
        Data: { M: { amountMinor: { N: BIG }, tag: { S: 'a/b' } } },
      });
      expect(await stream('listed-1')).toHaveLength(2);

      // Act 4: events over SQS's former 256 KiB: one whose item fits DynamoDB's 400 KB, one that does not
      const fits = eventText('large', 'large-1', { data: `{"blob":"${'a'.repeat(350 * 1024)}"}` });
      const tooLarge = eventText('large', 'large-2', { data: `{"blob":"${'b'.repeat(420 * 1024)}"}` });
      expect((await stack.cli(['publish', '-'], `${fits}\n${tooLarge}`)).code).toBe(0);

      // Assess 4: the first stored, the second dead-lettered as ItemTooLarge
      await deadLetters(1);
      await waitUntil(async () => (await stream('large')).length === 1, 'large-1 stored', 30_000, 250);
      expect((await stream('large'))[0]?.EventId).toBe('large-1');
      const tooLargeListed = JSON.parse((await stack.cli(['rejected', '--json'])).stdout) as Rejected[];
      expect(tooLargeListed.map((message) => [message.streamId, message.reason])).toEqual([['large', 'ItemTooLarge']]);
    },
  );
});
