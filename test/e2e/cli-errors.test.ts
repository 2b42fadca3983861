import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../local/defaults.ts';
import { freePort } from '../../local/engines/ports.ts';
import { Child, runCli } from './support.ts';

/** Every failure is one clear line on stderr and a non-zero exit code. */
describe('command-line failures', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'event-store-cli-'));
  const servers: Server[] = [];

  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says the local stack is not running', async () => {
    // Act
    const result = await runCli(['stats'], dataDir);

    // Assess
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: 'eventstore: the local stack is not running; start it with npm start\n',
    });
  });

  it('says so when the state file is left from a stack that stopped', async () => {
    // Prepare: a state file whose process is gone
    const gone = new Child(spawn(process.execPath, ['-e', '0']));
    await gone.exited;
    writeFileSync(join(dataDir, 'stack.json'), JSON.stringify({ pid: gone.process.pid }));

    // Act
    const result = await runCli(['read', 'order-1'], dataDir);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'eventstore: the local stack is not running (its state file is left from a stack that stopped); start it with npm start\n',
    );
    rmSync(join(dataDir, 'stack.json'));
  });

  it('asks publish for something to send, and names a file it cannot read', async () => {
    // Act
    const nothing = await runCli(['publish'], dataDir);
    const missing = await runCli(['publish', 'no-such-file.jsonl'], dataDir);
    const notArray = await runCli(['publish', '-'], dataDir, '[{"ID":');

    // Assess
    expect(nothing).toMatchObject({
      code: 1,
      stderr: 'eventstore: publish needs a FILE, - for stdin, or --generate N\n',
    });
    expect(missing).toMatchObject({ code: 1, stderr: 'eventstore: cannot read no-such-file.jsonl: ENOENT\n' });
    expect(notArray.code).toBe(1);
    expect(notArray.stderr).toMatch(/^eventstore: the input starts with \[ but is not a JSON array: .+\n$/);
  });

  it('takes --group-size with --generate only, from 1 to 100', async () => {
    // Act
    const withFile = await runCli(['publish', 'events.jsonl', '--group-size', '3'], dataDir);
    const tooLarge = await runCli(['publish', '--generate', '10', '--group-size', '101'], dataDir);

    // Assess
    expect(withFile).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'eventstore: --group-size goes with --generate N; in a file, write each group as {"ID": ..., "Events": [...]}\n',
    });
    expect(tooLarge).toEqual({
      code: 2,
      stdout: '',
      stderr:
        "eventstore publish: option '--group-size <k>' argument '101' is invalid. --group-size must be an integer from 1 to 100 (a group is one DynamoDB transaction, at most 100 items) (see eventstore publish --help)\n",
    });
  });

  it('rejects a wrong option value with a usage error: one line, exit code 2', async () => {
    // Act
    const result = await runCli(['publish', '--generate', 'many'], dataDir);
    const unknown = await runCli(['stats', '--bogus'], dataDir);
    const noSuchCommand = await runCli(['statistics'], dataDir);

    // Assess
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr:
        "eventstore publish: option '--generate <n>' argument 'many' is invalid. --generate must be an integer >= 1 (see eventstore publish --help)\n",
    });
    expect(unknown).toEqual({
      code: 2,
      stdout: '',
      stderr: "eventstore stats: unknown option '--bogus' (see eventstore stats --help)\n",
    });
    expect(noSuchCommand.code).toBe(2);
    expect(noSuchCommand.stderr).toBe("eventstore: unknown command 'statistics' (see eventstore --help)\n");
  });

  it('gives a nested command the same usage errors: one line naming the command, exit code 2', async () => {
    // Act: `subscriptions resume` is a command of a command (cli/commands/subscriptions.ts)
    const result = await runCli(['subscriptions', 'resume'], dataDir);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "eventstore subscriptions resume: missing required argument 'subscription' (see eventstore subscriptions resume --help)\n",
    );
  });

  it("prints a command's help on stdout with exit code 0", async () => {
    // Act
    const result = await runCli(['read', '--help'], dataDir);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe('Usage: eventstore read [options] <id>');
    expect(result.stdout).toContain('--from <version>  first version (forward from it, or backward from it)');
  });

  it('shows the usage and fails when no command is given', async () => {
    // Act
    const result = await runCli([], dataDir);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe('Usage: eventstore [options] [command]');
  });

  async function startStack(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Child> {
    const child = new Child(
      spawn(
        process.execPath,
        [
          '--disable-warning=ExperimentalWarning',
          '--import',
          'tsx',
          join(PROJECT_ROOT, 'local/start.ts'),
          '--in-memory',
          '--data-dir',
          dataDir,
          ...args,
        ],
        {
          cwd: PROJECT_ROOT,
          env,
        },
      ),
    );
    await child.exited;
    return child;
  }

  it('npm start names a port that is taken', async () => {
    // Prepare
    const port = await freePort();
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));

    // Act
    const child = await startStack(['--dynamodb-port', '0', '--sfn-port', '0', '--sqs-port', String(port)]);

    // Assess
    expect(child.process.exitCode).toBe(1);
    expect(child.stderr).toBe(
      `npm start: port ${port} is taken: the local SQS server cannot listen on it (choose another with --sqs-port)\n`,
    );
  });

  it('npm start says Java is missing', async () => {
    // Act: no java on PATH (node itself is started by its absolute path)
    const child = await startStack(['--dynamodb-port', '0', '--sqs-port', '0', '--sfn-port', '0'], {
      ...process.env,
      PATH: join(dataDir, 'empty-bin'),
    });

    // Assess
    expect(child.process.exitCode).toBe(1);
    expect(child.stderr).toBe(
      'npm start: Java was not found on PATH: DynamoDB Local needs a Java runtime (17 or later), e.g. apt-get install openjdk-17-jre-headless\n',
    );
  });
});
