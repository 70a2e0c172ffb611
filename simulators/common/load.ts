/**
 * Realistic, deterministic load shapes, generated one meter-day at a time.
 *
 * A meter-day is generated from (seed, meter id, local date) only, so 200 meters × one year of
 * 15-minute data (≈7M values) is never held in memory: simulators and tests regenerate the day
 * they need. Every interval value is rounded to the meter's unit resolution at generation time,
 * so sums taken by a connector and by the ground truth agree exactly after the same rounding.
 */
import { gaussian, randInt, rngFor } from './prng.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, QUARTER_MS } from '../../schemas/time.js';
import { dayOfYear, localDayBounds, offsetMinutes, weekdayOf } from './time.js';

export type Commodity = 'electricity' | 'heat' | 'cooling' | 'water' | 'gas';
export type BuildingKind = 'office' | 'retail' | 'school' | 'residential' | 'warehouse' | 'hospital';

export interface MeterModel {
  /** Stable key used to derive the meter's random streams. */
  key: string;
  commodity: Commodity;
  /** Unit of the values: 'kWh', 'MWh', 'GJ' for energy; 'm³'/'m3' for water and gas. */
  unit: string;
  /** Decimal places values are rounded to. */
  decimals: number;
  timeZone: string;
  building: BuildingKind;
  /** Average demand scale: kW for energy, m³/h for water. */
  size: number;
  /** Site latitude/longitude (degrees) for climate and sun position. */
  latitude: number;
  longitude: number;
  /** Installed PV peak power in kW; 0 = no solar. Only meaningful for electricity. */
  solarKwp: number;
  /** Source resolution: 60-minute meters have 4 equal quarter-hours per hour. */
  resolutionMinutes: 15 | 60;
  /** Probability that a day contains a data gap. */
  gapRate: number;
  /** Probability that a day contains a block of estimated values. */
  estimateRate: number;
}

/** One local calendar day of quarter-hour data for one meter. */
export interface DaySeries {
  date: string;
  timeZone: string;
  /** Instant of local midnight. */
  start: number;
  /** Instant of the next local midnight (exclusive). */
  end: number;
  /** Number of quarter-hours: 92, 96 or 100. */
  n: number;
  /** Consumption / import per quarter-hour, in the meter unit. */
  imp: Float64Array;
  /** Export (solar redelivery) per quarter-hour, or null for meters without solar. */
  exp: Float64Array | null;
  /** 1 where the provider has no value for the quarter-hour (a gap). */
  missing: Uint8Array;
  /** 1 where the value is estimated rather than measured. */
  estimated: Uint8Array;
}

