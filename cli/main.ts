/**
 * `npx eventstore <command>`: publish events, read a stream, list and redrive rejected events,
 * show stats, follow subscriptions and the table's stream, against the running local stack (default) or a deployed stack (`--stack NAME`).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DynamoDbEventStore } from '../adapters/dynamodb-store.ts';
import { formatEvents, formatRejected, peekDeadLetters, queueDepth, storedEventCount } from './inspect.ts';
import { generateEvents, progressBar, publishMessages, readEventsInput, type Outgoing } from './publish.ts';
import { formatRedrive, redriveInput, runRedrive } from './redrive.ts';
import { registerSubscriptionCommands } from './subscriptions.ts';
import { CliError, resolveTarget, type Target, type TargetOptions } from './target.ts';

function integer(min: number, what: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min) throw new InvalidArgumentError(`${what} must be an integer >= ${min}`);
    return number;
  };
}

function ratio(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 1) throw new InvalidArgumentError('must be a number from 0 to 1');
  return number;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Run a command against its target, and always close the target's clients. */
async function withTarget(command: Command, action: (target: Target) => Promise<void>): Promise<void> {
  const target = await resolveTarget(command.optsWithGlobals<TargetOptions>());
  try {
    await action(target);
  } finally {
    target.close();
  }
}

