/** `eventstore stats`: queue and dead-letter depth, events stored, rejected by reason. */
import { Command } from 'commander';
import { groupByReason, peekDeadLetters, queueDepth, storedEventCount, type QueueDepth } from '../inspect.ts';
import { print } from '../output.ts';
import { withTarget, type Target } from '../target.ts';

/** What `stats --json` prints. */
export interface Stats {
  readonly target: string;
  readonly queueMode: Target['queueMode'];
  readonly queue: QueueDepth;
  readonly deadLetterQueue: QueueDepth;
  readonly eventsStored: number;
  readonly eventsStoredExact: boolean;
  readonly rejectedByReason: Record<string, number>;
}

/** The target's stats, and how many dead letters were seen to count the reasons. */
async function gatherStats(target: Target): Promise<{ stats: Stats; rejectedSeen: number }> {
  const [queue, deadLetters, stored, rejected] = await Promise.all([
    queueDepth(target, target.queueUrl),
    queueDepth(target, target.deadLetterQueueUrl),
    storedEventCount(target),
    peekDeadLetters(target, 1000),
  ]);
  const byReason = Object.fromEntries([...groupByReason(rejected)].map(([reason, list]) => [reason, list.length]));
  const stats = {
    target: target.label,
    queueMode: target.queueMode,
    queue,
    deadLetterQueue: deadLetters,
    eventsStored: stored.count,
    eventsStoredExact: stored.exact,
    rejectedByReason: byReason,
  };
  return { stats, rejectedSeen: rejected.length };
}

export function formatStats(stats: Stats, rejectedSeen: number): string {
  const { queue, deadLetterQueue: deadLetters } = stats;
  const lines = [
    `${stats.target}, ${stats.queueMode} queue`,
    `  queue          ${queue.visible} waiting, ${queue.inFlight} in flight, ${queue.delayed} delayed`,
    `  dead letters   ${deadLetters.visible + deadLetters.inFlight}`,
    `  events stored  ${stats.eventsStored}${stats.eventsStoredExact ? '' : ' (approximate: DynamoDB refreshes ItemCount about every 6 hours)'}`,
  ];
  const reasons = Object.entries(stats.rejectedByReason);
  const seen =
    rejectedSeen < deadLetters.visible + deadLetters.inFlight
      ? ` (of the ${rejectedSeen} messages the dead-letter queue let us see)`
      : '';
  lines.push(`  rejected by reason${reasons.length === 0 ? ': none' : seen}`);
  for (const [reason, count] of reasons.sort((a, b) => b[1] - a[1])) lines.push(`    ${reason.padEnd(32)} ${count}`);
  return lines.join('\n');
}

async function stats(options: { json: boolean }, command: Command): Promise<void> {
  await withTarget(command, async (target) => {
    const { stats, rejectedSeen } = await gatherStats(target);
    print(options.json ? JSON.stringify(stats, null, 2) : formatStats(stats, rejectedSeen));
  });
}

export function makeStatsCommand(): Command {
  return new Command('stats')
    .description('queue and dead-letter depth, events stored, rejected by reason')
    .option('--json', 'print JSON', false)
    .action(stats);
}
