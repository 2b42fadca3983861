/**
 * The stack's name by default and the CfnOutput ids that consumers (the CLI, the local mode,
 * the README's commands) read from a deployed stack (README, "Deploy to AWS"). infra/ creates the
 * outputs with these ids and cli/ reads them, so the two cannot drift. eslint.config.js
 * forbids the strings anywhere else.
 */

/** The CloudFormation stack name when the `stackName` context key is not given. */
export const DEFAULT_STACK_NAME = 'EventStore';

/** The CfnOutput logical ids of the event store stack. */
export const OutputIds = {
  queueUrl: 'QueueUrl',
  deadLetterQueueUrl: 'DeadLetterQueueUrl',
  tableName: 'TableName',
  stateMachineArn: 'StateMachineArn',
  dashboardUrl: 'DashboardUrl',
  queueMode: 'QueueMode',
  alarmTopicArn: 'AlarmTopicArn',
  /** Only while `previousQueue` keeps the previous mode's queues (docs/OPERATIONS.md, "Switching the queue mode, recovering, cleaning up"). */
  previousQueueUrl: 'PreviousQueueUrl',
  previousDeadLetterQueueUrl: 'PreviousDeadLetterQueueUrl',
  previousStateMachineArn: 'PreviousStateMachineArn',
  /** Only with `-c exampleProjection=true`: the example projection's read model table. */
  streamSummaryTableName: 'StreamSummaryTableName',
} as const;
export type OutputId = (typeof OutputIds)[keyof typeof OutputIds];

/** The outputs without which a stack is not an event store stack (the CLI checks them). */
export const REQUIRED_OUTPUT_IDS: readonly OutputId[] = [
  OutputIds.queueUrl,
  OutputIds.deadLetterQueueUrl,
  OutputIds.tableName,
  OutputIds.stateMachineArn,
];
