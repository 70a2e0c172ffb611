/**
 * Energy in one unit: a provider whose electricity meters report kWh and whose heat meters report
 * MWh, synced through the real CLI processes into ClickHouse. The month's energy total in kWh,
 * summed from value_canonical across both units without grouping by unit, equals the provider's
 * truth converted; gas in m3 stays volume (no calorific value is configured).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import type { GenericXmlCsvSimulator } from '../../simulators/generic-xml-csv.js';
import { startNordicXml } from '../support/nordic-xml.js';
import { createTestContext, type TestContext } from '../support/context.js';
import { eventually, untilQuiet, cliRunner } from '../support/pipeline.js';

const FROM = '2024-03-01';
const TO = '2024-04-01';

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

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
  ({ sim, dir, env } = await startNordicXml({ id: 'cu-nordic', envPrefix: 'CU', seed: 21, from: FROM }));
  ch = ctx.clickhouse();
});

afterAll(async () => {
  runner.killAll();
  await sim?.close();
  await ctx?.cleanup();
});

/** The provider's March consumption per medium, converted: kWh and MWh to kWh; m³ as m3. */
function truth(): { kwh: number; gasM3: number; units: Set<string> } {
  const t = sim.truth();
  let kwh = 0;
  let gasM3 = 0;
  const units = new Set<string>();
  for (const m of t.meters) {
    const sum = t.consumption(m.id, 'daily', FROM, TO).reduce((s, r) => s + r.consumption, 0);
    if (m.medium === 'Electricity' || m.medium === 'Heat') {
      units.add(m.unit);
      kwh += m.unit === 'MWh' ? sum * 1000 : sum;
    } else if (m.medium === 'Gas') gasM3 += sum;
  }
  return { kwh, gasM3, units };
}

describe('canonical units end to end', () => {
  it('the monthly energy total in kWh across kWh and MWh meters equals the converted truth', async () => {
    expect((await spawnExit(['migrate'])).code).toBe(0);
    cli(['run', 'processors']);
    cli(['run', 'sinks']);
    const r = await spawnExit(['backfill', '--connection', 'cu-nordic', '--from', FROM, '--to', TO]);
    expect(r.code, r.out).toBe(0);
    const want = truth();
    expect([...want.units].sort()).toEqual(['MWh', 'kWh']);

    const db = ctx.config.clickhouse.database;
    const totals = async () => {
      const rs = await ch.query({
        query:
          `SELECT toString(meter_type) AS meter_type, canonical_unit, sum(value_canonical) AS total, count() AS n ` +
          `FROM ${db}.usage_monthly_latest ` +
          `ANY INNER JOIN (SELECT connection_id, external_id AS meter_external_id, meter_type FROM ${db}.meters_latest) AS m ` +
          `USING (connection_id, meter_external_id) ` +
          `WHERE connection_id = 'cu-nordic' AND channel = 'consumption' AND period = '2024-03' ` +
          `GROUP BY meter_type, canonical_unit ORDER BY meter_type, canonical_unit`,
        format: 'JSONEachRow',
      });
      return rs.json<{ meter_type: string; canonical_unit: string | null; total: number; n: string }>();
    };
    expect(
      await eventually(
        async () => (await totals()).some((t) => t.canonical_unit === 'kWh' && t.n === '4'),
        300_000,
        2_000,
      ),
      runner.outputs(),
    ).toBe(true);
    expect(await untilQuiet(ctx)).toBe(true);

    const got = await totals();
    const energyKwh = got.find((t) => t.meter_type === 'Energy' && t.canonical_unit === 'kWh')!;
    expect(Math.abs(energyKwh.total - want.kwh)).toBeLessThan(1e-6 * want.kwh);
    // Gas is Energy by type but stays a volume: its own line in m3, never added to the kWh.
    const gas = got.find((t) => t.meter_type === 'Energy' && t.canonical_unit === 'm3')!;
    expect(Math.abs(gas.total - want.gasM3)).toBeLessThan(1e-6 * Math.max(1, want.gasM3));
    expect(got.filter((t) => t.canonical_unit === null)).toEqual([]);
  }, 600_000);
});

async function spawnExit(args: string[]): Promise<{ code: number | string; out: string }> {
  const p = cli(args);
  const code = await p.exited;
  return { code, out: p.output() };
}
