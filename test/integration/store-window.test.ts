import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { eventFingerprint, type ValidEvent } from '../../core/event.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { CLOCK_SKEW_MS, type AppendOutcome, type StoredEvent } from '../../core/store.ts';
import { makeEvent } from '../contract/event-store-contract.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';

// The duplicate window's time bound on DynamoDB Local (docs/ARCHITECTURE.md, "Appending and
// idempotency"): what a store reads for it, and that a cached and a cold container decide alike.

const seed = Number(process.env['FC_SEED'] ?? Date.now() % 2 ** 31);

interface QueryRecord {
  readonly input: Record<string, unknown>;
  readonly items: number;
  readonly readUnits: number | undefined;
}

/** Record every Query a client sends, how many items it returned and the read units it consumed (a spy on a real client). */
function recordQueries(client: DynamoDBClient): QueryRecord[] {
  const seen: QueryRecord[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'QueryCommand') return next(args);
      const input = args.input as Record<string, unknown>;
      input['ReturnConsumedCapacity'] = 'TOTAL';
      const result = await next(args);
      const output = result.output as { Items?: unknown[]; ConsumedCapacity?: { CapacityUnits?: number } };
      seen.push({
        input: { ...input },
        items: output.Items?.length ?? 0,
        readUnits: output.ConsumedCapacity?.CapacityUnits,
      });
      return result;
    },
    { step: 'initialize', name: 'recordQueries' },
  );
  return seen;
}

