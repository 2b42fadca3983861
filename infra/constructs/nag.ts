import type { Acknowledgment } from 'aws-cdk-lib';

/**
 * cdk-nag acknowledgements that stay visible. aws-cdk-lib's `Validations.acknowledge` takes an id
 * with the plugin's prefix (`AwsSolutions::AwsSolutions-IAM5[Resource::*]`): cdk-nag 3 then reports
 * the finding and the validation report lists it under `suppressedViolations`, with the reason and
 * the construct that acknowledged it. An id without the prefix is recorded as an annotation
 * acknowledgement, which cdk-nag also honours (node_modules/cdk-nag/lib/nag-pack.js,
 * `isAcknowledged`): the finding is then never reported, and an auditor reading the report cannot
 * see it or its reason. So every acknowledgement goes through {@link nagAcknowledgement}
 * (docs/OPERATIONS.md, "cdk-nag acknowledgements").
 */

/** The cdk-nag pack the app runs (infra/synth.ts): its plugin name, the acknowledgement ids' prefix. */
export const NAG_PACK = 'AwsSolutions';

/**
 * An acknowledgement of one cdk-nag finding, reported in the validation report.
 *
 * @example
 * Validations.of(role).acknowledge(nagAcknowledgement('AwsSolutions-IAM5[Resource::*]', 'X-Ray takes no ARN ...'));
 */
export function nagAcknowledgement(finding: string, reason: string): Acknowledgment {
  return { id: `${NAG_PACK}::${finding}`, reason };
}
