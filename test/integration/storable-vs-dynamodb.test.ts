import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Limits } from '../../core/keys.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { checkStorable, itemBytes } from '../../core/storable.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';

// core/storable.ts predicts what DynamoDB accepts and what it bills before the store writes.
// This suite holds the prediction against DynamoDB Local: write units billed, the 400 KB
// limit, the nesting limit.

const client = dynamoClient();
let tableName = '';
let version = 0;

beforeAll(async () => {
  tableName = await createTestTable(client, 'storable');
});

afterAll(() => client.destroy());

/** An item as the store writes it, with a `Data.note` of `noteChars` ASCII characters. */
function item(note: unknown): Record<string, unknown> {
  version += 1;
  return {
    ID: 'storable-1',
    Version: version,
    EventId: `sha256:${'a'.repeat(64)}`,
    EventType: 'ORDER_PLACED',
    Timestamp: 1596719980,
    EmitterId: 'checkout-service',
    EmitterType: 'SYSTEM',
    Data: { note, total: 12.5, lines: [{ sku: 'A', qty: 2 }] },
    RecordedAt: '2026-11-24T09:00:00.000Z',
  };
}

async function put(value: Record<string, unknown>): Promise<{ units: number } | { error: string }> {
  try {
    const result = await client.send(
      new PutItemCommand({ TableName: tableName, Item: marshall(value), ReturnConsumedCapacity: 'TOTAL' }),
    );
    return { units: result.ConsumedCapacity?.CapacityUnits ?? Number.NaN };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}

function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let level = 0; level < levels; level += 1) value = { a: value };
  return value;
}

describe('checkStorable and itemBytes against DynamoDB Local', () => {
  it('predicts the write units DynamoDB Local bills around the 1 KB and 2 KB boundaries', async () => {
    // Prepare: note sizes that put the item just under and just over 1 KB and 2 KB.
    const base = itemBytes(item(''));
    const sizes = [1, 2, 3, 4, 5].flatMap((delta) => [
      1024 - base - delta,
      1024 - base + delta,
      2048 - base - delta,
      2048 - base + delta,
    ]);
    const mismatches: string[] = [];

    // Act
    for (const size of sizes) {
      const value = item('x'.repeat(size));
      const predicted = Math.ceil(itemBytes(value) / 1024);
      const billed = await put(value);
      if (!('units' in billed) || billed.units !== predicted) {
        mismatches.push(`${itemBytes(value)} B: predicted ${predicted}, DynamoDB Local ${JSON.stringify(billed)}`);
      }
    }

    // Assess
    console.log(
      `storable-vs-dynamodb: ${sizes.length} items of ${Math.min(...sizes) + base} to ${Math.max(...sizes) + base} bytes; checked write units predicted = billed`,
    );
    expect(mismatches).toEqual([]);
  });

  it('draws the 400 KB line where DynamoDB Local does', async () => {
    const base = itemBytes(item(''));
    const fits = item('x'.repeat(Limits.maxItemBytes - base));
    const over = item('x'.repeat(Limits.maxItemBytes - base + 1));

    const fitsResult = await put(fits);
    const overResult = await put(over);

    expect(checkStorable(fits)).toBeUndefined();
    expect(fitsResult).toEqual({ units: 400 });
    expect(checkStorable(over)?.reason).toBe(RejectionReason.ItemTooLarge);
    expect(overResult).toEqual({ error: 'ValidationException: Item size has exceeded the maximum allowed size' });
  });

  it('draws the nesting line where DynamoDB Local does', async () => {
    const deepest = item(nested(30)); // Data -> note -> 30 maps: 32 levels with the item
    const tooDeep = item(nested(31));

    const deepestResult = await put(deepest);
    const tooDeepResult = await put(tooDeep);

    expect(checkStorable(deepest)).toBeUndefined();
    expect(deepestResult).toEqual({ units: 1 });
    expect(checkStorable(tooDeep)?.reason).toBe(RejectionReason.UnstorableData);
    expect(tooDeepResult).toEqual({
      error:
        'ValidationException: Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit',
    });
  });
});
