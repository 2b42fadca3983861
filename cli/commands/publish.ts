/** `eventstore publish`: send events from a file, stdin or a generator, and say how it went. */
import { Command, InvalidArgumentError } from 'commander';
import { Limits } from '../../core/keys.ts';
import { CliError } from '../errors.ts';
import { integer, ratio } from '../options.ts';
import { print } from '../output.ts';
import {
  eventsIn,
  generateEvents,
  publishMessages,
  readEventsInput,
  waitForOutcomes,
  type Outgoing,
  type WaitReport,
} from '../publish.ts';
import type { Target } from '../target.ts';
import { withTarget } from '../target.ts';

interface PublishCommandOptions {
  readonly generate?: number;
  readonly streams: number;
  readonly invalidRatio: number;
  readonly streamPrefix?: string;
  readonly groupSize?: number;
  readonly parallel: number;
  /** undefined: wait when stdout is a terminal. */
  readonly wait?: boolean;
  readonly waitTimeout: number;
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
  if (options.generate === undefined) {
    if (options.groupSize !== undefined)
      throw new CliError(
        '--group-size goes with --generate N; in a file, write each group as {"ID": ..., "Events": [...]}',
      );
    return { messages: await readEventsInput(file!), note: '' };
  }
  const generated = generateEvents({
    count: options.generate,
    streams: options.streams,
    invalidRatio: options.invalidRatio,
    ...(options.streamPrefix ? { streamPrefix: options.streamPrefix } : {}),
    ...(options.groupSize !== undefined ? { groupSize: options.groupSize } : {}),
  });
  const ids = generated.streamIds;
  const invalid =
    options.groupSize === undefined
      ? `${generated.invalid} invalid on purpose`
      : `${generated.invalid} group(s) invalid on purpose (Events.0 lacks EmitterType)`;
  const note = `streams ${ids.length > 3 ? `${ids[0]} ... ${ids[ids.length - 1]}` : ids.join(', ')}; ${invalid}`;
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

/** `12 events`, or with groups `4 messages (12 events)`: a group is one message of several events. */
export function countOf(messages: number, events: number, groups: boolean): string {
  const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;
  return groups ? `${plural(messages, 'message')} (${plural(events, 'event')})` : `${events} events`;
}

/** The line after `publish --wait`: what became of the events (and, with groups, of the messages). */
export function describeWait(report: WaitReport): string {
  const reasons = [...report.reasons].map(([reason, count]) => `${reason} ${count}`).join(', ');
  const stored = report.groups ? countOf(report.stored, report.events.stored, true) : String(report.stored);
  const rejected = report.groups ? countOf(report.rejected, report.events.rejected, true) : String(report.rejected);
  return `stored ${stored}, rejected ${rejected}${reasons ? ` (${reasons})` : ''} in ${report.seconds.toFixed(1)} s${report.rejected > 0 ? '; npx eventstore rejected lists them' : ''}`;
}

/** `--wait`: until every event sent is stored or dead-lettered, with a bar on a terminal. */
async function waitForSent(
  target: Target,
  messages: readonly Outgoing[],
  since: number,
  options: PublishCommandOptions,
  tty: boolean,
): Promise<void> {
  const report = await waitForOutcomes(
    target,
    messages.map((message) => message.body),
    {
      since,
      timeoutMs: options.waitTimeout * 1000,
      ...(tty
        ? { onProgress: (done, total) => process.stdout.write(`\r${progressBar(done, total)} stored or rejected`) }
        : {}),
    },
  );
  if (tty) process.stdout.write('\n');
  print(describeWait(report));
  if (report.pending > 0)
    throw new CliError(
      `${report.groups ? `${countOf(report.pending, report.events.pending, true)} of ${messages.length}` : `${report.pending} of ${messages.length} events`} neither stored nor rejected after ${options.waitTimeout} s; npx eventstore stats shows the queue`,
    );
}

async function publish(file: string | undefined, options: PublishCommandOptions, command: Command): Promise<void> {
  const { messages, note } = await messagesToSend(file, options);
  await withTarget(command, async (target) => {
    const tty = process.stdout.isTTY === true;
    const wait = options.wait ?? tty;
    const since = Date.now();
    const report = await publishMessages(target, messages, {
      parallel: options.parallel,
      ...(tty ? { onProgress: (done, total) => process.stdout.write(`\r${progressBar(done, total)} sent`) } : {}),
    });
    if (tty) process.stdout.write('\n');
    const rate = report.seconds > 0 ? Math.round(report.sent / report.seconds) : report.sent;
    const groups = messages.some((message) => message.events !== undefined);
    const events = messages.reduce((sum, message) => sum + eventsIn(message), 0);
    const sent = groups
      ? `${report.sent} of ${countOf(messages.length, events, true)}`
      : `${report.sent} of ${messages.length} events`;
    print(
      `published ${sent} to ${target.label} (${target.queueMode} queue) in ${report.seconds.toFixed(1)} s, ${rate}${groups ? ' messages' : ''}/s${note ? `; ${note}` : ''}`,
    );
    if (report.failed > 0)
      throw new CliError(
        `${report.failed} ${groups ? 'messages' : 'events'} could not be sent: ${report.errors.slice(0, 3).join('; ')}`,
      );
    if (wait) await waitForSent(target, messages, since, options, tty);
    if (options.generate !== undefined) print(`next: npx eventstore read ${firstStreamId(messages)}`);
  });
}

/** `--group-size`: a whole number from 1 to DynamoDB's most items a transaction (core/keys.ts). */
export function groupSize(value: string): number {
  const size = Number(value);
  if (!Number.isInteger(size) || size < 1 || size > Limits.maxGroupEvents)
    throw new InvalidArgumentError(
      `--group-size must be an integer from 1 to ${Limits.maxGroupEvents} (a group is one DynamoDB transaction, at most ${Limits.maxGroupEvents} items)`,
    );
  return size;
}

export function makePublishCommand(): Command {
  return new Command('publish')
    .description('send events: a file of JSON lines or a JSON array (- for stdin), or generated ones')
    .argument('[file]', 'JSON lines or a JSON array; - reads stdin')
    .option('--generate <n>', 'generate N events instead of reading a file', integer(1, '--generate'))
    .option('--streams <m>', 'generated events go round-robin to M streams', integer(1, '--streams'), 10)
    .option(
      '--invalid-ratio <r>',
      'share of generated events (with --group-size: of groups) made invalid (EmitterType missing)',
      ratio,
      0,
    )
    .option('--stream-prefix <prefix>', 'generated stream ids are <prefix>-1 ... <prefix>-M (default: stream-<random>)')
    .option(
      '--group-size <k>',
      `send the generated events in groups of K events of one stream (1 to ${Limits.maxGroupEvents}), each stored all or nothing`,
      groupSize,
    )
    .option('--parallel <n>', `batches of ${Limits.maxSqsBatch} in flight at once`, integer(1, '--parallel'), 8)
    .option('--wait', 'wait until every event sent is stored or rejected (default on a terminal)')
    .option('--no-wait', 'do not wait (default when the output is not a terminal)')
    .option('--wait-timeout <seconds>', 'give up waiting after this long', integer(1, '--wait-timeout'), 300)
    .action(publish);
}
