/**
 * Run the redrive state machine that the CDK app synthesizes, on one machine: its definition
 * is taken from the CloudFormation template, its tokens resolved to local queue URLs, and it
 * is executed by `aws-local-stepfunctions` with every Task bound to the local SQS server
 * (`aws-sdk:sqs:*` -> the matching `@aws-sdk/client-sqs` command) and the Lambda Task to the
 * handler module itself. Used by the tests and by the local mode.
 */
import * as sqsSdk from '@aws-sdk/client-sqs';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { handler as redrivePrepare, type RedrivePrepareEvent } from '../handlers/redrive-prepare.ts';

const LOCAL_REGION = 'us-east-1';
const LOCAL_ACCOUNT = '000000000000';
const SDK_TASK = /^arn:aws:states:::aws-sdk:sqs:([a-zA-Z]+)$/;

/** A CloudFormation template as JSON (what `synthesizeTemplate` or `Template.toJSON()` returns). */
export type CfnTemplate = Readonly<Record<string, unknown>>;

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

export interface LocalQueueUrls {
  /** The ingest queue the workflow sends back to. */
  readonly source: string;
  /** The dead-letter queue it drains. */
  readonly deadLetter: string;
}

function resourcesOf(template: CfnTemplate): Record<string, CfnResource> {
  const resources = template['Resources'];
  if (resources === null || typeof resources !== 'object') throw new Error('not a CloudFormation template: no Resources');
  return resources as Record<string, CfnResource>;
}

function queueNameOf(url: string): string {
  return url.replace(/\/$/, '').split('/').pop() ?? url;
}

/** The local ARN the definition gets for a Lambda function of the template. */
export function localFunctionArn(logicalId: string): string {
  return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${logicalId}`;
}

/**
 * Take the state machine's definition out of a synthesized template and resolve its tokens:
 * `Ref` of a queue -> its local URL, `Fn::GetAtt [queue, Arn]` -> a local ARN, `Fn::GetAtt
 * [function, Arn]` -> `localFunctionArn(id)`, pseudo parameters -> local values. The queue with
 * a `RedrivePolicy` is the source queue; the queue it names is the DLQ.
 *
 * @example
 * ```ts
 * const definition = redriveDefinitionFrom(synthesizeTemplate({ queue: 'fifo' }), { source, deadLetter });
 * ```
 */
export function redriveDefinitionFrom(template: CfnTemplate, queueUrls: LocalQueueUrls): StateMachineDefinition {
  const resources = resourcesOf(template);
  const machines = Object.entries(resources).filter(([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one AWS::StepFunctions::StateMachine in the template, found ${machines.length}`);
  const sourceEntry = Object.entries(resources).find(
    ([, resource]) => resource.Type === 'AWS::SQS::Queue' && resource.Properties?.['RedrivePolicy'] !== undefined,
  );
  if (!sourceEntry) throw new Error('no AWS::SQS::Queue with a RedrivePolicy (the source queue) in the template');
  const target = (sourceEntry[1].Properties?.['RedrivePolicy'] as { deadLetterTargetArn?: { 'Fn::GetAtt'?: [string, string] } })
    .deadLetterTargetArn?.['Fn::GetAtt']?.[0];
  if (!target) throw new Error('the source queue\'s RedrivePolicy does not name the DLQ with Fn::GetAtt');
  const urls: Record<string, string> = { [sourceEntry[0]]: queueUrls.source, [target]: queueUrls.deadLetter };

  const resolve = (part: unknown): string => {
    if (typeof part === 'string') return part;
    const node = part as Record<string, unknown>;
    if (typeof node['Ref'] === 'string') {
      const ref = node['Ref'];
      if (ref === 'AWS::Partition') return 'aws';
      if (ref === 'AWS::Region') return LOCAL_REGION;
      if (ref === 'AWS::AccountId') return LOCAL_ACCOUNT;
      if (ref === 'AWS::URLSuffix') return 'amazonaws.com';
      const url = urls[ref];
      if (url) return url;
      throw new Error(`cannot resolve Ref ${ref} in the state machine definition`);
    }
    const getAtt = node['Fn::GetAtt'];
    if (Array.isArray(getAtt)) {
      const [id, attribute] = getAtt as [string, string];
      const type = resources[id]?.Type;
      const url = urls[id];
      if (type === 'AWS::SQS::Queue' && url && attribute === 'Arn') {
        return `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${queueNameOf(url)}`;
      }
      if (type === 'AWS::SQS::Queue' && url && attribute === 'QueueName') return queueNameOf(url);
      if (type === 'AWS::SQS::Queue' && url && attribute === 'QueueUrl') return url;
      if (type === 'AWS::Lambda::Function' && attribute === 'Arn') return localFunctionArn(id);
      throw new Error(`cannot resolve Fn::GetAtt ${id}.${attribute} in the state machine definition`);
    }
    throw new Error(`cannot resolve ${JSON.stringify(part)} in the state machine definition`);
  };

  const raw = machines[0]![1].Properties?.['DefinitionString'];
  let text: string;
  if (typeof raw === 'string') text = raw;
  else if (raw && typeof raw === 'object' && Array.isArray((raw as Record<string, unknown>)['Fn::Join'])) {
    const [separator, parts] = (raw as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    text = parts.map(resolve).join(separator);
  } else throw new Error('the state machine has no DefinitionString the local runner understands');
  return JSON.parse(text) as StateMachineDefinition;
}

