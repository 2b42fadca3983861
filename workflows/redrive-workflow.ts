import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { HistoryEvents } from '../core/redrive-run.ts';
import { nagAcknowledgement } from '../infra/constructs/nag.ts';
import { bundledHandler, lambdaRole } from '../infra/constructs/node-function.ts';

/** The workflow's Lambda: input validation, one batch (receive, fix, re-validate, send, delete), the end. */
export const REDRIVE_ENTRY = fileURLToPath(new URL('../handlers/redrive.ts', import.meta.url));

/** What the Lambda's role may do, and on which queue (template tests pin these). */
export const REDRIVE_DLQ_ACTIONS = ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage'] as const;
export const REDRIVE_SOURCE_ACTIONS = ['sqs:SendMessage'] as const;

/**
 * What a batch call may be retried on without a trace in the state: errors after which it did
 * nothing the run cannot see (throttled before it ran; its receive failed, after it deleted
 * what the last call sent, which a retry deletes again harmlessly). Every other failure of a
 * batch call (the function died or timed out at any await: `Lambda.Unknown`,
 * `Sandbox.Timedout`; a Lambda service error after which it may have run) goes to
 * RecordFailure, which counts it in the report and goes on (core/redrive-run.ts `recoverRedrive`).
 */
export const BATCH_RETRY_ERRORS = ['Lambda.TooManyRequestsException', 'ReceiveFailedError'] as const;

/** The managed EventBridge rule `startExecution.sync` uses to learn that a child execution ended. */
export const SYNC_EVENTS_RULE = 'StepFunctionsGetEventsForStepFunctionsExecutionRule';

/** The function's memory: ten bodies of up to 1 MiB each, parsed and re-serialised when a fix applies. */
export const REDRIVE_MEMORY_SIZE = 512;
/** One batch call's limit. */
export const REDRIVE_FUNCTION_TIMEOUT = Duration.seconds(60);
/** An execution's timeout (a run may hide messages for up to 12 hours: visibilityTimeoutSeconds, core/redrive.ts). */
export const EXECUTION_TIMEOUT = Duration.hours(13);
/** The Lambda Tasks' retry: first pause, and its growth per attempt (full jitter). */
const RETRY_INTERVAL_SECONDS = 2;
const RETRY_BACKOFF_RATE = 2;

/** Names of the states the local runner and the tests refer to. */
export const RedriveStates = {
  validateInput: 'ValidateInput',
  inputValid: 'InputValid',
  invalidInput: 'InvalidInput',
  redriveBatch: 'RedriveBatch',
  recordFailure: 'RecordFailure',
  batchNext: 'BatchNext',
  startSuccessor: 'StartSuccessor',
  successorFailed: 'SuccessorFailed',
  finish: 'Finish',
  finished: 'Finished',
  runFailed: 'RunFailed',
} as const;

export interface RedriveWorkflowProps {
  /** Where rejected events wait. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The ingest queue they go back to. */
  readonly sourceQueue: sqs.IQueue;
  /** FIFO queues: message group = the stream, a stream's messages back in order. */
  readonly fifo: boolean;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Log every state's input and output (event bodies are not among them, but stream ids,
   * rejection details and the fix are). @default false: errors only, without execution data
   */
  readonly logExecutionData?: boolean;
  /** The Lambda handler's entry (tests). @default REDRIVE_ENTRY */
  readonly entry?: string;
}

/**
 * The redrive workflow (README, "Redrive rejected events"): a Step Functions state machine,
 * in classic JSONPath so that `aws-local-stepfunctions` runs the very same definition locally.
 * It loops one Lambda call per batch; the Lambda receives from the DLQ, fixes, re-validates,
 * sends back and deletes, and holds what stays hidden until the execution ends. Bodies never
 * enter the state. Near the history quota (25,000 events) or its receipt-handle budget, an
 * execution runs the rest in a child execution and waits for it (`startExecution.sync:2`), so
 * the first execution's output is the whole run's report and every kept message is made
 * visible again at the end. Start it from the console with `{}` or with options.
 *
 * @example
 * new RedriveWorkflow(stack, 'Redrive', { deadLetterQueue: dlq, sourceQueue: queue, fifo: false });
 */
