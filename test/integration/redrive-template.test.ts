import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { REDRIVE_DLQ_ACTIONS, REDRIVE_SOURCE_ACTIONS, SQS_RETRY_ERRORS } from '../../workflows/redrive-workflow.ts';
import { redriveDefinitionFrom, localFunctionArn, type CfnTemplate } from '../../workflows/local-runner.ts';
import { redriveTemplate } from './redrive-support.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Action: string | string[]; Effect: string; Resource: unknown };

function only(template: Template, type: string, props: Record<string, unknown> = {}): [string, Resource] {
  const found = Object.entries(template.findResources(type, props)) as [string, Resource][];
  expect(found, `exactly one ${type} like ${JSON.stringify(props)}`).toHaveLength(1);
  return found[0]!;
}

const getAtt = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });

interface Parts {
  readonly template: Template;
  readonly json: CfnTemplate;
  readonly source: string;
  readonly dlq: string;
  readonly machine: [string, Resource];
  readonly role: string;
  readonly fn: [string, Resource];
}

function partsOf(json: CfnTemplate): Parts {
  const template = Template.fromJSON(json as Record<string, unknown>);
  const [source, sourceQueue] = only(template, 'AWS::SQS::Queue', { Properties: { RedrivePolicy: Match.anyValue() } });
  const dlq = (sourceQueue.Properties['RedrivePolicy'] as { deadLetterTargetArn: { 'Fn::GetAtt': [string] } })
    .deadLetterTargetArn['Fn::GetAtt'][0];
  const machine = only(template, 'AWS::StepFunctions::StateMachine');
  const [role] = only(template, 'AWS::IAM::Role', {
    Properties: {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'states.amazonaws.com' } })],
      }),
    },
  });
  const fn = only(template, 'AWS::Lambda::Function', {
    Properties: { Description: Match.stringLikeRegexp('^Redrive workflow') },
  });
  return { template, json, source, dlq, machine, role, fn };
}

function statementsOf(template: Template, roleId: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } })).flatMap(
    (policy) => (policy as Resource).Properties['PolicyDocument'] as { Statement: Statement[] },
  ).flatMap((document) => document.Statement);
}

const sorted = (statements: Statement[]): string[] => statements.map((statement) => JSON.stringify(statement)).sort();