/** One line for a failure the user can act on. */
export function describeFailure(error: unknown): string {
  if (error instanceof CliError) return error.message;
  const code = (error as { code?: string; cause?: { code?: string } }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  if (code === 'ECONNREFUSED') return 'the local stack does not answer (connection refused): is npm start still running?';
  if (error instanceof Error) return `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`;
  return String(error);
}

export function buildProgram(): Command {
  const program = new Command('eventstore')
    .description('Work with the event store: the local stack (npm start) by default, or a deployed stack with --stack')
    .option('--stack <name>', 'a deployed CloudFormation stack (reads its outputs)')
    .option('--region <region>', "AWS region of --stack (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)")
    .option('--data-dir <dir>', 'data folder of the local stack (default: $EVENTSTORE_DATA_DIR or .data in the project)')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });

  program
    .command('publish')
    .description('send events: a file of JSON lines or a JSON array (- for stdin), or generated ones')
    .argument('[file]', 'JSON lines or a JSON array; - reads stdin')
    .option('--generate <n>', 'generate N events instead of reading a file', integer(1, '--generate'))
    .option('--streams <m>', 'generated events go round-robin to M streams', integer(1, '--streams'), 10)
    .option('--invalid-ratio <r>', 'share of generated events made invalid (EmitterType missing)', ratio, 0)
    .option('--stream-prefix <prefix>', 'generated stream ids are <prefix>-1 ... <prefix>-M (default: stream-<random>)')
    .option('--parallel <n>', 'batches of 10 in flight at once', integer(1, '--parallel'), 8)
    .action(async (file: string | undefined, options: { generate?: number; streams: number; invalidRatio: number; streamPrefix?: string; parallel: number }, command: Command) => {
      if (file === undefined && options.generate === undefined) throw new CliError('publish needs a FILE, - for stdin, or --generate N');
      if (file !== undefined && options.generate !== undefined) throw new CliError('publish takes a FILE or --generate N, not both');
      let messages: Outgoing[];
      let note = '';
      if (options.generate !== undefined) {
        const generated = generateEvents({
          count: options.generate,
          streams: options.streams,
          invalidRatio: options.invalidRatio,
          ...(options.streamPrefix ? { streamPrefix: options.streamPrefix } : {}),
        });
        messages = generated.events;
        const ids = generated.streamIds;
        note = `streams ${ids.length > 3 ? `${ids[0]} ... ${ids[ids.length - 1]}` : ids.join(', ')}; ${generated.invalid} invalid on purpose`;
      } else {
        messages = await readEventsInput(file!);
      }
      await withTarget(command, async (target) => {
        const tty = process.stdout.isTTY === true;
        const report = await publishMessages(target, messages, {
          parallel: options.parallel,
          ...(tty ? { onProgress: (done, total) => process.stdout.write(`\r${progressBar(done, total)}`) } : {}),
        });
        if (tty) process.stdout.write('\n');
        const rate = report.seconds > 0 ? Math.round(report.sent / report.seconds) : report.sent;
        print(`published ${report.sent} of ${messages.length} events to ${target.label} (${target.queueMode} queue) in ${report.seconds.toFixed(1)} s, ${rate}/s${note ? `; ${note}` : ''}`);
        if (options.generate !== undefined) print(`next: npx eventstore read ${generateFirstId(messages)}`);
        if (report.failed > 0) throw new CliError(`${report.failed} events could not be sent: ${report.errors.slice(0, 3).join('; ')}`);
      });
    });

  program
    .command('read')
    .description("read a stream's events")
    .argument('<id>', 'the stream (the events\' ID)')
    .option('--from <version>', 'first version (forward from it, or backward from it)', integer(1, '--from'))
    .option('--backward', 'newest first', false)
    .option('--limit <n>', 'at most N events', integer(1, '--limit'))
    .option('--json', 'print JSON', false)
    .action(async (id: string, options: { from?: number; backward: boolean; limit?: number; json: boolean }, command: Command) => {
      await withTarget(command, async (target) => {
        const store = new DynamoDbEventStore({ client: target.dynamo, tableName: target.tableName });
        const result = await store.readStream(id, {
          direction: options.backward ? 'backward' : 'forward',
          ...(options.from !== undefined ? { fromVersion: options.from } : {}),
          ...(options.limit !== undefined ? { limit: options.limit } : {}),
        });
        if (options.json) {
          print(JSON.stringify({ streamId: id, version: result.version, events: result.events }, null, 2));
          return;
        }
        if (result.version === 0) throw new CliError(`stream ${id} has no events in ${target.label}`);
        print(`stream ${id}: version ${result.version}, showing ${result.events.length} event(s)`);
        print(formatEvents(result.events));
      });
    });

  program
    .command('rejected')
    .description('list what is in the dead-letter queue, with reason and detail (it stays there)')
    .option('--limit <n>', 'at most N messages', integer(1, '--limit'), 100)
    .option('--json', 'print JSON', false)
    .action(async (options: { limit: number; json: boolean }, command: Command) => {
      await withTarget(command, async (target) => {
        const messages = await peekDeadLetters(target, options.limit);
        if (options.json) {
          print(JSON.stringify(messages, null, 2));
          return;
        }
        const depth = await queueDepth(target, target.deadLetterQueueUrl);
        if (messages.length === 0) {
          print(`the dead-letter queue of ${target.label} is empty`);
          return;
        }
        print(formatRejected(messages));
        const total = depth.visible + depth.inFlight;
        const hidden =
          target.queueMode === 'fifo' && messages.length < Math.min(total, options.limit)
            ? ' (a FIFO queue shows the first messages of each group only; the rest wait behind them)'
            : '';
        print(`\n${messages.length} shown; the dead-letter queue holds about ${total}${hidden}.`);
        print('Repair and send them back with: npx eventstore redrive --dry-run --set Field=value, then without --dry-run');
      });
    });

  program
    .command('redrive')
    .description('run the redrive workflow: repair dead-lettered events and send them back to the queue')
    .option('--dry-run', 'change nothing; report what would happen', false)
    .option('--filter <k=v>', 'only events whose field k equals v (repeatable)', collect)
    .option('--set <k=v>', 'set field k to v (JSON if it parses, else text; repeatable)', collect)
    .option('--remove <k>', 'remove field k (repeatable)', collect)
    .option('--max <n>', 'at most N messages', integer(1, '--max'))
    .option('--timeout <seconds>', 'how long to wait for the workflow', integer(1, '--timeout'), 300)
    .option('--json', 'print the execution output as JSON', false)
    .action(
      async (
        options: { dryRun: boolean; filter?: string[]; set?: string[]; remove?: string[]; max?: number; timeout: number; json: boolean },
        command: Command,
      ) => {
        const input = redriveInput(options);
        await withTarget(command, async (target) => {
          const result = await runRedrive(target, input, options.timeout);
          if (options.json) print(JSON.stringify({ executionArn: result.executionArn, status: result.status, input, output: result.output }, null, 2));
          else print(formatRedrive(result, input.dryRun));
          if (result.status !== 'SUCCEEDED') {
            throw new CliError(`the redrive ${result.status.toLowerCase()}: ${result.error ?? ''} ${result.cause ?? ''}`.trim());
          }
        });
      },
    );

  program
    .command('stats')
    .description('queue and dead-letter depth, events stored, rejected by reason')
    .option('--json', 'print JSON', false)
    .action(async (options: { json: boolean }, command: Command) => {
      await withTarget(command, async (target) => {
        const [queue, deadLetters, stored, rejected] = await Promise.all([
          queueDepth(target, target.queueUrl),
          queueDepth(target, target.deadLetterQueueUrl),
          storedEventCount(target),
          peekDeadLetters(target, 1000),
        ]);
        const byReason: Record<string, number> = {};
        for (const message of rejected) {
          const reason = message.reason ?? 'none (moved by SQS after maxReceiveCount)';
          byReason[reason] = (byReason[reason] ?? 0) + 1;
        }
        const stats = { target: target.label, queueMode: target.queueMode, queue, deadLetterQueue: deadLetters, eventsStored: stored.count, eventsStoredExact: stored.exact, rejectedByReason: byReason };
        if (options.json) {
          print(JSON.stringify(stats, null, 2));
          return;
        }
        print(`${target.label}, ${target.queueMode} queue`);
        print(`  queue          ${queue.visible} waiting, ${queue.inFlight} in flight, ${queue.delayed} delayed`);
        print(`  dead letters   ${deadLetters.visible + deadLetters.inFlight}`);
        print(`  events stored  ${stored.count}${stored.exact ? '' : ' (approximate: DynamoDB refreshes ItemCount about every 6 hours)'}`);
        const reasons = Object.entries(byReason);
        const seen = rejected.length < deadLetters.visible + deadLetters.inFlight ? ` (of the ${rejected.length} messages the dead-letter queue let us see)` : '';
        print(`  rejected by reason${reasons.length === 0 ? ': none' : seen}`);
        for (const [reason, count] of reasons.sort((a, b) => b[1] - a[1])) print(`    ${reason.padEnd(32)} ${count}`);
      });
    });

  registerSubscriptionCommands(program, { withTarget, print });

  return program;
}

function generateFirstId(messages: readonly Outgoing[]): string {
  return messages.find((message) => message.streamId)?.streamId ?? '<ID>';
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message or the help text: 0 for help asked for,
      // 2 for a usage error (including no command at all).
      return error.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`eventstore: ${describeFailure(error)}\n`);
    return 1;
  }
}
