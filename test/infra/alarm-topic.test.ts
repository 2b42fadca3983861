import { describe, expect, it } from 'vitest';
import { CLOUDWATCH_PRINCIPAL } from '../../infra/constructs/monitoring.ts';
import { buildApp } from '../../infra/synth.ts';

/**
 * An alarm reaches someone only if CloudWatch may publish to the topic it names: the topic policy
 * (which replaces SNS's default one) lets `cloudwatch.amazonaws.com` publish only for the alarm ARNs
 * it lists (docs/OPERATIONS.md, "What is deployed"). So every alarm that has the stack's topic among
 * its actions must be in that list, whatever added it and when.
 */

type Resource = { Type: string; Properties: Record<string, unknown> };
interface Statement {
  Sid?: string;
  Effect: string;
  Principal?: { Service?: string };
  Condition?: { ArnEquals?: { 'aws:SourceArn': unknown[] } };
}

/** The stack's template, after `extend` added to the built stack (as a user's code would). */
function templateOf(
  context: Record<string, string>,
  extend: (stack: ReturnType<typeof buildApp>['stack']) => void = () => {},
): Record<string, Resource> {
  const { app, stack } = buildApp(context, { bundle: false });
  extend(stack);
  return (app.synth().getStackArtifact(stack.artifactId).template as { Resources: Record<string, Resource> }).Resources;
}

/** The alarms whose alarm, OK or insufficient-data actions name the topic, and the ARNs the topic policy allows. */
function alarmsAndPolicy(resources: Record<string, Resource>): { notifying: unknown[]; allowed: unknown[] } {
  const [topicId] = Object.entries(resources).find(([, r]) => r.Type === 'AWS::SNS::Topic')!;
  const notifying = Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm')
    .filter(([, r]) =>
      ['AlarmActions', 'OKActions', 'InsufficientDataActions'].some((key) =>
        JSON.stringify(r.Properties[key] ?? []).includes(JSON.stringify({ Ref: topicId })),
      ),
    )
    .map(([id]) => ({ 'Fn::GetAtt': [id, 'Arn'] }));
  const policies = Object.values(resources).filter(
    (r) => r.Type === 'AWS::SNS::TopicPolicy' && JSON.stringify(r.Properties['Topics']).includes(topicId),
  );
  expect(policies).toHaveLength(1);
  const statements = (policies[0]!.Properties['PolicyDocument'] as { Statement: Statement[] }).Statement;
  const allow = statements.filter((s) => s.Effect === 'Allow' && s.Principal?.Service === CLOUDWATCH_PRINCIPAL);
  expect(allow).toHaveLength(1);
  return { notifying, allowed: allow[0]!.Condition?.ArnEquals?.['aws:SourceArn'] ?? [] };
}

describe('every alarm that notifies the stack topic may publish to it', () => {
  it.each([
    ['the default stack', {}, 6],
    ['a mode switch keeping the previous queues', { queue: 'fifo', previousQueue: 'standard' }, 9],
    ['the example projection', { exampleProjection: 'true' }, 11],
    [
      'the example projection with an email subscription',
      { exampleProjection: 'true', alarmEmail: 'ops@example.com' },
      11,
    ],
  ])(
    '%s',
    (_case, context, count) => {
      // Act
      const { notifying, allowed } = alarmsAndPolicy(templateOf(context));

      // Assess
      expect(notifying).toHaveLength(count);
      expect([...allowed].sort(byJson)).toEqual([...notifying].sort(byJson));
    },
    60_000,
  );

  it("subscriptions added with addSubscription after the stack was built, and a user's own alarm on the topic", () => {
    // Act
    const resources = templateOf({ exampleProjection: 'true' }, (stack) => {
      const orders = stack.addSubscription('Orders', { entry: 'handlers/stream-summary-projection.ts' });
      stack.addSubscription('Billing', { entry: 'handlers/stream-summary-projection.ts', maxAttempts: 2 });
      orders.function
        .metricDuration()
        .createAlarm(stack, 'SlowOrders', { threshold: 1000, evaluationPeriods: 1 })
        .addOkAction({ bind: () => ({ alarmActionArn: stack.monitoring.alarmTopic.topicArn }) });
    });
    const { notifying, allowed } = alarmsAndPolicy(resources);

    // Assess: 6 of the stack, 5 per subscription (three subscriptions), the user's own.
    expect(notifying).toHaveLength(6 + 3 * 5 + 1);
    expect([...allowed].sort(byJson)).toEqual([...notifying].sort(byJson));
    expect(allowed).toContainEqual({ 'Fn::GetAtt': [expect.stringMatching(/^SlowOrders/), 'Arn'] });
  }, 60_000);
});

function byJson(a: unknown, b: unknown): number {
  return JSON.stringify(a) < JSON.stringify(b) ? -1 : 1;
}
