import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, NumberValueImpl } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { eventItem, LARGEST_VERSION, parseEventBody, PLACEHOLDER_SEQUENCE, type ValidEvent } from '../../core/event.ts';
import { decimalParts, ExactNumber } from '../../core/json.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { numberBytes } from '../../core/storable.ts';
import { seededRandom } from '../../bench/workload.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';

// Issue 19, item 2: parseEventBody's ItemTooLarge verdict is final only if core/storable.ts
// counts every number as DynamoDB does. For numbers whose size the old count got wrong (the
// sign, pairs not aligned on the decimal point) and at the edges of DynamoDB's range, this
// suite finds the largest body the parser accepts and writes it to DynamoDB Local, at versions
// whose own size differs; then checks that one byte more is refused by the parser, and by
// DynamoDB Local too when the item is the largest the store can write (the longest Version,
// RecordedAt and SourceSequence, which the parser counts so that its verdict does not depend on
// the version an event gets).

const client = dynamoClient();
let tableName = '';

beforeAll(async () => {
  tableName = await createTestTable(client, 'storable-ddb');
});

afterAll(() => client.destroy());

/** How many copies of the number the body carries, so that a miscount of one byte each shows. */
const COPIES = 2_000;

/** A body whose `Data` holds `COPIES` copies of the number literal and a string of `pad` characters. */
function body(streamId: string, literal: string, pad: number): string {
  const numbers = Array.from({ length: COPIES }, () => literal).join(',');
  return (
    `{"Timestamp":1596719980,"EventType":"SIZE_PROBED","ID":${JSON.stringify(streamId)},` +
    `"EmitterId":"storable-test","EmitterType":"SYSTEM","EventId":"probe",` +
    `"Data":{"n":[${numbers}],"pad":"${'x'.repeat(pad)}"}}`
  );
}

/** The longest pad the parser accepts (it accepts 0 and refuses 409,600). */
function longestAcceptedPad(streamId: string, literal: string): number {
  let accepted = 0;
  let refused = 409_600;
  expect(parseEventBody(body(streamId, literal, accepted)).ok).toBe(true);
  while (refused - accepted > 1) {
    const middle = Math.floor((accepted + refused) / 2);
    if (parseEventBody(body(streamId, literal, middle)).ok) accepted = middle;
    else refused = middle;
  }
  return accepted;
}

function parsedEvent(text: string): ValidEvent {
  const parsed = parseEventBody(text);
  if (!parsed.ok) throw new Error(`expected the body to be accepted: ${parsed.detail}`);
  if (parsed.kind !== 'event') throw new Error('expected one event, got a group');
  return parsed.event;
}

/** ExactNumber as the SDK's NumberValue, as the store writes it. */
function sdkNumbers(value: unknown): unknown {
  if (value instanceof ExactNumber) return NumberValueImpl.from(value.text);
  if (Array.isArray(value)) return value.map(sdkNumbers);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, sdkNumbers(inner)]));
  }
  return value;
}

/** Put the event's item at `version` as the store marshals it; `'stored'` or DynamoDB Local's error. */
async function putAt(event: ValidEvent, version: number, sequence?: string): Promise<string> {
  const item = sdkNumbers(eventItem(event, version, new Date().toISOString(), sequence)) as Record<string, unknown>;
  try {
    await client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: marshall(item, { removeUndefinedValues: true, allowImpreciseNumbers: true }),
      }),
    );
    return 'stored';
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

const TOO_LARGE = 'ValidationException: Item size has exceeded the maximum allowed size';

/** Versions whose own size differs: 2, 3, 2 and 5 bytes (and 9 for the largest). */
const VERSIONS = [1, 101, 200, 10_000_001];

