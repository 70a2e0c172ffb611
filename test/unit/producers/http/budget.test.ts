import { describe, expect, it } from 'vitest';
import { RequestBudget } from '../../../../producers/http/budget.js';
import { chunkRange } from '../../../../producers/http/chunking.js';
import { DAY_MS } from '../../../../schemas/time.js';

function clock(start = 0) {
  let now = start;
  return {
    now: () => now,
    sleep: (ms: number) => {
      now += ms;
      return Promise.resolve();
    },
    advance: (ms: number) => (now += ms),
  };
}

describe('request budget', () => {
  it('per minute: waits for the window instead of sending', async () => {
    const c = clock();
    const b = new RequestBudget('c', { perMinute: 3 }, c.now, c.sleep);
    for (let i = 0; i < 7; i++) await b.acquire();
    // 3 at t=0, 3 at t≈60 s, 1 at t≈120 s.
    expect(c.now()).toBeGreaterThanOrEqual(120_000);
    expect(c.now()).toBeLessThan(121_000);
    expect(b.snapshot().lastMinute).toBe(1);
  });

  it('per day: fails with POLL_BUDGET_EXHAUSTED, and frees up as the 24 h window moves', async () => {
    const c = clock();
    const b = new RequestBudget('conn-x', { perDay: 5 }, c.now, c.sleep);
    for (let i = 0; i < 5; i++) await b.acquire();
    const err = await b.acquire().then(
      () => ({ code: '', message: '' }),
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err.code).toBe('POLL_BUDGET_EXHAUSTED');
    expect(err.message).toContain('conn-x');
    c.advance(DAY_MS);
    await b.acquire();
    expect(b.remainingToday()).toBe(4);
  });

  it('the provider-reported remaining count (X-Rate-Limit) tightens the budget', async () => {
    const c = clock();
    const b = new RequestBudget('c', { perDay: 40_000 }, c.now, c.sleep);
    await b.acquire();
    b.observeProviderRemaining(2);
    c.advance(1);
    await b.acquire();
    await b.acquire();
    expect(b.remainingToday()).toBe(0);
    await expect(b.acquire()).rejects.toMatchObject({ code: 'POLL_BUDGET_EXHAUSTED' });
  });

  it('a provider reset announced with Retry-After is waited for when short', async () => {
    const c = clock();
    const b = new RequestBudget('c', { perDay: 100 }, c.now, c.sleep);
    b.observeProviderRemaining(0, 5_000);
    await b.acquire();
    expect(c.now()).toBeGreaterThanOrEqual(5_000);
  });
});

describe('date chunking', () => {
  it('splits [from, to) into ranges of at most maxDays, the last one shorter', () => {
    const from = Date.UTC(2024, 0, 1);
    const chunks = chunkRange({ from, to: from + 70 * DAY_MS }, 31);
    expect(chunks.map((c) => [(c.from - from) / DAY_MS, (c.to - from) / DAY_MS])).toEqual([
      [0, 31],
      [31, 62],
      [62, 70],
    ]);
    expect(chunkRange({ from, to: from + 10 * DAY_MS }, undefined)).toHaveLength(1);
    expect(chunkRange({ from, to: from }, 31)).toEqual([]);
    expect(chunkRange({ from: from + 1, to: from }, 31)).toEqual([]);
  });
});
