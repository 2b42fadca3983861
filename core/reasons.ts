/**
 * Stable, machine-readable rejection reason codes. They travel as the `RejectionReason`
 * message attribute of a dead-lettered message and as the `Reason` metric dimension, so
 * never rename one.
 */
export const RejectionReason = {
  /** The body is not JSON, or not a JSON object. */
  InvalidJson: 'InvalidJson',
  /** The body is a JSON object that breaks the event contract. */
  SchemaViolation: 'SchemaViolation',
  /** `ExpectedVersion` did not match the stream's version. */
  WrongExpectedVersion: 'WrongExpectedVersion',
  /** An event with the same `EventId` but different content is already stored. */
  EventIdConflict: 'EventIdConflict',
  /** The stored item would exceed DynamoDB's 400 KB item limit. */
  ItemTooLarge: 'ItemTooLarge',
  /** DynamoDB cannot store the data (too deep, empty map key, number out of range ...). */
  UnstorableData: 'UnstorableData',
} as const;

export type RejectionReason = (typeof RejectionReason)[keyof typeof RejectionReason];

export const ALL_REJECTION_REASONS: readonly RejectionReason[] = Object.values(RejectionReason);
