/**
 * `npx eventstore <command>`: publish events, read a stream, list and redrive rejected events,
 * show stats, follow subscriptions and the table's stream, against the running local stack
 * (default) or a deployed stack (`--stack NAME`). One module per command in cli/commands/.
 */
import { Command, CommanderError } from 'commander';
import { makePublishCommand } from './commands/publish.ts';
import { makeReadCommand } from './commands/read.ts';
import { makeRedriveCommand } from './commands/redrive.ts';
import { makeRejectedCommand } from './commands/rejected.ts';
import { makeStatsCommand } from './commands/stats.ts';
import { makeSubscriptionsCommand } from './commands/subscriptions.ts';
import { makeSummaryCommand } from './commands/summary.ts';
import { makeTailCommand } from './commands/tail.ts';
import { describeFailure } from './errors.ts';
import { targetOptions } from './options.ts';

/**
 * Give a command added with `addCommand` (and its own subcommands) the program's settings
 * (exitOverride, output, help after an error), as `.command()` would have.
 */
function inherit(command: Command, parent: Command): Command {
  command.copyInheritedSettings(parent);
  for (const sub of command.commands) inherit(sub, command);
  return command;
}

export function buildProgram(): Command {
  const program = new Command('eventstore')
    .description('Work with the event store: the local stack (npm start) by default, or a deployed stack with --stack')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  for (const option of targetOptions()) program.addOption(option);
  const commands = [
    makePublishCommand(),
    makeReadCommand(),
    makeRejectedCommand(),
    makeRedriveCommand(),
    makeStatsCommand(),
    makeSubscriptionsCommand(),
    makeSummaryCommand(),
    makeTailCommand(),
  ];
  for (const command of commands) program.addCommand(inherit(command, program));
  return program;
}

/** Run the program on `argv`; the exit code: 0, 1 for a failure (one line on stderr), 2 for a usage error. */
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
