/**
 * The report as data: what ClickHouse says about the last days of consumption, completeness,
 * quarantine and syncs, shaped for the page (and printed as is by `report --json`).
 */
import {
  addDays,
  buildings,
  completeness,
  consumptionDays,
  dailyByBuilding,
  daysBetween,
  lastSyncs,
  metersByType,
  quarantineByReason,
  unconvertedMeters,
  type CompletenessCell,
  type LastSync,
  type MeterCompleteness,
  type Query,
  type QuarantineReason,
} from './queries.js';

export interface BuildingSeries {
  /** connection_id/asset_external_id */
  id: string;
  connection_id: string;
  asset_external_id: string;
  /** The asset's name, else its id. */
  name: string;
  meters: number;
  total: number;
  /** One value per day of the window; null where no meter of the building has a row. */
  daily: (number | null)[];
}

export interface Series {
  meter_type: string;
  /** Canonical unit: kWh, m3 or kg. */
  unit: string;
  /** "Energy", "Energy (gas, by volume)", "Water", "Waste". */
  label: string;
  total: number;
  /** Largest total first. */
  buildings: BuildingSeries[];
}

export interface HeatMapMeter extends MeterCompleteness {
  building: string;
  /** One per day of the window: completeness 0..1, or null without a row that day. */
  daily: (number | null)[];
}

export interface ReportData {
  generated_at: string;
  database: string;
  /** Local days shown (the last `days` up to the newest day with consumption), or null: no data. */
  window: { from: string; to: string; days: string[] } | null;
  meters_by_type: { meter_type: string; active: number }[];
  series: Series[];
  /** Meters left out of the charts: their unit has no conversion to a canonical unit. */
  unconverted: { units: string[]; meters: number };
  completeness: {
    meters: HeatMapMeter[];
    total_meters: number;
    /** Mean completeness of the daily rows in the window (days without a row not counted). */
    mean_daily: number | null;
    limit: number;
  };
  quarantine: QuarantineReason[];
  syncs: LastSync[];
}

export interface CollectOptions {
  /** Days to show, ending at the newest day with consumption. */
  days: number;
  /** Rows of the completeness heat map (least complete meters first). Default 60. */
  heatMapMeters?: number;
  now?: () => Date;
}

const TYPE_ORDER = ['Energy', 'Water', 'Waste'];

export function seriesLabel(meterType: string, unit: string): string {
  // Gas is Energy by type but metered by volume: without a calorific value it stays m3.
  return meterType === 'Energy' && unit === 'm3' ? 'Energy (gas, by volume)' : meterType;
}

function compareSeries(a: Series, b: Series): number {
  const rank = (t: string) => (TYPE_ORDER.includes(t) ? TYPE_ORDER.indexOf(t) : TYPE_ORDER.length);
  const kwhFirst = (s: Series) => (s.unit === 'kWh' ? 0 : 1);
  return (
    rank(a.meter_type) - rank(b.meter_type) ||
    a.meter_type.localeCompare(b.meter_type) ||
    kwhFirst(a) - kwhFirst(b) ||
    a.unit.localeCompare(b.unit)
  );
}

export async function collectReport(q: Query, options: CollectOptions): Promise<ReportData> {
  const now = (options.now ?? (() => new Date()))();
  const limit = options.heatMapMeters ?? 60;
  const [byType, quarantine, syncs, span] = await Promise.all([
    metersByType(q),
    quarantineByReason(q),
    lastSyncs(q),
    consumptionDays(q),
  ]);
  const base = {
    generated_at: now.toISOString(),
    database: q.db,
    meters_by_type: byType.map((t) => ({ meter_type: t.meter_type, active: Number(t.meters) })),
    quarantine,
    syncs,
  };
  if (!span)
    return {
      ...base,
      window: null,
      series: [],
      unconverted: { units: [], meters: 0 },
      completeness: { meters: [], total_meters: 0, mean_daily: null, limit },
    };
  // The window ends at the newest day with data (not today: a backfill may be of any year) and
  // starts no earlier than the first, so a short history is not padded with empty days.
  const earliest = addDays(span.last, -(options.days - 1));
  const from = earliest > span.first ? earliest : span.first;
  const to = span.last;
  const days = daysBetween(from, to);
  const index = new Map(days.map((d, i) => [d, i]));
  const [daily, names, unconverted, heat] = await Promise.all([
    dailyByBuilding(q, from, to),
    buildings(q),
    unconvertedMeters(q, from, to),
    completeness(q, from, to, limit),
  ]);
  const nameOf = new Map(names.map((b) => [`${b.connection_id}/${b.external_id}`, b.name]));
  const buildingName = (connection: string, asset: string) =>
    asset === '' ? `(no building) ${connection}` : nameOf.get(`${connection}/${asset}`) || asset;

  const series = new Map<string, Series>();
  const perBuilding = new Map<string, BuildingSeries>();
  for (const r of daily) {
    const key = `${r.meter_type}|${r.unit}`;
    let s = series.get(key);
    if (!s) {
      s = {
        meter_type: r.meter_type,
        unit: r.unit,
        label: seriesLabel(r.meter_type, r.unit),
        total: 0,
        buildings: [],
      };
      series.set(key, s);
    }
    const id = `${r.connection_id}/${r.asset_external_id}`;
    let b = perBuilding.get(`${key}|${id}`);
    if (!b) {
      b = {
        id,
        connection_id: r.connection_id,
        asset_external_id: r.asset_external_id,
        name: buildingName(r.connection_id, r.asset_external_id),
        meters: 0,
        total: 0,
        daily: days.map(() => null),
      };
      perBuilding.set(`${key}|${id}`, b);
      s.buildings.push(b);
    }
    const i = index.get(r.day);
    if (i === undefined) continue;
    b.daily[i] = (b.daily[i] ?? 0) + r.value;
    b.total += r.value;
    b.meters = Math.max(b.meters, r.meters);
    s.total += r.value;
  }
  for (const s of series.values())
    s.buildings.sort((a, b) => b.total - a.total || a.name.localeCompare(b.name) || a.id.localeCompare(b.id));

  const cells = new Map<string, CompletenessCell[]>();
  for (const c of heat.cells) {
    const k = `${c.connection_id}/${c.meter_external_id}`;
    const list = cells.get(k) ?? [];
    list.push(c);
    cells.set(k, list);
  }
  const heatMeters: HeatMapMeter[] = heat.meters.map((m) => {
    const row: (number | null)[] = days.map(() => null);
    for (const c of cells.get(`${m.connection_id}/${m.meter_external_id}`) ?? []) {
      const i = index.get(c.day);
      if (i !== undefined) row[i] = c.completeness;
    }
    return { ...m, building: buildingName(m.connection_id, m.asset_external_id), daily: row };
  });

  return {
    ...base,
    window: { from, to, days },
    series: [...series.values()].sort(compareSeries),
    unconverted,
    completeness: { meters: heatMeters, total_meters: heat.total_meters, mean_daily: heat.mean_daily, limit },
  };
}
