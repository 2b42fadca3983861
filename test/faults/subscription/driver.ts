import { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  checkpointFromItem,
  ClaimAttributes,
  DynamoDbCheckpointStore,
  DynamoDbClaimStore,
  replayFromItem,
  streamKey,
} from '../../../adapters/dynamodb-subscription.ts';
import { CheckpointKeys, replayHasWork, SubscriptionDefaults } from '../../../core/subscription.ts';
import { createSubscriptionHandler, type SubscriptionConfig } from '../../../handlers/subscription.ts';
import type { Driver, Item } from './world.ts';

/**
 * The code under test, as the explorer drives it: the real subscription function
 * (handlers/subscription.ts `createSubscriptionHandler`, with the runtime of
 * core/subscription.ts and the adapter of adapters/dynamodb-subscription.ts) on the schedule's
 * DynamoDB client, and the users' commands as the CLI runs them (the adapter's `requestResume`
 * and `reset`). The one place that knows the runtime's API: adapt it when the API changes.
 */

/** Metrics are not what the explorer checks; Powertools would print them. */
const silentMetrics = {
  addDimension: () => undefined,
  addMetric: () => undefined,
  addMetadata: () => undefined,
  publishStoredMetrics: () => undefined,
  setDefaultDimensions: () => undefined,
} as unknown as Metrics;

export function subscriptionDriver(
  tables: { eventTable: string; checkpointTable: string; claimsTable: string },
  claims: boolean,
): Driver {
  const logger = new Logger({ serviceName: 'subscription-explorer', logLevel: 'SILENT' });
  const store = (client: DynamoDBClient) => new DynamoDbCheckpointStore({ client, tableName: tables.checkpointTable });
  const claimStore = (client: DynamoDBClient) =>
    claims ? new DynamoDbClaimStore({ client, tableName: tables.claimsTable }) : undefined;
  return {
    handler(client, project, maxAttempts) {
      const config: SubscriptionConfig = {
        name: 'explorer',
        eventTable: tables.eventTable,
        checkpointTable: tables.checkpointTable,
        maxAttempts,
        eventTypes: [],
        replayReadUnitsPerSecond: SubscriptionDefaults.replayReadUnitsPerSecond,
        ...(claims ? { claimsTable: tables.claimsTable } : {}),
      };
      const handler = createSubscriptionHandler({ dynamo: client, config, project, logger, metrics: silentMetrics });
      return (event, context) => handler(event, context);
    },
    resume: (client, streamId) => store(client).requestResume(streamId),
    reset: (client) => store(client).reset({ claims: claimStore(client) }),
    async rescan(client) {
      // What local/subscriptions.ts does at start: the replay Scans again from the checkpoints.
      // An operator runs it again until it takes (a resume may write the replay item meanwhile).
      const checkpoints = store(client);
      for (;;) {
        const replay = await checkpoints.loadReplay();
        if (replay?.status !== 'done') return;
        if (await checkpoints.saveReplay({ ...replay, status: 'pending', cursor: undefined, lastStream: undefined }))
          return;
      }
    },
    checkpointKey: (streamId) => streamKey(streamId),
    claimedStreams(command, input) {
      // A claim written (PutItem) or a stream named on it again (UpdateItem SET): the streams it names.
      if ((input as { TableName?: unknown }).TableName !== tables.claimsTable) return [];
      const prefix = ClaimAttributes.streamPrefix;
      if (command === 'PutItemCommand')
        return Object.keys(input['Item'] as Item)
          .filter((name) => name.startsWith(prefix))
          .map((name) => name.slice(prefix.length));
      if (command === 'UpdateItemCommand' && String(input['UpdateExpression']).startsWith('SET'))
        return Object.values(input['ExpressionAttributeNames'] as Record<string, string>)
          .filter((name) => name.startsWith(prefix))
          .map((name) => name.slice(prefix.length));
      return [];
    },
    decodeCheckpoint(item: Item) {
      if (item[CheckpointKeys.partitionKey]?.S === CheckpointKeys.replayKey) return undefined;
      const checkpoint = checkpointFromItem(item);
      return {
        streamId: checkpoint.streamId,
        delivered: checkpoint.delivered,
        head: checkpoint.head,
        parkedAt: checkpoint.parked?.version,
        // The handler's owners: the request id (live), `replay-` and the request id (replay).
        holder: checkpoint.lease?.owner.replace(/^replay-/, ''),
      };
    },
    replayIdle: (item) => (item ? !replayHasWork(replayFromItem(item)) : false),
    replayKey: () => ({ [CheckpointKeys.partitionKey]: { S: CheckpointKeys.replayKey } }),
    readUnitsPerSecond: SubscriptionDefaults.replayReadUnitsPerSecond,
  };
}
