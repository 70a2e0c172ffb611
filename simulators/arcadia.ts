/**
 * Arcadia "Plug" intervals API simulator (the Arcadia Plug intervals API guide).
 *
 * Endpoints (base URL = returned `url`):
 *   POST  /oauth2/token                          form: grant_type=client_credentials, client_id, client_secret
 *                                                (client credentials may also come as HTTP Basic)
 *                                                → {access_token, expires_in, refresh_expires_in, token_type:"Bearer",
 *                                                   "not-before-policy", scope}
 *   GET   /plug/credentials?search=correlationId%3Dfoo&page=0&size=20
 *                                                → {credentials:[...], page:{number,size,totalElements,totalPages}}
 *   GET   /plug/meters?search=credentialIds%3Dcrd_1,crd_2&page=0&size=20
 *                                                → {meters:[...], page:{...}}
 *   GET   /plug/meters/{meterId}                 → one meter object (not in the guide; convenience)
 *   PATCH /plug/meters/{meterId}  {"isIntervalsProductActive": true}
 *                                                → {meters:[meter], page:{...}} with status INTERVALS_IN_PROGRESS
 *   GET   /plug/intervals/meters/{meterId}?startAt=&endAt=            raw readings
 *   GET   /plug/normalizedIntervals/meters/{meterId}?startAt=&endAt=  15-minute arrays
 *
 * Choices where the guide is silent (stable; connector authors rely on them):
 * - Every /plug/* request needs `Authorization: Bearer <token>` (401 {error:"invalid_token"} if missing,
 *   unknown or expired) and an `Arc-Version` header of the form YYYY-MM-DD (400 {error:"invalid_request"}
 *   without it). `X-Sandbox-Mode: true` switches to a small separate sandbox data set; 'false' or absent
 *   is production; any other value → 400.
 * - `search` is `field=value` (URL-encoded as field%3Dvalue); value may be a comma-separated list.
 *   Credentials: fields correlationId, id. Meters: credentialIds, correlationIds, ids, siteIds.
 *   Unknown field → 400 invalid_search.
 * - Pages are 0-based; size defaults to 20, max 100 (larger → 400). A page past the end is empty.
 *   Meters are listed newest first (createdAt descending).
 * - Activation: PATCH moves the meter to INTERVALS_IN_PROGRESS / INTERVALS_EXTRACTION_IN_PROGRESS.
 *   After `activationPolls` further reads of that meter (list or get), it becomes INTERVALS_SUCCESS /
 *   INTERVALS_EXTRACTION_SUCCESS. PATCH on an unknown meter or with a body other than
 *   {"isIntervalsProductActive": true} → 400 invalid_meter_activation. PATCH on an active meter is a no-op.
 * - Interval endpoints: unknown meter → 404, meter not yet INTERVALS_SUCCESS → 400, both with
 *   {error:"invalid_intervals_request", error_description:"Invalid meterId or inactive meter"}.
 *   startAt/endAt are ISO 8601 instants with Z or an offset, [startAt, endAt) half-open; they are clipped to
 *   the data held. endAt - startAt > maxRangeDays (default 31) → 400 invalid_intervals_request.
 *   Without startAt and endAt: the last maxRangeDays days held; with only one of them, maxRangeDays from it.
 * - Raw readings: 15-minute meters give 15-minute readings, 60-minute meters hourly readings
 *   (sourceIntervalDurationMinutes says which). `kw` = average demand over the reading (kwh / hours).
 *   Solar meters have an extra "export" reading for every interval. Gaps are simply absent readings.
 * - Normalized: one element in `readings` whose arrays hold one value per 15 minutes from `startAt`;
 *   `endAt` is the exclusive end (startAt + n × 15 min). Gaps are null in importKwh/exportKwh/netKwh.
 *   Meters without solar have exportKwh 0. netKwh = importKwh - exportKwh. 60-minute source data is split
 *   evenly into its 4 quarters.
 * - earliestIntervalAt / latestIntervalAt are the start instants of the first and last reading held.
 * - Meter objects carry both `intervalsLatestDateTime` (list example) and `latestIntervalAt` (activation
 *   example) — the guide shows each in one place; both are null until INTERVALS_SUCCESS.
 *   `isIntervalsProductActive` is a JSON boolean (the guide's list example shows the string "false";
 *   set `docStringQuirks: true` to emit the strings "false"/"true"/"null" exactly as printed there).
 * - Timestamps are rendered like the guide: 2023-08-29T07:00:00.000+00:00.
 * - Errors: {error, error_description}.
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
import { TokenStore, clientCredentials } from './common/tokens.js';
import { DayCache, roundTo } from './common/load.js';
import type { DaySeries, MeterModel } from './common/load.js';
import { hexId, pick, randInt, randRange, rngFor } from './common/prng.js';
import { BUILDINGS, BUILDING_LABEL, buildingName, placeFor, postalFor, streetFor } from './common/places.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, QUARTER_MS } from '../schemas/time.js';
import {
  addDays,
  formatWithOffset,
  isYmd,
  localDate,
  localDatesCovering,
  parseIsoInstant,
  parseYmd,
} from './common/time.js';

// ---------------------------------------------------------------------------------------------
// Options

export interface ArcadiaFaults extends CommonFaults {
  /** Every token issued so far answers 401 from the next request on (token expiry mid-run). */
  expireTokens?: boolean;
  /** Meter list pages after the first repeat the previous page's last meter first. */
  duplicateAcrossPages?: FaultSwitch;
  /** After a first meter-list page is served, a new meter is inserted at the head (offsets shift). */
  shiftDuringPaging?: FaultSwitch;
}

