import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { OutputIds } from '../../core/stack-outputs.ts';
import { PROJECT_ROOT } from '../../local/defaults.ts';

const run = promisify(execFile);
const cdk = join(PROJECT_ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');

const outdirs: string[] = [];

/** `cdk synth` as a user runs it (cdk.json -> infra/app.ts), offline and quiet. */
async function cdkSynth(
  ...context: string[]
): Promise<{ code: number; stdout: string; stderr: string; outdir: string }> {
  const outdir = mkdtempSync(join(tmpdir(), 'event-store-cli-'));
  outdirs.push(outdir);
  const args = [cdk, 'synth', '--no-notices', '-q', '-o', outdir, ...context.flatMap((c) => ['-c', c])];
  try {
    const { stdout, stderr } = await run(process.execPath, args, {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
        CDK_DISABLE_CLI_TELEMETRY: 'true',
        CDK_DISABLE_VERSION_CHECK: 'true',
      },
      timeout: 110_000,
    });
    return { code: 0, stdout, stderr, outdir };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '', outdir };
  }
}

describe('cdk synth (the CLI through cdk.json and infra/app.ts)', () => {
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  it('stops on a wrong context value with the message alone and exit code 1', async () => {
    // Act
    const result = await cdkSynth('queue=fof');

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Invalid context queue="fof": allowed one of standard, fifo.\n');
    expect(result.stderr).not.toContain('    at ');
    expect(existsSync(join(result.outdir, 'EventStore.template.json'))).toBe(false);
  }, 120_000);

  it('-c queue=fifo -c batchSize=5 synthesizes the FIFO stack and bundles the function; a set-once name is warned about', async () => {
    // Act
    const result = await cdkSynth('queue=fifo', 'batchSize=5', 'stackName=OrdersEvents', 'tableName=orders-events');

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('WARNING tableName is set-once: keep exactly this value in every deploy');
    expect(result.stderr).toContain('OrdersEvents/EventTable/Table');
    expect(result.stderr).not.toContain('queueName is set-once');
    const template = JSON.parse(readFileSync(join(result.outdir, 'OrdersEvents.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
      Outputs: Record<string, { Value: unknown }>;
    };
    const resources = Object.values(template.Resources);
    expect(resources.filter((r) => r.Type === 'AWS::SQS::Queue').map((r) => r.Properties.FifoQueue)).toEqual([
      true,
      true,
    ]);
    expect(resources.find((r) => r.Type === 'AWS::Lambda::EventSourceMapping')?.Properties.BatchSize).toBe(5);
    expect(template.Outputs[OutputIds.queueMode]?.Value).toBe('fifo');
    const assets = readdirSync(result.outdir).filter((name) => name.startsWith('asset.'));
    expect(assets.filter((name) => existsSync(join(result.outdir, name, 'index.mjs'))).length).toBeGreaterThanOrEqual(
      1,
    );
  }, 120_000);
});
