/**
 * The two queue modes (docs/ARCHITECTURE.md, "Appending and idempotency"): the `queue`
 * context key's values, the stack's `QueueMode` output, and how the store finds duplicates.
 * eslint.config.js forbids a union type of the two strings anywhere else.
 */
export const QueueMode = { standard: 'standard', fifo: 'fifo' } as const;
export type QueueMode = (typeof QueueMode)[keyof typeof QueueMode];

export const QUEUE_MODES: readonly QueueMode[] = Object.values(QueueMode);

/** SQS's suffix of a FIFO queue's name (and so of its URL and ARN). */
export const FIFO_SUFFIX = '.fifo';

export function isQueueMode(value: unknown): value is QueueMode {
  return value === QueueMode.standard || value === QueueMode.fifo;
}
