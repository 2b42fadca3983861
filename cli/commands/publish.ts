/** `eventstore publish`: send events from a file, stdin or a generator, and say how it went. */
import { Command } from 'commander';
import { Limits } from '../../core/keys.ts';
import { CliError } from '../errors.ts';
import { integer, ratio } from '../options.ts';
import { print } from '../output.ts';
import { generateEvents, publishMessages, readEventsInput, type Outgoing } from '../publish.ts';
import { withTarget } from '../target.ts';

interface PublishCommandOptions {
  readonly generate?: number;
  readonly streams: number;
  readonly invalidRatio: number;
  readonly streamPrefix?: string;
  readonly parallel: number;
}

/** The messages to send, and a note for the report line (which streams were generated). */
async function messagesToSend(
  file: string | undefined,
  options: PublishCommandOptions,
): Promise<{ messages: Outgoing[]; note: string }> {
  if (file === undefined && options.generate === undefined)
    throw new CliError('publish needs a FILE, - for stdin, or --generate N');
  if (file !== undefined && options.generate !== undefined)
    throw new CliError('publish takes a FILE or --generate N, not both');
  if (options.generate === undefined) return { messages: await readEventsInput(file!), note: '' };
  const generated = generateEvents({
    count: options.generate,
    streams: options.streams,
    invalidRatio: options.invalidRatio,
    ...(options.streamPrefix ? { streamPrefix: options.streamPrefix } : {}),
  });
  const ids = generated.streamIds;
  const note = `streams ${ids.length > 3 ? `${ids[0]} ... ${ids[ids.length - 1]}` : ids.join(', ')}; ${generated.invalid} invalid on purpose`;
  return { messages: generated.events, note };
}

/** A one-line progress bar for a terminal. */
export function progressBar(done: number, total: number, width = 30): string {
  const share = total === 0 ? 1 : done / total;
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} (${Math.round(share * 100)}%)`;
}

function firstStreamId(messages: readonly Outgoing[]): string {
  return messages.find((message) => message.streamId)?.streamId ?? '<ID>';
}

async function publish(file: string | undefined, options: PublishCommandOptions, command: Command): Promise<void> {
  const { messages, note } = await messagesToSend(file, options);
  await withTarget(command, async (target) => {
    const tty = process.stdout.isTTY === true;
    const report = await publishMessages(target, messages, {
      parallel: options.parallel,
      ...(tty ? { onProgress: (done, total) => process.stdout.write(`\r${progressBar(done, total)}`) } : {}),
    });
    if (tty) process.stdout.write('\n');
    const rate = report.seconds > 0 ? Math.round(report.sent / report.seconds) : report.sent;
    print(
      `published ${report.sent} of ${messages.length} events to ${target.label} (${target.queueMode} queue) in ${report.seconds.toFixed(1)} s, ${rate}/s${note ? `; ${note}` : ''}`,
    );
    if (options.generate !== undefined) print(`next: npx eventstore read ${firstStreamId(messages)}`);
    if (report.failed > 0)
      throw new CliError(`${report.failed} events could not be sent: ${report.errors.slice(0, 3).join('; ')}`);
  });
}

export function makePublishCommand(): Command {
  return new Command('publish')
    .description('send events: a file of JSON lines or a JSON array (- for stdin), or generated ones')
    .argument('[file]', 'JSON lines or a JSON array; - reads stdin')
    .option('--generate <n>', 'generate N events instead of reading a file', integer(1, '--generate'))
    .option('--streams <m>', 'generated events go round-robin to M streams', integer(1, '--streams'), 10)
    .option('--invalid-ratio <r>', 'share of generated events made invalid (EmitterType missing)', ratio, 0)
    .option('--stream-prefix <prefix>', 'generated stream ids are <prefix>-1 ... <prefix>-M (default: stream-<random>)')
    .option('--parallel <n>', `batches of ${Limits.maxSqsBatch} in flight at once`, integer(1, '--parallel'), 8)
    .action(publish);
}
