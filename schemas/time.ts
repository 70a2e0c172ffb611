/**
 * Time units and UTC instant arithmetic, once for every layer. Instants are epoch milliseconds.
 * (Zone-aware arithmetic lives with the aggregator; this is only what needs no time zone.)
 */

export const MINUTE_MS = 60_000;
export const QUARTER_MS = 15 * MINUTE_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** The instant rounded down to a whole `step` since the epoch (UTC days, hours, quarters). */
export const floorTo = (t: number, step: number): number => Math.floor(t / step) * step;

/** Start of the UTC month of an instant. */
export function utcMonthStart(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}
