import { describe, expect, it } from 'vitest';
import { MeterflowError } from '../../../lib/errors.js';
import { backoffDelay, retry, sleep, type RetryInfo } from '../../../lib/retry.js';

const policy = { initialMs: 100, maxMs: 1_000, factor: 2 };
const fast = { initialMs: 1, maxMs: 2 };

describe('backoffDelay', () => {
  it('grows exponentially from the first retry, with equal jitter, capped', () => {
    expect(backoffDelay(1, policy, () => 0)).toBe(50);
    expect(backoffDelay(1, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 1)).toBe(400);
    expect(backoffDelay(3, policy, () => 0)).toBe(200);
    expect(backoffDelay(30, policy, () => 1)).toBe(1_000);
    expect(backoffDelay(30, policy, () => 0)).toBe(500);
  });

  it('counts from 1 (0 waits like 1), defaults the factor to 2 and survives huge attempts', () => {
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(2, { initialMs: 100, maxMs: 1_000 }, () => 1)).toBe(200);
    expect(backoffDelay(10_000, policy, () => 1)).toBe(1_000);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(2, policy);
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(200);
    }
  });
});

describe('sleep', () => {
  it('resolves after the time', async () => {
    const t0 = Date.now();
    await sleep(20);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
  });

  it('rejects with the reason at once when the signal aborts, or has aborted', async () => {
    const c = new AbortController();
    const t0 = Date.now();
    const waiting = sleep(10_000, c.signal).catch((e: unknown) => e);
    const reason = new Error('stopping');
    c.abort(reason);
    expect(await waiting).toBe(reason);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(await sleep(10, c.signal).catch((e: unknown) => e)).toBe(reason);
    const plain = new AbortController();
    plain.abort();
    expect(await sleep(10, plain.signal).catch((e: unknown) => (e as Error).name)).toBe('AbortError');
  });
});

describe('retry', () => {
  const retriable = () => new MeterflowError('CH_UNREACHABLE', 'down', { retriable: true });

  it('retries retriable failures with backoff, reporting each, until success', async () => {
    const seen: RetryInfo[] = [];
    const tries: number[] = [];
    const r = await retry(
      (attempt) => {
        tries.push(attempt);
        return attempt < 3 ? Promise.reject(retriable()) : Promise.resolve('ok');
      },
      { policy: fast, onRetry: (i) => void seen.push(i) },
    );
    expect(r).toBe('ok');
    expect(tries).toEqual([1, 2, 3]);
    expect(seen.map((i) => i.attempt)).toEqual([1, 2]);
    expect(seen.every((i) => i.delayMs >= 0 && i.delayMs <= 2 && i.err instanceof MeterflowError)).toBe(true);
  });

  it('never retries what is not retriable: plain errors and non-retriable MeterflowErrors', async () => {
    for (const err of [
      new TypeError('bug'),
      new MeterflowError('CFG_INVALID', 'bad', { retriable: false }),
    ]) {
      let n = 0;
      const got = await retry(
        () => {
          n++;
          return Promise.reject(err);
        },
        { policy: fast },
      ).catch((e: unknown) => e);
      expect(got).toBe(err);
      expect(n).toBe(1);
    }
  });

  it('uses a custom classify and stops after maxAttempts with the last failure', async () => {
    let n = 0;
    const got = await retry(() => Promise.reject(new Error(`try ${++n}`)), {
      policy: fast,
      classify: (e) => e instanceof Error,
      maxAttempts: 3,
    }).catch((e: unknown) => e);
    expect((got as Error).message).toBe('try 3');
    expect(n).toBe(3);
  });

  it('awaits onRetry before the next try', async () => {
    const order: string[] = [];
    await retry(
      (attempt) => {
        order.push(`try ${attempt}`);
        return attempt === 1 ? Promise.reject(retriable()) : Promise.resolve();
      },
      {
        policy: fast,
        onRetry: async () => {
          await sleep(5);
          order.push('refreshed');
        },
      },
    );
    expect(order).toEqual(['try 1', 'refreshed', 'try 2']);
  });

  it('an abort during the wait rejects with the reason and tries no more', async () => {
    const c = new AbortController();
    let n = 0;
    const reason = new Error('stop');
    const running = retry(
      () => {
        n++;
        return Promise.reject(retriable());
      },
      { policy: { initialMs: 10_000, maxMs: 10_000 }, signal: c.signal },
    ).catch((e: unknown) => e);
    await sleep(20);
    c.abort(reason);
    expect(await running).toBe(reason);
    expect(n).toBe(1);
  });

  it('a failure after the signal aborted is rethrown as it is, without waiting', async () => {
    const c = new AbortController();
    c.abort(new Error('stop'));
    const err = retriable();
    expect(
      await retry(() => Promise.reject(err), { policy: policy, signal: c.signal }).catch((e: unknown) => e),
    ).toBe(err);
  });
});
