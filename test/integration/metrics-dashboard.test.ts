import { Template } from 'aws-cdk-lib/assertions';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { IngestMetric, MetricDimension, METRICS_NAMESPACE } from '../../core/metrics.ts';
import { SubscriptionEnvironment } from '../../core/subscription.ts';
import { STREAM_SUMMARY_NAME } from '../../infra/constructs/stream-summary.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { synthesizeTemplate } from '../../infra/synth.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
import { createCheckpointTable } from '../support/subscriptions.ts';
import { quietLogger, type EmfDocument } from './ingest-helpers.ts';

/**
 * The dashboard only shows what the handler really emits if both agree on namespace, metric
 * names, dimension names, dimension values and the exact dimension set (CloudWatch matches a
 * metric by all of them). So: the handler runs on the environment the synthesized template
 * gives the function (stack `Orders`), on DynamoDB Local and fauxqs, and every EMF document it
 * prints must be a series the `Orders` dashboard names, and no other stack's.
 */
describe("the handler's metrics are the series its stack's dashboard shows", () => {
  const dynamo = dynamoClient();
  const sqs = sqsClient();
  let environment: Record<string, string>;
  let dashboard: string;

  beforeAll(() => {
    const template = Template.fromJSON(synthesizeTemplate({ stackName: 'Orders' }));
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as {
      Properties: { Environment?: { Variables?: Record<string, unknown> } };
    }[];
    const ingest = functions.find((fn) => fn.Properties.Environment?.Variables?.['DLQ_URL'] !== undefined);
    environment = Object.fromEntries(
      Object.entries(ingest?.Properties.Environment?.Variables ?? {}).filter(
        (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[0].startsWith('POWERTOOLS_'),
      ),
    );
    const [board] = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as {
      Properties: { DashboardBody: unknown };
    }[];
    dashboard = JSON.stringify(board?.Properties.DashboardBody);
  }, 60_000);

  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it('EventsStored and EventsRejected by Reason carry service = the stack name, exactly as the dashboard asks', async () => {
    // Prepare: the function's POWERTOOLS_* environment from the template, metrics on (printed as
    // EMF lines in POWERTOOLS_DEV mode), then the handler module as the Lambda loads it.
    expect(environment['POWERTOOLS_SERVICE_NAME']).toBe('Orders');
    for (const [name, value] of Object.entries(environment)) vi.stubEnv(name, value);
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
    });
    const { createIngestHandler } = await import('../../handlers/ingest.ts');
    const tableName = await createTestTable(dynamo, 'metrics');
    const dlqUrl = await createTestQueue(sqs, 'metrics-dlq', { fifo: false });
    const handler = createIngestHandler({ dynamo, sqs, tableName, dlqUrl, logger: quietLogger() });
    const id = `metrics-${randomUUID()}`;

    // Act: one stored, one rejected (SchemaViolation).
    await handler(
      sqsEvent([sqsRecord(validEvent({ ID: id })), sqsRecord(validEvent({ ID: id, EmitterId: undefined }))]),
      lambdaContext(),
    );

    // Assess
    const documents = lines.filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as EmfDocument);
    const series = documents.flatMap((document) =>
      document._aws.CloudWatchMetrics.flatMap((set) =>
        set.Metrics.map((metric) => {
          const dimensions = set.Dimensions.flat();
          return {
            namespace: set.Namespace,
            name: metric.Name,
            dimensions: Object.fromEntries(dimensions.map((d) => [d, document[d]])),
          };
        }),
      ),
    );
    expect(series).toEqual(
      expect.arrayContaining([
        {
          namespace: METRICS_NAMESPACE,
          name: IngestMetric.eventsStored,
          dimensions: { [MetricDimension.service]: 'Orders' },
        },
        {
          namespace: METRICS_NAMESPACE,
          name: IngestMetric.eventsRejected,
          dimensions: {
            [MetricDimension.service]: 'Orders',
            [MetricDimension.reason]: RejectionReason.SchemaViolation,
          },
        },
      ]),
    );
    for (const { namespace, name, dimensions } of series) {
      // The dashboard's metric array: namespace, name, then dimension name/value pairs in key order.
      const pairs = Object.entries(dimensions)
        .sort(([a], [b]) => a.localeCompare(b))
        .flat();
      const entry = JSON.stringify([namespace, name, ...pairs]).slice(1, -1);
      expect(dashboard, `${name} ${JSON.stringify(dimensions)}`).toContain(entry.replaceAll('"', '\\"'));
    }
  });

  it("a subscription's metrics carry service = the stack name and its name, exactly as its alarms ask", async () => {
    // Prepare: the subscription function's POWERTOOLS_* environment from the stack `Orders`, its
    // alarms' metric dimensions, and one stored event announced by a stream record.
    const template = synthesizeTemplate({ stackName: 'Orders', exampleProjection: 'true' }) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const resources = Object.values(template.Resources);
    const subscriptionFunction = resources.find(
      (r) =>
        r.Type === 'AWS::Lambda::Function' &&
        JSON.stringify(r.Properties['Environment']).includes(SubscriptionEnvironment.checkpointTable),
    );
    const variables = (subscriptionFunction?.Properties['Environment'] as { Variables: Record<string, unknown> })
      .Variables;
    vi.unstubAllEnvs();
    for (const [name, value] of Object.entries(variables)) {
      if (name.startsWith('POWERTOOLS_') && typeof value === 'string') vi.stubEnv(name, value);
    }
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    const byName = (a: { Name: string }, b: { Name: string }) => (a.Name < b.Name ? -1 : 1);
    const alarmed = resources
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm' && r.Properties['Namespace'] === METRICS_NAMESPACE)
      .map((r) => JSON.stringify([...(r.Properties['Dimensions'] as { Name: string }[])].sort(byName)));
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
    });
    const { createSubscriptionHandler } = await import('../../handlers/subscription.ts');
    const eventTable = await createTestTable(dynamo, 'metrics-sub');
    const id = `metrics-${randomUUID()}`;
    const item = {
      ID: { S: id },
      Version: { N: '1' },
      EventId: { S: `${id}-1` },
      EventType: { S: 'EVENT_EXAMPLE' },
      Timestamp: { N: '1596719980' },
      EmitterId: { S: 'e' },
      EmitterType: { S: 'SYSTEM' },
      Data: { M: {} },
      RecordedAt: { S: new Date().toISOString() },
    };
    await dynamo.send(new PutItemCommand({ TableName: eventTable, Item: item }));
    const handler = createSubscriptionHandler({
      dynamo,
      config: {
        name: STREAM_SUMMARY_NAME,
        eventTable,
        checkpointTable: await createCheckpointTable(dynamo, 'metrics-sub-cp'),
        maxAttempts: 3,
        eventTypes: [],
        replayReadUnitsPerSecond: 1000,
      },
      project: () => {},
    });

    // Act
    await handler(
      {
        Records: [
          {
            eventName: 'INSERT',
            eventSource: 'aws:dynamodb',
            dynamodb: { SequenceNumber: '1'.padStart(21, '0'), NewImage: item as never },
          },
        ],
      },
      lambdaContext(),
    );

    // Assess: every series it printed has the dimension set of the subscription's alarms.
    expect(variables['POWERTOOLS_SERVICE_NAME']).toBe('Orders');
    const documents = lines.filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as EmfDocument);
    const dimensionSets = documents.flatMap((document) =>
      document._aws.CloudWatchMetrics.map((set) =>
        set.Dimensions.flat()
          .map((name) => ({ Name: name, Value: document[name] }))
          .sort(byName),
      ),
    );
    expect(dimensionSets.length).toBeGreaterThan(0);
    for (const set of dimensionSets) {
      expect(set).toEqual([
        { Name: MetricDimension.subscription, Value: STREAM_SUMMARY_NAME },
        { Name: MetricDimension.service, Value: 'Orders' },
      ]);
      expect(alarmed).toContain(JSON.stringify(set));
    }
  });
});