export class RedriveWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;

  public constructor(scope: Construct, id: string, props: RedriveWorkflowProps) {
    super(scope, id);
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.function = this.redriveFunction(props, retention);
    this.role = new iam.Role(this, 'StateMachineRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: 'Redrive workflow: invoke its Lambda, run its own successor execution',
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: 'Redrive rejected events: fix and re-validate dead-lettered events, send the valid ones back',
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition()),
      role: this.role,
      timeout: EXECUTION_TIMEOUT,
      tracingEnabled: true,
      logs: this.executionLogs(id, retention, props.logExecutionData ?? false),
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.function.functionArn] }),
    );
    this.successorPolicy();
    this.acknowledgeStateMachineFindings(props.logExecutionData ?? false);
  }

  /** The Lambda: the only code that touches the queues during a redrive. */
  private redriveFunction(props: RedriveWorkflowProps, retention: logs.RetentionDays): nodejs.NodejsFunction {
    const { deadLetterQueue: dlq, sourceQueue: source } = props;
    const logGroup = new logs.LogGroup(this, 'FunctionLogGroup', { retention });
    const role = lambdaRole(
      this,
      'FunctionRole',
      'Redrive workflow Lambda: receive/delete/change visibility on the DLQ, send to the source queue',
      logGroup,
    );
    role.addToPolicy(new iam.PolicyStatement({ actions: [...REDRIVE_DLQ_ACTIONS], resources: [dlq.queueArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: [...REDRIVE_SOURCE_ACTIONS], resources: [source.queueArn] }));
    Validations.of(role).acknowledge(
      nagAcknowledgement(
        'AwsSolutions-IAM5[Resource::*]',
        'Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords accept no resource ARN, so AWS ' +
          'requires Resource "*" for them; every other statement names the function\'s log group or one queue.',
      ),
    );
    return new nodejs.NodejsFunction(this, 'Function', {
      ...bundledHandler(props.entry ?? REDRIVE_ENTRY),
      memorySize: REDRIVE_MEMORY_SIZE,
      timeout: REDRIVE_FUNCTION_TIMEOUT,
      role,
      logGroup,
      tracing: lambda.Tracing.ACTIVE,
      environment: { DLQ_URL: dlq.queueUrl, SOURCE_QUEUE_URL: source.queueUrl },
      description: 'Redrive workflow: receive dead-lettered events, fix, re-validate, send back, delete',
    });
  }

  /**
   * A Task with the function ARN as Resource (the payload is the result), retried with backoff
   * on `retryOn`: every error (`States.ALL`) for the calls that may run twice (ValidateInput and
   * RecordFailure touch no queue; Finish deletes and releases, which SQS accepts twice), only
   * `BATCH_RETRY_ERRORS` for a batch. Written by hand rather than with LambdaInvoke, which
   * would also grant invoke on every version (`:*`).
   */
  private lambdaTask(
    stateId: string,
    parameters: Record<string, unknown>,
    retryOn: readonly string[] = ['States.ALL'],
  ): sfn.CustomState {
    return new sfn.CustomState(this, stateId, {
      stateJson: {
        Type: 'Task',
        Resource: this.function.functionArn,
        Parameters: parameters,
        Retry: [
          {
            ErrorEquals: [...retryOn],
            IntervalSeconds: RETRY_INTERVAL_SECONDS,
            MaxAttempts: HistoryEvents.maxRetries,
            BackoffRate: RETRY_BACKOFF_RATE,
            JitterStrategy: 'FULL',
          },
        ],
      },
    });
  }

  /** Near a quota: the rest of the run in a child execution of this state machine, waited for. */
  private successorTask(): sfn.CustomState {
    return new sfn.CustomState(this, RedriveStates.startSuccessor, {
      stateJson: {
        Type: 'Task',
        Resource: `arn:${Stack.of(this).partition}:states:::states:startExecution.sync:2`,
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
            // Links the child to this execution in the console.
            'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id',
          },
        },
        // The successor's report (the whole run's) replaces this execution's own: one report in
        // Finish's input, not two (core/redrive-budget.ts).
        ResultSelector: { 'successor.$': '$.Output' },
        ResultPath: '$.report',
      },
    });
  }

  /** The states, in classic JSONPath (README, "Redrive rejected events"). */
  private definition(): sfn.IChainable {
    // 1. Validate the input (or take over a predecessor's run): a bad one fails at once, with the reason.
    const validateInput = this.lambdaTask(RedriveStates.validateInput, {
      action: 'start',
      'input.$': '$',
      'executionId.$': '$$.Execution.Id',
    });
    const invalidInput = sfn.Fail.jsonPath(this, RedriveStates.invalidInput, {
      error: 'InvalidRedriveInput',
      causePath: '$.cause',
    });

    // 2. One batch per call; the state carries counts, listed outcomes and receipt handles only.
    // A call that fails past its retries is counted (RecordFailure) and the run goes on.
    const redriveBatch = this.lambdaTask(
      RedriveStates.redriveBatch,
      { action: 'batch', 'run.$': '$' },
      BATCH_RETRY_ERRORS,
    );
    const recordFailure = this.lambdaTask(RedriveStates.recordFailure, { action: 'recover', 'run.$': '$' });

    // 3. Near a quota: the rest of the run in a child execution, waited for. When it fails, its
    // error (which may quote its whole input) is dropped for a short one of our own.
    const startSuccessor = this.successorTask();
    const successorFailed = new sfn.Pass(this, RedriveStates.successorFailed, {
      result: sfn.Result.fromObject({
        Error: 'SuccessorFailed',
        Cause:
          'the successor execution failed, timed out or was stopped: its part of the run is not in this report; ' +
          'open it from this execution in the console',
      }),
      resultPath: '$.error',
    });

    // 4. Make every kept message visible again, then report. Only the first execution fails with
    // the run's error: a successor hands its report back whole.
    const finish = this.lambdaTask(RedriveStates.finish, { action: 'finish', 'run.$': '$' });
    const runFailed = sfn.Fail.jsonPath(this, RedriveStates.runFailed, {
      errorPath: '$.failed.error',
      causePath: '$.failed.cause',
    });
    const finished = sfn.Choice.jsonPath(this, RedriveStates.finished)
      .when(
        sfn.Condition.and(
          sfn.Condition.isPresent('$.failed'),
          // not(isPresent) rather than isNotPresent: aws-local-stepfunctions reads IsPresent: false as never true.
          sfn.Condition.not(sfn.Condition.isPresent('$$.Execution.Input.continueRun')),
        ),
        runFailed,
      )
      .otherwise(new sfn.Succeed(this, 'Done'));
    redriveBatch.addCatch(recordFailure, { errors: ['States.ALL'], resultPath: '$.failure' });
    recordFailure.addCatch(finish, { errors: ['States.ALL'], resultPath: sfn.JsonPath.DISCARD });
    startSuccessor.addCatch(successorFailed, { errors: ['States.ALL'], resultPath: sfn.JsonPath.DISCARD });

    const batchNext = sfn.Choice.jsonPath(this, RedriveStates.batchNext)
      .when(sfn.Condition.stringEquals('$.next', 'receive'), redriveBatch)
      .when(sfn.Condition.stringEquals('$.next', 'successor'), startSuccessor.next(finish))
      .otherwise(finish);
    recordFailure.next(batchNext);
    successorFailed.next(finish);
    const definition = validateInput.next(
      sfn.Choice.jsonPath(this, RedriveStates.inputValid)
        .when(sfn.Condition.booleanEquals('$.valid', false), invalidInput)
        .otherwise(redriveBatch.next(batchNext)),
    );
    finish.next(finished);
    return definition;
  }

  /** Errors only by default; every state's input and output with `logExecutionData`. */
  private executionLogs(id: string, retention: logs.RetentionDays, logExecutionData: boolean): sfn.LogOptions {
    const destination = new logs.LogGroup(this, 'StateMachineLogGroup', {
      // Under /aws/vendedlogs/ so that Step Functions' log delivery needs no growing resource policy.
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-${id}`,
      retention,
      // An explicit name: a retained group would make the next deploy of this stack fail with "already exists".
      removalPolicy: RemovalPolicy.DESTROY,
    });
    return logExecutionData
      ? { destination, level: sfn.LogLevel.ALL, includeExecutionData: true }
      : { destination, level: sfn.LogLevel.ERROR, includeExecutionData: false };
  }

  /**
   * What `startExecution.sync:2` needs to start and wait for a successor: its own ARN would
   * make a cycle through the role's default policy (the state machine waits for it), so a
   * separate policy, attached to the same role.
   */
  private successorPolicy(): void {
    const stack = Stack.of(this);
    const policy = new iam.Policy(this, 'SuccessorPolicy', {
      roles: [this.role],
      statements: [
        new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [this.stateMachine.stateMachineArn] }),
        new iam.PolicyStatement({
          actions: ['states:DescribeExecution', 'states:StopExecution'],
          resources: [
            stack.formatArn({
              service: 'states',
              resource: 'execution',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
              resourceName: `${this.stateMachine.stateMachineName}:*`,
            }),
          ],
        }),
        new iam.PolicyStatement({
          actions: ['events:DescribeRule', 'events:PutRule', 'events:PutTargets'],
          resources: [stack.formatArn({ service: 'events', resource: 'rule', resourceName: SYNC_EVENTS_RULE })],
        }),
      ],
    });
    Validations.of(policy).acknowledge(
      nagAcknowledgement(
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${stack.getLogicalId(this.stateMachine.node.defaultChild as sfn.CfnStateMachine)}.Name>:*]`,
        'startExecution.sync:2 waits for the successor execution with DescribeExecution (and StopExecution when ' +
          'this one is stopped); its execution name is generated at run time, so the ARN names this state ' +
          "machine's executions, not one execution.",
      ),
    );
  }

  /** The cdk-nag findings of the state machine and its role, each with its reason. */
  private acknowledgeStateMachineFindings(logExecutionData: boolean): void {
    if (!logExecutionData) {
      Validations.of(this.stateMachine).acknowledge(
        nagAcknowledgement(
          'AwsSolutions-SF1',
          'The redrive logs errors only by default: logging ALL with execution data would copy stream ids, ' +
            'rejection details and the fix into CloudWatch Logs for the retention period; the context key ' +
            'redriveLogExecutionData=true turns it on for debugging (README, "Redrive rejected events").',
        ),
      );
    }
    Validations.of(this.role).acknowledge(
      nagAcknowledgement(
        'AwsSolutions-IAM5[Resource::*]',
        'Step Functions logging (logs:CreateLogDelivery, logs:GetLogDelivery, logs:UpdateLogDelivery, ' +
          'logs:DeleteLogDelivery, logs:ListLogDeliveries, logs:PutResourcePolicy, logs:DescribeResourcePolicies, ' +
          'logs:DescribeLogGroups) and X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords, ' +
          'xray:GetSamplingRules, xray:GetSamplingTargets) accept no resource ARN; every Lambda and Step ' +
          'Functions statement of this role names its function, this state machine or its executions.',
      ),
    );
  }
}
