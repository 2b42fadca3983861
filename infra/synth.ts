import { App, Validations } from 'aws-cdk-lib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig } from './config.ts';
import { EventStoreStack } from './event-store-stack.ts';

export interface BuildAppOptions {
  /** Bundle the ingest function with esbuild. @default true */
  readonly bundle?: boolean;
  /** Where the cloud assembly goes. @default - CDK's choice (cdk.out under the CLI, a temp dir otherwise) */
  readonly outdir?: string;
  /** Override the ingest handler's entry (tests). */
  readonly ingestEntry?: string;
}

/**
 * Build the CDK app: validate the context, add the stack and the cdk-nag AwsSolutions checks.
 * `infra/app.ts` (the CLI's entry) and the tests both come through here.
 *
 * @throws ConfigError when a context value is wrong.
 */
export function buildApp(
  context: Readonly<Record<string, unknown>> = {},
  options: BuildAppOptions = {},
): { app: App; stack: EventStoreStack } {
  const bundle = options.bundle ?? true;
  const app = new App({
    context: { ...context, ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) },
    ...(options.outdir ? { outdir: options.outdir } : {}),
  });
  const config = parseConfig(app.node.getAllContext());
  const stack = new EventStoreStack(app, config.stackName, {
    config,
    description: `Event store on DynamoDB fed by SQS (${config.queue} queue)`,
    ...(options.ingestEntry ? { ingestEntry: options.ingestEntry } : {}),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

/**
 * The EventStoreStack's CloudFormation template as JSON. Bundling is off by default (esbuild
 * costs seconds and the template does not need the code); `{ bundle: true }` bundles for real.
 *
 * @example
 * const template = synthesizeTemplate({ queue: 'fifo' });
 * // Template.fromJSON(template).resourceCountIs('AWS::SQS::Queue', 2)
 * @throws ConfigError when a context value is wrong; an Error when cdk-nag reports a finding.
 */
export function synthesizeTemplate(
  context: Record<string, string>,
  options: { bundle?: boolean } = {},
): Record<string, unknown> {
  const outdir = mkdtempSync(join(tmpdir(), 'event-store-synth-'));
  try {
    const { app, stack } = buildApp(context, { bundle: options.bundle ?? false, outdir });
    const assembly = app.synth();
    return assembly.getStackArtifact(stack.artifactId).template as Record<string, unknown>;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
