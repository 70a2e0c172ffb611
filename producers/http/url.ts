/** URL helpers: credential stripping and origin checks. */
export { redactUrl } from '../../lib/redact-url.js';

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
