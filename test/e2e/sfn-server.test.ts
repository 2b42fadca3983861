import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_ACCOUNT, LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { startSfnServer, type SfnServer } from '../../local/sfn-server.ts';

const ARN = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:Echo`;
const EXECUTION_ARN = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:execution:Echo`;
const DEFINITION = '{"StartAt":"Echo","States":{"Echo":{"Type":"Pass","End":true}}}';

describe('the loopback Step Functions API, through @aws-sdk/client-sfn', () => {
  let server: SfnServer;
  let sfn: SFNClient;

  beforeAll(async () => {
    server = await startSfnServer([
      {
        arn: ARN,
        name: 'Echo',
        definition: DEFINITION,
        run: async (input, execution) => {
          const { fail, child } = input as { fail?: string; child?: boolean };
          // Like the redrive runner: report this execution's history, and a successor's.
          const history = ['ExecutionStarted', 'PassStateEntered', 'PassStateExited', 'ExecutionSucceeded'].map(
            (type, index) => ({
              id: index + 1,
              previousEventId: index,
              timestamp: Date.now(),
              type,
              ...(type.startsWith('Pass') ? { stateName: 'Echo' } : {}),
            }),
          );
          execution.track({
            executionArn: execution.executionArn,
            name: execution.name,
            input,
            startDate: Date.now(),
            status: 'RUNNING',
            history,
          });
          if (child) {
            execution.track({
              executionArn: `${execution.executionArn}-child`,
              name: `${execution.name}-child`,
              input: { continued: true },
              startDate: Date.now(),
              stopDate: Date.now(),
              status: 'SUCCEEDED',
              output: { done: true },
              history: history.slice(0, 2),
            });
          }
          if (fail) {
            const error = new Error(fail);
            error.name = 'EchoFailed';
            throw error;
          }
          return { echoed: input };
        },
      },
    ]);
    sfn = new SFNClient({ endpoint: server.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  });

  afterAll(async () => {
    sfn.destroy();
    await server.stop();
  });

  async function finished(executionArn: string) {
    let described = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    await waitUntil(
      async () => {
        described = await sfn.send(new DescribeExecutionCommand({ executionArn }));
        return described.status !== 'RUNNING';
      },
      executionArn,
      5_000,
    );
    return described;
  }

  it('starts an execution, describes its output and lists it', async () => {
    // Act
    const started = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: ARN, name: 'first', input: '{"a":1}' }),
    );
    const described = await finished(started.executionArn!);
    const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn: ARN }));

    // Assess
    expect(started.executionArn).toBe(`${EXECUTION_ARN}:first`);
    expect(started.startDate).toBeInstanceOf(Date);
    expect(described).toMatchObject({ status: 'SUCCEEDED', name: 'first', stateMachineArn: ARN, input: '{"a":1}' });
    expect(JSON.parse(described.output!)).toEqual({ echoed: { a: 1 } });
    expect(described.stopDate).toBeInstanceOf(Date);
    expect(listed.executions?.map((execution) => [execution.name, execution.status])).toContainEqual([
      'first',
      'SUCCEEDED',
    ]);
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
    const unknownExecution = sfn.send(
      new DescribeExecutionCommand({ executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:nope` }),
    );

    // Assess
    await expect(unknownMachine).rejects.toBeInstanceOf(StateMachineDoesNotExist);
    await expect(unknownMachine).rejects.toThrow(`State Machine Does Not Exist: '${ARN}Nope'`);
    await expect(unknownExecution).rejects.toBeInstanceOf(ExecutionDoesNotExist);
    await expect(unknownExecution).rejects.toThrow(`Execution Does Not Exist: '${EXECUTION_ARN}:nope'`);
  });

  it('lists and describes the state machine, with its definition', async () => {
    // Act
    const listed = await sfn.send(new ListStateMachinesCommand({}));
    const described = await sfn.send(new DescribeStateMachineCommand({ stateMachineArn: ARN }));

    // Assess
    expect(listed.stateMachines).toEqual([
      { stateMachineArn: ARN, name: 'Echo', type: 'STANDARD', creationDate: expect.any(Date) },
    ]);
    expect(described).toMatchObject({
      stateMachineArn: ARN,
      name: 'Echo',
      status: 'ACTIVE',
      type: 'STANDARD',
      definition: DEFINITION,
    });
  });

  it("returns an execution's history, in pages and in reverse, and describes the successor it started", async () => {
    // Prepare
    const started = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: ARN, name: 'traced', input: '{"child":true}' }),
    );
    await finished(started.executionArn!);

    // Act
    const firstPage = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn: started.executionArn!, maxResults: 3 }),
    );
    const secondPage = await sfn.send(
      new GetExecutionHistoryCommand({
        executionArn: started.executionArn!,
        maxResults: 3,
        nextToken: firstPage.nextToken!,
      }),
    );
    const reversed = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn: started.executionArn!, reverseOrder: true }),
    );
    const child = await sfn.send(new DescribeExecutionCommand({ executionArn: `${started.executionArn!}-child` }));
    const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn: ARN }));

    // Assess
    expect(firstPage.events?.map((event) => event.type)).toEqual([
      'ExecutionStarted',
      'PassStateEntered',
      'PassStateExited',
    ]);
    expect(firstPage.events?.[1]).toMatchObject({
      id: 2,
      previousEventId: 1,
      stateEnteredEventDetails: { name: 'Echo' },
    });
    expect(secondPage.events?.map((event) => event.type)).toEqual(['ExecutionSucceeded']);
    expect(secondPage.nextToken).toBeUndefined();
    expect(reversed.events?.map((event) => event.id)).toEqual([4, 3, 2, 1]);
    expect(child).toMatchObject({
      status: 'SUCCEEDED',
      name: 'traced-child',
      input: '{"continued":true}',
      output: '{"done":true}',
    });
    expect(listed.executions?.map((execution) => execution.name)).toEqual(
      expect.arrayContaining(['traced', 'traced-child']),
    );
  });
});
