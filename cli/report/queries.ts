/**
 * The report's questions to ClickHouse, shared by `meterflow report` (HTML) and `meterflow demo`
 * (text). Everything reads the `*_latest` views; SQL stays portable to ClickHouse 18.16 (one JOIN
 * per SELECT, no query parameters: DESIGN.md §6). The only values in SQL text are the database
 * name (checked by the config schema), integers, and days matched against YYYY-MM-DD first.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { MeterflowError } from '../../lib/errors.js';
import { DAY_MS } from '../../schemas/time.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export interface Query {
  ch: ClickHouseClient;
  db: string;
  signal?: AbortSignal;
}

async function rows<T>(q: Query, query: string): Promise<T[]> {
  const rs = await q.ch.query({
    query,
    format: 'JSONEachRow',
    ...(q.signal ? { abort_signal: q.signal } : {}),
  });
  return rs.json<T>();
}

/** A day as SQL text, refused unless it is YYYY-MM-DD (it is then safe between quotes). */
function dayLiteral(day: string): string {
  if (!DAY.test(day)) throw new MeterflowError('CLI_USAGE', `not a day (YYYY-MM-DD): "${day}"`);
  return `'${day}'`;
}

/** "YYYY-MM-DD" plus n days. */
export function addDays(day: string, n: number): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Every day from `from` to `to`, both included. */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  // Bounded by the dates themselves: at most one entry per day of the window.
  for (let d = from; d <= to && out.length < 100_000; d = addDays(d, 1)) out.push(d);
  return out;
}

/** ClickHouse DateTime('UTC') text to ISO 8601; its zero value (no such time) to null. */
export function isoTime(t: string | null | undefined): string | null {
  if (!t || t.startsWith('0000-00-00') || t.startsWith('1970-01-01 00:00:00')) return null;
  return `${t.replace(' ', 'T')}Z`;
}

// ---- what the demo prints ------------------------------------------------------------------

export interface MetersByType {
  meter_type: string;
  meters: string;
}
/** Active meters per type. */
export function metersByType(q: Query): Promise<MetersByType[]> {
  return rows(
    q,
    `SELECT toString(meter_type) AS meter_type, count() AS meters FROM ${q.db}.meters_latest WHERE active = 1 GROUP BY meter_type ORDER BY meter_type`,
  );
}

export interface DaysCovered {
  days: string;
  first: string;
  last: string;
}
/** Local days with any aggregate, and the first and last of them. */
export async function daysCovered(q: Query): Promise<DaysCovered | undefined> {
  return (
    await rows<DaysCovered>(
      q,
      `SELECT uniqExact(period) AS days, min(period) AS first, max(period) AS last FROM ${q.db}.usage_daily_latest`,
    )
  )[0];
}

export interface TypeTotal {
  meter_type: string;
  total_unit: string;
  total: number;
  units: string;
  months: string;
}
/**
 * One total per meter type in its canonical unit (energy in kWh across kWh, MWh and GJ meters;
 * gas in m3 stays volume); a unit without a conversion keeps a line of its own.
 */
export function totalsByType(q: Query): Promise<TypeTotal[]> {
  const db = q.db;
  return rows(
    q,
    `SELECT toString(meter_type) AS meter_type, ifNull(canonical_unit, unit) AS total_unit,
       round(sum(ifNull(value_canonical, value)), 3) AS total,
       arrayStringConcat(arraySort(groupUniqArray(unit)), ', ') AS units, uniqExact(period) AS months
     FROM ${db}.usage_monthly_latest AS u
     ANY INNER JOIN (SELECT connection_id, external_id AS meter_external_id, meter_type FROM ${db}.meters_latest) AS m USING (connection_id, meter_external_id)
     WHERE channel = 'consumption' GROUP BY meter_type, total_unit ORDER BY meter_type, total_unit`,
  );
}

export interface Quality {
  completeness: number;
  estimated: string;
}
/** Mean daily completeness and estimated intervals of consumption. */
export async function quality(q: Query): Promise<Quality | undefined> {
  return (
    await rows<Quality>(
      q,
      `SELECT round(avg(completeness), 4) AS completeness, sum(estimated_count) AS estimated FROM ${q.db}.usage_daily_latest WHERE channel = 'consumption'`,
    )
  )[0];
}

/** Quarantine records (open or redriven) per reason. */
export function quarantineCounts(q: Query): Promise<{ reason_code: string; n: string }[]> {
  return rows(
    q,
    `SELECT reason_code, count() AS n FROM ${q.db}.quarantine_latest GROUP BY reason_code ORDER BY n DESC`,
  );
}

export async function intervalCount(q: Query): Promise<number> {
  const r = await rows<{ n: string }>(q, `SELECT count() AS n FROM ${q.db}.usage_intervals_latest`);
  return Number(r[0]?.n ?? 0);
}

// ---- what the HTML report shows ---------------------------------------------------------------

