/**
 * Run the redrive state machine that the CDK app synthesizes, on one machine: its definition
 * is taken from the CloudFormation template, its tokens resolved to local queue URLs, and it
 * is executed by `aws-local-stepfunctions` with its Lambda Task bound to the handler itself
 * (its SQS calls to the local SQS server) and `startExecution.sync:2` to a nested local
 * execution. The runner enforces what the library does not: Step Functions' 256 KiB limit on
 * a state's input and output (`States.DataLimitExceeded`) and 25,000 history events per
 * execution, counted as AWS counts them (`historyEventsOf`). Used by the tests and the local mode.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { ExecutionAbortedError, ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { randomUUID } from 'node:crypto';
import { SqsRedriveQueues } from '../adapters/sqs-redrive-queues.ts';
import { HistoryEvents, type RedriveQueues } from '../core/redrive.ts';
import { createRedriveHandler, type RedriveEvent } from '../handlers/redrive.ts';
import { LOCAL_ACCOUNT, LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/defaults.ts';

const START_EXECUTION_SYNC = /^arn:aws:states:::states:startExecution\.sync(:2)?$/;
/** Step Functions' limit on a state's input, output and a task's result: 256 KiB of UTF-8. */
export const MAX_STATE_BYTES = 256 * 1024;

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
type LibraryEvent = Awaited<ReturnType<ReturnType<StateMachine['run']>['eventLogs']['next']>>['value'];

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

/** One event of an execution's history, as GetExecutionHistory returns it (details left out). */
export interface HistoryEvent {
  readonly id: number;
  readonly previousEventId: number;
  readonly timestamp: number;
  readonly type: string;
  readonly stateName?: string;
}

/**
 * The AWS history event types one library event stands for. AWS writes, per Task:
 * TaskStateEntered, then Scheduled and Started (LambdaFunction* for a function ARN, Task*
 * otherwise, plus TaskSubmitted for a `.sync` integration), then Succeeded or Failed, then
 * TaskStateExited (also after a caught failure); each retry adds Scheduled and Started again.
 * A Fail state writes FailStateEntered and the execution's ExecutionFailed. Map states add
 * MapStateStarted/MapStateSucceeded and one MapIteration event per iteration start and end.
 */
function awsTypes(event: NonNullable<LibraryEvent>, resources: Readonly<Record<string, string>>, caught: Set<string>): string[] {
  if (!('state' in event)) {
    switch (event.type) {
      case 'ExecutionStarted':
      case 'ExecutionSucceeded':
      case 'ExecutionFailed':
      case 'MapIterationStarted':
      case 'MapIterationSucceeded':
      case 'MapIterationFailed':
        return [event.type];
      default:
        return [];
    }
  }
  const { name, type } = event.state;
  const resource = resources[name] ?? '';
  const lambda = resource.startsWith('arn:aws:lambda:');
  const prefix = lambda ? 'LambdaFunction' : 'Task';
  const started = [`${prefix}Scheduled`, `${prefix}Started`, ...(/\.sync(:2)?$/.test(resource) ? ['TaskSubmitted'] : [])];
  const key = `${name}#${event.index ?? ''}`;
  switch (event.type) {
    case 'StateEntered':
      if (type === 'Task') return ['TaskStateEntered', ...started];
      if (type === 'Map') return ['MapStateEntered', 'MapStateStarted'];
      return [`${type}StateEntered`];
    case 'StateFailed':
      return type === 'Task' ? [`${prefix}Failed`] : type === 'Map' ? ['MapStateFailed'] : [];
    case 'StateRetried':
      return type === 'Task' ? started : [];
    case 'StateCaught':
      caught.add(key);
      return [];
    case 'StateExited':
      if (type === 'Task') {
        const wasCaught = caught.delete(key);
        return [...(wasCaught ? [] : [`${prefix}Succeeded`]), 'TaskStateExited'];
      }
      if (type === 'Map') return ['MapStateSucceeded', 'MapStateExited'];
      return [`${type}StateExited`];
    default:
      return [];
  }
}

function utf8Bytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null) ?? 'null', 'utf8');
}

/** An error as Step Functions names it (`States.DataLimitExceeded`, `Sqs.…`). */
export class LocalStatesError extends Error {
  public constructor(name: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = name;
  }
}

/** One execution the runner ran (the first, and every successor it started). */
export interface LocalExecution {
  readonly executionArn: string;
  readonly name: string;
  readonly input: unknown;
  readonly startDate: number;
  stopDate?: number;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  output?: unknown;
  error?: string;
  cause?: string;
  /** Its history, counted and typed as AWS writes it. */
  readonly history: HistoryEvent[];
}

