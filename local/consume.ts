/**
 * More consumers for a running local stack, in a process of their own (like more Lambda
 * containers): `node --import tsx local/consume.ts --concurrency 2 [--data-dir D]`.
 * Prints one line per batch; Ctrl-C lets the batches in flight finish.
 */
import { Command } from 'commander';
import { dataDirOption, integer } from './options.ts';
import { startConsumers } from './consumers.ts';
import { dataDirectory, runningStack } from './state.ts';
import { loadDefinitions } from './template.ts';

async function main(): Promise<void> {
  const program = new Command('consume')
    .option('--concurrency <n>', 'pollers in this process', integer(1, '--concurrency'), 1)
    .addOption(dataDirOption())
    .parse();
  const options = program.opts<{ concurrency: number; dataDir?: string }>();
  const state = runningStack(dataDirectory(options.dataDir));
  if (!state) throw new Error('the local stack is not running; start it with npm start');
  // The same batching as the stack's own consumers (npm start -c batchSize=...).
  const { consumer } = await loadDefinitions(state.queueMode, state.context ?? {});
  const consumers = await startConsumers({
    state,
    consumer,
    concurrency: options.concurrency,
    onBatch: (report) =>
      console.log(
        `batch: ${report.received} received, ${report.deleted} deleted, ${report.failed} left to retry${report.error ? ` (${report.error.message})` : ''}`,
      ),
    onError: (error) => console.error(`consumer: ${error.message}`),
  });
  console.log(`consuming ${state.queueUrl} with ${options.concurrency} poller(s)`);
  const stop = () => {
    consumers.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(`consume: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