/** Resolve once the clock has passed `ms` (a poll with a deadline: RecordedAt has millisecond resolution). */
async function clockPast(ms: number): Promise<void> {
  const deadline = Date.now() + 1_000;
  while (Date.now() <= ms) {
    if (Date.now() > deadline) throw new Error('the clock did not move');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const recordedAt = (event: StoredEvent): number => Date.parse(event.RecordedAt);

/** The verdict the rule gives (core/stream-cache.ts `duplicateWindow`), computed from the whole stream as read back. */
function expectedVerdict(
  history: readonly StoredEvent[],
  event: ValidEvent,
  window: number,
  notBefore: number | undefined,
  since?: number,
): AppendOutcome['status'] | 'conflict' {
  const inWindow: StoredEvent[] = [];
  let counted = 0;
  let counting = since === undefined;
  for (const stored of [...history].reverse()) {
    if (notBefore !== undefined && recordedAt(stored) < notBefore) break;
    // A redelivery: every event recorded since `since`, then `window` counted from the first before.
    if (!counting && since !== undefined && recordedAt(stored) < since) counting = true;
    if (counting && counted >= window) break;
    if (counting) counted += 1;
    inWindow.push(stored);
  }
  const copies = inWindow.filter((stored) => stored.EventId === event.EventId);
  if (copies.some((stored) => eventFingerprint(stored) === eventFingerprint(event))) return 'duplicate';
  return copies.length > 0 ? 'conflict' : 'stored';
}

function verdictOf(outcome: AppendOutcome | undefined): string | undefined {
  if (outcome?.status === 'rejected' && outcome.reason === RejectionReason.EventIdConflict) return 'conflict';
  return outcome?.status;
}

describe('the duplicate window bound by time (notBefore)', () => {
  const client = dynamoClient();
  const readClient = dynamoClient();
  let tableName = '';
  const queries = recordQueries(readClient);
  beforeAll(async () => {
    tableName = await createTestTable(client, 'window');
  });
  afterAll(() => {
    client.destroy();
    readClient.destroy();
  });
  const writer = () => new DynamoDbEventStore({ client, tableName });
  const coldReader = () => new DynamoDbEventStore({ client: readClient, tableName });

  it('a cold store reads one page of 4 (1 read unit) of a long stream, and still finds a redelivery or an EventIdConflict inside the bound', async () => {
    // Prepare: 200 events recorded before the bound, then 3 after it.
    const id = `window-${randomUUID()}`;
    const old = Array.from({ length: 200 }, (_, n) => makeEvent(id, { Data: { n, pad: 'p'.repeat(600) } }));
    await writer().appendToStream(id, old);
    const bound = recordedAt((await writer().readStream(id, { direction: 'backward', limit: 1 })).events[0]!) + 1;
    await clockPast(bound);
    const recent = [makeEvent(id), makeEvent(id), makeEvent(id)];
    await writer().appendToStream(id, recent);
    queries.length = 0;

    // Act
    const redelivery = await coldReader().appendToStream(id, [recent[0]!], { notBefore: bound });
    const afterRedelivery = queries.splice(0);
    const conflict = await coldReader().appendToStream(id, [{ ...recent[1]!, Data: { other: true } }], {
      notBefore: bound,
    });
    const afterConflict = queries.splice(0);
    const fresh = await coldReader().appendToStream(id, [makeEvent(id)], { notBefore: bound });
    const afterFresh = queries.splice(0);
    const olderCopy = await coldReader().appendToStream(id, [old[190]!], { notBefore: bound });

    // Assess
    expect(redelivery).toEqual([{ status: 'duplicate', version: 201 }]);
    expect(conflict).toEqual([
      {
        status: 'rejected',
        reason: RejectionReason.EventIdConflict,
        detail: `EventId: ${JSON.stringify(recent[1]!.EventId)} is already stored at version 202 of stream ${JSON.stringify(id)} with different content`,
      },
    ]);
    expect(fresh).toEqual([{ status: 'stored', version: 204 }]);
    // A copy recorded before the bound is outside the window: a producer's resend that late is stored again.
    expect(olderCopy).toEqual([{ status: 'stored', version: 205 }]);
    for (const reads of [afterRedelivery, afterConflict, afterFresh]) {
      expect(reads).toHaveLength(1);
      expect(reads[0]).toMatchObject({ input: { Limit: 4, ScanIndexForward: false, ConsistentRead: true }, items: 4 });
      expect(reads[0]?.readUnits).toBeLessThanOrEqual(1);
    }
  });

  it('without a bound, a cold store reads the newest dedupWindow events in growing pages, as far as the window needs', async () => {
    // Prepare
    const id = `window-${randomUUID()}`;
    const events = Array.from({ length: 60 }, () => makeEvent(id));
    await writer().appendToStream(id, events);
    queries.length = 0;

    // Act
    const inside = await coldReader().appendToStream(id, [events[10]!]);
    const readInside = queries.splice(0);
    const outside = await coldReader().appendToStream(id, [events[9]!], { dedupWindow: 50 });
    queries.length = 0;
    const fifo = await coldReader().appendToStream(id, [events[55]!], { dedupWindow: 10 });
    const readFifo = queries.splice(0);

    // Assess: version 11 is the 50th newest of 60; version 10 the 51st.
    expect(inside).toEqual([{ status: 'duplicate', version: 11 }]);
    expect(outside).toEqual([{ status: 'stored', version: 61 }]);
    expect(fifo).toEqual([{ status: 'duplicate', version: 56 }]);
    expect(readInside.map((read) => read.input['Limit'])).toEqual([4, 8, 16, 22]);
    expect(readInside.reduce((sum, read) => sum + read.items, 0)).toBe(50);
    expect(readFifo.map((read) => read.input['Limit'])).toEqual([4, 6]);
  });

  it('a cached store that cannot decide reads only below what it holds, keeps it, and decides as a cold store does', async () => {
    // Prepare: 30 events; a container caches the newest 4 for a message with a late bound.
    const id = `window-${randomUUID()}`;
    const events = Array.from({ length: 30 }, () => makeEvent(id));
    await writer().appendToStream(id, events);
    const history = (await writer().readStream(id)).events;
    const warm = coldReader();
    await warm.appendToStream(id, [events[29]!], { notBefore: recordedAt(history[29]!) });
    queries.length = 0;

    // Act: a redelivery of a message sent before version 12 was recorded.
    const early = recordedAt(history[11]!);
    const cached = await warm.appendToStream(id, [events[13]!], { notBefore: early });
    const readCached = queries.splice(0);
    const again = await warm.appendToStream(id, [events[12]!], { notBefore: early });
    const readAgain = queries.splice(0);
    const cold = await coldReader().appendToStream(id, [events[12]!], { notBefore: early });

    // Assess
    expect(cached).toEqual([{ status: 'duplicate', version: 14 }]);
    expect(again).toEqual([{ status: 'duplicate', version: 13 }]);
    expect(cold).toEqual(again);
    expect(readCached[0]?.input).toMatchObject({
      KeyConditionExpression: '#id = :id AND #v < :below',
      ExpressionAttributeValues: { ':below': { N: '27' } },
      Limit: 4,
    });
    expect(readCached.map((read) => read.input['Limit'])).toEqual([4, 8, 16]);
    expect(readAgain).toEqual([]);
  });

  it('two containers handed the same message at once: one stores it, the other (after a lost put, or reading it) finds the duplicate', async () => {
    // Prepare: a stream both containers have cached (a quiet one: optimistic puts).
    const id = `window-${randomUUID()}`;
    const [first, second] = [coldReader(), coldReader()];
    await writer().appendToStream(id, [makeEvent(id)]);
    await first.appendToStream(id, [makeEvent(id)]);
    await second.appendToStream(id, [makeEvent(id)]);
    await first.appendToStream(id, [makeEvent(id)]);
    await second.appendToStream(id, [makeEvent(id)]);
    const event = makeEvent(id);
    const notBefore = Date.now() - 1_000;

    // Act
    const outcomes = await Promise.all(
      [first, second].map((store) => store.appendToStream(id, [event], { notBefore })),
    );

    // Assess
    expect(
      outcomes
        .flat()
        .map((outcome) => outcome.status)
        .sort(),
    ).toEqual(['duplicate', 'stored']);
    expect((await writer().readStream(id)).events.filter((stored) => stored.EventId === event.EventId)).toHaveLength(1);
  });

  it('a cached and a cold container give the verdict of the rule for the same message, over random histories and bounds', async () => {
    console.log(`store window property: seed ${seed} (FC_SEED=${seed} replays it)`);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          length: fc.integer({ min: 0, max: 40 }),
          window: fc.integer({ min: 1, max: 25 }),
          /** Where the bound falls: at the RecordedAt of this event (from the newest), just after it, or none. */
          boundAt: fc.option(fc.record({ fromNewest: fc.nat({ max: 45 }), after: fc.boolean() }), { nil: undefined }),
          /** What is sent: a copy of this event (from the newest), with changed content, or a new event. */
          candidate: fc.option(fc.record({ fromNewest: fc.nat({ max: 45 }), changed: fc.boolean() }), {
            nil: undefined,
          }),
          /** The cached container: the writer (everything cached) or one that read the newest few for another message. */
          warmIsWriter: fc.boolean(),
          /** A redelivery sent when this event (from the newest) was recorded, or just after; or a first delivery. */
          sentAt: fc.option(fc.record({ fromNewest: fc.nat({ max: 45 }), after: fc.boolean() }), { nil: undefined }),
        }),
        async ({ length, window, boundAt, candidate, warmIsWriter, sentAt: sent }) => {
          const id = `window-prop-${randomUUID()}`;
          const writerStore = writer();
          const events = Array.from({ length }, () => makeEvent(id));
          for (const event of events) await writerStore.appendToStream(id, [event]);
          const history = (await writerStore.readStream(id)).events;
          const at = (fromNewest: number): StoredEvent | undefined => history[history.length - 1 - fromNewest];
          const boundEvent = boundAt === undefined ? undefined : at(boundAt.fromNewest);
          const notBefore = boundEvent === undefined ? undefined : recordedAt(boundEvent) + (boundAt?.after ? 1 : 0);
          const original = candidate === undefined ? undefined : events[history.length - 1 - candidate.fromNewest];
          const event =
            original === undefined
              ? makeEvent(id)
              : candidate?.changed
                ? { ...original, Data: { changed: true } }
                : original;
          const sentEvent = sent === undefined ? undefined : at(sent.fromNewest);
          const sentAt =
            sentEvent === undefined ? undefined : recordedAt(sentEvent) + CLOCK_SKEW_MS + (sent?.after ? 1 : 0);
          const since = sentAt === undefined ? undefined : sentAt - CLOCK_SKEW_MS;
          const expected = expectedVerdict(history, event, window, notBefore, since);
          let warm = writerStore;
          if (!warmIsWriter) {
            warm = coldReader();
            const newest = history.at(-1);
            if (newest)
              await warm.appendToStream(id, [events.at(-1)!], { notBefore: recordedAt(newest), dedupWindow: window });
          }
          const options = {
            dedupWindow: window,
            ...(notBefore !== undefined ? { notBefore } : {}),
            ...(sentAt !== undefined ? { sentAt, redelivery: true } : {}),
          };

          // A message that stores would change the stream for the second container: only then ask one of them.
          const [cold] = await coldReader().appendToStream(id, [event], options);
          expect(verdictOf(cold), `cold (seed ${seed})`).toBe(expected);
          if (expected !== 'stored') {
            const [cached] = await warm.appendToStream(id, [event], options);
            expect(verdictOf(cached), `cached (seed ${seed})`).toBe(expected);
          }
        },
      ),
      { seed, numRuns: 40, verbose: true },
    );
  }, 120_000);

  it('a cached container decides a stored message as the rule says, on a copy of the history', async () => {
    // The property above asks only the cold container when the verdict is "stored"; here the
    // cached one decides first, on a stream where the copy is just outside, then just inside.
    const id = `window-${randomUUID()}`;
    const store = writer();
    const events = Array.from({ length: 12 }, () => makeEvent(id));
    await store.appendToStream(id, events);
    const history = (await store.readStream(id)).events;
    await clockPast(recordedAt(history[11]!));

    const outside = await store.appendToStream(id, [events[3]!], {
      notBefore: recordedAt(history[3]!) + 1,
      dedupWindow: 50,
    });
    const inside = await store.appendToStream(id, [events[4]!], {
      notBefore: recordedAt(history[4]!),
      dedupWindow: 50,
    });

    expect(outside).toEqual([{ status: 'stored', version: 13 }]);
    expect(inside).toEqual([{ status: 'duplicate', version: 5 }]);
  });
  it('a stale cached container gives the cold verdict for a redelivery whose resend (a later ExpectedVersion) is stored above another event', async () => {
    // Prepare: B wrote v1..v5 and caches the stream at v5; B2 wrote Y at v6 and caches v1..v6.
    // Then the producer's resend of X with ExpectedVersion 6 is stored at v7 by C. The first
    // message (X, ExpectedVersion 5) is delivered again: to B, to B2 and to a cold container.
    const id = `window-${randomUUID()}`;
    const b = writer();
    const b2 = writer();
    await b.appendToStream(id, [makeEvent(id), makeEvent(id), makeEvent(id), makeEvent(id), makeEvent(id)]);
    expect(await b2.appendToStream(id, [makeEvent(id)])).toEqual([{ status: 'stored', version: 6 }]);
    const x = makeEvent(id);
    expect(await writer().appendToStream(id, [{ ...x, ExpectedVersion: 6 }])).toEqual([
      { status: 'stored', version: 7 },
    ]);

    // Act: B's put at v6 meets Y; B2's cache holds Y at v6 (no put needed to know n + 1 is taken).
    const stale = await b.appendToStream(id, [{ ...x, ExpectedVersion: 5 }]);
    const cachedTaken = await b2.appendToStream(id, [{ ...x, ExpectedVersion: 5 }]);
    const cold = await coldReader().appendToStream(id, [{ ...x, ExpectedVersion: 5 }]);

    // Assess: all three find the copy at v7 (before, B and B2 answered WrongExpectedVersion, and
    // the handler dead-lettered an event that is stored).
    expect(cold).toEqual([{ status: 'duplicate', version: 7 }]);
    expect(stale).toEqual(cold);
    expect(cachedTaken).toEqual(cold);
    expect((await coldReader().readStream(id)).version).toBe(7);
  });
  it('a redelivery is a duplicate of its own copy even when a later resend with other content was stored after it (outside its window)', async () => {
    // Prepare: X (content A) at v1; later a resend of X with content B, its window bounded after
    // v1, is stored again at v2 (the README's late resend).
    const id = `window-${randomUUID()}`;
    const x = makeEvent(id);
    expect(await writer().appendToStream(id, [x])).toEqual([{ status: 'stored', version: 1 }]);
    const first = recordedAt((await writer().readStream(id)).events[0]!);
    await clockPast(first);
    const resend = await writer().appendToStream(id, [{ ...x, Data: { other: true } }], { notBefore: first + 1 });

    // Act: the first message delivered again (its acknowledgement was lost): its window holds both.
    const redelivery = await coldReader().appendToStream(id, [x], { notBefore: first - 1 });

    // Assess: not an EventIdConflict against the newer copy (that dead-lettered a stored message).
    expect(resend).toEqual([{ status: 'stored', version: 2 }]);
    expect(redelivery).toEqual([{ status: 'duplicate', version: 1 }]);
  });

  it('a redelivery finds its copy however many events came since it was sent, beyond the events the cache keeps', async () => {
    // Prepare: X at version 1, then 1,050 more events (the cache keeps 1,000 per stream).
    const id = `window-${randomUUID()}`;
    const x = makeEvent(id);
    const store = writer();
    await store.appendToStream(id, [x]);
    const sentAt = recordedAt((await store.readStream(id)).events[0]!);
    await store.appendToStream(
      id,
      Array.from({ length: 1_050 }, () => makeEvent(id)),
    );

    // Act: X's message delivered again (its acknowledgement was lost), to the writer and to a cold container.
    const options = { dedupWindow: 50, notBefore: sentAt - 302_000, sentAt, redelivery: true };
    const cached = await store.appendToStream(id, [x], options);
    const cold = await coldReader().appendToStream(id, [x], options);
    const conflict = await coldReader().appendToStream(id, [{ ...x, Data: { other: true } }], options);

    // Assess: a first delivery's window (the newest 50) would have stored it a second time.
    expect(cached).toEqual([{ status: 'duplicate', version: 1 }]);
    expect(cold).toEqual(cached);
    expect(conflict).toMatchObject([{ status: 'rejected', reason: RejectionReason.EventIdConflict }]);
    expect((await writer().readStream(id, { direction: 'backward', limit: 1 })).events[0]?.Version).toBe(1_051);
  }, 120_000);
});