export interface RunLocalRedriveOptions {
  /** The synthesized template that holds the redrive state machine. */
  readonly template: CfnTemplate;
  /** The local SQS endpoint, e.g. `http://127.0.0.1:4566`. */
  readonly sqsEndpoint: string;
  /** Loopback URLs of the queues (see local/engines/sqs-local.ts `localQueueUrl`). */
  readonly queueUrls: LocalQueueUrls;
  /** The execution input (`{}` for all defaults). */
  readonly input: unknown;
  /** Use this client instead of one made for `sqsEndpoint`. */
  readonly sqsClient?: SQSClient;
  /** Wrap the Lambda's SQS calls (fault tests inject failures a real engine cannot produce). */
  readonly wrapQueues?: (queues: RedriveQueues) => RedriveQueues;
  /** Replace the Retry pauses by this many ms (tests); real intervals when absent. */
  readonly retryPauseMs?: number;
  /** The state machine's ARN (the local Step Functions API's). @default a local ARN named Redrive */
  readonly stateMachineArn?: string;
  /** The first execution's name. @default a random UUID */
  readonly name?: string;
  /** Called when an execution starts (the first and each successor), for the local Step Functions API. */
  readonly onExecution?: (execution: LocalExecution) => void;
  /** History events allowed per execution (tests lower it together with `historyLimit` of the handler). @default 25,000 */
  readonly maxHistoryEvents?: number;
  /** What the Lambda believes the quota is (it starts a successor before). @default HistoryEvents.limit */
  readonly handlerHistoryLimit?: number;
}

export type LocalExecutionResult =
  | { readonly status: 'SUCCEEDED'; readonly output: unknown; readonly executions: readonly LocalExecution[] }
  | { readonly status: 'FAILED'; readonly error: string; readonly cause: string; readonly executions: readonly LocalExecution[] };

/**
 * Execute the redrive state machine of `template` locally and wait for it (and every successor
 * it starts) to end.
 *
 * @example
 * ```ts
 * const result = await runLocalRedrive({ template, sqsEndpoint, queueUrls: { source, deadLetter }, input: {} });
 * if (result.status === 'SUCCEEDED') console.log(result.output);
 * ```
 */