export function roundTo(v: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

/** Share of peak activity for a building at a local hour (fractional) and weekday. */
export function occupancy(building: BuildingKind, hour: number, weekday: number, doy: number): number {
  const weekend = weekday === 0 || weekday === 6;
  const bump = (h: number, from: number, to: number): number => {
    // smooth 0..1 window with 1 h ramps
    if (h < from - 1 || h > to + 1) return 0;
    if (h < from) return h - (from - 1);
    if (h > to) return to + 1 - h;
    return 1;
  };
  switch (building) {
    case 'office':
      return weekend ? 0.3 : 0.3 + 0.7 * bump(hour, 7.5, 17.5);
    case 'retail':
      return 0.25 + (weekday === 0 ? 0.45 : 0.75) * bump(hour, 9, 20.5);
    case 'school': {
      const holiday = doy >= 160 && doy <= 225;
      return weekend || holiday ? 0.2 : 0.2 + 0.8 * bump(hour, 8, 15.5);
    }
    case 'residential':
      return (
        0.35 +
        0.35 * bump(hour, 6.5, 8.5) +
        0.6 * bump(hour, 17, 21.5) +
        (weekend ? 0.15 * bump(hour, 9, 16) : 0)
      );
    case 'warehouse':
      return weekend ? 0.25 : 0.25 + 0.6 * bump(hour, 6, 21.5);
    case 'hospital':
      return 0.75 + 0.25 * bump(hour, 7, 19);
  }
}

/** Mean daily outdoor temperature (°C) on a day of year for a latitude, plus a daily anomaly. */
export function temperature(latitude: number, doy: number, anomaly: number): number {
  const mean = 30 - 0.42 * Math.abs(latitude);
  const amp = 0.2 * Math.abs(latitude);
  const phase = latitude >= 0 ? 0 : Math.PI;
  return mean - amp * Math.cos((2 * Math.PI * (doy - 20)) / 365 + phase) + anomaly;
}

/** Clear-sky PV output share (0..1) at an instant. */
export function solarShare(latitude: number, longitude: number, doy: number, utcMs: number): number {
  const decl = ((23.44 * Math.PI) / 180) * Math.sin((2 * Math.PI * (284 + doy)) / 365);
  const utcHour = (((utcMs % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS;
  const solarTime = utcHour + longitude / 15;
  const ha = ((solarTime - 12) * 15 * Math.PI) / 180;
  const phi = (latitude * Math.PI) / 180;
  const sinElev = Math.sin(phi) * Math.sin(decl) + Math.cos(phi) * Math.cos(decl) * Math.cos(ha);
  return sinElev <= 0 ? 0 : Math.pow(sinElev, 1.2);
}

/**
 * Generate one local day of quarter-hour values for a meter, deterministic from
 * (seed, meter key, date).
 */
export function generateDay(seed: number, m: MeterModel, date: string): DaySeries {
  const { start, end } = localDayBounds(m.timeZone, date);
  const n = Math.round((end - start) / QUARTER_MS);
  const rng = rngFor(seed, m.key, date);
  const doy = dayOfYear(date);
  const weekday = weekdayOf(date);
  const anomaly = gaussian(rng) * 2.5;
  const temp = temperature(m.latitude, doy, anomaly);
  const cloud = 0.15 + 0.85 * rng() ** 0.7; // 0.15 (overcast) .. 1 (clear)
  const dayNoise = 1 + gaussian(rng) * 0.05;

  const imp = new Float64Array(n);
  const exp = m.solarKwp > 0 && m.commodity === 'electricity' ? new Float64Array(n) : null;
  const missing = new Uint8Array(n);
  const estimated = new Uint8Array(n);

  // Offsets: constant unless the day has a DST change (23 h / 25 h days, or a zone change).
  const startOffset = offsetMinutes(m.timeZone, start);
  const variable = end - start !== DAY_MS || offsetMinutes(m.timeZone, end - 1) !== startOffset;

  for (let i = 0; i < n; i++) {
    const t = start + i * QUARTER_MS;
    const mid = t + QUARTER_MS / 2;
    const off = variable ? offsetMinutes(m.timeZone, t) : startOffset;
    const localHour = ((((mid + off * MINUTE_MS) % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS;
    const occ = occupancy(m.building, localHour, weekday, doy);
    const noise = Math.max(0.2, 1 + gaussian(rng) * 0.06) * dayNoise;
    let kw: number;
    switch (m.commodity) {
      case 'electricity':
        kw = m.size * occ * (1 + 0.012 * Math.max(0, 15 - temp) + 0.04 * Math.max(0, temp - 21)) * noise;
        break;
      case 'heat': {
        const hdd = Math.max(0, 17 - temp);
        const dhw = 0.08 * (localHour >= 6 && localHour < 9 ? 1.5 : 0.6);
        kw = m.size * (dhw + hdd * 0.055 * (0.85 + 0.15 * occ)) * noise;
        break;
      }
      case 'cooling':
        kw = m.size * Math.max(0, temp - 16) * 0.06 * (0.3 + 0.7 * occ) * noise;
        break;
      case 'gas': {
        const hdd = Math.max(0, 16 - temp);
        kw = m.size * (0.05 + hdd * 0.05) * (0.8 + 0.2 * occ) * noise;
        break;
      }
      case 'water':
        kw = m.size * (0.05 + Math.pow(occ, 1.5)) * noise; // m³/h
        break;
    }
    // per quarter: kW × 0.25 h → kWh; unit conversion
    let q = kw * 0.25;
    if (m.unit === 'MWh') q /= 1000;
    else if (m.unit === 'GJ') q *= 0.0036;
    else if (m.commodity === 'gas' && (m.unit === 'm³' || m.unit === 'm3')) q /= 10.5; // kWh → m³ natural gas
    if (exp) {
      const pv =
        m.solarKwp * solarShare(m.latitude, m.longitude, doy, mid) * cloud * (0.9 + 0.1 * rng()) * 0.25;
      const net = q - pv;
      imp[i] = net > 0 ? net : 0;
      exp[i] = net < 0 ? -net : 0;
    } else {
      imp[i] = q;
    }
  }

  // Gap: one run of missing quarter-hours.
  if (rng() < m.gapRate) {
    const len = randInt(rng, 1, 16);
    const at = randInt(rng, 0, n - 1);
    for (let i = at; i < Math.min(n, at + len); i++) missing[i] = 1;
  }
  // Estimated block: values replaced by their flat mean (what a provider's estimator does).
  if (rng() < m.estimateRate) {
    const len = randInt(rng, 4, 24);
    const at = randInt(rng, 0, n - 1);
    const to = Math.min(n, at + len);
    let s = 0;
    for (let i = at; i < to; i++) s += imp[i] as number;
    const mean = s / (to - at);
    for (let i = at; i < to; i++) {
      imp[i] = mean;
      estimated[i] = 1;
    }
  }

  // 60-minute meters: each hour's 4 quarters are equal (the source only has hourly values).
  if (m.resolutionMinutes === 60) {
    for (let h = 0; h + 4 <= n; h += 4) {
      for (const arr of exp ? [imp, exp] : [imp]) {
        const s =
          (arr[h] as number) + (arr[h + 1] as number) + (arr[h + 2] as number) + (arr[h + 3] as number);
        arr[h] = arr[h + 1] = arr[h + 2] = arr[h + 3] = s / 4;
      }
      const miss = missing[h]! | missing[h + 1]! | missing[h + 2]! | missing[h + 3]!;
      const est = estimated[h]! | estimated[h + 1]! | estimated[h + 2]! | estimated[h + 3]!;
      for (let k = 0; k < 4; k++) {
        missing[h + k] = miss;
        estimated[h + k] = est;
      }
    }
  }

  for (let i = 0; i < n; i++) {
    imp[i] = roundTo(imp[i] as number, m.decimals);
    if (exp) exp[i] = roundTo(exp[i] as number, m.decimals);
  }
  return { date, timeZone: m.timeZone, start, end, n, imp, exp, missing, estimated };
}

export interface HourValue {
  /** Start instant of the hour. */
  start: number;
  imp: number;
  exp: number | null;
  /** True if any quarter of the hour is missing. */
  missing: boolean;
  estimated: boolean;
}

/** Hourly sums of a day (rounded to the meter's decimals). */
export function hourlyOfDay(day: DaySeries, decimals: number): HourValue[] {
  const out: HourValue[] = [];
  for (let h = 0; h + 4 <= day.n; h += 4) {
    let si = 0;
    let se = 0;
    let miss = false;
    let est = false;
    for (let k = h; k < h + 4; k++) {
      si += day.imp[k] as number;
      if (day.exp) se += day.exp[k] as number;
      if (day.missing[k]) miss = true;
      if (day.estimated[k]) est = true;
    }
    out.push({
      start: day.start + h * QUARTER_MS,
      imp: roundTo(si, decimals),
      exp: day.exp ? roundTo(se, decimals) : null,
      missing: miss,
      estimated: est,
    });
  }
  return out;
}

/** Sum of a day's values (all quarter-hours, including those the provider reports as missing). */
export function dayTotal(
  day: DaySeries,
  decimals: number,
): { imp: number; exp: number | null; estimated: boolean; missing: boolean } {
  let si = 0;
  let se = 0;
  let est = false;
  let miss = false;
  for (let i = 0; i < day.n; i++) {
    si += day.imp[i] as number;
    if (day.exp) se += day.exp[i] as number;
    if (day.estimated[i]) est = true;
    if (day.missing[i]) miss = true;
  }
  return {
    imp: roundTo(si, decimals),
    exp: day.exp ? roundTo(se, decimals) : null,
    estimated: est,
    missing: miss,
  };
}

/** Small LRU of generated days, keyed by meter key + date. */
export class DayCache {
  private readonly map = new Map<string, DaySeries>();
  constructor(
    private readonly seed: number,
    private readonly capacity = 512,
  ) {}

  get(m: MeterModel, date: string): DaySeries {
    const k = `${m.key}\u0000${date}`;
    const hit = this.map.get(k);
    if (hit) {
      this.map.delete(k);
      this.map.set(k, hit);
      return hit;
    }
    const d = generateDay(this.seed, m, date);
    this.map.set(k, d);
    if (this.map.size > this.capacity) {
      const first = this.map.keys().next();
      if (!first.done) this.map.delete(first.value);
    }
    return d;
  }
}
