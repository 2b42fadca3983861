import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { CfnAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import type { CfnEventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableKeys } from '../../core/keys.ts';
import { MetricDimension, METRICS_NAMESPACE, SubscriptionMetric } from '../../core/metrics.ts';
import { DEFAULT_STACK_NAME } from '../../core/stack-outputs.ts';
import { CheckpointKeys, SubscriptionDefaults, SubscriptionEnvironment } from '../../core/subscription.ts';
import { LOG_ACTIONS } from '../../infra/constructs/ingest-function.ts';
import {
  CHECKPOINT_ACTIONS,
  CHECKPOINT_OUTPUT_PREFIX,
  CLAIMS_ACTIONS,
  CLAIMS_OUTPUT_PREFIX,
  ClaimsTableKeys,
  FAILURE_QUEUE_ACTIONS,
  LIST_STREAMS_ACKNOWLEDGEMENT,
  subscriptionMaxAttempts,
  REPLAY_INPUT,
  STREAM_MAX_RECORD_AGE,
  SUBSCRIPTION_STREAM_ACTIONS,
  SUBSCRIPTION_TABLE_ACTIONS,
} from '../../infra/constructs/event-subscription.ts';
import { XRAY_ACTIONS } from '../../infra/constructs/ingest-function.ts';
import { READ_MODEL_ACTIONS, STREAM_SUMMARY_NAME } from '../../infra/constructs/stream-summary.ts';
import { buildApp } from '../../infra/synth.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };

const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });

function idOf(template: Template, type: string, pathPart: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.includes(pathPart));
  expect(ids, `${type} ${pathPart}`).toHaveLength(1);
  return ids[0]!;
}

