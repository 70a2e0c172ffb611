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
  | 'rateLimitMaxWaitMs'
  | 'retryAfterMaxMs'
  | 'maxRedirects'
  | 'maxPages',
  number
>;

export const HTTP_DEFAULTS: Readonly<HttpLimits> = {
  /** TCP + TLS connect timeout (ms). */
  connectTimeoutMs: 10_000,
  /** Time to the response headers and between body chunks (ms); connection.http.timeoutMs. */
  timeoutMs: 30_000,
  /** Idle keep-alive sockets are closed after this long (ms). */
  keepAliveTimeoutMs: 30_000,
  /** Sockets per origin. */
  connectionsPerOrigin: 8,
  /** Largest response body accepted (bytes); connection.http.maxResponseBytes. */
  maxResponseBytes: 50 * 1024 * 1024,
  /** Retries of a retriable failure (5xx, network, timeout); connection.http.maxRetries. */
  maxRetries: 6,
  /** Backoff base and cap (ms): full jitter, delay = random(0, min(cap, base * 2^attempt)). */
  backoffBaseMs: 500,
  backoffMaxMs: 60_000,
  /** Total time one request may spend waiting on 429 responses before it fails (ms). */
  rateLimitMaxWaitMs: 15 * 60_000,
  /** A single Retry-After longer than this fails the request instead of waiting (ms). */
  retryAfterMaxMs: 10 * 60_000,
  /** Same-origin redirects followed per request. */
  maxRedirects: 5,
  /** Pages fetched per pagination before giving up (guards against endless providers). */
  maxPages: 100_000,
};

/** Query parameter names that are always stripped from URLs before logging or emitting. */
export const SENSITIVE_QUERY_PARAMS = [
  'api_key',
  'apikey',
  'api-key',
  'key',
  'token',
  'access_token',
  'client_secret',
  'password',
  'secret',
  'signature',
  'sig',
  'code',
] as const;
