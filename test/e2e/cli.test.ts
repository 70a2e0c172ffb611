/**
 * End to end through the operator's CLI, as separate processes, on real Kafka, registry and
 * ClickHouse with the Arcadia simulator as the provider: sync, the stream into ClickHouse,
 * reconcile, a quarantined record fixed and redriven, a replay refused while the group runs and
 * then done, and status. Assertions are on topic and ClickHouse contents.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ClickHouseClient } from '@clickhouse/client';
import { startArcadiaSimulator, type ArcadiaSimulator } from '../../simulators/arcadia.js';
import type { RawEnvelope } from '../../schemas/records.js';
import { arcadiaConnectionFile, arcadiaCredentials, quickArcadia } from '../support/arcadia-connection.js';
import { createTestContext, type TestContext } from '../support/context.js';
import {
  type CliProcess,
  eventually,
  produceRaw,
  readTopic,
  untilQuiet,
  cliRunner,
} from '../support/pipeline.js';

const FROM = Date.UTC(2024, 2, 1);
const TO = Date.UTC(2024, 3, 1);
const ENV = { E2E_ARC_ID: 'e2e-client', E2E_ARC_SECRET: 'e2e-secret-value' };

let ctx: TestContext;
let sim: ArcadiaSimulator;
let ch: ClickHouseClient;
let dir: string;
const runner = cliRunner(
  () => ctx,
  () => ({ MF_CONNECTIONS_DIR: dir, ...ENV }),
);
const cli = runner.start;
const cliOk = runner.run;

async function query<T>(sql: string): Promise<T[]> {
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

function truthTotals(): Map<string, number> {
  const totals = new Map<string, number>();
  const t = sim.truth();
  for (const m of t.meters) {
    let sum = 0;
    for (const iv of t.intervals(m.id, FROM, TO)) if (!iv.missing) sum += iv.importKwh;
    totals.set(m.id, sum);
  }
  return totals;
}

async function clickhouseTotals(): Promise<Map<string, number>> {
  const db = ctx.config.clickhouse.database;
  const rows = await query<{ meter_external_id: string; total: number }>(
    `SELECT meter_external_id, sum(value) AS total FROM ${db}.usage_daily_latest WHERE connection_id = 'e2e-arcadia' AND channel = 'consumption' GROUP BY meter_external_id`,
  );
  return new Map(rows.map((r) => [r.meter_external_id, Number(r.total)]));
}

/** Per meter: daily rows, their periods and interval counts, for a failure message. */
async function dailyShape(): Promise<string> {
  const db = ctx.config.clickhouse.database;
  const rows = await query<Record<string, unknown>>(
    `SELECT meter_external_id, count() AS days, min(period) AS first, max(period) AS last, sum(interval_count) AS intervals, groupUniqArray(time_zone) AS zones, max(length(period)) AS longest_period FROM ${db}.usage_daily_latest WHERE connection_id = 'e2e-arcadia' AND channel = 'consumption' GROUP BY meter_external_id`,
  );
  return JSON.stringify(rows);
}

async function expectTotalsEqual(actual: Map<string, number>, expected: Map<string, number>) {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  const shape = await dailyShape();
  for (const [k, v] of expected) expect(actual.get(k), `${k}: ${shape}`).toBeCloseTo(v, 6);
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
  sim = await startArcadiaSimulator({
    seed: 5,
    credentials: 1,
    sites: 2,
    meters: 4,
    from: '2024-03-01',
    days: 31,
    activationPolls: 1,
    timeZones: ['Europe/Helsinki', 'America/New_York'],
  });
  dir = mkdtempSync(join(tmpdir(), 'mf-e2e-'));
  writeFileSync(
    join(dir, 'e2e-arcadia.yaml'),
    stringify(arcadiaConnectionFile(sim, 'e2e-arcadia', 'E2E_ARC', quickArcadia(sim))),
  );
  // The simulator's credentials match ENV.
  Object.assign(ENV, arcadiaCredentials(sim, 'E2E_ARC'));
  ch = ctx.clickhouse();
});

afterAll(async () => {
  runner.killAll();
  await sim?.close();
  await ctx?.cleanup();
});

