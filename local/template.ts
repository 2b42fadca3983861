import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { QueueMode } from '../core/store.ts';
import { PROJECT_ROOT } from './defaults.ts';

/** A CloudFormation template as JSON. */
export type CfnTemplate = Record<string, unknown>;

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

/** What the local mode takes from the stack's AWS::DynamoDB::Table. */
export interface TableDefinition {
  readonly KeySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
  readonly AttributeDefinitions: { AttributeName: string; AttributeType: 'S' | 'N' | 'B' }[];
  readonly StreamSpecification?: { StreamViewType: 'NEW_IMAGE' | 'OLD_IMAGE' | 'NEW_AND_OLD_IMAGES' | 'KEYS_ONLY' };
}

/** What the local mode takes from one AWS::SQS::Queue. */
export interface QueueDefinition {
  readonly logicalId: string;
  readonly fifo: boolean;
  readonly contentBasedDeduplication: boolean;
  readonly visibilityTimeout: number | undefined;
  readonly messageRetentionPeriod: number | undefined;
  /** MaximumMessageSize in bytes, when the template sets it. */
  readonly maximumMessageSize: number | undefined;
  /** Set on the source queue (the one with a RedrivePolicy). */
  readonly maxReceiveCount: number | undefined;
}

/** What the local poller takes from the AWS::Lambda::EventSourceMapping. */
export interface ConsumerDefinition {
  readonly batchSize: number;
  readonly maximumBatchingWindowInSeconds: number;
  /** ScalingConfig.MaximumConcurrency, when the template sets one. */
  readonly maximumConcurrency: number | undefined;
  readonly reportBatchItemFailures: boolean;
  /** The function's environment variables that are plain strings (tokens such as TABLE_NAME left out). */
  readonly environment: Readonly<Record<string, string>>;
  /** The function's timeout in seconds. */
  readonly timeoutSeconds: number;
}

/** Everything the local stack is built from, read out of the synthesized template. */
export interface StackDefinitions {
  readonly queueMode: QueueMode;
  readonly table: TableDefinition;
  readonly queue: QueueDefinition;
  readonly deadLetterQueue: QueueDefinition;
  readonly consumer: ConsumerDefinition;
  /** The AWS::StepFunctions::StateMachine's logical id and raw DefinitionString (tokens unresolved). */
  readonly stateMachine: { readonly logicalId: string; readonly definitionString: unknown } | undefined;
  readonly template: CfnTemplate;
}

/** The folders whose sources decide the template: a change in any of them invalidates the cache. */
const TEMPLATE_SOURCES = ['infra', 'workflows', 'core'];
const CACHE_DIR = join(PROJECT_ROOT, 'node_modules', '.cache', 'event-store-templates');

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|json)$/.test(name) ? [path] : [];
  });
}

function cacheKey(context: Record<string, string>): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(Object.entries(context).sort()));
  for (const path of [...TEMPLATE_SOURCES.flatMap((dir) => sourceFiles(join(PROJECT_ROOT, dir))), join(PROJECT_ROOT, 'package-lock.json')]) {
    hash.update(relative(PROJECT_ROOT, path));
    try {
      hash.update(readFileSync(path));
    } catch {
      hash.update('-');
    }
  }
  return hash.digest('hex').slice(0, 24);
}

const memory = new Map<string, Promise<CfnTemplate>>();

function readCached(file: string): CfnTemplate | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CfnTemplate;
  } catch {
    return undefined;
  }
}

/** A lock older than this is taken for one left by a crashed process. */
const STALE_LOCK_MS = 90_000;

