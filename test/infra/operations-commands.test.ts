import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_STACK_NAME } from '../../core/stack-outputs.ts';
import { PROJECT_ROOT } from '../../infra/project-root.ts';
import { buildApp, synthesizeTemplate } from '../../infra/synth.ts';
import { deployedState, FAKE_REGION, startFakeAws, type FakeAwsState } from './support/fake-aws.ts';
import {
  concurrentMappingConflicts,
  diffTemplates,
  reduceTemplate,
  type TemplateJson,
} from './support/template-diff.ts';

/**
 * The manual steps of docs/OPERATIONS.md ("Upgrading a stack deployed by an earlier version", "A
 * failed first deploy"), run as written by bash and the real AWS CLI (awscli, on this project's
 * machines) against a stand-in for the AWS APIs they call (test/infra/support/fake-aws.ts: there is
 * no AWS account here). `npx` and `sleep` are stand-ins too: they only write what they were asked
 * to a log, so the test reads the order of every call. What the steps must do is read off the
 * templates: the mappings they delete are exactly those the upgrade-path differ finds in conflict
 * (test/infra/upgrade-paths.test.ts), and the deploy starts only once Lambda has deleted them.
 */

/** The stack name the documented commands use (the default). */
const STACK = DEFAULT_STACK_NAME;
const ESM = 'AWS::Lambda::EventSourceMapping';

/** The one bash block of docs/OPERATIONS.md that contains every fragment. */
function documentedBlock(...fragments: string[]): string {
  const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
  const blocks = [...doc.matchAll(/^( *)```bash\n([\s\S]*?)^\1```$/gm)].map(([, indent, body]) =>
    body!.replace(new RegExp(`^${indent}`, 'gm'), ''),
  );
  const found = blocks.filter((block) => fragments.every((fragment) => block.includes(fragment)));
  expect(found, `one bash block with ${fragments.join(', ')}`).toHaveLength(1);
  return found[0]!;
}

