/**
 * `meterflow reconcile`: the provider's own totals against ClickHouse, per meter and month.
 *
 * The source side reads the provider again (nothing is written, no watermark moves) and runs the
 * usage stage's own pure chain and the aggregator in memory (processors' usageMonthTotals). EnerKey is asked for
 * its monthly values, which are the provider's own totals. The ClickHouse side is the
 * usage_monthly_latest view. Differences beyond the tolerance are listed; exit code 4 when any.
 */
import { MeterflowError } from '../lib/errors.js';
import { entityKey } from '../schemas/topics.js';
import type { ConnectionConfig } from '../schemas/connection.js';
import { DAY_MS } from '../schemas/time.js';
import { fetchSourceUsage } from '../producers/index.js';
import { usageMonthTotals } from '../processors/index.js';
import { createChClient } from '../sinks/clickhouse/index.js';
import { bootstrap } from './bootstrap.js';
import { parse, type Command } from './args.js';

const MONTH = /^\d{4}-\d{2}$/;

export interface MonthTotal {
  meter: string;
  month: string;
  source: number | null;
  clickhouse: number | null;
}

export function differences(rows: MonthTotal[], tolerance: number): MonthTotal[] {
  return rows.filter(
    (r) =>
      r.source === null ||
      r.clickhouse === null ||
      Math.abs(r.source - r.clickhouse) > tolerance * Math.max(1, Math.abs(r.source)),
  );
}

function monthsBetween(from: string, to: string): string[] {
  const out: string[] = [];
  let [y, m] = from.split('-').map(Number) as [number, number];
  const [ty, tm] = to.split('-').map(Number) as [number, number];
  while (y < ty || (y === ty && m <= tm)) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    m++;
    if (m > 12) {
      m = 1;
      y++;
    }
  }
  return out;
}

export const reconcileCommand: Command = {
  summary: "compare the provider's totals with ClickHouse per meter and month",
  help: `Usage: meterflow reconcile --connection <id> --month YYYY-MM [--to-month YYYY-MM] [--tolerance 1e-6] [--json]

Reads the provider's usage for the month(s) again (writing nothing), computes monthly consumption
per meter with the pipeline's own normalise/validate/aggregate code (EnerKey: its monthly values),
and compares it with usage_monthly_latest in ClickHouse. Prints every meter and month whose totals
differ by more than the relative tolerance, or that one side lacks. Exit code 4 when any differ.`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        connection: { type: 'string' },
        connections: { type: 'string' },
        month: { type: 'string' },
        'to-month': { type: 'string' },
        tolerance: { type: 'string' },
        json: { type: 'boolean' },
      },
      false,
    );
    if (!values.connection) throw new MeterflowError('CLI_USAGE', '--connection is required');
    if (!values.month || !MONTH.test(values.month))
      throw new MeterflowError('CLI_USAGE', '--month YYYY-MM is required');
    const toMonth = values['to-month'] ?? values.month;
    if (!MONTH.test(toMonth) || toMonth < values.month)
      throw new MeterflowError('CLI_USAGE', '--to-month must be YYYY-MM, not before --month');
    const tolerance = values.tolerance === undefined ? 1e-6 : Number(values.tolerance);
    if (!(tolerance >= 0)) throw new MeterflowError('CLI_USAGE', '--tolerance must be a non-negative number');

    const rt = await bootstrap(
      values.connections ? { connectionsDir: values.connections, needConnections: true } : {},
    );
    const configured = rt.connections.get(values.connection);
    if (!configured)
      throw new MeterflowError(
        'CLI_USAGE',
        `no connection "${values.connection}" in ${values.connections ?? rt.config.connectionsDir}`,
      );
    const connection: ConnectionConfig =
      configured.provider === 'enerkey'
        ? { ...configured, options: { ...configured.options, values: ['monthly'] } }
        : configured;
    const months = monthsBetween(values.month, toMonth);
    // Local months start up to 14 h either side of UTC; readings need one before the start.
    const [ty, tm] = toMonth.split('-').map(Number) as [number, number];
    const range = {
      from: Date.parse(`${values.month}-01T00:00:00Z`) - 2 * DAY_MS,
      to: Date.UTC(ty, tm, 1) + DAY_MS,
    };

    const source = await fetchSourceUsage(connection, { log: rt.log }, range);
    for (const e of source.errors) console.error(`source: ${e.code}: ${e.message}`);
    const totals = usageMonthTotals(connection, source.entities, source.usage);

    const ch = createChClient(rt.config.clickhouse, {});
    let stored: { connection_id: string; meter_external_id: string; period: string; value: number }[];
    try {
      // A constant query: the filter happens here, so no value ever reaches the SQL text.
      const rs = await ch.query({
        query: `SELECT connection_id, meter_external_id, period, value FROM ${rt.config.clickhouse.database}.usage_monthly_latest WHERE channel = 'consumption'`,
        format: 'JSONEachRow',
      });
      stored = await rs.json();
    } finally {
      await ch.close();
    }
    const inRange = new Set(months);
    const rows = new Map<string, MonthTotal>();
    for (const [k, agg] of totals) {
      if (inRange.has(agg.period))
        rows.set(k, { meter: agg.meter_external_id, month: agg.period, source: agg.value, clickhouse: null });
    }
    for (const s of stored) {
      if (s.connection_id !== connection.id || !inRange.has(s.period)) continue;
      const k = `${s.meter_external_id}|${s.period}`;
      const row = rows.get(k) ?? {
        meter: s.meter_external_id,
        month: s.period,
        source: null,
        clickhouse: null,
      };
      row.clickhouse = Number(s.value);
      rows.set(k, row);
    }
    const all = [...rows.values()].sort(
      (a, b) => a.meter.localeCompare(b.meter) || a.month.localeCompare(b.month),
    );
    const diff = differences(all, tolerance);
    if (values.json) {
      console.log(
        JSON.stringify(
          {
            connection: connection.id,
            months,
            compared: all.length,
            differences: diff,
            requests: source.requests,
          },
          null,
          2,
        ),
      );
    } else {
      console.log(
        `${connection.id}: ${all.length} meter-month(s) compared for ${months.join(', ')} (${source.requests} provider requests)`,
      );
      if (diff.length === 0) console.log('no differences');
      for (const d of diff) {
        const delta =
          d.source !== null && d.clickhouse !== null ? ` (${(d.clickhouse - d.source).toFixed(6)})` : '';
        console.log(
          `  ${entityKey(connection.id, d.meter)} ${d.month}: provider ${d.source ?? 'missing'}, ClickHouse ${d.clickhouse ?? 'missing'}${delta}`,
        );
      }
    }
    return diff.length === 0 ? 0 : 4;
  },
};
