/**
 * `npm start`: the whole event store on this machine, in the foreground, until Ctrl-C.
 *
 *   npm start -- --queue fifo --in-memory --concurrency 2
 *   npm start -- -c batchSize=3 -c maxBatchingWindowSeconds=2   (as cdk deploy -c key=value)
 */
import { Command, Option } from 'commander';
import { relative } from 'node:path';
import { collect, dataDirOption, integer, port } from './options.ts';
import type { QueueMode } from '../core/store.ts';
import { startConsole, type ConsoleServer } from '../cli/console/server.ts';
import { startLocalStack, type LocalStack } from './stack.ts';
import { parseStartContext } from './start-context.ts';
import { dataDirectory, runningStack, stateFile, stopOrphanedDynamoDb } from './state.ts';
import { QUEUE_MODES } from '../core/queue-mode.ts';
import { LocalPorts } from './defaults.ts';

interface StartOptions {
  queue?: QueueMode;
  context: string[];
  inMemory: boolean;
  concurrency?: number;
  dataDir?: string;
  dynamodbPort: number;
  sqsPort: number;
  sfnPort: number;
  visibilityTimeout?: number;
  console: boolean;
  consolePort: number;
}

function summary(stack: LocalStack, visibilityOverride: number | undefined, web: ConsoleServer | undefined): string {
  const { state, definitions } = stack;
  const where = state.inMemory
    ? 'in memory: nothing is kept after Ctrl-C'
    : `on disk in ${relative(process.cwd(), state.dataDir) || '.'}`;
  const consumer = definitions.consumer;
  return [
    `Event store running locally: ${state.queueMode} queue, data ${where}`,
    '',
    `  DynamoDB        ${state.dynamoDbEndpoint}   table ${state.tableName}`,
    `  SQS             ${state.sqsEndpoint}`,
    `  queue           ${state.queueUrl}`,
    `  dead letters    ${state.deadLetterQueueUrl}`,
    `  Step Functions  ${state.sfnEndpoint}   ${state.stateMachineArn}`,
    `  consumers       ${state.concurrency} poller(s), batch size ${consumer.batchSize}, batching window ${consumer.maximumBatchingWindowInSeconds} s, function timeout ${consumer.timeoutSeconds} s`,
    `  queue settings  visibility timeout ${visibilityOverride ?? definitions.queue.visibilityTimeout ?? 30} s, maxReceiveCount ${definitions.queue.maxReceiveCount ?? '-'}`,
    `  subscriptions   ${(state.subscriptions ?? []).map((s) => s.name).join(', ') || 'none'} (on the table's stream)`,
    `  state file      ${stateFile(state.dataDir)}`,
    `  console         ${web ? web.url : 'off (--no-console)'}`,
    '',
    'Try, in another terminal:',
    '  npx eventstore publish --generate 1000 --streams 20',
    '  npx eventstore stats',
    '  npx eventstore read <ID>',
    '  npx eventstore rejected',
    '  npx eventstore redrive --dry-run',
    '  npx eventstore subscriptions',
    '  npx eventstore summary',
    '  npx eventstore tail',
    '',
    `The ingest handler's Powertools logs follow (level ${process.env['POWERTOOLS_LOG_LEVEL'] ?? 'INFO'}; set POWERTOOLS_LOG_LEVEL=DEBUG for event bodies).`,
    'Press Ctrl-C to stop.',
  ].join('\n');
}

/**
 * `npm start -c batchSize=3` or `npm start --in-memory` (without `--`): npm takes the options for
 * itself and runs the script without them, leaving what it took in its environment:
 * `npm_config_call` for `-c` (npm's `--call`; only the last one), `npm_config_<name>` for a long
 * option (`true` when its value went on as a plain argument; `--no-console` leaves an empty
 * `npm_config_console`). The stack would start with other settings than the user asked for: say so
 * and how to write it.
 */
function npmTookOptions(command: Command, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const call = env['npm_config_call'];
  if (call !== undefined && call !== '') {
    return `npm took -c ${call} for itself (npm's --call), so the stack would start without it; put npm start's options after --: npm start -- -c ${call} (each -c after the --)`;
  }
  const taken: string[] = [];
  for (const option of command.options) {
    const name = option.long?.replace(/^--(no-)?/, '');
    const value = name === undefined ? undefined : env[`npm_config_${name.replace(/-/g, '_')}`];
    if (name === undefined || value === undefined) continue;
    const long = value === '' || value === 'false' ? `--no-${name}` : `--${name}`;
    const known = command.options.find((candidate) => candidate.long === long);
    // `--queue <mode>`, as the help writes it (without a short form such as `-c, `).
    const written = known?.flags.replace(/^-\w, /, '');
    if (written !== undefined && !taken.includes(written)) taken.push(written);
  }
  if (taken.length === 0) return undefined;
  const names = taken.map((flags) => flags.split(' ')[0]).join(', ');
  return `npm took ${names} for itself, so the stack would start without ${taken.length > 1 ? 'them' : 'it'}; put npm start's options after --: npm start -- ${taken.join(' ')}`;
}

