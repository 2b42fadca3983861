import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { QUEUE_SOURCE_IDS } from '../../infra/constructs/ingest-function.ts';
import { SetOnceWarnings } from '../../infra/event-store-stack.ts';
import { PROJECT_ROOT } from '../../infra/project-root.ts';
import { buildApp, synthesizeTemplate } from '../../infra/synth.ts';
import {
  concurrentMappingConflicts,
  DATA_TYPES,
  diffTemplates,
  reduceTemplate,
  replacedData,
  type TemplateDiff,
  type TemplateJson,
} from './support/template-diff.ts';

/**
 * Every documented upgrade path (docs/OPERATIONS.md, "Switching the queue mode, recovering,
 * cleaning up") as CloudFormation would run it: the two synthesized templates compared with the
 * CDK CLI's resource database (test/infra/support/template-diff.ts). A path fails when it replaces
 * a resource that holds data (DATA_TYPES) it is not documented to replace, or when two event
 * source mappings of one source and one function exist at any moment of the update (Lambda
 * refuses the second, and the update rolls back).
 */

type Context = Record<string, string>;

const templates = new Map<string, TemplateJson>();
function template(context: Context): TemplateJson {
  const key = JSON.stringify(Object.entries(context).sort());
  let found = templates.get(key);
  if (!found) {
    found = synthesizeTemplate(context) as unknown as TemplateJson;
    templates.set(key, found);
  }
  return found;
}

function update(
  before: TemplateJson,
  after: TemplateJson,
): { diff: TemplateDiff; data: string[]; conflicts: string[] } {
  const diff = diffTemplates(before, after);
  return { diff, data: replacedData(diff), conflicts: concurrentMappingConflicts(before, after, diff) };
}

/** The logical id of the resource of `type` whose properties contain `fragment`. */
function idWhere(source: TemplateJson, type: string, fragment: string): string {
  const ids = Object.entries(source.Resources)
    .filter(([, resource]) => resource.Type === type && JSON.stringify(resource.Properties).includes(fragment))
    .map(([id]) => id);
  expect(ids, `${type} with ${fragment}`).toHaveLength(1);
  return ids[0]!;
}

const ESM = 'AWS::Lambda::EventSourceMapping';
const STANDARD: Context = {};
const FIFO: Context = { queue: 'fifo' };
const FIFO_KEEPING_STANDARD: Context = { queue: 'fifo', previousQueue: 'standard' };
const STANDARD_KEEPING_FIFO: Context = { queue: 'standard', previousQueue: 'fifo' };

describe('the documented mode switches replace nothing that holds data', () => {
  const steps: [string, Context, Context][] = [
    ['{} -> queue=fifo,previousQueue=standard', STANDARD, FIFO_KEEPING_STANDARD],
    ['queue=fifo,previousQueue=standard -> queue=fifo (the final step)', FIFO_KEEPING_STANDARD, FIFO],
    ['queue=fifo -> queue=standard,previousQueue=fifo (and back)', FIFO, STANDARD_KEEPING_FIFO],
    ['queue=standard,previousQueue=fifo -> {} (the final step)', STANDARD_KEEPING_FIFO, STANDARD],
    ['{} -> queue=fifo (a switch without previousQueue)', STANDARD, FIFO],
    ['queue=fifo -> {} (a switch without previousQueue)', FIFO, STANDARD],
  ];

  it.each(steps)(
    '%s: no table, queue, mapping, log group or topic replaced; no two mappings of one queue and function',
    (_step, from, to) => {
      // Act
      const { diff, data, conflicts } = update(template(from), template(to));

      // Assess
      expect(data).toEqual([]);
      expect(conflicts).toEqual([]);
      expect(diff.replaced.filter((each) => each.type === ESM)).toEqual([]);
    },
    60_000,
  );

  it.each([
    ['standard', STANDARD, FIFO_KEEPING_STANDARD, QUEUE_SOURCE_IDS.standard],
    ['fifo', FIFO, STANDARD_KEEPING_FIFO, QUEUE_SOURCE_IDS.fifo],
  ])(
    'the kept %s queue keeps its mapping through the switch: same logical id, only updated',
    (_kind, from, to, sourceId) => {
      // Prepare: the kept queue's mapping before the switch, found by its queue.
      const before = template(from);
      const after = template(to);
      const queueId = idWhere(before, 'AWS::SQS::Queue', 'RedrivePolicy');
      const mappingId = idWhere(before, ESM, `"${queueId}"`);

      // Act
      const { diff } = update(before, after);

      // Assess
      expect(mappingId.startsWith(`IngestFunction${sourceId}`)).toBe(true);
      expect(idWhere(after, ESM, `"${queueId}"`)).toBe(mappingId);
      expect(diff.kept).toContain(mappingId);
    },
    60_000,
  );
});

