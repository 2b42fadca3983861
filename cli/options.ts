/**
 * Option parsers shared by the commands (`cli/commands/`) and the bench: the general ones are
 * local/options.ts's (which `npm start` uses too), re-exported here; the target options are the
 * CLI's own.
 */
import { Option } from 'commander';
import { dataDirOption } from '../local/options.ts';

export { collect, dataDirOption, integer, port, ratio } from '../local/options.ts';

/** What the target options (below) give a command, through `command.optsWithGlobals()`. */
export interface TargetOptions {
  readonly stack?: string;
  readonly region?: string;
  readonly dataDir?: string;
}

/** The options that choose a command's target (cli/target.ts): the local stack, or a deployed one with `--stack`. */
export function targetOptions(): Option[] {
  return [
    new Option('--stack <name>', 'a deployed CloudFormation stack (reads its outputs)'),
    new Option(
      '--region <region>',
      "AWS region of --stack (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)",
    ),
    dataDirOption(),
  ];
}
