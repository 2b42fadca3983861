/**
 * The example projection (README "Subscriptions"): a read model of each stream's current
 * summary, one item per stream in its own table: event count, last version, last event type,
 * a count per event type, and how many groups (events stored together from one message,
 * docs/ARCHITECTURE.md, "Groups") the stream holds. Copy this file to write your own.
 *
 * The projection is called once per event, in version order, a group's events included: each
 * counts as an event; the group's first (`GroupIndex` 0) counts the group.
 *
 * Every write is conditioned on the version, so a redelivered event (after a crash between the
 * projection and the checkpoint) changes nothing: the read model stays exact.
 */
import {
  ConditionalCheckFailedException,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { ConfigurationError } from '../core/errors.ts';
import type { StoredEvent } from '../core/store.ts';
import { subscriptionHandler, type ProjectionContext } from './subscription.ts';

/** The read model table's key and attributes. */
export const StreamSummaryAttributes = {
  partitionKey: 'ID',
  events: 'Events',
  lastVersion: 'LastVersion',
  lastEventType: 'LastEventType',
  types: 'Types',
  groups: 'Groups',
  updatedAt: 'UpdatedAt',
} as const;
const S = StreamSummaryAttributes;

export const READ_MODEL_TABLE_VARIABLE = 'READ_MODEL_TABLE_NAME';

/** One stream's summary as the CLI shows it. */
export interface StreamSummary {
  readonly ID: string;
  readonly Events: number;
  readonly LastVersion: number;
  readonly LastEventType: string;
  readonly Types: Readonly<Record<string, number>>;
  /** Groups of events stored together (docs/ARCHITECTURE.md, "Groups"): 0 when every event was sent alone. */
  readonly Groups: number;
}

export function summaryFromItem(item: Record<string, AttributeValue>): StreamSummary {
  return {
    ID: item[S.partitionKey]?.S ?? '',
    Events: Number(item[S.events]?.N ?? 0),
    LastVersion: Number(item[S.lastVersion]?.N ?? 0),
    LastEventType: item[S.lastEventType]?.S ?? '',
    Types: Object.fromEntries(
      Object.entries(item[S.types]?.M ?? {}).map(([type, count]) => [type, Number(count.N ?? 0)]),
    ),
    Groups: Number(item[S.groups]?.N ?? 0),
  };
}

function isConditionFailure(error: unknown): error is ConditionalCheckFailedException {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

/** The projection: fold one event into its stream's summary. */
export function streamSummaryProjection({ env, dynamo }: ProjectionContext) {
  const table = env[READ_MODEL_TABLE_VARIABLE];
  if (!table)
    throw new ConfigurationError(
      `${READ_MODEL_TABLE_VARIABLE}: the environment variable is missing; set it to the read model table name`,
    );
  return async (event: StoredEvent): Promise<void> => {
    const key = { [S.partitionKey]: { S: event.ID } };
    const now = { S: new Date().toISOString() };
    // A group counts once, at its first event (docs/ARCHITECTURE.md, "Groups").
    const groupStarts = event.GroupIndex !== undefined && Number(event.GroupIndex) === 0 ? '1' : '0';
    try {
      await dynamo.send(
        new UpdateItemCommand({
          TableName: table,
          Key: key,
          UpdateExpression:
            'SET #e = #e + :one, #v = :v, #l = :type, #t.#type = if_not_exists(#t.#type, :zero) + :one, #g = if_not_exists(#g, :zero) + :group, #u = :now',
          ConditionExpression: 'attribute_exists(#v) AND #v < :v',
          ExpressionAttributeNames: {
            '#e': S.events,
            '#v': S.lastVersion,
            '#l': S.lastEventType,
            '#t': S.types,
            '#type': event.EventType,
            '#g': S.groups,
            '#u': S.updatedAt,
          },
          ExpressionAttributeValues: {
            ':one': { N: '1' },
            ':zero': { N: '0' },
            ':group': { N: groupStarts },
            ':v': { N: String(event.Version) },
            ':type': { S: event.EventType },
            ':now': now,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Already at or past this version: a redelivery, nothing to do.
      if (error.Item) return;
    }
    try {
      await dynamo.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            ...key,
            [S.events]: { N: '1' },
            [S.lastVersion]: { N: String(event.Version) },
            [S.lastEventType]: { S: event.EventType },
            [S.types]: { M: { [event.EventType]: { N: '1' } } },
            [S.groups]: { N: groupStarts },
            [S.updatedAt]: now,
          },
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': S.partitionKey },
        }),
      );
    } catch (error) {
      // Another delivery of the stream's first event got there first: nothing to do.
      if (!isConditionFailure(error)) throw error;
    }
  };
}

/** The Lambda entry point the stack deploys with `-c exampleProjection=true`. */
export const handler = subscriptionHandler({ projection: streamSummaryProjection });
