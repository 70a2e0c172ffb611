/**
 * Configuration as a stream, end to end through the CLI as separate processes on real Kafka,
 * registry and ClickHouse, with provider C (generic-mixed simulator) as the provider:
 *
 * - two processors processes run with NO connection files (as on hosts without the ConfigMap);
 * - the connection file maps the `interval` kind but not `register`: the sync publishes it as
 *   version 1, the water registers are quarantined (NORM_USAGE_KIND_UNMAPPED) under version 1 and
 *   their usage is not fetched;
 * - the file is fixed and synced again (no other command, no restart): the sync publishes version
 *   2, the water meters land in `meters` and ClickHouse with connection_version 2, their usage is
 *   fetched and their daily totals equal the simulator's truth, and nothing new is quarantined;
 * - `meterflow connections list` tells which version is current and where it came from.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { ClickHouseClient } from '@clickhouse/client';
import { startGenericMixedSimulator, type MixedSimulator } from '../../simulators/generic-mixed.js';
import { createTestContext, uniqueName, type TestContext } from '../support/context.js';
import {
  consumptionTotals,
  eventually,
  expectSameTotals,
  readTopic,
  untilQuiet,
  type CliProcess,
  cliRunner,
} from '../support/pipeline.js';

const FROM = '2024-03-01';
const DAYS = 31;
const SYNC_TO = '2024-04-02'; // a day past the data: the last register reading is at 2024-04-01 00:00
const ID = 'provider-c';
const EXAMPLE = join(import.meta.dirname, '../../connections/examples/generic-mixed-kinds.yaml');

let ctx: TestContext;
let sim: MixedSimulator;
let ch: ClickHouseClient;
let dir: string;
let env: Record<string, string>;
const runner = cliRunner(
  () => ctx,
  () => ({ MF_CONNECTIONS_DIR: dir, ...env }),
);
const cli = runner.start;
const cliOk = runner.run;
/** Processors and sink: a folder that does not exist, so they have no connection files at all. */
const NO_FILES = join(tmpdir(), uniqueName('mf-no-connections-'));

/**
 * The shipped example pointed at the simulator. Before the fix it knows only the interval kind
 * (no `register` in usageKinds, no `reading` in usageByKind); `fixed` is the example as shipped.
 */
function connectionFile(fixed: boolean): Record<string, unknown> {
  const c = parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, Record<string, unknown>>;
  delete c.schedule;
  const meters = c.generic!.meters as Record<string, unknown>;
  const byKind = c.generic!.usageByKind as Record<string, unknown>;
  return {
    ...c,
    usageStart: FROM,
    baseUrls: { production: sim.url },
    auth: { type: 'apiKey', in: 'header', name: 'X-Api-Key', keys: [{ valueEnv: 'MIXED_API_KEY' }] },
    http: { timeoutMs: 10_000, maxRetries: 4, backoffBaseMs: 10, backoffMaxMs: 100 },
    generic: {
      ...c.generic,
      meters: {
        ...meters,
        usageKinds: fixed ? { interval: 'consumption', register: 'reading' } : { interval: 'consumption' },
      },
      usageByKind: fixed ? byKind : { consumption: byKind.consumption },
    },
  };
}

async function query<T>(sql: string): Promise<T[]> {
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

function waterTruth(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of sim.truth().meters.filter((x) => x.kind === 'register'))
    for (const [day, v] of sim.truth().daily(m.meter_id)) out.set(`${ID}/${m.meter_id}|${day}`, v);
  return out;
}

const water = () =>
  sim
    .truth()
    .meters.filter((m) => m.kind === 'register')
    .map((m) => m.meter_id)
    .sort();

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
  sim = await startGenericMixedSimulator({ sites: 2, from: FROM, days: DAYS });
  env = { MIXED_API_KEY: sim.apiKey };
  dir = mkdtempSync(join(tmpdir(), 'mf-config-stream-'));
  writeFileSync(join(dir, `${ID}.yaml`), stringify(connectionFile(false)));
  ch = ctx.clickhouse();
});

afterAll(async () => {
  runner.killAll();
  await sim?.close();
  await ctx?.cleanup();
});

