/**
 * Generic provider A: a JSON API with offset/limit paging, the API key in the query string, and
 * cumulative register readings in local time without offset. Not a real product; the specification
 * it serves is in README.md, section "Generic provider A".
 */
import {
  applyRecordFaults,
  json,
  intParam,
  FaultController,
  StatsCounter,
  startSimServer,
  simulatorHandle,
} from './common/http.js';
import type { JsonRecord, SimRequest, SimResponse, SimulatorHandle } from './common/http.js';
import type { CommodityInfo, GenericFaults } from './common/generic.js';
import { DayCache, roundTo } from './common/load.js';
import type { DaySeries, MeterModel } from './common/load.js';
import { hexId, pick, randInt, randRange, rngFor } from './common/prng.js';
import { BUILDINGS, buildingName, placeFor, postalFor, streetFor } from './common/places.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, QUARTER_MS } from '../schemas/time.js';
import {
  addDays,
  daysBetween,
  formatLocalNoOffset,
  isYmd,
  localDate,
  localDatesCovering,
  localMidnight,
} from './common/time.js';

export type { GenericFaults } from './common/generic.js';

export interface GenericJsonOptions {
  seed?: number;
  sites?: number;
  /** Meters per site, min and max (default [1, 4]). */
  metersPerSite?: [number, number];
  /** First local day of data (default '2024-01-01'). */
  from?: string;
  days?: number;
  /** The documented provider time zone of all read_at values (default Europe/Helsinki). */
  timeZone?: string;
  apiKey?: string;
  maxRangeDays?: number;
  /** Minutes between readings: 15, 60 or 1440 (daily, at local midnight). Default 60. */
  readingIntervalMinutes?: 15 | 60 | 1440;
  /** Share of meters replaced mid-year / rolling over (defaults 0.15 / 0.1). */
  replacementShare?: number;
  rolloverShare?: number;
  gapRate?: number;
  estimateRate?: number;
  faults?: GenericFaults;
}

export interface GenericJsonSiteTruth {
  site_id: string;
  name: string;
  address: string;
  region: string;
  portfolio: string;
  gross_area_m2: number;
}

export interface GenericJsonMeterTruth {
  meter_id: string;
  site_id: string;
  commodity: 'electricity' | 'district_heat' | 'water' | 'natural_gas';
  unit: 'kWh' | 'GJ' | 'm3';
  serial_number: string;
  description: string;
  register_digits: number;
  reading_interval_minutes: number;
  timeZone: string;
  /** Register stand at dataStart. */
  initialRegister: number;
  reset: { kind: 'replacement'; at: number } | { kind: 'rollover'; at: number } | null;
  dataStart: number;
  dataEnd: number;
  model: MeterModel;
}

export interface GenericReading {
  meter_id: string;
  /** Instant of the reading. */
  at: number;
  read_at: string;
  value: number;
  estimated: boolean;
}

export interface GenericJsonTruth {
  sites: GenericJsonSiteTruth[];
  meters: GenericJsonMeterTruth[];
  meter(id: string): GenericJsonMeterTruth | undefined;
  /** Readings the API reports for local dates [fromDate, toDate] (inclusive). */
  readings(meterId: string, fromDate: string, toDate: string): GenericReading[];
  /** Consumption per quarter-hour (all quarters, also those whose reading is missing). */
  day(meterId: string, date: string): DaySeries;
  /** Total consumption in [from, to) instants, exact to the unit resolution. */
  consumption(meterId: string, from: number, to: number): number;
}

export interface GenericJsonSimulator extends SimulatorHandle<GenericFaults> {
  truth(): GenericJsonTruth;
  /** The valid api_key. */
  apiKey: string;
}

const A_COMMODITIES: Record<
  GenericJsonMeterTruth['commodity'],
  CommodityInfo & { unit: GenericJsonMeterTruth['unit'] }
> = {
  electricity: { commodity: 'electricity', decimals: 3, unit: 'kWh' },
  district_heat: { commodity: 'heat', decimals: 4, unit: 'GJ' },
  water: { commodity: 'water', decimals: 3, unit: 'm3' },
  natural_gas: { commodity: 'gas', decimals: 3, unit: 'm3' },
};