/** The first and last local day with consumption, and how many rows; undefined when none. */
export async function consumptionDays(q: Query): Promise<{ first: string; last: string } | undefined> {
  const r = await rows<{ first: string; last: string; n: string }>(
    q,
    `SELECT min(period) AS first, max(period) AS last, count() AS n FROM ${q.db}.usage_daily_latest WHERE channel = 'consumption'`,
  );
  const x = r[0];
  return x && Number(x.n) > 0 && DAY.test(x.first) && DAY.test(x.last)
    ? { first: x.first, last: x.last }
    : undefined;
}

export interface BuildingDay {
  connection_id: string;
  asset_external_id: string;
  meter_type: string;
  /** Canonical unit: kWh, m3 or kg. */
  unit: string;
  day: string;
  value: number;
  meters: number;
}
/**
 * Consumption per building (asset), meter type, canonical unit and local day. Meters whose unit
 * has no conversion (value_canonical NULL) are left out here and counted by unconvertedMeters.
 */
export async function dailyByBuilding(q: Query, from: string, to: string): Promise<BuildingDay[]> {
  const db = q.db;
  const r = await rows<Omit<BuildingDay, 'meters'> & { meters: string }>(
    q,
    `SELECT connection_id, asset_external_id, meter_type, unit, day, sum(v) AS value, uniqExact(meter_external_id) AS meters
     FROM (
       SELECT connection_id, meter_external_id, period AS day, assumeNotNull(value_canonical) AS v, assumeNotNull(canonical_unit) AS unit
       FROM ${db}.usage_daily_latest
       WHERE channel = 'consumption' AND value_canonical IS NOT NULL AND canonical_unit IS NOT NULL
         AND period >= ${dayLiteral(from)} AND period <= ${dayLiteral(to)}
     ) AS u
     ANY INNER JOIN (
       SELECT connection_id, external_id AS meter_external_id, toString(meter_type) AS meter_type, asset_external_id FROM ${db}.meters_latest
     ) AS m USING (connection_id, meter_external_id)
     GROUP BY connection_id, asset_external_id, meter_type, unit, day
     ORDER BY meter_type, unit, connection_id, asset_external_id, day`,
  );
  return r.map((x) => ({ ...x, value: Number(x.value), meters: Number(x.meters) }));
}

/** Meters with consumption in the window but no canonical value (a unit without a conversion). */
export async function unconvertedMeters(
  q: Query,
  from: string,
  to: string,
): Promise<{ units: string[]; meters: number }> {
  const r = await rows<{ units: string[]; meters: string }>(
    q,
    `SELECT arraySort(groupUniqArray(unit)) AS units, uniqExact(connection_id, meter_external_id) AS meters
     FROM ${q.db}.usage_daily_latest
     WHERE channel = 'consumption' AND value_canonical IS NULL AND period >= ${dayLiteral(from)} AND period <= ${dayLiteral(to)}`,
  );
  return { units: r[0]?.units ?? [], meters: Number(r[0]?.meters ?? 0) };
}

export interface Building {
  connection_id: string;
  external_id: string;
  name: string;
}
export function buildings(q: Query): Promise<Building[]> {
  return rows(q, `SELECT connection_id, external_id, name FROM ${q.db}.assets_latest`);
}

export interface MeterCompleteness {
  connection_id: string;
  meter_external_id: string;
  meter_type: string;
  asset_external_id: string;
  unit: string;
  days_with_data: number;
  intervals: number;
  expected: number;
  /** Mean completeness over every day of the window; a day without a row counts as 0. */
  score: number;
}
export interface CompletenessCell {
  connection_id: string;
  meter_external_id: string;
  day: string;
  completeness: number;
  interval_count: number;
  expected_count: number;
  estimated_count: number;
}
/**
 * Daily completeness of consumption for the `limit` meters that are least complete over the
 * window (a day without data counts as 0), and how many meters there are in all.
 */
