import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import {
  IngestMetric,
  METRICS_NAMESPACE,
  MetricDimension,
  SERVICE_NAME,
  SUBSCRIPTION_SERVICE_NAME,
  SubscriptionMetric,
} from '../../core/metrics.ts';
import { QUEUE_MODES, QueueMode } from '../../core/queue-mode.ts';
import { DEFAULT_STACK_NAME, OutputIds } from '../../core/stack-outputs.ts';
import {
  LOCAL_ACCOUNT,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  LocalPorts,
  PROJECT_ROOT,
  localFunctionArn,
} from '../../local/defaults.ts';

/**
 * The names on the wire, written out: the one place outside their modules where they are
 * (eslint.config.js bans the literals everywhere else; every other test imports them). A
 * change here is a change of the wire format: dashboards, alarms, DLQ messages already
 * written, deployed stacks' outputs and the README's commands all carry the old name.
 */
describe('the wire names', () => {
  /* eslint-disable no-restricted-syntax -- the wire format itself, checked once against each name's module */
  it('has the metric namespace, service names, metric names and dimensions that dashboards and alarms read', () => {
    expect({ METRICS_NAMESPACE, SERVICE_NAME, SUBSCRIPTION_SERVICE_NAME }).toEqual({
      METRICS_NAMESPACE: 'EventStore',
      SERVICE_NAME: 'event-store',
      SUBSCRIPTION_SERVICE_NAME: 'event-store-subscription',
    });
    expect(IngestMetric).toEqual({
      eventsStored: 'EventsStored',
      eventsRejected: 'EventsRejected',
      duplicateEvents: 'DuplicateEvents',
      appendConflicts: 'AppendConflicts',
    });
    expect(SubscriptionMetric).toEqual({
      eventsDelivered: 'EventsDelivered',
      lag: 'SubscriptionLag',
      streamsParked: 'StreamsParked',
      replayStreams: 'ReplayStreams',
    });
    expect(MetricDimension).toEqual({ service: 'service', reason: 'Reason', subscription: 'Subscription' });
  });

  it('has the dead-letter and redrive attribute names that DLQ messages already written carry', () => {
    expect(MessageAttributeNames).toEqual({
      rejectionReason: 'RejectionReason',
      rejectionDetail: 'RejectionDetail',
      rejectedAt: 'RejectedAt',
      sourceMessageId: 'SourceMessageId',
      redriveCount: 'RedriveCount',
      redrivenFrom: 'RedrivenFrom',
    });
  });

  it('has the default stack name and the output ids that the CLI reads from a deployed stack', () => {
    expect(DEFAULT_STACK_NAME).toBe('EventStore');
    expect(OutputIds).toEqual({
      queueUrl: 'QueueUrl',
      deadLetterQueueUrl: 'DeadLetterQueueUrl',
      tableName: 'TableName',
      stateMachineArn: 'StateMachineArn',
      dashboardUrl: 'DashboardUrl',
      queueMode: 'QueueMode',
      alarmTopicArn: 'AlarmTopicArn',
      previousQueueUrl: 'PreviousQueueUrl',
      previousDeadLetterQueueUrl: 'PreviousDeadLetterQueueUrl',
      previousStateMachineArn: 'PreviousStateMachineArn',
      streamSummaryTableName: 'StreamSummaryTableName',
    });
  });

  it('has the queue modes that the `queue` context key and the QueueMode output take', () => {
    expect(QueueMode).toEqual({ standard: 'standard', fifo: 'fifo' });
    expect(QUEUE_MODES).toEqual(['standard', 'fifo']);
  });

  it('has the local mode\'s region, account, credentials and default ports (README, "Local mode")', () => {
    expect({ LOCAL_REGION, LOCAL_ACCOUNT, LOCAL_CREDENTIALS, LocalPorts }).toEqual({
      LOCAL_REGION: 'us-east-1',
      LOCAL_ACCOUNT: '000000000000',
      LOCAL_CREDENTIALS: { accessKeyId: 'local', secretAccessKey: 'local' },
      LocalPorts: { dynamoDb: 8000, sqs: 9324, stepFunctions: 8083 },
    });
    expect(localFunctionArn('Echo')).toBe('arn:aws:lambda:us-east-1:000000000000:function:Echo');
  });
  /* eslint-enable no-restricted-syntax */

  it('has the project root, with a trailing separator, where package.json is', () => {
    expect(PROJECT_ROOT.endsWith(sep)).toBe(true);
    expect(existsSync(join(PROJECT_ROOT, 'package.json'))).toBe(true);
  });
});
