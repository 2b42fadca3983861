import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { Limits, TableKeys } from '../../core/keys.ts';
import { IngestMetric, MetricDimension, METRICS_NAMESPACE } from '../../core/metrics.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { DEFAULT_STACK_NAME, OutputIds } from '../../core/stack-outputs.ts';
import { ConfigError } from '../../infra/config.ts';
import {
  DLQ_ACTIONS,
  LOG_ACTIONS,
  SOURCE_QUEUE_ACTIONS,
  TABLE_ACTIONS,
  XRAY_ACTIONS,
} from '../../infra/constructs/ingest-function.ts';
import { synthesizeTemplate } from '../../infra/synth.ts';

/**
 * Actions that need Resource "*" (they take no resource ARN): X-Ray (active tracing) and
 * CloudWatch Logs' vended log delivery (Step Functions execution logging).
 */
const ACTIONS_WITHOUT_RESOURCE_ARN: readonly string[] = [
  ...XRAY_ACTIONS,
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
];

type Resource = { Type: string; Properties?: Record<string, unknown>; [key: string]: unknown };
type Statement = { Action: string | string[]; Effect: string; Resource: unknown; Condition?: unknown };

/** The one resource of a type: its logical id and definition. */
function only(template: Template, type: string, props: Record<string, unknown> = {}): [string, Resource] {
  const found = Object.entries(template.findResources(type, props)) as [string, Resource][];
  expect(found, `exactly one ${type}`).toHaveLength(1);
  return found[0] as [string, Resource];
}

const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });
/** A FIFO queue name the app generates: prefix, the first group of the stack id's UUID, `.fifo`. */
const generatedFifoName = (prefix: string) => ({
  'Fn::Join': [
    '',
    [
      prefix,
      {
        'Fn::Select': [
          0,
          { 'Fn::Split': ['-', { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] }] },
        ],
      },
      '.fifo',
    ],
  ],
});
const ref = (logicalId: string) => ({ Ref: logicalId });

/**
 * The ingest function (the one with TABLE_NAME and DLQ_URL: the stack holds other functions,
 * e.g. the redrive workflow's), its role and its log group.
 */
function ingestOf(template: Template): {
  fn: [string, Resource];
  roleId: string;
  logGroup: [string, Resource];
} {
  const fn = only(template, 'AWS::Lambda::Function', {
    Properties: { Environment: { Variables: { TABLE_NAME: Match.anyValue(), DLQ_URL: Match.anyValue() } } },
  });
  const properties = fn[1].Properties as {
    Role: { 'Fn::GetAtt': [string, string] };
    LoggingConfig: { LogGroup: { Ref: string } };
  };
  const resources = template.toJSON().Resources as Record<string, Resource>;
  const logGroupId = properties.LoggingConfig.LogGroup.Ref;
  return {
    fn,
    roleId: properties.Role['Fn::GetAtt'][0],
    logGroup: [logGroupId, resources[logGroupId] as Resource],
  };
}

/** The queue with a RedrivePolicy is the source; the one without is the DLQ. */
function queuesOf(template: Template): { source: [string, Resource]; dlq: [string, Resource] } {
  return {
    source: only(template, 'AWS::SQS::Queue', { Properties: { RedrivePolicy: Match.anyValue() } }),
    dlq: only(template, 'AWS::SQS::Queue', { Properties: { RedrivePolicy: Match.absent() } }),
  };
}