describe('other context changes replace nothing that holds data', () => {
  const changes: [string, Context, Context][] = [
    ['exampleProjection on', STANDARD, { exampleProjection: 'true' }],
    ['exampleProjection off', { exampleProjection: 'true' }, STANDARD],
    ['exampleProjection on, FIFO', FIFO, { queue: 'fifo', exampleProjection: 'true' }],
    ['alarmEmail added', STANDARD, { alarmEmail: 'ops@example.com' }],
    ['alarmEmail changed', { alarmEmail: 'ops@example.com' }, { alarmEmail: 'oncall@example.com' }],
    ['batchSize and batching window', STANDARD, { batchSize: '100', maxBatchingWindowSeconds: '5' }],
    ['maxConcurrency', FIFO, { queue: 'fifo', maxConcurrency: '20', batchSize: '5' }],
    ['maxReceiveCount (retention follows)', STANDARD, { maxReceiveCount: '100', visibilityTimeoutSeconds: '5000' }],
    [
      'functionTimeoutSeconds (visibility and retention follow)',
      FIFO,
      { queue: 'fifo', functionTimeoutSeconds: '900' },
    ],
    [
      'dedupWindow, resendWindow, memorySize, logLevel',
      STANDARD,
      { dedupWindow: '200', resendWindow: '600', memorySize: '1024', logLevel: 'DEBUG' },
    ],
    ['billing provisioned', STANDARD, { billing: 'provisioned', readCapacity: '10', writeCapacity: '20' }],
    ['retainTable off', STANDARD, { retainTable: 'false' }],
    [
      'redriveLogExecutionData on',
      FIFO_KEEPING_STANDARD,
      { ...FIFO_KEEPING_STANDARD, redriveLogExecutionData: 'true' },
    ],
  ];

  it.each(changes)(
    '%s',
    (_change, from, to) => {
      // Act
      const { data, conflicts } = update(template(from), template(to));

      // Assess
      expect(data).toEqual([]);
      expect(conflicts).toEqual([]);
    },
    60_000,
  );
});

describe('set-once keys: tableName and queueName replace what they name, and synth says so', () => {
  const table = (source: TemplateJson) =>
    `AWS::DynamoDB::Table ${idWhere(source, 'AWS::DynamoDB::Table', 'KeySchema')}`;

  it.each([
    ['tableName added', STANDARD, { tableName: 'Events' }],
    ['tableName changed', { tableName: 'Events' }, { tableName: 'OrderEvents' }],
    ['tableName removed', { tableName: 'Events' }, STANDARD],
  ])(
    '%s: the table, and nothing else that holds data',
    (_change, from, to) => {
      // Act
      const { data, conflicts } = update(template(from), template(to));

      // Assess
      expect(data).toEqual([table(template(from))]);
      expect(conflicts).toEqual([]);
    },
    60_000,
  );

  it.each([
    ['standard', STANDARD, { queueName: 'orders' }],
    ['fifo', FIFO, { queue: 'fifo', queueName: 'orders' }],
  ])(
    'queueName added (%s): both queues and the mapping on the ingest queue (a new pair: no conflict)',
    (_mode, from, to) => {
      // Prepare
      const before = template(from);
      const queues = Object.entries(before.Resources)
        .filter(([, resource]) => resource.Type === 'AWS::SQS::Queue')
        .map(([id]) => `AWS::SQS::Queue ${id}`);
      const mapping = `${ESM} ${Object.keys(before.Resources).find((id) => before.Resources[id]!.Type === ESM)}`;

      // Act
      const { data, conflicts } = update(before, template(to));

      // Assess
      expect(data).toEqual([mapping, ...queues].sort());
      expect(conflicts).toEqual([]);
    },
    60_000,
  );

  it('warns at synth whenever tableName or queueName is set, on the table and on the queues, and never otherwise', () => {
    // Act
    const named = buildApp({ tableName: 'Events', queueName: 'orders' }, { bundle: false }).stack;
    const unnamed = buildApp({}, { bundle: false }).stack;

    // Assess
    const warnings = Annotations.fromStack(named);
    warnings.hasWarning(
      '/EventStore/EventTable/Table',
      Match.stringLikeRegexp('^tableName is set-once: .*NEW, EMPTY table'),
    );
    warnings.hasWarning(
      '/EventStore/IngestQueues',
      Match.stringLikeRegexp('^queueName is set-once: .*NEW, EMPTY ingest'),
    );
    expect(SetOnceWarnings.tableName.message).toContain('docs/OPERATIONS.md, "Set-once keys"');
    Annotations.fromStack(unnamed).hasNoWarning('*', Match.stringLikeRegexp('set-once'));
  });

  it('infra/stack-policy.json denies replacing exactly the tables and queues: every set-once replacement, no step of a switch', () => {
    // Prepare
    const policy = JSON.parse(readFileSync(join(PROJECT_ROOT, 'infra', 'stack-policy.json'), 'utf8')) as {
      Statement: {
        Effect: string;
        Action: string;
        Resource: string;
        Condition?: { StringEquals: { ResourceType: string[] } };
      }[];
    };
    const denied = policy.Statement.filter((each) => each.Effect === 'Deny');

    // Act
    const setOnce = [
      update(template(STANDARD), template({ tableName: 'Events' })),
      update(template(FIFO), template({ queue: 'fifo', queueName: 'orders' })),
    ].flatMap(({ diff }) => diff.replaced.map((each) => each.type));

    // Assess
    expect(denied).toEqual([
      {
        Effect: 'Deny',
        Action: 'Update:Replace',
        Principal: '*',
        Resource: '*',
        Condition: { StringEquals: { ResourceType: ['AWS::DynamoDB::Table', 'AWS::SQS::Queue'] } },
      },
    ]);
    const deniedTypes = denied[0]!.Condition!.StringEquals.ResourceType;
    expect(deniedTypes.every((type) => (DATA_TYPES as readonly string[]).includes(type))).toBe(true);
    expect(setOnce).toEqual(expect.arrayContaining(deniedTypes));
    expect(policy.Statement.filter((each) => each.Effect === 'Allow')).toEqual([
      { Effect: 'Allow', Action: 'Update:*', Principal: '*', Resource: '*' },
    ]);
  }, 60_000);
});

