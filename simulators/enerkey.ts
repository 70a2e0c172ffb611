/**
 * EnerKey API simulator (the EnerKey API overview).
 *
 * What the document fixes: the API key goes in the `Authorization` request header; two keys per
 * profile, each with validity dates; 40,000 requests per 24 h per key, with an `X-Rate-Limit` header
 * giving the calls still available; timestamps in UTC (2017-01-01T00:00:00Z) or with an offset
 * (2017-01-01T00:00:00+02:00), URL-encoded in requests, and responses "in the requested format";
 * facilities, meters, quantities (id, name, unit), hourly and monthly values for one or many meters.
 *
 * What the document leaves open, and what this simulator does (stable; connectors rely on it):
 *
 * Auth
 * - `Authorization: <api key>` — the raw key, no scheme prefix. Missing, unknown, not yet valid
 *   (before validFrom) or expired (at/after validTo) → 401 problem body.
 * - Budget: each valid key has its own rolling 24 h window of `budget` requests (default 40,000).
 *   Every authenticated request counts (also 4xx answers to bad parameters). Responses carry
 *   `X-Rate-Limit: <calls remaining>`. When exhausted → 429 with `Retry-After: <seconds>` until the
 *   oldest call leaves the window, and `X-Rate-Limit: 0`.
 *
 * Errors: RFC 7807 problem details, content-type application/problem+json:
 *   {"type":"about:blank","title":"Bad Request","status":400,"detail":"..."}
 *
 * Endpoints
 * - GET /api/v1/quantities → [{ "id": 1, "name": "Electricity", "unit": "kWh" }, ...]
 * - GET /api/v1/facilities?pageSize=50&continuationToken=<token>
 *     → { "items": [facility...], "continuationToken": "<opaque>" | null }
 *     Cursor pagination: pass the returned token back until it is null. pageSize 1..200 (default 50).
 *     An unknown/garbled token → 400. Facility:
 *     { "id": 1001, "name": "...", "customerFacilityId": "FI-0001", "timeZone": "Europe/Helsinki",
 *       "address": { "streetAddress": "...", "postalCode": "00100", "city": "Helsinki", "country": "FI" },
 *       "properties": { "buildingType": "Office", "grossArea": 5230, "yearOfConstruction": 1987 } }
 * - GET /api/v1/facilities/{id} → one facility (404 if unknown)
 * - GET /api/v1/meters?facilityId=1001[,1002...] → [meter...] (all meters when facilityId is absent; not paged)
 *     Meter: { "id": 20001, "facilityId": 1001, "name": "Main electricity", "quantityId": 1,
 *              "unit": "kWh", "meterType": "Main" | "Sub", "enegiaId": "..." }
 *     `unit` is the meter's default unit and always equals its quantity's unit.
 * - GET /api/v1/values/hourly?meterIds=20001,20002&from=<ISO>&to=<ISO>
 * - GET /api/v1/values/monthly?meterIds=20001,20002&from=<ISO>&to=<ISO>
 *     from/to: ISO 8601 instants with Z or an offset (anything else → 400), [from, to) half-open.
 *     meterIds: 1..100 ids (more → 400); unknown ids → 400 listing them.
 *     Hourly: hours whose start lies in [from, to). Range at most `maxHourlyRangeDays` (default 31 days) → else 400;
 *     monthly range at most `maxMonthlyRangeDays` (default 732 days) → else 400.
 *     → { "from": "...", "to": "...", "resolution": "PT1H" | "P1M",
 *         "meters": [ { "meterId": 20001, "quantityId": 1, "unit": "kWh",
 *                       "values": [ { "timestamp": "2024-01-01T00:00:00+02:00", "value": 12.345, "flag": "Measured" } ] } ] }
 *     `timestamp` is the START of the hour / month, rendered in the requested format: with `Z` when `from`
 *     used Z, otherwise with the SAME fixed offset as `from` (so a request with +02:00 gets +02:00
 *     timestamps also in summer — valid instants, not local time).
 *     Hourly values are consumption in the meter unit. Hours the meter has no data for are omitted
 *     (gaps). flag is "Measured" or "Estimated".
 *     Monthly values cover local calendar months in the FACILITY's time zone (a month starts at local
 *     midnight of its first day). A month is returned when its first day lies in [D(from), D(to)), where
 *     D(x) is the local calendar date of instant x in the facility zone — so from=2024-01-01T00:00:00Z
 *     includes January in Helsinki although January starts at 2023-12-31T22:00:00Z. The value is the complete month
 *     total including hours missing from the hourly endpoint (the provider fills gaps), flagged
 *     "Estimated" if any hour was estimated or missing. Months outside the data are omitted.
 *
 * Data: facilities mostly in Europe/Helsinki, some in UTC; quantities electricity (kWh), heating (MWh),
 * water (m³), district cooling (MWh), natural gas (m³). Values are rounded (kWh 3, MWh 6, m³ 3 decimals).
 */
