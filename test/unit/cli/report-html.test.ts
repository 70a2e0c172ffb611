/**
 * The HTML report built from fixed data: self-contained (nothing it could load, a CSP whose
 * hashes match its own style and script), every string from the data escaped, and charts whose
 * marks carry exactly the data (one bar per building and day, one cell per meter and day).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ReportData, Series } from '../../../cli/report/data.js';
import {
  completenessColor,
  escapeHtml,
  formatNumber,
  layersOf,
  niceScale,
  renderReportHtml,
} from '../../../cli/report/html.js';

const DAYS = ['2024-03-01', '2024-03-02', '2024-03-03', '2024-03-04'];
const EVIL = `<script>alert("x")</script> & 'Co' <img src=x onerror=alert(1)>`;

function building(i: number, daily: (number | null)[], name = `Building ${i}`) {
  return {
    id: `conn-a/site-${i}`,
    connection_id: 'conn-a',
    asset_external_id: `site-${i}`,
    name,
    meters: 1,
    total: daily.reduce<number>((n, v) => n + (v ?? 0), 0),
    daily,
  };
}

function series(
  meter_type: string,
  unit: string,
  label: string,
  buildings: ReturnType<typeof building>[],
): Series {
  const sorted = [...buildings].sort((a, b) => b.total - a.total);
  return { meter_type, unit, label, total: sorted.reduce((n, b) => n + b.total, 0), buildings: sorted };
}

function fixture(): ReportData {
  // Eleven energy buildings: eight layers of their own, three summed into "other".
  const energy = Array.from({ length: 11 }, (_, i) =>
    building(
      i,
      [100 + i * 10, i === 3 ? null : 90 + i, 80, 1000 * (i + 1)],
      i === 10 ? EVIL : `Building ${i}`,
    ),
  );
  const gas = [building(20, [12.5, 13, null, 11])];
  return {
    generated_at: '2024-03-05T10:00:00.000Z',
    database: 'meterflow',
    window: { from: DAYS[0]!, to: DAYS[3]!, days: DAYS },
    meters_by_type: [
      { meter_type: 'Energy', active: 12 },
      { meter_type: 'Water', active: 0 },
    ],
    series: [
      series('Energy', 'kWh', 'Energy', energy),
      series('Energy', 'm3', 'Energy (gas, by volume)', gas),
    ],
    unconverted: { units: ['therm'], meters: 1 },
    completeness: {
      total_meters: 40,
      mean_daily: 0.97,
      limit: 3,
      meters: [0, 0.5, 1].map((score, i) => ({
        connection_id: 'conn-a',
        meter_external_id: i === 0 ? `m-${EVIL}` : `m-${i}`,
        meter_type: 'Energy',
        asset_external_id: `site-${i}`,
        unit: 'kWh',
        days_with_data: 3,
        intervals: 288,
        expected: 384,
        score,
        building: i === 0 ? EVIL : `Building ${i}`,
        daily: [score, null, 1, 0.96],
      })),
    },
    quarantine: [
      {
        stage: 'usage',
        reason_code: 'VAL_NEGATIVE_CONSUMPTION',
        open: 7,
        redriven: 2,
        connections: ['conn-a', EVIL],
        first_at: '2024-03-04T08:00:00Z',
        last_at: '2024-03-05T09:00:00Z',
      },
      {
        stage: 'sink',
        reason_code: EVIL,
        open: 0,
        redriven: 1,
        connections: [],
        first_at: null,
        last_at: null,
      },
    ],
    syncs: [
      {
        connection_id: 'conn-a',
        provider: 'generic',
        runs: 3,
        last_run: 'conn-a-1',
        mode: 'incremental',
        status: 'failed',
        started_at: '2024-03-05T09:00:00Z',
        finished_at: '2024-03-05T09:01:00Z',
        last_success_at: '2024-03-04T09:01:00Z',
        intervals: 0,
        requests: 4,
        errors: 1,
        error_messages: [`POLL_HTTP_STATUS: 500 from provider ${EVIL}`],
      },
    ],
  };
}

const OWN_TAGS = new Set(
  (
    'html head meta title style body main header h1 h2 h3 p section div span figure figcaption svg line ' +
    'text rect g ul li table thead tbody tr th td code b polyline circle footer script'
  ).split(' '),
);

/**
 * Every tag of the page (opening and closing) with its attribute values emptied: what is left are
 * tag and attribute names. Escaped data has no "<" or '"', so it can add neither.
 */
