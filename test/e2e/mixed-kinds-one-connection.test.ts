/**
 * Provider C (15-minute electricity, hourly gas, daily water registers with a rollover, all on one
 * usage endpoint, plus calculated "virtual" meters with no usage) described by ONE connection file:
 * the shipped example connections/examples/generic-mixed-kinds.yaml, pointed at the simulator. Each
 * meter's kind comes from its `kind` field; the virtual meters are left out by meters.filter. A
 * year is synced through the real CLI processes: every meter's daily and monthly totals equal the
 * simulator's truth (DST days included, the rollover undone), each meter and site is in ClickHouse
 * once with the reading type of its kind, and nothing is quarantined.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { ClickHouseClient } from '@clickhouse/client';
import { startGenericMixedSimulator, type MixedSimulator } from '../../simulators/generic-mixed.js';
import { createTestContext, type TestContext } from '../support/context.js';
import {
  consumptionTotals,
  expectSameTotals,
  readTopic,
  untilTotalsLoaded,
  cliRunner,
} from '../support/pipeline.js';

const FROM = '2024-01-01';
const DAYS = 366;
const SYNC_TO = '2025-01-02'; // one day past the data: the last register reading is at 2025-01-01 00:00
const ID = 'provider-c';
const EXAMPLE = join(import.meta.dirname, '../../connections/examples/generic-mixed-kinds.yaml');

let ctx: TestContext;
let sim: MixedSimulator;
let ch: ClickHouseClient;
let dir: string;
const runner = cliRunner(
  () => ctx,
  () => ({ MF_CONNECTIONS_DIR: dir, ...env }),
);
const cli = runner.start;
const cliOk = runner.run;
let env: Record<string, string>;

/** The shipped example, unchanged but for where the provider is and how patiently it is asked. */
function connectionFile(): Record<string, unknown> {
  const c = parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
  expect(c.id).toBe(ID);
  delete c.schedule;
  return {
    ...c,
    baseUrls: { production: sim.url },
    auth: { type: 'apiKey', in: 'header', name: 'X-Api-Key', keys: [{ valueEnv: 'MIXED_API_KEY' }] },
    http: { timeoutMs: 10_000, maxRetries: 4, backoffBaseMs: 10, backoffMaxMs: 100 },
  };
}

async function query<T>(sql: string): Promise<T[]> {
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

function expected(grain: 'daily' | 'monthly'): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of sim.truth().meters) {
    const values = grain === 'daily' ? sim.truth().daily(m.meter_id) : sim.truth().monthly(m.meter_id);
    for (const [period, v] of values) out.set(`${ID}/${m.meter_id}|${period}`, v);
  }
  return out;
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
  sim = await startGenericMixedSimulator({ sites: 2, from: FROM, days: DAYS, virtualMeters: true });
  env = { MIXED_API_KEY: sim.apiKey };
  dir = mkdtempSync(join(tmpdir(), 'mf-mixed-one-'));
  writeFileSync(join(dir, `${ID}.yaml`), stringify(connectionFile()));
  ch = ctx.clickhouse();
});

afterAll(async () => {
  runner.killAll();
  await sim?.close();
  await ctx?.cleanup();
});

describe('interval and register meters on one endpoint, as one connection', () => {
  it('syncs a year with exact daily and monthly totals for every meter, DST days and the rollover included', async () => {
    expect((await cliOk(['migrate'])).code).toBe(0);
    cli(['run', 'processors']);
    cli(['run', 'sinks']);
    const r = await cliOk(['backfill', '--connection', ID, '--from', FROM, '--to', SYNC_TO]);
    // Exit 0: the virtual meters (usage 404) were never requested.
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toContain(sim.apiKey);
    const want = expected('daily');
    await untilTotalsLoaded(ctx, ch, 'usage_daily_latest', want, runner.outputs);
    const daily = await consumptionTotals(ctx, ch, 'usage_daily_latest');
    expectSameTotals(daily, want, 'daily');
    expectSameTotals(
      await consumptionTotals(ctx, ch, 'usage_monthly_latest'),
      expected('monthly'),
      'monthly',
    );
    // The days of the DST changes are 23 and 25 hours long and still exact (checked above); make
    // sure they were among the compared days for a 15-minute meter.
    for (const day of ['2024-03-31', '2024-10-27']) expect(daily.has(`${ID}/E-0001|${day}`), day).toBe(true);
  }, 900_000);

  it('each meter and site is in ClickHouse once, with the reading type of its kind; virtual meters are not', async () => {
    const db = ctx.config.clickhouse.database;
    const meters = await query<{ external_id: string; reading_type: string; n: string }>(
      `SELECT external_id, any(reading_type) AS reading_type, count() AS n FROM ${db}.meters_latest WHERE connection_id = '${ID}' GROUP BY external_id ORDER BY external_id`,
    );
    expect(meters.map((m) => [m.external_id, m.reading_type, Number(m.n)])).toEqual(
      sim
        .truth()
        .meters.map((m) => [m.meter_id, m.kind === 'register' ? 'reading' : 'consumption', 1])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    const assets = await query<{ external_id: string; n: string }>(
      `SELECT external_id, count() AS n FROM ${db}.assets_latest WHERE connection_id = '${ID}' GROUP BY external_id ORDER BY external_id`,
    );
    expect(assets.map((a) => [a.external_id, Number(a.n)])).toEqual([
      ['S-01', 1],
      ['S-02', 1],
    ]);
  }, 60_000);

  it('nothing is quarantined', async () => {
    const quarantine = await readTopic(ctx, 'quarantine');
    expect(quarantine.map((q) => `${q.value.reason_code}: ${q.value.message}`).slice(0, 5)).toEqual([]);
    const raw = await readTopic(ctx, 'rawEntities');
    expect(raw.some((r) => r.value.external_id.startsWith('V-'))).toBe(false);
  }, 120_000);
});
