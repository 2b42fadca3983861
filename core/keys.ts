/**
 * The table's key names and the limits the store, the CDK construct and the tests share.
 * Change a name here and the template, the store and the tests change with it.
 */
export const TableKeys = {
  /** Partition key (S): the stream, i.e. the entity id the producer sent as `ID`. */
  partitionKey: 'ID',
  /** Sort key (N): 1, 2, 3 ... gapless within a stream. */
  sortKey: 'Version',
} as const;

/** The attributes every stored item carries besides the keys. */
export const StoredAttributes = {
  eventId: 'EventId',
  eventType: 'EventType',
  timestamp: 'Timestamp',
  emitterId: 'EmitterId',
  emitterType: 'EmitterType',
  data: 'Data',
  recordedAt: 'RecordedAt',
  /**
   * FIFO queues, message group = `ID`: the SQS sequence number of the message the event came
   * in, `@`, and a tag of its queue (core/fifo.ts `sourceSequence`). A redelivery of a message
   * of the same queue with a lower number was decided before (docs/ARCHITECTURE.md, "One fate
   * per record").
   */
  sourceSequence: 'SourceSequence',
  /**
   * Events stored together from one group message (docs/ARCHITECTURE.md, "Groups"): how many
   * the group has, and this event's place in it from 0. `Version - GroupIndex` is the group's
   * first version. Absent on an event sent alone.
   */
  groupSize: 'GroupSize',
  groupIndex: 'GroupIndex',
} as const;

/**
 * SQS's most messages a call: ReceiveMessage's MaxNumberOfMessages and the entries of
 * SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch. Lambda's SQS event
 * source applies the same number to FIFO batches and to batches without a batching window.
 */
const SQS_BATCH = 10;

export const Limits = {
  /** DynamoDB's item size limit, in bytes. */
  maxItemBytes: 400 * 1024,
  /** DynamoDB's most items in one transaction (TransactWriteItems): the most events in a group. */
  maxGroupEvents: 100,
  /** DynamoDB's limit on the aggregate size of a transaction's items, in bytes (4 MB). */
  maxTransactionBytes: 4 * 1024 * 1024,
  /** SQS's largest message, body and attributes, in bytes (1 MiB). */
  maxMessageBytes: 1_048_576,
  /** DynamoDB's partition key size limit, in UTF-8 bytes. */
  maxPartitionKeyBytes: 2048,
  /** DynamoDB's nesting limit for maps and lists. */
  maxNestingDepth: 32,
  /** The contract's own limits (docs/ARCHITECTURE.md, "The event contract"). */
  maxIdChars: 1024,
  maxEventTypeChars: 256,
  maxEventIdChars: 128,
  /** A numeric Timestamp above this is taken for milliseconds. */
  maxTimestampSeconds: 1e11,
  /** Standard-queue duplicate window: how many recent events of a stream are checked. */
  defaultDedupWindow: 50,
  /** The longest standard-queue duplicate window the configuration accepts (`dedupWindow`, DEDUP_WINDOW). */
  maxDedupWindow: 1000,
  /** SQS's largest `maxReceiveCount` of a redrive policy (`maxReceiveCount`, MAX_RECEIVE_COUNT). */
  maxReceiveCount: 1000,
  /** SQS's most messages or entries one call takes (receive, send, delete, change visibility). */
  maxSqsBatch: SQS_BATCH,
  /** SQS FIFO and the Lambda event source mapping for FIFO allow at most 10 records a batch. */
  maxFifoBatchSize: SQS_BATCH,
  /** Lambda's SQS event source: without a batching window at most 10 records a batch. */
  maxBatchSizeWithoutWindow: SQS_BATCH,
} as const;