export async function runLocalRedrive(options: RunLocalRedriveOptions): Promise<LocalExecutionResult> {
  const definition = redriveDefinitionFrom(options.template, options.queueUrls);
  const resources = taskResources(definition);
  const stateMachineArn = options.stateMachineArn ?? `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:Redrive`;
  const ownClient = options.sqsClient === undefined;
  const client =
    options.sqsClient ??
    new SQSClient({
      endpoint: options.sqsEndpoint,
      region: process.env['AWS_REGION'] ?? LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
  const queues = new SqsRedriveQueues({
    client,
    deadLetterQueueUrl: options.queueUrls.deadLetter,
    sourceQueueUrl: options.queueUrls.source,
  });
  const handle = createRedriveHandler({
    queues: options.wrapQueues ? options.wrapQueues(queues) : queues,
    fifo: options.queueUrls.source.endsWith('.fifo'),
    ...(options.handlerHistoryLimit !== undefined ? { historyLimit: options.handlerHistoryLimit } : {}),
  });
  const maxEvents = options.maxHistoryEvents ?? HistoryEvents.limit;
  const executions: LocalExecution[] = [];
  const machine = new StateMachine(definition, { validationOptions: { checkPaths: true, checkArn: true } });

  async function execute(input: unknown, name: string): Promise<LocalExecution> {
    const executionArn = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
    const execution: LocalExecution = { executionArn, name, input, startDate: Date.now(), status: 'RUNNING', history: [] };
    executions.push(execution);
    options.onExecution?.(execution);
    // The first breach of a quota: terminal, as on AWS (States.ALL does not catch it).
    let fatal: LocalStatesError | undefined;
    let abort = (): void => undefined;
    const breach = (error: LocalStatesError): never => {
      fatal ??= error;
      abort();
      throw fatal;
    };
    const checkSize = (what: string, value: unknown): void => {
      const bytes = utf8Bytes(value);
      if (bytes > MAX_STATE_BYTES) {
        breach(new LocalStatesError('States.DataLimitExceeded', `${what} is ${bytes} bytes, over Step Functions' limit of ${MAX_STATE_BYTES} bytes`));
      }
    };
    const guard = (state: string, task: LocalTaskHandler): LocalTaskHandler => async (taskInput) => {
      if (fatal) throw fatal;
      checkSize(`the input of state ${state}`, taskInput);
      const result = await task(taskInput);
      if (fatal) throw fatal;
      checkSize(`the result of state ${state}`, result);
      return result;
    };
    const handlers: Record<string, LocalTaskHandler> = {};
    const retryIntervalOverrides: Record<string, number> = {};
    for (const [state, resource] of Object.entries(resources)) {
      if (resource.startsWith('arn:aws:lambda:')) {
        handlers[state] = guard(state, (payload) => handle(payload as RedriveEvent));
      } else if (START_EXECUTION_SYNC.test(resource)) {
        handlers[state] = guard(state, async (parameters) => {
          const { Input } = parameters as { Input?: unknown; StateMachineArn?: string };
          const child = await execute(typeof Input === 'string' ? (JSON.parse(Input) as unknown) : Input, randomUUID());
          if (child.status !== 'SUCCEEDED') {
            throw new LocalStatesError('States.TaskFailed', JSON.stringify({ ExecutionArn: child.executionArn, Error: child.error, Cause: child.cause }));
          }
          return { ExecutionArn: child.executionArn, Output: child.output, Status: 'SUCCEEDED', StartDate: child.startDate, StopDate: child.stopDate };
        });
      } else {
        throw new Error(`no local binding for Task ${state} (${resource})`);
      }
      if (options.retryPauseMs !== undefined) retryIntervalOverrides[state] = options.retryPauseMs;
    }
    const run = machine.run(input as Parameters<StateMachine['run']>[0], {
      // Our handlers take and return JSON; the library's JSONValue type is not exported.
      overrides: { taskResourceLocalHandlers: handlers as unknown as LibraryTaskHandlers, retryIntervalOverrides },
      context: {
        Execution: { Id: executionArn, Name: name },
        StateMachine: { Id: stateMachineArn, Name: stateMachineArn.split(':').pop()! },
      } as RunOptions['context'],
    });
    abort = run.abort;
    const caught = new Set<string>();
    const counting = (async () => {
      for await (const event of run.eventLogs) {
        if (!event) continue;
        if ('state' in event && event.type === 'StateEntered') {
          try {
            checkSize(`the input of state ${event.state.name}`, event.state.input);
          } catch {
            // breach() recorded it and aborted the execution.
          }
        }
        if ('state' in event && event.type === 'StateExited') {
          try {
            checkSize(`the output of state ${event.state.name}`, event.state.output);
          } catch {
            // As above.
          }
        }
        for (const type of awsTypes(event, resources, caught)) {
          const id = execution.history.length + 1;
          execution.history.push({ id, previousEventId: id - 1, timestamp: event.timestamp, type, ...('state' in event ? { stateName: event.state.name } : {}) });
          if (id > maxEvents && !fatal) {
            fatal = new LocalStatesError('States.Runtime', `the execution's history reached ${maxEvents} events, Step Functions' quota: the execution fails`);
            abort();
          }
        }
      }
    })();
    try {
      execution.output = await run.result;
      execution.status = fatal ? 'FAILED' : 'SUCCEEDED';
    } catch (error) {
      execution.status = 'FAILED';
      const cause = error instanceof ExecutionError && error.cause instanceof Error ? error.cause : error instanceof Error ? error : new Error(String(error));
      const failure = fatal ?? (error instanceof ExecutionAbortedError ? new LocalStatesError('States.Runtime', 'aborted') : cause);
      execution.error = failure.name;
      execution.cause = failure.message;
    }
    await counting;
    if (fatal) {
      if (execution.history.at(-1)?.type !== 'ExecutionFailed') {
        const id = execution.history.length + 1;
        execution.history.push({ id, previousEventId: id - 1, timestamp: Date.now(), type: 'ExecutionFailed' });
      }
      execution.status = 'FAILED';
      execution.error = fatal.name;
      execution.cause = fatal.message;
      delete execution.output;
    }
    execution.stopDate = Date.now();
    return execution;
  }

  try {
    const first = await execute(options.input, options.name ?? randomUUID());
    return first.status === 'SUCCEEDED'
      ? { status: 'SUCCEEDED', output: first.output, executions }
      : { status: 'FAILED', error: first.error ?? 'Error', cause: first.cause ?? '', executions };
  } finally {
    if (ownClient) client.destroy();
  }
}
