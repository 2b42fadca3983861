import { Duration, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';

const PROJECT_ROOT = fileURLToPath(new URL('../', import.meta.url));
/** The workflow's Lambda: input validation, filter/fix/re-validate, tally. */
export const REDRIVE_PREPARE_ENTRY = fileURLToPath(new URL('../handlers/redrive-prepare.ts', import.meta.url));

/** SQS errors (as Step Functions names them: `Sqs.<Name>Exception`) that are worth a retry. */
export const SQS_RETRY_ERRORS = [
  'Sqs.RequestThrottledException',
  'Sqs.ThrottlingException',
  'Sqs.KmsThrottledException',
  'Sqs.SdkClientException',
] as const;

/** What the state machine's role may do, and on which queue (template tests pin these). */
export const REDRIVE_DLQ_ACTIONS = ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage'] as const;
export const REDRIVE_SOURCE_ACTIONS = ['sqs:SendMessage'] as const;

/** Names of the states the local runner and the tests refer to. */
export const RedriveStates = {
  validateInput: 'ValidateInput',
  invalidInput: 'InvalidInput',
  receiveBatch: 'ReceiveBatch',
  planBatch: 'PlanBatch',
  redriveEach: 'RedriveEach',
  sendToSource: 'SendToSource',
  deleteFromDlq: 'DeleteFromDlq',
  releaseNow: 'ReleaseNow',
  tallyBatch: 'TallyBatch',
  releaseStayed: 'ReleaseStayed',
  releaseKept: 'ReleaseKept',
  report: 'Report',
} as const;

export interface RedriveWorkflowProps {
  /** Where rejected events wait. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The ingest queue they go back to. */
  readonly sourceQueue: sqs.IQueue;
  /** FIFO queues: message group = `ID`, one message of a stream at a time. */
  readonly fifo: boolean;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** The Lambda handler's entry (tests). @default REDRIVE_PREPARE_ENTRY */
  readonly entry?: string;
}

/**
 * The redrive workflow (DESIGN section 6): a Step Functions state machine, in classic
 * JSONPath so that `aws-local-stepfunctions` runs the very same definition locally, that
 * drains the DLQ in a loop, fixes and re-validates each message and sends the valid ones
 * back to the source queue. Start it from the console with `{}` or with options.
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
    const { deadLetterQueue: dlq, sourceQueue: source, fifo } = props;
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    // The Lambda: pure logic (core/redrive.ts), no AWS calls, so its role only writes its logs
    // and traces.
    const functionLogs = new logs.LogGroup(this, 'PrepareLogGroup', { retention });
    const functionRole = new iam.Role(this, 'PrepareRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Redrive workflow Lambda: validate input, fix and re-validate events (no AWS calls)',
    });
    functionRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [functionLogs.logGroupArn],
      }),
    );
    this.function = new nodejs.NodejsFunction(this, 'Prepare', {
      entry: props.entry ?? REDRIVE_PREPARE_ENTRY,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.seconds(30),
      role: functionRole,
      logGroup: functionLogs,
      tracing: lambda.Tracing.ACTIVE,
      description: 'Redrive workflow: validate input, filter, fix and re-validate dead-lettered events',
      bundling: {
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
      },
    });

    Validations.of(functionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords accept no resource ARN, so AWS ' +
        'requires Resource "*" for them; the only other statement names the function\'s own log group.',
    });

    const invokePrepare = (stateId: string, parameters: Record<string, unknown>): sfn.CustomState => {
      // A Task with the function ARN as Resource (the payload is the result). Written by hand
      // rather than with LambdaInvoke, which would also grant invoke on every version (`:*`).
      const state = new sfn.CustomState(this, stateId, {
        stateJson: { Type: 'Task', Resource: this.function.functionArn, Parameters: parameters },
      });
      state.addRetry({
        errors: ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'],
        interval: Duration.seconds(2),
        maxAttempts: 6,
        backoffRate: 2,
        jitterStrategy: sfn.JitterType.FULL,
      });
      return state;
    };
    const retryThrottling = <T extends sfn.TaskStateBase>(task: T): T => {
      task.addRetry({
        errors: [...SQS_RETRY_ERRORS],
        interval: Duration.seconds(1),
        maxAttempts: 5,
        backoffRate: 2,
        maxDelay: Duration.seconds(20),
        jitterStrategy: sfn.JitterType.FULL,
      });
      return task;
    };
    const itemResult = (outcome: string, withError: boolean): Record<string, unknown> => ({
      'messageId.$': '$.messageId',
      'receiptHandle.$': '$.receiptHandle',
      'streamId.$': '$.streamId',
      outcome,
      ...(withError ? { 'reason.$': '$.error.Error', 'detail.$': '$.error.Cause' } : {}),
    });

    // 1. Validate the input: a bad one fails the execution at once, with the reason.
    const validateInput = invokePrepare(RedriveStates.validateInput, { action: 'start', 'input.$': '$' });
    const invalidInput = sfn.Fail.jsonPath(this, RedriveStates.invalidInput, {
      error: 'InvalidRedriveInput',
      causePath: '$.cause',
    });

    // 2. Receive a batch from the DLQ, hidden from others for the whole run.
    const receiveBatch = retryThrottling(
      tasks.CallAwsService.jsonPath(this, RedriveStates.receiveBatch, {
        service: 'sqs',
        action: 'receiveMessage',
        iamAction: 'sqs:ReceiveMessage',
        iamResources: [dlq.queueArn],
        parameters: {
          QueueUrl: dlq.queueUrl,
          MaxNumberOfMessages: sfn.JsonPath.numberAt('$.summary.nextBatchSize'),
          VisibilityTimeout: sfn.JsonPath.numberAt('$.options.visibilityTimeoutSeconds'),
          WaitTimeSeconds: 1,
          AttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        },
        resultPath: '$.received',
      }),
    );

    // 3. Plan: filter, fix, re-validate each message.
    const planBatch = invokePrepare(RedriveStates.planBatch, {
      action: 'plan',
      fifo,
      'options.$': '$.options',
      'summary.$': '$.summary',
      'received.$': '$.received',
    });

    // 4. One message at a time in FIFO mode (a stream's order), ten at a time otherwise.
    const sendToSource = retryThrottling(
      tasks.CallAwsService.jsonPath(this, RedriveStates.sendToSource, {
        service: 'sqs',
        action: 'sendMessage',
        iamAction: 'sqs:SendMessage',
        iamResources: [source.queueArn],
        parameters: {
          QueueUrl: source.queueUrl,
          MessageBody: sfn.JsonPath.stringAt('$.body'),
          MessageAttributes: sfn.JsonPath.objectAt('$.messageAttributes'),
          ...(fifo
            ? {
                MessageGroupId: sfn.JsonPath.stringAt('$.groupId'),
                MessageDeduplicationId: sfn.JsonPath.stringAt('$.deduplicationId'),
              }
            : {}),
        },
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );
    const deleteFromDlq = retryThrottling(
      tasks.CallAwsService.jsonPath(this, RedriveStates.deleteFromDlq, {
        service: 'sqs',
        action: 'deleteMessage',
        iamAction: 'sqs:DeleteMessage',
        iamResources: [dlq.queueArn],
        parameters: { QueueUrl: dlq.queueUrl, ReceiptHandle: sfn.JsonPath.stringAt('$.receiptHandle') },
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );
    const releaseNow = retryThrottling(
      tasks.CallAwsService.jsonPath(this, RedriveStates.releaseNow, {
        service: 'sqs',
        action: 'changeMessageVisibility',
        iamAction: 'sqs:ChangeMessageVisibility',
        iamResources: [dlq.queueArn],
        parameters: {
          QueueUrl: dlq.queueUrl,
          ReceiptHandle: sfn.JsonPath.stringAt('$.receiptHandle'),
          VisibilityTimeout: 0,
        },
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );
    const redriven = sfn.Pass.jsonPath(this, 'Redriven', { parameters: itemResult('redriven', false) });
    const sendFailed = sfn.Pass.jsonPath(this, 'SendFailed', { parameters: itemResult('sendFailed', true) });
    const deleteFailed = sfn.Pass.jsonPath(this, 'DeleteFailed', { parameters: itemResult('deleteFailed', true) });
    const released = sfn.Pass.jsonPath(this, 'Released', {
      parameters: { 'messageId.$': '$.messageId', released: true },
    });
    const keepInDlq = sfn.Pass.jsonPath(this, 'KeepInDlq', {
      parameters: {
        'messageId.$': '$.messageId',
        'receiptHandle.$': '$.receiptHandle',
        'streamId.$': '$.streamId',
        'outcome.$': '$.outcome',
        'reason.$': '$.reason',
        'detail.$': '$.detail',
      },
    });
    // A failed send leaves the message in the DLQ; it is deleted only after its send succeeded.
    sendToSource.addCatch(sendFailed, { errors: ['States.ALL'], resultPath: '$.error' });
    deleteFromDlq.addCatch(deleteFailed, { errors: ['States.ALL'], resultPath: '$.error' });
    // A release that fails only means the message waits for its visibility timeout.
    releaseNow.addCatch(released, { errors: ['States.ALL'], resultPath: '$.error' });

    const itemAction = sfn.Choice.jsonPath(this, 'ItemAction')
      .when(sfn.Condition.stringEquals('$.action', 'send'), sendToSource.next(deleteFromDlq).next(redriven))
      .when(sfn.Condition.stringEquals('$.action', 'release'), releaseNow.next(released))
      .otherwise(keepInDlq);
    const redriveEach = sfn.Map.jsonPath(this, RedriveStates.redriveEach, {
      itemsPath: '$.items',
      maxConcurrency: fifo ? 1 : 10,
      resultPath: '$.results',
    }).itemProcessor(itemAction);

    // 5. Tally and loop.
    const tallyBatch = invokePrepare(RedriveStates.tallyBatch, {
      action: 'tally',
      'options.$': '$.options',
      'summary.$': '$.summary',
      'results.$': '$.results',
    });

    // 6. Make what stayed visible again (dry run: the queue is as it was), then report.
    const releaseKept = retryThrottling(
      tasks.CallAwsService.jsonPath(this, RedriveStates.releaseKept, {
        service: 'sqs',
        action: 'changeMessageVisibility',
        iamAction: 'sqs:ChangeMessageVisibility',
        iamResources: [dlq.queueArn],
        parameters: {
          QueueUrl: dlq.queueUrl,
          ReceiptHandle: sfn.JsonPath.stringAt('$.receiptHandle'),
          VisibilityTimeout: 0,
        },
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );
    releaseKept.addCatch(sfn.Pass.jsonPath(this, 'ReleaseKeptFailed'), { errors: ['States.ALL'], resultPath: '$.error' });
    const releaseStayed = sfn.Map.jsonPath(this, RedriveStates.releaseStayed, {
      itemsPath: '$.summary.release',
      maxConcurrency: 10,
      resultPath: sfn.JsonPath.DISCARD,
    }).itemProcessor(releaseKept);
    const report = sfn.Pass.jsonPath(this, RedriveStates.report, { outputPath: '$.summary.report' });
    releaseStayed.next(report);

    const definition = validateInput.next(
      sfn.Choice.jsonPath(this, 'InputValid')
        .when(sfn.Condition.booleanEquals('$.valid', false), invalidInput)
        .otherwise(
          receiveBatch.next(planBatch).next(
            sfn.Choice.jsonPath(this, 'AnyMessages')
              .when(
                sfn.Condition.booleanEquals('$.hasItems', true),
                redriveEach
                  .next(tallyBatch)
                  .next(
                    sfn.Choice.jsonPath(this, 'ReceiveMore')
                      .when(sfn.Condition.booleanEquals('$.more', true), receiveBatch)
                      .otherwise(releaseStayed),
                  ),
              )
              .otherwise(releaseStayed),
          ),
        ),
    );

    const stateMachineLogs = new logs.LogGroup(this, 'StateMachineLogGroup', { retention });
    this.role = new iam.Role(this, 'StateMachineRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: 'Redrive workflow: receive/delete/change visibility on the DLQ, send to the source queue',
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: 'Redrive rejected events: fix and re-validate dead-lettered events, send the valid ones back',
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      role: this.role,
      timeout: Duration.hours(13),
      tracingEnabled: true,
      logs: { destination: stateMachineLogs, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.function.functionArn] }),
    );

    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Step Functions logging (logs:CreateLogDelivery, logs:GetLogDelivery, logs:UpdateLogDelivery, ' +
        'logs:DeleteLogDelivery, logs:ListLogDeliveries, logs:PutResourcePolicy, logs:DescribeResourcePolicies, ' +
        'logs:DescribeLogGroups) and X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords, ' +
        'xray:GetSamplingRules, xray:GetSamplingTargets) accept no resource ARN; every SQS and Lambda ' +
        'statement of this role names its queue or function.',
    });
  }
}
