import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { vi } from 'vitest';
import type { MessageAttributeName } from '../../core/message-attributes.ts';
import { METRICS_NAMESPACE, MetricDimension, SERVICE_NAME, type IngestMetric } from '../../core/metrics.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { drainQueue } from '../support/factories.ts';

/** Receive until `count` messages arrived (polling with a deadline), then check that no more come. */
export async function receiveExactly(sqs: SQSClient, queueUrl: string, count: number): Promise<Message[]> {
  const messages: Message[] = [];
  await waitUntil(
    async () => {
      messages.push(...(await drainQueue(sqs, queueUrl)));
      return messages.length >= count;
    },
    `${count} messages in ${queueUrl}`,
    10_000,
  );
  messages.push(...(await drainQueue(sqs, queueUrl)));
  return messages;
}

/** The String value of a message attribute. */
export function attribute(message: Message, name: MessageAttributeName): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
}

/** A Logger that writes nothing (the handler's logs are not under test here). */
export function quietLogger(): Logger {
  return new Logger({ serviceName: SERVICE_NAME, logLevel: 'SILENT' });
}

/** One EMF document as Powertools Metrics prints it. */
export interface EmfDocument {
  readonly _aws: {
    readonly CloudWatchMetrics: readonly {
      readonly Namespace: string;
      readonly Dimensions: readonly (readonly string[])[];
      readonly Metrics: readonly { readonly Name: string; readonly Unit: string }[];
    }[];
  };
  readonly [key: string]: unknown;
}

/**
 * Real Powertools Metrics, enabled, whose EMF output (console.log in POWERTOOLS_DEV mode) is
 * captured. `restore()` in a finally block.
 */
export function captureMetrics(): { metrics: Metrics; documents: () => EmfDocument[]; restore: () => void } {
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  });
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
  return {
    metrics,
    documents: () => lines.filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as EmfDocument),
    restore: () => {
      spy.mockRestore();
      vi.unstubAllEnvs();
    },
  };
}

/** The sum of metric `name` over EMF documents, optionally only those with dimension `Reason`. */
export function metricTotal(documents: readonly EmfDocument[], name: IngestMetric, reason?: string): number {
  let total = 0;
  for (const document of documents) {
    const declared = document._aws.CloudWatchMetrics.some(
      (set) => set.Namespace === METRICS_NAMESPACE && set.Metrics.some((metric) => metric.Name === name),
    );
    if (!declared) continue;
    if (reason !== undefined && document[MetricDimension.reason] !== reason) continue;
    const value = document[name];
    total += Array.isArray(value) ? value.reduce((sum: number, item: number) => sum + item, 0) : Number(value);
  }
  return total;
}
