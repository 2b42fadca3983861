import * as iam from 'aws-cdk-lib/aws-iam';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { XRAY_ACKNOWLEDGEMENT } from '../../infra/constructs/ingest-function.ts';
import { buildApp } from '../../infra/synth.ts';

interface Finding {
  ruleName: string;
  reason?: string;
  acknowledgedAt?: string;
  violatingConstructs: { constructPath: string }[];
}
interface ValidationReport {
  pluginReports: { pluginName: string; conclusion: string; violations: Finding[]; suppressedViolations?: Finding[] }[];
}

const outdirs: string[] = [];
function freshOutdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'event-store-nag-'));
  outdirs.push(dir);
  return dir;
}

function readReport(dir: string): ValidationReport {
  return JSON.parse(readFileSync(join(dir, 'validation-report.json'), 'utf8')) as ValidationReport;
}

describe('cdk-nag AwsSolutions checks', () => {
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  it.each(['standard', 'fifo'])(
    '%s: no unacknowledged finding; each acknowledgement has a specific reason',
    (queue) => {
      // Prepare
      const outdir = freshOutdir();
      const { app } = buildApp({ queue, alarmEmail: 'ops@example.com' }, { bundle: false, outdir });

      // Act
      app.synth();
      const [report] = readReport(outdir).pluginReports;

      // Assess
      expect(report?.pluginName).toBe('AwsSolutions');
      expect(report?.conclusion).toBe('success');
      expect(report?.violations).toEqual([]);
      const acknowledged = report?.suppressedViolations ?? [];
      expect(acknowledged).toContainEqual(
        expect.objectContaining({
          ruleName: 'AwsSolutions-IAM5[Resource::*]',
          acknowledgedAt: 'EventStore/IngestFunction/Role',
          reason: XRAY_ACKNOWLEDGEMENT.reason,
          violatingConstructs: [
            expect.objectContaining({ constructPath: 'EventStore/IngestFunction/Role/DefaultPolicy/Resource' }),
          ],
        }),
      );
      for (const finding of acknowledged) expect(finding.reason?.length ?? 0).toBeGreaterThanOrEqual(60);
    },
  );

  it('stops synth on a finding nobody acknowledged (here: a wildcard grant on the ingest role)', () => {
    // Prepare
    const outdir = freshOutdir();
    const { app, stack } = buildApp({}, { bundle: false, outdir });
    stack.ingest.role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:*'], resources: ['*'] }));

    // Act
    let message = '';
    try {
      app.synth();
    } catch (error) {
      message = (error as Error).message;
    }

    // Assess
    expect(message).toContain("Acknowledge with 'AwsSolutions::AwsSolutions-IAM5[Action::s3:*]'");
    // CDK prints the report's path absolute or relative to the working folder, whichever is shorter.
    expect(message).toMatch(
      new RegExp(`A copy of this report can be found in: \\S*${basename(outdir)}/validation-report\\.json`),
    );
    const [report] = readReport(outdir).pluginReports;
    expect(report?.conclusion).toBe('failure');
    expect(report?.violations.map((v) => [v.ruleName, v.violatingConstructs.map((c) => c.constructPath)])).toEqual([
      ['AwsSolutions-IAM5[Action::s3:*]', ['EventStore/IngestFunction/Role/DefaultPolicy/Resource']],
    ]);
  });
});
