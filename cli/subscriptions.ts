/**
 * What `subscriptions`, `summary` and `tail` read (README "Subscriptions"): the target's
 * subscriptions, their lag and parked streams, the example projection's read model, and the
 * table's stream followed live.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, GetItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { fromItem } from '../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore, DynamoDbClaimStore, type LeaseWait } from '../adapters/dynamodb-subscription.ts';
import { TableKeys } from '../core/keys.ts';
import { SubscriptionEnvironment, type Checkpoint, type ReplayState } from '../core/subscription.ts';
import {
  READ_MODEL_TABLE_VARIABLE,
  summaryFromItem,
  type StreamSummary,
} from '../handlers/stream-summary-projection.ts';
import { OutputIds } from '../core/stack-outputs.ts';
import { LOCAL_CREDENTIALS } from '../local/defaults.ts';
import { dataDirectory, readStateFile } from '../local/state.ts';
import { StreamPoller } from '../local/stream-poller.ts';
import { CliError } from './errors.ts';
import type { TargetOptions } from './options.ts';
import type { Target } from './target.ts';

/**
 * The description of the EventSubscription construct's checkpoint table outputs: a copy of
 * CHECKPOINT_OUTPUT_PREFIX in infra/constructs/event-subscription.ts, which the CLI does not
 * import (that would load aws-cdk-lib on every command).
 */
const CHECKPOINT_OUTPUT_PREFIX = 'Checkpoints of subscription ';
/** The description of its claims table outputs: a copy of CLAIMS_OUTPUT_PREFIX there, for the same reason. */
const CLAIMS_OUTPUT_PREFIX = 'Claims of subscription ';

export interface SubscriptionTables {
  readonly name: string;
  readonly checkpointTable: string;
  /** Its claims table (docs/ARCHITECTURE.md, "Subscriptions"); undefined: a stack from before claims. */
  readonly claimsTable: string | undefined;
  readonly readModelTable: string | undefined;
}

/** The target's subscriptions: from the local state file, or from the deployed stack's outputs. */
export async function findSubscriptions(target: Target, options: TargetOptions): Promise<SubscriptionTables[]> {
  if (target.kind === 'local') {
    const state = readStateFile(dataDirectory(options.dataDir));
    return (state?.subscriptions ?? []).map((s) => ({
      name: s.name,
      checkpointTable: s.checkpointTable,
      claimsTable: s.tables[SubscriptionEnvironment.claimsTable],
      readModelTable: s.tables[READ_MODEL_TABLE_VARIABLE],
    }));
  }
  const cloudFormation = new CloudFormationClient({ region: target.region });
  try {
    const stack = (await cloudFormation.send(new DescribeStacksCommand({ StackName: options.stack }))).Stacks?.[0];
    const outputs = stack?.Outputs ?? [];
    const readModel = outputs.find((output) => output.OutputKey === OutputIds.streamSummaryTableName)?.OutputValue;
    const claims = (name: string) =>
      outputs.find((output) => output.Description === `${CLAIMS_OUTPUT_PREFIX}${name}`)?.OutputValue || undefined;
    return outputs
      .filter((output) => output.Description?.startsWith(CHECKPOINT_OUTPUT_PREFIX) && output.OutputValue)
      .map((output) => {
        const name = output.Description!.slice(CHECKPOINT_OUTPUT_PREFIX.length);
        return {
          name,
          checkpointTable: output.OutputValue!,
          claimsTable: claims(name),
          readModelTable: name === 'stream-summary' ? readModel : undefined,
        };
      });
  } finally {
    cloudFormation.destroy();
  }
}

