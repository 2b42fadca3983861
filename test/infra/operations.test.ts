import { Match, Template } from 'aws-cdk-lib/assertions';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { OutputIds } from '../../core/stack-outputs.ts';
import { ConfigLimits } from '../../infra/config.ts';
import { SOURCE_QUEUE_ACTIONS } from '../../infra/constructs/ingest-function.ts';
import { synthesizeTemplate } from '../../infra/synth.ts';
import { PROJECT_ROOT } from '../../local/defaults.ts';
import { REDRIVE_DLQ_ACTIONS, REDRIVE_SOURCE_ACTIONS } from '../../workflows/redrive-workflow.ts';

/**
 * What only a real AWS account would show, read off the synthesized templates (README,
 * "Deploy" and "Switching the queue mode"): names that fit SQS's limits, what survives a failed
 * deploy, a mode switch and a stack delete, and the previous mode's queues kept alarmed and
 * redrivable.
 */

type Resource = {
  Type: string;
  Properties?: Record<string, unknown>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
};

const ref = (logicalId: string) => ({ Ref: logicalId });
const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });

/** The stack id's first UUID group, as the app's generated FIFO names hold it (8 hex characters). */
const STACK_ID_GROUP = {
  'Fn::Select': [0, { 'Fn::Split': ['-', { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] }] }],
};

/** A queue name's length once deployed: a literal, or a join of literals and the 8-character stack id group. */
function deployedLength(name: unknown): number {
  if (typeof name === 'string') return name.length;
  const join = (name as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (!join) throw new Error(`unexpected queue name ${JSON.stringify(name)}`);
  return join[1].reduce<number>((total, part) => {
    if (typeof part === 'string') return total + part.length;
    expect(part).toEqual(STACK_ID_GROUP);
    return total + 8;
  }, 0);
}

function resourcesOf(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.findResources(type)) as [string, Resource][];
}

function queueNames(template: Template): unknown[] {
  return resourcesOf(template, 'AWS::SQS::Queue').map(([, queue]) => queue.Properties?.['QueueName']);
}

describe('names fit SQS at the limits of stackName and queueName', () => {
  const longestStack = `S${'s'.repeat(127)}`;
  const longestBase = 'q'.repeat(ConfigLimits.maxQueueNameChars);

  it.each([
    ['fifo, generated from a 128-character stackName', 65, { queue: 'fifo', stackName: longestStack }],
    ['fifo, queueName of 71 characters', 80, { queue: 'fifo', queueName: longestBase }],
    ['standard, queueName of 71 characters', 75, { queue: 'standard', queueName: longestBase }],
    [
      'fifo with the standard queues kept, both from queueName',
      80,
      { queue: 'fifo', previousQueue: 'standard', queueName: longestBase },
    ],
    [
      'standard with the FIFO queues kept, generated from a 128-character stackName',
      65,
      { queue: 'standard', previousQueue: 'fifo', stackName: longestStack },
    ],
  ])(
    '%s: the longest name has %i characters (SQS allows 80, .fifo included)',
    (_case, longest, context) => {
      // Act
      const template = Template.fromJSON(synthesizeTemplate(context));

      // Assess
      const lengths = queueNames(template)
        .filter((name) => name !== undefined)
        .map(deployedLength);
      expect(Math.max(...lengths)).toBe(longest);
      for (const length of lengths) expect(length).toBeLessThanOrEqual(ConfigLimits.maxSqsQueueNameChars);
    },
    60_000,
  );

  it('fifo names end in .fifo and differ for every stack created (the stack id), so retained queues never collide', () => {
    // Act
    const template = Template.fromJSON(synthesizeTemplate({ queue: 'fifo', stackName: 'Orders' }));

    // Assess
    const names = queueNames(template);
    expect(names).toHaveLength(2);
    expect(names).toEqual(
      expect.arrayContaining([
        { 'Fn::Join': ['', ['Orders-ingest-', STACK_ID_GROUP, '.fifo']] },
        { 'Fn::Join': ['', ['Orders-ingest-dlq-', STACK_ID_GROUP, '.fifo']] },
      ]),
    );
  }, 60_000);

  it('standard names without queueName are left to CloudFormation, which shortens them to fit', () => {
    // Act
    const template = Template.fromJSON(synthesizeTemplate({ stackName: longestStack }));

    // Assess
    expect(queueNames(template)).toEqual([undefined, undefined]);
  }, 60_000);
});

