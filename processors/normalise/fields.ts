/**
 * Reading loosely typed provider items: dot paths, and scalars that XML and CSV deliver as text.
 */

/**
 * The value at a dot path ("location.id", "items.0.value", "@_id"). A key containing dots is
 * tried whole first, so flat CSV headers like "meter.id" still resolve.
 */
export function getPath(item: unknown, path: string): unknown {
  if (path === '') return item;
  if (item === null || typeof item !== 'object') return undefined;
  const obj = item as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(obj, path)) return obj[path];
  const dot = path.indexOf('.');
  if (dot < 0) return undefined;
  const head = path.slice(0, dot);
  if (!Object.prototype.hasOwnProperty.call(obj, head)) return undefined;
  return getPath(obj[head], path.slice(dot + 1));
}

/** Absent: undefined, null or an empty / whitespace-only string (CSV cells, XML elements). */
export function isAbsent(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

/** A scalar as text; undefined for absent values, objects and arrays. */
export function asText(value: unknown): string | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  // fast-xml-parser puts text of an element with attributes in "#text".
  if (typeof value === 'object' && value !== null && '#text' in value)
    return asText((value as Record<string, unknown>)['#text']);
  return undefined;
}

const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A number from a JSON number or a plain decimal text. "1,5" and "1 234" are refused: a comma may
 * be a decimal or a thousands separator, and guessing which would change the value.
 */
export function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  const text = asText(value);
  if (text === undefined || !NUMBER_TEXT.test(text)) return undefined;
  return Number(text);
}

const TRUE = new Set(['true', '1', 'yes', 'y', 'estimated', 'e']);
const FALSE = new Set(['false', '0', 'no', 'n', 'measured', 'actual', 'a', 'm']);

/** A boolean from JSON or text; undefined when it is neither clearly true nor clearly false. */
export function asBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : undefined;
  const text = asText(value)?.toLowerCase();
  if (text === undefined) return undefined;
  if (TRUE.has(text)) return true;
  if (FALSE.has(text)) return false;
  return undefined;
}

/** Metadata map: scalar values as strings, absent ones left out. */
export function stringMap(entries: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entries)) {
    const text = asText(v);
    if (text !== undefined) out[k] = text;
  }
  return out;
}
