import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOCAL_ACCOUNT } from './defaults.ts';

/** One event of an execution's history, as the runner counts it (local/workflow-runner.ts). */
export interface LocalHistoryEvent {
  readonly id: number;
  readonly previousEventId: number;
  readonly timestamp: number;
  readonly type: string;
  readonly stateName?: string;
}

type Status = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** An execution the runner started (the first or a successor), read live by the API. */
export interface TrackedExecution {
  readonly executionArn: string;
  readonly name: string;
  readonly input: unknown;
  readonly startDate: number;
  readonly stopDate?: number | undefined;
  readonly status: Status;
  readonly output?: unknown;
  readonly error?: string | undefined;
  readonly cause?: string | undefined;
  readonly history: readonly LocalHistoryEvent[];
}

/** What a run may tell the API: every execution it starts, the first one included. */
export interface ExecutionContext {
  readonly executionArn: string;
  readonly name: string;
  track(execution: TrackedExecution): void;
}

/** Runs one execution of a state machine: input in, output out (throws when it fails). */
export type ExecutionRunner = (input: unknown, context: ExecutionContext) => Promise<unknown>;

export interface LocalStateMachine {
  readonly arn: string;
  readonly name: string;
  readonly run: ExecutionRunner;
  /** The definition (Amazon States Language) DescribeStateMachine returns. @default '{}' */
  readonly definition?: string;
}

interface Execution {
  readonly executionArn: string;
  readonly stateMachineArn: string;
  readonly name: string;
  readonly input: string;
  readonly startDate: number;
  status: Status;
  stopDate?: number;
  output?: string;
  error?: string;
  cause?: string;
  done: Promise<void>;
  /** What the runner reports for this execution (its history; a successor's everything). */
  tracked?: TrackedExecution;
}

export interface SfnServer {
  readonly endpoint: string;
  readonly port: number;
  /** Stop accepting requests and wait for running executions to end. */
  stop(): Promise<void>;
}

