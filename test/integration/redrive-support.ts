import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { QueueMode } from '../../core/queue-mode.ts';
import type { RedriveReport } from '../../core/redrive-run.ts';
import { synthesizeTemplate } from '../../infra/synth.ts';
import type { CfnTemplate, LocalExecutionResult } from '../../local/workflow-runner.ts';
import { createTestQueue } from '../support/engines.ts';

/**
 * The EventStoreStack template the CDK app synthesizes (bundling off, cdk-nag on: a finding
 * fails the synth), so the tests execute the very definition that is deployed.
 */
export function redriveTemplate(queue: QueueMode): CfnTemplate {
  return synthesizeTemplate({ queue });
}

export interface RedriveQueueUrls {
  readonly source: string;
  readonly deadLetter: string;
}

/** A source queue and its dead-letter queue (the source's RedrivePolicy names it, maxReceiveCount 5), as the stack pairs them. */
export async function createRedriveQueues(sqs: SQSClient, fifo: boolean): Promise<RedriveQueueUrls> {
  const deadLetter = await createTestQueue(sqs, 'redrive-dlq', { fifo });
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetter, AttributeNames: ['QueueArn'] }),
  );
  const source = await createTestQueue(sqs, 'redrive-source', {
    fifo,
    attributes: {
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes?.['QueueArn'], maxReceiveCount: 5 }),
    },
  });
  return { source, deadLetter };
}

/** The report of an execution that succeeded; anything else fails the test with its error and cause. */
export function succeeded(result: LocalExecutionResult): RedriveReport {
  if (result.status !== 'SUCCEEDED') throw new Error(`execution failed: ${result.error}: ${result.cause}`);
  return result.output as RedriveReport;
}
