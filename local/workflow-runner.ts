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
import {
  ExecutionAbortedError,
  ExecutionError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import { randomUUID } from 'node:crypto';
import { SqsRedriveQueues } from '../adapters/sqs-redrive-queues.ts';
import { MAX_STATE_BYTES } from '../core/redrive-budget.ts';
import { HistoryEvents, type RedriveQueues } from '../core/redrive-run.ts';
import { createRedriveHandler } from '../handlers/redrive.ts';
import { LOCAL_ACCOUNT, LOCAL_CREDENTIALS, LOCAL_REGION, localFunctionArn } from './defaults.ts';
import { redriveMachineOf, type CfnTemplate } from './template.ts';

const START_EXECUTION_SYNC = /^arn:aws:states:::states:startExecution\.sync(:2)?$/;
/** Step Functions' limit on a state's input, output and a task's result: 256 KiB of UTF-8 (core/redrive-budget.ts). */
export { MAX_STATE_BYTES };

export type { CfnTemplate } from './template.ts';

export interface LocalQueueUrls {
  /** The ingest queue the workflow sends back to. */
  readonly source: string;
  /** The dead-letter queue it drains. */
  readonly deadLetter: string;
}

function queueNameOf(url: string): string {
  return url.replace(/\/$/, '').split('/').pop() ?? url;
}

/** The local ARN the definition gets for a Lambda function of the template (its logical id as the name). */
export { localFunctionArn };

const PSEUDO_PARAMETERS: Readonly<Record<string, string>> = {
  'AWS::Partition': 'aws',
  'AWS::Region': LOCAL_REGION,
  'AWS::AccountId': LOCAL_ACCOUNT,
  'AWS::URLSuffix': 'amazonaws.com',
};

/** Resolves one part of the definition's `Fn::Join`: a string, a `Ref` or an `Fn::GetAtt`. */
function tokenResolver(resourceTypes: Readonly<Record<string, string>>, urls: Readonly<Record<string, string>>) {
  const getAtt = (id: string, attribute: string): string => {
    const type = resourceTypes[id];
    const url = urls[id];
    if (type === 'AWS::SQS::Queue' && url && attribute === 'Arn') {
      return `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${queueNameOf(url)}`;
    }
    if (type === 'AWS::SQS::Queue' && url && attribute === 'QueueName') return queueNameOf(url);
    if (type === 'AWS::SQS::Queue' && url && attribute === 'QueueUrl') return url;
    if (type === 'AWS::Lambda::Function' && attribute === 'Arn') return localFunctionArn(id);
    throw new Error(`cannot resolve Fn::GetAtt ${id}.${attribute} in the state machine definition`);
  };
  return (part: unknown): string => {
    if (typeof part === 'string') return part;
    const node = part as Record<string, unknown>;
    if (typeof node['Ref'] === 'string') {
      const ref = node['Ref'];
      const value = PSEUDO_PARAMETERS[ref] ?? urls[ref];
      if (value) return value;
      throw new Error(`cannot resolve Ref ${ref} in the state machine definition`);
    }
    const attribute = node['Fn::GetAtt'];
    if (Array.isArray(attribute)) return getAtt(...(attribute as [string, string]));
    throw new Error(`cannot resolve ${JSON.stringify(part)} in the state machine definition`);
  };
}

/**
 * Take the state machine's definition out of a synthesized template and resolve its tokens:
 * `Ref` of a queue -> its local URL, `Fn::GetAtt [queue, Arn]` -> a local ARN, `Fn::GetAtt
 * [function, Arn]` -> `localFunctionArn(id)`, pseudo parameters -> local values. The queue with
 * a `RedrivePolicy` is the source queue; the queue it names is the DLQ (local/template.ts).
 *
 * @example
 * ```ts
 * const definition = redriveDefinitionFrom(synthesizeTemplate({ queue: 'fifo' }), { source, deadLetter });
 * ```
 */
export function redriveDefinitionFrom(template: CfnTemplate, queueUrls: LocalQueueUrls): StateMachineDefinition {
  const machine = redriveMachineOf(template);
  const resolve = tokenResolver(machine.resourceTypes, {
    [machine.sourceQueueId]: queueUrls.source,
    [machine.deadLetterQueueId]: queueUrls.deadLetter,
  });
  const raw = machine.definitionString;
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
function awsTypes(
  event: NonNullable<LibraryEvent>,
  resources: Readonly<Record<string, string>>,
  caught: Set<string>,
): string[] {
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
  const started = [
    `${prefix}Scheduled`,
    `${prefix}Started`,
    ...(/\.sync(:2)?$/.test(resource) ? ['TaskSubmitted'] : []),
  ];
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
  /** The largest state input, state output or task result it passed, in UTF-8 bytes (the quota is `MAX_STATE_BYTES`). */
  maxStateBytes: number;
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
  /**
   * Wrap the Lambda itself (fault tests: an invocation killed at an await fails with the error
   * AWS reports for it, such as `Lambda.Unknown` or `Sandbox.Timedout`).
   */
  readonly wrapHandler?: (handle: LocalTaskHandler) => LocalTaskHandler;
  /** How long the Lambda's receives hide their messages before it holds them (tests shorten it). @default RECEIVE_LEASE_SECONDS */
  readonly leaseSeconds?: number;
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
  | {
      readonly status: 'FAILED';
      readonly error: string;
      readonly cause: string;
      readonly executions: readonly LocalExecution[];
    };

/** What every execution of one run shares: the machine, its Task resources, the handler, the quota. */
interface SharedRun {
  readonly machine: StateMachine;
  /** Task state name -> Resource. */
  readonly resources: Readonly<Record<string, string>>;
  readonly stateMachineArn: string;
  readonly handle: LocalTaskHandler;
  readonly maxEvents: number;
  readonly retryPauseMs: number | undefined;
  readonly executions: LocalExecution[];
  readonly onExecution: ((execution: LocalExecution) => void) | undefined;
}

type EventLogs = ReturnType<StateMachine['run']>['eventLogs'];

/**
 * One execution (the first or a successor): it binds the Tasks, enforces Step Functions'
 * quotas the library does not (state size, history events) and writes the history as AWS would.
 */
class LocalExecutionRun {
  public readonly execution: LocalExecution;
  readonly #shared: SharedRun;
  /** The first breach of a quota: terminal, as on AWS (States.ALL does not catch it). */
  #fatal: LocalStatesError | undefined;
  #abort: () => void = () => undefined;

  public constructor(shared: SharedRun, input: unknown, name: string) {
    this.#shared = shared;
    const executionArn = `${shared.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
    this.execution = {
      executionArn,
      name,
      input,
      startDate: Date.now(),
      status: 'RUNNING',
      history: [],
      maxStateBytes: utf8Bytes(input),
    };
    shared.executions.push(this.execution);
    shared.onExecution?.(this.execution);
  }

  /** Run it to its end; a failure is recorded on the execution, never thrown. */
  public async run(): Promise<LocalExecution> {
    const { stateMachineArn } = this.#shared;
    const { executionArn, name } = this.execution;
    const run = this.#shared.machine.run(this.execution.input as Parameters<StateMachine['run']>[0], {
      overrides: this.taskOverrides(),
      context: {
        Execution: { Id: executionArn, Name: name },
        StateMachine: { Id: stateMachineArn, Name: stateMachineArn.split(':').pop()! },
      } as RunOptions['context'],
    });
    this.#abort = run.abort;
    const counting = this.countHistory(run.eventLogs);
    await this.settle(run.result);
    await counting;
    if (this.#fatal) this.failOnQuota(this.#fatal);
    this.execution.stopDate = Date.now();
    return this.execution;
  }

  private breach(error: LocalStatesError): never {
    this.#fatal ??= error;
    this.#abort();
    throw this.#fatal;
  }

  private checkSize(what: string, value: unknown): void {
    const bytes = utf8Bytes(value);
    this.execution.maxStateBytes = Math.max(this.execution.maxStateBytes, bytes);
    if (bytes > MAX_STATE_BYTES) {
      this.breach(
        new LocalStatesError(
          'States.DataLimitExceeded',
          `${what} is ${bytes} bytes, over Step Functions' limit of ${MAX_STATE_BYTES} bytes`,
        ),
      );
    }
  }

  /** A Task's handler with the size quota on its input and result, stopped by an earlier breach. */
  private guard(state: string, task: LocalTaskHandler): LocalTaskHandler {
    return async (taskInput) => {
      if (this.#fatal) throw this.#fatal;
      this.checkSize(`the input of state ${state}`, taskInput);
      const result = await task(taskInput);
      if (this.#fatal) throw this.#fatal;
      this.checkSize(`the result of state ${state}`, result);
      return result;
    };
  }

  /** Every Task bound: a Lambda Task to the handler, `startExecution.sync` to a successor run here. */
  private taskOverrides(): NonNullable<RunOptions['overrides']> {
    const handlers: Record<string, LocalTaskHandler> = {};
    const retryIntervalOverrides: Record<string, number> = {};
    for (const [state, resource] of Object.entries(this.#shared.resources)) {
      if (resource.startsWith('arn:aws:lambda:')) {
        handlers[state] = this.guard(state, (payload) => this.#shared.handle(payload));
      } else if (START_EXECUTION_SYNC.test(resource)) {
        handlers[state] = this.guard(state, (parameters) => this.startSuccessor(parameters));
      } else {
        throw new Error(`no local binding for Task ${state} (${resource})`);
      }
      if (this.#shared.retryPauseMs !== undefined) retryIntervalOverrides[state] = this.#shared.retryPauseMs;
    }
    // Our handlers take and return JSON; the library's JSONValue type is not exported.
    return { taskResourceLocalHandlers: handlers as unknown as LibraryTaskHandlers, retryIntervalOverrides };
  }

  /** `startExecution.sync:2`: a child execution, waited for; its failure fails the Task. */
  private async startSuccessor(parameters: unknown): Promise<unknown> {
    const { Input } = parameters as { Input?: unknown; StateMachineArn?: string };
    const input = typeof Input === 'string' ? (JSON.parse(Input) as unknown) : Input;
    const child = await new LocalExecutionRun(this.#shared, input, randomUUID()).run();
    if (child.status !== 'SUCCEEDED') {
      throw new LocalStatesError(
        'States.TaskFailed',
        JSON.stringify({ ExecutionArn: child.executionArn, Error: child.error, Cause: child.cause }),
      );
    }
    return {
      ExecutionArn: child.executionArn,
      Output: child.output,
      Status: 'SUCCEEDED',
      StartDate: child.startDate,
      StopDate: child.stopDate,
    };
  }

  /** The size quota on every state's input and output (breach() records it and aborts). */
  private checkStateSizes(event: NonNullable<LibraryEvent>): void {
    if (!('state' in event)) return;
    const what = event.type === 'StateEntered' ? 'input' : event.type === 'StateExited' ? 'output' : undefined;
    if (!what) return;
    try {
      this.checkSize(
        `the ${what} of state ${event.state.name}`,
        what === 'input' ? event.state.input : event.state.output,
      );
    } catch {
      // breach() recorded it and aborted the execution.
    }
  }

  /** The history as AWS writes it, and the history quota: over it, the execution fails. */
  private async countHistory(events: EventLogs): Promise<void> {
    const { history } = this.execution;
    const caught = new Set<string>();
    for await (const event of events) {
      if (!event) continue;
      this.checkStateSizes(event);
      for (const type of awsTypes(event, this.#shared.resources, caught)) {
        const id = history.length + 1;
        history.push({
          id,
          previousEventId: id - 1,
          timestamp: event.timestamp,
          type,
          ...('state' in event ? { stateName: event.state.name } : {}),
        });
        if (id > this.#shared.maxEvents && !this.#fatal) {
          this.#fatal = new LocalStatesError(
            'States.Runtime',
            `the execution's history reached ${this.#shared.maxEvents} events, Step Functions' quota: the execution fails`,
          );
          this.#abort();
        }
      }
    }
  }

  /** The execution's status, output or error from the library's result. */
  private async settle(result: Promise<unknown>): Promise<void> {
    const execution = this.execution;
    try {
      execution.output = await result;
      execution.status = this.#fatal ? 'FAILED' : 'SUCCEEDED';
    } catch (error) {
      execution.status = 'FAILED';
      const cause =
        error instanceof ExecutionError && error.cause instanceof Error
          ? error.cause
          : error instanceof Error
            ? error
            : new Error(String(error));
      const failure =
        this.#fatal ??
        (error instanceof ExecutionAbortedError ? new LocalStatesError('States.Runtime', 'aborted') : cause);
      execution.error = failure.name;
      execution.cause = failure.message;
    }
  }

  /** A quota breach ends the execution FAILED with that error, whatever the library reported. */
  private failOnQuota(fatal: LocalStatesError): void {
    const execution = this.execution;
    if (execution.history.at(-1)?.type !== 'ExecutionFailed') {
      const id = execution.history.length + 1;
      execution.history.push({ id, previousEventId: id - 1, timestamp: Date.now(), type: 'ExecutionFailed' });
    }
    execution.status = 'FAILED';
    execution.error = fatal.name;
    execution.cause = fatal.message;
    delete execution.output;
  }
}

/** The redrive handler as the Lambda would run it, on the local queues (wrapped when the tests inject faults). */
function localRedriveHandler(options: RunLocalRedriveOptions, client: SQSClient): SharedRun['handle'] {
  const queues = new SqsRedriveQueues({
    client,
    deadLetterQueueUrl: options.queueUrls.deadLetter,
    sourceQueueUrl: options.queueUrls.source,
  });
  const handle = createRedriveHandler({
    queues: options.wrapQueues ? options.wrapQueues(queues) : queues,
    fifo: options.queueUrls.source.endsWith('.fifo'),
    ...(options.handlerHistoryLimit !== undefined ? { historyLimit: options.handlerHistoryLimit } : {}),
    ...(options.leaseSeconds !== undefined ? { leaseSeconds: options.leaseSeconds } : {}),
  }) as LocalTaskHandler;
  return options.wrapHandler ? options.wrapHandler(handle) : handle;
}

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
  const ownClient = options.sqsClient === undefined;
  const client =
    options.sqsClient ??
    new SQSClient({
      endpoint: options.sqsEndpoint,
      region: process.env['AWS_REGION'] ?? LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
  const executions: LocalExecution[] = [];
  const shared: SharedRun = {
    machine: new StateMachine(definition, { validationOptions: { checkPaths: true, checkArn: true } }),
    resources: taskResources(definition),
    stateMachineArn: options.stateMachineArn ?? `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:Redrive`,
    handle: localRedriveHandler(options, client),
    maxEvents: options.maxHistoryEvents ?? HistoryEvents.limit,
    retryPauseMs: options.retryPauseMs,
    executions,
    onExecution: options.onExecution,
  };
  try {
    const first = await new LocalExecutionRun(shared, options.input, options.name ?? randomUUID()).run();
    return first.status === 'SUCCEEDED'
      ? { status: 'SUCCEEDED', output: first.output, executions }
      : { status: 'FAILED', error: first.error ?? 'Error', cause: first.cause ?? '', executions };
  } finally {
    if (ownClient) client.destroy();
  }
}
