/**
 * The event store a command works on: the running local stack (its state file), or a deployed
 * stack (its CloudFormation outputs), chosen by the target options of cli/options.ts.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Command } from 'commander';
import { FIFO_SUFFIX, isQueueMode, QueueMode } from '../core/queue-mode.ts';
import { OutputIds, REQUIRED_OUTPUT_IDS } from '../core/stack-outputs.ts';
import { LOCAL_CREDENTIALS } from '../local/defaults.ts';
import { dataDirectory, readStateFile, runningStack } from '../local/state.ts';
import { CliError } from './errors.ts';
import type { TargetOptions } from './options.ts';

/** The event store a command works on: the local stack, or a deployed CloudFormation stack. */
export interface Target {
  readonly kind: 'local' | 'aws';
  /** What to call it in messages. */
  readonly label: string;
  readonly region: string;
  readonly queueMode: QueueMode;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly tableName: string;
  readonly stateMachineArn: string;
  readonly dynamo: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly sfn: SFNClient;
  /** Destroy the SDK clients (so the process can exit). */
  close(): void;
}

function queueModeOf(value: string | undefined, queueUrl: string): QueueMode {
  if (isQueueMode(value)) return value;
  return queueUrl.endsWith(FIFO_SUFFIX) ? QueueMode.fifo : QueueMode.standard;
}

/**
 * The region of a deployed stack, looked up as the AWS CLI does: `--region`, then AWS_REGION,
 * then AWS_DEFAULT_REGION, then the `region` of the profile (AWS_PROFILE, else `default`) in
 * the shared config file (~/.aws/config or AWS_CONFIG_FILE), which the SDK's own region provider
 * reads.
 *
 * @throws CliError when none of them names a region.
 */
export async function resolveRegion(explicit: string | undefined): Promise<string> {
  const named = [explicit, process.env['AWS_REGION'], process.env['AWS_DEFAULT_REGION']].find((value) => value);
  if (named) return named;
  const probe = new CloudFormationClient({});
  try {
    const region = await probe.config.region();
    if (region) return region;
  } catch {
    // No region in the profile either: said below.
  } finally {
    probe.destroy();
  }
  throw new CliError(
    'no AWS region: pass --region, set AWS_REGION, or set a region in your AWS profile (aws configure set region ...)',
  );
}

async function deployedTarget(stackName: string, region: string | undefined): Promise<Target> {
  const resolvedRegion = await resolveRegion(region);
  const cloudFormation = new CloudFormationClient({ region: resolvedRegion });
  let outputs: Record<string, string>;
  try {
    const described = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = described.Stacks?.[0];
    if (!stack) throw new CliError(`stack ${stackName} not found in ${resolvedRegion}`);
    outputs = Object.fromEntries(
      (stack.Outputs ?? []).map((output) => [output.OutputKey ?? '', output.OutputValue ?? '']),
    );
  } catch (error) {
    if (error instanceof CliError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError(`cannot read stack ${stackName} in ${resolvedRegion}: ${message}`, { cause: error });
  } finally {
    cloudFormation.destroy();
  }
  for (const key of REQUIRED_OUTPUT_IDS) {
    if (!outputs[key]) throw new CliError(`stack ${stackName} has no output ${key}: is it an event store stack?`);
  }
  const dynamo = new DynamoDBClient({ region: resolvedRegion });
  const sqs = new SQSClient({ region: resolvedRegion });
  const sfn = new SFNClient({ region: resolvedRegion });
  return {
    kind: 'aws',
    label: `stack ${stackName} (${resolvedRegion})`,
    region: resolvedRegion,
    queueMode: queueModeOf(outputs[OutputIds.queueMode], outputs[OutputIds.queueUrl]!),
    queueUrl: outputs[OutputIds.queueUrl]!,
    deadLetterQueueUrl: outputs[OutputIds.deadLetterQueueUrl]!,
    tableName: outputs[OutputIds.tableName]!,
    stateMachineArn: outputs[OutputIds.stateMachineArn]!,
    dynamo,
    sqs,
    sfn,
    close: () => destroyAll(dynamo, sqs, sfn),
  };
}

/** End the clients' keep-alive sockets so the CLI process can exit. */
function destroyAll(...clients: readonly { destroy(): void }[]): void {
  for (const client of clients) client.destroy();
}

function localTarget(dataDir: string | undefined): Target {
  const folder = dataDirectory(dataDir);
  const state = runningStack(folder);
  if (!state) {
    const stale = readStateFile(folder) ? ' (its state file is left from a stack that stopped)' : '';
    throw new CliError(`the local stack is not running${stale}; start it with npm start`);
  }
  const credentials = LOCAL_CREDENTIALS;
  const region = state.region;
  const dynamo = new DynamoDBClient({ endpoint: state.dynamoDbEndpoint, region, credentials });
  const sqs = new SQSClient({ endpoint: state.sqsEndpoint, region, credentials });
  const sfn = new SFNClient({ endpoint: state.sfnEndpoint, region, credentials });
  return {
    kind: 'local',
    label: 'the local stack',
    region,
    queueMode: state.queueMode,
    queueUrl: state.queueUrl,
    deadLetterQueueUrl: state.deadLetterQueueUrl,
    tableName: state.tableName,
    stateMachineArn: state.stateMachineArn,
    dynamo,
    sqs,
    sfn,
    close: () => destroyAll(dynamo, sqs, sfn),
  };
}

/** The running local stack by default; a deployed stack with `--stack NAME [--region R]`. */
export async function resolveTarget(options: TargetOptions): Promise<Target> {
  return options.stack ? deployedTarget(options.stack, options.region) : localTarget(options.dataDir);
}

/** Run a command against its target (from the program's target options), and always close the target's clients. */
export async function withTarget(command: Command, action: (target: Target) => Promise<void>): Promise<void> {
  const target = await resolveTarget(command.optsWithGlobals<TargetOptions>());
  try {
    await action(target);
  } finally {
    target.close();
  }
}