import {
  applyRecordFaults,
  json,
  header,
  intParam,
  FaultController,
  StatsCounter,
  startSimServer,
  simulatorHandle,
} from './common/http.js';
import type {
  CommonFaults,
  FaultSwitch,
  JsonRecord,
  SimRequest,
  SimResponse,
  SimulatorHandle,
} from './common/http.js';
import { decodeOffsetToken, encodeOffsetToken } from './common/paging.js';
import { DayCache, hourlyOfDay, roundTo } from './common/load.js';
import type { Commodity, DaySeries, MeterModel } from './common/load.js';
import { hexId, pick, randInt, randRange, rngFor } from './common/prng.js';
import { BUILDINGS, BUILDING_LABEL, buildingName, placeFor, postalFor, streetFor } from './common/places.js';
import { DAY_MS } from '../schemas/time.js';
import {
  addDays,
  addMonths,
  formatWithOffset,
  isYmd,
  localDate,
  localDatesCovering,
  localMidnight,
  parseIsoInstant,
} from './common/time.js';

export interface EnerKeyFaults extends CommonFaults {
  /** Facility pages after the first repeat the previous page's last facility. */
  duplicateAcrossPages?: FaultSwitch;
  /** The continuation token returned equals the one received (a cursor loop). */
  repeatedCursor?: FaultSwitch;
  /**
   * Key expiry mid-run: requests with `key` (default: the first key) answer 401 "API key has
   * expired" while the switch fires — e.g. `{ after: 20 }` to expire it after 20 requests with it.
   */
  expireKey?: FaultSwitch<{ key?: string }>;
}

export interface EnerKeyApiKey {
  key: string;
  /** ISO instant or epoch ms; the key works from here (inclusive). */
  validFrom: string | number;
  /** ISO instant or epoch ms; the key is expired from here on. */
  validTo: string | number;
}

export interface EnerKeyOptions {
  seed?: number;
  /** Number of facilities (default 25). */
  facilities?: number;
  /** Min and max meters per facility (default [2, 6]). */
  metersPerFacility?: [number, number];
  /** First local day of data (default '2024-01-01'), in each facility's time zone. */
  from?: string;
  /** Days of data (default 365). */
  days?: number;
  /** Facility time zones, assigned round-robin (default Helsinki, Helsinki, UTC). */
  timeZones?: string[];
  /** The profile's two API keys (default: two keys valid 2020-01-01 .. 2100-01-01). */
  apiKeys?: [EnerKeyApiKey, EnerKeyApiKey];
  /** Requests per key per window (default 40,000). */
  budget?: number;
  /** Budget window in ms (default 24 h). */
  budgetWindowMs?: number;
  maxMetersPerRequest?: number;
  maxHourlyRangeDays?: number;
  maxMonthlyRangeDays?: number;
  /** Probability per meter-day of a gap / an estimated block. */
  gapRate?: number;
  estimateRate?: number;
  now?: () => number;
  faults?: EnerKeyFaults;
}

export interface EnerKeyQuantity {
  id: number;
  name: string;
  unit: string;
}

