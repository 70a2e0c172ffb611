/** URL helpers: credential stripping and origin checks. */
import { SENSITIVE_QUERY_PARAMS, SENSITIVE_QUERY_PREFIXES } from './defaults.js';

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

export function sameOrigin(a: string | URL, b: string | URL): boolean {
  try {
    return new URL(String(a)).origin === new URL(String(b)).origin;
  } catch {
    return false;
  }
}

/** Joins a base URL (which may carry a path prefix) and a relative path. Absolute inputs pass through. */
export function joinUrl(base: string, path: string): URL {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return new URL(path);
  const b = base.endsWith('/') ? base : base + '/';
  return new URL(path.replace(/^\/+/, ''), b);
}

/** Appends query parameters (undefined values skipped; arrays repeat the name). */
export function withQuery(
  url: URL,
  query: Record<string, string | number | boolean | undefined | string[]> = {},
): URL {
  const u = new URL(url);
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) u.searchParams.append(k, x);
    else u.searchParams.set(k, String(v));
  }
  return u;
}
