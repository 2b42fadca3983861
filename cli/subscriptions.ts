/**
 * `eventstore subscriptions`, `summary` and `tail` (README "Subscriptions"): the subscriptions'
 * lag and parked streams, resume and reset, the example projection's read model, and the
 * table's stream printed live.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, GetItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import type { Command } from 'commander';
import { fromItem } from '../adapters/dynamodb-store.ts';
import { DynamoDbCheckpointStore } from '../adapters/dynamodb-subscription.ts';
import { TableKeys } from '../core/keys.ts';
import type { Checkpoint, ReplayState } from '../core/subscription.ts';
import { READ_MODEL_TABLE_VARIABLE, summaryFromItem, type StreamSummary } from '../handlers/stream-summary-projection.ts';
import { LOCAL_CREDENTIALS } from '../local/consumers.ts';
import { dataDirectory, readStateFile } from '../local/state.ts';
import { StreamPoller } from '../local/stream-poller.ts';
import { formatTable } from './inspect.ts';
import { CliError, type Target, type TargetOptions } from './target.ts';

/** Output descriptions of the EventSubscription construct (infra/constructs/event-subscription.ts). */
const CHECKPOINT_OUTPUT_PREFIX = 'Checkpoints of subscription ';
const READ_MODEL_OUTPUT = 'StreamSummaryTableName';

export interface SubscriptionTables {
  readonly name: string;
  readonly checkpointTable: string;
  readonly readModelTable: string | undefined;
}