export interface ArcadiaOptions {
  /** Seed of everything generated (default 1). */
  seed?: number;
  /** Number of credentials (utility logins), default 5; correlationIds are customer-001, ... */
  credentials?: number;
  /** Number of sites, default 20. */
  sites?: number;
  /** Number of meters, default 200. */
  meters?: number;
  /** First day of data, UTC midnight 'YYYY-MM-DD' (default '2024-01-01'). */
  from?: string;
  /** Days of data (default 365). */
  days?: number;
  clientId?: string;
  clientSecret?: string;
  /** Access token lifetime in seconds (default 3600; the guide's example shows 300). */
  tokenLifetimeSeconds?: number;
  /** Reads of an activated meter before it reports INTERVALS_SUCCESS (default 2). */
  activationPolls?: number;
  /** Start with every meter already INTERVALS_SUCCESS (default false). */
  intervalsActive?: boolean;
  /** Max range of one interval request in days (default 31). */
  maxRangeDays?: number;
  /** Max page size (default 100). */
  maxPageSize?: number;
  /** Time zones meters are spread over (default New York, Chicago, Los Angeles). */
  timeZones?: string[];
  /** Share of meters with solar export (default 0.3). */
  solarShare?: number;
  /** Share of meters whose source data is hourly (default 0.25). */
  hourlyShare?: number;
  /** Probability per meter-day of a gap (default 0.01). */
  gapRate?: number;
  /** Emit the guide's literal string values ("false", "null") in meter objects (default false). */
  docStringQuirks?: boolean;
  /** Clock for token expiry (default Date.now). */
  now?: () => number;
  faults?: ArcadiaFaults;
}

// ---------------------------------------------------------------------------------------------
// Ground truth types

export interface ArcadiaProviderTruth {
  country: string;
  id: string;
  name: string;
  supportsCredentialValidation: boolean;
}

export interface ArcadiaCredentialTruth {
  id: string;
  correlationId: string;
  provider: ArcadiaProviderTruth;
  username: string;
  createdAt: string;
}

export interface ArcadiaSiteTruth {
  id: string;
  siteName: string;
  siteCode: string;
  siteNumber: string;
  facilityType: string;
  region: string;
  subRegion: string;
  city: string;
  state: string;
  country: string;
  postalCode: string;
  streetLine1: string;
  timeZone: string;
  credentialId: string;
  createdAt: string;
}

export interface ArcadiaMeterTruth {
  id: string;
  siteId: string;
  credentialId: string;
  correlationId: string;
  accountId: string;
  accountNumber: string;
  meterNumber: string;
  /** Always 'kWh' (electric meters only). */
  unit: 'kWh';
  type: 'electricity';
  timeZone: string;
  hasSolar: boolean;
  sourceIntervalMinutes: 15 | 60;
  /** First instant with data (inclusive). */
  dataStart: number;
  /** End of data (exclusive). */
  dataEnd: number;
  createdAt: string;
  model: MeterModel;
}

export interface ArcadiaInterval {
  /** Start instant (ms). */
  start: number;
  end: number;
  importKwh: number;
  exportKwh: number;
  netKwh: number;
  /** The provider has no value for this quarter-hour (absent in raw, null in normalized). */
  missing: boolean;
}

export interface ArcadiaTruth {
  credentials: ArcadiaCredentialTruth[];
  sites: ArcadiaSiteTruth[];
  meters: ArcadiaMeterTruth[];
  meter(id: string): ArcadiaMeterTruth | undefined;
  /** 15-minute intervals of a meter in [from, to) (clipped to its data), generated lazily. */
  intervals(meterId: string, from?: number, to?: number): Generator<ArcadiaInterval>;
  /** One local day of a meter (92/96/100 quarter-hours). */
  day(meterId: string, date: string): DaySeries;
}

export interface ArcadiaSimulator extends SimulatorHandle<ArcadiaFaults> {
  /** Expire every access token issued so far. */
  expireTokens(): void;
  /** Production data set, or the sandbox one. */
  truth(opts?: { sandbox?: boolean }): ArcadiaTruth;
  options: Readonly<Required<Omit<ArcadiaOptions, 'faults' | 'now'>>>;
}

// ---------------------------------------------------------------------------------------------
// World generation

const PROVIDERS: Record<string, Array<{ name: string; country: string }>> = {
  'America/New_York': [
    { name: 'Consolidated Edison', country: 'US' },
    { name: 'National Grid', country: 'US' },
    { name: 'PECO Energy', country: 'US' },
  ],
  'America/Chicago': [
    { name: 'Commonwealth Edison', country: 'US' },
    { name: 'Oncor', country: 'US' },
  ],
  'America/Los_Angeles': [
    { name: 'Southern California Edison', country: 'US' },
    { name: 'Pacific Gas and Electric', country: 'US' },
  ],
};

