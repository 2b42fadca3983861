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
