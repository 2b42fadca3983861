import {
  DescribeExecutionCommand,
  ExecutionDoesNotExist,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/engines/ports.ts';
import { startSfnServer, type SfnServer } from '../../local/sfn-server.ts';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:Echo';

describe('the loopback Step Functions API, through @aws-sdk/client-sfn', () => {
  let server: SfnServer;
  let sfn: SFNClient;

  beforeAll(async () => {
    server = await startSfnServer([
      {
        arn: ARN,
        name: 'Echo',
        run: async (input) => {
          const { fail } = input as { fail?: string };
          if (fail) {
            const error = new Error(fail);
            error.name = 'EchoFailed';
            throw error;
          }
          return { echoed: input };
        },
      },
    ]);
    sfn = new SFNClient({ endpoint: server.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  });

  afterAll(async () => {
    sfn.destroy();
    await server.stop();
  });

  async function finished(executionArn: string) {
    let described = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    await waitUntil(async () => {
      described = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      return described.status !== 'RUNNING';
    }, executionArn, 5_000);
    return described;
  }

  it('starts an execution, describes its output and lists it', async () => {
    // Act
    const started = await sfn.send(new StartExecutionCommand({ stateMachineArn: ARN, name: 'first', input: '{"a":1}' }));
    const described = await finished(started.executionArn!);
    const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn: ARN }));

    // Assess
    expect(started.executionArn).toBe('arn:aws:states:us-east-1:000000000000:execution:Echo:first');
    expect(started.startDate).toBeInstanceOf(Date);
    expect(described).toMatchObject({ status: 'SUCCEEDED', name: 'first', stateMachineArn: ARN, input: '{"a":1}' });
    expect(JSON.parse(described.output!)).toEqual({ echoed: { a: 1 } });
    expect(described.stopDate).toBeInstanceOf(Date);
    expect(listed.executions?.map((execution) => [execution.name, execution.status])).toContainEqual(['first', 'SUCCEEDED']);
  });

  it('reports a failed execution with its error and cause', async () => {
    // Act
    const started = await sfn.send(new StartExecutionCommand({ stateMachineArn: ARN, input: '{"fail":"no queue"}' }));
    const described = await finished(started.executionArn!);

    // Assess
    expect(described).toMatchObject({ status: 'FAILED', error: 'EchoFailed', cause: 'no queue' });
  });

  it('answers unknown state machines and executions with the AWS error types', async () => {
    // Act
    const unknownMachine = sfn.send(new StartExecutionCommand({ stateMachineArn: `${ARN}Nope`, input: '{}' }));
    const unknownExecution = sfn.send(new DescribeExecutionCommand({ executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:nope` }));

    // Assess
    await expect(unknownMachine).rejects.toBeInstanceOf(StateMachineDoesNotExist);
    await expect(unknownMachine).rejects.toThrow(`State Machine Does Not Exist: '${ARN}Nope'`);
    await expect(unknownExecution).rejects.toBeInstanceOf(ExecutionDoesNotExist);
    await expect(unknownExecution).rejects.toThrow("Execution Does Not Exist: 'arn:aws:states:us-east-1:000000000000:execution:Echo:nope'");
  });
});