const TARIFFS = [
  'SC-9 General Large',
  'GS-2 General Service',
  'TOU-GS-3',
  'B-19 Medium General Demand',
  'Rate 6 Commercial',
];

interface MeterState {
  truth: ArcadiaMeterTruth;
  status: 'NOT_REQUESTED' | 'IN_PROGRESS' | 'SUCCESS';
  pollsSinceActivation: number;
  lastModifiedAt: string;
}

class World {
  readonly credentials: ArcadiaCredentialTruth[] = [];
  readonly sites: ArcadiaSiteTruth[] = [];
  /** Listing order: newest first. */
  readonly meterOrder: MeterState[] = [];
  readonly meterById = new Map<string, MeterState>();
  readonly cache: DayCache;
  readonly dataStart: number;
  readonly dataEnd: number;
  private inserted = 0;

  constructor(
    readonly seed: number,
    readonly o: Required<Omit<ArcadiaOptions, 'faults' | 'now'>>,
    counts: { credentials: number; sites: number; meters: number },
    correlationPrefix: string,
  ) {
    this.cache = new DayCache(seed, 2048);
    const { year, month, day } = parseYmd(o.from);
    this.dataStart = Date.UTC(year, month - 1, day);
    this.dataEnd = this.dataStart + o.days * DAY_MS;
    const createdBase = this.dataStart - 30 * DAY_MS;

    for (let c = 0; c < counts.credentials; c++) {
      const r = rngFor(seed, 'credential', c);
      const tz = o.timeZones[c % o.timeZones.length] as string;
      const prov = pick(r, PROVIDERS[tz] ?? [{ name: 'Springfield Electric', country: 'US' }]);
      this.credentials.push({
        id: `crd_${hexId(r, 12)}`,
        correlationId: `${correlationPrefix}${String(c + 1).padStart(3, '0')}`,
        provider: {
          country: prov.country,
          id: hexId(rngFor(seed, 'provider', prov.name), 32),
          name: prov.name,
          supportsCredentialValidation: true,
        },
        username: `facilities${c + 1}@customer${c + 1}.example.com`,
        createdAt: iso(createdBase + c * HOUR_MS),
      });
    }
    for (let s = 0; s < counts.sites; s++) {
      const r = rngFor(seed, 'site', s);
      const cred = this.credentials[s % this.credentials.length] as ArcadiaCredentialTruth;
      const tz = o.timeZones[(s % this.credentials.length) % o.timeZones.length] as string;
      const place = placeFor(r, tz);
      const building = pick(r, BUILDINGS);
      this.sites.push({
        id: `ste_${hexId(r, 12)}`,
        siteName: buildingName(r, building, place.city),
        siteCode: `S${String(s + 1).padStart(4, '0')}`,
        siteNumber: String(100000 + randInt(r, 0, 899999)),
        facilityType: BUILDING_LABEL[building],
        region: place.state,
        subRegion: place.city,
        city: place.city,
        state: place.state,
        country: place.country,
        postalCode: postalFor(r, place),
        streetLine1: streetFor(r, place),
        timeZone: tz,
        credentialId: cred.id,
        createdAt: iso(createdBase + s * MINUTE_MS),
      });
    }
    for (let i = 0; i < counts.meters; i++)
      this.addMeter(i, this.sites[i % this.sites.length] as ArcadiaSiteTruth, createdBase + i * 1000, false);
  }

  private addMeter(index: number, site: ArcadiaSiteTruth, createdMs: number, atHead: boolean): MeterState {
    const r = rngFor(this.seed, 'meter', index);
    const cred = this.credentials.find((c) => c.id === site.credentialId) as ArcadiaCredentialTruth;
    const building = (Object.entries(BUILDING_LABEL).find(([, v]) => v === site.facilityType)?.[0] ??
      'office') as MeterModel['building'];
    const place = placeFor(rngFor(this.seed, 'site-place', site.id), site.timeZone);
    const hasSolar = r() < this.o.solarShare;
    const size = randRange(r, 15, 400);
    const hourly = r() < this.o.hourlyShare;
    const id = `mtr_${hexId(r, 12)}`;
    const model: MeterModel = {
      key: id,
      commodity: 'electricity',
      unit: 'kWh',
      decimals: 3,
      timeZone: site.timeZone,
      building,
      size,
      latitude: place.latitude,
      longitude: place.longitude,
      solarKwp: hasSolar ? Math.round(size * randRange(r, 0.4, 1.5)) : 0,
      resolutionMinutes: hourly ? 60 : 15,
      gapRate: this.o.gapRate,
      estimateRate: 0,
    };
    // ~10% of meters were connected later than the start of the data set.
    const lateDays = r() < 0.1 ? randInt(r, 10, Math.max(10, Math.floor(this.o.days / 3))) : 0;
    const truth: ArcadiaMeterTruth = {
      id,
      siteId: site.id,
      credentialId: cred.id,
      correlationId: cred.correlationId,
      accountId: `acc_${hexId(rngFor(this.seed, 'account', site.id), 12)}`,
      accountNumber: String(randInt(rngFor(this.seed, 'account', site.id), 1000000000, 9999999999)),
      meterNumber: String(randInt(r, 10000, 99999999)),
      unit: 'kWh',
      type: 'electricity',
      timeZone: site.timeZone,
      hasSolar,
      sourceIntervalMinutes: hourly ? 60 : 15,
      dataStart: Math.min(this.dataStart + lateDays * DAY_MS, this.dataEnd - DAY_MS),
      dataEnd: this.dataEnd,
      createdAt: iso(createdMs),
      model,
    };
    const st: MeterState = {
      truth,
      status: this.o.intervalsActive ? 'SUCCESS' : 'NOT_REQUESTED',
      pollsSinceActivation: 0,
      lastModifiedAt: truth.createdAt,
    };
    if (atHead) this.meterOrder.unshift(st);
    else this.meterOrder.push(st);
    this.meterById.set(id, st);
    return st;
  }

