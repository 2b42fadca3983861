import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../core/metrics.ts';
import { buildApp } from '../../infra/synth.ts';
import { LOCAL_ACCOUNT, LOCAL_REGION } from '../../local/defaults.ts';

const run = promisify(execFile);

/**
 * One real esbuild bundle of the ingest function (what `npm run synth` and `cdk deploy` ship):
 * the other infra tests synthesize with bundling off to stay fast.
 */
describe('ingest function bundle', () => {
  let outdir: string;
  let bundle: string;
  /** Every function of the stack built from this repository's code (an index.mjs asset). */
  let functionBundles: string[];

  beforeAll(() => {
    // Prepare
    outdir = mkdtempSync(join(tmpdir(), 'event-store-bundle-'));
    const { app, stack } = buildApp({}, { bundle: true, outdir });

    // Act
    const template = app.synth().getStackArtifact(stack.artifactId).template as {
      Resources: Record<string, { Type: string; Properties: { Code?: { S3Key?: string }; Environment?: unknown } }>;
    };
    const ingest = Object.values(template.Resources).find(
      (r) => r.Type === 'AWS::Lambda::Function' && JSON.stringify(r.Properties.Environment).includes('DLQ_URL'),
    );
    const assetHash = ingest?.Properties.Code?.S3Key?.replace(/\.zip$/, '') ?? 'missing';
    bundle = join(outdir, `asset.${assetHash}`, 'index.mjs');
    functionBundles = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function')
      .map((r) => join(outdir, `asset.${r.Properties.Code?.S3Key?.replace(/\.zip$/, '') ?? 'missing'}`, 'index.mjs'))
      .filter((file) => existsSync(file));
  }, 120_000);

  afterAll(() => {
    rmSync(outdir, { recursive: true, force: true });
  });

  it('is an ES module of real size, with its source map and the require() banner', () => {
    // Assess
    expect(existsSync(bundle)).toBe(true);
    expect(statSync(bundle).size).toBeGreaterThan(100_000);
    expect(existsSync(`${bundle}.map`)).toBe(true);
    expect(readFileSync(bundle, 'utf8').startsWith("import { createRequire } from 'node:module';")).toBe(true);
  });

  it("is how every function of the stack is built, the AWS SDK bundled, not the runtime's (the redrive function was not)", () => {
    // Assess: the ingest and redrive functions at least, each with the banner and the SQS client inside.
    expect(functionBundles.length).toBeGreaterThanOrEqual(2);
    for (const file of functionBundles) {
      const code = readFileSync(file, 'utf8');
      expect(code.startsWith("import { createRequire } from 'node:module';"), file).toBe(true);
      expect(code.includes('@aws-sdk/client-sqs') || code.includes('SQSClient'), file).toBe(true);
      expect(/from\s*["']@aws-sdk\//.test(code), `${file} imports the runtime's SDK`).toBe(false);
    }
  });

  it('loads on Node.js as ESM and exports the handler function', async () => {
    // Act: a separate process, configured as Lambda would configure it.
    const script = `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); console.log(typeof m.handler);`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: {
        ...process.env,
        TABLE_NAME: 'events',
        DLQ_URL: `http://127.0.0.1:1/${LOCAL_ACCOUNT}/dlq`,
        AWS_REGION: LOCAL_REGION,
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      },
      timeout: 30_000,
    });

    // Assess
    expect(stdout.trim()).toBe('function');
  });
});
