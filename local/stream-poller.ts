/**
 * Lambda's DynamoDB stream event source on one machine (README "Subscriptions"): the local
 * mode's subscriptions and `eventstore tail` read DynamoDB Local's stream through it.
 */
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type DynamoDBStreamsClient,
  type Shard,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { normaliseStreamRecord } from './stream-records.ts';

/** A stream record as Lambda hands it to the function. */
function lambdaRecord(record: StreamRecord, streamArn: string, region: string): DynamoDBRecord {
  const created = record.dynamodb?.ApproximateCreationDateTime;
  return {
    eventID: record.eventID ?? randomUUID(),
    eventName: record.eventName as DynamoDBRecord['eventName'],
    eventVersion: record.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: region,
    eventSourceARN: streamArn,
    dynamodb: {
      ...(record.dynamodb as DynamoDBRecord['dynamodb']),
      ...(created ? { ApproximateCreationDateTime: Math.floor(new Date(created).getTime() / 1000) } : {}),
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface StreamPollerOptions {
  readonly streams: DynamoDBStreamsClient;
  readonly streamArn: string;
  readonly region: string;
  readonly batchSize: number;
  readonly eventNames: readonly string[];
  readonly handler: (event: DynamoDBStreamEvent) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
  /**
   * Where to start: TRIM_HORIZON, as the construct's mapping (every record the stream keeps; what
   * was delivered is skipped by the checkpoints), or LATEST (shards open now, from now: the tail).
   */
  readonly startingPosition: 'LATEST' | 'TRIM_HORIZON';
  readonly onError?: (error: Error) => void;
  /** Idle wait between empty GetRecords. @default 100 ms */
  readonly idleMs?: number;
}

/**
 * Lambda's DynamoDB stream event source, on one machine: every shard polled in order, parents
 * before children, one batch in flight per shard; a failed batch (the handler threw) is sent
 * again, a partial failure sends the shard back to the lowest failed record.
 */
export class StreamPoller {
  readonly #options: StreamPollerOptions;
  #stopped = false;
  readonly #running = new Map<string, Promise<void>>();
  readonly #finished = new Set<string>();
  #discovery: Promise<void> | undefined;

  public constructor(options: StreamPollerOptions) {
    this.#options = options;
  }

  public start(): void {
    this.#discovery = this.#discover(true);
  }

  async #shards(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const described = await this.#options.streams.send(
        new DescribeStreamCommand({ StreamArn: this.#options.streamArn, ExclusiveStartShardId: start }),
      );
      shards.push(...(described.StreamDescription?.Shards ?? []));
      start = described.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  async #discover(first: boolean): Promise<void> {
    let initial = first;
    while (!this.#stopped) {
      try {
        const shards = await this.#shards();
        const known = new Set(shards.map((shard) => shard.ShardId));
        // At start from LATEST, closed shards are history: skipped. From TRIM_HORIZON (the construct's
        // mapping), every shard the stream keeps is read from its oldest record, parents first.
        const latest = initial && this.#options.startingPosition === 'LATEST';
        if (latest)
          for (const shard of shards)
            if (shard.SequenceNumberRange?.EndingSequenceNumber !== undefined) this.#finished.add(shard.ShardId!);
        for (const shard of shards) {
          const id = shard.ShardId!;
          if (this.#running.has(id) || this.#finished.has(id)) continue;
          const parent = shard.ParentShardId;
          const parentPending = parent !== undefined && known.has(parent) && !this.#finished.has(parent);
          if (parentPending && !latest) continue;
          const position = latest ? 'LATEST' : 'TRIM_HORIZON';
          this.#running.set(
            id,
            this.#poll(id, position).finally(() => {
              this.#running.delete(id);
              this.#finished.add(id);
            }),
          );
        }
        initial = false;
      } catch (error) {
        if (!this.#stopped) this.#options.onError?.(error instanceof Error ? error : new Error(String(error)));
      }
      for (let waited = 0; waited < 2000 && !this.#stopped; waited += 100) await sleep(100);
    }
  }

  async #iterator(
    shardId: string,
    type: 'LATEST' | 'TRIM_HORIZON' | 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER',
    sequenceNumber?: string,
  ): Promise<string | undefined> {
    const result = await this.#options.streams.send(
      new GetShardIteratorCommand({
        StreamArn: this.#options.streamArn,
        ShardId: shardId,
        ShardIteratorType: type,
        ...(sequenceNumber ? { SequenceNumber: sequenceNumber } : {}),
      }),
    );
    return result.ShardIterator;
  }

  async #poll(shardId: string, position: 'LATEST' | 'TRIM_HORIZON'): Promise<void> {
    const idle = this.#options.idleMs ?? 100;
    let iterator = await this.#iterator(shardId, position);
    /** Where to take the shard up again should the iterator be refused (expired or trimmed). */
    let resume: { type: 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER'; sequence: string } | undefined;
    let failures = 0;
    while (iterator && !this.#stopped) {
      try {
        const page = await this.#options.streams.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: this.#options.batchSize }),
        );
        // DynamoDB Local writes an empty map without its type: read the records as AWS writes them.
        const all = (page.Records ?? []).map(normaliseStreamRecord);
        const records = all.filter((record) => this.#options.eventNames.includes(record.eventName ?? ''));
        const last = all[all.length - 1]?.dynamodb?.SequenceNumber;
        if (records.length === 0) {
          if (last) resume = { type: 'AFTER_SEQUENCE_NUMBER', sequence: last };
          iterator = page.NextShardIterator;
          if (all.length === 0) await sleep(idle);
          continue;
        }
        let response: { batchItemFailures: { itemIdentifier: string }[] };
        const first = records[0]!.dynamodb!.SequenceNumber!;
        try {
          response = await this.#options.handler({
            Records: records.map((record) => lambdaRecord(record, this.#options.streamArn, this.#options.region)),
          });
        } catch (error) {
          // Like a function error: the same batch again, after a pause.
          this.#options.onError?.(error instanceof Error ? error : new Error(String(error)));
          failures += 1;
          await sleep(Math.min(5000, 100 * 2 ** failures));
          resume = { type: 'AT_SEQUENCE_NUMBER', sequence: first };
          iterator = await this.#iterator(shardId, resume.type, resume.sequence);
          continue;
        }
        failures = 0;
        const failed = response.batchItemFailures.map((failure) => failure.itemIdentifier).filter(Boolean);
        if (failed.length > 0) {
          resume = { type: 'AT_SEQUENCE_NUMBER', sequence: failed.reduce((a, b) => (BigInt(a) <= BigInt(b) ? a : b)) };
          iterator = await this.#iterator(shardId, resume.type, resume.sequence);
        } else {
          if (last) resume = { type: 'AFTER_SEQUENCE_NUMBER', sequence: last };
          iterator = page.NextShardIterator;
        }
      } catch (error) {
        if (this.#stopped) return;
        const name = error instanceof Error ? error.name : '';
        if (name === 'TrimmedDataAccessException' || name === 'ExpiredIteratorException') {
          // DynamoDB Local sometimes refuses an iterator it handed out (seen under load):
          // take the shard up again where we were; a record seen twice is skipped by the checkpoint.
          iterator = await this.#iterator(shardId, resume?.type ?? 'TRIM_HORIZON', resume?.sequence).catch(
            () => iterator,
          );
          await sleep(idle);
          continue;
        }
        this.#options.onError?.(error instanceof Error ? error : new Error(String(error)));
        await sleep(500);
      }
    }
  }

  /** Stop polling; resolves when the batches in flight are handled. */
  public async stop(): Promise<void> {
    this.#stopped = true;
    await this.#discovery;
    await Promise.all(this.#running.values());
  }
}
