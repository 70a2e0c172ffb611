/**
 * The report as one self-contained HTML file: inline CSS, charts as inline SVG drawn here, and a
 * small inline script (legend highlight, table sorting) that the page does not need to be read.
 * Nothing is fetched: a Content-Security-Policy allows only this file's own style and script (by
 * hash), so even a string from the data that escaped escaping could not run or load anything.
 * Every string from the data goes through escapeHtml.
 */
import { createHash } from 'node:crypto';
import { ERROR_CODES } from '../../lib/errors.js';
import { formatAge } from '../terminal.js';
import type { BuildingSeries, HeatMapMeter, ReportData, Series } from './data.js';

/** Text and attribute values: the five characters that can end either. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}
const e = escapeHtml;

// ---- numbers, days, times ---------------------------------------------------------------------

const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const threeDigits = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });

/** 5,935,046 · 42.5 · 0.123: as many digits as a person reads. */
export function formatNumber(n: number): string {
  const a = Math.abs(n);
  return (a >= 1000 ? whole : a >= 10 ? oneDecimal : threeDigits).format(n);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** "2024-03-05" → "Mar 5". */
function shortDay(day: string): string {
  const [, m, d] = day.split('-');
  return `${MONTHS[Number(m) - 1] ?? m} ${Number(d)}`;
}

/** ISO time → "2024-03-05 14:02 UTC"; null → "-". */
function when(iso: string | null): string {
  return iso ? `${iso.slice(0, 16).replace('T', ' ')} UTC` : '-';
}

function ago(iso: string | null, now: string): string {
  if (!iso) return 'never';
  const ms = Date.parse(now) - Date.parse(iso);
  return Number.isFinite(ms) ? `${formatAge(ms)} ago` : '-';
}

const percent = (x: number) => `${(x * 100).toFixed(x >= 0.9995 || x === 0 ? 0 : 1)}%`;

/** A round axis maximum and step (1, 2, 2.5 or 5 × 10^n) with about `ticks` steps. */
export function niceScale(max: number, ticks = 4): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.25 };
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * pow >= raw) ?? 10) * pow;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

/** SVG coordinates: two decimals are plenty and keep the file small. */
const r2 = (n: number) => String(Math.round(n * 100) / 100);

// ---- colours ----------------------------------------------------------------------------------

/** Tableau 10 without its grey, which stands for "other buildings". */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
];
const OTHER = '#bab0ac';
const TOP_BUILDINGS = PALETTE.length - 1; // 8 named, then one layer for the rest

/** Completeness bands of the heat map, best first; `null` is a day without any row. */
export const COMPLETENESS_BANDS: { min: number; color: string; label: string }[] = [
  { min: 0.999, color: '#1a9850', label: 'complete' },
  { min: 0.95, color: '#91cf60', label: '95% or more' },
  { min: 0.75, color: '#fee08b', label: '75% or more' },
  { min: Number.MIN_VALUE, color: '#fc8d59', label: 'less than 75%' },
  { min: 0, color: '#d73027', label: 'no interval' },
];
const NO_DATA = '#e4e7eb';

export function completenessColor(c: number | null): string {
  if (c === null) return NO_DATA;
  return (
    COMPLETENESS_BANDS.find((b) => c >= b.min)?.color ??
    COMPLETENESS_BANDS[COMPLETENESS_BANDS.length - 1]!.color
  );
}

function swatch(color: string): string {
  return `<svg class="swatch" width="12" height="12" aria-hidden="true"><rect width="12" height="12" rx="2" fill="${color}"/></svg>`;
}

// ---- charts -----------------------------------------------------------------------------------

const W = 960;

interface Layer {
  key: string;
  name: string;
  color: string;
  total: number;
  daily: (number | null)[];
  buildings: number;
}