describe('upgrading a stack deployed by the version before these ids (test/infra/fixtures/)', () => {
  function earlier(name: string): TemplateJson {
    return JSON.parse(
      readFileSync(join(PROJECT_ROOT, 'test', 'infra', 'fixtures', `before-issue-20-${name}.json`), 'utf8'),
    ) as TemplateJson;
  }
  const now = (context: Context) => reduceTemplate(template(context));
  const pair = (queue: string, fn = 'IngestFunction83726A21') => `{"Fn::GetAtt":["${queue}","Arn"]} -> {"Ref":"${fn}"}`;
  const FIFO_QUEUE = 'IngestQueuesFifoQueueF931EF1C';
  const STANDARD_QUEUE = 'IngestQueuesStandardQueue6718FF40';

  it("the differ sees the earlier version's own switch fail: its current mapping moved queue and met the previous one", () => {
    // Act
    const { diff, conflicts } = update(earlier('standard'), earlier('fifo-switching'));

    // Assess: issue 20's first finding, found by the comparison.
    expect(diff.replaced).toEqual([
      expect.objectContaining({
        type: ESM,
        logicalId: 'IngestFunctionQueueSource482FD5C6',
        why: 'EventSourceArn changed (replacement)',
      }),
    ]);
    expect(conflicts).toEqual([
      `${pair(STANDARD_QUEUE)}: new IngestFunctionPreviousQueueSource34F33BB6, old IngestFunctionQueueSource482FD5C6`,
    ]);
  });

  it('a standard stack upgrades with nothing replaced', () => {
    // Act
    const { diff, conflicts } = update(earlier('standard'), now(STANDARD));

    // Assess
    expect(diff.replaced).toEqual([]);
    expect(conflicts).toEqual([]);
  }, 60_000);

  it('a FIFO stack: the new FifoQueueSource meets the old QueueSource on the same queue (documented: delete the old mapping first)', () => {
    // Act
    const { data, conflicts } = update(earlier('fifo'), now(FIFO));

    // Assess
    expect(data).toEqual([]);
    expect(conflicts).toEqual([
      `${pair(FIFO_QUEUE)}: new IngestFunctionFifoQueueSource6C73D5D3, old IngestFunctionQueueSource482FD5C6`,
    ]);
  }, 60_000);

  it('a stack in the middle of a switch conflicts on both queues (documented: finish the switch first)', () => {
    // Act
    const { conflicts } = update(earlier('fifo-switching'), now(FIFO_KEEPING_STANDARD));

    // Assess
    expect(conflicts).toEqual([
      `${pair(FIFO_QUEUE)}: new IngestFunctionFifoQueueSource6C73D5D3, old IngestFunctionQueueSource482FD5C6`,
      `${pair(STANDARD_QUEUE)}: new IngestFunctionQueueSource482FD5C6, old IngestFunctionPreviousQueueSource34F33BB6`,
    ]);
  }, 60_000);

  it('a stack with a subscription: TRIM_HORIZON replaces its stream mapping, which meets the old one (documented: delete it first)', () => {
    // Act
    const { diff, data, conflicts } = update(earlier('example-projection'), now({ exampleProjection: 'true' }));

    // Assess
    const mapping = 'StreamSummarySubscriptionStreamSource3ADA445D';
    expect(data).toEqual([`${ESM} ${mapping}`]);
    expect(diff.replaced).toEqual([
      expect.objectContaining({ logicalId: mapping, why: 'StartingPosition changed (replacement)' }),
    ]);
    expect(conflicts).toEqual([
      `{"Fn::GetAtt":["EventTable23755758","StreamArn"]} -> {"Ref":"StreamSummarySubscriptionFunctionBF16E6C8"}: ` +
        `new ${mapping}, old ${mapping}`,
    ]);
  }, 60_000);
});