describe('the 400 KB line: parseEventBody against DynamoDB Local', () => {
  it.each([
    ['negative', '-1.1'],
    ['negative integer', '-1'],
    ['odd-aligned', '1.1'],
    ['odd-aligned below one', '0.01'],
    ['odd-aligned above ten', '10.5'],
    ['odd-aligned, four digits', '123.4'],
    ['tiny', '1e-130'],
    ['tiny, negative', '-1e-130'],
    ['large', '9.9999999999999999999999999999999999999e125'],
    ['38 digits', '12345678901234567890123456789012345678'],
    ['38 digits, odd-aligned and negative (capped at 21 bytes)', '-1.2345678901234567890123456789012345678'],
    ['zero', '0'],
  ])(
    '%s (%s): the largest accepted body is stored at every version; one byte more is refused',
    async (_name, literal) => {
      // Prepare
      const streamId = `size-${literal}`;
      const pad = longestAcceptedPad(streamId, literal);
      const largest = parsedEvent(body(streamId, literal, pad));
      const overText = body(streamId, literal, pad + 1);
      const over = parseEventBody(overText);

      // Act: the real store at version 1, then the store's marshalling at the other versions.
      const store = new DynamoDbEventStore({ client, tableName });
      const [outcome] = await store.appendToStream(streamId, [largest]);
      const atVersions = await Promise.all(VERSIONS.slice(1).map((version) => putAt(largest, version)));
      const atLargest = await putAt(largest, LARGEST_VERSION, PLACEHOLDER_SEQUENCE);
      const overAtLargest = await putAt(
        { ...largest, Data: { ...largest.Data, pad: 'x'.repeat(pad + 1) } },
        LARGEST_VERSION,
        PLACEHOLDER_SEQUENCE,
      );

      // Assess
      expect(outcome).toMatchObject({ status: 'stored', version: 1 });
      expect(atVersions).toEqual(VERSIONS.slice(1).map(() => 'stored'));
      expect(atLargest).toBe('stored');
      expect(over).toMatchObject({ ok: false, reason: RejectionReason.ItemTooLarge });
      expect(overAtLargest).toBe(TOO_LARGE);
    },
  );
});

describe('numberBytes against DynamoDB Local, number by number', () => {
  /**
   * Put `ID`, `Version` 1, a string `p` and the number `n`, with `p` as long as it can be if
   * `n` takes `bytes` bytes: DynamoDB Local must store it, and refuse it with one more character.
   */
  async function line(literal: string, bytes: number): Promise<[string, string]> {
    const pad = 409_600 - (2 + 1) - (7 + 2) - 1 - 1 - bytes;
    const put = async (length: number) => {
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: { ID: { S: 'n' }, Version: { N: '1' }, p: { S: 'x'.repeat(length) }, n: { N: literal } },
          }),
        );
        return 'stored';
      } catch (error) {
        return `${(error as Error).name}: ${(error as Error).message}`;
      }
    };
    return [await put(pad), await put(pad + 1)];
  }

  /** A literal DynamoDB accepts: up to 38 digits, any sign, the first digit's power from -130 to 125. */
  function randomLiteral(random: () => number): string {
    const count = 1 + Math.floor(random() * 38);
    let digits = String(1 + Math.floor(random() * 9));
    for (let index = 1; index < count; index += 1) digits += String(Math.floor(random() * 10));
    const exponent = -130 + Math.floor(random() * 256);
    const sign = random() < 0.5 ? '-' : '';
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${exponent}`;
  }

  it('draws the line where DynamoDB Local does for fixed and random numbers (seeded)', async () => {
    // Prepare
    const seed = Number(process.env['STORABLE_SEED'] ?? Date.now() % 2 ** 31);
    console.log(`storable-dynamodb: seed ${seed} (replay with STORABLE_SEED=${seed})`);
    const random = seededRandom(seed);
    const fixed = ['0', '7', '99', '101', '200', '1.1', '-1.1', '0.01', '10.5', '123.4', '-1e-130', '1e125'];
    const literals = [...fixed, ...Array.from({ length: 40 }, () => randomLiteral(random))];

    // Act
    const wrong: string[] = [];
    for (const literal of literals) {
      const bytes = numberBytes(decimalParts(literal));
      const [fits, over] = await line(literal, bytes);
      if (fits !== 'stored' || over !== TOO_LARGE) wrong.push(`${literal} counted ${bytes}: ${fits} / ${over}`);
    }

    // Assess
    expect(wrong).toEqual([]);
  });
});
