/**
 * The stack's synthesized template, and the one place that reads it: what the local mode
 * builds (table, queues, consumer, subscriptions) and runs (the redrive state machine) is
 * taken from here.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { QueueMode } from '../core/store.ts';
import { SubscriptionEnvironment } from '../core/subscription.ts';
import { PROJECT_ROOT } from './defaults.ts';

/** What Lambda assumes where the template leaves a property out. */
const LAMBDA_DEFAULTS = {
  /** BatchSize of an SQS event source. */
  sqsBatchSize: 10,
  /** BatchSize of a DynamoDB stream event source. */
  streamBatchSize: 100,
  /** A function's Timeout. */
  timeoutSeconds: 3,
} as const;
/** The subscription function's timeout when the template leaves it out (EventSubscription's default). */
const SUBSCRIPTION_DEFAULT_TIMEOUT_SECONDS = 60;
/** Template metadata on a subscription function: its entry, relative to the project (infra/constructs/event-subscription.ts). */
const SUBSCRIPTION_ENTRY_METADATA = 'EventStoreSubscriptionEntry';

/** A CloudFormation template as JSON (what `synthesizeTemplate` or `Template.toJSON()` returns). */
export type CfnTemplate = Readonly<Record<string, unknown>>;

/** One resource of a template. */
export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

/** What the local mode takes from the stack's AWS::DynamoDB::Table. */
export interface TableDefinition {
  readonly KeySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
  readonly AttributeDefinitions: { AttributeName: string; AttributeType: 'S' | 'N' | 'B' }[];
  readonly StreamSpecification?: { StreamViewType: 'NEW_IMAGE' | 'OLD_IMAGE' | 'NEW_AND_OLD_IMAGES' | 'KEYS_ONLY' };
  /** A subscription's claims table expires dead claims on this attribute (infra/constructs/event-subscription.ts). */
  readonly TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
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
  readonly table: TableDefinition;
  readonly queue: QueueDefinition;
  readonly deadLetterQueue: QueueDefinition;
  readonly consumer: ConsumerDefinition;
  /** The template itself: the redrive runner and the subscriptions read their parts with the functions below. */
  readonly template: CfnTemplate;
}

/** One subscription of the stack, as the local mode runs it. */
export interface SubscriptionDefinition {
  readonly name: string;
  /** The projection file, relative to the project. */
  readonly entry: string;
  readonly batchSize: number;
  readonly timeoutSeconds: number;
  /** ESM filter: the stream record event names delivered. */
  readonly eventNames: readonly string[];
  /** Plain environment variables of the function. */
  readonly environment: Readonly<Record<string, string>>;
  /** Environment variables that name a table of the stack: the table's definition. */
  readonly tables: Readonly<Record<string, TableDefinition>>;
}

