import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { queryStreamAfter, scanTable, type PathResult } from './baseline.ts';
import type { CapacityCounts } from './capacity.ts';
import type { ConsumerRequests } from './direct.ts';
import { HISTORY_EVENT_ID_PREFIX } from './history.ts';
import type { Workload, WorkloadMessage } from './workload.ts';

export interface StoredCheck {
  /** Items of the run's events (history excluded). */
  readonly items: number;
  readonly distinctEvents: number;
  readonly duplicatesStored: number;
  readonly missing: number;
  readonly gapless: boolean;
  /** Stored event's RecordedAt minus the time its message was first handed over (or sent), ms. */
  readonly latenciesMs: number[];
}

/** Streams that had `perStream` events before the run (bench/history.ts). */
export interface History {
  readonly perStream: number;
  readonly streamIds: readonly string[];
}

/**
 * Read the run's items back and check them against the workload: every distinct event once,
 * nothing twice, versions gapless per stream (1..n, or after the history); and the
 * send-to-stored latency of each event. With a history, only what is above it is read (a
 * Query per stream: DynamoDB Local scans slowly).
 */
export async function checkStored(
  client: DynamoDBClient,
  tableName: string,
  messages: readonly WorkloadMessage[],
  sentAt: ReadonlyMap<string, number>,
  history: History = { perStream: 0, streamIds: [] },
): Promise<StoredCheck> {
  const items =
    history.perStream > 0
      ? (
          await Promise.all(
            history.streamIds.map((streamId) => queryStreamAfter(client, tableName, streamId, history.perStream)),
          )
        ).flat()
      : await scanTable(client, tableName);
  const firstSent = new Map<string, number>();
  for (const message of messages) {
    const at = sentAt.get(message.messageId);
    if (at === undefined) continue;
    for (const eventId of message.eventIds) {
      const known = firstSent.get(eventId);
      if (known === undefined || at < known) firstSent.set(eventId, at);
    }
  }
  const expected = new Set(messages.flatMap((message) => message.eventIds));
  const seen = new Set<string>();
  const versions = new Map<string, number[]>();
  const latenciesMs: number[] = [];
  let runItems = 0;
  for (const item of items) {
    const eventId = String(item['EventId']);
    const list = versions.get(String(item['ID'])) ?? [];
    list.push(Number(item['Version']));
    versions.set(String(item['ID']), list);
    // History written before the run (bench/history.ts) counts for the versions only.
    if (eventId.startsWith(HISTORY_EVENT_ID_PREFIX)) continue;
    runItems += 1;
    seen.add(eventId);
    const sent = firstSent.get(eventId);
    const recordedAt = Date.parse(String(item['RecordedAt']));
    if (sent !== undefined && Number.isFinite(recordedAt)) latenciesMs.push(Math.max(0, recordedAt - sent));
  }
  let gapless = true;
  for (const list of versions.values()) {
    list.sort((a, b) => a - b);
    if (list.some((version, index) => version !== history.perStream + index + 1)) gapless = false;
  }
  const missing = [...expected].filter((eventId) => !seen.has(eventId)).length;
  return {
    items: runItems,
    distinctEvents: seen.size,
    duplicatesStored: runItems - seen.size,
    missing,
    gapless,
    latenciesMs,
  };
}

export function projectResult(
  label: string,
  workload: Workload,
  messages: readonly WorkloadMessage[],
  check: StoredCheck,
  counts: CapacityCounts,
  run: {
    wallMs: number;
    invocations: number;
    invocationMsTotal: number;
    retriedRecords: number;
    cpuMicros?: number;
    containersStarted?: number;
    consumerRequests: ConsumerRequests;
  },
  appendConflicts: number,
  notes: string[],
): PathResult {
  return {
    label,
    messages: messages.length,
    validEvents: workload.uniqueEvents,
    itemsStored: check.items,
    distinctEventsStored: check.distinctEvents,
    duplicatesStored: check.duplicatesStored,
    lostEvents: check.missing,
    counts,
    wallMs: run.wallMs,
    latenciesMs: check.latenciesMs,
    invocations: run.invocations,
    invocationMsTotal: run.invocationMsTotal,
    retriedRecords: run.retriedRecords,
    ...(run.cpuMicros === undefined ? {} : { cpuMicrosPerEvent: run.cpuMicros / workload.uniqueEvents }),
    ...(run.containersStarted === undefined ? {} : { containersStarted: run.containersStarted }),
    appendConflicts,
    consumerRequests: run.consumerRequests,
    notes,
  };
}
