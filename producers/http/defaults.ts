/**
 * Every default of the HTTP core in one block, with its unit. Per-connection values in
 * `connection.http` (schemas/connection.ts) override the ones that appear there.
 */
export type HttpLimits = Record<
  | 'connectTimeoutMs'
  | 'timeoutMs'
  | 'keepAliveTimeoutMs'
  | 'connectionsPerOrigin'
  | 'maxResponseBytes'
  | 'maxRetries'
  | 'backoffBaseMs'
  | 'backoffMaxMs'
  | 'requestDeadlineMs'
  | 'rateLimitMaxWaitMs'
  | 'maxRateLimitRetries'
  | 'retryFloorMs'
  | 'retryAfterMaxMs'
  | 'maxRedirects'
  | 'maxPages'
  | 'maxPageDigests',
  number
>;

export const HTTP_DEFAULTS: Readonly<HttpLimits> = {
  /** TCP + TLS connect timeout (ms). */
  connectTimeoutMs: 10_000,
  /** Time to the response headers and between body chunks (ms); connection.http.timeoutMs. */
  timeoutMs: 30_000,
  /**
   * Total time of one attempt, headers and whole body (ms); connection.http.requestDeadlineMs.
   * timeoutMs is an idle timer, so a body trickled just under it would otherwise never end.
   */
  requestDeadlineMs: 5 * 60_000,
  /** Idle keep-alive sockets are closed after this long (ms). */
  keepAliveTimeoutMs: 30_000,
  /** Sockets per origin. */
  connectionsPerOrigin: 8,
  /** Largest response body accepted (bytes); connection.http.maxResponseBytes. */
  maxResponseBytes: 50 * 1024 * 1024,
  /** Retries of a retriable failure (5xx, network, timeout); connection.http.maxRetries. */
  maxRetries: 6,
  /** Backoff base and cap (ms), lib/retry.ts backoffDelay; a retry never waits less than the base. */
  backoffBaseMs: 500,
  backoffMaxMs: 60_000,
  /** Total time one request may spend waiting on 429 responses before it fails (ms). */
  rateLimitMaxWaitMs: 15 * 60_000,
  /** 429 answers one request may retry before it fails, whatever their Retry-After says. */
  maxRateLimitRetries: 20,
  /**
   * Least wait before retrying a 429, or any answer carrying Retry-After (ms): Retry-After 0 or a
   * date in the past must not become a tight loop.
   */
  retryFloorMs: 1_000,
  /** A single Retry-After longer than this fails the request instead of waiting (ms). */
  retryAfterMaxMs: 10 * 60_000,
  /** Same-origin redirects followed per request. */
  maxRedirects: 5,
  /**
   * Pages fetched per pagination before it fails with POLL_PAGINATION_LOOP (a provider handing out
   * ever-new cursors); connection.http.maxPages. 10,000 pages of 100 items is a million meters.
   */
  maxPages: 10_000,
  /** Page digests, cursors and next URLs remembered per pagination to detect cycles. */
  maxPageDigests: 10_000,
};