/** invalidRecords variants for provider A readings. */
const A_CORRUPT: Array<(r: JsonRecord) => JsonRecord> = [
  (r) => ({ ...r, value: 'n/a' }),
  (r) => ({ ...r, read_at: String(r.read_at).replace(/^(\d{4})-\d\d-\d\dT\d\d/, '$1-02-30T25') }), // impossible date
  (r) => ({ ...r, value: -Math.abs(Number(r.value)) - 1 }),
  (r) => {
    const { meter_id: _m, ...rest } = r;
    return rest;
  },
];

function offsetPage<T>(
  items: T[],
  req: SimRequest,
  faults: FaultController<GenericFaults>,
  defaultLimit: number,
): { data: T[]; meta: { offset: number; limit: number; total: number } } | SimResponse {
  const offset = intParam(req.query, 'offset') ?? 0;
  const limit = intParam(req.query, 'limit') ?? defaultLimit;
  if (!Number.isInteger(offset) || offset < 0)
    return json(400, { error: 'bad_request', message: 'offset must be a non-negative integer' });
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    return json(400, { error: 'bad_request', message: 'limit must be between 1 and 1000' });
  let start = offset;
  if (offset > 0 && faults.take('duplicateAcrossPages', req.endpoint)) start = offset - 1;
  return { data: items.slice(start, offset + limit), meta: { offset, limit, total: items.length } };
}

