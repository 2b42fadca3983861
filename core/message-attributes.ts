/**
 * The SQS message attribute names the ingest handler writes on a dead-lettered message and
 * the redrive workflow reads and writes (docs/ARCHITECTURE.md, "One fate per record",
 * "Redrive"). Operators filter on them and old messages in a DLQ carry them, so never rename
 * one. eslint.config.js forbids the strings anywhere else.
 */
export const MessageAttributeNames = {
  /** A rejection reason code (core/reasons.ts). */
  rejectionReason: 'RejectionReason',
  /** Why, in words, cut to a size that fits the DLQ's message size. */
  rejectionDetail: 'RejectionDetail',
  /** When the ingest handler dead-lettered the message (ISO 8601). */
  rejectedAt: 'RejectedAt',
  /** The id of the source queue's message the event came in. */
  sourceMessageId: 'SourceMessageId',
  /** How often the event was redriven already: 0 on a first rejection. */
  redriveCount: 'RedriveCount',
  /** On a redriven message: the id of the DLQ message it was sent from. */
  redrivenFrom: 'RedrivenFrom',
} as const;
export type MessageAttributeName = (typeof MessageAttributeNames)[keyof typeof MessageAttributeNames];

/** The most digits a redrive count may have; a longer value is not a count the system wrote. */
const REDRIVE_COUNT = /^\d{1,9}$/;

/**
 * The one reader of a `RedriveCount` attribute value: a whole number of at most nine digits
 * (blanks around it ignored), else 0, so an absent or damaged value counts as "never
 * redriven" and never stops a message.
 *
 * @example
 * ```ts
 * parseRedriveCount('2'); // 2
 * parseRedriveCount(undefined); // 0
 * parseRedriveCount('-1'); // 0
 * ```
 */
export function parseRedriveCount(value: string | undefined): number {
  const trimmed = value?.trim();
  return trimmed !== undefined && REDRIVE_COUNT.test(trimmed) ? Number(trimmed) : 0;
}
