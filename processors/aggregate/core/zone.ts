/**
 * Time-zone arithmetic on IANA zones with nothing but Intl (no tz database of our own).
 *
 * Conventions: instants are epoch milliseconds; a "wall" time is the local clock reading expressed
 * as if it were UTC (Date.UTC of the local fields); a local day number is the number of local
 * calendar days since 1970-01-01 (so `dayNo * DAY_MS` is that day's wall midnight).
 */
import { DAY_MS } from '../../../schemas/time.js';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

export { isValidTimeZone } from '../../../schemas/time-zone.js';

/** Offset of the zone at an instant, in ms (local wall = instant + offset). Second precision. */
export function offsetAt(zone: string, instant: number): number {
  const t = Math.floor(instant / 1000) * 1000;
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const p of formatter(zone).formatToParts(new Date(t))) {
    switch (p.type) {
      case 'year':
        year = Number(p.value);
        break;
      case 'month':
        month = Number(p.value);
        break;
      case 'day':
        day = Number(p.value);
        break;
      case 'hour':
        hour = Number(p.value);
        break;
      case 'minute':
        minute = Number(p.value);
        break;
      case 'second':
        second = Number(p.value);
        break;
      case 'era':
        bc = p.value === 'BC' || p.value === 'B';
        break;
      default:
        break;
    }
  }
  const d = new Date(0);
  d.setUTCFullYear(bc ? 1 - year : year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime() - t;
}

/** Local wall time of an instant. */
export function instantToWall(zone: string, instant: number): number {
  return instant + offsetAt(zone, instant);
}

/**
 * The instant at which the local clock shows `wall`, with the usual ("compatible") rules:
 * in an overlap (clocks set back) the earlier instant; in a gap (clocks set forward) the wall time
 * is pushed forward by the gap, so a midnight that does not exist maps to the moment the day
 * actually begins.
 *
 * Why it works: the answer is the smallest candidate `wall - offset` (over the offsets in force
 * around that time) whose local reading is not before `wall`.
 */
export function wallToInstant(zone: string, wall: number): number {
  const offsets = new Set<number>([
    offsetAt(zone, wall - DAY_MS),
    offsetAt(zone, wall),
    offsetAt(zone, wall + DAY_MS),
  ]);
  for (const o of [...offsets]) offsets.add(offsetAt(zone, wall - o));
  let best = Number.POSITIVE_INFINITY;
  for (const o of offsets) {
    const candidate = wall - o;
    if (candidate < best && instantToWall(zone, candidate) >= wall) best = candidate;
  }
  // Unreachable with real zone data; fall back to the offset at the wall time itself.
  return Number.isFinite(best) ? best : wall - offsetAt(zone, wall);
}

/** Local day number (days since 1970-01-01 on the local calendar) to 'YYYY-MM-DD'. */
export function dayNoToDate(dayNo: number): string {
  return new Date(dayNo * DAY_MS).toISOString().slice(0, 10);
}

/** 'YYYY-MM-DD' to a local day number; NaN when malformed. */
export function dateToDayNo(date: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return Number.NaN;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return dayNoToDate(t / DAY_MS) === date ? t / DAY_MS : Number.NaN;
}

/** Month number (year * 12 + month0) of a local day number. */
export function monthOfDayNo(dayNo: number): number {
  const d = new Date(dayNo * DAY_MS);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

/** First local day number of a month number. */
export function firstDayOfMonth(monthNo: number): number {
  const year = Math.floor(monthNo / 12);
  return Date.UTC(year, monthNo - year * 12, 1) / DAY_MS;
}

/** Month number to 'YYYY-MM'. */
export function monthNoToString(monthNo: number): string {
  const year = Math.floor(monthNo / 12);
  return `${String(year).padStart(4, '0')}-${String(monthNo - year * 12 + 1).padStart(2, '0')}`;
}

/**
 * Local-day boundaries of one zone, cached: aggregation asks for the same few hundred days over and
 * over, and Intl is far too slow to call per interval.
 */
export class ZoneCalendar {
  readonly zone: string;
  private readonly starts = new Map<number, number>();

  constructor(zone: string) {
    this.zone = zone;
  }

  /** Instant at which local day `dayNo` begins. */
  dayStart(dayNo: number): number {
    let s = this.starts.get(dayNo);
    if (s === undefined) {
      s = wallToInstant(this.zone, dayNo * DAY_MS);
      this.starts.set(dayNo, s);
    }
    return s;
  }

  /** Length of local day `dayNo` in ms (23 h or 25 h on DST days). */
  dayLength(dayNo: number): number {
    return this.dayStart(dayNo + 1) - this.dayStart(dayNo);
  }

  /** Local day number containing an instant. Offsets are within ±1 day, so at most two probes. */
  dayOf(instant: number): number {
    let d = Math.floor(instant / DAY_MS);
    if (instant < this.dayStart(d)) d -= 1;
    else if (instant >= this.dayStart(d + 1)) d += 1;
    return d;
  }
}

const calendars = new Map<string, ZoneCalendar>();

/** Shared calendar per zone (the cache is pure memoisation, so sharing is safe). */
export function calendarFor(zone: string): ZoneCalendar {
  let c = calendars.get(zone);
  if (!c) {
    c = new ZoneCalendar(zone);
    calendars.set(zone, c);
  }
  return c;
}