describe('removal policies', () => {
  let switched: Template;

  beforeAll(() => {
    switched = Template.fromJSON(synthesizeTemplate({ queue: 'fifo', previousQueue: 'standard' }));
  }, 60_000);

  it('every queue and every queue policy is RetainExceptOnCreate: kept by updates and deletes, not by a failed create', () => {
    // Act
    const kept = [...resourcesOf(switched, 'AWS::SQS::Queue'), ...resourcesOf(switched, 'AWS::SQS::QueuePolicy')];

    // Assess
    expect(kept).toHaveLength(8);
    for (const [, resource] of kept) {
      expect(resource).toMatchObject({ DeletionPolicy: 'RetainExceptOnCreate', UpdateReplacePolicy: 'Retain' });
    }
  });

  it('the table is RetainExceptOnCreate with deletion protection', () => {
    // Act + Assess
    const tables = resourcesOf(switched, 'AWS::DynamoDB::Table');
    expect(tables).toHaveLength(1);
    expect(tables[0]?.[1]).toMatchObject({
      DeletionPolicy: 'RetainExceptOnCreate',
      UpdateReplacePolicy: 'Retain',
      Properties: { DeletionProtectionEnabled: true },
    });
  });
});

describe('retention: a failing message is dead-lettered before it could expire, and alarmed before that', () => {
  it('both pairs, at the longest accepted retry path: ingest queues 7 days, DLQs 14, oldest-message alarms at the path', () => {
    // Prepare: 43,200 s x 12 receives = 518,400 s (6 days), the longest the config accepts.
    const template = Template.fromJSON(
      synthesizeTemplate({
        queue: 'fifo',
        previousQueue: 'standard',
        visibilityTimeoutSeconds: '43200',
        maxReceiveCount: '12',
      }),
    );

    // Act
    const ingest = resourcesOf(template, 'AWS::SQS::Queue').filter(([, q]) => q.Properties?.['RedrivePolicy']);
    const dlqs = resourcesOf(template, 'AWS::SQS::Queue').filter(([, q]) => !q.Properties?.['RedrivePolicy']);
    const oldest = resourcesOf(template, 'AWS::CloudWatch::Alarm').filter(
      ([, a]) => a.Properties?.['MetricName'] === 'ApproximateAgeOfOldestMessage',
    );

    // Assess
    expect(ingest).toHaveLength(2);
    for (const [, queue] of ingest) {
      expect(queue.Properties).toMatchObject({ MessageRetentionPeriod: 604_800, VisibilityTimeout: 43_200 });
    }
    expect(dlqs.map(([, q]) => q.Properties?.['MessageRetentionPeriod'])).toEqual([1_209_600, 1_209_600]);
    expect(oldest.map(([, a]) => a.Properties?.['Threshold'])).toEqual([518_400, 518_400]);
  }, 60_000);
});

