/**
 * Migration 004 on the real ClickHouse (18.16 locally): assets, meters, usage intervals and
 * quarantine get `connection_version`, a run that stopped after the first ALTER completes on the
 * next, the latest views (and meters_mapped) expose it with every column they had, and a row
 * from before the migration reads NULL while a later version of it shows the new value.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate, MIGRATIONS } from '../../../sinks/clickhouse/index.js';
import { migration004 } from '../../../sinks/clickhouse/migrations/004_connection_version.js';
import { meterRow } from '../../../sinks/clickhouse/rows.js';
import type { Meter } from '../../../schemas/records.js';
import { createTestContext, type TestContext } from '../../support/context.js';

let ctx: TestContext;
let ch: ClickHouseClient;
let db: string;

async function rows<T>(query: string): Promise<T[]> {
  return (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
}

async function columns(view: string): Promise<string[]> {
  return (await rows<{ name: string; type: string }>(`DESCRIBE TABLE ${db}.${view}`)).map(
    (c) => `${c.name} ${c.type}`,
  );
}

const T = Date.UTC(2026, 0, 5);
const meter: Meter = {
  connection_id: 'c1',
  provider: 'generic',
  external_id: 'w1',
  asset_external_id: 's1',
  meter_type: 'Water',
  meter_subtype: 'Grey',
  unit: 'm3',
  canonical_unit: 'm3',
  description: null,
  time_zone: 'UTC',
  reading_type: 'consumption',
  rollover_value: null,
  metadata: {},
  active: true,
  first_seen: T,
  last_seen: T,
  sync_run_id: 'run-1',
};

beforeAll(() => {
  ctx = createTestContext();
  ch = ctx.clickhouse();
  db = ctx.config.clickhouse.database;
});
afterAll(async () => {
  await ctx.cleanup();
});

const VIEWS = [
  'assets_latest',
  'meters_latest',
  'usage_intervals_latest',
  'quarantine_latest',
  'meters_mapped',
];

describe('migration 004: connection_version', () => {
  it('adds the column to the views, keeping every column they had, also on a re-run after an ALTER', async () => {
    await migrate(
      ch,
      db,
      undefined,
      MIGRATIONS.filter((m) => m.version < 4),
    );
    const before = new Map<string, string[]>();
    for (const v of VIEWS) before.set(v, await columns(v));
    const line = (m: Meter, offset: number): string => {
      const r = meterRow(m, { partition: 0, offset: String(offset), timestamp: String(T) });
      if (!r.ok) throw new Error(r.reason);
      return r.line.toString();
    };
    // A meter stored before the migration: its row has no such column.
    const oldRow = JSON.parse(line(meter, 1)) as Record<string, unknown>;
    delete oldRow.connection_version;
    await ch.command({ query: `INSERT INTO ${db}.meters FORMAT JSONEachRow ${JSON.stringify(oldRow)}` });

    // A run that stopped after its first ALTER: the column exists there, the migration is not recorded.
    await ch.command({ query: migration004.statements(db)[0]! });
    const r = await migrate(ch, db);
    expect(r.applied).toEqual([4]);
    for (const v of VIEWS) {
      const after = await columns(v);
      expect(
        after.filter((c) => !c.startsWith('connection_version ')),
        v,
      ).toEqual(before.get(v));
      expect(after, v).toContain('connection_version Nullable(UInt64)');
    }

    const read = async () =>
      rows<{ external_id: string; connection_version: number | null; meter_subtype: string }>(
        `SELECT external_id, connection_version, meter_subtype FROM ${db}.meters_mapped WHERE connection_id = 'c1'`,
      );
    expect(await read()).toEqual([{ external_id: 'w1', connection_version: null, meter_subtype: 'Grey' }]);
    await ch.command({
      query: `INSERT INTO ${db}.meters FORMAT JSONEachRow ${line({ ...meter, connection_version: 2 }, 5)}`,
    });
    expect((await read()).map((m) => Number(m.connection_version))).toEqual([2]);
  });
});