describe('a fixed connection file reaches running processors through the connections topic', () => {
  let processorsA: CliProcess;
  let processorsB: CliProcess;

  it('version 1: the unmapped register meters are quarantined under it', async () => {
    expect(connectionFile(true).generic).toEqual(
      (parse(readFileSync(EXAMPLE, 'utf8')) as { generic: unknown }).generic,
    );
    expect((await cliOk(['migrate'])).code).toBe(0);
    processorsA = cli(['run', 'processors'], { MF_CONNECTIONS_DIR: NO_FILES });
    processorsB = cli(['run', 'processors'], { MF_CONNECTIONS_DIR: NO_FILES });
    cli(['run', 'sinks'], { MF_CONNECTIONS_DIR: NO_FILES });

    const first = await cliOk(['sync', '--connection', ID, '--to', SYNC_TO]);
    expect(first.code, first.out).toBe(0);
    expect(first.out).not.toContain(sim.apiKey);
    expect(await untilQuiet(ctx), runner.outputs()).toBe(true);

    const quarantined = (await readTopic(ctx, 'quarantine')).map((q) => q.value);
    expect(
      quarantined
        .map((q) => [q.reason_code, q.stage, q.connection_version, q.message.match(/W-\d+/)?.[0]])
        .sort(),
    ).toEqual(water().map((id) => ['NORM_USAGE_KIND_UNMAPPED', 'entities', 1, id]));
    const meters = (await readTopic(ctx, 'meters')).map((m) => m.value);
    expect(meters.some((m) => water().includes(m.external_id))).toBe(false);
    expect(meters.length).toBeGreaterThan(0);
    expect(meters.every((m) => m.connection_version === 1)).toBe(true);
    // No water usage was requested: the producers ran with the same version.
    expect((await readTopic(ctx, 'rawUsage')).some((r) => water().includes(r.value.external_id))).toBe(false);
  }, 600_000);

  it('version 2: the fix is published by the next sync and applied by the running processors', async () => {
    writeFileSync(join(dir, `${ID}.yaml`), stringify(connectionFile(true)));
    const second = await cliOk(['sync', '--connection', ID, '--to', SYNC_TO]);
    expect(second.code, second.out).toBe(0);

    const want = waterTruth();
    expect(
      await eventually(
        async () => {
          const daily = await consumptionTotals(ctx, ch, 'usage_daily_latest');
          return [...want.keys()].every((k) => daily.has(k));
        },
        300_000,
        2_000,
      ),
      runner.outputs(),
    ).toBe(true);
    expect(await untilQuiet(ctx)).toBe(true);
    // Neither processors process restarted.
    expect(processorsA.child.exitCode).toBeNull();
    expect(processorsB.child.exitCode).toBeNull();

    const daily = await consumptionTotals(ctx, ch, 'usage_daily_latest');
    expectSameTotals(
      new Map([...daily].filter(([k]) => water().some((id) => k.startsWith(`${ID}/${id}|`)))),
      want,
      'water daily',
    );

    // The stored records say which version they were processed with.
    const db = ctx.config.clickhouse.database;
    const rows = await query<{ external_id: string; meter_type: string; connection_version: number }>(
      `SELECT external_id, meter_type, connection_version FROM ${db}.meters_latest WHERE connection_id = '${ID}' ORDER BY external_id`,
    );
    expect(rows.length).toBe(sim.truth().meters.length);
    expect(rows.every((r) => Number(r.connection_version) === 2)).toBe(true);
    expect(rows.filter((r) => water().includes(r.external_id)).map((r) => r.meter_type)).toEqual(
      water().map(() => 'Water'),
    );
    const usage = await query<{ meter_external_id: string; versions: number[] }>(
      `SELECT meter_external_id, groupUniqArray(connection_version) AS versions FROM ${db}.usage_intervals_latest WHERE connection_id = '${ID}' AND meter_external_id LIKE 'W-%' GROUP BY meter_external_id ORDER BY meter_external_id`,
    );
    expect(usage.map((u) => [u.meter_external_id, u.versions.map(Number)])).toEqual(
      water().map((id) => [id, [2]]),
    );
    const envelopes = (await readTopic(ctx, 'rawEntities')).map((r) => r.value.connection_version);
    expect(new Set(envelopes)).toEqual(new Set([1, 2]));

    // Nothing new was quarantined; the version 1 records stay as the evidence.
    const quarantine = await query<{ reason_code: string; connection_version: number; n: string }>(
      `SELECT reason_code, connection_version, count() AS n FROM ${db}.quarantine_latest GROUP BY reason_code, connection_version`,
    );
    expect(quarantine.map((q) => [q.reason_code, Number(q.connection_version), Number(q.n)])).toEqual([
      ['NORM_USAGE_KIND_UNMAPPED', 1, water().length],
    ]);
  }, 900_000);

  it('connections list tells the current version and where it came from; an unchanged folder publishes nothing', async () => {
    const listed = await cliOk(['connections', 'list', '--json']);
    expect(listed.code, listed.out).toBe(0);
    const versions = JSON.parse(listed.stdout) as {
      connection_id: string;
      version: number;
      source: string;
    }[];
    expect(versions).toEqual([
      expect.objectContaining({ connection_id: ID, version: 2, source: join(dir, `${ID}.yaml`) }),
    ]);
    const again = await cliOk(['connections', 'publish']);
    expect(again.code, again.out).toBe(0);
    expect(again.stdout).toContain(`${ID}: unchanged at version 2`);
    const shown = await cliOk(['connections', 'show', '--connection', ID]);
    expect(shown.stdout).toContain('"register": "reading"');
    expect(shown.stdout).toContain('MIXED_API_KEY');
    expect(shown.stdout).not.toContain(sim.apiKey);
  }, 120_000);
});
