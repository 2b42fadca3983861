import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Names that travel on the wire or that a person types, each written out once (issue 13).
 *
 * Every family below has one module that defines its strings; any other file that writes one
 * of them out is an error, because a copy is kept equal to the source only by care: a renamed
 * metric would leave an alarm watching nothing, a renamed attribute would make the redrive
 * workflow lose the redrive count, a renamed output would make the CLI fail on a deployed
 * stack. Import the constant instead.
 *
 * Not banned, and why:
 * - numbers such as the SQS batch of 10 and the duplicate window's maximum of 1000 (core/keys.ts
 *   `Limits`): a 10 or a 1000 is far too common to tell apart by its value; review keeps them;
 * - `'standard'` and `'fifo'` as values: they are also the words of every message and test
 *   name; what is banned is declaring the union type again (use core/queue-mode.ts);
 * - the local credentials' `'local'`: it is also a log stream name; what is banned is an
 *   `accessKeyId` written as a literal (use local/defaults.ts `LOCAL_CREDENTIALS`);
 * - the `service` and `Subscription` dimension names: common words; core/metrics.ts
 *   `MetricDimension` has them.
 */
const NAME_FAMILIES = [
  {
    module: 'core/metrics.ts',
    what: 'a metric namespace, service or metric name',
    strings: [
      'EventStore',
      'event-store',
      'event-store-subscription',
      'EventsStored',
      'EventsRejected',
      'DuplicateEvents',
      'AppendConflicts',
      'EventsDelivered',
      'SubscriptionLag',
      'StreamsParked',
      'ReplayStreams',
      'Reason',
    ],
  },
  {
    module: 'core/message-attributes.ts',
    what: 'a dead-letter or redrive message attribute name (parse RedriveCount with parseRedriveCount)',
    strings: ['RejectionReason', 'RejectionDetail', 'RejectedAt', 'SourceMessageId', 'RedriveCount', 'RedrivenFrom'],
  },
  {
    module: 'core/stack-outputs.ts',
    what: 'a stack output id (OutputIds)',
    strings: [
      'QueueUrl',
      'DeadLetterQueueUrl',
      'TableName',
      'StateMachineArn',
      'DashboardUrl',
      'QueueMode',
      'AlarmTopicArn',
      'PreviousQueueUrl',
      'PreviousDeadLetterQueueUrl',
      'PreviousStateMachineArn',
      'StreamSummaryTableName',
    ],
  },
];

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** One `no-restricted-syntax` entry per family: the exact strings, as literals. */
function familySelectors(family, allowed = []) {
  const strings = family.strings.filter((string) => !allowed.includes(string));
  return [
    {
      selector: `Literal[value=/^(?:${strings.map(escapeRegExp).join('|')})$/]`,
      message: `Import ${family.what} from ${family.module} instead of writing it out.`,
    },
  ];
}

/** The local mode's region, account, credentials and ports (local/defaults.ts). */
const LOCAL_DEFAULT_SELECTORS = [
  {
    selector: 'Literal[value=/us-east-1|(?<!\\d)000000000000(?!\\d)/]',
    message: 'Import LOCAL_REGION / LOCAL_ACCOUNT (or localFunctionArn) from local/defaults.ts.',
  },
  {
    selector: 'TemplateElement[value.raw=/us-east-1|(?<!\\d)000000000000(?!\\d)/]',
    message: 'Import LOCAL_REGION / LOCAL_ACCOUNT (or localFunctionArn) from local/defaults.ts.',
  },
  {
    selector: "Property[key.name='accessKeyId'][value.type='Literal']",
    message: 'Import LOCAL_CREDENTIALS from local/defaults.ts.',
  },
  {
    selector: ":matches(Literal[raw='8000'], Literal[raw='9324'], Literal[raw='8083'])",
    message: 'Import LocalPorts from local/defaults.ts (the default ports of npm start).',
  },
];

/** The project root is computed once (infra/project-root.ts; local/defaults.ts re-exports it). */
const PROJECT_ROOT_SELECTORS = [
  {
    selector: "NewExpression[callee.name='URL'][arguments.0.value=/^(?:\\.\\.\\/)+$/]:has(MetaProperty)",
    message:
      'Import PROJECT_ROOT from infra/project-root.ts (or local/defaults.ts) instead of computing the project root.',
  },
  {
    selector: "CallExpression[callee.name=/^(?:join|resolve)$/]:has(MetaProperty):has(Literal[value='..'])",
    message:
      'Import PROJECT_ROOT from infra/project-root.ts (or local/defaults.ts) instead of computing the project root.',
  },
];

/** The queue mode type is declared once (core/queue-mode.ts). */
const QUEUE_MODE_SELECTORS = [
  {
    selector: "TSUnionType:has(TSLiteralType > Literal[value='standard']):has(TSLiteralType > Literal[value='fifo'])",
    message: "Import the QueueMode type from core/queue-mode.ts instead of writing 'standard' | 'fifo'.",
  },
];

const NAME_MODULES = [
  ...NAME_FAMILIES.map((family) => family.module),
  'core/queue-mode.ts',
  'local/defaults.ts',
  'infra/project-root.ts',
];

/** Every ban except the ones of the module it is applied to. */
function nameBan({ except, allowed = [] } = {}) {
  return [
    'error',
    ...NAME_FAMILIES.filter((family) => family.module !== except).flatMap((family) => familySelectors(family, allowed)),
    ...(except === 'local/defaults.ts' ? [] : LOCAL_DEFAULT_SELECTORS),
    ...(except === 'infra/project-root.ts' ? [] : PROJECT_ROOT_SELECTORS),
    ...(except === 'core/queue-mode.ts' ? [] : QUEUE_MODE_SELECTORS),
  ];
}