/** `npm start`'s options, parsed from the command line (README "Local mode" lists them). */
function parseStartOptions(): StartOptions {
  const command = startCommand();
  const tookOptions = npmTookOptions(command);
  if (tookOptions) throw new Error(tookOptions);
  return command.parse().opts<StartOptions>();
}

function startCommand(): Command {
  return new Command('npm start')
    .description(
      'Run the event store locally: DynamoDB Local, an SQS server, the ingest handler and the redrive workflow',
    )
    .configureOutput({
      // One line, as every failure (README "Local mode").
      outputError: (text, write) =>
        write(`npm start: ${text.trim().replace(/^error: /, '')} (see npm start -- --help)\n`),
    })
    .addOption(new Option('--queue <mode>', 'queue mode (default: standard)').choices(QUEUE_MODES))
    .option(
      '-c, --context <key=value>',
      'a cdk deploy context key, repeatable (batchSize, maxBatchingWindowSeconds, maxConcurrency, maxReceiveCount, ' +
        'dedupWindow, resendWindow, functionTimeoutSeconds, visibilityTimeoutSeconds, logLevel, queue)',
      collect,
      [] as string[],
    )
    .option('--in-memory', 'keep nothing on disk', false)
    .option('--concurrency <n>', 'pollers feeding the handler at once', integer(0, '--concurrency'))
    .addOption(dataDirOption('data folder (default: $EVENTSTORE_DATA_DIR or .data in the project)'))
    .option('--dynamodb-port <port>', 'DynamoDB Local port (0 = any free port)', port, LocalPorts.dynamoDb)
    .option('--sqs-port <port>', 'SQS server port (0 = any free port)', port, LocalPorts.sqs)
    .option('--sfn-port <port>', 'Step Functions API port (0 = any free port)', port, LocalPorts.stepFunctions)
    .option('--no-console', 'do not serve the console (a web page on 127.0.0.1: rejected events, redrive, streams)')
    .option('--console-port <port>', 'console port (default: any free port)', port, 0)
    .addOption(
      new Option('--visibility-timeout <seconds>', 'override the queue visibility timeout')
        .argParser(integer(0, '--visibility-timeout'))
        .hideHelp(),
    );
}

async function main(): Promise<void> {
  const options = parseStartOptions();
  const { queueMode, context, ignored } = parseStartContext(options.context, options.queue);
  if (ignored.length > 0) console.log(`Ignored locally (a deployed stack's settings): ${ignored.join(', ')}`);
  const dataDir = dataDirectory(options.dataDir);
  const running = runningStack(dataDir);
  if (running) {
    throw new Error(
      `a local stack is already running with data folder ${dataDir} (pid ${running.pid}); stop it first or use --data-dir`,
    );
  }
  const orphan = await stopOrphanedDynamoDb(dataDir);
  if (orphan !== undefined)
    console.log(`Stopped DynamoDB Local (pid ${orphan}), left running by an earlier npm start on this data folder.`);
  console.log(`Starting the local event store (${queueMode} queue)...`);
  // Ctrl-C while starting: exit at once (the exit handler takes DynamoDB Local's Java along).
  const abortStart = () => process.exit(130);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.once(signal, abortStart);
  const stack = await startLocalStack({
    queueMode,
    context,
    inMemory: options.inMemory,
    dataDir,
    dynamoDbPort: options.dynamodbPort,
    sqsPort: options.sqsPort,
    sfnPort: options.sfnPort,
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.visibilityTimeout !== undefined ? { visibilityTimeout: options.visibilityTimeout } : {}),
    onStep: (step) => console.log(`  ${step}...`),
    onError: (error) => console.error(`consumer: ${error.message}`),
    onBatch: (report) => {
      // Like a Lambda function error: the whole batch comes back after the visibility timeout.
      if (report.error)
        console.error(
          `consumer: the handler failed (${report.error.name}: ${report.error.message}); ${report.received} message(s) will be retried`,
        );
    },
  });
  // The console (README "The console"); a port it cannot take stops the stack again.
  const web = options.console
    ? await startConsole({ dataDir, port: options.consolePort }).catch(async (error: unknown) => {
        await stack.stop();
        throw error;
      })
    : undefined;
  for (const signal of signals) process.off(signal, abortStart);
  console.log(summary(stack, options.visibilityTimeout, web));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      console.error('Stopping immediately.');
      process.exit(130);
    }
    stopping = true;
    console.log(`\n${signal}: stopping (batches in flight finish; Ctrl-C again to force)...`);
    void web?.stop();
    stack.stop().then(
      () => {
        console.log('Stopped.');
        process.exit(0);
      },
      (error: unknown) => {
        console.error(`error while stopping: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // The terminal closed: stop the same way, so no Java process is left behind.
  process.on('SIGHUP', () => stop('SIGHUP'));
}

main().catch((error: unknown) => {
  console.error(`npm start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
