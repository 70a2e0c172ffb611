/**
 * DST-correct local time handling for the simulators, using only Intl (no tz database of our own).
 *
 * Conventions:
 * - instants are epoch milliseconds (UTC);
 * - local calendar dates are 'YYYY-MM-DD' strings;
 * - an IANA zone name ('Europe/Helsinki', 'America/New_York', 'UTC', ...) gives the local rules.
 */

import { DAY_MS, MINUTE_MS, QUARTER_MS } from '../../schemas/time.js';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export interface LocalParts {
  year: number;
  month: number; // 1..12
  day: number; // 1..31
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday .. 6 = Saturday */
  weekday: number;
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** Local wall-clock fields of an instant in a zone. */
export function localParts(timeZone: string, ms: number): LocalParts {
  const out: LocalParts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, weekday: 0 };
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) {
    switch (p.type) {
      case 'year':
        out.year = Number(p.value);
        break;
      case 'month':
        out.month = Number(p.value);
        break;
      case 'day':
        out.day = Number(p.value);
        break;
      case 'hour':
        out.hour = Number(p.value);
        break;
      case 'minute':
        out.minute = Number(p.value);
        break;
      case 'second':
        out.second = Number(p.value);
        break;
      case 'weekday':
        out.weekday = WEEKDAYS[p.value] ?? 0;
        break;
      default:
        break;
    }
  }
  return out;
}

/** UTC offset of the zone at an instant, in minutes (e.g. +120 for EET, -240 for EDT). */
export function offsetMinutes(timeZone: string, ms: number): number {
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') return 0;
  const p = localParts(timeZone, ms);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  const whole = Math.floor(ms / 1000) * 1000;
  return Math.round((asUtc - whole) / MINUTE_MS);
}

/** 'YYYY-MM-DD' of the local calendar date of an instant. */
export function localDate(timeZone: string, ms: number): string {
  const p = localParts(timeZone, ms);
  return ymd(p.year, p.month, p.day);
}

export function ymd(year: number, month: number, day: number): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

export function parseYmd(date: string): { year: number; month: number; day: number } {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) throw new Error(`not a YYYY-MM-DD date: ${date}`);
  return { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
}