class ApiError extends Error {
  public constructor(
    public readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const LOCAL_ROLE_ARN = `arn:aws:iam::${LOCAL_ACCOUNT}:role/local`;

function seconds(ms: number): number {
  return ms / 1000;
}

/** A successor the runner started: read live from what it tracks. */
function fromTracked(tracked: TrackedExecution, stateMachineArn: string): Execution {
  return {
    get executionArn() {
      return tracked.executionArn;
    },
    stateMachineArn,
    name: tracked.name,
    input: JSON.stringify(tracked.input ?? null),
    startDate: tracked.startDate,
    get status() {
      return tracked.status;
    },
    get stopDate() {
      return tracked.stopDate;
    },
    get output() {
      return tracked.status === 'SUCCEEDED' ? JSON.stringify(tracked.output ?? null) : undefined;
    },
    get error() {
      return tracked.error;
    },
    get cause() {
      return tracked.cause;
    },
    done: Promise.resolve(),
    tracked,
  } as Execution;
}

function historyEvent(event: LocalHistoryEvent): Record<string, unknown> {
  const details =
    event.stateName === undefined
      ? {}
      : event.type.endsWith('StateEntered')
        ? { stateEnteredEventDetails: { name: event.stateName } }
        : event.type.endsWith('StateExited')
          ? { stateExitedEventDetails: { name: event.stateName } }
          : {};
  return {
    id: event.id,
    previousEventId: event.previousEventId,
    timestamp: seconds(event.timestamp),
    type: event.type,
    ...details,
  };
}

function describe(execution: Execution): Record<string, unknown> {
  return {
    executionArn: execution.executionArn,
    stateMachineArn: execution.stateMachineArn,
    name: execution.name,
    status: execution.status,
    startDate: seconds(execution.startDate),
    ...(execution.stopDate !== undefined ? { stopDate: seconds(execution.stopDate) } : {}),
    input: execution.input,
    ...(execution.output !== undefined ? { output: execution.output } : {}),
    ...(execution.error !== undefined ? { error: execution.error } : {}),
    ...(execution.cause !== undefined ? { cause: execution.cause } : {}),
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new ApiError('ValidationException', `${field} is required`);
  return value;
}

/** `maxResults` when the request leaves it out; GetExecutionHistory's page is at most HISTORY_PAGE_LIMIT. */
const DEFAULT_PAGE_SIZE = 100;
const HISTORY_PAGE_LIMIT = 1000;

function pageSize(input: Record<string, unknown>, limit = Number.POSITIVE_INFINITY): number {
  const max = input['maxResults'];
  return typeof max === 'number' && max > 0 ? Math.min(max, limit) : DEFAULT_PAGE_SIZE;
}

/** The API's operations over the state machines and the executions they have run. */
class LocalStepFunctionsApi {
  readonly #machines: readonly LocalStateMachine[];
  readonly #byArn: Map<string, LocalStateMachine>;
  readonly #createdAt = Date.now();
  public readonly executions = new Map<string, Execution>();

  public constructor(machines: readonly LocalStateMachine[]) {
    this.#machines = machines;
    this.#byArn = new Map(machines.map((machine) => [machine.arn, machine]));
  }

  /** The operation an `X-Amz-Target` names, or undefined. */
  public operation(name: string): ((input: Record<string, unknown>) => Record<string, unknown>) | undefined {
    const operations: Record<string, (input: Record<string, unknown>) => Record<string, unknown>> = {
      StartExecution: (input) => this.startExecution(input),
      DescribeExecution: (input) => describe(this.execution(input)),
      ListExecutions: (input) => this.listExecutions(input),
      DescribeStateMachine: (input) => this.describeStateMachine(input),
      ListStateMachines: (input) => this.listStateMachines(input),
      GetExecutionHistory: (input) => this.executionHistory(input),
    };
    return Object.hasOwn(operations, name) ? operations[name] : undefined;
  }

  private machine(arn: string): LocalStateMachine {
    const machine = this.#byArn.get(arn);
    if (!machine) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
    return machine;
  }

  private execution(input: Record<string, unknown>): Execution {
    const arn = text(input['executionArn'], 'executionArn');
    const execution = this.executions.get(arn);
    if (!execution) throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return execution;
  }

  private startExecution(input: Record<string, unknown>): Record<string, unknown> {
    const machine = this.#byArn.get(text(input['stateMachineArn'], 'stateMachineArn'));
    if (!machine)
      throw new ApiError(
        'StateMachineDoesNotExist',
        `State Machine Does Not Exist: '${String(input['stateMachineArn'])}'`,
      );
    const name = typeof input['name'] === 'string' ? input['name'] : randomUUID();
    const executionArn = `${machine.arn.replace(':stateMachine:', ':execution:')}:${name}`;
    if (this.executions.has(executionArn))
      throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    const rawInput = typeof input['input'] === 'string' ? input['input'] : '{}';
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawInput);
    } catch {
      throw new ApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: the input is not JSON');
    }
    const execution: Execution = {
      executionArn,
      stateMachineArn: machine.arn,
      name,
      input: rawInput,
      startDate: Date.now(),
      status: 'RUNNING',
      done: Promise.resolve(),
    };
    const context: ExecutionContext = {
      executionArn,
      name,
      track: (tracked) => {
        if (tracked.executionArn === executionArn) execution.tracked = tracked;
        else if (!this.executions.has(tracked.executionArn))
          this.executions.set(tracked.executionArn, fromTracked(tracked, machine.arn));
      },
    };
    execution.done = machine.run(parsed, context).then(
      (output) => {
        execution.status = 'SUCCEEDED';
        execution.output = JSON.stringify(output ?? null);
        execution.stopDate = Date.now();
      },
      (error: unknown) => {
        execution.status = 'FAILED';
        execution.error = error instanceof Error ? (error.name ?? 'Error') : 'Error';
        execution.cause = error instanceof Error ? error.message : String(error);
        execution.stopDate = Date.now();
      },
    );
    this.executions.set(executionArn, execution);
    return { executionArn, startDate: seconds(execution.startDate) };
  }

  private listExecutions(input: Record<string, unknown>): Record<string, unknown> {
    const arn = text(input['stateMachineArn'], 'stateMachineArn');
    this.machine(arn);
    const filter = input['statusFilter'];
    const list = [...this.executions.values()]
      .filter((execution) => execution.stateMachineArn === arn && (filter === undefined || execution.status === filter))
      .sort((a, b) => b.startDate - a.startDate)
      .slice(0, pageSize(input))
      .map((execution) => {
        const { executionArn, stateMachineArn, name, status, startDate, stopDate } = describe(execution);
        return {
          executionArn,
          stateMachineArn,
          name,
          status,
          startDate,
          ...(stopDate !== undefined ? { stopDate } : {}),
        };
      });
    return { executions: list };
  }

  private describeStateMachine(input: Record<string, unknown>): Record<string, unknown> {
    const arn = text(input['stateMachineArn'], 'stateMachineArn');
    const machine = this.machine(arn);
    return {
      stateMachineArn: arn,
      name: machine.name,
      status: 'ACTIVE',
      type: 'STANDARD',
      definition: machine.definition ?? '{}',
      roleArn: LOCAL_ROLE_ARN,
      creationDate: seconds(this.#createdAt),
    };
  }

  private listStateMachines(input: Record<string, unknown>): Record<string, unknown> {
    return {
      stateMachines: this.#machines.slice(0, pageSize(input)).map((machine) => ({
        stateMachineArn: machine.arn,
        name: machine.name,
        type: 'STANDARD',
        creationDate: seconds(this.#createdAt),
      })),
    };
  }

