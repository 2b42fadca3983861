import { Template } from 'aws-cdk-lib/assertions';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IngestMetric, MetricDimension, METRICS_NAMESPACE } from '../../core/metrics.ts';
import { RejectionReason } from '../../core/reasons.ts';
import { synthesizeTemplate } from '../../infra/synth.ts';
import { createTestQueue, createTestTable, dynamoClient, sqsClient } from '../support/engines.ts';
import { lambdaContext, sqsEvent, sqsRecord, validEvent } from '../support/factories.ts';
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
});