export function isYmd(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const { year, month, day } = parseYmd(s);
  const d = new Date(Date.UTC(year, month - 1, day));
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

/** Calendar arithmetic on 'YYYY-MM-DD'. */
export function addDays(date: string, days: number): string {
  const { year, month, day } = parseYmd(date);
  const d = new Date(Date.UTC(year, month - 1, day + days));
  return ymd(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
}

export function addMonths(date: string, months: number): string {
  const { year, month, day } = parseYmd(date);
  const d = new Date(Date.UTC(year, month - 1 + months, day));
  return ymd(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
}

/** Whole days from a to b (b - a). */
export function daysBetween(a: string, b: string): number {
  const pa = parseYmd(a);
  const pb = parseYmd(b);
  return Math.round(
    (Date.UTC(pb.year, pb.month - 1, pb.day) - Date.UTC(pa.year, pa.month - 1, pa.day)) / DAY_MS,
  );
}

/** Day of week of a calendar date, 0 = Sunday. */
export function weekdayOf(date: string): number {
  const { year, month, day } = parseYmd(date);
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay();
}

/** Day of year, 1..366. */
export function dayOfYear(date: string): number {
  const { year, month, day } = parseYmd(date);
  return Math.round((Date.UTC(year, month - 1, day) - Date.UTC(year, 0, 1)) / DAY_MS) + 1;
}

/**
 * The instant of a local wall-clock time. A time that does not exist (spring-forward gap) is
 * shifted forward by the gap's length (02:30 → 03:30 new time, like Temporal's 'compatible');
 * for an ambiguous time (fall-back) the earlier instant is returned unless `later` is set.
 */
export function zonedTimeToUtc(
  timeZone: string,
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
  later = false,
): number {
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  // Candidate offsets around the wall time (a DST change never moves more than a day).
  const o1 = offsetMinutes(timeZone, wall - DAY_MS);
  const o2 = offsetMinutes(timeZone, wall + DAY_MS);
  const candidates = [...new Set([o1, o2])]
    .map((o) => wall - o * MINUTE_MS)
    .filter((ms) => offsetMinutes(timeZone, ms) * MINUTE_MS === wall - ms)
    .sort((a, b) => a - b);
  if (candidates.length > 0) return (later ? candidates[candidates.length - 1] : candidates[0]) as number;
  // Non-existent local time: the gap; map forward using the offset before the gap.
  return wall - Math.min(o1, o2) * MINUTE_MS;
}

/** Instant of local midnight starting a calendar date. */
export function localMidnight(timeZone: string, date: string): number {
  const { year, month, day } = parseYmd(date);
  return zonedTimeToUtc(timeZone, year, month, day);
}

/** [start, end) instants of a local calendar day; 23, 24 or 25 hours long around DST changes. */
export function localDayBounds(timeZone: string, date: string): { start: number; end: number } {
  return { start: localMidnight(timeZone, date), end: localMidnight(timeZone, addDays(date, 1)) };
}

/** Number of quarter-hours in a local day: 92, 96 or 100 (for zones with 1 h DST shifts). */
export function quarterHoursInLocalDay(timeZone: string, date: string): number {
  const { start, end } = localDayBounds(timeZone, date);
  return Math.round((end - start) / QUARTER_MS);
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function offsetSuffix(offsetMin: number, zulu: boolean): string {
  if (offsetMin === 0 && zulu) return 'Z';
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${sign}${pad2(Math.floor(a / 60))}:${pad2(a % 60)}`;
}

/** ISO instant rendered with a fixed offset (minutes), e.g. 2024-03-15T08:00:00+02:00. */
export function formatWithOffset(
  ms: number,
  offsetMin: number,
  opts: { millis?: boolean; zulu?: boolean } = {},
): string {
  const d = new Date(ms + offsetMin * MINUTE_MS);
  const base =
    `${ymd(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate())}T` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  const frac = opts.millis ? `.${String(d.getUTCMilliseconds()).padStart(3, '0')}` : '';
  return `${base}${frac}${offsetSuffix(offsetMin, opts.zulu ?? false)}`;
}

/** ISO instant in the zone's local time with its offset at that instant. */
export function formatZoned(
  ms: number,
  timeZone: string,
  opts: { millis?: boolean; zulu?: boolean } = {},
): string {
  return formatWithOffset(ms, offsetMinutes(timeZone, ms), opts);
}

/** Local wall-clock time WITHOUT offset, e.g. 2024-03-31T03:00:00 (ambiguous at fall-back!). */
export function formatLocalNoOffset(ms: number, timeZone: string): string {
  const s = formatZoned(ms, timeZone);
  return s.slice(0, 19);
}

/**
 * Parse an ISO 8601 instant that carries an offset or Z. Returns the instant and the offset used
 * (minutes; 0 with zulu=true for Z), or null when the string has no offset or is invalid.
 */
export function parseIsoInstant(s: string): { ms: number; offsetMin: number; zulu: boolean } | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/.exec(
    s,
  );
  if (!m) return null;
  const [, y, mo, d, h, mi, sec, frac, off] = m;
  const wall = Date.UTC(
    Number(y),
    Number(mo) - 1,
    Number(d),
    Number(h),
    Number(mi),
    Number(sec ?? 0),
    frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0,
  );
  if (Number.isNaN(wall)) return null;
  const check = new Date(wall);
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d)) return null;
  if (off === 'Z' || off === undefined) return { ms: wall, offsetMin: 0, zulu: true };
  const om = /^([+-])(\d{2}):?(\d{2})$/.exec(off);
  if (!om) return null;
  const offsetMin = (om[1] === '-' ? -1 : 1) * (Number(om[2]) * 60 + Number(om[3]));
  return { ms: wall - offsetMin * MINUTE_MS, offsetMin, zulu: false };
}

/** Local calendar dates whose days overlap [a, b). */
export function* localDatesCovering(timeZone: string, a: number, b: number): Generator<string> {
  if (b <= a) return;
  let date = localDate(timeZone, a);
  const last = localDate(timeZone, b - 1);
  for (;;) {
    yield date;
    if (date === last) return;
    date = addDays(date, 1);
  }
}