const work = mkdtempSync(join(tmpdir(), 'event-store-ops-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Run a documented block against `state`; every call, in order, from the log. */
async function runDocumented(block: string, state: FakeAwsState): Promise<{ code: number; calls: string[] }> {
  const dir = mkdtempSync(join(work, 'run-'));
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  for (const tool of ['npx', 'sleep']) {
    writeFileSync(join(dir, tool), `#!/bin/sh\nprintf '${tool} %s\\n' "$*" >> "$FAKE_LOG"\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  const fake = await startFakeAws(state, log);
  try {
    const env = {
      ...process.env,
      // The machines' awscli comes with their Python (pyenv); its shims last, in case PATH lacks them.
      PATH: [
        dir,
        process.env['PATH'] ?? '',
        join(process.env['PYENV_ROOT'] ?? join(homedir(), '.pyenv'), 'shims'),
      ].join(delimiter),
      FAKE_LOG: log,
      AWS_ENDPOINT_URL: fake.url,
      AWS_ACCESS_KEY_ID: 'fake',
      AWS_SECRET_ACCESS_KEY: 'fake',
      AWS_DEFAULT_REGION: FAKE_REGION,
      AWS_CONFIG_FILE: join(dir, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    };
    await promisify(execFile)('aws', ['--version'], { env }).catch((error: unknown) => {
      throw new Error(`the AWS CLI (aws) is needed to run docs/OPERATIONS.md's commands: ${String(error)}`);
    });
    const code = await new Promise<number>((resolve) => {
      execFile('bash', ['-c', block], { env, timeout: 580_000 }, (error) =>
        resolve(error ? Number((error as { code?: number }).code ?? 1) : 0),
      );
    });
    return { code, calls: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
  } finally {
    await fake.close();
  }
}

/** The logical ids of the mappings the update would hold twice, on the deployed ("old") side. */
function conflictingOldMappings(before: TemplateJson, after: TemplateJson): string[] {
  const conflicts = concurrentMappingConflicts(before, after, diffTemplates(before, after));
  return [...new Set(conflicts.flatMap((each) => [...each.matchAll(/old (\w+)/g)].map(([, id]) => id!)))].sort();
}

/** What the log says: mappings deleted, when each was last seen gone, when the deploy ran. */
function assessDeletesThenDeploy(calls: string[], state: FakeAwsState, expectedIds: string[]): string {
  const uuidOf = (id: string) => state.resources.find((each) => each.logicalId === id)!.physicalId;
  const deleted = calls.filter((call) => call.startsWith('lambda DeleteEventSourceMapping'));
  const deploys = calls.map((call, index) => [call, index] as const).filter(([call]) => call.startsWith('npx '));
  expect(deleted.sort()).toEqual(
    expectedIds.map((id) => `lambda DeleteEventSourceMapping ${uuidOf(id)} -> Deleting`).sort(),
  );
  expect(deploys).toHaveLength(1);
  const [deploy, at] = deploys[0]!;
  for (const id of expectedIds) {
    // Lambda said the mapping was gone before the deploy began, not only that it was Deleting.
    const gone = calls.indexOf(`lambda GetEventSourceMapping ${uuidOf(id)} -> not found`);
    expect(gone, `${id} seen gone before the deploy`).toBeGreaterThanOrEqual(0);
    expect(gone).toBeLessThan(at);
  }
  expect(state.mappings.map((each) => each.uuid)).not.toEqual(expect.arrayContaining(expectedIds.map(uuidOf)));
  return deploy;
}

function earlierFixture(name: string): TemplateJson {
  const path = join(PROJECT_ROOT, 'test', 'infra', 'fixtures', `before-issue-20-${name}.json`);
  return JSON.parse(readFileSync(path, 'utf8')) as TemplateJson;
}

describe("docs/OPERATIONS.md's upgrade steps, run with the AWS CLI", () => {
  it('a FIFO stack of the earlier version: deletes exactly the mapping the upgrade conflicts on, waits until Lambda has deleted it, then deploys FIFO', async () => {
    // Prepare
    const before = earlierFixture('fifo');
    const expected = conflictingOldMappings(before, reduceTemplate(synthesizeTemplate({ queue: 'fifo' }) as never));
    const state = deployedState(STACK, before);
    const block = documentedBlock('delete-event-source-mapping', 'queue=fifo');

    // Act
    const { code, calls } = await runDocumented(block, state);

    // Assess
    expect(expected).toEqual(['IngestFunctionQueueSource482FD5C6']);
    expect(code).toBe(0);
    const deploy = assessDeletesThenDeploy(calls, state, expected);
    expect(deploy).toMatch(/^npx cdk deploy\b.*-c queue=fifo/);
    expect(deploy).toContain(`-c stackName=${STACK}`);
  }, 600_000);

  it('a stack with six subscriptions (over 100 resources): deletes every stream mapping the upgrade conflicts on and nothing else, waiting for each', async () => {
    // Prepare: the current stack, its stream mappings at LATEST as the earlier version deployed them.
    const { app, stack } = buildApp(
      { exampleProjection: 'true' },
      { bundle: false, outdir: mkdtempSync(join(work, 'synth-')) },
    );
    for (const name of ['Orders', 'Billing', 'Shipping', 'Audit', 'Search']) {
      stack.addSubscription(name, { entry: 'handlers/stream-summary-projection.ts' });
    }
    const now = app.synth().getStackArtifact(stack.artifactId).template as TemplateJson;
    const before = structuredClone(now) as {
      Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
    };
    for (const resource of Object.values(before.Resources)) {
      if (resource.Type === ESM && resource.Properties?.['StartingPosition'])
        resource.Properties['StartingPosition'] = 'LATEST';
    }
    const expected = conflictingOldMappings(before, now);
    const state = deployedState(STACK, before);
    const block = documentedBlock('delete-event-source-mapping', 'StreamSource');

    // Act
    const { code, calls } = await runDocumented(block, state);

    // Assess
    expect(expected).toHaveLength(6);
    // At least one of them is listed after the 100th resource (describe-stack-resources would miss it).
    expect(
      Math.max(...expected.map((id) => state.resources.findIndex((each) => each.logicalId === id))),
    ).toBeGreaterThanOrEqual(100);
    expect(code).toBe(0);
    const deploy = assessDeletesThenDeploy(calls, state, expected);
    expect(deploy).toMatch(/^npx cdk deploy\b/);
    expect(deploy).toContain(`-c stackName=${STACK}`);
    // The ingest mapping (updated in place by the upgrade) is still there.
    expect(state.mappings.filter((each) => each.eventSourceArn.includes(':sqs:'))).toHaveLength(1);
  }, 600_000);
});

describe("docs/OPERATIONS.md's recovery from a failed first deploy, run with the AWS CLI", () => {
  it('finds the table that failed to delete, counts its items, lifts its deletion protection, deletes it, then deploys again', async () => {
    // Prepare: the rollback deleted everything but the protected table.
    const template = synthesizeTemplate({ exampleProjection: 'true' }) as unknown as TemplateJson;
    const state = deployedState(STACK, template, 'DELETE_COMPLETE');
    const index = state.resources.findIndex((each) => each.logicalId.startsWith('EventTable'));
    const table = { ...state.resources[index]!, status: 'DELETE_FAILED' };
    state.resources[index] = table;
    for (const other of state.resources.filter((each) => each.type === 'AWS::DynamoDB::Table' && each !== table)) {
      state.tables.delete(other.physicalId);
    }
    const block = documentedBlock('DELETE_FAILED', 'delete-table');

    // Act
    const { code, calls } = await runDocumented(block, state);

    // Assess
    expect(code).toBe(0);
    const dynamodb = calls.filter((call) => call.startsWith('dynamodb '));
    expect(dynamodb.map((call) => call.split(' ')[1])).toEqual(['Scan', 'UpdateTable', 'DescribeTable', 'DeleteTable']);
    expect(JSON.parse(dynamodb[0]!.slice('dynamodb Scan '.length))).toMatchObject({
      TableName: table.physicalId,
      Select: 'COUNT',
    });
    expect(JSON.parse(dynamodb[1]!.slice('dynamodb UpdateTable '.length))).toEqual({
      TableName: table.physicalId,
      DeletionProtectionEnabled: false,
    });
    expect(JSON.parse(dynamodb[3]!.slice('dynamodb DeleteTable '.length))).toEqual({ TableName: table.physicalId });
    expect(state.tables.has(table.physicalId)).toBe(false);
    const deploys = calls.filter((call) => call.startsWith('npx '));
    expect(deploys).toEqual([expect.stringMatching(new RegExp(`^npx cdk deploy -c stackName=${STACK}\\b`))]);
    expect(calls.indexOf(deploys[0]!)).toBeGreaterThan(
      calls.findIndex((call) => call.startsWith('dynamodb DeleteTable')),
    );
  }, 600_000);
});