async function synthesize(context: Record<string, string>): Promise<CfnTemplate> {
  const key = cacheKey(context);
  const file = join(CACHE_DIR, `${key}.json`);
  const lock = `${file}.lock`;
  mkdirSync(CACHE_DIR, { recursive: true });
  // Several processes starting at once (parallel test files) synthesize once: the one that
  // creates the lock folder synthesizes, the others wait for its file.
  const deadline = Date.now() + 2 * STALE_LOCK_MS;
  for (;;) {
    const cached = readCached(file);
    if (cached) return cached;
    try {
      mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > STALE_LOCK_MS || Date.now() > deadline) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    // Imported on demand: the CDK is heavy and not needed when the cache answers.
    const { synthesizeTemplate } = await import('../infra/synth.ts');
    const template = synthesizeTemplate(context, { bundle: false });
    // Write then rename, so a reader never sees half a file.
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, JSON.stringify(template));
    renameSync(partial, file);
    return template;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * The EventStoreStack's CloudFormation template for a queue mode, from the CDK app
 * (`infra/synth.ts`), cached in memory and on disk (keyed by the sources that decide it),
 * because a synth costs seconds.
 *
 * @example
 * ```ts
 * const template = await loadTemplate({ queue: 'fifo' });
 * ```
 */
export function loadTemplate(context: { queue: QueueMode } & Record<string, string>): Promise<CfnTemplate> {
  const key = JSON.stringify(Object.entries(context).sort());
  let pending = memory.get(key);
  if (!pending) {
    pending = synthesize(context);
    memory.set(key, pending);
    pending.catch(() => memory.delete(key));
  }
  return pending;
}

function resources(template: CfnTemplate): [string, CfnResource][] {
  const all = (template['Resources'] ?? {}) as Record<string, CfnResource>;
  return Object.entries(all);
}

function only(template: CfnTemplate, type: string, filter: (resource: CfnResource) => boolean = () => true): [string, CfnResource] {
  const found = resources(template).filter(([, resource]) => resource.Type === type && filter(resource));
  if (found.length !== 1) {
    throw new Error(`expected exactly one ${type} in the stack's template, found ${found.length}`);
  }
  return found[0]!;
}

function numberOf(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const number = Number(value);
  if (!Number.isFinite(number)) throw new Error(`expected a number in the template, got ${JSON.stringify(value)}`);
  return number;
}

function queueDefinition(logicalId: string, resource: CfnResource): QueueDefinition {
  const props = resource.Properties ?? {};
  const redrive = props['RedrivePolicy'] as Record<string, unknown> | undefined;
  return {
    logicalId,
    fifo: props['FifoQueue'] === true || props['FifoQueue'] === 'true',
    contentBasedDeduplication: props['ContentBasedDeduplication'] === true || props['ContentBasedDeduplication'] === 'true',
    visibilityTimeout: numberOf(props['VisibilityTimeout']),
    messageRetentionPeriod: numberOf(props['MessageRetentionPeriod']),
    maximumMessageSize: numberOf(props['MaximumMessageSize']),
    maxReceiveCount: numberOf(redrive?.['maxReceiveCount']),
  };
}

/**
 * Read the local stack's definitions out of the stack's template: the table's keys and stream,
 * the source queue (the queue with a RedrivePolicy) and its DLQ, the event source mapping's
 * batching, and the redrive state machine's definition.
 */
export function definitionsFromTemplate(template: CfnTemplate): StackDefinitions {
  // The event table is the one with a stream (subscriptions add checkpoint and read model tables).
  const [, table] = only(template, 'AWS::DynamoDB::Table', (resource) => resource.Properties?.['StreamSpecification'] !== undefined);
  const tableProps = table.Properties ?? {};
  const stream = tableProps['StreamSpecification'] as TableDefinition['StreamSpecification'] | undefined;
  const [queueId, queue] = only(template, 'AWS::SQS::Queue', (resource) => resource.Properties?.['RedrivePolicy'] !== undefined);
  const dlqs = resources(template).filter(
    ([id, resource]) => resource.Type === 'AWS::SQS::Queue' && id !== queueId && resource.Properties?.['RedrivePolicy'] === undefined,
  );
  const target = JSON.stringify((queue.Properties?.['RedrivePolicy'] as Record<string, unknown>)['deadLetterTargetArn']);
  const dlq = dlqs.find(([id]) => target.includes(`"${id}"`)) ?? dlqs[0];
  if (!dlq) throw new Error("the stack's template has no dead-letter queue");
  // The ingest function's mapping is the one on the queue (subscriptions map the table's stream).
  const [, mapping] = only(
    template,
    'AWS::Lambda::EventSourceMapping',
    (resource) => !JSON.stringify(resource.Properties?.['EventSourceArn'] ?? '').includes('StreamArn'),
  );
  const mappingProps = mapping.Properties ?? {};
  const scaling = mappingProps['ScalingConfig'] as Record<string, unknown> | undefined;
  const functionRef = JSON.stringify(mappingProps['FunctionName'] ?? '');
  const fn = resources(template).find(([id, resource]) => resource.Type === 'AWS::Lambda::Function' && functionRef.includes(`"${id}"`));
  const fnProps = fn?.[1].Properties ?? {};
  const variables = ((fnProps['Environment'] as Record<string, unknown> | undefined)?.['Variables'] ?? {}) as Record<string, unknown>;
  const environment = Object.fromEntries(
    Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
  const machines = resources(template).filter(([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine');
  const machine = machines[0];
  const queueDef = queueDefinition(queueId, queue);
  return {
    queueMode: queueDef.fifo ? 'fifo' : 'standard',
    table: {
      KeySchema: tableProps['KeySchema'] as TableDefinition['KeySchema'],
      AttributeDefinitions: tableProps['AttributeDefinitions'] as TableDefinition['AttributeDefinitions'],
      ...(stream?.StreamViewType ? { StreamSpecification: { StreamViewType: stream.StreamViewType } } : {}),
    },
    queue: queueDef,
    deadLetterQueue: queueDefinition(dlq[0], dlq[1]),
    consumer: {
      batchSize: numberOf(mappingProps['BatchSize']) ?? 10,
      maximumBatchingWindowInSeconds: numberOf(mappingProps['MaximumBatchingWindowInSeconds']) ?? 0,
      maximumConcurrency: numberOf(scaling?.['MaximumConcurrency']),
      reportBatchItemFailures: JSON.stringify(mappingProps['FunctionResponseTypes'] ?? []).includes('ReportBatchItemFailures'),
      environment,
      timeoutSeconds: numberOf(fnProps['Timeout']) ?? 3,
    },
    stateMachine: machine
      ? { logicalId: machine[0], definitionString: machine[1].Properties?.['DefinitionString'] ?? machine[1].Properties?.['Definition'] }
      : undefined,
    template,
  };
}

/**
 * `loadTemplate` and `definitionsFromTemplate` in one step. `context` holds the other
 * `-c key=value` options of `npm start` (as `cdk deploy` takes them), e.g. `{ batchSize: '3' }`. The
 * local mode always runs the example projection (README "Subscriptions").
 */
export async function loadDefinitions(queueMode: QueueMode, context: Readonly<Record<string, string>> = {}): Promise<StackDefinitions> {
  return definitionsFromTemplate(await loadTemplate({ ...context, exampleProjection: 'true', queue: queueMode }));
}
