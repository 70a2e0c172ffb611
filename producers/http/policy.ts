/**
 * The provider error policy as data (Airbyte declarative CDK style): an ordered table from a
 * response status or a transport failure to an action. The first matching rule wins.
 */
import type { ErrorCode } from '../../lib/errors.js';

export type PolicyAction =
  /** Hand the response to the caller. */
  | 'success'
  /** Retry with exponential backoff and jitter (lib/retry.ts backoffDelay). */
  | 'retry'
  /** Wait for Retry-After (or backoff when absent), then retry; not counted as a failure retry. */
  | 'rateLimited'
  /** Refresh credentials once (next key, new token), then retry. */
  | 'reauth'
  /** Give up: the request is wrong or forbidden, repeating it cannot help. */
  | 'fail';

export type TransportFailure = 'network' | 'timeout';

export interface PolicyRule {
  /** Exact statuses, or an inclusive [from, to] range. */
  status?: number[] | [number, number];
  /** Transport failures instead of a status. */
  failure?: TransportFailure[];
  action: PolicyAction;
  /** Error code when the action ends in an error. */
  code: ErrorCode;
  /** For the documentation and messages. */
  description: string;
}

export const DEFAULT_ERROR_POLICY: readonly PolicyRule[] = [
  { status: [200, 299], action: 'success', code: 'POLL_HTTP_STATUS', description: 'success' },
  { status: [401], action: 'reauth', code: 'POLL_AUTH', description: 'credentials rejected: refresh once' },
  {
    status: [429],
    action: 'rateLimited',
    code: 'POLL_HTTP_STATUS',
    description: 'rate limited: honour Retry-After',
  },
  { status: [408], action: 'retry', code: 'POLL_HTTP_TIMEOUT', description: 'request timeout' },
  { status: [500, 599], action: 'retry', code: 'POLL_HTTP_STATUS', description: 'server error' },
  {
    failure: ['network'],
    action: 'retry',
    code: 'POLL_HTTP_NETWORK',
    description: 'connection failed or reset',
  },
  { failure: ['timeout'], action: 'retry', code: 'POLL_HTTP_TIMEOUT', description: 'no answer in time' },
  { status: [403], action: 'fail', code: 'POLL_AUTH', description: 'forbidden' },
  { status: [300, 499], action: 'fail', code: 'POLL_HTTP_STATUS', description: 'client error' },
];

const FALLBACK: PolicyRule = { action: 'fail', code: 'POLL_HTTP_STATUS', description: 'unexpected outcome' };

function statusMatches(rule: PolicyRule, status: number): boolean {
  const s = rule.status;
  if (!s) return false;
  const [lo, hi] = s;
  if (s.length === 2 && lo !== undefined && hi !== undefined && lo < hi) return status >= lo && status <= hi;
  return s.includes(status);
}

export function classify(
  outcome: { status: number } | { failure: TransportFailure },
  policy: readonly PolicyRule[] = DEFAULT_ERROR_POLICY,
): PolicyRule {
  for (const rule of policy) {
    if ('status' in outcome ? statusMatches(rule, outcome.status) : rule.failure?.includes(outcome.failure))
      return rule;
  }
  return FALLBACK;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or invalid. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}
