/** `eventstore rejected`: what is in the dead-letter queue, with reason and detail (it stays there). */
import { Command } from 'commander';
import { fifoHiddenNote, peekDeadLetters, queueDepth, type RejectedMessage } from '../inspect.ts';
import { integer } from '../options.ts';
import { formatTable, print } from '../output.ts';
import { withTarget } from '../target.ts';

export function formatRejected(messages: readonly RejectedMessage[]): string {
  return formatTable(
    // eslint-disable-next-line no-restricted-syntax -- a column header, not the metric dimension of core/metrics.ts
    ['MessageId', 'ID', 'Reason', 'Detail'],
    messages.map((message) => [
      message.messageId,
      message.streamId ?? '',
      message.reason ?? '(none: moved by SQS after maxReceiveCount)',
      message.detail ?? '',
    ]),
    [36, 30, 40, 100],
  );
}

async function rejected(options: { limit: number; json: boolean }, command: Command): Promise<void> {
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
    const note = fifoHiddenNote(target, messages.length, total, options.limit);
    const hidden = note ? ` (${note})` : '';
    print(`\n${messages.length} shown; the dead-letter queue holds about ${total}${hidden}.`);
    print('Repair and send them back with: npx eventstore redrive --dry-run --set Field=value, then without --dry-run');
  });
}

export function makeRejectedCommand(): Command {
  return new Command('rejected')
    .description('list what is in the dead-letter queue, with reason and detail (it stays there)')
    .option('--limit <n>', 'at most N messages', integer(1, '--limit'), 100)
    .option('--json', 'print JSON', false)
    .action(rejected);
}