describe('EventSubscription construct', () => {
  const outdirs: string[] = [];
  let example: Template;
  let exampleNag: {
    conclusion: string;
    violations: unknown[];
    suppressedViolations?: { ruleName: string; reason?: string; acknowledgedAt?: string }[];
  };
  let fromCode: Template;

  beforeAll(() => {
    const outdir = mkdtempSync(join(tmpdir(), 'event-store-sub-'));
    outdirs.push(outdir);
    const { app, stack } = buildApp({ exampleProjection: 'true' }, { bundle: false, outdir });
    const assembly = app.synth();
    example = Template.fromJSON(assembly.getStackArtifact(stack.artifactId).template as Record<string, unknown>);
    exampleNag = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')).pluginReports[0];

    const other = mkdtempSync(join(tmpdir(), 'event-store-sub-'));
    outdirs.push(other);
    const built = buildApp({}, { bundle: false, outdir: other });
    built.stack.addSubscription('Orders', {
      entry: 'handlers/stream-summary-projection.ts',
      eventTypes: ['ORDER_PLACED', 'ORDER_SHIPPED'],
      maxAttempts: 3,
      batchSize: 50,
      parallelizationFactor: 4,
    });
    fromCode = Template.fromJSON(
      built.app.synth().getStackArtifact(built.stack.artifactId).template as Record<string, unknown>,
    );
  });

  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  it('is absent from the default stack: the event table and the ingest path only', () => {
    const { stack, app } = buildApp(
      {},
      { bundle: false, outdir: (outdirs.push(mkdtempSync(join(tmpdir(), 'event-store-sub-'))), outdirs.at(-1)!) },
    );
    const template = Template.fromJSON(
      app.synth().getStackArtifact(stack.artifactId).template as Record<string, unknown>,
    );
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    expect(stack.streamSummary).toBeUndefined();
  });

  it('-c exampleProjection=true: a read model table, a checkpoint table, a claims table and the projection on the table stream, from TRIM_HORIZON', () => {
    const eventTable = idOf(example, 'AWS::DynamoDB::Table', 'EventTable');
    const checkpoints = idOf(example, 'AWS::DynamoDB::Table', 'Checkpoints');
    const claims = idOf(example, 'AWS::DynamoDB::Table', 'Claims');
    const readModel = idOf(example, 'AWS::DynamoDB::Table', 'ReadModel');
    example.resourceCountIs('AWS::DynamoDB::Table', 4);
    example.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: CheckpointKeys.partitionKey, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    expect((example.toJSON().Resources[readModel] as Resource).Properties['KeySchema']).toEqual([
      { AttributeName: TableKeys.partitionKey, KeyType: 'HASH' },
    ]);

    const fn = idOf(example, 'AWS::Lambda::Function', 'StreamSummarySubscriptionFunction');
    example.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: DEFAULT_STACK_NAME,
          [SubscriptionEnvironment.name]: STREAM_SUMMARY_NAME,
          [SubscriptionEnvironment.eventTable]: { Ref: eventTable },
          [SubscriptionEnvironment.checkpointTable]: { Ref: checkpoints },
          [SubscriptionEnvironment.claimsTable]: { Ref: claims },
          [SubscriptionEnvironment.maxAttempts]: String(SubscriptionDefaults.maxAttempts),
          READ_MODEL_TABLE_NAME: { Ref: readModel },
        }),
      },
    });
    example.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: getAtt(eventTable, 'StreamArn'),
      FunctionName: { Ref: fn },
      StartingPosition: 'TRIM_HORIZON',
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      // A time-based backstop: no retry count (a batch waiting for a held stream is retried uncounted),
      // and an age an hour short of the stream's 24 h, whose discards go to the failure queue.
      MaximumRetryAttempts: -1,
      MaximumRecordAgeInSeconds: 23 * 3600,
      DestinationConfig: {
        OnFailure: { Destination: getAtt(idOf(example, 'AWS::SQS::Queue', 'StreamSummarySubscriptionFailureQueue')) },
      },
      BisectBatchOnFunctionError: false,
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT'] }) }] },
    });
    example.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: getAtt(fn), Input: JSON.stringify(REPLAY_INPUT) })],
    });
  });

  it('the claims table: Key (S) and Claim (S), TTL on ExpiresAt, on demand, PITR, default encryption, removed with the stack like the checkpoints', () => {
    // Prepare
    const checkpoints = idOf(example, 'AWS::DynamoDB::Table', 'Checkpoints');
    const claims = idOf(example, 'AWS::DynamoDB::Table', 'Claims');
    const resources = example.toJSON().Resources as Record<string, Resource & Record<string, unknown>>;

    // Assess: exactly these properties (no SSESpecification: DynamoDB's default encryption, as every table of the stack).
    expect(resources[claims]).toEqual({
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        KeySchema: [
          { AttributeName: 'Key', KeyType: 'HASH' },
          { AttributeName: 'Claim', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'Key', AttributeType: 'S' },
          { AttributeName: 'Claim', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'ExpiresAt', Enabled: true },
      },
      DeletionPolicy: 'Delete',
      UpdateReplacePolicy: 'Delete',
    });
    expect(ClaimsTableKeys).toEqual({ partitionKey: 'Key', sortKey: 'Claim', timeToLiveAttribute: 'ExpiresAt' });
    for (const key of ['PointInTimeRecoverySpecification', 'BillingMode', 'SSESpecification'] as const) {
      expect(resources[claims]!.Properties[key], key).toEqual(resources[checkpoints]!.Properties[key]);
    }
    expect(resources[claims]!['DeletionPolicy']).toBe(resources[checkpoints]!['DeletionPolicy']);
  });

  it('a stack output per table: checkpoints (what the CLI finds subscriptions by) and claims, told apart by description', () => {
    const outputs = example.toJSON().Outputs as Record<string, { Description: string; Value: unknown }>;
    const claims = idOf(example, 'AWS::DynamoDB::Table', 'Claims');
    const checkpoints = idOf(example, 'AWS::DynamoDB::Table', 'Checkpoints');
    const byValue = (ref: string) =>
      Object.values(outputs).filter((output) => JSON.stringify(output.Value) === JSON.stringify({ Ref: ref }));
    expect(byValue(claims).map((output) => output.Description)).toEqual([
      `${CLAIMS_OUTPUT_PREFIX}${STREAM_SUMMARY_NAME}`,
    ]);
    expect(byValue(checkpoints).map((output) => output.Description)).toEqual([
      `${CHECKPOINT_OUTPUT_PREFIX}${STREAM_SUMMARY_NAME}`,
    ]);
    expect(CLAIMS_OUTPUT_PREFIX.startsWith(CHECKPOINT_OUTPUT_PREFIX)).toBe(false);
    expect(
      Object.values(outputs).filter((output) => output.Description.startsWith(CHECKPOINT_OUTPUT_PREFIX)),
    ).toHaveLength(1);
  });

  it('checkpointRemovalPolicy RETAIN keeps the claims table too', () => {
    // Prepare
    const { app, stack } = buildApp(
      {},
      { bundle: false, outdir: (outdirs.push(mkdtempSync(join(tmpdir(), 'event-store-sub-'))), outdirs.at(-1)!) },
    );
    stack.addSubscription('Orders', {
      entry: 'handlers/stream-summary-projection.ts',
      checkpointRemovalPolicy: RemovalPolicy.RETAIN,
    });

    // Act
    const template = Template.fromJSON(
      app.synth().getStackArtifact(stack.artifactId).template as Record<string, unknown>,
    );

    // Assess
    for (const part of ['OrdersCheckpoints', 'OrdersClaims']) {
      const id = idOf(template, 'AWS::DynamoDB::Table', part);
      expect(template.toJSON().Resources[id], part).toMatchObject({
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
    }
  });

  it('the failure queue: standard, SQS-managed encryption, TLS only, 14 days, removed with the stack', () => {
    const queue = idOf(example, 'AWS::SQS::Queue', 'StreamSummarySubscriptionFailureQueue');
    expect(example.toJSON().Resources[queue]).toEqual({
      Type: 'AWS::SQS::Queue',
      Properties: { MessageRetentionPeriod: 14 * 24 * 3600, SqsManagedSseEnabled: true },
      DeletionPolicy: 'Delete',
      UpdateReplacePolicy: 'Delete',
    });
    example.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queue }],
      PolicyDocument: {
        Statement: [Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })],
      },
    });
  });

  it('the mapping retries until the record age, whatever maxAttempts; a maxAttempts the handler would refuse is refused', () => {
    expect([1, 5, 20_000].map((attempts) => subscriptionMaxAttempts(attempts))).toEqual([1, 5, 20_000]);
    expect(subscriptionMaxAttempts()).toBe(SubscriptionDefaults.maxAttempts);
    expect(() => subscriptionMaxAttempts(0)).toThrow('EventSubscription: maxAttempts 0 is not a whole number >= 1');
    expect(() => subscriptionMaxAttempts(2.5)).toThrow('EventSubscription: maxAttempts 2.5 is not a whole number >= 1');
  });

  it('least privilege: exact actions on exact resources; only ListStreams and X-Ray on "*"', () => {
    const eventTable = idOf(example, 'AWS::DynamoDB::Table', 'EventTable');
    const checkpoints = idOf(example, 'AWS::DynamoDB::Table', 'Checkpoints');
    const claims = idOf(example, 'AWS::DynamoDB::Table', 'Claims');
    const readModel = idOf(example, 'AWS::DynamoDB::Table', 'ReadModel');
    const logGroup = idOf(example, 'AWS::Logs::LogGroup', 'StreamSummarySubscription');
    const failureQueue = idOf(example, 'AWS::SQS::Queue', 'StreamSummarySubscriptionFailureQueue');
    const policy = idOf(example, 'AWS::IAM::Policy', 'StreamSummarySubscriptionRole');
    const statements = (
      (example.toJSON().Resources[policy] as Resource).Properties['PolicyDocument'] as { Statement: unknown[] }
    ).Statement;
    expect(statements).toEqual([
      { Action: [...LOG_ACTIONS], Effect: 'Allow', Resource: getAtt(logGroup) },
      { Action: [...SUBSCRIPTION_TABLE_ACTIONS], Effect: 'Allow', Resource: getAtt(eventTable) },
      { Action: [...SUBSCRIPTION_STREAM_ACTIONS], Effect: 'Allow', Resource: getAtt(eventTable, 'StreamArn') },
      { Action: 'dynamodb:ListStreams', Effect: 'Allow', Resource: '*' },
      { Action: [...CHECKPOINT_ACTIONS], Effect: 'Allow', Resource: getAtt(checkpoints) },
      {
        Action: ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
        Effect: 'Allow',
        Resource: getAtt(claims),
      },
      { Action: FAILURE_QUEUE_ACTIONS[0], Effect: 'Allow', Resource: getAtt(failureQueue) },
      { Action: [...XRAY_ACTIONS], Effect: 'Allow', Resource: '*' },
      { Action: [...READ_MODEL_ACTIONS], Effect: 'Allow', Resource: getAtt(readModel) },
    ]);
    expect([...CLAIMS_ACTIONS]).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
    // No write of any kind on the event table.
    expect(JSON.stringify(statements)).not.toMatch(
      /dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem)[^\]]*EventTable/,
    );
  });

  it('alarms on parked streams and on lag (dimension service = the stack name), notifying the stack topic', () => {
    const topic = idOf(example, 'AWS::SNS::Topic', 'AlarmTopic');
    for (const [metricName, statistic, threshold] of [
      [SubscriptionMetric.streamsParked, 'Sum', 1],
      [SubscriptionMetric.lag, 'Maximum', 1000],
    ] as const) {
      example.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: METRICS_NAMESPACE,
        MetricName: metricName,
        Statistic: statistic,
        Threshold: threshold,
        Dimensions: [
          { Name: MetricDimension.subscription, Value: STREAM_SUMMARY_NAME },
          { Name: MetricDimension.service, Value: DEFAULT_STACK_NAME },
        ],
        AlarmActions: [{ Ref: topic }],
        TreatMissingData: 'notBreaching',
      });
    }
  });

  it("alarms on the function's Errors and IteratorAge and on the failure queue's depth, notifying the stack topic", () => {
    const topic = idOf(example, 'AWS::SNS::Topic', 'AlarmTopic');
    const fn = idOf(example, 'AWS::Lambda::Function', 'StreamSummarySubscriptionFunction');
    const queue = idOf(example, 'AWS::SQS::Queue', 'StreamSummarySubscriptionFailureQueue');
    for (const [namespace, metricName, statistic, threshold, periods, dimension] of [
      ['AWS/Lambda', 'Errors', 'Sum', 1, 1, { Name: 'FunctionName', Value: { Ref: fn } }],
      ['AWS/Lambda', 'IteratorAge', 'Maximum', 3_600_000, 3, { Name: 'FunctionName', Value: { Ref: fn } }],
      [
        'AWS/SQS',
        'ApproximateNumberOfMessagesVisible',
        'Maximum',
        1,
        1,
        { Name: 'QueueName', Value: getAtt(queue, 'QueueName') },
      ],
    ] as const) {
      example.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: namespace,
        MetricName: metricName,
        Statistic: statistic,
        Threshold: threshold,
        EvaluationPeriods: periods,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Dimensions: [dimension],
        AlarmActions: [{ Ref: topic }],
        TreatMissingData: 'notBreaching',
      });
    }
  });

  it('a batch size Lambda would refuse for a stream source is refused at synth (1 to 10,000)', () => {
    // Prepare
    const addWith = (batchSize: number) =>
      buildApp({}, { bundle: false }).stack.addSubscription('Orders', {
        entry: 'handlers/stream-summary-projection.ts',
        batchSize,
      });

    // Act
    const largest = addWith(10_000);

    // Assess
    expect((largest.eventSourceMapping.node.defaultChild as CfnEventSourceMapping).batchSize).toBe(10_000);
    for (const refused of [0, 10_001, 2.5]) {
      expect(() => addWith(refused)).toThrow(
        `EventSubscription: batchSize ${refused} is not an integer from 1 to 10000 (Lambda's limit for a DynamoDB ` +
          'Streams event source)',
      );
    }
  });

  it('an iterator age threshold the metric can never reach is refused: the mapping discards records older than 23 h', () => {
    // Prepare: IteratorAge is the age of the last record Lambda sends, and it sends none older than 23 hours.
    const addWith = (threshold: Duration) => {
      const { stack } = buildApp({}, { bundle: false });
      return stack.addSubscription('Orders', {
        entry: 'handlers/stream-summary-projection.ts',
        iteratorAgeAlarmThreshold: threshold,
      });
    };

    // Act
    const justUnder = addWith(Duration.minutes(23 * 60 - 1));

    // Assess
    expect(STREAM_MAX_RECORD_AGE.toHours()).toBe(23);
    expect((justUnder.alarms.iteratorAge.node.defaultChild as CfnAlarm).threshold).toBe((23 * 60 - 1) * 60_000);
    for (const never of [Duration.hours(23), Duration.hours(24)]) {
      expect(() => addWith(never)).toThrow(
        `EventSubscription: iteratorAgeAlarmThreshold ${never.toHumanString()} can never be reached: the mapping ` +
          'discards records older than 23 hours instead of sending them, so the iterator age stays below that; ' +
          'choose a threshold under it',
      );
    }
  });

  it('cdk-nag: clean, the ListStreams wildcard acknowledged with its reason', () => {
    expect(exampleNag.conclusion).toBe('success');
    expect(exampleNag.violations).toEqual([]);
    expect(exampleNag.suppressedViolations).toContainEqual(
      expect.objectContaining({
        ruleName: 'AwsSolutions-IAM5[Resource::*]',
        acknowledgedAt: 'EventStore/StreamSummary/Subscription/Role',
        reason: LIST_STREAMS_ACKNOWLEDGEMENT.reason,
      }),
    );
  });

  it('stack.addSubscription from code: event type filter, attempts, batching as given', () => {
    fromCode.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [SubscriptionEnvironment.name]: 'Orders',
          [SubscriptionEnvironment.eventTypes]: 'ORDER_PLACED,ORDER_SHIPPED',
          [SubscriptionEnvironment.maxAttempts]: '3',
        }),
      },
    });
    fromCode.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 50,
      ParallelizationFactor: 4,
      StartingPosition: 'TRIM_HORIZON',
      MaximumRetryAttempts: -1,
    });
  });
});
