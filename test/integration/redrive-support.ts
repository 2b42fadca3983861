import { synthesizeTemplate } from '../../infra/synth.ts';
import type { CfnTemplate } from '../../local/workflow-runner.ts';

/**
 * The EventStoreStack template the CDK app synthesizes (bundling off, cdk-nag on: a finding
 * fails the synth), so the tests execute the very definition that is deployed.
 */
export function redriveTemplate(queue: 'standard' | 'fifo'): CfnTemplate {
  return synthesizeTemplate({ queue });
}