type RunOptions = NonNullable<Parameters<StateMachine['run']>[1]>;
type LibraryTaskHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;

/** A Task override: what aws-local-stepfunctions calls instead of the Task's resource. */
export type LocalTaskHandler = (input: unknown) => Promise<unknown>;

interface AnyState {
  readonly Type?: string;
  readonly Resource?: string;
  readonly ItemProcessor?: { States: Record<string, AnyState> };
  readonly Iterator?: { States: Record<string, AnyState> };
  readonly Branches?: { States: Record<string, AnyState> }[];
}

/** Every Task in a definition, Map and Parallel bodies included: state name -> Resource. */
export function taskResources(definition: { States: Record<string, unknown> }): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (states: Record<string, AnyState>): void => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Task' && state.Resource) found[name] = state.Resource;
      const inner = state.ItemProcessor ?? state.Iterator;
      if (inner) walk(inner.States);
      for (const branch of state.Branches ?? []) walk(branch.States);
    }
  };
  walk(definition.States as Record<string, AnyState>);
  return found;
}

/** Step Functions names SDK errors `Sqs.<Name>Exception`; make local errors look the same. */
function stepFunctionsError(error: unknown): Error {
  const original = error instanceof Error ? error : new Error(String(error));
  let name = original.name.replace(/^AWS\.SimpleQueueService\./, '').replace(/^com\.amazonaws\.sqs#/, '');
  if (!name.endsWith('Exception')) name = `${name}Exception`;
  const mapped = new Error(original.message, { cause: original });
  mapped.name = `Sqs.${name}`;
  return mapped;
}

/** Any command of the SQS client, by its constructor (the generic send signature cannot be named per action here). */
type SqsCommandClass = new (input: unknown) => Parameters<SQSClient['send']>[0];

function sqsTask(client: SQSClient, action: string): LocalTaskHandler {
  const commandName = `${action.charAt(0).toUpperCase()}${action.slice(1)}Command`;
  // The client module exports one command class per action; look it up by name as Step Functions does.
  const Command = (sqsSdk as unknown as Record<string, unknown>)[commandName] as SqsCommandClass | undefined;
  if (typeof Command !== 'function') throw new Error(`@aws-sdk/client-sqs has no ${commandName}`);
  return async (input) => {
    try {
      const output = (await client.send(new Command(input))) as unknown as Record<string, unknown>;
      const { $metadata: _metadata, ...rest } = output;
      return JSON.parse(JSON.stringify(rest)) as unknown;
    } catch (error) {
      throw stepFunctionsError(error);
    }
  };
}

const lambdaTask: LocalTaskHandler = async (input) => {
  // `arn:aws:states:::lambda:invoke` wraps the payload; a bare function ARN does not.
  const wrapped = input !== null && typeof input === 'object' && 'Payload' in input && 'FunctionName' in input;
  const payload = (wrapped ? (input as { Payload: unknown }).Payload : input) as RedrivePrepareEvent;
  const result = await redrivePrepare(payload);
  return wrapped ? { Payload: result, StatusCode: 200 } : result;
};

export interface RunLocalRedriveOptions {
  /** The synthesized template that holds the redrive state machine. */
  readonly template: CfnTemplate;
  /** The local SQS endpoint, e.g. `http://127.0.0.1:4566`. */
  readonly sqsEndpoint: string;
  /** Loopback URLs of the queues (see local/engines/sqs-local.ts `localQueueUrl`). */
  readonly queueUrls: LocalQueueUrls;
  /** The execution input (`{}` for all defaults). */
  readonly input: unknown;
  /** Use this client instead of one made for `sqsEndpoint` (tests inject faults with it). */
  readonly sqsClient?: SQSClient;
  /** Replace the Retry pauses by this many ms (tests); real intervals when absent. */
  readonly retryPauseMs?: number;
}

export type LocalExecutionResult =
  | { readonly status: 'SUCCEEDED'; readonly output: unknown }
  | { readonly status: 'FAILED'; readonly error: string; readonly cause: string };

/**
 * Execute the redrive state machine of `template` locally and wait for it to end.
 *
 * @example
 * ```ts
 * const result = await runLocalRedrive({ template, sqsEndpoint, queueUrls: { source, deadLetter }, input: {} });
 * if (result.status === 'SUCCEEDED') console.log(result.output);
 * ```
 */
export async function runLocalRedrive(options: RunLocalRedriveOptions): Promise<LocalExecutionResult> {
  const definition = redriveDefinitionFrom(options.template, options.queueUrls);
  const ownClient = options.sqsClient === undefined;
  const client =
    options.sqsClient ??
    new SQSClient({
      endpoint: options.sqsEndpoint,
      region: process.env['AWS_REGION'] ?? LOCAL_REGION,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  try {
    const handlers: Record<string, LocalTaskHandler> = {};
    const retryIntervalOverrides: Record<string, number> = {};
    for (const [name, resource] of Object.entries(taskResources(definition))) {
      const sdk = SDK_TASK.exec(resource);
      if (sdk) handlers[name] = sqsTask(client, sdk[1]!);
      else if (resource.startsWith('arn:aws:lambda:') || resource.startsWith('arn:aws:states:::lambda:invoke')) handlers[name] = lambdaTask;
      else throw new Error(`no local binding for Task ${name} (${resource})`);
      if (options.retryPauseMs !== undefined) retryIntervalOverrides[name] = options.retryPauseMs;
    }
    const machine = new StateMachine(definition, { validationOptions: { checkPaths: true, checkArn: true } });
    const execution = machine.run(options.input as Parameters<StateMachine['run']>[0], {
      // Our handlers take and return JSON; the library's JSONValue type is not exported.
      overrides: { taskResourceLocalHandlers: handlers as unknown as LibraryTaskHandlers, retryIntervalOverrides },
    });
    try {
      return { status: 'SUCCEEDED', output: await execution.result };
    } catch (error) {
      if (error instanceof ExecutionError && error.cause instanceof Error) {
        return { status: 'FAILED', error: error.cause.name, cause: error.cause.message };
      }
      throw error;
    }
  } finally {
    if (ownClient) client.destroy();
  }
}
