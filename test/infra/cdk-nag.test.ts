import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { IConstruct } from 'constructs';
import {
  FAILURE_QUEUE_ACKNOWLEDGEMENT,
  LIST_STREAMS_ACKNOWLEDGEMENT,
} from '../../infra/constructs/event-subscription.ts';
import { XRAY_ACKNOWLEDGEMENT } from '../../infra/constructs/ingest-function.ts';
import { buildApp } from '../../infra/synth.ts';

interface Finding {
  ruleName: string;
  reason?: string;
  acknowledgedId?: string;
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

/** Every acknowledgement the app recorded (Validations.acknowledge), as `construct path: id`. */
function recordedAcknowledgements(root: IConstruct): string[] {
  return root.node
    .findAll()
    .flatMap((node) =>
      node.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) => Object.keys(entry.data as Record<string, string>).map((id) => `${node.node.path}: ${id}`)),
    )
    .sort();
}

const SUCCESSOR = (machine: string) =>
  `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${machine}.Name>:*]`;
const IAM5_STAR = 'AwsSolutions::AwsSolutions-IAM5[Resource::*]';

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

  it('every acknowledgement the app records is listed in the report, with its reason: the pinned list (docs/OPERATIONS.md)', () => {
    // Prepare: every kind of resource that acknowledges something, a subscription added from code too.
    const outdir = freshOutdir();
    const context = { queue: 'fifo', previousQueue: 'standard', exampleProjection: 'true' };
    const { app, stack } = buildApp(context, { bundle: false, outdir });
    stack.addSubscription('Orders', { entry: 'handlers/stream-summary-projection.ts' });

    // Act
    app.synth();
    const [report] = readReport(outdir).pluginReports;
    const listed = (report?.suppressedViolations ?? []).map(
      (finding) => `${finding.acknowledgedAt}: ${finding.acknowledgedId}`,
    );

    // Assess
    expect(report?.conclusion).toBe('success');
    expect(report?.violations).toEqual([]);
    expect([...new Set(listed)].sort()).toEqual(recordedAcknowledgements(app));
    expect(recordedAcknowledgements(app)).toEqual(
      [
        `EventStore/IngestFunction/Role: ${IAM5_STAR}`,
        `EventStore/Redrive/FunctionRole: ${IAM5_STAR}`,
        `EventStore/Redrive/StateMachineRole: ${IAM5_STAR}`,
        'EventStore/Redrive/StateMachine: AwsSolutions::AwsSolutions-SF1',
        `EventStore/Redrive/SuccessorPolicy: ${SUCCESSOR('RedriveStateMachineFCE7A04E')}`,
        `EventStore/PreviousRedrive/FunctionRole: ${IAM5_STAR}`,
        `EventStore/PreviousRedrive/StateMachineRole: ${IAM5_STAR}`,
        'EventStore/PreviousRedrive/StateMachine: AwsSolutions::AwsSolutions-SF1',
        `EventStore/PreviousRedrive/SuccessorPolicy: ${SUCCESSOR('PreviousRedriveStateMachine825B2FE0')}`,
        `EventStore/StreamSummary/Subscription/Role: ${IAM5_STAR}`,
        'EventStore/StreamSummary/Subscription/FailureQueue: AwsSolutions::AwsSolutions-SQS3',
        `EventStore/Orders/Role: ${IAM5_STAR}`,
        'EventStore/Orders/FailureQueue: AwsSolutions::AwsSolutions-SQS3',
      ].sort(),
    );
    const reasons = new Map((report?.suppressedViolations ?? []).map((f) => [`${f.acknowledgedAt}`, f.reason]));
    expect(reasons.get('EventStore/IngestFunction/Role')).toBe(XRAY_ACKNOWLEDGEMENT.reason);
    expect(reasons.get('EventStore/Orders/Role')).toBe(LIST_STREAMS_ACKNOWLEDGEMENT.reason);
    expect(reasons.get('EventStore/Orders/FailureQueue')).toBe(FAILURE_QUEUE_ACKNOWLEDGEMENT.reason);
  });

  it('an acknowledgement without the pack prefix would hide its finding from the report (why every id carries it)', () => {
    // Prepare: the ingest role's X-Ray finding acknowledged the way four acknowledgements once were.
    const outdir = freshOutdir();
    const { app, stack } = buildApp({}, { bundle: false, outdir });
    const unprefixed = { id: 'AwsSolutions-IAM5[Action::s3:GetObject]', reason: 'a reason nobody will read' };
    stack.ingest.role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
    Validations.of(stack.ingest.role).acknowledge(unprefixed);

    // Act
    app.synth();
    const [report] = readReport(outdir).pluginReports;

    // Assess: synth passes, and nothing in the report names the finding or its reason.
    expect(report?.conclusion).toBe('success');
    expect(JSON.stringify(report)).not.toContain('s3:GetObject');
    expect(recordedAcknowledgements(app)).toContain(`EventStore/IngestFunction/Role: Annotation::${unprefixed.id}`);
  });

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
