import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp, synthesizeTemplate } from '../../infra/synth.ts';
import type { CfnTemplate } from '../../workflows/local-runner.ts';

const INGEST_HANDLER = fileURLToPath(new URL('../../handlers/ingest.ts', import.meta.url));
const STAND_IN = fileURLToPath(new URL('../../handlers/redrive-prepare.ts', import.meta.url));

/**
 * The EventStoreStack template the CDK app synthesizes (bundling off), so the tests execute
 * the very definition that is deployed. Until handlers/ingest.ts exists the ingest function
 * gets a stand-in entry (the redrive workflow does not depend on it).
 */
export function redriveTemplate(queue: 'standard' | 'fifo'): CfnTemplate {
  if (existsSync(INGEST_HANDLER)) return synthesizeTemplate({ queue });
  const outdir = mkdtempSync(join(tmpdir(), 'redrive-synth-'));
  try {
    const { app, stack } = buildApp({ queue }, { bundle: false, ingestEntry: STAND_IN, outdir });
    return app.synth().getStackArtifact(stack.artifactId).template as CfnTemplate;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
