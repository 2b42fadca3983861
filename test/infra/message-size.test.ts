import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { synthesizeTemplate } from '../../infra/synth.ts';
import { MAX_MESSAGE_BYTES } from '../../infra/constructs/ingest-queues.ts';

describe('queues take the largest message SQS allows', () => {
  it('the ingest queue and its DLQ accept 1 MiB messages in both modes', () => {
    for (const queue of ['standard', 'fifo']) {
      // Act
      const template = Template.fromJSON(synthesizeTemplate({ queue }));

      // Assess
      const sizes = Object.values(template.findResources('AWS::SQS::Queue')).map(
        (resource) => (resource as { Properties: Record<string, unknown> }).Properties['MaximumMessageSize'],
      );
      expect(sizes).toEqual([1_048_576, 1_048_576]);
      expect(MAX_MESSAGE_BYTES).toBe(1_048_576);
    }
  });
});
