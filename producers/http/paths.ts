/** Dot paths into parsed bodies ("a.b.0.c"; "" is the value itself). */
export function getPath(value: unknown, path: string | undefined): unknown {
  if (path === undefined || path === '') return value;
  let cur: unknown = value;
  for (const part of path.split('.')) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) {
      const i = Number(part);
      cur = Number.isInteger(i) ? cur[i] : undefined;
    } else if (typeof cur === 'object') {
      cur = (cur as Record<string, unknown>)[part];
    } else return undefined;
  }
  return cur;
}

/**
 * The value at `path` as an array: a single object becomes [object] (XML with one item); an
 * explicit null, '' (an empty XML element) or a path running into one is an empty array. Undefined
 * when the key is absent (a typo, or a provider answering `{}`) or the value is a scalar: the
 * caller must not take that for an empty list.
 */
export function getArray(value: unknown, path: string | undefined): unknown[] | undefined {
  let cur: unknown = value;
  for (const part of path === undefined || path === '' ? [] : path.split('.')) {
    if (cur === null || cur === '') return [];
    if (Array.isArray(cur)) {
      const i = Number(part);
      cur = Number.isInteger(i) ? cur[i] : undefined;
    } else if (typeof cur === 'object') {
      cur = (cur as Record<string, unknown>)[part];
    } else return undefined;
  }
  if (cur === null || cur === '') return [];
  if (Array.isArray(cur)) return cur as unknown[];
  if (typeof cur === 'object') return [cur];
  return undefined;
}

/** A scalar at `path` as a string, or undefined when absent/empty. */
export function getString(value: unknown, path: string | undefined): string | undefined {
  const v = getPath(value, path);
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return undefined;
}