export interface EnerKeyFacilityTruth {
  id: number;
  name: string;
  customerFacilityId: string;
  timeZone: string;
  address: { streetAddress: string; postalCode: string; city: string; country: string };
  properties: { buildingType: string; grossArea: number; yearOfConstruction: number };
}

export interface EnerKeyMeterTruth {
  id: number;
  facilityId: number;
  name: string;
  quantityId: number;
  unit: string;
  meterType: 'Main' | 'Sub';
  enegiaId: string;
  timeZone: string;
  commodity: Commodity;
  /** First instant with data and end of data (exclusive): local midnights of the facility. */
  dataStart: number;
  dataEnd: number;
  model: MeterModel;
}

export interface EnerKeyHour {
  start: number;
  value: number;
  estimated: boolean;
}

export interface EnerKeyMonth {
  /** 'YYYY-MM' (local). */
  month: string;
  start: number;
  end: number;
  value: number;
  estimated: boolean;
}

export interface EnerKeyTruth {
  quantities: EnerKeyQuantity[];
  facilities: EnerKeyFacilityTruth[];
  meters: EnerKeyMeterTruth[];
  meter(id: number): EnerKeyMeterTruth | undefined;
  /** Hourly values the API reports in [from, to) (gaps omitted). */
  hourly(meterId: number, from?: number, to?: number): Generator<EnerKeyHour>;
  /** Complete monthly totals (local months of the facility) whose start lies in [from, to). */
  monthly(meterId: number, from?: number, to?: number): EnerKeyMonth[];
  day(meterId: number, date: string): DaySeries;
  apiKeys: Array<{ key: string; validFrom: number; validTo: number }>;
}

export interface EnerKeySimulator extends SimulatorHandle<EnerKeyFaults> {
  truth(): EnerKeyTruth;
  /** Calls left in the window for a key (without counting a request). */
  remaining(key: string): number;
}

export const ENERKEY_QUANTITIES: EnerKeyQuantity[] = [
  { id: 1, name: 'Electricity', unit: 'kWh' },
  { id: 2, name: 'Heating', unit: 'MWh' },
  { id: 3, name: 'Water', unit: 'm³' },
  { id: 4, name: 'District cooling', unit: 'MWh' },
  { id: 6, name: 'Natural gas', unit: 'm³' },
];

const QUANTITY_COMMODITY: Record<number, { commodity: Commodity; decimals: number; name: string }> = {
  1: { commodity: 'electricity', decimals: 3, name: 'electricity' },
  2: { commodity: 'heat', decimals: 6, name: 'heating' },
  3: { commodity: 'water', decimals: 3, name: 'water' },
  4: { commodity: 'cooling', decimals: 6, name: 'district cooling' },
  6: { commodity: 'gas', decimals: 3, name: 'natural gas' },
};

/** invalidRecords variants for values. */
const EK_CORRUPT: Array<(r: JsonRecord) => JsonRecord> = [
  (r) => ({ ...r, value: 'NaN' }),
  (r) => ({ ...r, timestamp: String(r.timestamp).replace(/(Z|[+-]\d\d:\d\d)$/, '') }), // no offset
  (r) => ({ ...r, value: null }),
  (r) => ({ ...r, value: -Math.abs(Number(r.value)) - 1 }),
];

function toMs(v: string | number): number {
  if (typeof v === 'number') return v;
  const p = parseIsoInstant(v);
  if (!p) throw new Error(`not an ISO instant: ${v}`);
  return p.ms;
}

const problem = (status: number, detail: string, headers: Record<string, string> = {}): SimResponse => {
  const titles: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    404: 'Not Found',
    429: 'Too Many Requests',
  };
  const r = json(status, { type: 'about:blank', title: titles[status] ?? 'Error', status, detail }, headers);
  return { ...r, headers: { ...r.headers, 'content-type': 'application/problem+json; charset=utf-8' } };
};