/** Each stream's newest version: a Scan of the event table's keys (one pass; costs a read of the whole table). */
export async function streamHeads(target: Target): Promise<Map<string, number>> {
  const heads = new Map<string, number>();
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await target.dynamo.send(
      new ScanCommand({
        TableName: target.tableName,
        ProjectionExpression: '#id, #v',
        ExpressionAttributeNames: { '#id': TableKeys.partitionKey, '#v': TableKeys.sortKey },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const id = item[TableKeys.partitionKey]?.S;
      const version = Number(item[TableKeys.sortKey]?.N ?? 0);
      if (id !== undefined && version > (heads.get(id) ?? 0)) heads.set(id, version);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return heads;
}

export interface SubscriptionStatus {
  readonly name: string;
  readonly replay:
    Pick<ReplayState, 'status' | 'streams' | 'events' | 'startedAt' | 'finishedAt' | 'resume'> | undefined;
  readonly streams: number;
  /** Versions stored but not delivered, over all streams. */
  readonly lag: number;
  readonly streamsBehind: number;
  readonly parked: {
    readonly streamId: string;
    readonly version: number;
    readonly at: string;
    readonly error: string;
    readonly resumeRequested: boolean;
  }[];
}

export async function subscriptionStatus(
  target: Target,
  tables: SubscriptionTables,
  heads: Map<string, number>,
): Promise<SubscriptionStatus> {
  const store = new DynamoDbCheckpointStore({ client: target.dynamo, tableName: tables.checkpointTable });
  const [checkpoints, replay] = await Promise.all([store.listCheckpoints(), store.loadReplay()]);
  const byStream = new Map<string, Checkpoint>(checkpoints.map((checkpoint) => [checkpoint.streamId, checkpoint]));
  let lag = 0;
  let behind = 0;
  for (const [streamId, head] of heads) {
    const delivered = byStream.get(streamId)?.delivered ?? 0;
    if (head > delivered) {
      lag += head - delivered;
      behind += 1;
    }
  }
  return {
    name: tables.name,
    replay: replay && {
      status: replay.status,
      streams: replay.streams,
      events: replay.events,
      startedAt: replay.startedAt,
      finishedAt: replay.finishedAt,
      resume: replay.resume,
    },
    streams: heads.size,
    lag,
    streamsBehind: behind,
    parked: checkpoints
      .filter((checkpoint) => checkpoint.parked)
      .map((checkpoint) => ({ streamId: checkpoint.streamId, ...checkpoint.parked! })),
  };
}

/** The subscription called `name`. @throws CliError naming the ones there are. */
export function subscriptionNamed(
  all: readonly SubscriptionTables[],
  name: string,
  target: Target,
): SubscriptionTables {
  const found = all.find((s) => s.name === name);
  if (!found)
    throw new CliError(
      `no subscription ${name} in ${target.label}; there are: ${all.map((s) => s.name).join(', ') || 'none'}`,
    );
  return found;
}

/** What `subscriptions resume` (and the console's Resume) says of streams that are not parked. */
export function notParkedMessage(name: string, ids: readonly string[]): string {
  return `not parked in ${name}: ${ids.join(', ')} (npx eventstore subscriptions lists the parked streams)`;
}

/** Ask the replay worker to resume parked streams; the ids that were not parked come back. */
export async function requestResume(
  target: Target,
  tables: SubscriptionTables,
  ids: readonly string[],
): Promise<string[]> {
  const store = new DynamoDbCheckpointStore({ client: target.dynamo, tableName: tables.checkpointTable });
  const notParked: string[] = [];
  for (const id of ids) if (!(await store.requestResume(id))) notParked.push(id);
  return notParked;
}

/**
 * Have the replay worker scan the event table again from its start and catch every stream up
 * from its checkpoint: what was delivered is not delivered again (unlike `reset`). The recovery
 * for events whose stream records were never delivered (a batch the mapping discarded, records
 * past the stream's 24 hours: docs/OPERATIONS.md "Subscriptions"). The status the replay had before.
 */
export async function requestReplay(
  target: Target,
  tables: SubscriptionTables,
): Promise<ReplayState['status'] | undefined> {
  const store = new DynamoDbCheckpointStore({ client: target.dynamo, tableName: tables.checkpointTable });
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const replay = await store.loadReplay();
    // Never run yet: its first run scans the whole table anyway.
    if (!replay) return undefined;
    // A worker that holds it now loses its next (conditional) save and leaves the scan to the next run.
    const rescan = { ...replay, status: 'pending' as const, cursor: undefined, lastStream: undefined };
    if (await store.saveReplay({ ...rescan, streams: 0, events: 0, finishedAt: undefined })) return replay.status;
  }
  throw new CliError(`the replay state of ${tables.name} kept changing while it was asked for; run the command again`);
}

/**
 * Forget what a subscription delivered (it replays every stream from version 1): checkpoints set
 * back in place; the items reset. Returns once every invocation that held a stream before the
 * reset has let go of it (at most a function timeout): clear the read model after it returns.
 * That includes the live batches that hold streams by a claim, with no lease on the checkpoint
 * (docs/ARCHITECTURE.md, "Subscriptions"): the reset waits for the claims it finds.
 */
export async function resetSubscription(
  target: Target,
  tables: SubscriptionTables,
  onWait?: (waiting: readonly LeaseWait[]) => void,
): Promise<number> {
  const claims = tables.claimsTable
    ? new DynamoDbClaimStore({ client: target.dynamo, tableName: tables.claimsTable })
    : undefined;
  return new DynamoDbCheckpointStore({ client: target.dynamo, tableName: tables.checkpointTable }).reset({
    onWait,
    claims,
  });
}

/**
 * Follow the table's stream from now on and hand each stored event to `onEvent`, until it
 * returns false, SIGINT, or `signal` aborts (the console's live tail, when its page closes).
 */
export async function tailEvents(
  target: Target,
  options: TargetOptions,
  onEvent: (event: ReturnType<typeof fromItem>) => boolean | void,
  signal?: AbortSignal,
): Promise<void> {
  const described = await target.dynamo.send(new DescribeTableCommand({ TableName: target.tableName }));
  const streamArn = described.Table?.LatestStreamArn;
  if (!streamArn) throw new CliError(`table ${target.tableName} has no stream`);
  const local = target.kind === 'local' ? readStateFile(dataDirectory(options.dataDir)) : undefined;
  const streams = new DynamoDBStreamsClient(
    local
      ? { endpoint: local.dynamoDbEndpoint, region: target.region, credentials: LOCAL_CREDENTIALS }
      : { region: target.region },
  );
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const poller = new StreamPoller({
    streams,
    streamArn,
    region: target.region,
    batchSize: 100,
    eventNames: ['INSERT'],
    startingPosition: 'LATEST',
    handler: async (event: DynamoDBStreamEvent) => {
      for (const record of event.Records) {
        const image = record.dynamodb?.NewImage;
        if (image && onEvent(fromItem(image as Record<string, AttributeValue>)) === false) finish();
      }
      return { batchItemFailures: [] };
    },
    onError: (error) => process.stderr.write(`tail: ${error.message}\n`),
  });
  poller.start();
  const stop = () => finish();
  process.once('SIGINT', stop);
  signal?.addEventListener('abort', stop, { once: true });
  if (signal?.aborted) stop();
  try {
    await done;
  } finally {
    process.off('SIGINT', stop);
    signal?.removeEventListener('abort', stop);
    await poller.stop();
    streams.destroy();
  }
}

/** The example projection's read model: one stream's summary, or all of them sorted by ID. */
export async function readSummaries(
  target: Target,
  readModelTable: string,
  id: string | undefined,
): Promise<StreamSummary[]> {
  if (id !== undefined) {
    const found = await target.dynamo.send(
      new GetItemCommand({ TableName: readModelTable, Key: { ID: { S: id } }, ConsistentRead: true }),
    );
    if (!found.Item) throw new CliError(`no summary for stream ${id} (yet) in ${target.label}`);
    return [summaryFromItem(found.Item)];
  }
  const summaries: StreamSummary[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await target.dynamo.send(new ScanCommand({ TableName: readModelTable, ExclusiveStartKey: startKey }));
    summaries.push(...(page.Items ?? []).map(summaryFromItem));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return summaries.sort((a, b) => a.ID.localeCompare(b.ID));
}