export async function startGenericJsonSimulator(
  opts: GenericJsonOptions = {},
): Promise<GenericJsonSimulator> {
  const seed = opts.seed ?? 1;
  const from = opts.from ?? '2024-01-01';
  if (!isYmd(from)) throw new Error(`from must be YYYY-MM-DD: ${from}`);
  const days = opts.days ?? 365;
  const tz = opts.timeZone ?? 'Europe/Helsinki';
  const apiKey = opts.apiKey ?? 'gen-a-' + hexId(rngFor(seed, 'a-key'), 20);
  const maxRange = opts.maxRangeDays ?? 31;
  const every = opts.readingIntervalMinutes ?? 60;
  const [minM, maxM] = opts.metersPerSite ?? [1, 4];
  const cache = new DayCache(seed, 2048);
  const dataStart = localMidnight(tz, from);
  const dataEnd = localMidnight(tz, addDays(from, days));

  const sites: GenericJsonSiteTruth[] = [];
  const meters: GenericJsonMeterTruth[] = [];
  let meterSeq = 101;
  const makeMeter = (
    site: GenericJsonSiteTruth,
    k: number,
    building: MeterModel['building'],
    area: number,
    lat: number,
    lon: number,
  ): GenericJsonMeterTruth => {
    const r = rngFor(seed, 'a-meter', site.site_id, k);
    const kinds: Array<GenericJsonMeterTruth['commodity']> = [
      'electricity',
      'district_heat',
      'water',
      'natural_gas',
      'electricity',
    ];
    const commodity = kinds[k % kinds.length] as GenericJsonMeterTruth['commodity'];
    const info = A_COMMODITIES[commodity];
    const perM2 = { electricity: 0.012, heat: 0.02, cooling: 0.01, water: 0.00012, gas: 0.015 }[
      info.commodity
    ];
    const id = `M-${String(meterSeq++).padStart(6, '0')}`;
    const model: MeterModel = {
      key: `a-${id}`,
      commodity: info.commodity,
      unit: info.unit,
      decimals: info.decimals,
      timeZone: tz,
      building,
      size: area * perM2 * randRange(r, 0.6, 1.3),
      latitude: lat,
      longitude: lon,
      solarKwp: 0,
      resolutionMinutes: 15,
      gapRate: opts.gapRate ?? 0.02,
      estimateRate: opts.estimateRate ?? 0.02,
    };
    const u = r();
    const replacement = u < (opts.replacementShare ?? 0.15);
    const rollover = !replacement && u < (opts.replacementShare ?? 0.15) + (opts.rolloverShare ?? 0.1);
    const hours = Math.floor((dataEnd - dataStart) / HOUR_MS);
    const resetAt = dataStart + randInt(r, Math.floor(hours * 0.2), Math.floor(hours * 0.8)) * HOUR_MS;
    const digits = rollover ? 5 : randInt(r, 8, 9); // rollover meters get theirs below
    return {
      meter_id: id,
      site_id: site.site_id,
      commodity,
      unit: info.unit,
      serial_number: `${commodity.slice(0, 2).toUpperCase()}${hexId(r, 8).toUpperCase()}`,
      description: `${site.name} ${commodity.replace('_', ' ')} ${k + 1}`,
      register_digits: digits,
      reading_interval_minutes: every,
      timeZone: tz,
      initialRegister: rollover
        ? Number.NaN
        : roundTo(randRange(r, 100, 0.002 * 10 ** digits), info.decimals),
      reset: replacement
        ? { kind: 'replacement', at: resetAt }
        : rollover
          ? { kind: 'rollover', at: resetAt }
          : null,
      dataStart,
      dataEnd,
      model,
    };
  };
  const nSites = opts.sites ?? 10;
  const makeSite = (
    i: number,
  ): { site: GenericJsonSiteTruth; building: MeterModel['building']; lat: number; lon: number } => {
    const r = rngFor(seed, 'a-site', i);
    const place = placeFor(r, tz);
    const building = pick(r, BUILDINGS);
    const name = buildingName(r, building, place.city);
    return {
      site: {
        site_id: `SITE-${String(i + 1).padStart(4, '0')}`,
        name,
        address: `${streetFor(r, place)}, ${postalFor(r, place)} ${place.city}`,
        region: place.state,
        portfolio: `Portfolio ${String.fromCharCode(65 + (i % 3))}`,
        gross_area_m2: randInt(r, 600, 20000),
      },
      building,
      lat: place.latitude,
      lon: place.longitude,
    };
  };
  for (let i = 0; i < nSites; i++) {
    const { site, building, lat, lon } = makeSite(i);
    sites.push(site);
    const n = randInt(rngFor(seed, 'a-site-n', i), minM, maxM);
    for (let k = 0; k < n; k++) meters.push(makeMeter(site, k, building, site.gross_area_m2, lat, lon));
  }
  // At least one replaced and one rolling-over meter whenever there are enough meters.
  const hours = Math.floor((dataEnd - dataStart) / HOUR_MS);
  const forceReset = (m: GenericJsonMeterTruth | undefined, kind: 'replacement' | 'rollover'): void => {
    if (!m || m.reset) return;
    m.reset = { kind, at: dataStart + Math.floor(hours * (kind === 'replacement' ? 0.45 : 0.6)) * HOUR_MS };
    if (kind === 'rollover') m.initialRegister = Number.NaN;
  };
  if (meters.length >= 4) {
    if (!meters.some((m) => m.reset?.kind === 'replacement'))
      forceReset(
        meters.find((m, i) => i >= 1 && !m.reset),
        'replacement',
      );
    if (!meters.some((m) => m.reset?.kind === 'rollover'))
      forceReset(
        meters.find((m, i) => i >= 2 && !m.reset),
        'rollover',
      );
  }
  const byId = new Map(meters.map((m) => [m.meter_id, m]));

  // ---- registers: exact integer arithmetic in units of 10^-decimals
  const dayStartCum = new Map<string, number[]>(); // meter → cumulative (scaled ints) at start of day i
  const scale = (m: GenericJsonMeterTruth): number => 10 ** m.model.decimals;
  const dayTotalScaled = (m: GenericJsonMeterTruth, date: string): number => {
    const d = cache.get(m.model, date);
    const f = scale(m);
    let s = 0;
    for (let i = 0; i < d.n; i++) s += Math.round((d.imp[i] as number) * f);
    return s;
  };
  /** Scaled consumption from dataStart to t (t on a quarter boundary within the data). */
  const cumAt = (m: GenericJsonMeterTruth, t: number): number => {
    const date = localDate(tz, Math.min(t, dataEnd - 1));
    const idx = daysBetween(from, date);
    let arr = dayStartCum.get(m.meter_id);
    if (!arr) {
      arr = [0];
      dayStartCum.set(m.meter_id, arr);
    }
    while (arr.length <= idx)
      arr.push((arr[arr.length - 1] as number) + dayTotalScaled(m, addDays(from, arr.length - 1)));
    let s = arr[idx] as number;
    const d = cache.get(m.model, date);
    const f = scale(m);
    for (let i = 0; i < d.n && d.start + i * QUARTER_MS < t; i++) s += Math.round((d.imp[i] as number) * f);
    return s;
  };
  const initialScaled = (m: GenericJsonMeterTruth): number => Math.round(m.initialRegister * scale(m));
  /**
   * Rolling-over meters: register_digits is the smallest (≥ 5) with 10^digits above the year's
   * consumption, and the start stand is chosen so the register wraps exactly once, in the hour
   * before reset.at.
   */
  const initRollover = (m: GenericJsonMeterTruth): void => {
    if (m.reset?.kind !== 'rollover') return;
    const total = cumAt(m, m.dataEnd);
    m.register_digits = Math.max(5, Math.ceil(Math.log10(total / scale(m) + 1) + 0.05));
    const mod = 10 ** m.register_digits * scale(m);
    const init = mod - Math.round((cumAt(m, m.reset.at) + cumAt(m, m.reset.at - HOUR_MS)) / 2);
    m.initialRegister = init / scale(m);
  };
  meters.forEach(initRollover);
  const registerAt = (m: GenericJsonMeterTruth, t: number): number => {
    const f = scale(m);
    const cum = cumAt(m, t);
    if (m.reset?.kind === 'replacement' && t >= m.reset.at) return (cum - cumAt(m, m.reset.at)) / f;
    const v = initialScaled(m) + cum;
    const mod = 10 ** m.register_digits * f;
    return (((v % mod) + mod) % mod) / f;
  };
  /** Reading instants whose local date is in [fromDate, toDate], within [dataStart, dataEnd] (both inclusive). */
  const readingTimes = (m: GenericJsonMeterTruth, fromDate: string, toDate: string): number[] => {
    const out: number[] = [];
    if (every === 1440) {
      for (let d = fromDate; d <= toDate; d = addDays(d, 1)) {
        const t = localMidnight(tz, d);
        if (t >= m.dataStart && t <= m.dataEnd) out.push(t);
      }
      return out;
    }
    const a = Math.max(localMidnight(tz, fromDate), m.dataStart);
    const b = Math.min(localMidnight(tz, addDays(toDate, 1)), m.dataEnd + 1);
    const step = every * MINUTE_MS;
    for (let t = Math.ceil((a - m.dataStart) / step) * step + m.dataStart; t < b; t += step) out.push(t);
    return out;
  };
  const readings = (m: GenericJsonMeterTruth, fromDate: string, toDate: string): GenericReading[] => {
    const out: GenericReading[] = [];
    for (const t of readingTimes(m, fromDate, toDate)) {
      // Quality of the interval before t.
      const prevStart = every === 1440 ? t - DAY_MS : t - every * MINUTE_MS;
      let missing = false;
      let est = false;
      if (t > m.dataStart) {
        for (const date of localDatesCovering(tz, Math.max(prevStart, m.dataStart), t)) {
          const d = cache.get(m.model, date);
          for (let i = 0; i < d.n; i++) {
            const s = d.start + i * QUARTER_MS;
            if (s < prevStart || s >= t) continue;
            if (d.missing[i]) missing = true;
            if (d.estimated[i]) est = true;
          }
        }
      }
      if (missing) continue;
      out.push({
        meter_id: m.meter_id,
        at: t,
        read_at: formatLocalNoOffset(t, tz),
        value: roundTo(registerAt(m, t), m.model.decimals),
        estimated: est,
      });
    }
    return out;
  };

  const truth: GenericJsonTruth = {
    sites,
    meters,
    meter: (id) => byId.get(id),
    readings: (id, a, b) => {
      const m = byId.get(id);
      if (!m) throw new Error(`unknown meter ${id}`);
      return readings(m, a, b);
    },
    day: (id, date) => {
      const m = byId.get(id);
      if (!m) throw new Error(`unknown meter ${id}`);
      return cache.get(m.model, date);
    },
    consumption: (id, a, b) => {
      const m = byId.get(id);
      if (!m) throw new Error(`unknown meter ${id}`);
      const lo = Math.max(a, m.dataStart);
      const hi = Math.min(b, m.dataEnd);
      return hi <= lo ? 0 : (cumAt(m, hi) - cumAt(m, lo)) / scale(m);
    },
  };

  // ---- server
  const stats = new StatsCounter();
  const faults = new FaultController<GenericFaults>(opts.faults, stats);
  const siteOrder = [...sites];
  const meterOrder = [...meters];
  let inserted = 0;
  const unauthorized = (req: SimRequest): SimResponse | null => {
    const k = req.query.get('api_key');
    if (!k) return json(401, { error: 'unauthorized', message: 'api_key query parameter is required' });
    if (k !== apiKey) return json(401, { error: 'unauthorized', message: 'invalid api_key' });
    return null;
  };
  const meterJson = (m: GenericJsonMeterTruth): Record<string, unknown> => ({
    meter_id: m.meter_id,
    site_id: m.site_id,
    commodity: m.commodity,
    unit: m.unit,
    serial_number: m.serial_number,
    description: m.description,
    register_digits: m.register_digits,
    reading_interval_minutes: m.reading_interval_minutes,
  });

  const server = await startSimServer<GenericFaults>({
    stats,
    faults,
    routes: [
      {
        method: 'GET',
        path: '/api/sites',
        endpoint: 'sites',
        handler: (req) => {
          const u = unauthorized(req);
          if (u) return u;
          const p = offsetPage(siteOrder, req, faults, 100);
          return 'status' in p ? p : json(200, p);
        },
      },
      {
        method: 'GET',
        path: '/api/meters',
        endpoint: 'meters',
        handler: (req) => {
          const u = unauthorized(req);
          if (u) return u;
          const site = req.query.get('site_id');
          const list = site ? meterOrder.filter((m) => m.site_id === site) : meterOrder;
          const p = offsetPage(list, req, faults, 100);
          if ('status' in p) return p;
          const body = json(200, { data: p.data.map(meterJson), meta: p.meta });
          if (p.meta.offset === 0 && faults.take('shiftDuringPaging', req.endpoint)) {
            inserted++;
            const s = sites[0] as GenericJsonSiteTruth;
            const m = makeMeter(s, 100 + inserted, 'office', s.gross_area_m2, 60.2, 24.9);
            meters.push(m);
            byId.set(m.meter_id, m);
            initRollover(m);
            meterOrder.unshift(m);
          }
          return body;
        },
      },
      {
        method: 'GET',
        path: '/api/meters/:id/readings',
        endpoint: 'readings',
        handler: (req) => {
          const u = unauthorized(req);
          if (u) return u;
          const m = byId.get(req.params.id ?? '');
          if (!m) return json(404, { error: 'not_found', message: `meter ${req.params.id} not found` });
          const f = req.query.get('from');
          const t = req.query.get('to');
          if (!f || !t)
            return json(400, { error: 'bad_request', message: 'from and to (YYYY-MM-DD) are required' });
          if (!isYmd(f) || !isYmd(t))
            return json(400, { error: 'bad_request', message: 'from and to must be YYYY-MM-DD' });
          const span = daysBetween(f, t) + 1;
          if (span < 1) return json(400, { error: 'bad_request', message: 'to must not be before from' });
          if (span > maxRange)
            return json(400, { error: 'bad_request', message: `date range exceeds ${maxRange} days` });
          const p = offsetPage(readings(m, f, t), req, faults, 500);
          if ('status' in p) return p;
          return json(200, {
            data: applyRecordFaults(
              p.data.map((r) => ({
                meter_id: r.meter_id,
                read_at: r.read_at,
                value: r.value,
                estimated: r.estimated,
              })),
              faults,
              req.endpoint,
              A_CORRUPT,
            ),
            meta: p.meta,
          });
        },
      },
    ],
  });

  return {
    ...simulatorHandle(server, stats, faults),
    truth: () => truth,
    apiKey,
  };
}