export async function startEnerKeySimulator(opts: EnerKeyOptions = {}): Promise<EnerKeySimulator> {
  const seed = opts.seed ?? 1;
  const nFacilities = opts.facilities ?? 25;
  const [minM, maxM] = opts.metersPerFacility ?? [2, 6];
  const from = opts.from ?? '2024-01-01';
  if (!isYmd(from)) throw new Error(`from must be YYYY-MM-DD: ${from}`);
  const days = opts.days ?? 365;
  const timeZones = opts.timeZones ?? ['Europe/Helsinki', 'Europe/Helsinki', 'UTC'];
  const budget = opts.budget ?? 40_000;
  const windowMs = opts.budgetWindowMs ?? DAY_MS;
  const maxMeters = opts.maxMetersPerRequest ?? 100;
  const maxHourlyMs = (opts.maxHourlyRangeDays ?? 31) * DAY_MS;
  const maxMonthlyMs = (opts.maxMonthlyRangeDays ?? 732) * DAY_MS;
  const now = opts.now ?? Date.now;
  const keys = (
    opts.apiKeys ?? [
      {
        key: 'ek_primary_' + hexId(rngFor(seed, 'key', 1), 24),
        validFrom: '2020-01-01T00:00:00Z',
        validTo: '2100-01-01T00:00:00Z',
      },
      {
        key: 'ek_secondary_' + hexId(rngFor(seed, 'key', 2), 24),
        validFrom: '2020-01-01T00:00:00Z',
        validTo: '2100-01-01T00:00:00Z',
      },
    ]
  ).map((k) => ({ key: k.key, validFrom: toMs(k.validFrom), validTo: toMs(k.validTo) }));

  // ---- world
  const facilities: EnerKeyFacilityTruth[] = [];
  const meters: EnerKeyMeterTruth[] = [];
  const cache = new DayCache(seed, 2048);
  let meterId = 20001;
  for (let f = 0; f < nFacilities; f++) {
    const r = rngFor(seed, 'facility', f);
    const tz = timeZones[f % timeZones.length] as string;
    const place = placeFor(r, tz === 'UTC' ? 'UTC' : tz);
    const building = pick(r, BUILDINGS);
    const area = randInt(r, 800, 25000);
    const fac: EnerKeyFacilityTruth = {
      id: 1001 + f,
      name: buildingName(r, building, place.city),
      customerFacilityId: `${place.country}-${String(f + 1).padStart(4, '0')}`,
      timeZone: tz,
      address: {
        streetAddress: streetFor(r, place),
        postalCode: postalFor(r, place),
        city: place.city,
        country: place.country,
      },
      properties: {
        buildingType: BUILDING_LABEL[building],
        grossArea: area,
        yearOfConstruction: randInt(r, 1925, 2022),
      },
    };
    facilities.push(fac);
    const count = randInt(r, minM, maxM);
    const dataStart = localMidnight(tz, from);
    const dataEnd = localMidnight(tz, addDays(from, days));
    // Every facility has main electricity; others drawn from the remaining quantities.
    const qs: Array<{ q: number; type: 'Main' | 'Sub' }> = [{ q: 1, type: 'Main' }];
    const pool = [2, 3, 1, 4, 6, 3];
    for (let k = 1; k < count; k++) {
      const q = pool[(k - 1) % pool.length] as number;
      qs.push({ q, type: q === 1 || qs.some((x) => x.q === q) ? 'Sub' : 'Main' });
    }
    qs.forEach(({ q, type }, k) => {
      const mr = rngFor(seed, 'meter', fac.id, k);
      const quantity = ENERKEY_QUANTITIES.find((x) => x.id === q) as EnerKeyQuantity;
      const info = QUANTITY_COMMODITY[q] as { commodity: Commodity; decimals: number; name: string };
      const kwPerM2 = { electricity: 0.012, heat: 0.02, cooling: 0.01, water: 0.00012, gas: 0.015 }[
        info.commodity
      ];
      const size = area * kwPerM2 * (type === 'Sub' ? randRange(mr, 0.1, 0.4) : randRange(mr, 0.7, 1.3));
      const id = meterId++;
      const name = `${type === 'Main' ? 'Main' : 'Sub'} ${info.name}${type === 'Sub' ? ` ${k}` : ''}`;
      meters.push({
        id,
        facilityId: fac.id,
        name: name.charAt(0).toUpperCase() + name.slice(1),
        quantityId: q,
        unit: quantity.unit,
        meterType: type,
        enegiaId: String(randInt(mr, 100000000, 999999999)),
        timeZone: tz,
        commodity: info.commodity,
        dataStart,
        dataEnd,
        model: {
          key: `ek-${id}`,
          commodity: info.commodity,
          unit: quantity.unit,
          decimals: info.decimals,
          timeZone: tz,
          building,
          size,
          latitude: place.latitude,
          longitude: place.longitude,
          solarKwp: 0,
          resolutionMinutes: 60,
          gapRate: opts.gapRate ?? 0.01,
          estimateRate: opts.estimateRate ?? 0.01,
        },
      });
    });
  }
  const meterById = new Map(meters.map((m) => [m.id, m]));

  function* hourly(
    m: EnerKeyMeterTruth,
    a0: number,
    b0: number,
  ): Generator<EnerKeyHour & { missing: boolean }> {
    const a = Math.max(a0, m.dataStart);
    const b = Math.min(b0, m.dataEnd);
    for (const date of localDatesCovering(m.timeZone, a, b)) {
      for (const h of hourlyOfDay(cache.get(m.model, date), m.model.decimals)) {
        if (h.start < a || h.start >= b) continue;
        yield { start: h.start, value: h.imp, estimated: h.estimated, missing: h.missing };
      }
    }
  }

  /** Months whose first day (local date in the facility zone) is in [local date of a, local date of b). */
  const monthly = (m: EnerKeyMeterTruth, a: number, b: number): EnerKeyMonth[] => {
    const out: EnerKeyMonth[] = [];
    const fromDate = localDate(m.timeZone, a);
    const toDate = localDate(m.timeZone, b);
    let month = localDate(m.timeZone, m.dataStart).slice(0, 7) + '-01';
    for (;;) {
      const start = localMidnight(m.timeZone, month);
      if (start >= m.dataEnd || month >= toDate) break;
      const next = addMonths(month, 1);
      const end = localMidnight(m.timeZone, next);
      if (month >= fromDate) {
        let v = 0;
        let est = false;
        for (const h of hourly(m, start, end)) {
          v += h.value;
          est ||= h.estimated || h.missing;
        }
        // A month cut by the end of the data is reported as far as data exists.
        out.push({
          month: month.slice(0, 7),
          start,
          end,
          value: roundTo(v, m.model.decimals),
          estimated: est,
        });
      }
      month = next;
    }
    return out;
  };

  const truth: EnerKeyTruth = {
    quantities: ENERKEY_QUANTITIES,
    facilities,
    meters,
    meter: (id) => meterById.get(id),
    hourly: function* (id, a, b) {
      const m = meterById.get(id);
      if (!m) throw new Error(`unknown meter ${id}`);
      for (const h of hourly(m, a ?? m.dataStart, b ?? m.dataEnd))
        if (!h.missing) yield { start: h.start, value: h.value, estimated: h.estimated };
    },
    monthly: (id, a, b) => {
      const m = meterById.get(id);
      if (!m) throw new Error(`unknown meter ${id}`);
      return monthly(m, a ?? m.dataStart, b ?? m.dataEnd);
    },
    day: (id, date) => {
      const m = meterById.get(id);
      if (!m) throw new Error(`unknown meter ${id}`);
      return cache.get(m.model, date);
    },
    apiKeys: keys,
  };

  // ---- server
  const stats = new StatsCounter();
  const faults = new FaultController<EnerKeyFaults>(opts.faults, stats);
  const usage = new Map<string, number[]>();

  const prune = (key: string): number[] => {
    const list = usage.get(key) ?? [];
    const cutoff = now() - windowMs;
    let i = 0;
    while (i < list.length && (list[i] as number) <= cutoff) i++;
    if (i > 0) list.splice(0, i);
    usage.set(key, list);
    return list;
  };

  /** Authenticate and charge the budget. Returns rate-limit headers or an error response. */
  const guard = (req: SimRequest): { headers: Record<string, string> } | SimResponse => {
    const key = header(req, 'authorization')?.trim();
    if (!key) return problem(401, 'Missing API key in the Authorization header');
    const k = keys.find((x) => x.key === key);
    if (!k) return problem(401, 'Invalid API key');
    const t = now();
    if (t < k.validFrom) return problem(401, 'API key is not valid yet');
    if (t >= k.validTo) return problem(401, 'API key has expired');
    const ek = faults.get().expireKey;
    if (ek) {
      const target = typeof ek === 'object' && ek.key ? ek.key : keys[0]?.key;
      if (target === key && faults.take('expireKey', req.endpoint))
        return problem(401, 'API key has expired');
    }
    const list = prune(key);
    if (list.length >= budget) {
      const retry = Math.max(1, Math.ceil(((list[0] as number) + windowMs - t) / 1000));
      return problem(429, `Rate limit of ${budget} requests per 24 hours exceeded`, {
        'retry-after': String(retry),
        'x-rate-limit': '0',
      });
    }
    list.push(t);
    return { headers: { 'x-rate-limit': String(budget - list.length) } };
  };

  const withHeaders = (r: SimResponse, h: Record<string, string>): SimResponse => ({
    ...r,
    headers: { ...(r.headers ?? {}), ...h },
  });

  const facilityJson = (f: EnerKeyFacilityTruth): Record<string, unknown> => ({
    id: f.id,
    name: f.name,
    customerFacilityId: f.customerFacilityId,
    timeZone: f.timeZone,
    address: f.address,
    properties: f.properties,
  });
  const meterJson = (m: EnerKeyMeterTruth): Record<string, unknown> => ({
    id: m.id,
    facilityId: m.facilityId,
    name: m.name,
    quantityId: m.quantityId,
    unit: m.unit,
    meterType: m.meterType,
    enegiaId: m.enegiaId,
  });

  const valuesRequest = (
    req: SimRequest,
    maxRangeMs: number,
  ): { ms: EnerKeyMeterTruth[]; a: number; b: number; offsetMin: number; zulu: boolean } | SimResponse => {
    const ids = (req.query.get('meterIds') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (ids.length === 0) return problem(400, 'meterIds is required');
    if (ids.length > maxMeters) return problem(400, `At most ${maxMeters} meterIds per request`);
    const bad = ids.filter((s) => !/^\d+$/.test(s) || !meterById.has(Number(s)));
    if (bad.length > 0) return problem(400, `Unknown meterIds: ${bad.join(',')}`);
    const fs = req.query.get('from');
    const ts = req.query.get('to');
    if (!fs || !ts) return problem(400, 'from and to are required');
    const pf = parseIsoInstant(fs);
    const pt = parseIsoInstant(ts);
    if (!pf)
      return problem(
        400,
        `Invalid timestamp for from: ${fs} (use 2017-01-01T00:00:00Z or 2017-01-01T00:00:00+02:00)`,
      );
    if (!pt)
      return problem(
        400,
        `Invalid timestamp for to: ${ts} (use 2017-01-01T00:00:00Z or 2017-01-01T00:00:00+02:00)`,
      );
    if (pt.ms <= pf.ms) return problem(400, 'to must be after from');
    if (pt.ms - pf.ms > maxRangeMs)
      return problem(400, `Requested range exceeds ${Math.round(maxRangeMs / DAY_MS)} days`);
    return {
      ms: [...new Set(ids)].map((s) => meterById.get(Number(s)) as EnerKeyMeterTruth),
      a: pf.ms,
      b: pt.ms,
      offsetMin: pf.offsetMin,
      zulu: pf.zulu,
    };
  };

  /** The hourly and monthly values endpoints differ only in their range limit, resolution and series. */
  const valuesRoute = (
    path: string,
    endpoint: string,
    maxMs: number,
    resolution: string,
    series: (
      m: EnerKeyMeterTruth,
      a: number,
      b: number,
    ) => { start: number; value: number; estimated: boolean }[],
  ) => ({
    method: 'GET' as const,
    path,
    endpoint,
    handler: (req: SimRequest) => {
      const g = guard(req);
      if ('status' in g) return g;
      const v = valuesRequest(req, maxMs);
      if ('status' in v) return withHeaders(v, g.headers);
      const fmt = (ms: number): string => formatWithOffset(ms, v.offsetMin, { zulu: v.zulu });
      return json(
        200,
        {
          from: fmt(v.a),
          to: fmt(v.b),
          resolution,
          meters: v.ms.map((m) => ({
            meterId: m.id,
            quantityId: m.quantityId,
            unit: m.unit,
            values: applyRecordFaults(
              series(m, v.a, v.b).map((x) => ({
                timestamp: fmt(x.start),
                value: x.value,
                flag: x.estimated ? 'Estimated' : 'Measured',
              })),
              faults,
              req.endpoint,
              EK_CORRUPT,
            ),
          })),
        },
        g.headers,
      );
    },
  });

  const server = await startSimServer<EnerKeyFaults>({
    stats,
    faults,
    routes: [
      {
        method: 'GET',
        path: '/api/v1/quantities',
        endpoint: 'quantities',
        handler: (req) => {
          const g = guard(req);
          if ('status' in g) return g;
          return json(200, ENERKEY_QUANTITIES, g.headers);
        },
      },
      {
        method: 'GET',
        path: '/api/v1/facilities',
        endpoint: 'facilities.list',
        handler: (req) => {
          const g = guard(req);
          if ('status' in g) return g;
          const size = intParam(req.query, 'pageSize') ?? 50;
          if (!Number.isInteger(size) || size < 1 || size > 200)
            return withHeaders(problem(400, 'pageSize must be between 1 and 200'), g.headers);
          const tok = req.query.get('continuationToken');
          let offset = 0;
          if (tok !== null && tok !== '') {
            const o = decodeOffsetToken(tok, seed);
            if (o === null) return withHeaders(problem(400, 'Invalid continuationToken'), g.headers);
            offset = o;
          }
          let start = offset;
          if (offset > 0 && faults.take('duplicateAcrossPages', req.endpoint)) start = offset - 1;
          const items = facilities.slice(start, offset + size);
          const nextOffset = offset + size;
          let next: string | null =
            nextOffset < facilities.length ? encodeOffsetToken(nextOffset, seed) : null;
          if (next !== null && tok && faults.take('repeatedCursor', req.endpoint)) next = tok;
          return json(200, { items: items.map(facilityJson), continuationToken: next }, g.headers);
        },
      },
      {
        method: 'GET',
        path: '/api/v1/facilities/:id',
        endpoint: 'facilities.get',
        handler: (req) => {
          const g = guard(req);
          if ('status' in g) return g;
          const f = facilities.find((x) => String(x.id) === req.params.id);
          if (!f) return withHeaders(problem(404, `Facility ${req.params.id} not found`), g.headers);
          return json(200, facilityJson(f), g.headers);
        },
      },
      {
        method: 'GET',
        path: '/api/v1/meters',
        endpoint: 'meters.list',
        handler: (req) => {
          const g = guard(req);
          if ('status' in g) return g;
          const fp = req.query.get('facilityId');
          if (fp === null || fp === '') return json(200, meters.map(meterJson), g.headers);
          const ids = fp.split(',').map((s) => s.trim());
          if (ids.some((s) => !/^\d+$/.test(s)))
            return withHeaders(problem(400, `Invalid facilityId: ${fp}`), g.headers);
          const set = new Set(ids.map(Number));
          return json(200, meters.filter((m) => set.has(m.facilityId)).map(meterJson), g.headers);
        },
      },
      valuesRoute('/api/v1/values/hourly', 'values.hourly', maxHourlyMs, 'PT1H', (m, a, b) =>
        [...hourly(m, a, b)].filter((h) => !h.missing),
      ),
      valuesRoute('/api/v1/values/monthly', 'values.monthly', maxMonthlyMs, 'P1M', monthly),
    ],
  });

  return {
    ...simulatorHandle(server, stats, faults),
    truth: () => truth,
    remaining: (key) => budget - prune(key).length,
  };
}
