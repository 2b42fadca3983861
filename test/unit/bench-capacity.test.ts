import { PutItemCommand, QueryCommand, TransactWriteItemsCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyCounts, meterCapacity } from '../../bench/capacity.ts';
import { itemBytes } from '../../core/storable.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';

// The bench's unit figures are DynamoDB Local's ConsumedCapacity plus two corrections
// (bench/capacity.ts). Check that DynamoDB Local counts as DynamoDB bills (1 write unit per
// started KB; a consistent Query 1 read unit per started 4 KB of the items it reads) before
// any figure is trusted (docs/PERFORMANCE.md, "Method"). A group's transaction is the
// exception: DynamoDB bills 2 write units per started KB of each item, and DynamoDB Local's
// ConsumedCapacity for TransactWriteItems does not, so the bench counts it from the items.

/** An item of exactly `bytes` in DynamoDB's accounting. */
function itemOf(id: string, version: number, bytes: number): Record<string, unknown> {
  const item: Record<string, unknown> = { ID: id, Version: version, Pad: '' };
  item['Pad'] = 'x'.repeat(bytes - itemBytes(item));
  expect(itemBytes(item)).toBe(bytes);
  return item;
}

describe('DynamoDB Local capacity as the bench meters it', () => {
  let client: DynamoDBClient;
  let tableName = '';

  beforeAll(async () => {
    client = dynamoClient();
    tableName = await createTestTable(client, 'bench-capacity');
  });
  afterAll(() => client.destroy());

  it('bills a put 1 write unit per started KB, and a failed conditional put at the attempted size', async () => {
    const metered = dynamoClient();
    const counts = meterCapacity(metered, emptyCounts());

    await metered.send(new PutItemCommand({ TableName: tableName, Item: marshall(itemOf('w', 1, 1024)) }));
    const afterOneKb = counts.writeUnits;
    await metered.send(new PutItemCommand({ TableName: tableName, Item: marshall(itemOf('w', 2, 1025)) }));
    const conditional = new PutItemCommand({
      TableName: tableName,
      Item: marshall(itemOf('w', 1, 1000)),
      ConditionExpression: 'attribute_not_exists(Version)',
    });
    await expect(metered.send(conditional)).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    metered.destroy();

    expect(afterOneKb).toBe(1);
    expect(counts.writeUnits).toBe(1 + 2 + 1);
    expect(counts.conditionFailures).toBe(1);
    expect(counts.failedWriteUnits).toBe(1);
    expect(counts.requests['PutItem']).toBe(3);
  });

  it('bills a consistent Query by the items it reads, 1 unit per started 4 KB, and at least 1 when it finds nothing', async () => {
    for (let version = 1; version <= 10; version += 1) {
      await client.send(new PutItemCommand({ TableName: tableName, Item: marshall(itemOf('r', version, 1000)) }));
    }
    const metered = dynamoClient();
    const counts = meterCapacity(metered, emptyCounts());
    const query = (id: string, limit?: number) =>
      metered.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'ID = :id',
          ExpressionAttributeValues: { ':id': { S: id } },
          ConsistentRead: true,
          ...(limit === undefined ? {} : { Limit: limit }),
        }),
      );

    await query('r');
    const tenKb = counts.readUnits;
    await query('r', 2);
    const twoKb = counts.readUnits - tenKb;
    await query('nothing-here');
    metered.destroy();

    expect(tenKb).toBe(3);
    expect(twoKb).toBe(1);
    expect(counts.readUnits).toBe(3 + 1 + 1);
  });

  it("bills a transaction 2 write units per started KB of each item, from the items (DynamoDB Local's own figure is not per item)", async () => {
    const metered = dynamoClient();
    const counts = meterCapacity(metered, emptyCounts());
    const put = (version: number, bytes: number) => ({
      Put: {
        TableName: tableName,
        Item: marshall(itemOf('t', version, bytes)),
        ConditionExpression: 'attribute_not_exists(Version)',
      },
    });

    const twenty = await metered.send(
      new TransactWriteItemsCommand({
        TransactItems: Array.from({ length: 20 }, (_, index) => put(index + 1, 200)),
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    const afterTwenty = counts.writeUnits;
    await metered.send(new TransactWriteItemsCommand({ TransactItems: [put(21, 1024), put(22, 1025)] }));
    const afterTwo = counts.writeUnits;
    // Version 1 is taken: the whole transaction is cancelled, nothing written.
    await expect(
      metered.send(new TransactWriteItemsCommand({ TransactItems: [put(23, 500), put(1, 500)] })),
    ).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    metered.destroy();

    expect(afterTwenty).toBe(20 * 2);
    expect(afterTwo - afterTwenty).toBe(2 * 1 + 2 * 2);
    expect(counts.writeUnits - afterTwo).toBe(2 + 2);
    expect(counts.cancelledTransactions).toBe(1);
    expect(counts.conditionFailures).toBe(1);
    expect(counts.requests['TransactWriteItems']).toBe(3);
    // What DynamoDB Local itself reported for the 20 items: far below DynamoDB's 40.
    expect(twenty.ConsumedCapacity?.[0]?.CapacityUnits).toBeLessThan(20 * 2);
  });
});
