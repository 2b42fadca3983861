/**
 * FIFO message group and deduplication ids, one rule for every sender: the ingest's rejecter
 * (to the FIFO dead-letter queue) and the redrive (back to the FIFO ingest queue). A stream's
 * events must share one group, or FIFO mode loses their order (README, "How it works": Ordering).
 */
import { createHash } from 'node:crypto';

/** What SQS accepts as a FIFO group or deduplication id: 1 to 128 of ASCII letters, digits and punctuation. */
export const FIFO_ID_PATTERN = /^[\x21-\x7E]{1,128}$/;

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The message group of an event: its stream id when SQS accepts it as a group id (spaces,
 * non-ASCII and over 128 characters are refused, the event contract allows them), else the
 * group the message came in with, else a hash of the stream id (or of the message id when the
 * body has no usable `ID`). The same stream always gets the same group.
 *
 * @example
 * ```ts
 * fifoGroupId('order-1', undefined, 'm-1'); // 'order-1'
 * fifoGroupId('order 1', undefined, 'm-1'); // 'sha256-…' (a space is refused by SQS)
 * ```
 */
export function fifoGroupId(
  streamId: string | undefined,
  sourceGroupId: string | undefined,
  messageId: string,
): string {
  for (const candidate of [streamId, sourceGroupId]) {
    if (candidate !== undefined && FIFO_ID_PATTERN.test(candidate)) return candidate;
  }
  return `sha256-${sha256Hex(streamId ?? sourceGroupId ?? messageId)}`;
}

/**
 * A deduplication id SQS accepts, derived only from `key`: the key itself when allowed, else
 * its SHA-256. A re-send with the same key within SQS's 5-minute window is dropped by SQS.
 */
export function fifoDeduplicationId(key: string): string {
  return FIFO_ID_PATTERN.test(key) ? key : sha256Hex(key);
}

/** What a stored `SourceSequence` says: the message's SQS sequence number, its queue's tag, when it was sent. */
export interface SourceSequence {
  readonly sequence: string;
  readonly queueTag: string;
  /** The message's `SentTimestamp` (epoch ms). */
  readonly sentAt: number;
}

/**
 * The `SourceSequence` stored with an event that came in a FIFO message whose group is its
 * stream: the message's SQS sequence number, `@`, 8 characters of the SHA-256 of the queue's
 * ARN (Lambda's `eventSourceARN`), `@`, and the message's `SentTimestamp`. SQS promises only
 * that numbers grow within one group of one queue, and a queue deleted and created again under
 * the same name (same ARN) numbers from 1 again: numbers are compared only between messages of
 * the same queue, and the send time tells the incarnations apart (docs/ARCHITECTURE.md, "One
 * fate per record"). A tag, not the ARN (50 to 130 bytes), keeps the item small.
 *
 * @example
 * ```ts
 * sourceSequence('18900000000000000005', 'arn:aws:sqs:eu-west-1:123456789012:events.fifo', 1796000000000);
 * // '18900000000000000005@<tag>@1796000000000'
 * ```
 */
export function sourceSequence(sequence: string, queueArn: string, sentAt: number): string {
  const tag = createHash('sha256').update(queueArn).digest('base64url').slice(0, 8);
  return `${sequence}@${tag}@${sentAt}`;
}

/**
 * Read a stored `SourceSequence`; undefined for one without a queue tag and send time (written
 * by an earlier version, queue unknown: never compared).
 */
export function parseSourceSequence(stored: string | undefined): SourceSequence | undefined {
  const match = stored === undefined ? null : /^(\d+)@([\w-]{8})@(\d+)$/.exec(stored);
  if (!match) return undefined;
  return { sequence: match[1] as string, queueTag: match[2] as string, sentAt: Number(match[3]) };
}

/**
 * Whether message `a` came before message `b` in one group of one queue: same queue tag and a
 * lower SQS sequence number (decimal strings of any length). Messages of a queue's earlier
 * incarnation (same ARN) may compare so too; callers that must not confuse them also compare
 * send times (see `laterMessage`).
 */
export function sequenceBefore(a: SourceSequence, b: SourceSequence): boolean {
  if (a.queueTag !== b.queueTag) return false;
  return a.sequence.length !== b.sequence.length ? a.sequence.length < b.sequence.length : a.sequence < b.sequence;
}

/**
 * Whether `later` is certainly a later message of the same group and queue incarnation as
 * `earlier`: a higher number of the same queue, sent strictly after it (an earlier incarnation
 * of the same name was deleted before this one was created, so all its messages were sent
 * before any of this one's). Messages sent in the same millisecond are not told apart: false.
 */
export function laterMessage(later: SourceSequence, earlier: SourceSequence): boolean {
  return sequenceBefore(earlier, later) && later.sentAt > earlier.sentAt;
}
