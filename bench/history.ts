import { BatchWriteItemCommand, type DynamoDBClient, type WriteRequest } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { TableKeys } from '../core/keys.ts';
import { runLanes, sequenceNumber } from './records.ts';
import { randomEvent, seededRandom, streamIdsOf, type WorkloadOptions } from './workload.ts';

/** EventIds of history items start so: they are not events of the run. */
export const HISTORY_EVENT_ID_PREFIX = 'history-';

/** History was written this long before the run (and its producers' messages sent then). */
const HISTORY_AGE_MS = 2 * 60 * 60 * 1000;

/**
 * Write `perStream` events into every stream of the workload before the run, as the store
 * would have written them long before it (RecordedAt two hours back; FIFO: SourceSequence
 * numbers below the run's). BatchWriteItem on an unmetered client: the history is not part
 * of the run's cost.
 */
export async function writeHistory(
  client: DynamoDBClient,
  tableName: string,
  workload: WorkloadOptions,
  perStream: number,
  fifo: boolean,
): Promise<number> {
  if (perStream < 1) return 0;
  const random = seededRandom(workload.seed + 1);
  const writtenAt = Date.now() - HISTORY_AGE_MS;
  const requests: WriteRequest[] = [];
  for (const [streamIndex, streamId] of streamIdsOf(workload).entries()) {
    for (let version = 1; version <= perStream; version += 1) {
      const event = randomEvent(random, streamId, 1_700_000_000 + version * 60, version, workload.maxItemBytes);
      const item = {
        ...event,
        [TableKeys.sortKey]: version,
        EventId: `${HISTORY_EVENT_ID_PREFIX}${streamIndex}-${version}`,
        RecordedAt: new Date(writtenAt + version).toISOString(),
        ...(fifo ? { SourceSequence: sequenceNumber(version) } : {}),
      };
      requests.push({ PutRequest: { Item: marshall(item, { removeUndefinedValues: true }) } });
    }
  }
  let cursor = 0;
  await runLanes(4, async () => {
    let batch = requests.slice(cursor, cursor + 25);
    cursor += batch.length;
    if (batch.length === 0) return false;
    while (batch.length > 0) {
      const result = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: batch } }));
      batch = result.UnprocessedItems?.[tableName] ?? [];
    }
    return true;
  });
  return requests.length;
}
