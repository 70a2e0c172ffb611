/**
 * The HTML report end to end: a provider with electricity in kWh, heat in MWh, water and gas in
 * m3 synced through the real CLI processes into ClickHouse, one undecodable record quarantined,
 * then `meterflow report` run as a process and its file opened in headless Chromium (Debian's
 * package; `npm test` installs it through bin/ensure-deps.mjs) over the DevTools protocol. The
 * page requests nothing but itself, logs nothing, throws nothing, its own script runs (the CSP
 * allows it by hash), and its charts carry the provider's numbers converted to kWh.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'undici';
import type { ClickHouseClient } from '@clickhouse/client';
import { REPO_ROOT } from '../../lib/config.js';
import type { GenericXmlCsvSimulator } from '../../simulators/generic-xml-csv.js';
import { startNordicXml } from '../support/nordic-xml.js';
import { createTestContext, type TestContext } from '../support/context.js';
import { eventually, produceBytes, untilQuiet, cliRunner } from '../support/pipeline.js';

const FROM = '2024-03-01';
const TO = '2024-04-01';
/** Where a person can look at what the browser saw, after the run. */
const OUTPUT = join(REPO_ROOT, '.local/test-output/report');

let ctx: TestContext;
let sim: GenericXmlCsvSimulator;
let ch: ClickHouseClient;
let dir: string;
let env: Record<string, string>;
const runner = cliRunner(
  () => ctx,
  () => ({ MF_CONNECTIONS_DIR: dir, ...env }),
);
const cli = runner.start;
const cliExit = runner.run;
let browser: Browser | undefined;

async function query<T>(sql: string): Promise<T[]> {
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

// ---- a headless Chromium driven over the DevTools protocol ----------------------------------

/** $MF_CHROMIUM, else chromium or chromium-browser on PATH (what bin/ensure-deps.mjs installs). */
function chromiumPath(): string {
  const given = process.env.MF_CHROMIUM?.trim();
  if (given) return given;
  for (const d of (process.env.PATH ?? '').split(delimiter).filter(Boolean))
    for (const name of ['chromium', 'chromium-browser']) if (existsSync(join(d, name))) return join(d, name);
  throw new Error(
    'Chromium is not installed: `npm test` installs it (bin/ensure-deps.mjs runs `apt-get install chromium` as root); ' +
      'else install the chromium package or set MF_CHROMIUM to a Chromium binary',
  );
}

/** The fields of the events this test reads (console, exceptions, log, network). */
interface CdpEvent {
  method: string;
  params: {
    type?: string;
    args?: unknown[];
    exceptionDetails?: unknown;
    entry?: { level: string; source: string; text: string };
    request?: { url: string };
  };
  sessionId?: string;
}

interface Browser {
  child: ChildProcess;
  profile: string;
  /** Sends a command (to a page when sessionId is given) and resolves with its result. */
  send<T = Record<string, unknown>>(method: string, params?: object, sessionId?: string): Promise<T>;
  /** Every event so far. */
  events: CdpEvent[];
  /** Resolves with the first event (past or future) that matches, or rejects after timeoutMs. */
  waitFor(match: (e: CdpEvent) => boolean, timeoutMs: number): Promise<CdpEvent>;
  close(): Promise<void>;
}

async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'mf-chromium-'));
  const child = spawn(
    chromiumPath(),
    [
      '--headless',
      '--no-sandbox', // runs as root in CI containers
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--hide-scrollbars',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-extensions',
      '--disable-sync',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      // Nothing leaves the machine: every host name resolves to nothing (file:// needs none).
      '--host-resolver-rules=MAP * ~NOTFOUND',
      '--js-flags=--max-old-space-size=256',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      'about:blank',
    ],
    // An empty or unwritable HOME must not matter: the profile is the browser's whole world.
    { env: { ...process.env, HOME: profile }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Chromium did not start in 30 s:\n${stderr}`)), 30_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20_000);
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Chromium exited (${code}) before it listened:\n${stderr}`));
    });
  });
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`no DevTools connection to ${url}`)), { once: true });
  });
  let nextId = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const events: CdpEvent[] = [];
  const waiters: { match: (e: CdpEvent) => boolean; resolve: (e: CdpEvent) => void }[] = [];
  ws.addEventListener('message', (ev) => {
    const m = JSON.parse(String(ev.data)) as {
      id?: number;
      result?: unknown;
      error?: { message: string };
    } & CdpEvent;
    if (m.id !== undefined) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p?.reject(new Error(`${m.error.message}`));
      else p?.resolve(m.result);
      return;
    }
    events.push(m);
    for (const w of waiters.splice(0)) {
      if (w.match(m)) w.resolve(m);
      else waiters.push(w);
    }
  });
  const send = <T>(method: string, params: object = {}, sessionId?: string) =>
    new Promise<T>((resolve, reject) => {
      const id = ++nextId;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: no answer in 30 s`));
      }, 30_000);
      pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  const waitFor = (match: (e: CdpEvent) => boolean, timeoutMs: number) => {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<CdpEvent>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching DevTools event in ${timeoutMs} ms`)),
        timeoutMs,
      );
      waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  };
  const close = async () => {
    await send('Browser.close').catch(() => undefined);
    ws.close();
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
    rmSync(profile, { recursive: true, force: true });
  };
  return { child, profile, send, events, waitFor, close };
}

