/** Date-range chunking: [from, to) split into pieces no longer than the provider allows. */

import { DAY_MS } from '../../schemas/time.js';

export interface TimeRange {
  /** Inclusive start, epoch ms. */
  from: number;
  /** Exclusive end, epoch ms. */
  to: number;
}

/**
 * Splits [from, to) into consecutive ranges of at most `maxDays` days (the last may be shorter).
 * Without a maximum the range is one chunk. An empty or inverted range gives no chunks.
 */
export function chunkRange(range: TimeRange, maxDays: number | undefined): TimeRange[] {
  if (!(range.to > range.from)) return [];
  if (maxDays === undefined || !(maxDays > 0)) return [{ ...range }];
  const step = maxDays * DAY_MS;
  const out: TimeRange[] = [];
  for (let f = range.from; f < range.to; f += step) out.push({ from: f, to: Math.min(f + step, range.to) });
  return out;
}

/** YYYY-MM-DD (UTC) of an instant. */
export function isoDate(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

/** ISO 8601 instant with Z, without milliseconds. */
export function isoInstant(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Epoch ms of YYYY-MM-DD (UTC midnight) or of an ISO instant; NaN when invalid. */
export function parseInstant(s: string): number {
  return Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s);
}
