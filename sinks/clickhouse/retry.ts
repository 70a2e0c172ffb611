/**
 * Transitional: loader.ts still calls the sink's former retry helpers. The mechanism lives in
 * lib/retry.ts; this keeps the loader's old argument order and its resolve-on-abort wait until
 * the loader is moved onto lib/retry.ts, then this file goes.
 */
import * as kernel from '../../lib/retry.js';

export type { BackoffPolicy } from '../../lib/retry.js';

/** lib/retry.ts backoffDelay with the policy first. */
export function backoffDelay(policy: kernel.BackoffPolicy, attempt: number, random?: () => number): number {
  return kernel.backoffDelay(attempt, policy, random);
}

/** lib/retry.ts sleep, but an abort ends the wait quietly (the loader re-checks its state). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return kernel.sleep(ms, signal).catch((err: unknown) => {
    if (!signal?.aborted) throw err;
  });
}