interface PageFacts {
  title: string;
  charts: {
    meterType: string;
    unit: string;
    bars: number;
    visibleBars: number;
    sum: number;
    legend: number;
  }[];
  cells: number;
  cellsWithData: number;
  visibleCells: number;
  quarantine: [string, string, number][];
  syncRows: string[];
  scripts: number;
  dimmed: number;
  dimmedAfter: number;
  overflowing: string[];
  sorted: string | null;
  pageWidth: number;
  viewportWidth: number;
}

/** What the page's DOM shows after it loaded: read in the page itself, after its script ran. */
const INSPECT = `(() => {
  const num = (el, a) => Number(el.getAttribute(a));
  const visible = (el) => { const b = el.getBoundingClientRect(); return b.width > 0 && b.height > 0; };
  const charts = [...document.querySelectorAll('figure[data-chart="consumption"]')].map((f) => {
    const bars = [...f.querySelectorAll('rect.bar')];
    return {
      meterType: f.getAttribute('data-meter-type'),
      unit: f.getAttribute('data-unit'),
      bars: bars.length,
      visibleBars: bars.filter(visible).length,
      sum: bars.reduce((n, r) => n + num(r, 'data-value'), 0),
      legend: f.querySelectorAll('.legend li').length,
    };
  });
  const cells = [...document.querySelectorAll('figure[data-chart="completeness"] rect.cell')];
  // The page's script: hovering a legend entry dims the other buildings; a header click sorts.
  const legend = document.querySelector('figure[data-chart="consumption"] .legend li');
  legend && legend.dispatchEvent(new MouseEvent('mouseenter'));
  const dimmed = document.querySelectorAll('rect.bar.dim').length;
  legend && legend.dispatchEvent(new MouseEvent('mouseleave'));
  const dimmedAfter = document.querySelectorAll('rect.bar.dim').length;
  const th = document.querySelector('table[data-table="buildings"] thead th.num');
  th && th.click();
  return {
    title: document.title,
    charts,
    cells: cells.length,
    cellsWithData: cells.filter((c) => c.getAttribute('data-completeness') !== 'none').length,
    visibleCells: cells.filter(visible).length,
    quarantine: [...document.querySelectorAll('rect.qbar')].map((r) => [r.closest('g').getAttribute('data-reason'), r.getAttribute('data-status'), num(r, 'data-value')]),
    syncRows: [...document.querySelectorAll('table[data-table="syncs"] tbody tr')].map((r) => r.getAttribute('data-connection')),
    scripts: document.scripts.length,
    dimmed,
    dimmedAfter,
    sorted: th ? th.getAttribute('aria-sort') : null,
    overflowing: [...document.querySelectorAll('.scroll')].filter((d) => d.scrollWidth > d.clientWidth).map((d) => d.firstElementChild.getAttribute('data-table')),
    pageWidth: document.documentElement.scrollWidth,
    viewportWidth: window.innerWidth,
  };
})()`;

// ---- the pipeline ---------------------------------------------------------------------------

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
  ({ sim, dir, env } = await startNordicXml({ id: 'rp-nordic', envPrefix: 'RP', seed: 31, from: FROM }));
  ch = ctx.clickhouse();
});

