import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { RECEIVE_LEASE_SECONDS } from '../../core/redrive.ts';
import { HistoryEvents } from '../../core/redrive-run.ts';
import { OutputIds } from '../../core/stack-outputs.ts';
import { synthesizeTemplate } from '../../infra/synth.ts';
import { LOCAL_ACCOUNT } from '../../local/defaults.ts';
import {
  BATCH_RETRY_ERRORS,
  REDRIVE_DLQ_ACTIONS,
  REDRIVE_FUNCTION_TIMEOUT,
  REDRIVE_SOURCE_ACTIONS,
  SYNC_EVENTS_RULE,
} from '../../workflows/redrive-workflow.ts';
import { redriveDefinitionFrom, localFunctionArn, type CfnTemplate } from '../../local/workflow-runner.ts';
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
  return Object.values(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }))
    .flatMap((policy) => (policy as Resource).Properties['PolicyDocument'] as { Statement: Statement[] })
    .flatMap((document) => document.Statement);
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

  it('the state machine logs errors only, without execution data, to a log group under /aws/vendedlogs/states/', () => {
    for (const { template, machine, role } of [standard, fifo]) {
      const logGroups = Object.entries(template.findResources('AWS::Logs::LogGroup')).filter(([id]) =>
        id.startsWith('RedriveStateMachineLogGroup'),
      ) as [string, Resource][];
      expect(logGroups).toHaveLength(1);
      const [logGroup, resource] = logGroups[0]!;
      expect(resource.Properties['LogGroupName']).toBe('/aws/vendedlogs/states/EventStore-Redrive');
      expect(machine[1].Properties).toMatchObject({
        RoleArn: getAtt(role),
        TracingConfiguration: { Enabled: true },
        LoggingConfiguration: {
          Level: 'ERROR',
          IncludeExecutionData: false,
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: getAtt(logGroup) } }],
        },
      });
    }
  });

  it('-c redriveLogExecutionData=true logs every state with its data (for debugging)', () => {
    const { machine } = partsOf(synthesizeTemplate({ queue: 'standard', redriveLogExecutionData: 'true' }));
    expect(machine[1].Properties).toMatchObject({ LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true } });
  });

  it('the state machine role may invoke its Lambda and run its own successor executions, nothing else', () => {
    for (const { template, role, machine, fn } of [standard, fifo]) {
      // Assess: exact statements, exact resources
      const partitioned = (service: string, rest: unknown[]) => ({
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            `:${service}:`,
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            ...rest,
          ],
        ],
      });
      expect(sorted(statementsOf(template, role))).toEqual(
        sorted([
          { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: getAtt(fn[0]) },
          { Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: machine[0] } },
          {
            Action: ['states:DescribeExecution', 'states:StopExecution'],
            Effect: 'Allow',
            Resource: partitioned('states', [':execution:', { 'Fn::GetAtt': [machine[0], 'Name'] }, ':*']),
          },
          {
            Action: ['events:DescribeRule', 'events:PutRule', 'events:PutTargets'],
            Effect: 'Allow',
            Resource: partitioned('events', [`:rule/${SYNC_EVENTS_RULE}`]),
          },
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
            Action: [
              'xray:PutTraceSegments',
              'xray:PutTelemetryRecords',
              'xray:GetSamplingRules',
              'xray:GetSamplingTargets',
            ],
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

  it('the Lambda runs on the current Node.js runtime on arm64, traced, and may receive, delete and release on the DLQ and send to the source queue, nothing else', () => {
    for (const { template, fn, dlq, source } of [standard, fifo]) {
      expect(fn[1].Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        Environment: { Variables: { DLQ_URL: { Ref: dlq }, SOURCE_QUEUE_URL: { Ref: source } } },
      });
      const roleId = (fn[1].Properties['Role'] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      const logGroupId = (fn[1].Properties['LoggingConfig'] as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(statementsOf(template, roleId)).toEqual([
        { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: getAtt(logGroupId) },
        { Action: [...REDRIVE_DLQ_ACTIONS], Effect: 'Allow', Resource: getAtt(dlq) },
        { Action: REDRIVE_SOURCE_ACTIONS[0], Effect: 'Allow', Resource: getAtt(source) },
        { Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Effect: 'Allow', Resource: '*' },
      ]);
      template.hasResourceProperties('AWS::IAM::Role', {
        AssumeRolePolicyDocument: Match.objectLike({
          Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })],
        }),
        ManagedPolicyArns: Match.absent(),
      });
    }
  });

  it('the StateMachineArn output names the state machine', () => {
    for (const { template, machine } of [standard, fifo]) {
      template.hasOutput(OutputIds.stateMachineArn, { Value: { Ref: machine[0] } });
    }
  });

  it('the definition is classic JSONPath: one Lambda call per batch, a failed call recorded, a successor waited for, every failure ending in Finish', () => {
    // Prepare
    const urls = {
      source: `http://127.0.0.1:1/${LOCAL_ACCOUNT}/q`,
      deadLetter: `http://127.0.0.1:1/${LOCAL_ACCOUNT}/dlq`,
    };
    for (const parts of [standard, fifo]) {
      const definition = redriveDefinitionFrom(parts.json, urls) as unknown as Record<string, unknown>;

      // Assess
      const text = JSON.stringify(definition);
      expect(text).not.toContain('JSONata');
      expect(text).not.toContain('"Assign"');
      expect(text).not.toContain('aws-sdk:sqs');
      const states = definition['States'] as Record<string, Record<string, unknown>>;
      const retry = (errors: readonly string[]) => [
        expect.objectContaining({ ErrorEquals: [...errors], MaxAttempts: HistoryEvents.maxRetries }),
      ];
      const fn = localFunctionArn(parts.fn[0]);
      expect(states['ValidateInput']).toMatchObject({
        Type: 'Task',
        Resource: fn,
        Parameters: { action: 'start', 'input.$': '$', 'executionId.$': '$$.Execution.Id' },
        Retry: retry(['States.ALL']),
      });
      expect(states['InvalidInput']).toEqual({ Type: 'Fail', Error: 'InvalidRedriveInput', CausePath: '$.cause' });
      // A batch call is retried only where it did nothing the state cannot see; every other failure is recorded
      expect(states['RedriveBatch']).toMatchObject({
        Resource: fn,
        Parameters: { action: 'batch', 'run.$': '$' },
        Retry: retry(BATCH_RETRY_ERRORS),
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'RecordFailure' }],
        Next: 'BatchNext',
      });
      expect(states['RecordFailure']).toMatchObject({
        Resource: fn,
        Parameters: { action: 'recover', 'run.$': '$' },
        Retry: retry(['States.ALL']),
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: null, Next: 'Finish' }],
        Next: 'BatchNext',
      });
      // The successor's report replaces this execution's; its failure is dropped for a short error of ours
      expect(states['StartSuccessor']).toMatchObject({
        Resource: 'arn:aws:states:::states:startExecution.sync:2',
        Parameters: {
          'StateMachineArn.$': '$$.StateMachine.Id',
          Input: {
            continueRun: {
              'options.$': '$.options',
              'report.$': '$.report',
              'receiveUntil.$': '$.receiveUntil',
              'holdUntil.$': '$.holdUntil',
              'returnsBy.$': '$.returnsBy',
              'pending.$': '$.pending',
            },
            'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id',
          },
        },
        ResultSelector: { 'successor.$': '$.Output' },
        ResultPath: '$.report',
        Next: 'Finish',
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: null, Next: 'SuccessorFailed' }],
      });
      expect(states['SuccessorFailed']).toMatchObject({
        Type: 'Pass',
        Result: { Error: 'SuccessorFailed' },
        ResultPath: '$.error',
        Next: 'Finish',
      });
      expect(states['Finish']).toMatchObject({
        Parameters: { action: 'finish', 'run.$': '$' },
        Retry: retry(['States.ALL']),
        Next: 'Finished',
      });
      // Only the first execution fails with the run's error: a successor hands its report back
      expect(states['Finished']).toMatchObject({
        Choices: [
          {
            And: [
              { Variable: '$.failed', IsPresent: true },
              { Not: { Variable: '$$.Execution.Input.continueRun', IsPresent: true } },
            ],
            Next: 'RunFailed',
          },
        ],
      });
    }
  });

  it("a receive's lease outlasts one call of the function, so a living call always holds its messages in time", () => {
    expect(RECEIVE_LEASE_SECONDS).toBeGreaterThan(REDRIVE_FUNCTION_TIMEOUT.toSeconds());
    standard.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Redrive workflow'),
      Timeout: REDRIVE_FUNCTION_TIMEOUT.toSeconds(),
    });
  });

  it('the local runner refuses a template it cannot resolve, saying what is missing', () => {
    // Prepare
    const urls = {
      source: `http://127.0.0.1:1/${LOCAL_ACCOUNT}/q`,
      deadLetter: `http://127.0.0.1:1/${LOCAL_ACCOUNT}/dlq`,
    };
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
          Properties: {
            ...machine.Properties,
            DefinitionString: { 'Fn::Join': ['', [...join['Fn::Join'][1], { Ref: 'Elsewhere' }]] },
          },
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
