/**
 * Provider C: a JSON REST provider whose meters differ in KIND on ONE usage endpoint, the shape the
 * platform requirements allow ("Usage records represent the actual readings or consumption
 * figures": consumption per period, or point-in-time register readings). Not a real product.
 *
 *   Auth: header X-Api-Key: <key> (missing/wrong → 401 {"error":"unauthorized","message":...}).
 *   GET /v1/meters[?cursor=<c>]&limit=N   (limit 1..100, default 50)
 *     → {"meters":[...], "next_cursor":"<c>"|null}
 *     Meter: {"meter_id":"E-0001","site_id":"S-01","site_name":"…","medium":"electricity"|"gas"|"water",
 *             "unit":"kWh"|"m3","kind":"interval"|"register","resolution_minutes":15|60|1440,
 *             "time_zone":"Europe/Berlin","register_digits":5|null}
 *   GET /v1/meters/{meter_id}/usage?start=YYYY-MM-DD&end=YYYY-MM-DD
 *     Local dates of the meter's zone, start inclusive, end EXCLUSIVE, at most 31 days → else 400.
 *     → {"rows":[...]} (no pagination: a month of 15-minute data is 2,976 rows)
 *     interval rows (15-minute electricity, hourly gas):
 *       {"meter_id","kind":"interval","start":"2024-03-31T00:00:00+01:00","end":"…+01:00","value":1.234,"estimated":false}
 *     register rows (daily water, read at local midnight, cumulative, wraps at 10^register_digits):
 *       {"meter_id","kind":"register","read_at":"2024-03-31T00:00:00+01:00","reading":98765.432,"estimated":false}
 *   Interval meters have gaps (a missing quarter-hour or hour has no row); registers have none.
 *   With `virtualMeters`, each site also lists a calculated meter {"meter_id":"V-0001",
 *   "kind":"virtual",...} (the site's electricity again) whose usage is 404: a connection must
 *   leave it out (a meter filter), as it has no usage of its own and would count twice.
 *
 * Ground truth (`truth().daily(id)`) is the consumption per local day computed from exactly what the
 * API serves, in integer units of the meter's resolution: interval rows summed by the local date
 * of their start; register days as the difference of consecutive midnight readings, with the
 * rollover undone. Every water register wraps exactly once in the data period.
 */
import { json, intParam, FaultController, StatsCounter, startSimServer } from './common/http.js';
import type { CommonFaults, SimRequest, SimResponse, SimStats } from './common/http.js';
import { DayCache, roundTo } from './common/load.js';
import type { MeterModel } from './common/load.js';
import { hexId, randRange, rngFor } from './common/prng.js';
import { QUARTER_MS } from '../schemas/time.js';
import { addDays, daysBetween, formatZoned, isYmd, localMidnight } from './common/time.js';

export type MixedMedium = 'electricity' | 'gas' | 'water';

export interface MixedMeterTruth {
  meter_id: string;
  site_id: string;
  site_name: string;
  medium: MixedMedium;
  unit: 'kWh' | 'm3';
  kind: 'interval' | 'register';
  resolution_minutes: 15 | 60 | 1440;
  time_zone: string;
  register_digits: number | null;
  decimals: number;
  model: MeterModel;
}

export interface MixedRow {
  meter_id: string;
  kind: 'interval' | 'register';
  start?: string;
  end?: string;
  value?: number;
  read_at?: string;
  reading?: number;
  estimated: boolean;
}

export interface MixedTruth {
  meters: MixedMeterTruth[];
  /** Consumption per local date (YYYY-MM-DD) over the data period, exact to the unit resolution. */
  daily(meterId: string): Map<string, number>;
  /** The same per local month (YYYY-MM). */
  monthly(meterId: string): Map<string, number>;
  /** Rows the API serves for local dates [start, end). */
  rows(meterId: string, start: string, end: string): MixedRow[];
}

