import type { RejectionReason } from './reasons.ts';

/** Base class of every error the event store raises on purpose. */
export class EventStoreError extends Error {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EventStoreError';
  }
}

/**
 * An event that can never be stored as it is: retrying cannot help. The consumer sends it
 * to the dead-letter queue with `reason` and `detail`.
 */
export class RejectedEventError extends EventStoreError {
  public readonly reason: RejectionReason;
  public readonly detail: string;
  public readonly streamId: string | undefined;

  public constructor(
    reason: RejectionReason,
    detail: string,
    context: { streamId?: string | undefined } = {},
    options?: ErrorOptions,
  ) {
    super(`${reason}: ${detail}`, options);
    this.name = 'RejectedEventError';
    this.reason = reason;
    this.detail = detail;
    this.streamId = context.streamId;
  }
}

/**
 * A failure that may pass (throttling, network, a 5xx, contention that outlasted the
 * retries). The record is reported failed so that SQS delivers it again.
 */
export class TransientStoreError extends EventStoreError {
  public readonly streamId: string | undefined;

  public constructor(message: string, context: { streamId?: string | undefined } = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TransientStoreError';
    this.streamId = context.streamId;
  }
}

/** Configuration that cannot work (missing environment variable, bad value). */
export class ConfigurationError extends EventStoreError {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigurationError';
  }
}
