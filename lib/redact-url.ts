/**
 * URLs as they may be shown: in logs, errors, envelopes and records. Used by the HTTP core for
 * provider URLs and by the registry client for its own URL.
 */

/** Query parameter names (compared lower-case) always stripped from URLs before logging or emitting. */
export const SENSITIVE_QUERY_PARAMS = [
  'api_key',
  'apikey',
  'api-key',
  'key',
  'token',
  'access_token',
  'access-token',
  'accesstoken',
  'id_token',
  'refresh_token',
  'auth',
  'auth_token',
  'authorization',
  'jwt',
  'session',
  'sessionid',
  'session_id',
  'private_token',
  'subscription-key',
  'client_secret',
  'password',
  'passwd',
  'pwd',
  'secret',
  'signature',
  'sig',
  'code',
] as const;

/** Query parameter name prefixes always stripped (pre-signed cloud storage URLs). */
export const SENSITIVE_QUERY_PREFIXES = ['x-amz-', 'x-goog-'] as const;

const ALWAYS = new Set<string>(SENSITIVE_QUERY_PARAMS);

/**
 * The URL as it may appear in logs, errors and envelopes: no user info, and no query parameters
 * that carry credentials (the connection's own secret parameter names plus well-known ones), no
 * fragment (implicit-grant style `#access_token=`).
 */
export function redactUrl(url: string | URL, secretParams: Iterable<string> = []): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return '[unparseable url]';
  }
  u.username = '';
  u.password = '';
  u.hash = '';
  const extra = new Set([...secretParams].map((p) => p.toLowerCase()));
  for (const name of [...u.searchParams.keys()]) {
    const lower = name.toLowerCase();
    if (ALWAYS.has(lower) || extra.has(lower) || SENSITIVE_QUERY_PREFIXES.some((p) => lower.startsWith(p)))
      u.searchParams.delete(name);
  }
  return u.toString();
}
