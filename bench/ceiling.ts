import { PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { messageEvents, parseEventBody } from '../core/event.ts';
import { TableKeys } from '../core/keys.ts';
import { runLanes } from './records.ts';
import type { Workload } from './workload.ts';

export interface CeilingResult {
  readonly puts: number;
  readonly inFlight: number;
  readonly wallMs: number;
  readonly eventsPerSecond: number;
}

/**
 * The raw ceiling: the workload's distinct events written as the store writes them (one
 * conditional `PutItem` each at a version known in advance), with `inFlight` requests at a
 * time and nothing else: no queue, no handler, no reads, no duplicate checks.
 */
export async function measureCeiling(
  client: DynamoDBClient,
  tableName: string,
  workload: Workload,
  inFlight: number,
  /** Measure on the first `sample` events only: a rate needs no more. @default all */
  sample = Number.POSITIVE_INFINITY,
): Promise<CeilingResult> {
  const versions = new Map<string, number>();
  const requests = workload.fifoOrder
    .filter((message) => !message.redelivery)
    .flatMap((message) => {
      const parsed = parseEventBody(message.body);
      if (!parsed.ok) throw new Error(`bench workload made an invalid event: ${parsed.detail}`);
      // A group's events too, one put each (the warm-up of a group workload's engine).
      return messageEvents(parsed);
    })
    .slice(0, sample)
    .map((parsed) => {
      const version = (versions.get(parsed.ID) ?? 0) + 1;
      versions.set(parsed.ID, version);
      const { ExpectedVersion: _ignored, ...event } = parsed;
      return new PutItemCommand({
        TableName: tableName,
        Item: marshall(
          { ...event, [TableKeys.sortKey]: version, RecordedAt: new Date().toISOString() },
          { removeUndefinedValues: true },
        ),
        ConditionExpression: 'attribute_not_exists(#v)',
        ExpressionAttributeNames: { '#v': TableKeys.sortKey },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      });
    });
  let cursor = 0;
  const wallMs = await runLanes(inFlight, async () => {
    const request = requests[cursor];
    cursor += 1;
    if (!request) return false;
    await client.send(request);
    return true;
  });
  return { puts: requests.length, inFlight, wallMs, eventsPerSecond: (requests.length / wallMs) * 1000 };
}