  private executionHistory(input: Record<string, unknown>): Record<string, unknown> {
    const execution = this.execution(input);
    const all = [...(execution.tracked?.history ?? [])];
    if (input['reverseOrder'] === true) all.reverse();
    const max = pageSize(input, HISTORY_PAGE_LIMIT);
    const from = typeof input['nextToken'] === 'string' ? Number(input['nextToken']) : 0;
    if (!Number.isInteger(from) || from < 0 || from > all.length)
      throw new ApiError('InvalidToken', 'Invalid Token: nextToken');
    const page = all.slice(from, from + max);
    return { events: page.map(historyEvent), ...(from + max < all.length ? { nextToken: String(from + max) } : {}) };
  }
}

const TARGET_PREFIX = 'AWSStepFunctions.';

/** One request in the AWS JSON 1.0 protocol: the operation from `X-Amz-Target`, the input from the body. */
async function handle(api: LocalStepFunctionsApi, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const send = (status: number, body: Record<string, unknown>) => {
    response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
    response.end(JSON.stringify(body));
  };
  try {
    const target = String(request.headers['x-amz-target'] ?? '');
    const operation =
      request.method === 'POST' && target.startsWith(TARGET_PREFIX)
        ? api.operation(target.slice(TARGET_PREFIX.length))
        : undefined;
    if (!operation)
      throw new ApiError(
        'UnknownOperationException',
        `unsupported operation: ${request.method} ${target || '(no X-Amz-Target)'}`,
      );
    const body = await readBody(request);
    const input = (body ? JSON.parse(body) : {}) as Record<string, unknown>;
    send(200, operation(input));
  } catch (error) {
    if (error instanceof ApiError) send(400, { __type: error.type, message: error.message });
    else send(500, { __type: 'InternalFailure', message: error instanceof Error ? error.message : String(error) });
  }
}

/**
 * A loopback Step Functions API over local state machines: StartExecution,
 * DescribeExecution, ListExecutions, ListStateMachines, DescribeStateMachine and
 * GetExecutionHistory (the history the runner counts; successor executions are listed too),
 * spoken in the AWS JSON 1.0
 * protocol that `@aws-sdk/client-sfn` uses (POST /, header `X-Amz-Target:
 * AWSStepFunctions.<Operation>`), so the CLI drives a local workflow exactly as a deployed one.
 *
 * @example
 * ```ts
 * const server = await startSfnServer([{ arn, name: 'Redrive', run: (input) => runLocally(input) }]);
 * const sfn = new SFNClient({ endpoint: server.endpoint });
 * ```
 */
export async function startSfnServer(
  machines: readonly LocalStateMachine[],
  options: { port?: number } = {},
): Promise<SfnServer> {
  const api = new LocalStepFunctionsApi(machines);
  const server: Server = createServer((request, response) => void handle(api, request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(
              `port ${options.port} is taken: the local Step Functions API cannot listen on it (choose another with --sfn-port)`,
            )
          : error,
      ),
    );
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...api.executions.values()].map((execution) => execution.done));
    },
  };
}
