import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_STACK_NAME, OutputIds } from '../../core/stack-outputs.ts';
import type { StoredEvent } from '../../core/store.ts';
import { LOCAL_ACCOUNT, LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import type { LocalStackState } from '../../local/state.ts';
import { StackProcess } from './support.ts';

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A stand-in for CloudFormation's DescribeStacks (AWS query protocol, XML), answering for one
 * stack whose outputs point at the local stack: so `--stack` runs its whole deployed-stack
 * path (outputs -> clients configured by region and AWS_ENDPOINT_URL_*) with no AWS account.
 */
async function startCloudFormation(
  stacks: Record<string, Record<string, string>>,
): Promise<{ server: Server; endpoint: string }> {
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const form = new URLSearchParams(body);
      const name = form.get('StackName') ?? '';
      const outputs = stacks[name];
      response.setHeader('content-type', 'text/xml');
      if (form.get('Action') !== 'DescribeStacks' || !outputs) {
        response.statusCode = 400;
        response.end(
          `<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${xml(name)} does not exist</Message></Error><RequestId>r</RequestId></ErrorResponse>`,
        );
        return;
      }
      const members = Object.entries(outputs)
        .map(([key, value]) => `<member><OutputKey>${key}</OutputKey><OutputValue>${xml(value)}</OutputValue></member>`)
        .join('');
      response.end(
        `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
          `<StackName>${xml(name)}</StackName><StackId>arn:aws:cloudformation:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stack/${xml(name)}/1</StackId>` +
          `<CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${members}</Outputs>` +
          `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeStacksResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('the CLI against a deployed stack (--stack), its outputs read from CloudFormation', () => {
  const stack = new StackProcess();
  let cloudFormation: { server: Server; endpoint: string };
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const state: LocalStackState = await stack.start(['--queue', 'fifo', '--concurrency', '2']);
    cloudFormation = await startCloudFormation({
      [DEFAULT_STACK_NAME]: {
        [OutputIds.queueUrl]: state.queueUrl,
        [OutputIds.deadLetterQueueUrl]: state.deadLetterQueueUrl,
        [OutputIds.tableName]: state.tableName,
        [OutputIds.stateMachineArn]: state.stateMachineArn,
        [OutputIds.queueMode]: 'fifo',
        [OutputIds.dashboardUrl]: 'https://console.aws.amazon.com/cloudwatch/home',
      },
      NotAnEventStore: { [OutputIds.tableName]: 'x' },
    });
    env = {
      // No local state file: only --stack can find the store.
      EVENTSTORE_DATA_DIR: `${stack.dataDir}/elsewhere`,
      AWS_ENDPOINT_URL_CLOUDFORMATION: cloudFormation.endpoint,
      AWS_ENDPOINT_URL_SQS: state.sqsEndpoint,
      AWS_ENDPOINT_URL_DYNAMODB: state.dynamoDbEndpoint,
      AWS_ENDPOINT_URL_SFN: state.sfnEndpoint,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    };
  });

  afterAll(async () => {
    await new Promise((resolve) => cloudFormation?.server.close(resolve));
    await stack.stop();
  });

  it('publishes, reads, shows stats and runs the redrive through the stack outputs', { timeout: 60_000 }, async () => {
    // Act
    const target = ['--stack', DEFAULT_STACK_NAME, '--region', LOCAL_REGION];
    const published = await stack.cli(
      [...target, 'publish', '--generate', '30', '--streams', '3', '--stream-prefix', 'deployed'],
      undefined,
      env,
    );
    let read: { version: number; events: StoredEvent[] } = { version: 0, events: [] };
    await waitUntil(
      async () => {
        read = JSON.parse(
          (await stack.cli([...target, 'read', 'deployed-2', '--json'], undefined, env)).stdout,
        ) as typeof read;
        return read.version === 10;
      },
      'deployed-2 at version 10',
      30_000,
      200,
    );
    const stats = await stack.cli([...target, 'stats'], undefined, env);
    const redrive = await stack.cli([...target, 'redrive', '--dry-run'], undefined, env);

    // Assess
    expect(published.stdout).toContain(
      `published 30 of 30 events to stack ${DEFAULT_STACK_NAME} (${LOCAL_REGION}) (fifo queue)`,
    );
    expect(read.events.map((event) => event.Data?.['sequence'])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(stats.stdout.split('\n')[0]).toBe(`stack ${DEFAULT_STACK_NAME} (${LOCAL_REGION}), fifo queue`);
    expect(stats.stdout).toContain('(approximate: DynamoDB refreshes ItemCount about every 6 hours)');
    expect(redrive.code).toBe(0);
    expect(redrive.stdout.split('\n')[0]).toBe('redrive succeeded (dry run: nothing changed)');
  });

  it("without --region, takes AWS_REGION, then AWS_DEFAULT_REGION, then the profile's region, like the AWS CLI", async () => {
    // Prepare: a shared config file with a default and a named profile, and no region in the environment.
    const folder = mkdtempSync(join(tmpdir(), 'event-store-aws-config-'));
    try {
      const config = join(folder, 'config');
      writeFileSync(config, '[default]\nregion = ap-south-2\n\n[profile ops]\nregion = eu-west-3\n');
      writeFileSync(join(folder, 'empty'), '[default]\noutput = json\n');
      // The local engines take any key; from the profile, as a user's would come.
      const keys = 'aws_access_key_id = local\naws_secret_access_key = local\n';
      writeFileSync(join(folder, 'credentials'), `[default]\n${keys}\n[ops]\n${keys}`);
      const files = { AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: join(folder, 'credentials') };
      // undefined removes a variable from the child's environment (the test runner sets AWS_REGION).
      const noRegion = {
        AWS_REGION: undefined,
        AWS_DEFAULT_REGION: undefined,
        AWS_PROFILE: undefined,
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
      };
      // publish touches SQS only (DynamoDB Local keeps tables apart per region, fauxqs does not).
      const firstLine = async (extra: NodeJS.ProcessEnv) => {
        const args = [
          '--stack',
          DEFAULT_STACK_NAME,
          'publish',
          '--generate',
          '1',
          '--streams',
          '1',
          '--stream-prefix',
          'region',
        ];
        const result = await stack.cli(args, undefined, { ...env, ...files, ...noRegion, ...extra });
        return result.code === 0 ? /^published .* \(fifo queue\)/.exec(result.stdout)?.[0] : result.stderr;
      };

      // Act
      const named = await firstLine({ AWS_PROFILE: 'ops' });
      const byDefault = await firstLine({});
      const defaultRegion = await firstLine({ AWS_PROFILE: 'ops', AWS_DEFAULT_REGION: 'sa-east-1' });
      const region = await firstLine({
        AWS_PROFILE: 'ops',
        AWS_DEFAULT_REGION: 'sa-east-1',
        AWS_REGION: 'ca-central-1',
      });
      const none = await firstLine({ AWS_CONFIG_FILE: join(folder, 'empty') });

      // Assess
      expect(named).toBe(`published 1 of 1 events to stack ${DEFAULT_STACK_NAME} (eu-west-3) (fifo queue)`);
      expect(byDefault).toBe(`published 1 of 1 events to stack ${DEFAULT_STACK_NAME} (ap-south-2) (fifo queue)`);
      expect(defaultRegion).toBe(`published 1 of 1 events to stack ${DEFAULT_STACK_NAME} (sa-east-1) (fifo queue)`);
      expect(region).toBe(`published 1 of 1 events to stack ${DEFAULT_STACK_NAME} (ca-central-1) (fifo queue)`);
      expect(none).toBe(
        'eventstore: no AWS region: pass --region, set AWS_REGION, or set a region in your AWS profile (aws configure set region ...)\n',
      );
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('says which stack it cannot read, and which output is missing', async () => {
    // Act
    const missing = await stack.cli(['--stack', 'Nope', '--region', LOCAL_REGION, 'stats'], undefined, env);
    const wrong = await stack.cli(['--stack', 'NotAnEventStore', '--region', LOCAL_REGION, 'stats'], undefined, env);

    // Assess
    expect(missing).toMatchObject({
      code: 1,
      stderr: `eventstore: cannot read stack Nope in ${LOCAL_REGION}: Stack with id Nope does not exist\n`,
    });
    expect(wrong).toMatchObject({
      code: 1,
      stderr: `eventstore: stack NotAnEventStore has no output ${OutputIds.queueUrl}: is it an event store stack?\n`,
    });
  });
});
