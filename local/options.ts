/**
 * Option parsers of the command lines: `npm start` (local/start.ts), local/consume.ts, the
 * commands of the CLI (cli/options.ts re-exports them) and the bench. They live in local/ so
 * that local/ never imports cli/ (docs/ARCHITECTURE.md, "Layers and flow"); each throws
 * commander's InvalidArgumentError, which commander prints as a usage error.
 */
import { InvalidArgumentError, Option } from 'commander';

/**
 * A parser for a whole number of at least `min`; `what` names it in the error.
 *
 * @example
 * new Command('publish').option('--parallel <n>', 'batches in flight at once', integer(1, '--parallel'), 8);
 */
export function integer(min: number, what: string): (value: string) => number {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min)
      throw new InvalidArgumentError(`${what} must be an integer >= ${min}`);
    return number;
  };
}

/** A port number: 0 (any free port) or more. */
export const port = integer(0, 'a port');

/** A number from 0 to 1. */
export function ratio(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 1)
    throw new InvalidArgumentError('must be a number from 0 to 1');
  return number;
}

/** A repeatable option: each value added to the list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--data-dir`: the local stack's data folder (local/state.ts `dataDirectory`). */
export function dataDirOption(
  description = 'data folder of the local stack (default: $EVENTSTORE_DATA_DIR or .data in the project)',
): Option {
  return new Option('--data-dir <dir>', description);
}
