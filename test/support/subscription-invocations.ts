/**
 * Lambda-like invocations of the subscription handler for the tests on DynamoDB Local
 * (test/integration/subscription-*.test.ts): stream batches, deadlines, polling with a deadline
 * (no sleeps as synchronisation), gates, and a log of hand-overs per stream.
 */
import { marshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { StoredEvent } from '../../core/store.ts';
import type { Projection } from '../../core/subscription.ts';
import { lambdaContext } from './factories.ts';

let sequence = 0;

/** A DynamoDB stream batch of these stored events, in this order (Lambda's record shape). */
export function batch(events: readonly StoredEvent[]): DynamoDBStreamEvent {
  return {
    Records: events.map((event): DynamoDBRecord => ({
      eventName: 'INSERT',
      eventSource: 'aws:dynamodb',
      dynamodb: {
        SequenceNumber: String((sequence += 1)).padStart(21, '0'),
        // aws-lambda's AttributeValue and the SDK's marshall output are the same JSON shape.
        NewImage: marshall(event, { removeUndefinedValues: true }) as NonNullable<
          DynamoDBRecord['dynamodb']
        >['NewImage'],
      },
    })),
  };
}

/** A Lambda context whose deadline is `ms` from now on `now`'s clock. */
export function contextFor(ms: number, now: () => number = Date.now): Context {
  const deadline = now() + ms;
  return lambdaContext({ getRemainingTimeInMillis: () => Math.max(0, deadline - now()) });
}

/** Poll `check` until it holds (no sleeps as synchronisation). */
export async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A gate a projection (or a request) waits on until the test opens it. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => undefined as void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Records every hand-over's start and end per stream: overlaps and order. */
export function handOverLog() {
  const active = new Map<string, number>();
  const seen: string[] = [];
  let overlaps = 0;
  return {
    seen,
    get overlaps() {
      return overlaps;
    },
    versions: (streamId: string) =>
      seen.filter((entry) => entry.startsWith(`${streamId}@`)).map((entry) => Number(entry.split('@')[1])),
    wrap:
      (inner: (event: StoredEvent) => Promise<void> | void = () => undefined): Projection =>
      async (event) => {
        const now = (active.get(event.ID) ?? 0) + 1;
        active.set(event.ID, now);
        if (now > 1) overlaps += 1;
        seen.push(`${event.ID}@${event.Version}`);
        try {
          await inner(event);
        } finally {
          active.set(event.ID, (active.get(event.ID) ?? 1) - 1);
        }
      },
  };
}