export interface MixedOptions {
  seed?: number;
  /** Sites; each has one meter of each kind (15-minute electricity, hourly gas, daily water register). */
  sites?: number;
  /** First local day of data (default 2024-01-01) and number of days (default 366). */
  from?: string;
  days?: number;
  timeZone?: string;
  apiKey?: string;
  faults?: CommonFaults;
  /** List one calculated meter per site (kind "virtual", usage 404); not part of the truth. */
  virtualMeters?: boolean;
}

export interface MixedSimulator {
  url: string;
  apiKey: string;
  close(): Promise<void>;
  stats(): SimStats;
  truth(): MixedTruth;
}

const MEDIA: Record<
  MixedMedium,
  Pick<MixedMeterTruth, 'unit' | 'kind' | 'resolution_minutes' | 'decimals'> & {
    prefix: string;
    commodity: MeterModel['commodity'];
    perSite: number;
  }
> = {
  electricity: {
    prefix: 'E',
    unit: 'kWh',
    kind: 'interval',
    resolution_minutes: 15,
    decimals: 3,
    commodity: 'electricity',
    perSite: 60,
  },
  gas: {
    prefix: 'G',
    unit: 'm3',
    kind: 'interval',
    resolution_minutes: 60,
    decimals: 3,
    commodity: 'gas',
    perSite: 8,
  },
  water: {
    prefix: 'W',
    unit: 'm3',
    kind: 'register',
    resolution_minutes: 1440,
    decimals: 3,
    commodity: 'water',
    perSite: 0.6,
  },
};

const REGISTER_DIGITS = 5;

function meterJson(m: MixedMeterTruth): Record<string, unknown> {
  return {
    meter_id: m.meter_id,
    site_id: m.site_id,
    site_name: m.site_name,
    medium: m.medium,
    unit: m.unit,
    kind: m.kind,
    resolution_minutes: m.resolution_minutes,
    time_zone: m.time_zone,
    register_digits: m.register_digits,
  };
}

