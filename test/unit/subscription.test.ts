import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../core/errors.ts';
import { initialReplayState, ReadRateLimiter, replayHasWork, SubscriptionDefaults } from '../../core/subscription.ts';
import { readSubscriptionConfig } from '../../handlers/subscription.ts';

describe('ReadRateLimiter', () => {
  it('lets a burst of one second through, then waits in proportion to the debt', async () => {
    // Prepare: a fake clock (the limiter's waits are its purpose here, not synchronisation).
    let now = 0;
    const waits: number[] = [];
    const limiter = new ReadRateLimiter(50, { now: () => now, sleep: async (ms) => void waits.push(ms) });

    // Act
    await limiter.consumed(30);
    await limiter.consumed(20);
    await limiter.consumed(25);
    now += 1000;
    await limiter.consumed(25);

    // Assess: 30 + 20 fit the bucket of 50; 25 more is half a second of debt; a second later 50 - 25 refilled.
    expect(waits).toEqual([500]);
  });
});

describe('replayHasWork', () => {
  it('is true for a new subscription, a running replay and asked-for resumes; false once done', () => {
    expect(replayHasWork(undefined)).toBe(true);
    expect(replayHasWork({ ...initialReplayState(), status: 'running' })).toBe(true);
    expect(replayHasWork({ ...initialReplayState(), status: 'done', resume: ['s-1'] })).toBe(true);
    expect(replayHasWork({ ...initialReplayState(), status: 'done' })).toBe(false);
  });
});

describe('readSubscriptionConfig', () => {
  it('reads the construct environment with its defaults', () => {
    expect(
      readSubscriptionConfig({
        SUBSCRIPTION_NAME: 'orders',
        EVENT_TABLE_NAME: 'events',
        CHECKPOINT_TABLE_NAME: 'cp',
        EVENT_TYPES: 'A_B, C ',
      }),
    ).toEqual({
      name: 'orders',
      eventTable: 'events',
      checkpointTable: 'cp',
      maxAttempts: SubscriptionDefaults.maxAttempts,
      eventTypes: ['A_B', 'C'],
      replayReadUnitsPerSecond: SubscriptionDefaults.replayReadUnitsPerSecond,
    });
  });

  it('names every missing or wrong variable', () => {
    let error: unknown;
    try {
      readSubscriptionConfig({ SUBSCRIPTION_NAME: 'x', EVENT_TABLE_NAME: ' ', MAX_ATTEMPTS: '0' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toBe(
      'Subscription handler configuration: EVENT_TABLE_NAME: the environment variable is empty; set it to the event table name; ' +
        'CHECKPOINT_TABLE_NAME: the environment variable is missing; set it to the checkpoint table name; MAX_ATTEMPTS: 0 is not a whole number >= 1',
    );
  });
});