describe('meterflow CLI end to end', () => {
  let processors: CliProcess;

  it('syncs a connection into ClickHouse with totals equal to the provider', async () => {
    expect((await cliOk(['migrate'])).code).toBe(0);
    processors = cli(['run', 'processors']);
    cli(['run', 'sinks']);

    const sync = await cliOk(['sync', '--connection', 'e2e-arcadia', '--to', '2024-04-01']);
    expect(sync.code, sync.out).toBe(0);
    expect(sync.out).toMatch(/e2e-arcadia: succeeded/);
    expect(sync.out).not.toContain(ENV.E2E_ARC_SECRET);

    // Raw topics hold every meter; nothing carries the secret.
    const entities = await readTopic(ctx, 'rawEntities');
    expect(
      new Set(entities.filter((e) => e.value.format === 'arcadia.meter').map((e) => e.value.external_id)),
    ).toEqual(new Set(sim.truth().meters.map((m) => m.id)));
    for (const e of entities) expect(JSON.stringify(e.value)).not.toContain(ENV.E2E_ARC_SECRET);

    const expected = truthTotals();
    const loaded = await eventually(
      async () => (await clickhouseTotals()).size === expected.size,
      180_000,
      2_000,
    );
    expect(loaded, runner.outputs()).toBe(true);
    expect(await untilQuiet(ctx, 180_000)).toBe(true);
    await expectTotalsEqual(await clickhouseTotals(), expected);
    const meters = await query<{ n: string }>(
      `SELECT count() AS n FROM ${ctx.config.clickhouse.database}.meters_latest WHERE active = 1`,
    );
    expect(Number(meters[0]!.n)).toBe(4);
  });

  it('reconciles the provider against ClickHouse with no differences', async () => {
    const r = await cliOk(['reconcile', '--connection', 'e2e-arcadia', '--month', '2024-03', '--json']);
    expect(r.code, r.out).toBe(0);
    const report = JSON.parse(r.stdout) as { compared: number; differences: unknown[] };
    expect(report.compared).toBeGreaterThanOrEqual(4);
    expect(report.differences).toEqual([]);
  });

  it('quarantines usage of an unknown meter; a redrive before the fix leaves a new open record, one after it none', async () => {
    const known = sim.truth().meters[0]!;
    const chunk = (await readTopic(ctx, 'rawUsage')).find((u) => u.value.external_id === known.id)!.value;
    // The same provider chunk for a meter the pipeline has never seen, without the meter attached.
    const orphan: RawEnvelope = {
      ...chunk,
      external_id: 'mtr_orphan',
      meta: {},
      payload: chunk.payload.replaceAll(known.id, 'mtr_orphan'),
    };
    await produceRaw(ctx, 'rawUsage', [orphan]);
    const quarantined = await eventually(
      async () =>
        (await readTopic(ctx, 'quarantine')).some((q) => q.value.reason_code === 'VAL_UNKNOWN_METER'),
      60_000,
      1_000,
    );
    expect(quarantined).toBe(true);
    const list = await cliOk(['quarantine', 'list', '--reason', 'VAL_UNKNOWN_METER']);
    expect(list.out).toMatch(/1 quarantined record/);
    const open = async (): Promise<string> =>
      (await cliOk(['quarantine', 'list', '--open', '--reason', 'VAL_UNKNOWN_METER'])).out;
    expect(await open()).toMatch(/^1 open quarantined record\(s\)$/m);
    const redriveId = (out: string): string => /redriven by redrive ([0-9a-f-]{36})/.exec(out)![1]!;

    // A redrive before the fix: the stage rejects the message again, at its new offset, so the
    // new record has a new id and is open; the first is redriven.
    const early = await cliOk(['quarantine', 'redrive', '--reason', 'VAL_UNKNOWN_METER']);
    expect(early.code, early.out).toBe(0);
    expect(early.out).toMatch(/redrove 1 message.*marked 1 quarantine record/);
    const earlyId = redriveId(early.out);
    const requarantined = await eventually(
      async () =>
        (await readTopic(ctx, 'quarantine')).filter(
          (q) => q.value.reason_code === 'VAL_UNKNOWN_METER' && q.value.status !== 'redriven',
        ).length === 2,
      60_000,
      1_000,
    );
    expect(requarantined).toBe(true);
    const ids = new Set(
      (await readTopic(ctx, 'quarantine'))
        .filter((q) => q.value.reason_code === 'VAL_UNKNOWN_METER')
        .map((q) => q.value.id),
    );
    expect(ids.size).toBe(2);
    expect(await open()).toMatch(/^1 open quarantined record\(s\)$/m);

    // The fix: the meter becomes known. Then the operator redrives.
    const meterEnv = (await readTopic(ctx, 'rawEntities')).find(
      (e) => e.value.format === 'arcadia.meter' && e.value.external_id === known.id,
    )!.value;
    await produceRaw(ctx, 'rawEntities', [
      {
        ...meterEnv,
        external_id: 'mtr_orphan',
        payload: meterEnv.payload.replaceAll(known.id, 'mtr_orphan'),
      },
    ]);
    await eventually(
      async () => (await readTopic(ctx, 'meters')).some((m) => m.value.external_id === 'mtr_orphan'),
      60_000,
      1_000,
    );
    const redrive = await cliOk(['quarantine', 'redrive', '--reason', 'VAL_UNKNOWN_METER']);
    expect(redrive.code, redrive.out).toBe(0);
    expect(redrive.out).toMatch(/redrove 1 message.*marked 1 quarantine record/);
    const lateId = redriveId(redrive.out);
    expect(await open()).toMatch(/^0 open quarantined record\(s\)$/m);
    const arrived = await eventually(
      async () =>
        (
          await query<{ n: string }>(
            `SELECT count() AS n FROM ${ctx.config.clickhouse.database}.usage_daily_latest WHERE meter_external_id = 'mtr_orphan'`,
          )
        )[0]!.n !== '0',
      120_000,
      2_000,
    );
    expect(arrived).toBe(true);

    // ClickHouse: both records redriven, each by its own redrive; none open.
    const latest = async () =>
      query<{ id: string; status: string; redrive_id: string | null; redriven_at: string | null }>(
        `SELECT id, status, redrive_id, redriven_at FROM ${ctx.config.clickhouse.database}.quarantine_latest WHERE reason_code = 'VAL_UNKNOWN_METER' ORDER BY redriven_at`,
      );
    const settled = await eventually(
      async () => (await latest()).filter((r) => r.status === 'redriven').length === 2,
      120_000,
      2_000,
    );
    expect(settled, JSON.stringify(await latest())).toBe(true);
    const rows = await latest();
    expect(new Set(rows.map((r) => r.id))).toEqual(ids);
    expect(rows.map((r) => r.redrive_id)).toEqual([earlyId, lateId]);
    expect(rows.every((r) => r.redriven_at !== null)).toBe(true);
  });

  it('refuses a replay while the group runs, then replays without changing the totals', async () => {
    const group = `${ctx.config.kafka.topicPrefix}processors.usage`;
    const refused = await cliOk(['replay', '--topic', 'raw.usage', '--group', group, '--from', 'earliest']);
    expect(refused.code).toBe(3);
    expect(refused.out).toMatch(/active member/);

    expect(await untilQuiet(ctx, 180_000)).toBe(true);
    const before = await clickhouseTotals();
    const usageBefore = (await readTopic(ctx, 'usage')).length;
    processors.child.kill('SIGTERM');
    expect(await processors.exited).toBe(0);
    await eventually(
      async () =>
        (await cliOk(['replay', '--topic', 'raw.usage', '--group', group, '--from', 'earliest'])).code === 0,
      60_000,
      2_000,
    );

    processors = cli(['run', 'processors']);
    expect(
      await eventually(async () => (await readTopic(ctx, 'usage')).length > usageBefore, 120_000, 2_000),
    ).toBe(true);
    expect(await untilQuiet(ctx, 180_000)).toBe(true);
    await expectTotalsEqual(await clickhouseTotals(), before);

    const status = await cliOk(['status', '--json']);
    const report = JSON.parse(status.stdout) as {
      connections: { connection_id: string; last_run: { status: string } | null }[];
      quarantine: Record<string, number>;
    };
    expect(report.connections.find((c) => c.connection_id === 'e2e-arcadia')?.last_run?.status).toBe(
      'succeeded',
    );
    // Both records were redriven: nothing open.
    expect(report.quarantine.VAL_UNKNOWN_METER).toBeUndefined();
  });
});