/** The largest buildings as their own layers, the rest summed into one grey layer. */
export function layersOf(s: Series): Layer[] {
  const top = s.buildings.slice(0, TOP_BUILDINGS);
  const rest = s.buildings.slice(TOP_BUILDINGS);
  const layers: Layer[] = top.map((b: BuildingSeries, i) => ({
    key: b.id,
    name: b.name,
    color: PALETTE[i]!,
    total: b.total,
    daily: b.daily,
    buildings: 1,
  }));
  if (rest.length > 0)
    layers.push({
      key: '(other)',
      name: `${rest.length} other building${rest.length === 1 ? '' : 's'}`,
      color: OTHER,
      total: rest.reduce((n, b) => n + b.total, 0),
      daily: (rest[0]?.daily ?? []).map((_, i) =>
        rest.some((b) => b.daily[i] !== null) ? rest.reduce((n, b) => n + (b.daily[i] ?? 0), 0) : null,
      ),
      buildings: rest.length,
    });
  return layers;
}

/** Every `every`-th day gets a label, so that about a dozen fit under the axis. */
function labelEvery(days: number): number {
  return Math.max(1, Math.ceil(days / 12));
}

/** Daily stacked bars of one series, a layer per building. */
function consumptionChart(s: Series, days: string[]): string {
  const layers = layersOf(s);
  const H = 300;
  const m = { left: 72, right: 12, top: 26, bottom: 30 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const totals = days.map((_, i) => layers.reduce((n, l) => n + Math.max(0, l.daily[i] ?? 0), 0));
  const { max, step } = niceScale(Math.max(0, ...totals));
  const y = (v: number) => m.top + ph - (v / max) * ph;
  const slot = pw / Math.max(1, days.length);
  const bw = Math.max(1, slot * 0.8);
  const out: string[] = [];
  for (let v = 0; v <= max + step / 2; v += step) {
    out.push(
      `<line class="grid" x1="${m.left}" x2="${W - m.right}" y1="${r2(y(v))}" y2="${r2(y(v))}"/>`,
      `<text class="tick" x="${m.left - 6}" y="${r2(y(v) + 4)}" text-anchor="end">${e(formatNumber(v))}</text>`,
    );
  }
  out.push(
    `<text class="axis-unit" x="${m.left - 6}" y="${m.top - 14}" text-anchor="end">${e(s.unit)}</text>`,
  );
  const every = labelEvery(days.length);
  days.forEach((d, i) => {
    if (i % every === 0)
      out.push(
        `<text class="tick" x="${r2(m.left + i * slot + slot / 2)}" y="${H - m.bottom + 18}" text-anchor="middle">${e(shortDay(d))}</text>`,
      );
  });
  layers.forEach((l, k) => {
    const bars: string[] = [];
    days.forEach((d, i) => {
      const v = l.daily[i];
      if (v === null || v === undefined || !(v > 0)) return;
      const below = layers.slice(0, k).reduce((n, o) => n + Math.max(0, o.daily[i] ?? 0), 0);
      const top = y(below + v);
      const height = Math.max(0.5, y(below) - top);
      bars.push(
        `<rect class="bar" data-day="${e(d)}" data-value="${e(v)}" x="${r2(m.left + i * slot + (slot - bw) / 2)}" y="${r2(top)}" width="${r2(bw)}" height="${r2(height)}"><title>${e(`${l.name}, ${d}: ${formatNumber(v)} ${s.unit}`)}</title></rect>`,
      );
    });
    out.push(`<g class="layer" data-series="${e(l.key)}" fill="${l.color}">${bars.join('')}</g>`);
  });
  out.push(`<line class="axis" x1="${m.left}" x2="${W - m.right}" y1="${r2(y(0))}" y2="${r2(y(0))}"/>`);
  const legend = layers
    .map(
      (l) =>
        `<li data-series="${e(l.key)}">${swatch(l.color)}<span class="name">${e(l.name)}</span> <span class="num">${e(formatNumber(l.total))} ${e(s.unit)}</span></li>`,
    )
    .join('');
  const title = `${s.label}: daily consumption in ${s.unit} per building`;
  return `<figure class="chart" data-chart="consumption" data-meter-type="${e(s.meter_type)}" data-unit="${e(s.unit)}">
<figcaption><h3>${e(s.label)} <span class="unit">${e(s.unit)}</span></h3><p class="total">${e(formatNumber(s.total))} ${e(s.unit)} in ${days.length} day${days.length === 1 ? '' : 's'} from ${s.buildings.length} building${s.buildings.length === 1 ? '' : 's'}</p></figcaption>
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${e(title)}">${out.join('')}</svg>
<ul class="legend">${legend}</ul>
</figure>`;
}

/** One row per meter, one cell per day, coloured by completeness. */
function heatMap(meters: HeatMapMeter[], days: string[]): string {
  const label = 300;
  const m = { top: 22, right: 8, bottom: 6 };
  const rowH = 16;
  const cell = (W - label - m.right) / Math.max(1, days.length);
  const H = m.top + meters.length * rowH + m.bottom;
  const out: string[] = [];
  const every = labelEvery(days.length);
  days.forEach((d, i) => {
    if (i % every === 0)
      out.push(
        `<text class="tick" x="${r2(label + i * cell + cell / 2)}" y="${m.top - 8}" text-anchor="middle">${e(shortDay(d))}</text>`,
      );
  });
  meters.forEach((mt, r) => {
    const y = m.top + r * rowH;
    const name = `${mt.building} · ${mt.meter_external_id}`;
    const short = name.length > 40 ? `${name.slice(0, 39)}…` : name;
    const what = `${name} (${mt.meter_type || 'unknown type'}${mt.unit ? `, ${mt.unit}` : ''}, ${mt.connection_id})`;
    out.push(
      `<text class="row-label" x="${label - 44}" y="${y + rowH / 2 + 4}" text-anchor="end"><title>${e(what)}</title>${e(short)}</text>`,
      `<text class="row-score" x="${label - 6}" y="${y + rowH / 2 + 4}" text-anchor="end">${e(percent(mt.score))}</text>`,
    );
    const cells = days.map((d, i) => {
      const c = mt.daily[i] ?? null;
      const tip = c === null ? `${name}, ${d}: no data` : `${name}, ${d}: ${percent(c)} of intervals`;
      return `<rect class="cell" data-day="${e(d)}" data-completeness="${c === null ? 'none' : e(c)}" x="${r2(label + i * cell + 0.5)}" y="${y + 1}" width="${r2(Math.max(0.5, cell - 1))}" height="${rowH - 2}" fill="${completenessColor(c)}"><title>${e(tip)}</title></rect>`;
    });
    out.push(
      `<g class="meter" data-meter="${e(`${mt.connection_id}/${mt.meter_external_id}`)}">${cells.join('')}</g>`,
    );
  });
  const legend = [
    ...COMPLETENESS_BANDS.map((b) => `<li>${swatch(b.color)}${e(b.label)}</li>`),
    `<li>${swatch(NO_DATA)}no data</li>`,
  ].join('');
  return `<figure class="chart" data-chart="completeness">
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="daily completeness per meter">${out.join('')}</svg>
<ul class="legend">${legend}</ul>
</figure>`;
}

/** Horizontal bars per quarantine reason: open records, then redriven ones. */
function quarantineChart(data: ReportData): string {
  const rows = data.quarantine;
  const label = 300;
  const rowH = 24;
  const m = { top: 6, right: 90, bottom: 6 };
  const H = m.top + rows.length * rowH + m.bottom;
  const max = Math.max(1, ...rows.map((q) => q.open + q.redriven));
  const x = (n: number) => (n / max) * (W - label - m.right);
  const out = rows.map((q, i) => {
    const y = m.top + i * rowH;
    const bars: string[] = [];
    if (q.open > 0)
      bars.push(
        `<rect class="qbar" data-status="open" data-value="${q.open}" x="${label}" y="${y + 4}" width="${r2(Math.max(1, x(q.open)))}" height="${rowH - 8}" fill="#e15759"><title>${e(`${q.reason_code}: ${q.open} open`)}</title></rect>`,
      );
    if (q.redriven > 0)
      bars.push(
        `<rect class="qbar" data-status="redriven" data-value="${q.redriven}" x="${r2(label + x(q.open))}" y="${y + 4}" width="${r2(Math.max(1, x(q.redriven)))}" height="${rowH - 8}" fill="${OTHER}"><title>${e(`${q.reason_code}: ${q.redriven} redriven`)}</title></rect>`,
      );
    return `<g class="reason" data-reason="${e(q.reason_code)}"><text class="row-label" x="${label - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${e(`${q.reason_code} (${q.stage})`)}</text>${bars.join('')}<text class="tick" x="${r2(label + x(q.open + q.redriven) + 6)}" y="${y + rowH / 2 + 4}">${e(`${formatNumber(q.open)} open${q.redriven ? `, ${formatNumber(q.redriven)} redriven` : ''}`)}</text></g>`;
  });
  return `<figure class="chart" data-chart="quarantine">
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="quarantine records by reason">${out.join('')}</svg>
<ul class="legend"><li>${swatch('#e15759')}open (still to fix)</li><li>${swatch(OTHER)}redriven</li></ul>
</figure>`;
}

/** A building's daily values as a line; a day without data breaks it. */
function sparkline(daily: (number | null)[]): string {
  const w = 110;
  const h = 24;
  const max = Math.max(0, ...daily.map((v) => v ?? 0));
  const step = daily.length > 1 ? w / (daily.length - 1) : 0;
  const runs: string[][] = [[]];
  daily.forEach((v, i) => {
    if (v === null) {
      if (runs[runs.length - 1]!.length > 0) runs.push([]);
      return;
    }
    const py = max > 0 ? h - 2 - (Math.max(0, v) / max) * (h - 4) : h - 2;
    runs[runs.length - 1]!.push(`${r2(i * step)},${r2(py)}`);
  });
  const lines = runs
    .filter((p) => p.length > 0)
    .map((p) =>
      p.length === 1
        ? `<circle cx="${p[0]!.split(',')[0]}" cy="${p[0]!.split(',')[1]}" r="1.5"/>`
        : `<polyline points="${p.join(' ')}"/>`,
    );
  const points = daily.filter((v) => v !== null).length;
  return `<svg class="spark" data-points="${points}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" aria-hidden="true">${lines.join('')}</svg>`;
}

// ---- tables -----------------------------------------------------------------------------------

const BUILDING_ROWS = 200;

function buildingsTable(data: ReportData): string {
  const byBuilding = new Map<
    string,
    { name: string; connection: string; cells: Map<string, BuildingSeries> }
  >();
  for (const s of data.series)
    for (const b of s.buildings) {
      const row = byBuilding.get(b.id) ?? { name: b.name, connection: b.connection_id, cells: new Map() };
      row.cells.set(`${s.meter_type}|${s.unit}`, b);
      byBuilding.set(b.id, row);
    }
  const first = data.series[0];
  const rows = [...byBuilding.values()].sort(
    (a, b) =>
      (first
        ? (b.cells.get(`${first.meter_type}|${first.unit}`)?.total ?? 0) -
          (a.cells.get(`${first.meter_type}|${first.unit}`)?.total ?? 0)
        : 0) || a.name.localeCompare(b.name),
  );
  const head = data.series
    .map(
      (s) =>
        `<th class="num" data-type="number">${e(s.label)}<div class="sub">${e(s.unit)}</div></th><th>per day</th>`,
    )
    .join('');
  const body = rows.slice(0, BUILDING_ROWS).map((r) => {
    const cells = data.series
      .map((s) => {
        const b = r.cells.get(`${s.meter_type}|${s.unit}`);
        return b
          ? `<td class="num" data-sort="${e(b.total)}">${e(formatNumber(b.total))}</td><td>${sparkline(b.daily)}</td>`
          : `<td class="num" data-sort="-1">-</td><td></td>`;
      })
      .join('');
    return `<tr><td>${e(r.name)}<div class="sub">${e(r.connection)}</div></td>${cells}</tr>`;
  });
  const more =
    rows.length > BUILDING_ROWS
      ? `<p class="note">The ${BUILDING_ROWS} largest of ${rows.length} buildings.</p>`
      : '';
  return `<div class="scroll"><table class="sortable" data-table="buildings"><thead><tr><th>Building</th>${head}</tr></thead><tbody>${body.join('')}</tbody></table></div>${more}`;
}

function quarantineTable(data: ReportData): string {
  const body = data.quarantine.map((q) => {
    const meaning = (ERROR_CODES as Record<string, string>)[q.reason_code] ?? '';
    return `<tr><td><code>${e(q.reason_code)}</code></td><td>${e(q.stage)}</td><td>${e(meaning)}</td><td class="num" data-sort="${q.open}">${e(formatNumber(q.open))}</td><td class="num" data-sort="${q.redriven}">${e(formatNumber(q.redriven))}</td><td>${e(q.connections.join(', ') || '-')}</td><td class="nowrap">${e(when(q.first_at))}</td><td class="nowrap">${e(when(q.last_at))}</td></tr>`;
  });
  return `<div class="scroll"><table class="sortable" data-table="quarantine"><thead><tr><th>Reason</th><th>Stage</th><th>Meaning</th><th class="num" data-type="number">Open</th><th class="num" data-type="number">Redriven</th><th>Connections</th><th>First</th><th>Last</th></tr></thead><tbody>${body.join('')}</tbody></table></div>`;
}

const STATUS_CLASS: Record<string, string> = {
  succeeded: 'ok',
  running: 'info',
  partial: 'warn',
  failed: 'bad',
};

function took(from: string | null, to: string | null): string {
  const ms = from && to ? Date.parse(to) - Date.parse(from) : NaN;
  if (!Number.isFinite(ms) || ms < 0) return '-';
  return ms < 1000 ? `${ms} ms` : formatAge(ms);
}

function syncTable(data: ReportData): string {
  const body = data.syncs.map(
    (s) =>
      `<tr data-connection="${e(s.connection_id)}"><td class="nowrap">${e(s.connection_id)}<div class="sub">${e(s.provider)}</div></td><td class="nowrap"><span class="status ${STATUS_CLASS[s.status] ?? 'info'}">${e(s.status)}</span> ${e(s.mode)}</td><td class="nowrap">${e(when(s.started_at))}</td><td class="num" data-sort="${e(s.finished_at && s.started_at ? Date.parse(s.finished_at) - Date.parse(s.started_at) : -1)}">${e(took(s.started_at, s.finished_at))}</td><td class="nowrap" data-sort="${e(s.last_success_at ?? '')}">${e(ago(s.last_success_at, data.generated_at))}</td><td class="num" data-sort="${s.intervals}">${e(formatNumber(s.intervals))}</td><td class="num" data-sort="${s.requests}">${e(formatNumber(s.requests))}</td><td class="num" data-sort="${s.errors}">${e(formatNumber(s.errors))}</td><td class="num" data-sort="${s.runs}">${e(formatNumber(s.runs))}</td></tr>`,
  );
  const errors = data.syncs.flatMap((s) =>
    s.error_messages.slice(0, 3).map((m) => `<li><b>${e(s.connection_id)}</b>: ${e(m)}</li>`),
  );
  return `<div class="scroll"><table class="sortable" data-table="syncs"><thead><tr><th>Connection</th><th>Last run</th><th>Started</th><th class="num" data-type="number">Took</th><th>Last success</th><th class="num" data-type="number">Intervals</th><th class="num" data-type="number">Requests</th><th class="num" data-type="number">Errors</th><th class="num" data-type="number">Runs</th></tr></thead><tbody>${body.join('')}</tbody></table></div>${errors.length ? `<ul class="errors">${errors.join('')}</ul>` : ''}`;
}

// ---- the page ---------------------------------------------------------------------------------

const CSS = `
:root { --fg: #1f2933; --muted: #616e7c; --line: #d9dee4; --bg: #f5f7fa; --card: #fff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; }
h3 { font-size: 15px; margin: 0; }
h3 .unit { color: var(--muted); font-weight: normal; }
p { margin: 4px 0 10px; }
.meta, .note, .total { color: var(--muted); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(165px, 1fr)); gap: 12px; margin: 18px 0 8px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.tile .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap; }
.tile .u { font-size: 14px; font-weight: normal; color: var(--muted); }
.tile .s { color: var(--muted); font-size: 12px; }
figure.chart { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px 10px; margin: 0 0 16px; }
figcaption { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; flex-wrap: wrap; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; fill: var(--muted); }
svg .row-label { fill: var(--fg); }
svg .grid { stroke: #edf0f3; }
svg .axis { stroke: #9aa5b1; }
svg .bar.dim { opacity: .18; }
svg.spark polyline { fill: none; stroke: #4e79a7; stroke-width: 1.5; }
svg.spark circle { fill: #4e79a7; }
.legend { list-style: none; padding: 0; margin: 8px 0 0; display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; }
.legend li { display: flex; align-items: center; gap: 6px; cursor: default; }
.legend .num { color: var(--muted); font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; flex: none; }
.scroll { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
th, td.num, td.nowrap { white-space: nowrap; }
tbody tr:last-child td { border-bottom: none; }
th { background: #fafbfc; font-weight: 600; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; font-size: 9px; }
th[aria-sort=descending]::after { content: " \\25BC"; font-size: 9px; }
th .sub, td .sub { font-weight: normal; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.status.ok { background: #e3f4e8; color: #1a7f37; }
.status.warn { background: #fff4d6; color: #8a6100; }
.status.bad { background: #fde2e1; color: #b42318; }
.status.info { background: #e6effa; color: #1d4f91; }
.empty { background: var(--card); border: 1px dashed var(--line); border-radius: 8px; padding: 16px; color: var(--muted); }
.errors { color: #b42318; font-size: 13px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
`;

/** Legend hover highlights one building; a click on a column header sorts its table. */
const SCRIPT = `
(function () {
  'use strict';
  document.querySelectorAll('figure[data-chart="consumption"]').forEach(function (fig) {
    var layers = fig.querySelectorAll('g.layer');
    fig.querySelectorAll('.legend li').forEach(function (li) {
      li.addEventListener('mouseenter', function () {
        layers.forEach(function (g) {
          var other = g.getAttribute('data-series') !== li.getAttribute('data-series');
          g.querySelectorAll('rect').forEach(function (r) { r.classList.toggle('dim', other); });
        });
      });
      li.addEventListener('mouseleave', function () {
        fig.querySelectorAll('rect.dim').forEach(function (r) { r.classList.remove('dim'); });
      });
    });
  });
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function (th, col) {
      th.addEventListener('click', function () {
        var numeric = th.getAttribute('data-type') === 'number';
        var dir = th.getAttribute('aria-sort') === 'descending' ? 1 : -1;
        heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var key = function (row) {
          var cell = row.cells[col];
          var v = cell ? (cell.getAttribute('data-sort') || cell.textContent || '') : '';
          return numeric ? Number(v) || 0 : v.toLowerCase();
        };
        rows.sort(function (a, b) { var x = key(a), y = key(b); return x < y ? -dir : x > y ? dir : 0; });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

function tile(key: string, value: string, sub: string, unit = '', attr = ''): string {
  const u = unit ? ` <span class="u">${e(unit)}</span>` : '';
  return `<div class="tile"${attr}><div class="k">${e(key)}</div><div class="v">${e(value)}${u}</div><div class="s">${e(sub)}</div></div>`;
}

function tiles(data: ReportData): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const out: string[] = data.series.map((s) =>
    tile(
      s.label,
      formatNumber(s.total),
      plural(s.buildings.length, 'building'),
      s.unit,
      ` data-tile="${e(`${s.meter_type}|${s.unit}`)}"`,
    ),
  );
  const meters = data.meters_by_type.reduce((n, t) => n + t.active, 0);
  out.push(
    tile(
      'Active meters',
      formatNumber(meters),
      data.meters_by_type.map((t) => `${t.meter_type} ${t.active}`).join(', ') || 'none',
    ),
  );
  const c = data.completeness;
  if (c.mean_daily !== null) {
    const least = c.meters[0];
    out.push(
      tile(
        'Daily completeness',
        percent(c.mean_daily),
        least ? `least complete meter ${percent(least.score)}` : '',
      ),
    );
  }
  const open = data.quarantine.reduce((n, q) => n + q.open, 0);
  out.push(
    tile(
      'Open quarantine',
      formatNumber(open),
      plural(data.quarantine.filter((q) => q.open > 0).length, 'reason'),
      'records',
    ),
  );
  const ok = data.syncs.filter((s) => s.status === 'succeeded').length;
  out.push(tile('Connections', formatNumber(data.syncs.length), `last sync succeeded for ${ok}`));
  return `<section class="tiles">${out.join('')}</section>`;
}

export function renderReportHtml(data: ReportData): string {
  const w = data.window;
  const span = w
    ? `${w.from} to ${w.to} (${w.days.length} local day${w.days.length === 1 ? '' : 's'})`
    : 'no data';
  const consumption =
    w && data.series.length > 0
      ? data.series.map((s) => consumptionChart(s, w.days)).join('\n') + buildingsTable(data)
      : '<p class="empty">No consumption in ClickHouse yet: run a sync or backfill (or <code>npm run demo</code>).</p>';
  const unconverted =
    data.unconverted.meters > 0
      ? `<p class="note">${e(`${data.unconverted.meters} meter(s) in units without a conversion (${data.unconverted.units.join(', ')}) are not in these charts: meterflow never guesses a conversion.`)}</p>`
      : '';
  const c = data.completeness;
  const completeness =
    w && c.meters.length > 0
      ? `<p class="note">${e(
          c.total_meters > c.meters.length
            ? `The ${c.meters.length} least complete of ${c.total_meters} meters, least complete first.`
            : `All ${c.total_meters} meters with consumption, least complete first.`,
        )} A cell is one local day: the share of its expected intervals that arrived (a DST day expects 92 or 100 quarter-hours). The percentage is the mean over the period, a day without data counting as 0.</p>${heatMap(c.meters, w.days)}`
      : '<p class="empty">No daily aggregates to show.</p>';
  const quarantine =
    data.quarantine.length > 0
      ? `${quarantineChart(data)}${quarantineTable(data)}`
      : '<p class="empty">Nothing quarantined: every record so far was valid.</p>';
  const syncs = data.syncs.length > 0 ? syncTable(data) : '<p class="empty">No sync has run yet.</p>';
  const csp = `default-src 'none'; style-src ${hash(CSS)}; script-src ${hash(SCRIPT)}; img-src data:; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="meterflow report">
<title>${e(`meterflow report: ${span}`)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>meterflow report</h1>
<p class="meta">${e(`Database ${data.database} · ${span} · generated ${when(data.generated_at)}`)}</p>
</header>
${tiles(data)}
<section id="consumption">
<h2>Daily consumption per building</h2>
<p class="note">Channel consumption, in canonical units: energy in kWh whatever the meters report (kWh, MWh, GJ), volume in m³, mass in kg. Gas metered by volume stays in m³: no calorific value is configured. Days are local to each meter.</p>
${unconverted}
${consumption}
</section>
<section id="completeness">
<h2>Completeness</h2>
${completeness}
</section>
<section id="quarantine">
<h2>Quarantine by reason</h2>
${quarantine}
</section>
<section id="syncs">
<h2>Last sync per connection</h2>
${syncs}
</section>
<footer>Written by <code>meterflow report</code> from the ClickHouse views usage_daily_latest, meters_latest, assets_latest, quarantine_latest and sync_runs_latest. Self-contained: this file loads nothing.</footer>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
