/**
 * A provider with interval AND register meters on one usage endpoint, configured the only way a
 * connection file allows today: two connections, one per usage kind, each listing every meter.
 * Every row of the other kind fails its connection's field mapping. A year is synced and then
 * replayed through the real CLI processes: the processors stay under 512 MB, the quarantine holds
 * one bounded record per rejected message and reason (not one envelope copy per row), and every
 * meter whose kind matches its connection has exact daily and monthly totals, DST days included.
 */
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ClickHouseClient } from '@clickhouse/client';
import { startGenericMixedSimulator, type MixedSimulator } from '../../simulators/generic-mixed.js';
import { createTestContext, type TestContext } from '../support/context.js';
import {
  type CliProcess,
  consumptionTotals,
  eventually,
  expectSameTotals,
  readTopic,
  untilQuiet,
  untilTotalsLoaded,
  cliRunner,
} from '../support/pipeline.js';

const FROM = '2024-01-01';
const DAYS = 366;
const SYNC_TO = '2025-01-02'; // one day past the data: the last register reading is at 2025-01-01 00:00
const LIMIT_MB = 512;

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

/** Peak resident set of a live process, from the kernel's high-water mark. */
function peakRssMb(p: CliProcess): number {
  const status = readFileSync(`/proc/${p.child.pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  if (!kb) throw new Error(`no VmHWM for pid ${p.child.pid}`);
  return Number(kb) / 1024;
}

function connectionFile(id: string, kind: 'consumption' | 'reading'): Record<string, unknown> {
  return {
    id,
    provider: 'generic',
    name: `Provider C (${kind})`,
    baseUrls: { production: sim.url },
    auth: { type: 'apiKey', in: 'header', name: 'X-Api-Key', keys: [{ valueEnv: 'MIXED_API_KEY' }] },
    timeZone: 'Europe/Berlin',
    usageStart: FROM,
    meterTypes: {
      electricity: { type: 'Energy', subtype: 'Off-site Electricity' },
      gas: { type: 'Energy', subtype: 'Natural Gas' },
      water: { type: 'Water', subtype: 'Potable' },
    },
    ...(kind === 'reading' ? { rollover: { default: 100_000 } } : {}),
    http: { timeoutMs: 10_000, maxRetries: 4, backoffBaseMs: 10, backoffMaxMs: 100 },
    generic: {
      format: 'json',
      meters: {
        path: '/v1/meters',
        query: { limit: '50' },
        itemsPath: 'meters',
        pagination: { type: 'cursor', cursorParam: 'cursor', nextPath: 'next_cursor' },
        fields: {
          externalId: 'meter_id',
          assetId: 'site_id',
          assetName: 'site_name',
          type: 'medium',
          unit: 'unit',
          timeZone: 'time_zone',
          metadata: { kind: 'kind', resolution_minutes: 'resolution_minutes' },
        },
      },
      usage: {
        path: '/v1/meters/{meterId}/usage',
        kind,
        itemsPath: 'rows',
        dateParams: { from: 'start', to: 'end', format: 'date', toInclusive: false },
        maxRangeDays: 31,
        fields:
          kind === 'consumption'
            ? { meterId: 'meter_id', start: 'start', end: 'end', value: 'value', estimated: 'estimated' }
            : { meterId: 'meter_id', timestamp: 'read_at', value: 'reading', estimated: 'estimated' },
      },
    },
  };
}

/** Connection that matches each meter's kind. */
const owner = (kind: 'interval' | 'register'): string =>
  kind === 'interval' ? 'mixed-interval' : 'mixed-register';

function expected(grain: 'daily' | 'monthly'): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of sim.truth().meters) {
    const values = grain === 'daily' ? sim.truth().daily(m.meter_id) : sim.truth().monthly(m.meter_id);
    for (const [period, v] of values) out.set(`${owner(m.kind)}/${m.meter_id}|${period}`, v);
  }
  return out;
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
  sim = await startGenericMixedSimulator({ sites: 2, from: FROM, days: DAYS });
  env = { MIXED_API_KEY: sim.apiKey };
  dir = mkdtempSync(join(tmpdir(), 'mf-mixed-'));
  writeFileSync(join(dir, 'mixed-interval.yaml'), stringify(connectionFile('mixed-interval', 'consumption')));
  writeFileSync(join(dir, 'mixed-register.yaml'), stringify(connectionFile('mixed-register', 'reading')));
  ch = ctx.clickhouse();
});

afterAll(async () => {
  runner.killAll();
  await sim?.close();
  await ctx?.cleanup();
});

describe('interval and register meters on one endpoint, as two connections', () => {
  let processors: CliProcess;
  const peaks: number[] = [];

  it('syncs a year with exact totals for every meter of the matching kind, processors under 512 MB', async () => {
    expect((await cliOk(['migrate'])).code).toBe(0);
    processors = cli(['run', 'processors']);
    cli(['run', 'sinks']);
    for (const id of ['mixed-interval', 'mixed-register']) {
      const r = await cliOk(['backfill', '--connection', id, '--from', FROM, '--to', SYNC_TO]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).not.toContain(sim.apiKey);
    }
    const want = expected('daily');
    await untilTotalsLoaded(ctx, ch, 'usage_daily_latest', want, runner.outputs);
    expectSameTotals(await consumptionTotals(ctx, ch, 'usage_daily_latest'), want, 'daily');
    expectSameTotals(
      await consumptionTotals(ctx, ch, 'usage_monthly_latest'),
      expected('monthly'),
      'monthly',
    );
    peaks.push(peakRssMb(processors));
    expect(peaks[0]).toBeLessThan(LIMIT_MB);
  }, 900_000);

  it('quarantines each mismatched message once per reason, with its bytes once', async () => {
    const raw = await readTopic(ctx, 'rawUsage');
    const mismatched = raw.filter((r) => {
      const m = sim.truth().meters.find((x) => x.meter_id === r.value.external_id);
      return m !== undefined && owner(m.kind) !== r.value.connection_id;
    });
    expect(mismatched.length).toBeGreaterThan(0);
    const quarantine = await readTopic(ctx, 'quarantine');
    const perMessage = new Map<string, number>();
    for (const q of quarantine) {
      const k = `${q.value.source_topic}:${q.value.source_partition}:${q.value.source_offset}|${q.value.reason_code}`;
      perMessage.set(k, (perMessage.get(k) ?? 0) + 1);
    }
    expect(Math.max(...perMessage.values())).toBe(1);
    // Bytes are bounded by the input: no record carries more than its source envelope plus a capped detail.
    const rawBytes = raw.reduce((s, r) => s + r.value.payload.length, 0);
    const quarantineBytes = quarantine.reduce((s, q) => s + q.value.original.length, 0);
    expect(quarantineBytes).toBeLessThanOrEqual(rawBytes * 2);
    for (const q of quarantine) expect(q.value.detail?.length ?? 0).toBeLessThan(20_000);
  }, 300_000);

  it('replays the year with the same totals and processors still under 512 MB', async () => {
    const group = `${ctx.config.kafka.topicPrefix}processors.usage`;
    processors.child.kill('SIGTERM');
    expect(await processors.exited).toBe(0);
    expect(
      await eventually(
        async () =>
          (await cliOk(['replay', '--topic', 'raw.usage', '--group', group, '--from', 'earliest'])).code ===
          0,
        60_000,
        2_000,
      ),
    ).toBe(true);
    processors = cli(['run', 'processors']);
    expect(await untilQuiet(ctx)).toBe(true);
    expectSameTotals(
      await consumptionTotals(ctx, ch, 'usage_daily_latest'),
      expected('daily'),
      'daily after replay',
    );
    expectSameTotals(
      await consumptionTotals(ctx, ch, 'usage_monthly_latest'),
      expected('monthly'),
      'monthly after replay',
    );
    peaks.push(peakRssMb(processors));
    console.log(`processors peak RSS: sync ${peaks[0]?.toFixed(0)} MB, replay ${peaks[1]?.toFixed(0)} MB`);
    expect(peaks[1]).toBeLessThan(LIMIT_MB);
  }, 900_000);
});
