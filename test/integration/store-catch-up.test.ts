import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../adapters/dynamodb-store.ts';
import { makeEvent } from '../contract/event-store-contract.ts';
import { createTestTable, dynamoClient } from '../support/engines.ts';

/** Record every command the client sends (a spy on a real client; nothing is faked). */
function recordCommands(client: DynamoDBClient): { name: string; input: Record<string, unknown> }[] {
  const seen: { name: string; input: Record<string, unknown> }[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      seen.push({ name: String(context.commandName), input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  return seen;
}

describe('a cached stream head that lost a race', () => {
  const writerClient = dynamoClient();
  const otherClient = dynamoClient();
  let tableName = '';
  beforeAll(async () => {
    tableName = await createTestTable(writerClient, 'catch-up');
  });
  afterAll(() => {
    writerClient.destroy();
    otherClient.destroy();
  });

  it('reads only the newer events, still finds duplicates among them, appends after them, and reads first until 3 catch-ups found nothing new', async () => {
    // Prepare
    const id = `stream-${randomUUID()}`;
    const commands = recordCommands(writerClient);
    const conflicts: string[] = [];
    const cached = new DynamoDbEventStore({
      client: writerClient,
      tableName,
      onConflict: (streamId) => conflicts.push(streamId),
    });
    const other = new DynamoDbEventStore({ client: otherClient, tableName });
    await cached.appendToStream(id, [makeEvent(id), makeEvent(id)]);
    const theirs = [makeEvent(id), makeEvent(id), makeEvent(id)];
    await other.appendToStream(id, theirs);
    commands.length = 0;

    // Act
    const mine = await cached.appendToStream(id, [makeEvent(id)]);
    const redelivered = await cached.appendToStream(id, [theirs[2]!]);
    const quiet = await cached.appendToStream(id, [makeEvent(id)]);
    const third = await cached.appendToStream(id, [makeEvent(id)]);
    const relaxed = await cached.appendToStream(id, [makeEvent(id)]);

    // Assess
    expect(mine).toEqual([{ status: 'stored', version: 6 }]);
    expect(redelivered).toEqual([{ status: 'duplicate', version: 5 }]);
    expect(quiet).toEqual([{ status: 'stored', version: 7 }]);
    expect(third).toEqual([{ status: 'stored', version: 8 }]);
    expect(relaxed).toEqual([{ status: 'stored', version: 9 }]);
    expect(conflicts).toEqual([id]);
    // Lost race, catch-up read, put; then (contended) read first before each append; after the
    // third read in a row that found nothing new the stream counts as quiet again, and the next
    // append is a single optimistic put.
    expect(commands.map((command) => command.name)).toEqual([
      'PutItemCommand',
      'QueryCommand',
      'PutItemCommand',
      'QueryCommand',
      'QueryCommand',
      'PutItemCommand',
      'QueryCommand',
      'PutItemCommand',
      'PutItemCommand',
    ]);
    expect(commands[1]?.input).toMatchObject({
      KeyConditionExpression: '#id = :id AND #v > :head',
      ExpressionAttributeValues: { ':id': { S: id }, ':head': { N: '3' } },
      ScanIndexForward: true,
    });
  });
});
