/**
 * Parsing provider dates and timestamps into instants (epoch ms).
 *
 * Accepted: ISO 8601 date-time with `Z` or an offset (`+02:00`, `+0200`, `+02`); a local date-time
 * without offset, placed in the given IANA zone; a date alone (YYYY-MM-DD), which is local midnight
 * in the zone. A local value with no zone to place it in is NORM_TIMESTAMP_NO_ZONE; anything else
 * is NORM_TIMESTAMP_INVALID. We do not accept locale formats ("03/04/2024"): they are ambiguous.
 * Years run from MIN_YEAR to 9999: earlier years are not meter data, and Date.UTC would silently
 * move 0000-0099 to 1900-1999.
 */
import type { ErrorCode } from '../../lib/errors.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../../schemas/time.js';
import { wallToInstant } from '../aggregate/core/zone.js';

export type ParsedTime =
  | { ok: true; instant: number; dateOnly: boolean }
  | {
      ok: false;
      code: Extract<ErrorCode, 'NORM_TIMESTAMP_NO_ZONE' | 'NORM_TIMESTAMP_INVALID'>;
      message: string;
    };

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

function invalid(text: string, why: string): ParsedTime {
  return {
    ok: false,
    code: 'NORM_TIMESTAMP_INVALID',
    message: `"${text}" is not an ISO 8601 date or timestamp (${why})`,
  };
}

export const MIN_YEAR = 1900;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Two ASCII digits at i, or -1. */
function digits2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * The layout providers send almost always, `YYYY-MM-DDTHH:MM:SS[.fff]` with `Z` or `±HH:MM`,
 * parsed without a regular expression (it runs for every interval). Anything else, or anything
 * out of range, returns undefined and goes through the general parser below.
 */
function parseCommonInstant(t: string): number | undefined {
  if (
    t.length < 20 ||
    t.charCodeAt(4) !== 45 ||
    t.charCodeAt(7) !== 45 ||
    t.charCodeAt(10) !== 84 ||
    t.charCodeAt(13) !== 58 ||
    t.charCodeAt(16) !== 58
  )
    return undefined;
  const year = digits2(t, 0) * 100 + digits2(t, 2);
  const month = digits2(t, 5);
  const day = digits2(t, 8);
  const hour = digits2(t, 11);
  const minute = digits2(t, 14);
  const second = digits2(t, 17);
  if (
    year < MIN_YEAR ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 59
  )
    return undefined;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 1 : 0;
  if (day > DAYS_IN_MONTH[month - 1]! + leap) return undefined;
  let i = 19;
  let ms = 0;
  if (t.charCodeAt(i) === 46) {
    let scale = 100;
    i++;
    const start = i;
    while (i < t.length) {
      const d = t.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      ms += d * scale;
      scale /= 10;
      i++;
    }
    if (i === start) return undefined;
    ms = Math.floor(ms);
  }
  const wall = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (i === t.length - 1 && (t.charCodeAt(i) === 90 || t.charCodeAt(i) === 122)) return wall;
  if (i !== t.length - 6 || t.charCodeAt(i + 3) !== 58) return undefined;
  const sign = t.charCodeAt(i) === 43 ? 1 : t.charCodeAt(i) === 45 ? -1 : 0;
  const oh = digits2(t, i + 1);
  const om = digits2(t, i + 4);
  if (sign === 0 || oh < 0 || oh > 18 || om < 0 || om > 59) return undefined;
  return wall - sign * (oh * HOUR_MS + om * MINUTE_MS);
}

export function parseTimestamp(raw: unknown, zone: string | null | undefined): ParsedTime {
  if (typeof raw !== 'string') return invalid(String(raw), 'not a string');
  const fast = parseCommonInstant(raw);
  if (fast !== undefined) return { ok: true, instant: fast, dateOnly: false };
  const text = raw.trim();
  const m = ISO.exec(text);
  if (!m) return invalid(text, 'unrecognised format');
  const [, ys, mos, ds, hs, mis, ss, frac, off] = m;
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = hs === undefined ? 0 : Number(hs);
  const minute = mis === undefined ? 0 : Number(mis);
  const second = ss === undefined ? 0 : Number(ss);
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  if (year < MIN_YEAR) return invalid(text, `year before ${MIN_YEAR}`);
  if (month < 1 || month > 12) return invalid(text, 'month out of range');
  const dayStart = Date.UTC(year, month - 1, day);
  if (new Date(dayStart).getUTCDate() !== day || day < 1) return invalid(text, 'day out of range');
  // 24:00:00 is ISO for the end of the day; seconds up to 59 (leap seconds are not meter data).
  if (hour > 24 || minute > 59 || second > 59 || (hour === 24 && (minute > 0 || second > 0 || ms > 0))) {
    return invalid(text, 'time out of range');
  }
  const wall = dayStart + hour * HOUR_MS + minute * MINUTE_MS + second * 1000 + ms;
  const dateOnly = hs === undefined;
  if (off !== undefined) {
    if (off === 'Z' || off === 'z') return { ok: true, instant: wall, dateOnly };
    const om = /^([+-])(\d{2}):?(\d{2})?$/.exec(off);
    if (!om) return invalid(text, 'bad offset');
    const oh = Number(om[2]);
    const omin = om[3] === undefined ? 0 : Number(om[3]);
    if (oh > 18 || omin > 59) return invalid(text, 'offset out of range');
    const sign = om[1] === '-' ? -1 : 1;
    return { ok: true, instant: wall - sign * (oh * HOUR_MS + omin * MINUTE_MS), dateOnly };
  }
  if (!zone) {
    return {
      ok: false,
      code: 'NORM_TIMESTAMP_NO_ZONE',
      message: `"${text}" is a local ${dateOnly ? 'date' : 'time'} without offset and no time zone is configured`,
    };
  }
  if (hour === 24) return { ok: true, instant: wallToInstant(zone, dayStart + DAY_MS), dateOnly };
  return { ok: true, instant: wallToInstant(zone, wall), dateOnly };
}