function tags(html: string): Set<string> {
  return new Set((html.match(/<\/?[a-zA-Z][^>]*>/g) ?? []).map((t) => t.replace(/"[^"]*"/g, '""')));
}

/** The values of one attribute on every element of a class, in document order. */
function attrs(html: string, cls: string, attr: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(new RegExp(`<[a-z]+ class="${cls}"[^>]*>`, 'g'))) {
    const v = new RegExp(`${attr}="([^"]*)"`).exec(m[0]);
    if (v) out.push(v[1]!);
  }
  return out;
}

/** The consumption figure of one series (by its data-unit). */
function figure(html: string, unit: string): string {
  const start = html.indexOf(`data-chart="consumption" data-meter-type="Energy" data-unit="${unit}"`);
  expect(start).toBeGreaterThan(0);
  return html.slice(start, html.indexOf('</figure>', start));
}

describe('report HTML', () => {
  it('escapes every string from the data: no tag, attribute or entity of its own survives', () => {
    const html = renderReportHtml(fixture());
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Co&#39;');
    // Every tag is one the renderer writes, none has an event handler, one script (the page's own).
    const names = new Set([...tags(html)].map((t) => /^<\/?([a-zA-Z0-9]+)/.exec(t)![1]!.toLowerCase()));
    expect([...names].filter((n) => !OWN_TAGS.has(n))).toEqual([]);
    expect([...tags(html)].filter((t) => /\son[a-z]+\s*=/i.test(t))).toEqual([]);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('loads nothing: no src, href, url() or remote address; the CSP hashes are of its own style and script', () => {
    const html = renderReportHtml(fixture());
    expect([...tags(html)].filter((t) => /\s(src|href|xlink:href|srcset|action|data)=/i.test(t))).toEqual([]);
    expect(html).not.toMatch(/url\(|@import|https?:\/\//);
    const csp = /http-equiv="Content-Security-Policy" content="([^"]*)"/
      .exec(html)?.[1]
      ?.replace(/&#39;/g, "'");
    expect(csp).toMatch(/^default-src 'none'; /);
    const sha = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    expect(csp).toContain(`style-src ${sha(style)};`);
    expect(csp).toContain(`script-src ${sha(script)};`);
  });

  it('draws one bar per building and day with data, and the bars add up to the series total', () => {
    const data = fixture();
    const html = renderReportHtml(data);
    const energy = figure(html, 'kWh');
    const values = attrs(energy, 'bar', 'data-value').map(Number);
    const withData = data.series[0]!.buildings.flatMap((b) => b.daily.filter((v) => v !== null)).length;
    // The three smallest buildings share a layer: one bar per day for them, not three.
    expect(values).toHaveLength(withData - 3 * 4 + 4);
    expect(values.reduce((n, v) => n + v, 0)).toBeCloseTo(data.series[0]!.total, 9);
    expect(energy).toContain('3 other buildings');
    expect(energy.match(/<li data-series=/g)).toHaveLength(9);
    // A day without data has no bar, and every bar is drawn with a height.
    const gas = figure(html, 'm3');
    expect(attrs(gas, 'bar', 'data-day')).toEqual(['2024-03-01', '2024-03-02', '2024-03-04']);
    for (const h of attrs(energy, 'bar', 'height')) expect(Number(h)).toBeGreaterThan(0);
    expect(html).toContain('Energy (gas, by volume)');
  });

  it('draws one heat-map cell per meter and day; a day without a row is "none" and grey', () => {
    const html = renderReportHtml(fixture());
    const cells = attrs(html, 'cell', 'data-completeness');
    expect(cells).toHaveLength(3 * DAYS.length);
    expect(cells.slice(0, 4)).toEqual(['0', 'none', '1', '0.96']);
    expect(html).toContain('The 3 least complete of 40 meters');
    expect(completenessColor(null)).not.toBe(completenessColor(0));
    expect(completenessColor(0)).not.toBe(completenessColor(0.5));
    expect(completenessColor(1)).not.toBe(completenessColor(0.96));
  });

  it('shows quarantine by reason with open and redriven bars, its meaning, and the syncs with their errors', () => {
    const html = renderReportHtml(fixture());
    expect(attrs(html, 'qbar', 'data-value')).toEqual(['7', '2', '1']);
    expect(html).toContain('consumption is negative');
    expect(html).toContain('<span class="status bad">failed</span>');
    expect(html).toContain('POLL_HTTP_STATUS: 500 from provider &lt;script&gt;');
    expect(html).toContain('25 h ago');
    expect(html).toContain('units without a conversion (therm)');
  });

  it('renders an empty database as a page that says so', () => {
    const html = renderReportHtml({
      ...fixture(),
      window: null,
      series: [],
      unconverted: { units: [], meters: 0 },
      completeness: { meters: [], total_meters: 0, mean_daily: null, limit: 60 },
      quarantine: [],
      syncs: [],
    });
    expect(html).toContain('No consumption in ClickHouse yet');
    expect(html).toContain('Nothing quarantined');
    expect(html).toContain('No sync has run yet');
    expect(html).not.toContain('class="bar"');
    expect(html).toMatch(/<\/html>\n$/);
  });

  it('numbers and scales for people', () => {
    expect(formatNumber(5935045.801)).toBe('5,935,046');
    expect(formatNumber(42.46)).toBe('42.5');
    expect(formatNumber(0.12345)).toBe('0.123');
    expect(niceScale(123_000)).toEqual({ max: 150_000, step: 50_000 });
    expect(niceScale(0)).toEqual({ max: 1, step: 0.25 });
    const s = niceScale(7.3);
    expect(s.max).toBeGreaterThanOrEqual(7.3);
    expect(s.max / s.step).toBeLessThanOrEqual(5);
    const few = layersOf(series('Water', 'm3', 'Water', [building(1, [1, 2]), building(2, [3, null])]));
    expect(few.map((l) => l.name)).toEqual(['Building 1', 'Building 2']);
  });
});
