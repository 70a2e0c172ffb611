/**
 * `meterflow report`: one self-contained HTML file from ClickHouse (daily consumption per
 * building and meter type in canonical units, a completeness heat map, quarantine by reason, the
 * last sync per connection), for a person with a browser and no Grafana.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { loadConfig, REPO_ROOT } from '../lib/config.js';
import { errorMessage, MeterflowError } from '../lib/errors.js';
import { createChClient } from '../sinks/clickhouse/index.js';
import { commandDeadline, parse, timeoutOption, type Command } from './args.js';
import { collectReport, type ReportData } from './report/data.js';
import { formatNumber, renderReportHtml } from './report/html.js';
import { terminal } from './terminal.js';

export const DEFAULT_REPORT_DAYS = 90;

/** .local/reports/meterflow-report-<UTC time>.html under the repository. */
export function defaultReportPath(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return join(REPO_ROOT, '.local/reports', `meterflow-report-${stamp}.html`);
}

/**
 * Reads the report from ClickHouse and writes it to `out` (whole or not at all: a temporary file
 * renamed into place). Returns the data and the absolute path written.
 */
export async function writeReport(
  ch: ClickHouseClient,
  db: string,
  options: { out?: string; days?: number; signal?: AbortSignal; now?: () => Date } = {},
): Promise<{ data: ReportData; path: string }> {
  let data: ReportData;
  try {
    data = await collectReport(
      { ch, db, ...(options.signal ? { signal: options.signal } : {}) },
      { days: options.days ?? DEFAULT_REPORT_DAYS, ...(options.now ? { now: options.now } : {}) },
    );
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (err instanceof MeterflowError) throw err;
    const text = errorMessage(err);
    // A database without meterflow's views: the wrong CLICKHOUSE_DATABASE, or nothing loaded yet.
    if (/UNKNOWN_TABLE|UNKNOWN_DATABASE|doesn't exist|does not exist/i.test(text))
      throw new MeterflowError(
        'CFG_INVALID',
        `CLICKHOUSE_DATABASE "${db}" has no meterflow tables: run \`meterflow migrate\` and load data first (or \`npm run demo\`)`,
        { cause: err },
      );
    throw new MeterflowError('CH_UNREACHABLE', `reading the report from ClickHouse failed: ${text}`, {
      cause: err,
      retriable: true,
    });
  }
  const path = resolve(options.out ?? defaultReportPath((options.now ?? (() => new Date()))()));
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, renderReportHtml(data));
  renameSync(tmp, path);
  return { data, path };
}

/** The report's headline for a terminal: what is in it, then where it is. */
export function reportLines(data: ReportData, path: string): string[] {
  const w = data.window;
  const out = [
    `Report: ${w ? `${w.from} .. ${w.to} (${w.days.length} day(s))` : 'no consumption in ClickHouse yet'}`,
  ];
  for (const s of data.series)
    out.push(
      `  ${s.label.padEnd(24)} ${formatNumber(s.total).padStart(14)} ${s.unit.padEnd(4)} from ${s.buildings.length} building(s)`,
    );
  const open = data.quarantine.reduce((n, q) => n + q.open, 0);
  const least = data.completeness.meters[0];
  out.push(
    `  completeness: ${data.completeness.total_meters} meter(s)${least ? `, least complete ${(least.score * 100).toFixed(1)}%` : ''}; open quarantine: ${open}; connections: ${data.syncs.length}`,
  );
  out.push(`  report: ${path}`);
  return out;
}

export const reportCommand: Command = {
  summary:
    'write a self-contained HTML report from ClickHouse (consumption, completeness, quarantine, syncs)',
  help: `Usage: meterflow report [--out FILE] [--days N] [--json] [--timeout SECONDS]

Reads ClickHouse (CLICKHOUSE_URL, CLICKHOUSE_DATABASE) and writes one HTML file that needs nothing
else to open: daily consumption per building and meter type in canonical units (energy in kWh,
volume in m3, mass in kg), a completeness heat map of the least complete meters, quarantine by
reason, and the last sync per connection. Its path is printed at the end.

  --out FILE     where to write it (default .local/reports/meterflow-report-<time>.html)
  --days N       the last N local days up to the newest day with data (default ${DEFAULT_REPORT_DAYS})
  --json         print the report's data as JSON (with "path") instead of the summary lines
  --timeout S    give up after S seconds (default 60; CLI_TIMEOUT)`,
  async run(argv) {
    const { values } = parse(
      argv,
      { out: { type: 'string' }, days: { type: 'string' }, json: { type: 'boolean' }, ...timeoutOption },
      false,
    );
    const days = values.days === undefined ? DEFAULT_REPORT_DAYS : Number(values.days);
    if (!Number.isInteger(days) || days < 1 || days > 731)
      throw new MeterflowError('CLI_USAGE', `--days must be a whole number 1..731, not "${values.days}"`);
    if (values.out !== undefined && values.out.trim() === '')
      throw new MeterflowError('CLI_USAGE', '--out must name a file');
    const config = loadConfig(process.env);
    const deadline = commandDeadline('meterflow report', values.timeout, 60);
    const ch = createChClient(config.clickhouse, {});
    try {
      if (!values.json) terminal().status(`reading ClickHouse (${config.clickhouse.database})`);
      const { data, path } = await writeReport(ch, config.clickhouse.database, {
        days,
        signal: deadline.signal,
        ...(values.out !== undefined ? { out: values.out } : {}),
      });
      if (values.json) {
        console.log(JSON.stringify({ path, ...data }, null, 2));
        return 0;
      }
      terminal().endStatus();
      for (const line of reportLines(data, path)) terminal().line(line);
      return 0;
    } finally {
      deadline.clear();
      await ch.close();
    }
  },
};