  /** Add a new meter at the head of the listing (pages shift by one). */
  insertMeter(credentialId: string | undefined, nowMs: number): MeterState {
    const site =
      this.sites.find((s) => credentialId === undefined || s.credentialId === credentialId) ?? this.sites[0];
    if (!site) throw new Error('no sites');
    this.inserted++;
    const st = this.addMeter(100000 + this.inserted, site, Math.max(nowMs, this.dataEnd), true);
    return st;
  }

  truth(): ArcadiaTruth {
    const meters = (): ArcadiaMeterTruth[] => this.meterOrder.map((m) => m.truth);
    const get = (id: string): ArcadiaMeterTruth | undefined => this.meterById.get(id)?.truth;
    const cache = this.cache;
    return {
      credentials: this.credentials,
      sites: this.sites,
      get meters() {
        return meters();
      },
      meter: get,
      intervals: (meterId, from, to) => {
        const m = get(meterId);
        if (!m) throw new Error(`unknown meter ${meterId}`);
        return intervalsOf(cache, m, from ?? m.dataStart, to ?? m.dataEnd);
      },
      day: (meterId, date) => {
        const m = get(meterId);
        if (!m) throw new Error(`unknown meter ${meterId}`);
        return cache.get(m.model, date);
      },
    };
  }
}

function iso(ms: number): string {
  return formatWithOffset(ms, 0, { millis: true, zulu: true });
}

/** Arcadia style: 2023-08-29T07:00:00.000+00:00 */
function arcTs(ms: number): string {
  return formatWithOffset(ms, 0, { millis: true });
}

