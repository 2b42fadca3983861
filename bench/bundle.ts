import { METRICS_NAMESPACE, SERVICE_NAME } from '../core/metrics.ts';
import { LOCAL_ACCOUNT, LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/defaults.ts';
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { percentile } from './records.ts';

export interface BundleResult {
  readonly bytes: number;
  readonly gzipBytes: number;
  readonly sourceMapBytes: number;
  /** Median and worst time to import the bundle in a fresh Node process (ms), over `runs`. */
  readonly coldImportMsP50: number;
  readonly coldImportMsMax: number;
  readonly runs: number;
}

/** Time `import(bundle)` in a fresh Node process, as a Lambda cold start loads the handler module. */
function timeImport(file: string): Promise<number> {
  const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); console.log(performance.now() - t);`;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: {
        PATH: process.env['PATH'] ?? '',
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        TABLE_NAME: 'bench-events',
        DLQ_URL: `http://127.0.0.1:1/${LOCAL_ACCOUNT}/bench-dlq`,
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'ERROR',
        POWERTOOLS_TRACE_ENABLED: 'false',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = Number(out.trim().split('\n').pop());
      if (code === 0 && Number.isFinite(ms)) resolvePromise(ms);
      else reject(new Error(`importing the bundle failed (exit ${code}): ${err.trim().slice(0, 500)}`));
    });
  });
}

/**
 * Bundle the ingest handler the way the CDK app's NodejsFunction does (esbuild: bundle,
 * minify, ESM with a require shim, node22, platform node, the AWS SDK bundled in, source
 * map) and time its import in fresh Node processes.
 */
export async function measureBundle(entry = 'handlers/ingest.ts', runs = 5): Promise<BundleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'event-store-bench-'));
  try {
    const outfile = join(dir, 'index.mjs');
    await build({
      entryPoints: [resolve(entry)],
      outfile,
      bundle: true,
      minify: true,
      format: 'esm',
      target: 'node22',
      platform: 'node',
      mainFields: ['module', 'main'],
      sourcemap: true,
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      logLevel: 'silent',
    });
    const times: number[] = [];
    for (let run = 0; run < runs; run += 1) times.push(await timeImport(outfile));
    return {
      bytes: statSync(outfile).size,
      gzipBytes: gzipSync(readFileSync(outfile)).length,
      sourceMapBytes: statSync(`${outfile}.map`).size,
      coldImportMsP50: percentile(times, 50),
      coldImportMsMax: Math.max(...times),
      runs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