describe('redrive workflow in the EventStoreStack template', () => {
  let standard: Parts;
  let fifo: Parts;

  beforeAll(() => {
    // Prepare: the app's own synth (cdk-nag runs and fails the synth on any unacknowledged finding)
    standard = partsOf(redriveTemplate('standard'));
    fifo = partsOf(redriveTemplate('fifo'));
  });

  it('the state machine logs everything and traces with X-Ray, under its own role', () => {
    for (const { template, machine, role } of [standard, fifo]) {
      const logGroups = Object.keys(template.findResources('AWS::Logs::LogGroup')).filter((id) =>
        id.startsWith('RedriveStateMachineLogGroup'),
      );
      expect(logGroups).toHaveLength(1);
      const logGroup = logGroups[0]!;
      expect(machine[1].Properties).toMatchObject({
        RoleArn: getAtt(role),
        TracingConfiguration: { Enabled: true },
        LoggingConfiguration: {
          Level: 'ALL',
          IncludeExecutionData: true,
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: getAtt(logGroup) } }],
        },
      });
    }
  });

  it('the role may receive, delete and change visibility on the DLQ, send to the source queue and invoke its own Lambda, nothing else', () => {
    for (const { template, role, dlq, source, fn } of [standard, fifo]) {
      // Assess: exact statements, exact resources
      expect(sorted(statementsOf(template, role))).toEqual(
        sorted([
          ...REDRIVE_DLQ_ACTIONS.map((action) => ({ Action: action, Effect: 'Allow', Resource: getAtt(dlq) })),
          ...REDRIVE_SOURCE_ACTIONS.map((action) => ({ Action: action, Effect: 'Allow', Resource: getAtt(source) })),
          { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: getAtt(fn[0]) },
          {
            Action: [
              'logs:CreateLogDelivery',
              'logs:GetLogDelivery',
              'logs:UpdateLogDelivery',
              'logs:DeleteLogDelivery',
              'logs:ListLogDeliveries',
              'logs:PutResourcePolicy',
              'logs:DescribeResourcePolicies',
              'logs:DescribeLogGroups',
            ],
            Effect: 'Allow',
            Resource: '*',
          },
          {
            Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'],
            Effect: 'Allow',
            Resource: '*',
          },
        ]),
      );
      template.hasResourceProperties('AWS::IAM::Role', {
        AssumeRolePolicyDocument: Match.objectLike({
          Statement: [Match.objectLike({ Principal: { Service: 'states.amazonaws.com' } })],
        }),
        ManagedPolicyArns: Match.absent(),
      });
    }
  });

  it('the Lambda runs on the current Node.js runtime on arm64, traced, and may only write its own logs and traces', () => {
    const { template, fn } = standard;
    expect(fn[1].Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      TracingConfig: { Mode: 'Active' },
    });
    const roleId = (fn[1].Properties['Role'] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
    const logGroupId = (fn[1].Properties['LoggingConfig'] as { LogGroup: { Ref: string } }).LogGroup.Ref;
    expect(statementsOf(template, roleId)).toEqual([
      { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: getAtt(logGroupId) },
      { Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Effect: 'Allow', Resource: '*' },
    ]);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })],
      }),
      ManagedPolicyArns: Match.absent(),
    });
  });

  it('the StateMachineArn output names the state machine', () => {
    for (const { template, machine } of [standard, fifo]) {
      template.hasOutput('StateMachineArn', { Value: { Ref: machine[0] } });
    }
  });

  it('the definition is classic JSONPath: FIFO sends one message at a time with the stream as group', () => {
    // Prepare
    const urls = { source: 'http://127.0.0.1:1/000000000000/q', deadLetter: 'http://127.0.0.1:1/000000000000/dlq' };
    const resolved = {
      standard: redriveDefinitionFrom(standard.json, urls) as unknown as Record<string, unknown>,
      fifo: redriveDefinitionFrom(fifo.json, urls) as unknown as Record<string, unknown>,
    };

    // Assess
    for (const [mode, definition] of Object.entries(resolved)) {
      const text = JSON.stringify(definition);
      expect(text).not.toContain('JSONata');
      expect(text).not.toContain('"Assign"');
      const states = definition['States'] as Record<string, Record<string, unknown>>;
      expect(states['ValidateInput']).toMatchObject({ Type: 'Task', Resource: localFunctionArn(standard.fn[0]) });
      expect(states['InvalidInput']).toEqual({ Type: 'Fail', Error: 'InvalidRedriveInput', CausePath: '$.cause' });
      expect(states['ReceiveBatch']).toMatchObject({
        Resource: 'arn:aws:states:::aws-sdk:sqs:receiveMessage',
        Parameters: {
          QueueUrl: urls.deadLetter,
          'MaxNumberOfMessages.$': '$.summary.nextBatchSize',
          'VisibilityTimeout.$': '$.options.visibilityTimeoutSeconds',
          MessageAttributeNames: ['All'],
        },
        Retry: [expect.objectContaining({ ErrorEquals: [...SQS_RETRY_ERRORS], BackoffRate: 2, JitterStrategy: 'FULL' })],
      });
      const map = states['RedriveEach'] as { MaxConcurrency: number; ItemProcessor: { States: Record<string, Record<string, unknown>> } };
      expect(map.MaxConcurrency).toBe(mode === 'fifo' ? 1 : 10);
      const send = map.ItemProcessor.States['SendToSource']!;
      expect(send).toMatchObject({
        Resource: 'arn:aws:states:::aws-sdk:sqs:sendMessage',
        Next: 'DeleteFromDlq',
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'SendFailed' }],
        Retry: [expect.objectContaining({ ErrorEquals: [...SQS_RETRY_ERRORS] })],
      });
      expect(send['Parameters']).toEqual({
        QueueUrl: urls.source,
        'MessageBody.$': '$.body',
        'MessageAttributes.$': '$.messageAttributes',
        ...(mode === 'fifo' ? { 'MessageGroupId.$': '$.groupId', 'MessageDeduplicationId.$': '$.deduplicationId' } : {}),
      });
      expect(map.ItemProcessor.States['DeleteFromDlq']).toMatchObject({
        Parameters: { QueueUrl: urls.deadLetter, 'ReceiptHandle.$': '$.receiptHandle' },
        Next: 'Redriven',
      });
    }
  });

  it('the local runner refuses a template it cannot resolve, saying what is missing', () => {
    // Prepare
    const urls = { source: 'http://127.0.0.1:1/000000000000/q', deadLetter: 'http://127.0.0.1:1/000000000000/dlq' };
    const resources = (standard.json['Resources'] ?? {}) as Record<string, Resource>;
    const withoutMachine = {
      Resources: Object.fromEntries(
        Object.entries(resources).filter(([, resource]) => resource.Type !== 'AWS::StepFunctions::StateMachine'),
      ),
    };
    const [machineId, machine] = standard.machine;
    const join = machine.Properties['DefinitionString'] as { 'Fn::Join': [string, unknown[]] };
    const strayRef = {
      Resources: {
        ...resources,
        [machineId]: {
          ...machine,
          Properties: { ...machine.Properties, DefinitionString: { 'Fn::Join': ['', [...join['Fn::Join'][1], { Ref: 'Elsewhere' }]] } },
        },
      },
    };

    // Act / Assess
    expect(() => redriveDefinitionFrom({}, urls)).toThrow(new Error('not a CloudFormation template: no Resources'));
    expect(() => redriveDefinitionFrom(withoutMachine, urls)).toThrow(
      new Error('expected one AWS::StepFunctions::StateMachine in the template, found 0'),
    );
    expect(() => redriveDefinitionFrom(strayRef, urls)).toThrow(
      new Error('cannot resolve Ref Elsewhere in the state machine definition'),
    );
  });
});