describe('EventStoreStack template', () => {
  let standard: Template;
  let fifo: Template;
  let customised: Template;
  let namedFifo: Template;

  beforeAll(() => {
    // Prepare: every synth also runs cdk-nag, which throws on an unacknowledged finding.
    standard = Template.fromJSON(synthesizeTemplate({}));
    fifo = Template.fromJSON(synthesizeTemplate({ queue: 'fifo' }));
    customised = Template.fromJSON(
      synthesizeTemplate({
        tableName: 'orders-events',
        queueName: 'orders',
        batchSize: '100',
        maxBatchingWindowSeconds: '5',
        maxConcurrency: '20',
        maxReceiveCount: '3',
        dedupWindow: '200',
        resendWindow: '900',
        retainTable: 'false',
        alarmEmail: 'ops@example.com',
        functionTimeoutSeconds: '60',
        memorySize: '1024',
        logLevel: 'debug',
        billing: 'provisioned',
        readCapacity: '7',
        writeCapacity: '9',
      }),
    );
    namedFifo = Template.fromJSON(
      synthesizeTemplate({ queue: 'fifo', queueName: 'orders', batchSize: '10', maxConcurrency: '2' }),
    );
  }, 120_000);

  describe('event table', () => {
    it('is keyed by TableKeys, on demand, with streams, PITR, deletion protection and RetainExceptOnCreate', () => {
      // Act
      const [, table] = only(standard, 'AWS::DynamoDB::Table');

      // Assess
      expect(table).toEqual({
        Type: 'AWS::DynamoDB::Table',
        Properties: {
          AttributeDefinitions: [
            { AttributeName: TableKeys.partitionKey, AttributeType: 'S' },
            { AttributeName: TableKeys.sortKey, AttributeType: 'N' },
          ],
          KeySchema: [
            { AttributeName: TableKeys.partitionKey, KeyType: 'HASH' },
            { AttributeName: TableKeys.sortKey, KeyType: 'RANGE' },
          ],
          BillingMode: 'PAY_PER_REQUEST',
          StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          DeletionProtectionEnabled: true,
        },
        // Kept by every update or delete; deleted by the rollback of the deploy that created it.
        DeletionPolicy: 'RetainExceptOnCreate',
        UpdateReplacePolicy: 'Retain',
      });
    });

    it('is identical (logical id and definition) in the standard and the FIFO template', () => {
      // Act
      const inStandard = only(standard, 'AWS::DynamoDB::Table');
      const inFifo = only(fifo, 'AWS::DynamoDB::Table');

      // Assess
      expect(inFifo).toEqual(inStandard);
    });

    it('takes its name, provisioned capacity and DESTROY from the context', () => {
      // Act
      const [, table] = only(customised, 'AWS::DynamoDB::Table');

      // Assess
      expect(table.Properties).toMatchObject({
        TableName: 'orders-events',
        ProvisionedThroughput: { ReadCapacityUnits: 7, WriteCapacityUnits: 9 },
        DeletionProtectionEnabled: false,
      });
      expect(table.Properties).not.toHaveProperty('BillingMode'); // PROVISIONED is CloudFormation's default
      expect(table.DeletionPolicy).toBe('Delete');
      expect(table.UpdateReplacePolicy).toBe('Delete');
    });
  });

  describe('queues', () => {
    it('standard: a source queue (4-day retention) and its DLQ, SSE, 14-day DLQ, visibility 6 x timeout, RetainExceptOnCreate', () => {
      // Act
      const { source, dlq } = queuesOf(standard);

      // Assess
      standard.resourceCountIs('AWS::SQS::Queue', 2);
      expect(dlq[1]).toEqual({
        Type: 'AWS::SQS::Queue',
        Properties: {
          MaximumMessageSize: 1_048_576,
          MessageRetentionPeriod: 14 * 24 * 3600,
          SqsManagedSseEnabled: true,
        },
        DeletionPolicy: 'RetainExceptOnCreate',
        UpdateReplacePolicy: 'Retain',
      });
      expect(source[1]).toEqual({
        Type: 'AWS::SQS::Queue',
        Properties: {
          MaximumMessageSize: 1_048_576,
          MessageRetentionPeriod: 4 * 24 * 3600,
          RedrivePolicy: { deadLetterTargetArn: getAtt(dlq[0]), maxReceiveCount: 5 },
          SqsManagedSseEnabled: true,
          VisibilityTimeout: 6 * 30,
        },
        DeletionPolicy: 'RetainExceptOnCreate',
        UpdateReplacePolicy: 'Retain',
      });
    });

    it('fifo: both queues FIFO with content-based deduplication, the DLQ too', () => {
      // Act
      const { source, dlq } = queuesOf(fifo);

      // Assess
      fifo.resourceCountIs('AWS::SQS::Queue', 2);
      expect(dlq[1].Properties).toEqual({
        FifoQueue: true,
        ContentBasedDeduplication: true,
        MaximumMessageSize: 1_048_576,
        MessageRetentionPeriod: 14 * 24 * 3600,
        SqsManagedSseEnabled: true,
        QueueName: generatedFifoName('EventStore-ingest-dlq-'),
      });
      expect(source[1].Properties).toEqual({
        FifoQueue: true,
        ContentBasedDeduplication: true,
        MaximumMessageSize: 1_048_576,
        MessageRetentionPeriod: 4 * 24 * 3600,
        RedrivePolicy: { deadLetterTargetArn: getAtt(dlq[0]), maxReceiveCount: 5 },
        SqsManagedSseEnabled: true,
        VisibilityTimeout: 6 * 30,
        QueueName: generatedFifoName('EventStore-ingest-'),
      });
    });

    it('names: standard unnamed by default (CloudFormation names them); from queueName when given', () => {
      // Act
      const unnamed = Object.values(standard.findResources('AWS::SQS::Queue'));
      const standardNamed = queuesOf(customised);
      const fifoNamed = queuesOf(namedFifo);

      // Assess
      for (const queue of unnamed) expect(queue.Properties).not.toHaveProperty('QueueName');
      expect(standardNamed.source[1].Properties?.QueueName).toBe('orders');
      expect(standardNamed.dlq[1].Properties?.QueueName).toBe('orders-dlq');
      expect(fifoNamed.source[1].Properties?.QueueName).toBe('orders.fifo');
      expect(fifoNamed.dlq[1].Properties?.QueueName).toBe('orders-dlq.fifo');
    });

    it('take maxReceiveCount, the function timeout and the batching window from the context', () => {
      // Act
      const { source } = queuesOf(customised);

      // Assess: 6 x 60 s timeout + 5 s batching window.
      expect(source[1].Properties).toMatchObject({
        RedrivePolicy: { maxReceiveCount: 3 },
        VisibilityTimeout: 6 * 60 + 5,
      });
    });

    it('have different logical ids per mode, so a switch creates new queues and retains the old', () => {
      // Act
      const standardIds = Object.keys(standard.findResources('AWS::SQS::Queue'));
      const fifoIds = Object.keys(fifo.findResources('AWS::SQS::Queue'));

      // Assess
      expect(standardIds.filter((id) => fifoIds.includes(id))).toEqual([]);
    });

    it('deny every request without TLS', () => {
      // Prepare
      const { source, dlq } = queuesOf(standard);

      // Act
      const policies = Object.values(standard.findResources('AWS::SQS::QueuePolicy'));

      // Assess
      expect(policies.map((p) => p.Properties)).toEqual(
        [dlq[0], source[0]].map((id) => ({
          PolicyDocument: {
            Statement: [
              {
                Action: 'sqs:*',
                Condition: { Bool: { 'aws:SecureTransport': 'false' } },
                Effect: 'Deny',
                Principal: { AWS: '*' },
                Resource: getAtt(id),
              },
            ],
            Version: '2012-10-17',
          },
          Queues: [ref(id)],
        })),
      );
    });
  });

  describe('ingest function', () => {
    it('runs the current Node.js runtime on arm64 with tracing, its log group and its environment', () => {
      // Prepare
      const [tableId] = only(standard, 'AWS::DynamoDB::Table');
      const { dlq } = queuesOf(standard);

      // Act
      const {
        fn: [, fn],
        roleId,
        logGroup: [logGroupId, logGroup],
      } = ingestOf(standard);

      // Assess
      expect(logGroup.Properties).toEqual({ RetentionInDays: 30 });
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: 512,
        Timeout: 30,
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: ref(logGroupId) },
        Role: getAtt(roleId),
        Environment: {
          Variables: {
            TABLE_NAME: ref(tableId),
            DLQ_URL: ref(dlq[0]),
            DEDUP_WINDOW: String(Limits.defaultDedupWindow),
            RESEND_WINDOW_SECONDS: '300',
            // The stack name: the `service` dimension that keeps two stacks' metrics apart.
            POWERTOOLS_SERVICE_NAME: DEFAULT_STACK_NAME,
            POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
            POWERTOOLS_LOG_LEVEL: 'INFO',
            NODE_OPTIONS: '--enable-source-maps',
          },
        },
      });
    });

    it('takes dedupWindow, resendWindow, memory, timeout and log level from the context', () => {
      // Act
      const [, fn] = ingestOf(customised).fn;

      // Assess
      expect(fn.Properties).toMatchObject({
        MemorySize: 1024,
        Timeout: 60,
        Environment: {
          Variables: { DEDUP_WINDOW: '200', RESEND_WINDOW_SECONDS: '900', POWERTOOLS_LOG_LEVEL: 'DEBUG' },
        },
      });
    });

    it('standard: event source mapping with partial batch responses, batch size, no window and no limit by default', () => {
      // Prepare
      const { source } = queuesOf(standard);
      const [fnId] = ingestOf(standard).fn;

      // Act
      const [, mapping] = only(standard, 'AWS::Lambda::EventSourceMapping');

      // Assess
      expect(mapping.Properties).toEqual({
        EventSourceArn: getAtt(source[0]),
        FunctionName: ref(fnId),
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    });

    it('standard: batch size, batching window and maximum concurrency from the context', () => {
      // Act
      const [, mapping] = only(customised, 'AWS::Lambda::EventSourceMapping');

      // Assess
      expect(mapping.Properties).toMatchObject({
        BatchSize: 100,
        MaximumBatchingWindowInSeconds: 5,
        ScalingConfig: { MaximumConcurrency: 20 },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    });

    it('fifo: event source mapping on the FIFO queue, no batching window', () => {
      // Prepare
      const { source } = queuesOf(namedFifo);
      const [fnId] = ingestOf(namedFifo).fn;

      // Act
      const [, mapping] = only(namedFifo, 'AWS::Lambda::EventSourceMapping');

      // Assess
      expect(mapping.Properties).toEqual({
        EventSourceArn: getAtt(source[0]),
        FunctionName: ref(fnId),
        BatchSize: Limits.maxFifoBatchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: 2 },
      });
    });
  });

  describe('least privilege', () => {
    it.each([
      ['standard', () => standard],
      ['fifo', () => fifo],
    ])('%s: the function role has exactly these statements, each on its own resource', (_mode, of) => {
      // Prepare
      const template = of();
      const [tableId] = only(template, 'AWS::DynamoDB::Table');
      const { source, dlq } = queuesOf(template);
      const {
        roleId,
        logGroup: [logGroupId],
      } = ingestOf(template);

      // Act
      const policies = Object.values(
        template.findResources('AWS::IAM::Policy', { Properties: { Roles: [ref(roleId)] } }),
      );
      const role = (template.toJSON().Resources as Record<string, Resource>)[roleId];

      // Assess
      expect(role?.Properties).not.toHaveProperty('ManagedPolicyArns');
      expect(role?.Properties).not.toHaveProperty('Policies');
      expect(policies).toHaveLength(1);
      expect(policies[0]?.Properties.PolicyDocument).toEqual({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: [...LOG_ACTIONS], Resource: getAtt(logGroupId) },
          { Effect: 'Allow', Action: [...TABLE_ACTIONS], Resource: getAtt(tableId) },
          { Effect: 'Allow', Action: [...SOURCE_QUEUE_ACTIONS], Resource: getAtt(source[0]) },
          { Effect: 'Allow', Action: DLQ_ACTIONS[0], Resource: getAtt(dlq[0]) },
          { Effect: 'Allow', Action: [...XRAY_ACTIONS], Resource: '*' },
        ],
      });
      expect(TABLE_ACTIONS).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query']);
      expect(SOURCE_QUEUE_ACTIONS).toEqual([
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:ReceiveMessage',
      ]);
      expect(DLQ_ACTIONS).toEqual(['sqs:SendMessage']);
      expect(LOG_ACTIONS).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    });

    it('no IAM statement in the stack has an action wildcard; Resource "*" only where AWS allows nothing else', () => {
      for (const template of [standard, fifo, customised]) {
        // Act
        const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
          (p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
        );
        const onStar = statements.filter(
          (s) => s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*')),
        );
        const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

        // Assess
        expect(actions.filter((a) => a.includes('*'))).toEqual([]);
        for (const statement of onStar) {
          const list = Array.isArray(statement.Action) ? statement.Action : [statement.Action];
          expect(list.filter((action) => !ACTIONS_WITHOUT_RESOURCE_ARN.includes(action))).toEqual([]);
        }
      }
    });
  });

  describe('monitoring', () => {
    it('has the dashboard and six alarms, each notifying the alarm topic and OK after missing data', () => {
      // Prepare
      const [topicId] = only(standard, 'AWS::SNS::Topic');
      const { source, dlq } = queuesOf(standard);
      const [fnId] = ingestOf(standard).fn;
      const [machineId] = only(standard, 'AWS::StepFunctions::StateMachine');
      const action = { AlarmActions: [ref(topicId)], OKActions: [ref(topicId)] };
      // Throttles, failures and queue metrics of an idle queue are published only when there is
      // something to count: missing data must turn an alarm OK, not keep it in ALARM.
      const atLeast = (threshold: number) => ({
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: threshold,
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      });
      const stat = (namespace: string, metricName: string, dimensions: unknown[], statistic: string) =>
        Match.objectLike({
          MetricStat: {
            Metric: { Namespace: namespace, MetricName: metricName, Dimensions: dimensions },
            Period: 300,
            Stat: statistic,
          },
          ReturnData: false,
        });

      // Act + Assess
      standard.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
      standard.resourceCountIs('AWS::CloudWatch::Alarm', 6);
      for (const alarm of Object.values(standard.findResources('AWS::CloudWatch::Alarm'))) {
        expect(alarm.Properties).toMatchObject({ ...action, TreatMissingData: 'notBreaching' });
      }
      // DLQ: visible + in flight, so a redrive run (which hides what it received) does not flap it.
      const dlqName = [{ Name: 'QueueName', Value: getAtt(dlq[0], 'QueueName') }];
      standard.hasResourceProperties('AWS::CloudWatch::Alarm', {
        ...action,
        ...atLeast(1),
        Metrics: [
          Match.objectLike({ Expression: 'visible + notVisible', ReturnData: true }),
          stat('AWS/SQS', 'ApproximateNumberOfMessagesVisible', dlqName, 'Maximum'),
          stat('AWS/SQS', 'ApproximateNumberOfMessagesNotVisible', dlqName, 'Maximum'),
        ],
      });
      // Ingest queue: oldest message older than visibility timeout (180 s) x maxReceiveCount (5).
      standard.hasResourceProperties('AWS::CloudWatch::Alarm', {
        ...action,
        ...atLeast(180 * 5),
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: getAtt(source[0], 'QueueName') }],
        Statistic: 'Maximum',
      });
      // Redrive: failed or timed-out executions of this stack's state machine.
      const machine = [{ Name: OutputIds.stateMachineArn, Value: ref(machineId) }];
      standard.hasResourceProperties('AWS::CloudWatch::Alarm', {
        ...action,
        ...atLeast(1),
        Metrics: [
          Match.objectLike({ Expression: 'FILL(failed, 0) + FILL(timedOut, 0)', ReturnData: true }),
          stat('AWS/States', 'ExecutionsFailed', machine, 'Sum'),
          stat('AWS/States', 'ExecutionsTimedOut', machine, 'Sum'),
        ],
      });
      for (const metricName of ['Errors', 'Throttles']) {
        standard.hasResourceProperties('AWS::CloudWatch::Alarm', {
          ...action,
          ...atLeast(1),
          Namespace: 'AWS/Lambda',
          MetricName: metricName,
          Dimensions: [{ Name: 'FunctionName', Value: ref(fnId) }],
          Statistic: 'Sum',
        });
      }
      standard.hasResourceProperties('AWS::CloudWatch::Alarm', {
        ...action,
        ...atLeast(1),
        Metrics: Match.arrayWith([
          Match.objectLike({
            MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ThrottledRequests' }) }),
          }),
        ]),
      });
    });

    it("the dashboard shows this stack's store metrics (dimension service=stack name), queues, redrive, function and table", () => {
      // Act
      const [, dashboard] = only(standard, 'AWS::CloudWatch::Dashboard');
      const body = JSON.stringify(dashboard.Properties?.DashboardBody);
      const orders = Template.fromJSON(synthesizeTemplate({ stackName: 'Orders' }));
      const other = JSON.stringify(only(orders, 'AWS::CloudWatch::Dashboard')[1].Properties?.DashboardBody);

      // Assess
      for (const text of [
        IngestMetric.eventsStored,
        IngestMetric.eventsRejected,
        IngestMetric.duplicateEvents,
        IngestMetric.appendConflicts,
        'ApproximateNumberOfMessagesVisible',
        'ApproximateAgeOfOldestMessage',
        'ExecutionsFailed',
        'Errors',
        'Throttles',
        'Duration',
        'ThrottledRequests',
      ]) {
        expect(body).toContain(text);
      }
      // Every custom metric names its stack; no SEARCH that would mix two stacks' series.
      expect(body).not.toContain('SEARCH(');
      // A metric's strings as the dashboard body (JSON in a Fn::Join) quotes them: \"a\",\"b\".
      const quoted = (...parts: string[]): string => parts.map((part) => String.raw`\"${part}\"`).join(',');
      const { service, reason } = MetricDimension;
      expect(body).toContain(quoted(IngestMetric.eventsStored, service, DEFAULT_STACK_NAME));
      expect(body).toContain(
        quoted(IngestMetric.eventsRejected, reason, RejectionReason.SchemaViolation, service, DEFAULT_STACK_NAME),
      );
      expect(other).toContain(quoted(IngestMetric.eventsStored, service, 'Orders'));
      expect(other).not.toContain(quoted(service, DEFAULT_STACK_NAME));
      // The function's metrics carry that value: Powertools reads POWERTOOLS_SERVICE_NAME.
      expect(ingestOf(orders).fn[1].Properties).toMatchObject({
        Environment: {
          Variables: { POWERTOOLS_SERVICE_NAME: 'Orders', POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE },
        },
      });
    });

    it('subscribes alarmEmail to the topic only when given', () => {
      // Prepare
      const [topicId] = only(customised, 'AWS::SNS::Topic');

      // Act + Assess
      standard.resourceCountIs('AWS::SNS::Subscription', 0);
      customised.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'ops@example.com',
        TopicArn: ref(topicId),
      });
    });

    it("the topic policy denies publishing without TLS and lets only CloudWatch publish, for this account's alarms of this stack", () => {
      // Prepare
      const [topicId] = only(standard, 'AWS::SNS::Topic');
      const alarmIds = Object.keys(standard.findResources('AWS::CloudWatch::Alarm'));

      // Act
      const [, policy] = only(standard, 'AWS::SNS::TopicPolicy');

      // Assess: the whole policy, exactly (it replaces SNS's default policy).
      expect(policy.Properties).toEqual({
        PolicyDocument: {
          Statement: [
            {
              Sid: 'AllowPublishThroughSSLOnly',
              Effect: 'Deny',
              Principal: '*',
              Action: 'sns:Publish',
              Resource: ref(topicId),
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            },
            {
              Sid: 'AllowCloudWatchAlarmsToPublish',
              Effect: 'Allow',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
              Action: 'sns:Publish',
              Resource: ref(topicId),
              Condition: {
                StringEquals: { 'aws:SourceAccount': ref('AWS::AccountId') },
                ArnEquals: { 'aws:SourceArn': alarmIds.map((id) => getAtt(id)) },
              },
            },
          ],
          Version: '2012-10-17',
        },
        Topics: [ref(topicId)],
      });
      expect(alarmIds).toHaveLength(6);
    });
  });

  describe('outputs and counts', () => {
    it.each([
      ['standard', () => standard],
      ['fifo', () => fifo],
    ])('%s: outputs name the queue, DLQ, table, dashboard and mode', (mode, of) => {
      // Prepare
      const template = of();
      const [tableId] = only(template, 'AWS::DynamoDB::Table');
      const { source, dlq } = queuesOf(template);
      const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

      // Assess
      expect(outputs[OutputIds.queueUrl]?.Value).toEqual(ref(source[0]));
      expect(outputs[OutputIds.deadLetterQueueUrl]?.Value).toEqual(ref(dlq[0]));
      expect(outputs[OutputIds.tableName]?.Value).toEqual(ref(tableId));
      expect(outputs[OutputIds.queueMode]?.Value).toBe(mode);
      expect(JSON.stringify(outputs[OutputIds.dashboardUrl]?.Value)).toContain('#dashboards:name=');
    });

    it('has one of each main resource', () => {
      for (const template of [standard, fifo]) {
        template.resourceCountIs('AWS::DynamoDB::Table', 1);
        template.resourceCountIs('AWS::SQS::Queue', 2);
        template.resourceCountIs('AWS::SQS::QueuePolicy', 2);
        template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
        template.resourceCountIs('AWS::SNS::Topic', 1);
        template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
      }
    });
  });

  describe('context validation stops synth', () => {
    it.each([
      [{ queue: 'fof' }, 'Invalid context queue="fof": allowed one of standard, fifo.'],
      [
        { queue: 'fifo', batchSize: '11' },
        'Invalid context batchSize="11": allowed an integer from 1 to 10 with queue=fifo.',
      ],
      [
        { maxConcurrency: '1' },
        'Invalid context maxConcurrency="1": allowed an integer from 2 to 1000 (Lambda requires at least 2).',
      ],
      [
        { queue: 'fifo', maxBatchingWindowSeconds: '0' },
        'Invalid context maxBatchingWindowSeconds="0": allowed only with queue=standard ' +
          '(Lambda has no batching window for FIFO queues).',
      ],
      [{ alarmEmail: 'nope' }, 'Invalid context alarmEmail="nope": allowed an email address.'],
    ])('%j', (context, message) => {
      // Act
      let thrown: unknown;
      try {
        synthesizeTemplate(context);
      } catch (error) {
        thrown = error;
      }

      // Assess
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).message).toBe(message);
    });
  });
});
