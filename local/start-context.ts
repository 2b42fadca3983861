import type { QueueMode } from '../core/store.ts';
import { ConfigError, parseConfig } from '../infra/config.ts';

/**
 * The context keys that change how the local stack behaves: they reach the template it is built
 * from, hence the queues (visibility timeout, maxReceiveCount), the consumers (batch size,
 * batching window, concurrency, function timeout) and the handler's environment (dedupWindow,
 * resendWindow, logLevel).
 */
export const LOCAL_CONTEXT_KEYS = [
  'batchSize',
  'maxBatchingWindowSeconds',
  'maxConcurrency',
  'maxReceiveCount',
  'dedupWindow',
  'resendWindow',
  'functionTimeoutSeconds',
  'visibilityTimeoutSeconds',
  'logLevel',
] as const;

export interface StartContext {
  readonly queueMode: QueueMode;
  /** What the local template is synthesized with (LOCAL_CONTEXT_KEYS only). */
  readonly context: Readonly<Record<string, string>>;
  /** Valid keys that only a deployed stack uses (stack and resource names, billing, alarms, retention, memory). */
  readonly ignored: readonly string[];
}

/**
 * `npm start -- -c key=value ...` (and `--queue`) into the local stack's context, validated by
 * the same parser as `cdk deploy -c key=value` (infra/config.ts), so a value `cdk deploy` would
 * refuse is refused here with the same message.
 *
 * @example
 * parseStartContext(['batchSize=3', 'maxBatchingWindowSeconds=2']);
 * // { queueMode: 'standard', context: { batchSize: '3', maxBatchingWindowSeconds: '2' }, ignored: [] }
 * @throws ConfigError naming the key, the value and what is allowed.
 */
export function parseStartContext(pairs: readonly string[], queueOption?: QueueMode): StartContext {
  const given: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new ConfigError('-c', pair, 'key=value, as cdk deploy -c takes it');
    given[pair.slice(0, at)] = pair.slice(at + 1);
  }
  if (queueOption !== undefined && given['queue'] !== undefined && given['queue'] !== queueOption) {
    throw new ConfigError('queue', given['queue'], `the mode --queue gives (${queueOption}), or one of them only`);
  }
  const config = parseConfig({ ...given, ...(queueOption !== undefined ? { queue: queueOption } : {}) });
  const local = LOCAL_CONTEXT_KEYS as readonly string[];
  const context = Object.fromEntries(Object.entries(given).filter(([key]) => local.includes(key)));
  const ignored = Object.keys(given).filter((key) => key !== 'queue' && !local.includes(key));
  return { queueMode: config.queue, context, ignored };
}