function* intervalsOf(
  cache: DayCache,
  m: ArcadiaMeterTruth,
  from: number,
  to: number,
): Generator<ArcadiaInterval> {
  const a = Math.max(from, m.dataStart);
  const b = Math.min(to, m.dataEnd);
  for (const date of localDatesCovering(m.timeZone, a, b)) {
    const d = cache.get(m.model, date);
    for (let i = 0; i < d.n; i++) {
      const start = d.start + i * QUARTER_MS;
      if (start < a || start >= b) continue;
      const imp = d.imp[i] as number;
      const exp = d.exp ? (d.exp[i] as number) : 0;
      yield {
        start,
        end: start + QUARTER_MS,
        importKwh: imp,
        exportKwh: exp,
        netKwh: roundTo(imp - exp, 3),
        missing: d.missing[i] === 1,
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Server

/** invalidRecords variants for raw readings. */
const ARC_CORRUPT: Array<(r: JsonRecord) => JsonRecord> = [
  (r) => ({ ...r, kwh: 'n/a' }),
  (r) => ({ ...r, endAt: r.startAt, startAt: r.endAt }), // end before start
  (r) => ({ ...r, kwh: -Math.abs(Number(r.kwh)) - 1 }),
  (r) => ({ ...r, startAt: String(r.startAt).replace(/\.000\+00:00$/, '') }), // no offset
  (r) => {
    const { direction: _d, ...rest } = r;
    return rest;
  },
];

const STATUS: Record<MeterState['status'], { status: string; statusDetail: string }> = {
  NOT_REQUESTED: { status: 'INTERVALS_NOT_REQUESTED', statusDetail: 'INTERVAL_EXTRACTION_NOT_REQUESTED' },
  IN_PROGRESS: { status: 'INTERVALS_IN_PROGRESS', statusDetail: 'INTERVALS_EXTRACTION_IN_PROGRESS' },
  SUCCESS: { status: 'INTERVALS_SUCCESS', statusDetail: 'INTERVALS_EXTRACTION_SUCCESS' },
};

const err = (
  status: number,
  error: string,
  description: string,
  headers: Record<string, string> = {},
): SimResponse => json(status, { error, error_description: description }, headers);

function pageOf<T>(
  items: T[],
  page: number,
  size: number,
): { slice: T[]; page: { number: number; size: number; totalElements: number; totalPages: number } } {
  const totalPages = Math.ceil(items.length / size);
  return {
    slice: items.slice(page * size, page * size + size),
    page: { number: page, size, totalElements: items.length, totalPages },
  };
}

function parseSearch(
  q: URLSearchParams,
  allowed: string[],
): { field: string; values: string[] } | null | 'invalid' {
  const s = q.get('search');
  if (s === null || s === '') return null;
  const eq = s.indexOf('=');
  if (eq <= 0) return 'invalid';
  const field = s.slice(0, eq);
  if (!allowed.includes(field)) return 'invalid';
  return {
    field,
    values: s
      .slice(eq + 1)
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== ''),
  };
}

export async function startArcadiaSimulator(opts: ArcadiaOptions = {}): Promise<ArcadiaSimulator> {
  const o: Required<Omit<ArcadiaOptions, 'faults' | 'now'>> = {
    seed: opts.seed ?? 1,
    credentials: opts.credentials ?? 5,
    sites: opts.sites ?? 20,
    meters: opts.meters ?? 200,
    from: opts.from ?? '2024-01-01',
    days: opts.days ?? 365,
    clientId: opts.clientId ?? 'arc-client-id',
    clientSecret: opts.clientSecret ?? 'arc-client-secret',
    tokenLifetimeSeconds: opts.tokenLifetimeSeconds ?? 3600,
    activationPolls: opts.activationPolls ?? 2,
    intervalsActive: opts.intervalsActive ?? false,
    maxRangeDays: opts.maxRangeDays ?? 31,
    maxPageSize: opts.maxPageSize ?? 100,
    timeZones: opts.timeZones ?? ['America/New_York', 'America/Chicago', 'America/Los_Angeles'],
    solarShare: opts.solarShare ?? 0.3,
    hourlyShare: opts.hourlyShare ?? 0.25,
    gapRate: opts.gapRate ?? 0.01,
    docStringQuirks: opts.docStringQuirks ?? false,
  };
  if (!isYmd(o.from)) throw new Error(`from must be YYYY-MM-DD: ${o.from}`);
  const now = opts.now ?? Date.now;
  const stats = new StatsCounter();
  const faults = new FaultController<ArcadiaFaults>(opts.faults, stats);
  const tokens = new TokenStore(o.seed, now, '');
  const prod = new World(
    o.seed,
    o,
    { credentials: o.credentials, sites: o.sites, meters: o.meters },
    'customer-',
  );
  const sandbox = new World(o.seed ^ 0x5a5a5a5a, o, { credentials: 1, sites: 2, meters: 4 }, 'sandbox-');

  const meterJson = (st: MeterState, w: World): Record<string, unknown> => {
    const t = st.truth;
    const site = w.sites.find((s) => s.id === t.siteId) as ArcadiaSiteTruth;
    const cred = w.credentials.find((c) => c.id === t.credentialId) as ArcadiaCredentialTruth;
    const r = rngFor(w.seed, 'meter-json', t.id);
    const address = (s: ArcadiaSiteTruth): Record<string, unknown> => ({
      addressType: 'FULL',
      city: s.city,
      country: s.country,
      fullAddress: `${s.streetLine1}, ${s.city}, ${s.state} ${s.postalCode}`,
      postalCode: s.postalCode,
      recipient: s.siteName,
      state: s.state,
      streetLine1: s.streetLine1,
      streetLine2: '',
    });
    const success = st.status === 'SUCCESS';
    const latest = success ? arcTs(t.dataEnd - t.sourceIntervalMinutes * MINUTE_MS) : null;
    const q = o.docStringQuirks;
    const siteMeters = w.meterOrder.filter((m) => m.truth.siteId === site.id).map((m) => m.truth.id);
    return {
      accounts: [{ accountNumber: t.accountNumber, id: t.accountId }],
      bulbType: 'ELECTRIC',
      createdAt: t.createdAt,
      createdBy: 'arc-data-discovery',
      currentTariff: { provider: cred.provider, tariffName: pick(r, TARIFFS) },
      customData: {},
      generalDescriptionAsPrinted: `Electric service ${t.meterNumber}`,
      id: t.id,
      intervalsLatestDateTime: latest ?? (q ? 'null' : null),
      latestIntervalAt: latest ?? (q ? 'null' : null),
      isIntervalsProductActive: q ? String(st.status !== 'NOT_REQUESTED') : st.status !== 'NOT_REQUESTED',
      isCustomerActionRequired: false,
      lastModifiedAt: st.lastModifiedAt,
      lastModifiedBy: 'arc-data-discovery',
      latestStatementDate: addDays(localDate('UTC', t.dataEnd), -randInt(r, 3, 20)),
      meterConstantMultiplier: 1,
      meterNumber: t.meterNumber,
      nextExpectedPostDate: addDays(localDate('UTC', t.dataEnd), randInt(r, 5, 25)),
      normalizedMeterNumber: t.meterNumber,
      normalizedPointOfDeliveryNumber: `POD${t.meterNumber}`,
      pipeType: 'ELECTRIC',
      pointOfDeliveryNumber: `POD-${t.meterNumber}`,
      previousMeterConstantMultiplier: 1,
      previousMeterNumber: '',
      provider: cred.provider,
      serviceAddress: address(site),
      serviceType: 'ELECTRIC',
      serviceTypeClassification: 'CORE',
      ...STATUS[st.status],
      site: {
        createdAt: site.createdAt,
        createdBy: 'arc-data-discovery',
        facilityType: site.facilityType,
        id: site.id,
        lastModifiedAt: site.createdAt,
        lastModifiedBy: 'arc-data-discovery',
        meterIds: siteMeters,
        region: site.region,
        serviceAddress: address(site),
        siteCode: site.siteCode,
        siteName: site.siteName,
        siteNumber: site.siteNumber,
        subRegion: site.subRegion,
      },
    };
  };

  const credentialJson = (c: ArcadiaCredentialTruth, w: World): Record<string, unknown> => ({
    correlationId: c.correlationId,
    createdAt: c.createdAt,
    createdBy: 'arc-connect',
    id: c.id,
    isActive: true,
    isCustomerActionRequired: false,
    isThirdPartyPortal: false,
    lastModifiedAt: c.createdAt,
    lastModifiedBy: 'arc-connect',
    nextScheduledAccountRunAt: arcTs(w.dataEnd + 6 * HOUR_MS),
    provider: c.provider,
    status: 'CONNECTION_SUCCESS',
    statusDetail: 'LOGIN_AND_DATA_DISCOVERY_SUCCESS',
    totalAccounts: new Set(
      w.meterOrder.filter((m) => m.truth.credentialId === c.id).map((m) => m.truth.accountId),
    ).size,
    username: c.username,
    username2: '',
    username3: '',
    username4: '',
  });

  const observe = (st: MeterState): void => {
    if (st.status !== 'IN_PROGRESS') return;
    st.pollsSinceActivation++;
    if (st.pollsSinceActivation >= o.activationPolls) {
      st.status = 'SUCCESS';
      st.lastModifiedAt = iso(now());
    }
  };

  /** Auth + headers for /plug/*; returns the world or an error response. */
  const guard = (req: SimRequest): World | SimResponse => {
    const chk = tokens.checkBearer(header(req, 'authorization'));
    if (!chk.ok) {
      const d =
        chk.reason === 'expired'
          ? 'Access token expired'
          : chk.reason === 'missing'
            ? 'Missing bearer token'
            : 'Invalid access token';
      return err(401, 'invalid_token', d, {
        'www-authenticate': `Bearer error="invalid_token", error_description="${d}"`,
      });
    }
    const v = header(req, 'arc-version');
    if (!v) return err(400, 'invalid_request', 'Missing required header: Arc-Version');
    if (!isYmd(v)) return err(400, 'invalid_request', `Unsupported Arc-Version: ${v}`);
    const sb = header(req, 'x-sandbox-mode');
    if (sb === undefined || sb === 'false') return prod;
    if (sb === 'true') return sandbox;
    return err(400, 'invalid_request', `Invalid X-Sandbox-Mode header: ${sb}`);
  };

  const paging = (req: SimRequest): { page: number; size: number } | SimResponse => {
    const page = intParam(req.query, 'page') ?? 0;
    const size = intParam(req.query, 'size') ?? 20;
    if (!Number.isInteger(page) || page < 0)
      return err(400, 'invalid_request', 'page must be a non-negative integer');
    if (!Number.isInteger(size) || size < 1 || size > o.maxPageSize)
      return err(400, 'invalid_request', `size must be between 1 and ${o.maxPageSize}`);
    return { page, size };
  };

  const range = (req: SimRequest, m: ArcadiaMeterTruth): { a: number; b: number } | SimResponse => {
    const sa = req.query.get('startAt');
    const ea = req.query.get('endAt');
    const maxMs = o.maxRangeDays * DAY_MS;
    const pa = sa ? parseIsoInstant(sa) : null;
    const pb = ea ? parseIsoInstant(ea) : null;
    if (sa && !pa)
      return err(400, 'invalid_intervals_request', `startAt is not an ISO 8601 instant with offset: ${sa}`);
    if (ea && !pb)
      return err(400, 'invalid_intervals_request', `endAt is not an ISO 8601 instant with offset: ${ea}`);
    let a: number;
    let b: number;
    if (pa && pb) {
      a = pa.ms;
      b = pb.ms;
    } else if (pa) {
      a = pa.ms;
      b = Math.min(a + maxMs, m.dataEnd);
    } else if (pb) {
      b = pb.ms;
      a = b - maxMs;
    } else {
      b = m.dataEnd;
      a = Math.max(m.dataStart, b - maxMs);
    }
    if (b <= a) return err(400, 'invalid_intervals_request', 'endAt must be after startAt');
    if (b - a > maxMs)
      return err(
        400,
        'invalid_intervals_request',
        `Requested range exceeds the maximum of ${o.maxRangeDays} days`,
      );
    // Align to whole quarter-hours (source intervals are aligned).
    a = Math.floor(a / QUARTER_MS) * QUARTER_MS;
    b = Math.ceil(b / QUARTER_MS) * QUARTER_MS;
    return { a: Math.max(a, m.dataStart), b: Math.min(b, m.dataEnd) };
  };

  const intervalMeter = (w: World, id: string): MeterState | SimResponse => {
    const st = w.meterById.get(id);
    if (!st) return err(404, 'invalid_intervals_request', 'Invalid meterId or inactive meter');
    if (st.status !== 'SUCCESS')
      return err(400, 'invalid_intervals_request', 'Invalid meterId or inactive meter');
    return st;
  };

  /** What both interval endpoints check first: the token, the meter's state, the range. */
  const intervalRequest = (
    req: SimRequest,
  ): { w: World; t: ArcadiaMeterTruth; rg: { a: number; b: number } } | SimResponse => {
    const w = guard(req);
    if (!(w instanceof World)) return w;
    const st = intervalMeter(w, req.params.id ?? '');
    if (!('truth' in st)) return st;
    const rg = range(req, st.truth);
    if ('status' in rg) return rg;
    return { w, t: st.truth, rg };
  };

  const header0 = (w: World, t: ArcadiaMeterTruth): Record<string, unknown> => {
    const cred = w.credentials.find((c) => c.id === t.credentialId) as ArcadiaCredentialTruth;
    return {
      correlationIds: [cred.correlationId],
      credentialIds: [cred.id],
      meterId: t.id,
      meterNumber: Number(t.meterNumber),
      intervalsCreatedAt: arcTs(t.dataStart + 2 * HOUR_MS),
      intervalsUpdatedAt: arcTs(t.dataEnd + 2 * HOUR_MS),
      earliestIntervalAt: arcTs(t.dataStart),
      latestIntervalAt: arcTs(t.dataEnd - t.sourceIntervalMinutes * MINUTE_MS),
      providerName: cred.provider.name,
      providerId: cred.provider.id,
      serviceType: 'ELECTRIC',
      electricMeterMultiplier: 1,
      readType: 'INTERVAL',
      localTimezone: t.timeZone,
    };
  };

  const server = await startSimServer<ArcadiaFaults>({
    stats,
    faults,
    routes: [
      {
        method: 'POST',
        path: '/oauth2/token',
        endpoint: 'token',
        handler: (req) => {
          const form = new URLSearchParams(req.body.toString('utf8'));
          const { id, secret } = clientCredentials(header(req, 'authorization'), form);
          const gt = form.get('grant_type');
          if (!gt) return err(400, 'invalid_request', 'Missing form parameter: grant_type');
          if (gt !== 'client_credentials')
            return err(400, 'unsupported_grant_type', `Unsupported grant_type: ${gt}`);
          if (id !== o.clientId || secret !== o.clientSecret)
            return err(401, 'invalid_client', 'Invalid client credentials');
          const t = tokens.issue(id, o.tokenLifetimeSeconds);
          return json(
            200,
            {
              access_token: t.token,
              expires_in: o.tokenLifetimeSeconds,
              refresh_expires_in: 0,
              token_type: 'Bearer',
              'not-before-policy': 0,
              scope: 'profile email',
            },
            { 'cache-control': 'no-store' },
          );
        },
      },
      {
        method: 'GET',
        path: '/plug/credentials',
        endpoint: 'credentials.list',
        handler: (req) => {
          const w = guard(req);
          if (!(w instanceof World)) return w;
          const p = paging(req);
          if ('status' in p) return p;
          const s = parseSearch(req.query, ['correlationId', 'id']);
          if (s === 'invalid')
            return err(400, 'invalid_search', `Unsupported search: ${req.query.get('search')}`);
          const items = w.credentials.filter(
            (c) => !s || s.values.includes(s.field === 'id' ? c.id : c.correlationId),
          );
          const pg = pageOf(items, p.page, p.size);
          return json(200, { credentials: pg.slice.map((c) => credentialJson(c, w)), page: pg.page });
        },
      },
      {
        method: 'GET',
        path: '/plug/meters',
        endpoint: 'meters.list',
        handler: (req) => {
          const w = guard(req);
          if (!(w instanceof World)) return w;
          const p = paging(req);
          if ('status' in p) return p;
          const s = parseSearch(req.query, ['credentialIds', 'correlationIds', 'ids', 'siteIds']);
          if (s === 'invalid')
            return err(400, 'invalid_search', `Unsupported search: ${req.query.get('search')}`);
          const match = (st: MeterState): boolean => {
            if (!s) return true;
            const t = st.truth;
            const v =
              s.field === 'credentialIds'
                ? t.credentialId
                : s.field === 'correlationIds'
                  ? t.correlationId
                  : s.field === 'ids'
                    ? t.id
                    : t.siteId;
            return s.values.includes(v);
          };
          const all = w.meterOrder.filter(match);
          const pg = pageOf(all, p.page, p.size);
          let slice = pg.slice;
          if (p.page > 0 && slice.length > 0 && faults.take('duplicateAcrossPages', req.endpoint)) {
            const prev = all[p.page * p.size - 1];
            if (prev) slice = [prev, ...slice];
          }
          for (const st of slice) observe(st);
          const body = json(200, { meters: slice.map((st) => meterJson(st, w)), page: pg.page });
          if (p.page === 0 && faults.take('shiftDuringPaging', req.endpoint)) {
            w.insertMeter(s?.field === 'credentialIds' ? s.values[0] : all[0]?.truth.credentialId, now());
          }
          return body;
        },
      },
      {
        method: 'GET',
        path: '/plug/meters/:id',
        endpoint: 'meters.get',
        handler: (req) => {
          const w = guard(req);
          if (!(w instanceof World)) return w;
          const st = w.meterById.get(req.params.id ?? '');
          if (!st) return err(404, 'not_found', 'Meter not found');
          observe(st);
          return json(200, meterJson(st, w));
        },
      },
      {
        method: 'PATCH',
        path: '/plug/meters/:id',
        endpoint: 'meters.activate',
        handler: (req) => {
          const w = guard(req);
          if (!(w instanceof World)) return w;
          const st = w.meterById.get(req.params.id ?? '');
          let body: unknown;
          try {
            body = JSON.parse(req.body.toString('utf8'));
          } catch {
            body = undefined;
          }
          const ok =
            typeof body === 'object' &&
            body !== null &&
            (body as Record<string, unknown>).isIntervalsProductActive === true;
          if (!st || !ok)
            return err(
              400,
              'invalid_meter_activation',
              'Invalid meterId or meter not in appropriate state for activation',
            );
          if (st.status === 'NOT_REQUESTED') {
            st.status = 'IN_PROGRESS';
            st.pollsSinceActivation = 0;
            st.lastModifiedAt = iso(now());
          }
          return json(200, {
            meters: [meterJson(st, w)],
            page: { number: 0, size: 1, totalElements: 1, totalPages: 1 },
          });
        },
      },
      {
        method: 'GET',
        path: '/plug/intervals/meters/:id',
        endpoint: 'intervals',
        handler: (req) => {
          const c = intervalRequest(req);
          if ('status' in c) return c;
          const { w, t, rg } = c;
          const readings: Array<Record<string, unknown>> = [];
          const step = t.sourceIntervalMinutes * MINUTE_MS;
          const hours = step / HOUR_MS;
          let acc: { start: number; imp: number; exp: number; n: number; missing: boolean } | null = null;
          const flush = (): void => {
            if (!acc) return;
            if (!acc.missing) {
              const imp = roundTo(acc.imp, 3);
              readings.push({
                startAt: arcTs(acc.start),
                endAt: arcTs(acc.start + step),
                direction: 'import',
                kwh: imp,
                kw: roundTo(imp / hours, 3),
              });
              if (t.hasSolar) {
                const exp = roundTo(acc.exp, 3);
                readings.push({
                  startAt: arcTs(acc.start),
                  endAt: arcTs(acc.start + step),
                  direction: 'export',
                  kwh: exp,
                  kw: roundTo(exp / hours, 3),
                });
              }
            }
            acc = null;
          };
          // Raw readings are whole source intervals: widen the range to source boundaries.
          const a = Math.floor(rg.a / step) * step;
          const b = Math.ceil(rg.b / step) * step;
          for (const iv of intervalsOf(w.cache, t, a, b)) {
            const slot = Math.floor(iv.start / step) * step;
            if (acc && acc.start !== slot) flush();
            acc ??= { start: slot, imp: 0, exp: 0, n: 0, missing: false };
            acc.imp += iv.importKwh;
            acc.exp += iv.exportKwh;
            acc.n++;
            acc.missing ||= iv.missing;
          }
          flush();
          return json(200, {
            ...header0(w, t),
            readings: applyRecordFaults(readings, faults, req.endpoint, ARC_CORRUPT),
          });
        },
      },
      {
        method: 'GET',
        path: '/plug/normalizedIntervals/meters/:id',
        endpoint: 'normalizedIntervals',
        handler: (req) => {
          const c = intervalRequest(req);
          if ('status' in c) return c;
          const { w, t, rg } = c;
          const mult: number[] = [];
          const imp: Array<number | null> = [];
          const exp: Array<number | null> = [];
          const net: Array<number | null> = [];
          for (const iv of intervalsOf(w.cache, t, rg.a, rg.b)) {
            mult.push(1);
            imp.push(iv.missing ? null : iv.importKwh);
            exp.push(iv.missing ? null : iv.exportKwh);
            net.push(iv.missing ? null : iv.netKwh);
          }
          const inv = faults.take('invalidRecords', req.endpoint);
          if (inv) {
            // Arrays hold numbers: the invalid variants are strings and negative values.
            const every = 'every' in inv && typeof inv.every === 'number' && inv.every > 0 ? inv.every : 10;
            for (let i = every - 1, k = 0; i < imp.length; i += every, k++) {
              (imp as unknown[])[i] = k % 2 === 0 ? 'NaN' : -Math.abs(imp[i] ?? 1) - 1;
            }
          }
          return json(200, {
            ...header0(w, t),
            intervalDurationMinutes: 15,
            sourceIntervalDurationMinutes: [t.sourceIntervalMinutes],
            startAt: arcTs(rg.a),
            endAt: arcTs(rg.a + imp.length * QUARTER_MS),
            readings: [{ electricMeterMultiplier: mult, importKwh: imp, exportKwh: exp, netKwh: net }],
          });
        },
      },
    ],
  });

  return {
    ...simulatorHandle(server, stats, faults),
    setFaults: (f) => {
      faults.set(f);
      if (f.expireTokens) {
        tokens.expireAll();
        faults.set({ ...f, expireTokens: false });
      }
    },
    expireTokens: () => tokens.expireAll(),
    truth: (t) => (t?.sandbox ? sandbox.truth() : prod.truth()),
    options: o,
  };
}
