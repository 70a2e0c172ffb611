/**
 * Client-side request budget of one connection: a per-minute limit waits for the window to move,
 * a per-day limit fails with POLL_BUDGET_EXHAUSTED (waiting a day is not useful). A provider's own
 * count of remaining calls (EnerKey's X-Rate-Limit) tightens the daily budget.
 */
import { MeterflowError } from '../../lib/errors.js';
import { sleep as defaultSleep } from '../../lib/retry.js';
import { DAY_MS, MINUTE_MS } from '../../schemas/time.js';

export interface BudgetLimits {
  perMinute?: number;
  perDay?: number;
}

export interface BudgetSnapshot {
  lastMinute: number;
  lastDay: number;
  /** Remaining calls the provider last reported, if it does. */
  providerRemaining: number | undefined;
}

export class RequestBudget {
  /** Request instants of the last 24 h, oldest first. */
  private readonly stamps: number[] = [];
  private head = 0;
  private providerRemaining: number | undefined;
  private providerSeenAt = 0;
  /** When the provider said its window frees calls again (from Retry-After), if it did. */
  private providerResetAt: number | undefined;

  constructor(
    readonly connectionId: string,
    readonly limits: BudgetLimits,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void> = defaultSleep,
    /** Longest wait for a provider window to free calls before failing (ms). */
    private readonly maxWaitMs = 10 * 60_000,
  ) {}

  private prune(now: number): void {
    while (this.head < this.stamps.length && this.stamps[this.head]! <= now - DAY_MS) this.head++;
    if (this.head > 4096 && this.head * 2 > this.stamps.length) {
      this.stamps.splice(0, this.head);
      this.head = 0;
    }
  }

  private countSince(since: number): number {
    // Binary search for the first stamp > since.
    let lo = this.head;
    let hi = this.stamps.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.stamps[mid]! > since) hi = mid;
      else lo = mid + 1;
    }
    return this.stamps.length - lo;
  }

  snapshot(): BudgetSnapshot {
    const now = this.now();
    this.prune(now);
    return {
      lastMinute: this.countSince(now - MINUTE_MS),
      lastDay: this.stamps.length - this.head,
      providerRemaining: this.providerRemaining,
    };
  }

  /** Remaining requests of our own daily limit (Infinity without one). */
  private ownRemaining(): number {
    return this.limits.perDay === undefined
      ? Infinity
      : this.limits.perDay - (this.stamps.length - this.head);
  }

  /** Remaining requests allowed in the current 24 h window (Infinity without limits). */
  remainingToday(): number {
    const now = this.now();
    this.prune(now);
    let rem =
      this.limits.perDay === undefined ? Infinity : this.limits.perDay - (this.stamps.length - this.head);
    if (
      this.providerRemaining !== undefined &&
      this.providerResetAt !== undefined &&
      now >= this.providerResetAt
    ) {
      this.providerRemaining = undefined;
      this.providerResetAt = undefined;
    }
    if (this.providerRemaining !== undefined) {
      const usedSince = this.countSince(this.providerSeenAt);
      rem = Math.min(rem, this.providerRemaining - usedSince);
    }
    return rem;
  }

  /** Waits for a per-minute slot, then records the request; throws when the daily budget is used up. */
  async acquire(context: Record<string, unknown> = {}, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.now();
      this.prune(now);
      if (this.remainingToday() <= 0) {
        const resetIn = this.ownRemaining() > 0 ? this.providerResetIn() : undefined;
        if (resetIn !== undefined && resetIn <= this.maxWaitMs) {
          await this.sleep(resetIn + 1, signal);
          continue;
        }
        throw new MeterflowError(
          'POLL_BUDGET_EXHAUSTED',
          `connection ${this.connectionId}: request budget used up (${this.limits.perDay ?? 'provider-reported'} per 24 h${
            this.providerRemaining !== undefined ? `, provider reports ${this.providerRemaining} left` : ''
          })`,
          { context: { connection: this.connectionId, ...context }, retriable: false },
        );
      }
      if (this.limits.perMinute !== undefined) {
        const inMinute = this.countSince(now - MINUTE_MS);
        if (inMinute >= this.limits.perMinute) {
          // Oldest stamp inside the minute window leaves it at stamp + one minute.
          const idx = this.stamps.length - inMinute;
          const wait = Math.max(1, this.stamps[idx]! + MINUTE_MS - now + 1);
          await this.sleep(wait, signal);
          continue;
        }
      }
      this.stamps.push(now);
      return;
    }
  }

  /**
   * Records the provider's count of calls left in its 24 h window (after the request that
   * reported it), and in how many ms it frees calls again if it said so (Retry-After of a 429).
   */
  observeProviderRemaining(remaining: number, resetInMs?: number): void {
    if (!Number.isFinite(remaining) || remaining < 0) return;
    this.providerRemaining = remaining;
    this.providerSeenAt = this.now();
    this.providerResetAt = resetInMs === undefined ? undefined : this.providerSeenAt + resetInMs;
  }

  /** Milliseconds until the provider frees calls again, when it is exhausted and said when. */
  providerResetIn(): number | undefined {
    return this.providerResetAt === undefined ? undefined : Math.max(0, this.providerResetAt - this.now());
  }
}
