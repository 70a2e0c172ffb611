/** Exponential backoff with "equal jitter", capped: spreads the retries of many sinks after an outage. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
}

/** Delay before retry number `attempt` (1-based): uniform in [cap/2, cap]. */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, attempt - 1));
  // Half fixed, half random: keeps the growth visible while avoiding synchronised retries.
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Resolves after `ms`, or early when `signal` aborts (used to cut backoff short on stop). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
