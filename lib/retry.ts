/**
 * Retry, once for the whole code base (kafkajs `src/retry` style): one backoff rule, one way of
 * counting attempts, one abort rule for waits, and a loop that retries only what is classified
 * retriable.
 *
 *   await retry(() => migrate(client), { policy, signal, onRetry: ({ attempt, delayMs }) => log(...) });
 *
 * Counting: `attempt` is the number of the try, 1 for the first; the wait after try n (retry n)
 * is `backoffDelay(n, policy)`.
 * Abort: a wait rejects with the signal's reason as soon as the signal aborts, so a stopped
 * caller unwinds instead of trying once more.
 */
import { isMeterflowError } from './errors.js';

export interface BackoffPolicy {
  /** ms: the wait before the first retry (its upper bound, see backoffDelay). */
  initialMs: number;
  /** ms: no wait is longer. */
  maxMs: number;
  /** Growth per retry; 2 when absent. */
  factor?: number;
}

/**
 * Wait before retry `attempt` (1-based): exponential, capped, with "equal jitter", uniform in
 * [cap/2, cap] where cap = min(maxMs, initialMs * factor^(attempt-1)). Half fixed keeps the
 * growth visible; half random keeps many clients from retrying in step after an outage.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(0, attempt - 1), 64);
  const cap = Math.min(policy.maxMs, policy.initialMs * (policy.factor ?? 2) ** exponent);
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Resolves after `ms`; rejects with the signal's reason when it aborts (or has already). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The signal's reason (an Error for every abort in this code base); AbortError when it has none. */
function abortReason(signal: AbortSignal): Error {
  return (signal.reason as Error | undefined) ?? new DOMException('This operation was aborted', 'AbortError');
}

export interface RetryInfo {
  err: unknown;
  /** The try that failed (1 for the first). */
  attempt: number;
  /** ms the loop waits before the next try. */
  delayMs: number;
}

export interface RetryOptions {
  policy: BackoffPolicy;
  /** Whether a failure is worth another try; default: a MeterflowError marked retriable. */
  classify?: (err: unknown, attempt: number) => boolean;
  /** Aborts the wait (rejecting with the signal's reason) and stops further tries. */
  signal?: AbortSignal;
  /** Called before each wait (log, metrics, a metadata refresh); awaited when it returns a promise. */
  onRetry?: (info: RetryInfo) => void | Promise<void>;
  /** Total tries including the first; unbounded when absent. The last failure is rethrown. */
  maxAttempts?: number;
  /** Random source in [0, 1) for the jitter; injectable for tests. */
  random?: () => number;
}

/** Default classification: retry only what our own errors call retriable. */
export function isRetriable(err: unknown): boolean {
  return isMeterflowError(err) && err.retriable;
}

/** Calls `fn` until it succeeds, a failure is not retriable, tries run out or `signal` aborts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const classify = o.classify ?? isRetriable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (o.signal?.aborted) throw err;
      if (!classify(err, attempt)) throw err;
      if (o.maxAttempts !== undefined && attempt >= o.maxAttempts) throw err;
      const delayMs = backoffDelay(attempt, o.policy, o.random);
      await o.onRetry?.({ err, attempt, delayMs });
      await sleep(delayMs, o.signal);
    }
  }
}
