/**
 * Synthetic Arcadia interval data for stream tests: deterministic quarter-hour values per meter,
 * one raw envelope per meter and UTC day as the Arcadia guide shows the intervals response, and
 * a ground truth of local day and month totals computed with Intl alone, never with our code.
 */
import type { RawEnvelope, UsageAggregate } from '../../schemas/records.js';
import { DAY_MS, QUARTER_MS } from '../../schemas/time.js';

export interface DayMeter {
  id: string;
  zone: string;
  seed: number;
  /** Exports (redelivery) at midday, besides the import. */
  solar?: boolean;
}

export interface DaySeries {
  connection: string;
  meters: DayMeter[];
  /** UTC midnight of day 0. */
  t0: number;
  runId: string;
}

export type Truth = Map<string, { value: number; count: number }>;

/** Deterministic kWh of interval i of a meter: 0.5..1.5 with 3 decimals. */
export const kwh = (seed: number, i: number): number => (500 + ((i * 7919 + seed * 104_729) % 1000)) / 1000;
/** A solar meter's export of interval i: 0.2 kWh from 10:00 to 16:00 UTC. */
export const exportKwh = (i: number): number => (i % 96 >= 40 && i % 96 < 64 ? 0.2 : 0);

const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');

export function meterPayload(m: DayMeter): string {
  return JSON.stringify({
    id: m.id,
    meterNumber: `N-${m.id}`,
    serviceType: 'electric',
    status: 'INTERVALS_SUCCESS',
    isIntervalsProductActive: true,
    site: {
      id: `site_${m.id}`,
      siteName: `Building ${m.id}`,
      serviceAddress: { fullAddress: `1 ${m.id} Street` },
    },
    serviceAddress: { fullAddress: `1 ${m.id} Street` },
    provider: { id: 'p1', name: 'Utility', country: 'US', supportsCredentialValidation: true },
  });
}

/** The raw intervals response of one meter for one UTC day; `scale` makes a wrong delivery. */
export function dayChunk(s: DaySeries, m: DayMeter, day: number, scale = 1): RawEnvelope {
  const readings: Record<string, unknown>[] = [];
  for (let q = 0; q < 96; q++) {
    const i = day * 96 + q;
    const start = s.t0 + i * QUARTER_MS;
    const base = { startAt: iso(start), endAt: iso(start + QUARTER_MS) };
    readings.push({ ...base, direction: 'import', kwh: kwh(m.seed, i) * scale, kw: kwh(m.seed, i) * 4 });
    if (m.solar && exportKwh(i) > 0)
      readings.push({ ...base, direction: 'export', kwh: exportKwh(i), kw: exportKwh(i) * 4 });
  }
  const payload = {
    meterId: m.id,
    meterNumber: 23220,
    localTimezone: m.zone,
    earliestIntervalAt: iso(s.t0 + day * DAY_MS),
    latestIntervalAt: iso(s.t0 + (day + 1) * DAY_MS - QUARTER_MS),
    readings,
  };
  return {
    connection_id: s.connection,
    provider: 'arcadia',
    entity_kind: 'usage',
    format: 'arcadia.intervals',
    external_id: m.id,
    sync_run_id: s.runId,
    request_url: `http://127.0.0.1/plug/intervals/meters/${m.id}`,
    request_page: null,
    received_at: s.t0 + (day + 1) * DAY_MS,
    content_type: 'application/json',
    payload: JSON.stringify(payload),
    meta: {
      meter_format: 'arcadia.meter',
      meter_payload: meterPayload(m),
      range_from: iso(s.t0 + day * DAY_MS),
      range_to: iso(s.t0 + (day + 1) * DAY_MS),
    },
  };
}

/** Local day and month totals of days [0, days): `connection/meter|channel|period` → total. */
export function groundTruth(s: DaySeries, days: number): Truth {
  const truth: Truth = new Map();
  const add = (key: string, v: number) => {
    const t = truth.get(key) ?? { value: 0, count: 0 };
    t.value += v;
    t.count += 1;
    truth.set(key, t);
  };
  for (const m of s.meters) {
    const fmt = new Intl.DateTimeFormat('en-CA', {
      timeZone: m.zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    for (let i = 0; i < days * 96; i++) {
      const local = fmt.format(new Date(s.t0 + i * QUARTER_MS)); // YYYY-MM-DD
      const k = `${s.connection}/${m.id}|consumption|`;
      add(k + local, kwh(m.seed, i));
      add(k + local.slice(0, 7), kwh(m.seed, i));
      if (m.solar && exportKwh(i) > 0) {
        add(`${s.connection}/${m.id}|redelivery|${local}`, exportKwh(i));
        add(`${s.connection}/${m.id}|redelivery|${local.slice(0, 7)}`, exportKwh(i));
      }
    }
  }
  return truth;
}

/** What differs between the latest aggregates and the truth: missing, wrong, unexpected keys. */
export function compareWithTruth(latest: Map<string, UsageAggregate>, truth: Truth): string[] {
  const problems: string[] = [];
  for (const [k, t] of truth) {
    const a = latest.get(k);
    if (!a) problems.push(`${k}: missing`);
    else if (Math.abs(a.value - t.value) > 1e-6 * Math.max(1, t.value) || a.interval_count !== t.count)
      problems.push(`${k}: got ${a.value} (${a.interval_count} intervals), want ${t.value} (${t.count})`);
  }
  for (const k of latest.keys()) if (!truth.has(k)) problems.push(`${k}: unexpected`);
  return problems;
}
