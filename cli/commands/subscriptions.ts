/**
 * `eventstore subscriptions` (README "Subscriptions"): replay progress, lag and parked streams;
 * `subscriptions resume`, `subscriptions replay` and `subscriptions reset`.
 */
import { Command } from 'commander';
import { CliError } from '../errors.ts';
import type { TargetOptions } from '../options.ts';
import { formatTable, print } from '../output.ts';
import {
  findSubscriptions,
  notParkedMessage,
  requestReplay,
  requestResume,
  resetSubscription,
  streamHeads,
  subscriptionNamed,
  subscriptionStatus,
  type SubscriptionStatus,
} from '../subscriptions.ts';
import { withTarget } from '../target.ts';

export function formatStatus(status: SubscriptionStatus): string {
  const replay = status.replay
    ? `replay ${status.replay.status} (${status.replay.streams} streams, ${status.replay.events} events${status.replay.resume.length ? `, ${status.replay.resume.length} resume(s) pending` : ''})`
    : 'replay pending (not started)';
  const lines = [
    `${status.name}: ${replay}; lag ${status.lag} version(s) over ${status.streamsBehind} of ${status.streams} stream(s); ${status.parked.length} parked`,
  ];
  if (status.parked.length > 0) {
    lines.push(
      formatTable(
        ['Parked stream', 'At version', 'Since', 'Resume asked', 'Error'],
        status.parked.map((p) => [p.streamId, String(p.version), p.at, p.resumeRequested ? 'yes' : 'no', p.error]),
        [40, 10, 24, 12, 100],
      ),
    );
  }
  return lines.join('\n');
}

async function list(options: { json: boolean }, command: Command): Promise<void> {
  await withTarget(command, async (target) => {
    const all = await findSubscriptions(target, command.optsWithGlobals<TargetOptions>());
    if (all.length === 0) {
      print(`${target.label} has no subscriptions (deploy with -c exampleProjection=true, or stack.addSubscription)`);
      return;
    }
    const heads = await streamHeads(target);
    const statuses = await Promise.all(all.map((tables) => subscriptionStatus(target, tables, heads)));
    if (options.json) print(JSON.stringify(statuses, null, 2));
    else print(statuses.map(formatStatus).join('\n\n'));
  });
}

async function resume(name: string, ids: string[], _options: unknown, command: Command): Promise<void> {
  await withTarget(command, async (target) => {
    const tables = subscriptionNamed(
      await findSubscriptions(target, command.optsWithGlobals<TargetOptions>()),
      name,
      target,
    );
    const notParked = await requestResume(target, tables, ids);
    const asked = ids.length - notParked.length;
    // Nothing to resume: only the one line that says why (no "resume asked for 0" first).
    if (asked > 0)
      print(
        `resume asked for ${asked} stream(s) of ${name}; the replay worker picks them up within its schedule (local: a second)`,
      );
    if (notParked.length > 0) throw new CliError(notParkedMessage(name, notParked));
  });
}

async function replay(name: string, _options: unknown, command: Command): Promise<void> {
  await withTarget(command, async (target) => {
    const tables = subscriptionNamed(
      await findSubscriptions(target, command.optsWithGlobals<TargetOptions>()),
      name,
      target,
    );
    const before = await requestReplay(target, tables);
    print(
      `${name}: replay asked${before === undefined ? ' (its first replay has not run yet)' : ''}; the replay worker scans the table again within its schedule (local: a second) and delivers what each stream's checkpoint lacks, nothing twice`,
    );
  });
}

async function reset(name: string, options: { yes: boolean }, command: Command): Promise<void> {
  if (!options.yes) throw new CliError('reset replays every event to the projection again; confirm with --yes');
  await withTarget(command, async (target) => {
    const tables = subscriptionNamed(
      await findSubscriptions(target, command.optsWithGlobals<TargetOptions>()),
      name,
      target,
    );
    let told = '';
    const removed = await resetSubscription(target, tables, (waiting) => {
      // A claim whose batch withdrew every stream while it waits names none.
      if (waiting.length === 0) return;
      const until = Math.max(...waiting.map((holder) => holder.until));
      const line = `${name}: waiting for ${waiting.length} invocation(s) from before the reset to let go of ${waiting
        .slice(0, 5)
        .map((holder) => holder.streamId)
        .join(', ')}${waiting.length > 5 ? ', ...' : ''} (at the latest ${new Date(until).toISOString()})`;
      if (line !== told) print(line);
      told = line;
    });
    print(`${name}: ${removed} checkpoint item(s) reset; the replay starts again from version 1 of every stream`);
  });
}

export function makeSubscriptionsCommand(): Command {
  const subscriptions = new Command('subscriptions')
    .description('subscriptions: replay progress, lag (versions stored but not delivered) and parked streams')
    .option('--json', 'print JSON', false)
    .action(list);
  subscriptions
    .command('resume')
    .description('resume parked streams: the replay worker retries each from its parked version')
    .argument('<subscription>', 'the subscription name')
    .argument('<ids...>', 'the parked streams')
    .action(resume);
  subscriptions
    .command('replay')
    .description(
      "scan the table again and deliver what each stream's checkpoint lacks (events whose stream records were lost); nothing is delivered twice",
    )
    .argument('<subscription>', 'the subscription name')
    .action(replay);
  subscriptions
    .command('reset')
    .description(
      'forget what a subscription delivered: it replays every stream from version 1 (clear its read model yourself)',
    )
    .argument('<subscription>', 'the subscription name')
    .option('--yes', 'really reset', false)
    .action(reset);
  return subscriptions;
}
