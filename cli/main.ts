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

/** `eventstore subscriptions resume`: the command's name with its parents'. */
function fullName(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

/**
 * A usage error as one line (README "The command-line tool": every failure is one line):
 * commander's message without its `error: `, and where the usage is.
 */
function oneLineUsageError(command: Command): (text: string, write: (text: string) => void) => void {
  return (text, write) => {
    const name = fullName(command);
    const message = text
      .trim()
      .replace(/^error: /, '')
      .replace(/\s*\n\s*/g, ' ');
    write(`${name}: ${message} (see ${name} --help)\n`);
  };
}

/**
 * Give a command added with `addCommand` (and its own subcommands) the program's settings
 * (exitOverride, output), as `.command()` would have, and its one-line usage errors.
 */
function inherit(command: Command, parent: Command): Command {
  command.copyInheritedSettings(parent);
  command.configureOutput({ ...parent.configureOutput(), outputError: oneLineUsageError(command) });
  for (const sub of command.commands) inherit(sub, command);
  return command;
}

export function buildProgram(): Command {
  const program = new Command('eventstore')
    .description('Work with the event store: the local stack (npm start) by default, or a deployed stack with --stack')
    .exitOverride();
  program.configureOutput({ outputError: oneLineUsageError(program) });
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
      // Commander has already printed its one line or the help text: 0 for help asked for,
      // 2 for a usage error (including no command at all, which prints the help).
      return error.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`eventstore: ${describeFailure(error)}\n`);
    return 1;
  }
}