describe('a mode switch with previousQueue keeps the previous queues drained, alarmed and redrivable', () => {
  let standard: Template;
  let switched: Template;
  let back: Template;

  beforeAll(() => {
    standard = Template.fromJSON(synthesizeTemplate({}));
    switched = Template.fromJSON(synthesizeTemplate({ queue: 'fifo', previousQueue: 'standard' }));
    back = Template.fromJSON(synthesizeTemplate({ queue: 'standard', previousQueue: 'fifo' }));
  }, 120_000);

  it('the previous queues and their policies keep their logical ids and definitions: CloudFormation neither replaces nor deletes them', () => {
    // Act
    const before = {
      ...standard.findResources('AWS::SQS::Queue'),
      ...standard.findResources('AWS::SQS::QueuePolicy'),
    };
    const after = { ...switched.findResources('AWS::SQS::Queue'), ...switched.findResources('AWS::SQS::QueuePolicy') };

    // Assess
    expect(Object.keys(before)).toHaveLength(4);
    for (const [id, resource] of Object.entries(before)) expect(after[id], id).toEqual(resource);
    // Switching back keeps the standard pair just the same (it is the current one again).
    const backAgain = { ...back.findResources('AWS::SQS::Queue'), ...back.findResources('AWS::SQS::QueuePolicy') };
    for (const [id, resource] of Object.entries(before)) expect(backAgain[id], id).toEqual(resource);
  });

  it('the function keeps consuming the previous ingest queue, and its role may do so on exactly the two queues', () => {
    // Prepare
    const [fifoQueueId] = Object.keys(
      switched.findResources('AWS::SQS::Queue', { Properties: { FifoQueue: true, RedrivePolicy: Match.anyValue() } }),
    );
    const [standardQueueId] = Object.keys(
      switched.findResources('AWS::SQS::Queue', {
        Properties: { FifoQueue: Match.absent(), RedrivePolicy: Match.anyValue() },
      }),
    );

    // Act + Assess
    switched.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    switched.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: getAtt(standardQueueId!),
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    switched.hasResourceProperties('AWS::Lambda::EventSourceMapping', { EventSourceArn: getAtt(fifoQueueId!) });
    switched.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: [...SOURCE_QUEUE_ACTIONS],
            Effect: 'Allow',
            Resource: [getAtt(fifoQueueId!), getAtt(standardQueueId!)],
          },
        ]),
      },
    });
  });

  it('a second redrive workflow drains the previous DLQ into the previous ingest queue, on exactly those queues', () => {
    // Prepare
    const [dlqId] = Object.keys(
      switched.findResources('AWS::SQS::Queue', {
        Properties: { FifoQueue: Match.absent(), RedrivePolicy: Match.absent() },
      }),
    );
    const [sourceId] = Object.keys(
      switched.findResources('AWS::SQS::Queue', {
        Properties: { FifoQueue: Match.absent(), RedrivePolicy: Match.anyValue() },
      }),
    );
    const machines = resourcesOf(switched, 'AWS::StepFunctions::StateMachine');
    const previous = machines.find(([id]) => id.startsWith('PreviousRedrive'));
    // The redrive's SQS calls are its function's (workflows/redrive-workflow.ts).
    const previousFunction = resourcesOf(switched, 'AWS::Lambda::Function').find(([id]) =>
      id.startsWith('PreviousRedriveFunction'),
    );
    const roleId = (previousFunction?.[1].Properties?.['Role'] as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const [, policy] = resourcesOf(switched, 'AWS::IAM::Policy').find(([, p]) =>
      JSON.stringify(p.Properties?.['Roles']).includes(`"${roleId}"`),
    )!;
    const statements = (
      policy.Properties?.['PolicyDocument'] as { Statement: { Action: string | string[]; Resource: unknown }[] }
    ).Statement;
    const sqs = statements.filter((s) => [s.Action].flat().some((action) => action.startsWith('sqs:')));

    // Assess
    expect(machines).toHaveLength(2);
    expect(sqs.flatMap((s) => [s.Action].flat()).sort()).toEqual(
      [...REDRIVE_DLQ_ACTIONS, ...REDRIVE_SOURCE_ACTIONS].sort(),
    );
    for (const statement of sqs) {
      const onDlq = [statement.Action]
        .flat()
        .every((action) => (REDRIVE_DLQ_ACTIONS as readonly string[]).includes(action));
      expect(statement.Resource).toEqual(getAtt(onDlq ? dlqId! : sourceId!));
    }
    const outputs = switched.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs[OutputIds.previousQueueUrl]?.Value).toEqual(ref(sourceId!));
    expect(outputs[OutputIds.previousDeadLetterQueueUrl]?.Value).toEqual(ref(dlqId!));
    expect(outputs[OutputIds.previousStateMachineArn]?.Value).toEqual(ref(previous![0]));
  });

  it('the previous DLQ, ingest queue and redrive are alarmed, and the topic lets those alarms publish too', () => {
    // Prepare
    const [dlqId] = Object.keys(
      switched.findResources('AWS::SQS::Queue', {
        Properties: { FifoQueue: Match.absent(), RedrivePolicy: Match.absent() },
      }),
    );
    const alarmIds = Object.keys(switched.findResources('AWS::CloudWatch::Alarm'));

    // Act + Assess
    expect(alarmIds).toHaveLength(9);
    switched.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({
          MetricStat: Match.objectLike({
            Metric: {
              Namespace: 'AWS/SQS',
              MetricName: 'ApproximateNumberOfMessagesNotVisible',
              Dimensions: [{ Name: 'QueueName', Value: getAtt(dlqId!, 'QueueName') }],
            },
          }),
        }),
      ]),
    });
    const [[, topicPolicy]] = resourcesOf(switched, 'AWS::SNS::TopicPolicy') as [[string, Resource]];
    const allow = (
      topicPolicy.Properties?.['PolicyDocument'] as {
        Statement: { Sid: string; Condition: { ArnEquals: { 'aws:SourceArn': unknown[] } } }[];
      }
    ).Statement.find((statement) => statement.Sid === 'AllowCloudWatchAlarmsToPublish');
    const arns = allow?.Condition.ArnEquals['aws:SourceArn'] ?? [];
    expect(arns).toHaveLength(9);
    expect(arns).toEqual(expect.arrayContaining(alarmIds.map((id) => getAtt(id))));
  });
});