/** The redrive state machine as the template holds it: tokens unresolved (local/workflow-runner.ts resolves them). */
export interface RedriveMachineDefinition {
  /** The raw DefinitionString: a string or an `Fn::Join`. */
  readonly definitionString: unknown;
  /** The source queue (the one with a RedrivePolicy) and the DLQ it names. */
  readonly sourceQueueId: string;
  readonly deadLetterQueueId: string;
  /** Every resource's type by logical id, to resolve `Fn::GetAtt`. */
  readonly resourceTypes: Readonly<Record<string, string>>;
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
  for (const path of [
    ...TEMPLATE_SOURCES.flatMap((dir) => sourceFiles(join(PROJECT_ROOT, dir))),
    join(PROJECT_ROOT, 'package-lock.json'),
  ]) {
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

/** The template's resources by logical id. */
export function resourcesOf(template: CfnTemplate): Readonly<Record<string, CfnResource>> {
  const resources = template['Resources'];
  if (resources === null || typeof resources !== 'object')
    throw new Error('not a CloudFormation template: no Resources');
  return resources as Record<string, CfnResource>;
}

function resources(template: CfnTemplate): [string, CfnResource][] {
  return Object.entries(resourcesOf(template));
}

function only(
  template: CfnTemplate,
  type: string,
  filter: (resource: CfnResource) => boolean = () => true,
): [string, CfnResource] {
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

/** The plain-string environment variables of a function (tokens such as TABLE_NAME left out). */
function variablesOf(fn: CfnResource | undefined): Record<string, unknown> {
  return ((fn?.Properties?.['Environment'] as { Variables?: Record<string, unknown> } | undefined)?.Variables ??
    {}) as Record<string, unknown>;
}

function plainStrings(variables: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

/** The ingest queue (the one with a RedrivePolicy) and the DLQ its RedrivePolicy names. */
function ingestQueuesOf(template: CfnTemplate): { source: [string, CfnResource]; deadLetter: [string, CfnResource] } {
  const source = only(template, 'AWS::SQS::Queue', (resource) => resource.Properties?.['RedrivePolicy'] !== undefined);
  const target = (
    source[1].Properties?.['RedrivePolicy'] as { deadLetterTargetArn?: { 'Fn::GetAtt'?: [string, string] } }
  ).deadLetterTargetArn?.['Fn::GetAtt']?.[0];
  const deadLetter = target === undefined ? undefined : resourcesOf(template)[target];
  if (target === undefined || deadLetter?.Type !== 'AWS::SQS::Queue') {
    throw new Error("the source queue's RedrivePolicy does not name the DLQ with Fn::GetAtt");
  }
  return { source, deadLetter: [target, deadLetter] };
}

function queueDefinition(logicalId: string, resource: CfnResource): QueueDefinition {
  const props = resource.Properties ?? {};
  const redrive = props['RedrivePolicy'] as Record<string, unknown> | undefined;
  return {
    logicalId,
    fifo: props['FifoQueue'] === true || props['FifoQueue'] === 'true',
    contentBasedDeduplication:
      props['ContentBasedDeduplication'] === true || props['ContentBasedDeduplication'] === 'true',
    visibilityTimeout: numberOf(props['VisibilityTimeout']),
    messageRetentionPeriod: numberOf(props['MessageRetentionPeriod']),
    maximumMessageSize: numberOf(props['MaximumMessageSize']),
    maxReceiveCount: numberOf(redrive?.['maxReceiveCount']),
  };
}

/** The event table: the one with a stream (subscriptions add checkpoint and read model tables). */
function tableDefinition(template: CfnTemplate): TableDefinition {
  const [, table] = only(
    template,
    'AWS::DynamoDB::Table',
    (resource) => resource.Properties?.['StreamSpecification'] !== undefined,
  );
  const tableProps = table.Properties ?? {};
  const stream = tableProps['StreamSpecification'] as TableDefinition['StreamSpecification'] | undefined;
  return {
    KeySchema: tableProps['KeySchema'] as TableDefinition['KeySchema'],
    AttributeDefinitions: tableProps['AttributeDefinitions'] as TableDefinition['AttributeDefinitions'],
    ...(stream?.StreamViewType ? { StreamSpecification: { StreamViewType: stream.StreamViewType } } : {}),
  };
}

/** The ingest function's mapping (the one on the queue: subscriptions map the table's stream) and its function. */
function consumerDefinition(template: CfnTemplate): ConsumerDefinition {
  const [, mapping] = only(
    template,
    'AWS::Lambda::EventSourceMapping',
    (resource) => !JSON.stringify(resource.Properties?.['EventSourceArn'] ?? '').includes('StreamArn'),
  );
  const mappingProps = mapping.Properties ?? {};
  const scaling = mappingProps['ScalingConfig'] as Record<string, unknown> | undefined;
  const functionRef = JSON.stringify(mappingProps['FunctionName'] ?? '');
  const fn = resources(template).find(
    ([id, resource]) => resource.Type === 'AWS::Lambda::Function' && functionRef.includes(`"${id}"`),
  );
  return {
    batchSize: numberOf(mappingProps['BatchSize']) ?? LAMBDA_DEFAULTS.sqsBatchSize,
    maximumBatchingWindowInSeconds: numberOf(mappingProps['MaximumBatchingWindowInSeconds']) ?? 0,
    maximumConcurrency: numberOf(scaling?.['MaximumConcurrency']),
    reportBatchItemFailures: JSON.stringify(mappingProps['FunctionResponseTypes'] ?? []).includes(
      'ReportBatchItemFailures',
    ),
    environment: plainStrings(variablesOf(fn?.[1])),
    timeoutSeconds: numberOf(fn?.[1].Properties?.['Timeout']) ?? LAMBDA_DEFAULTS.timeoutSeconds,
  };
}

/**
 * Read the local stack's definitions out of the stack's template: the table's keys and stream,
 * the source queue (the queue with a RedrivePolicy) and its DLQ, and the event source
 * mapping's batching.
 */
export function definitionsFromTemplate(template: CfnTemplate): StackDefinitions {
  const queues = ingestQueuesOf(template);
  return {
    table: tableDefinition(template),
    queue: queueDefinition(...queues.source),
    deadLetterQueue: queueDefinition(...queues.deadLetter),
    consumer: consumerDefinition(template),
    template,
  };
}

/**
 * The redrive state machine of a template with exactly one (the local mode has no
 * `previousQueue`), and the queues it works on.
 */
export function redriveMachineOf(template: CfnTemplate): RedriveMachineDefinition {
  const all = resources(template);
  const machines = all.filter(([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1)
    throw new Error(`expected one AWS::StepFunctions::StateMachine in the template, found ${machines.length}`);
  const { source, deadLetter } = ingestQueuesOf(template);
  return {
    definitionString: machines[0]![1].Properties?.['DefinitionString'],
    sourceQueueId: source[0],
    deadLetterQueueId: deadLetter[0],
    resourceTypes: Object.fromEntries(all.map(([id, resource]) => [id, resource.Type])),
  };
}

/** A subscription's tables (checkpoints, claims, read model ...): its environment variables that Ref a table other than the event table. */
function subscriptionTables(
  template: CfnTemplate,
  variables: Record<string, unknown>,
): Record<string, TableDefinition> {
  const all = resourcesOf(template);
  const tables: Record<string, TableDefinition> = {};
  for (const [name, value] of Object.entries(variables)) {
    const ref = (value as { Ref?: string } | null)?.Ref;
    const table = ref ? all[ref] : undefined;
    if (table?.Type === 'AWS::DynamoDB::Table' && name !== SubscriptionEnvironment.eventTable) {
      const timeToLive = table.Properties?.['TimeToLiveSpecification'] as
        TableDefinition['TimeToLiveSpecification'] | undefined;
      tables[name] = {
        KeySchema: table.Properties?.['KeySchema'] as TableDefinition['KeySchema'],
        AttributeDefinitions: table.Properties?.['AttributeDefinitions'] as TableDefinition['AttributeDefinitions'],
        ...(timeToLive ? { TimeToLiveSpecification: timeToLive } : {}),
      };
    }
  }
  return tables;
}

/** The stack's subscriptions: each Lambda event source mapping on the event table's stream. */
export function subscriptionsFromTemplate(template: CfnTemplate): SubscriptionDefinition[] {
  const all = resourcesOf(template);
  return resources(template)
    .filter(
      ([, r]) =>
        r.Type === 'AWS::Lambda::EventSourceMapping' &&
        JSON.stringify(r.Properties?.['EventSourceArn'] ?? '').includes('StreamArn'),
    )
    .map(([, mapping]) => {
      const props = mapping.Properties ?? {};
      const functionId = (props['FunctionName'] as { Ref?: string }).Ref ?? '';
      const fn = all[functionId];
      const entry = fn?.Metadata?.[SUBSCRIPTION_ENTRY_METADATA];
      if (typeof entry !== 'string')
        throw new Error(
          `subscription function ${functionId} has no ${SUBSCRIPTION_ENTRY_METADATA} metadata in the template`,
        );
      const variables = variablesOf(fn);
      const environment = plainStrings(variables);
      const filters = (
        (props['FilterCriteria'] as { Filters?: { Pattern: string }[] } | undefined)?.Filters ?? []
      ).flatMap((filter) => (JSON.parse(filter.Pattern) as { eventName?: string[] }).eventName ?? []);
      return {
        name: environment[SubscriptionEnvironment.name] ?? functionId,
        entry,
        batchSize: Number(props['BatchSize'] ?? LAMBDA_DEFAULTS.streamBatchSize),
        timeoutSeconds: Number(fn?.Properties?.['Timeout'] ?? SUBSCRIPTION_DEFAULT_TIMEOUT_SECONDS),
        eventNames: filters.length > 0 ? filters : ['INSERT', 'MODIFY', 'REMOVE'],
        environment,
        tables: subscriptionTables(template, variables),
      };
    });
}

/**
 * `loadTemplate` and `definitionsFromTemplate` in one step. `context` holds the other
 * `-c key=value` options of `npm start` (as `cdk deploy` takes them), e.g. `{ batchSize: '3' }`. The
 * local mode always runs the example projection (README "Subscriptions").
 */
export async function loadDefinitions(
  queueMode: QueueMode,
  context: Readonly<Record<string, string>> = {},
): Promise<StackDefinitions> {
  return definitionsFromTemplate(await loadTemplate({ ...context, exampleProjection: 'true', queue: queueMode }));
}