afterAll(async () => {
  await browser?.close();
  runner.killAll();
  await sim?.close();
  await ctx?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The provider's energy in kWh (kWh and MWh meters) over the synced month. */
function truthKwh(): number {
  const t = sim.truth();
  let kwh = 0;
  for (const m of t.meters) {
    if (m.medium !== 'Electricity' && m.medium !== 'Heat') continue;
    const sum = t.consumption(m.id, 'daily', FROM, TO).reduce((s, r) => s + r.consumption, 0);
    kwh += m.unit === 'MWh' ? sum * 1000 : sum;
  }
  return kwh;
}

interface ReportJson {
  path: string;
  window: { from: string; to: string; days: string[] };
  series: { meter_type: string; unit: string; total: number; buildings: unknown[] }[];
  completeness: { total_meters: number; meters: unknown[] };
  quarantine: { reason_code: string; open: number }[];
  syncs: { connection_id: string; status: string }[];
}

describe('meterflow report end to end', () => {
  it('writes an HTML report that renders in headless Chromium with the data, no console errors, nothing loaded', async () => {
    const db = ctx.config.clickhouse.database;
    expect((await cliExit(['migrate'])).code).toBe(0);
    cli(['run', 'processors']);
    cli(['run', 'sinks']);
    const backfill = await cliExit(['backfill', '--connection', 'rp-nordic', '--from', FROM, '--to', TO]);
    expect(backfill.code, backfill.out).toBe(0);
    // One record no schema can read: the usage stage quarantines it (NORM_DECODE_FAILED).
    await produceBytes(ctx, 'rawUsage', [
      { key: 'rp-nordic/poison', value: Buffer.from('not an avro record') },
    ]);

    const loaded = async () => {
      const [q] = await query<{ n: string }>(`SELECT count() AS n FROM ${db}.quarantine_latest`);
      const [d] = await query<{ n: string }>(
        `SELECT uniqExact(meter_external_id) AS n FROM ${db}.usage_daily_latest WHERE channel = 'consumption'`,
      );
      const [s] = await query<{ n: string }>(
        `SELECT count() AS n FROM ${db}.sync_runs_latest WHERE status = 'succeeded'`,
      );
      return Number(q?.n) >= 1 && Number(d?.n) === 8 && Number(s?.n) >= 1;
    };
    expect(await eventually(loaded, 300_000, 2_000), runner.outputs()).toBe(true);
    expect(await untilQuiet(ctx)).toBe(true);

    // The command a person runs: summary lines in kWh, the path last.
    mkdirSync(OUTPUT, { recursive: true });
    const file = join(OUTPUT, 'report.html');
    rmSync(file, { force: true });
    const human = await cliExit(['report', '--out', file]);
    expect(human.code, human.out).toBe(0);
    expect(human.stdout).toMatch(/^ {2}Energy +[\d,]+ kWh +from 2 building\(s\)$/m);
    expect(human.stdout).toMatch(/^ {2}Energy \(gas, by volume\) +[\d,.]+ m3 /m);
    expect(human.stdout.trim().split('\n').at(-1)).toBe(`  report: ${file}`);
    expect(existsSync(file)).toBe(true);

    // --json: the same report as data; energy in kWh equals the provider's, converted.
    const json = await cliExit(['report', '--json', '--out', join(dir, 'again.html')]);
    expect(json.code, json.out).toBe(0);
    const data = JSON.parse(json.stdout) as ReportJson;
    const energy = data.series.find((s) => s.meter_type === 'Energy' && s.unit === 'kWh')!;
    const want = truthKwh();
    expect(Math.abs(energy.total - want)).toBeLessThan(1e-6 * want);
    expect(data.series.map((s) => `${s.meter_type} ${s.unit}`).sort()).toEqual([
      'Energy kWh',
      'Energy m3',
      'Water m3',
    ]);
    expect(data.completeness.total_meters).toBe(8);
    expect(data.quarantine.map((q) => [q.reason_code, q.open])).toEqual([['NORM_DECODE_FAILED', 1]]);
    expect(data.syncs.map((s) => [s.connection_id, s.status])).toEqual([['rp-nordic', 'succeeded']]);

    // The browser.
    browser = await launchChromium();
    const { targetId } = await browser.send<{ targetId: string }>('Target.createTarget', {
      url: 'about:blank',
    });
    const { sessionId } = await browser.send<{ sessionId: string }>('Target.attachToTarget', {
      targetId,
      flatten: true,
    });
    const page = <T = Record<string, unknown>>(method: string, params: object = {}) =>
      browser!.send<T>(method, params, sessionId);
    for (const domain of ['Runtime', 'Log', 'Network', 'Page']) await page(`${domain}.enable`);
    await page('Emulation.setDeviceMetricsOverride', {
      width: 1200,
      height: 900,
      deviceScaleFactor: 1,
      mobile: false,
    });
    const url = pathToFileURL(file).href;
    await page('Page.navigate', { url });
    await browser.waitFor((e) => e.sessionId === sessionId && e.method === 'Page.loadEventFired', 30_000);
    const got = await page<{ result: { value: PageFacts }; exceptionDetails?: unknown }>('Runtime.evaluate', {
      expression: INSPECT,
      returnByValue: true,
    });
    expect(got.exceptionDetails).toBeUndefined();
    const dom = got.result.value;
    // Late errors (a timer, a failed load) have had the evaluation's time to arrive; give a little more.
    await new Promise((r) => setTimeout(r, 500));

    // Nothing said, nothing thrown, nothing but the file requested.
    const mine = browser.events.filter((e) => e.sessionId === sessionId);
    const said = mine
      .filter((e) => e.method === 'Runtime.consoleAPICalled')
      .map((e) => `${e.params.type ?? '?'}: ${JSON.stringify(e.params.args)}`);
    const thrown = mine
      .filter((e) => e.method === 'Runtime.exceptionThrown')
      .map((e) => JSON.stringify(e.params.exceptionDetails));
    const logged = mine
      .filter(
        (e) => e.method === 'Log.entryAdded' && ['error', 'warning'].includes(e.params.entry?.level ?? ''),
      )
      .map((e) => JSON.stringify(e.params.entry));
    const requested = mine
      .filter((e) => e.method === 'Network.requestWillBeSent')
      .map((e) => e.params.request?.url);
    const failed = mine
      .filter((e) => e.method === 'Network.loadingFailed')
      .map((e) => JSON.stringify(e.params));
    expect({ said, thrown, logged, failed }).toEqual({ said: [], thrown: [], logged: [], failed: [] });
    expect(requested).toEqual([url]);

    // Charts with data: every bar drawn, and the kWh bars add up to the provider's energy.
    expect(dom.title).toContain(`${data.window.from} to ${data.window.to}`);
    expect(dom.scripts).toBe(1);
    const kwh = dom.charts.find((c) => c.meterType === 'Energy' && c.unit === 'kWh')!;
    expect(kwh.bars).toBeGreaterThanOrEqual(2 * 28);
    expect(kwh.visibleBars).toBe(kwh.bars);
    expect(kwh.legend).toBe(2);
    expect(Math.abs(kwh.sum - want)).toBeLessThan(1e-6 * want);
    for (const c of dom.charts) expect(c.visibleBars, `${c.meterType} ${c.unit}`).toBeGreaterThan(0);
    expect(dom.charts).toHaveLength(3);
    expect(dom.cells).toBe(8 * data.window.days.length);
    expect(dom.visibleCells).toBe(dom.cells);
    expect(dom.cellsWithData).toBeGreaterThanOrEqual(8 * 28);
    expect(dom.quarantine).toEqual([['NORM_DECODE_FAILED', 'open', 1]]);
    expect(dom.syncRows).toEqual(['rp-nordic']);
    // Its script ran (the CSP let it): the legend highlights, the header sorts.
    expect(dom.dimmed).toBeGreaterThan(0);
    expect(dom.dimmedAfter).toBe(0);
    expect(dom.sorted).toBe('descending');
    // Laid out for the window: nothing wider than the page, no table that needs scrolling.
    expect(dom.pageWidth).toBeLessThanOrEqual(dom.viewportWidth);
    expect(dom.overflowing).toEqual([]);

    // A screenshot of the whole page, for a person to look at (.local/test-output/report/).
    const metrics = await page<{ cssContentSize: { height: number } }>('Page.getLayoutMetrics');
    const height = Math.ceil(metrics.cssContentSize.height);
    const shot = await page<{ data: string }>('Page.captureScreenshot', {
      format: 'png',
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: 1200, height, scale: 1 },
    });
    const png = Buffer.from(shot.data, 'base64');
    writeFileSync(join(OUTPUT, 'report.png'), png);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(1200); // IHDR width
    expect(png.readUInt32BE(20)).toBe(height);
    expect(height).toBeGreaterThan(1500);
    await browser.close();
    browser = undefined;
  }, 600_000);
});