describe('cdk.context.json written by the CDK CLI itself', () => {
  const cdk = join(PROJECT_ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');
  const env = {
    ...process.env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`,
    CDK_DISABLE_CLI_TELEMETRY: 'true',
    CDK_DISABLE_VERSION_CHECK: 'true',
  };

  it('cdk acknowledge and cdk cli-telemetry --disable write keys the app accepts: cdk synth still works', async () => {
    // Prepare: a project folder whose app is this repository's, and the CLI's own commands.
    const run = promisify(execFile);
    const project = mkdtempSync(join(tmpdir(), 'event-store-context-'));
    try {
      const loader = join(PROJECT_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
      const app = `"${process.execPath}" --import "${loader}" "${join(PROJECT_ROOT, 'infra', 'app.ts')}"`;
      writeFileSync(join(project, 'cdk.json'), JSON.stringify({ app }));
      await run(process.execPath, [cdk, 'acknowledge', '34892', '--no-notices'], { cwd: project, env });
      await run(process.execPath, [cdk, 'cli-telemetry', '--disable', '--no-notices'], { cwd: project, env });
      const written = JSON.parse(readFileSync(join(project, 'cdk.context.json'), 'utf8')) as Record<string, unknown>;

      // Act
      const synth = await run(
        process.execPath,
        [cdk, 'synth', '--no-notices', '-q', '-o', join(project, 'out'), '-c', 'queue=fifo'],
        {
          cwd: project,
          env,
          timeout: 110_000,
        },
      );

      // Assess
      expect(written).toEqual({ 'acknowledged-issue-numbers': [34892], 'cli-telemetry': false });
      expect(synth.stderr).not.toContain('Invalid context');
      const template = JSON.parse(readFileSync(join(project, 'out', 'EventStore.template.json'), 'utf8')) as {
        Outputs: Record<string, { Value: unknown }>;
      };
      expect(template.Outputs[OutputIds.queueMode]?.Value).toBe('fifo');
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  }, 120_000);
});