export async function startGenericMixedSimulator(opts: MixedOptions = {}): Promise<MixedSimulator> {
  const seed = opts.seed ?? 3;
  const from = opts.from ?? '2024-01-01';
  if (!isYmd(from)) throw new Error(`from must be YYYY-MM-DD: ${from}`);
  const days = opts.days ?? 366;
  const last = addDays(from, days); // exclusive for intervals; the last register reading is at its midnight
  const tz = opts.timeZone ?? 'Europe/Berlin';
  const apiKey = opts.apiKey ?? 'gen-c-' + hexId(rngFor(seed, 'c-key'), 20);
  const cache = new DayCache(seed, 256);

  const meters: MixedMeterTruth[] = [];
  for (let s = 0; s < (opts.sites ?? 2); s++) {
    const site_id = `S-${String(s + 1).padStart(2, '0')}`;
    const site_name = `Site ${s + 1} (${tz.split('/')[1] ?? tz})`;
    for (const medium of ['electricity', 'gas', 'water'] as const) {
      const info = MEDIA[medium];
      const r = rngFor(seed, 'c-meter', site_id, medium);
      const meter_id = `${info.prefix}-${String(s + 1).padStart(4, '0')}`;
      meters.push({
        meter_id,
        site_id,
        site_name,
        medium,
        unit: info.unit,
        kind: info.kind,
        resolution_minutes: info.resolution_minutes,
        time_zone: tz,
        register_digits: info.kind === 'register' ? REGISTER_DIGITS : null,
        decimals: info.decimals,
        model: {
          key: `c-${meter_id}`,
          commodity: info.commodity,
          unit: info.unit,
          decimals: info.decimals,
          timeZone: tz,
          building: 'office',
          size: info.perSite * randRange(r, 0.7, 1.3),
          latitude: 52.5,
          longitude: 13.4,
          solarKwp: 0,
          resolutionMinutes: info.resolution_minutes === 15 ? 15 : 60,
          gapRate: info.kind === 'register' ? 0 : 0.03,
          estimateRate: 0.02,
        },
      });
    }
  }
  const byId = new Map(meters.map((m) => [m.meter_id, m]));
  // Calculated meters are listed only: the API has no usage for them.
  const listed: Record<string, unknown>[] = [];
  for (const m of meters) {
    listed.push(meterJson(m));
    if (opts.virtualMeters && m.medium === 'water')
      listed.push({
        ...meterJson(m),
        meter_id: `V-${m.meter_id.slice(2)}`,
        medium: 'electricity',
        unit: 'kWh',
        kind: 'virtual',
        resolution_minutes: 15,
        register_digits: null,
      });
  }
  const scale = (m: MixedMeterTruth): number => 10 ** m.decimals;

  /** Interval rows of one local day, values in scaled integers. */
  const intervalDay = (
    m: MixedMeterTruth,
    date: string,
  ): { start: number; end: number; scaled: number; estimated: boolean }[] => {
    const d = cache.get(m.model, date);
    const step = m.resolution_minutes / 15;
    const f = scale(m);
    const out: { start: number; end: number; scaled: number; estimated: boolean }[] = [];
    for (let i = 0; i + step <= d.n; i += step) {
      let scaled = 0;
      let missing = false;
      let estimated = false;
      for (let k = i; k < i + step; k++) {
        scaled += Math.round((d.imp[k] as number) * f);
        if (d.missing[k]) missing = true;
        if (d.estimated[k]) estimated = true;
      }
      if (!missing)
        out.push({
          start: d.start + i * QUARTER_MS,
          end: d.start + (i + step) * QUARTER_MS,
          scaled,
          estimated,
        });
    }
    return out;
  };

  /** Register: scaled consumption of each day from `from`, and the initial stand that wraps once mid-period. */
  const registerDays = new Map<string, number[]>();
  const dayScaled = (m: MixedMeterTruth): number[] => {
    let arr = registerDays.get(m.meter_id);
    if (!arr) {
      const f = scale(m);
      arr = [];
      for (let i = 0; i < days; i++) {
        const d = cache.get(m.model, addDays(from, i));
        let s = 0;
        for (let k = 0; k < d.n; k++) s += Math.round((d.imp[k] as number) * f);
        arr.push(s);
      }
      registerDays.set(m.meter_id, arr);
    }
    return arr;
  };
  const modulus = (m: MixedMeterTruth): number => 10 ** (m.register_digits ?? REGISTER_DIGITS) * scale(m);
  /** Scaled stand at local midnight of day index i (0..days). */
  const standAt = (m: MixedMeterTruth, i: number): number => {
    const arr = dayScaled(m);
    let before = 0;
    for (let k = 0; k < i; k++) before += arr[k] as number;
    let half = 0;
    for (let k = 0; k < Math.floor(days / 2); k++) half += arr[k] as number;
    const initial = modulus(m) - half; // wraps at the midnight starting the middle day
    return (initial + before) % modulus(m);
  };

  const rows = (m: MixedMeterTruth, start: string, end: string): MixedRow[] => {
    const out: MixedRow[] = [];
    const f = scale(m);
    for (let date = start < from ? from : start; date < end; date = addDays(date, 1)) {
      if (m.kind === 'register') {
        if (date > last) break;
        out.push({
          meter_id: m.meter_id,
          kind: 'register',
          read_at: formatZoned(localMidnight(tz, date), tz),
          reading: roundTo(standAt(m, daysBetween(from, date)) / f, m.decimals),
          estimated: false,
        });
        continue;
      }
      if (date >= last) break;
      for (const iv of intervalDay(m, date))
        out.push({
          meter_id: m.meter_id,
          kind: 'interval',
          start: formatZoned(iv.start, tz),
          end: formatZoned(iv.end, tz),
          value: roundTo(iv.scaled / f, m.decimals),
          estimated: iv.estimated,
        });
    }
    return out;
  };

  const dailyScaled = (m: MixedMeterTruth): Map<string, number> => {
    const out = new Map<string, number>();
    for (let i = 0; i < days; i++) {
      const date = addDays(from, i);
      if (m.kind === 'register') {
        const diff = standAt(m, i + 1) - standAt(m, i);
        out.set(date, diff < 0 ? diff + modulus(m) : diff);
      } else {
        const ivs = intervalDay(m, date);
        if (ivs.length > 0)
          out.set(
            date,
            ivs.reduce((s, iv) => s + iv.scaled, 0),
          );
      }
    }
    return out;
  };
  const unscale = (m: MixedMeterTruth, src: Map<string, number>): Map<string, number> =>
    new Map([...src].map(([k, v]) => [k, v / scale(m)]));
  const meterOf = (id: string): MixedMeterTruth => {
    const m = byId.get(id);
    if (!m) throw new Error(`unknown meter ${id}`);
    return m;
  };

  const truth: MixedTruth = {
    meters,
    daily: (id) => {
      const m = meterOf(id);
      return unscale(m, dailyScaled(m));
    },
    monthly: (id) => {
      const m = meterOf(id);
      const months = new Map<string, number>();
      for (const [date, v] of dailyScaled(m))
        months.set(date.slice(0, 7), (months.get(date.slice(0, 7)) ?? 0) + v);
      return unscale(m, months);
    },
    rows: (id, start, end) => rows(meterOf(id), start, end),
  };

  const stats = new StatsCounter();
  const faults = new FaultController<CommonFaults>(opts.faults, stats);
  const unauthorized = (req: SimRequest): SimResponse | null => {
    const k = req.headers['x-api-key'];
    if (!k) return json(401, { error: 'unauthorized', message: 'X-Api-Key header is required' });
    if (k !== apiKey) return json(401, { error: 'unauthorized', message: 'invalid API key' });
    return null;
  };

  const server = await startSimServer<CommonFaults>({
    stats,
    faults,
    routes: [
      {
        method: 'GET',
        path: '/v1/meters',
        endpoint: 'meters',
        handler: (req) => {
          const denied = unauthorized(req);
          if (denied) return denied;
          const limit = intParam(req.query, 'limit') ?? 50;
          if (!Number.isInteger(limit) || limit < 1 || limit > 100)
            return json(400, { error: 'bad_request', message: 'limit must be between 1 and 100' });
          const cursor = req.query.get('cursor');
          const offset = cursor ? Number.parseInt(Buffer.from(cursor, 'base64url').toString(), 10) : 0;
          if (!Number.isInteger(offset) || offset < 0)
            return json(400, { error: 'bad_request', message: 'cursor is not valid' });
          const page = listed.slice(offset, offset + limit);
          const next =
            offset + limit < listed.length ? Buffer.from(String(offset + limit)).toString('base64url') : null;
          return json(200, { meters: page, next_cursor: next });
        },
      },
      {
        method: 'GET',
        path: '/v1/meters/:id/usage',
        endpoint: 'usage',
        handler: (req) => {
          const denied = unauthorized(req);
          if (denied) return denied;
          const m = byId.get(req.params.id ?? '');
          if (!m) return json(404, { error: 'not_found', message: `meter ${req.params.id} not found` });
          const start = req.query.get('start');
          const end = req.query.get('end');
          if (!start || !end || !isYmd(start) || !isYmd(end))
            return json(400, { error: 'bad_request', message: 'start and end (YYYY-MM-DD) are required' });
          const span = daysBetween(start, end);
          if (span < 1) return json(400, { error: 'bad_request', message: 'end must be after start' });
          if (span > 31) return json(400, { error: 'bad_request', message: 'date range exceeds 31 days' });
          return json(200, { rows: rows(m, start, end) });
        },
      },
    ],
  });

  return {
    url: server.url,
    apiKey,
    close: () => server.close(),
    stats: () => stats.snapshot(),
    truth: () => truth,
  };
}