/** The target's subscriptions: from the local state file, or from the deployed stack's outputs. */
export async function findSubscriptions(target: Target, options: TargetOptions): Promise<SubscriptionTables[]> {
  if (target.kind === 'local') {
    const state = readStateFile(dataDirectory(options.dataDir));
    return (state?.subscriptions ?? []).map((s) => ({ name: s.name, checkpointTable: s.checkpointTable, readModelTable: s.tables[READ_MODEL_TABLE_VARIABLE] }));
  }
  const cloudFormation = new CloudFormationClient({ region: target.region });
  try {
    const stack = (await cloudFormation.send(new DescribeStacksCommand({ StackName: options.stack }))).Stacks?.[0];
    const outputs = stack?.Outputs ?? [];
    const readModel = outputs.find((output) => output.OutputKey === READ_MODEL_OUTPUT)?.OutputValue;
    return outputs
      .filter((output) => output.Description?.startsWith(CHECKPOINT_OUTPUT_PREFIX) && output.OutputValue)
      .map((output) => {
        const name = output.Description!.slice(CHECKPOINT_OUTPUT_PREFIX.length);
        return { name, checkpointTable: output.OutputValue!, readModelTable: name === 'stream-summary' ? readModel : undefined };
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
  readonly replay: Pick<ReplayState, 'status' | 'streams' | 'events' | 'startedAt' | 'finishedAt' | 'resume'> | undefined;
  readonly streams: number;
  /** Versions stored but not delivered, over all streams. */
  readonly lag: number;
  readonly streamsBehind: number;
  readonly parked: { readonly streamId: string; readonly version: number; readonly at: string; readonly error: string; readonly resumeRequested: boolean }[];
}

export async function subscriptionStatus(target: Target, tables: SubscriptionTables, heads: Map<string, number>): Promise<SubscriptionStatus> {
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
    replay: replay && { status: replay.status, streams: replay.streams, events: replay.events, startedAt: replay.startedAt, finishedAt: replay.finishedAt, resume: replay.resume },
    streams: heads.size,
    lag,
    streamsBehind: behind,
    parked: checkpoints
      .filter((checkpoint) => checkpoint.parked)
      .map((checkpoint) => ({ streamId: checkpoint.streamId, ...checkpoint.parked! })),
  };
}

export function formatStatus(status: SubscriptionStatus): string {
  const replay = status.replay
    ? `replay ${status.replay.status} (${status.replay.streams} streams, ${status.replay.events} events${status.replay.resume.length ? `, ${status.replay.resume.length} resume(s) pending` : ''})`
    : 'replay pending (not started)';
  const lines = [
    `${status.name}: ${replay}; lag ${status.lag} version(s) over ${status.streamsBehind} of ${status.streams} stream(s); ${status.parked.length} parked`,
  ];
  if (status.parked.length > 0) {
    lines.push(
      formatTable(
        ['Parked stream', 'At version', 'Since', 'Resume asked', 'Error'],
        status.parked.map((p) => [p.streamId, String(p.version), p.at, p.resumeRequested ? 'yes' : 'no', p.error]),
        [40, 10, 24, 12, 100],
      ),
    );
  }
  return lines.join('\n');
}

function named(all: readonly SubscriptionTables[], name: string, target: Target): SubscriptionTables {
  const found = all.find((s) => s.name === name);
  if (!found) throw new CliError(`no subscription ${name} in ${target.label}; there are: ${all.map((s) => s.name).join(', ') || 'none'}`);
  return found;
}

export interface CommandHelpers {
  readonly withTarget: (command: Command, action: (target: Target) => Promise<void>) => Promise<void>;
  readonly print: (text: string) => void;
}

/** Follow the table's stream from now on and hand each stored event to `onEvent`. */
export async function tailEvents(target: Target, options: TargetOptions, onEvent: (event: ReturnType<typeof fromItem>) => boolean | void): Promise<void> {
  const described = await target.dynamo.send(new DescribeTableCommand({ TableName: target.tableName }));
  const streamArn = described.Table?.LatestStreamArn;
  if (!streamArn) throw new CliError(`table ${target.tableName} has no stream`);
  const local = target.kind === 'local' ? readStateFile(dataDirectory(options.dataDir)) : undefined;
  const streams = new DynamoDBStreamsClient(
    local ? { endpoint: local.dynamoDbEndpoint, region: target.region, credentials: LOCAL_CREDENTIALS } : { region: target.region },
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
  try {
    await done;
  } finally {
    process.off('SIGINT', stop);
    await poller.stop();
    streams.destroy();
  }
}

/** Add `subscriptions`, `summary` and `tail` to the CLI. */
export function registerSubscriptionCommands(program: Command, { withTarget, print }: CommandHelpers): void {
  const subscriptions = program
    .command('subscriptions')
    .description('subscriptions: replay progress, lag (versions stored but not delivered) and parked streams')
    .option('--json', 'print JSON', false)
    .action(async (options: { json: boolean }, command: Command) => {
      await withTarget(command, async (target) => {
        const all = await findSubscriptions(target, command.optsWithGlobals<TargetOptions>());
        if (all.length === 0) {
          print(`${target.label} has no subscriptions (deploy with -c exampleProjection=true, or stack.addSubscription)`);
          return;
        }
        const heads = await streamHeads(target);
        const statuses = await Promise.all(all.map((tables) => subscriptionStatus(target, tables, heads)));
        if (options.json) print(JSON.stringify(statuses, null, 2));
        else print(statuses.map(formatStatus).join('\n\n'));
      });
    });

  subscriptions
    .command('resume')
    .description('resume parked streams: the replay worker retries each from its parked version')
    .argument('<subscription>', 'the subscription name')
    .argument('<ids...>', 'the parked streams')
    .action(async (name: string, ids: string[], _options: unknown, command: Command) => {
      await withTarget(command, async (target) => {
        const tables = named(await findSubscriptions(target, command.optsWithGlobals<TargetOptions>()), name, target);
        const store = new DynamoDbCheckpointStore({ client: target.dynamo, tableName: tables.checkpointTable });
        const notParked: string[] = [];
        for (const id of ids) if (!(await store.requestResume(id))) notParked.push(id);
        const asked = ids.length - notParked.length;
        print(`resume asked for ${asked} stream(s) of ${name}; the replay worker picks them up within its schedule (local: a second)`);
        if (notParked.length > 0) throw new CliError(`not parked in ${name}: ${notParked.join(', ')}`);
      });
    });

  subscriptions
    .command('reset')
    .description('forget what a subscription delivered: it replays every stream from version 1 (clear its read model yourself)')
    .argument('<subscription>', 'the subscription name')
    .option('--yes', 'really reset', false)
    .action(async (name: string, options: { yes: boolean }, command: Command) => {
      if (!options.yes) throw new CliError('reset replays every event to the projection again; confirm with --yes');
      await withTarget(command, async (target) => {
        const tables = named(await findSubscriptions(target, command.optsWithGlobals<TargetOptions>()), name, target);
        const removed = await new DynamoDbCheckpointStore({ client: target.dynamo, tableName: tables.checkpointTable }).reset();
        print(`${name}: ${removed} checkpoint item(s) removed; the replay starts again from version 1 of every stream`);
      });
    });

  program
    .command('summary')
    .description("the example projection's read model: a stream's summary, or all of them")
    .argument('[id]', 'one stream')
    .option('--json', 'print JSON', false)
    .action(async (id: string | undefined, options: { json: boolean }, command: Command) => {
      await withTarget(command, async (target) => {
        const tables = (await findSubscriptions(target, command.optsWithGlobals<TargetOptions>())).find((s) => s.readModelTable);
        if (!tables?.readModelTable) throw new CliError(`${target.label} has no example projection (deploy with -c exampleProjection=true)`);
        let summaries: StreamSummary[] = [];
        if (id !== undefined) {
          const found = await target.dynamo.send(new GetItemCommand({ TableName: tables.readModelTable, Key: { ID: { S: id } }, ConsistentRead: true }));
          if (!found.Item) throw new CliError(`no summary for stream ${id} (yet) in ${target.label}`);
          summaries = [summaryFromItem(found.Item)];
        } else {
          let startKey: Record<string, AttributeValue> | undefined;
          do {
            const page = await target.dynamo.send(new ScanCommand({ TableName: tables.readModelTable, ExclusiveStartKey: startKey }));
            summaries.push(...(page.Items ?? []).map(summaryFromItem));
            startKey = page.LastEvaluatedKey;
          } while (startKey);
          summaries.sort((a, b) => a.ID.localeCompare(b.ID));
        }
        if (options.json) {
          print(JSON.stringify(id !== undefined ? summaries[0] : summaries, null, 2));
          return;
        }
        print(
          formatTable(
            ['ID', 'Events', 'LastVersion', 'LastEventType', 'Types'],
            summaries.map((s) => [s.ID, String(s.Events), String(s.LastVersion), s.LastEventType, Object.entries(s.Types).map(([t, n]) => `${t}=${n}`).join(' ')]),
            [40, 8, 11, 30, 100],
          ),
        );
      });
    });

  program
    .command('tail')
    .description('print events as they are stored (the table stream, from now on) until Ctrl-C')
    .option('--count <n>', 'stop after N events', (value) => Number(value))
    .option('--json', 'one JSON object per line', false)
    .action(async (options: { count?: number; json: boolean }, command: Command) => {
      await withTarget(command, async (target) => {
        if (!options.json) process.stderr.write(`following ${target.label}, table ${target.tableName} (Ctrl-C to stop)\n`);
        let seen = 0;
        await tailEvents(target, command.optsWithGlobals<TargetOptions>(), (event) => {
          if (options.count !== undefined && seen >= options.count) return false;
          seen += 1;
          print(options.json ? JSON.stringify(event) : `${event.RecordedAt}  ${event.ID}  v${event.Version}  ${event.EventType}  ${JSON.stringify(event.Data ?? null)}`);
          return options.count === undefined || seen < options.count;
        });
      });
    });
}