/**
 * Folders the ban does not reach yet: their literals are replaced on other branches, after
 * which the lead deletes the folder from this list (and with it, the `off` below).
 * TODO(issue-11-bench): bench/**.
 */
const NAME_BAN_PENDING = [];

/** Files that must write a banned string for another meaning, with that meaning. */
const NAME_BAN_EXCEPTIONS = [
  {
    // The default stack name happens to equal the metrics namespace; they are two names.
    files: ['core/stack-outputs.ts'],
    except: 'core/stack-outputs.ts',
    allowed: ['EventStore'],
  },
  {
    // `Fn::GetAtt [queue, QueueUrl]` in a template: SQS's own attribute name, not the stack output.
    files: ['local/workflow-runner.ts'],
    allowed: ['QueueUrl'],
  },
];

/** Modules nothing in core/ may import: core stays free of AWS, CDK and the outer layers. */
const CORE_FORBIDDEN = [
  {
    group: ['@aws-sdk/*', 'aws-lambda', 'aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '@aws-lambda-powertools/*'],
    message: 'core/ stays free of AWS and CDK code: arrows point inward (docs/ARCHITECTURE.md, "Layers and flow").',
  },
  {
    group: [
      '**/adapters/*',
      '**/handlers/*',
      '**/infra/**',
      '**/workflows/*',
      '**/local/**',
      '**/bench/*',
      '**/cli/**',
    ],
    message: 'core/ imports only core/: arrows point inward (docs/ARCHITECTURE.md, "Layers and flow").',
  },
];

/** Modules handlers/ and adapters/ may not import: they are bundled into the Lambda functions. */
const RUNTIME_FORBIDDEN = [
  {
    group: [
      '**/infra/**',
      '**/workflows/*',
      '**/local/**',
      '**/bench/*',
      '**/cli/**',
      'aws-cdk-lib',
      'aws-cdk-lib/*',
      'constructs',
    ],
    message:
      'handlers/ and adapters/ run in Lambda: they import core/, adapters/ and the SDK, never the stack, the local mode, the CLI or bench (docs/ARCHITECTURE.md, "Layers and flow").',
  },
];

/**
 * The layers, top down (docs/ARCHITECTURE.md, "Layers and flow"): bench/ and the tests, then the
 * command-line tool (cli/), the local mode (local/), the deployable app (infra/ and workflows/),
 * the Lambda code (handlers/, adapters/) and core/. A layer imports only the layers below it.
 */
const BENCH = { group: ['**/bench/*'], message: 'Nothing but the tests imports bench/: it is the top layer.' };
const CLI_FORBIDDEN = [BENCH];
const LOCAL_FORBIDDEN = [
  BENCH,
  {
    group: ['**/cli/**'],
    message:
      'local/ never imports the CLI: shared option parsers live in local/options.ts (docs/ARCHITECTURE.md, "Layers and flow").',
  },
];
const CLI_EXCEPT_CONSOLE = {
  regex: '(^|/)cli/(?!console/)',
  message: 'local/start.ts imports only the console of the CLI layer (docs/ARCHITECTURE.md, "Layers and flow").',
};
const DEPLOYABLE_FORBIDDEN = [
  BENCH,
  {
    group: ['**/local/**', '**/cli/**'],
    message:
      'infra/ and workflows/ are the deployable app: they never import the local mode or the CLI (PROJECT_ROOT is in infra/project-root.ts; docs/ARCHITECTURE.md, "Layers and flow").',
  },
];

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': nameBan(),
    },
  },
  ...NAME_MODULES.map((module) => ({
    files: [module],
    rules: { 'no-restricted-syntax': nameBan({ except: module }) },
  })),
  ...NAME_BAN_EXCEPTIONS.map(({ files, except, allowed }) => ({
    files,
    rules: { 'no-restricted-syntax': nameBan({ except, allowed }) },
  })),
  ...(NAME_BAN_PENDING.length > 0 ? [{ files: NAME_BAN_PENDING, rules: { 'no-restricted-syntax': 'off' } }] : []),
  // This file lists the banned strings.
  { files: ['eslint.config.js'], rules: { 'no-restricted-syntax': 'off' } },
  {
    // Long glue functions hide what they build: split them into named parts (issue 13).
    files: [
      'core/**/*.ts',
      'adapters/**/*.ts',
      'handlers/**/*.ts',
      'infra/**/*.ts',
      'workflows/**/*.ts',
      'local/**/*.ts',
      'cli/**/*.ts',
      'bench/**/*.ts',
    ],
    ignores: ['**/*.test.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 80 }],
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: CORE_FORBIDDEN }] },
  },
  {
    files: ['handlers/**/*.ts', 'adapters/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: RUNTIME_FORBIDDEN }] },
  },
  {
    files: ['infra/**/*.ts', 'workflows/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: DEPLOYABLE_FORBIDDEN }] },
  },
  {
    files: ['local/**/*.ts'],
    ignores: ['local/start.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: LOCAL_FORBIDDEN }] },
  },
  {
    // `npm start`'s entry point composes the local stack and the console that drives it (a CLI-level
    // client, cli/console/): the one file of local/ that may import cli/, and only the console.
    files: ['local/start.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [BENCH, CLI_EXCEPT_CONSOLE] }] },
  },
  {
    files: ['cli/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: CLI_FORBIDDEN }] },
  },
);