export async function completeness(
  q: Query,
  from: string,
  to: string,
  limit: number,
): Promise<{
  meters: MeterCompleteness[];
  cells: CompletenessCell[];
  total_meters: number;
  /** Mean completeness of the days that have a row. */
  mean_daily: number | null;
}> {
  const db = q.db;
  const windowDays = daysBetween(from, to).length;
  const where = `channel = 'consumption' AND period >= ${dayLiteral(from)} AND period <= ${dayLiteral(to)}`;
  const worst = `SELECT connection_id, meter_external_id, count() AS days_with_data, sum(interval_count) AS intervals,
       sum(expected_count) AS expected, sum(completeness) / ${windowDays} AS score
     FROM ${db}.usage_daily_latest WHERE ${where}
     GROUP BY connection_id, meter_external_id
     ORDER BY score, connection_id, meter_external_id
     LIMIT ${Math.max(0, Math.floor(limit))}`;
  type Raw = Omit<MeterCompleteness, 'days_with_data' | 'intervals' | 'expected'> & {
    days_with_data: string;
    intervals: string;
    expected: string;
  };
  const meters = (
    await rows<Raw>(
      q,
      `SELECT connection_id, meter_external_id, meter_type, asset_external_id, unit, days_with_data, intervals, expected, score
       FROM (${worst}) AS w
       ANY LEFT JOIN (
         SELECT connection_id, external_id AS meter_external_id, toString(meter_type) AS meter_type, asset_external_id, unit FROM ${db}.meters_latest
       ) AS m USING (connection_id, meter_external_id)
       ORDER BY score, connection_id, meter_external_id`,
    )
  ).map((m) => ({
    ...m,
    days_with_data: Number(m.days_with_data),
    intervals: Number(m.intervals),
    expected: Number(m.expected),
    score: Number(m.score),
  }));
  type RawCell = Omit<CompletenessCell, 'interval_count' | 'expected_count' | 'estimated_count'> & {
    interval_count: number | string;
    expected_count: number | string;
    estimated_count: number | string;
  };
  const cells = (
    await rows<RawCell>(
      q,
      `SELECT connection_id, meter_external_id, period AS day, completeness, interval_count, expected_count, estimated_count
       FROM ${db}.usage_daily_latest
       WHERE ${where} AND (connection_id, meter_external_id) IN (SELECT connection_id, meter_external_id FROM (${worst}))
       ORDER BY connection_id, meter_external_id, day`,
    )
  ).map((c) => ({
    ...c,
    completeness: Number(c.completeness),
    interval_count: Number(c.interval_count),
    expected_count: Number(c.expected_count),
    estimated_count: Number(c.estimated_count),
  }));
  const total = await rows<{ n: string; mean: number | null }>(
    q,
    `SELECT uniqExact(connection_id, meter_external_id) AS n, avg(completeness) AS mean FROM ${db}.usage_daily_latest WHERE ${where}`,
  );
  const mean = Number(total[0]?.mean);
  return {
    meters,
    cells,
    total_meters: Number(total[0]?.n ?? 0),
    mean_daily: Number.isFinite(mean) ? mean : null,
  };
}

export interface QuarantineReason {
  stage: string;
  reason_code: string;
  open: number;
  redriven: number;
  connections: string[];
  first_at: string | null;
  last_at: string | null;
}
/** Quarantine records by stage and reason: open ones (still to fix) and redriven ones. */
export async function quarantineByReason(q: Query): Promise<QuarantineReason[]> {
  const r = await rows<{
    stage: string;
    reason_code: string;
    open: string;
    redriven: string;
    connections: string[];
    first_at: string;
    last_at: string;
  }>(
    q,
    `SELECT stage, reason_code, countIf(status = 'open') AS open, countIf(status = 'redriven') AS redriven,
       arraySort(groupUniqArray(ifNull(connection_id, ''))) AS connections,
       min(quarantined_at) AS first_at, max(quarantined_at) AS last_at
     FROM ${q.db}.quarantine_latest
     GROUP BY stage, reason_code
     ORDER BY open DESC, redriven DESC, stage, reason_code`,
  );
  return r.map((x) => ({
    stage: x.stage,
    reason_code: x.reason_code,
    open: Number(x.open),
    redriven: Number(x.redriven),
    connections: x.connections.filter((c) => c !== ''),
    first_at: isoTime(x.first_at),
    last_at: isoTime(x.last_at),
  }));
}

export interface LastSync {
  connection_id: string;
  provider: string;
  runs: number;
  last_run: string;
  mode: string;
  status: string;
  started_at: string | null;
  finished_at: string | null;
  last_success_at: string | null;
  intervals: number;
  requests: number;
  errors: number;
  error_messages: string[];
}
/** The latest sync run of every connection, and when one last succeeded. */
export async function lastSyncs(q: Query): Promise<LastSync[]> {
  const r = await rows<{
    connection_id: string;
    last_provider: string;
    runs: string;
    last_run: string;
    last_mode: string;
    last_status: string;
    last_started_at: string;
    last_finished_at: string | null;
    last_success_at: string | null;
    last_intervals: string;
    last_requests: string;
    last_errors: string;
    last_error_messages: string[];
  }>(
    q,
    // Aliases differ from the columns: ClickHouse would read argMax(x, started_at) as the alias.
    `SELECT connection_id, argMax(provider, started_at) AS last_provider, count() AS runs,
       argMax(sync_run_id, started_at) AS last_run, argMax(mode, started_at) AS last_mode,
       argMax(status, started_at) AS last_status, max(started_at) AS last_started_at,
       argMax(finished_at, started_at) AS last_finished_at, maxIf(finished_at, status = 'succeeded') AS last_success_at,
       argMax(intervals, started_at) AS last_intervals, argMax(requests, started_at) AS last_requests,
       argMax(errors, started_at) AS last_errors, argMax(error_messages, started_at) AS last_error_messages
     FROM ${q.db}.sync_runs_latest
     GROUP BY connection_id
     ORDER BY connection_id`,
  );
  return r.map((x) => ({
    connection_id: x.connection_id,
    provider: x.last_provider,
    runs: Number(x.runs),
    last_run: x.last_run,
    mode: x.last_mode,
    status: x.last_status,
    started_at: isoTime(x.last_started_at),
    finished_at: isoTime(x.last_finished_at),
    last_success_at: isoTime(x.last_success_at),
    intervals: Number(x.last_intervals),
    requests: Number(x.last_requests),
    errors: Number(x.last_errors),
    error_messages: x.last_error_messages,
  }));
}
