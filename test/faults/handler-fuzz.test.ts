import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventFingerprint, parseEventBody } from '../../core/event.ts';
import { ALL_REJECTION_REASONS } from '../../core/reasons.ts';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { createIngestHandler } from '../../handlers/ingest.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { lambdaContext, sqsRecord } from '../support/factories.ts';
import { drainDeadLetters, type DeadLetter } from './harness.ts';

// Property: whatever the bodies of a batch, the handler never throws, reports nothing failed
// (the engines are healthy), and every record ends either stored exactly once (its EventId in
// its stream, same content, once) or in the DLQ exactly once with a known reason and a
// detail, never both and never neither. Versions stay gapless.

const seed = Number(process.env['FC_SEED'] ?? Date.now() % 2 ** 31);
const dynamo = dynamoClient();
const sqs = sqsClient();
let tableName = '';
let reader: DynamoDbEventStore;
let run = 0;

beforeAll(async () => {
  tableName = await createTestTable(dynamo, 'faults-fuzz');
  reader = new DynamoDbEventStore({ client: dynamo, tableName });
});

afterAll(() => {
  dynamo.destroy();
  sqs.destroy();
});

/** Stand-ins replaced in the body text, for what JSON.stringify cannot write. */
const LITERALS: Record<string, string> = {
  '"__BIG_EXACT__"': '1e20',
  '"__BIG_ROUNDED__"': '12345678901234567890',
  '"__TINY__"': '1e-200',
};

function deep(levels: number): unknown {
  let value: unknown = 1;
  for (let level = 0; level < levels; level += 1) value = { a: value };
  return value;
}

const trickyData = fc.constantFrom<Record<string, unknown>>(
  { big: '__BIG_EXACT__' },
  { big: '__BIG_ROUNDED__' },
  { tiny: '__TINY__' },
  { '': 'empty key' },
  { nested: { '': 1 } },
  { lone: '\uD800' },
  { deep: deep(31) },
  { deep: deep(40) },
  { emoji: '\u{1F600}', text: 'ünïcödé' },
);

/** An event object near or inside the contract; `slot` picks one of four streams of this run. */
const eventish = fc.record(
  {
    Timestamp: fc.oneof(
      fc.integer({ min: 0, max: 2_000_000_000 }),
      fc.constant(1596719980000),
      fc.constant('2020-08-06T13:19:40Z'),
      fc.constant('2020-02-30T00:00:00Z'),
    ),
    EventType: fc.oneof(fc.constantFrom('ORDER_PLACED', 'ORDER_PAID'), fc.constant('bad type')),
    slot: fc.integer({ min: 0, max: 3 }),
    EmitterId: fc.oneof(fc.constant('fuzz'), fc.constant('')),
    EmitterType: fc.constantFrom('SYSTEM', 'USER'),
    Data: fc.option(fc.oneof(fc.object({ maxDepth: 2 }), trickyData), { nil: undefined }),
    identity: fc.oneof(
      fc.constant({}),
      fc.record({ EventId: fc.constantFrom('e-1', 'e-2', 'e-3') }),
      fc.record({ ExpectedVersion: fc.integer({ min: 0, max: 3 }) }),
    ),
    Unknown: fc.option(fc.constant(true), { nil: undefined, freq: 8 }),
  },
  { requiredKeys: ['Timestamp', 'EventType', 'slot', 'EmitterId', 'EmitterType', 'identity'] },
);

type Body =
  { kind: 'event'; value: typeof eventish extends fc.Arbitrary<infer T> ? T : never } | { kind: 'raw'; text: string };

/**
 * What SQS accepts as a message body: 1 character or more of XML's set, U+10000 to U+10FFFF
 * included (the local SQS server accepts them too: local/engines/fauxqs-characters.ts), so
 * rejected bodies with astral characters are dead-lettered as they are.
 */
const SQS_BODY = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]+$/u;
const sqsBody = (text: string) => SQS_BODY.test(text);

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 6, arbitrary: eventish.map((value) => ({ kind: 'event' as const, value })) },
  {
    weight: 1,
    arbitrary: fc
      .string({ unit: 'binary', maxLength: 200 })
      .filter(sqsBody)
      .map((text) => ({ kind: 'raw' as const, text })),
  },
  {
    weight: 1,
    arbitrary: fc
      .jsonValue({ maxDepth: 3 })
      .map((value) => JSON.stringify(value) ?? 'null')
      .filter(sqsBody)
      .map((text) => ({ kind: 'raw' as const, text })),
  },
);

function render(item: Body, runId: string): string {
  if (item.kind === 'raw') return item.text;
  const { slot, identity, Unknown, ...rest } = item.value;
  const event: Record<string, unknown> = { ...rest, ID: `${runId}-s${slot}`, ...identity };
  if (Unknown) event['Unknown'] = 1;
  let text = JSON.stringify(event);
  for (const [placeholder, literal] of Object.entries(LITERALS)) text = text.replaceAll(placeholder, literal);
  return text;
}

async function checkBatch(bodies: readonly string[], fifo: boolean, dlqUrl: string, runId: string): Promise<void> {
  const messages = bodies.map((text, index) => ({ messageId: `${runId}-m${index}`, body: text }));
  const records = messages.map((message, sequence) => {
    const parsed = parseEventBody(message.body);
    const groupId = parsed.streamId ?? `${runId}-nogroup`;
    return sqsRecord(message.body, {
      messageId: message.messageId,
      fifo: fifo ? { groupId, sequenceNumber: sequence } : undefined,
    });
  });

  // One delivery per record (maxReceiveCount 1): a stream behind ExpectedVersion is final on it,
  // so every record ends stored or dead-lettered in this one batch.
  const response = await createIngestHandler({ dynamo, sqs, tableName, dlqUrl, maxReceiveCount: 1 })(
    { Records: records },
    lambdaContext(),
  );

  expect(response.batchItemFailures).toEqual([]);
  const letters = await drainDeadLetters(sqs, dlqUrl);
  const bySource = new Map<string, DeadLetter[]>();
  for (const letter of letters) {
    expect(ALL_REJECTION_REASONS).toContain(letter.reason);
    expect(letter.detail?.length ?? 0).toBeGreaterThan(0);
    const list = bySource.get(letter.sourceMessageId ?? '') ?? [];
    list.push(letter);
    bySource.set(letter.sourceMessageId ?? '', list);
  }
  const streams = new Map<string, Awaited<ReturnType<DynamoDbEventStore['readStream']>>>();
  for (const message of messages) {
    const dead = bySource.get(message.messageId) ?? [];
    expect(dead.length, `${message.body} dead-lettered ${dead.length} times`).toBeLessThanOrEqual(1);
    if (dead.length === 1) expect(dead[0]!.body).toBe(message.body);
    const parsed = parseEventBody(message.body);
    let storedCount = 0;
    if (parsed.ok && parsed.kind === 'event') {
      const stream = streams.get(parsed.event.ID) ?? (await reader.readStream(parsed.event.ID));
      streams.set(parsed.event.ID, stream);
      const same = stream.events.filter((stored) => stored.EventId === parsed.event.EventId);
      storedCount = same.filter((stored) => eventFingerprint(stored) === eventFingerprint(parsed.event)).length;
      expect(same.length, `EventId ${parsed.event.EventId} stored ${same.length} times`).toBeLessThanOrEqual(1);
    }
    const outcome = `${message.body.slice(0, 200)} -> stored ${storedCount}, dead-lettered ${dead.length} (${dead[0]?.reason}: ${dead[0]?.detail})`;
    expect(storedCount + dead.length, outcome).toBe(1);
  }
  for (const [streamId, stream] of streams) {
    expect(
      stream.events.map((event) => event.Version),
      `${streamId} versions`,
    ).toEqual(stream.events.map((_, index) => index + 1));
  }
}

describe.each([
  { mode: 'standard', fifo: false },
  { mode: 'FIFO', fifo: true },
])('arbitrary bodies through the handler, $mode queue', ({ fifo }) => {
  it('ends every record stored once or dead-lettered once with a reason, never both, never neither', async () => {
    const dlqUrl = await createTestQueue(sqs, 'faults-fuzz-dlq', { fifo });
    let batches = 0;
    let records = 0;
    console.log(`faults/handler-fuzz ${fifo ? 'fifo' : 'standard'}: seed ${seed}`);
    await fc.assert(
      fc.asyncProperty(fc.array(body, { minLength: 1, maxLength: 10 }), async (items) => {
        run += 1;
        const runId = `fuzz-${seed}-${fifo ? 'f' : 's'}${run}`;
        batches += 1;
        records += items.length;
        await checkBatch(
          items.map((item) => render(item, runId)),
          fifo,
          dlqUrl,
          runId,
        );
      }),
      { seed, verbose: true, numRuns: 60 },
    );
    console.log(
      `faults/handler-fuzz ${fifo ? 'fifo' : 'standard'}: injected ${records} arbitrary bodies in ${batches} batches (seed ${seed}); ` +
        'checked no throw, no failures, each record stored once XOR dead-lettered once with a known reason, versions gapless',
    );
  }, 180_000);
});
