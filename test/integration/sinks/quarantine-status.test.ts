/**
 * Migration 003 on the real ClickHouse (18.16 locally): the quarantine table gets its lifecycle
 * columns, a run that stopped after the ALTER completes on the next, and quarantine_latest shows
 * the redrive mark (same id, later offset) as the latest row with the original bytes kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate, MIGRATIONS } from '../../../sinks/clickhouse/index.js';
import { migration003 } from '../../../sinks/clickhouse/migrations/003_quarantine_status.js';
import { quarantineRow } from '../../../sinks/clickhouse/rows.js';
import { redrivenRecord } from '../../../schemas/quarantine.js';
import type { QuarantineRecord } from '../../../schemas/records.js';
import { createTestContext, type TestContext } from '../../support/context.js';

let ctx: TestContext;
let ch: ClickHouseClient;
let db: string;

async function rows<T>(query: string): Promise<T[]> {
  return (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
}

beforeAll(() => {
  ctx = createTestContext();
  ch = ctx.clickhouse();
  db = ctx.config.clickhouse.database;
});
afterAll(async () => {
  await ctx.cleanup();
});

const open: QuarantineRecord = {
  id: 'q-0001',
  connection_id: 'c1',
  stage: 'validate',
  reason_code: 'VAL_UNKNOWN_METER',
  message: 'unknown meter m1',
  source_topic: 'usage',
  source_partition: 0,
  source_offset: 41,
  record_index: null,
  source_key: 'c1/m1',
  original: Buffer.from([0, 1, 2, 250]),
  detail: null,
  quarantined_at: Date.UTC(2026, 11, 1),
  status: 'open',
  redriven_at: null,
  redrive_id: null,
};

async function insert(q: QuarantineRecord, offset: number): Promise<void> {
  const row = quarantineRow(q, { partition: 0, offset: String(offset), timestamp: String(Date.now()) });
  if (!row.ok) throw new Error(row.reason);
  await ch.command({
    query: `INSERT INTO ${db}.quarantine FORMAT JSONEachRow ${row.line.toString()}`,
  });
}

describe('migration 003: quarantine status', () => {
  it('completes on a re-run after its ALTER was applied but not recorded', async () => {
    await migrate(
      ch,
      db,
      undefined,
      MIGRATIONS.filter((m) => m.version < 3),
    );
    // A run that stopped after the ALTER: the columns exist, the migration is not recorded.
    await ch.command({ query: migration003.statements(db)[0]! });
    const r = await migrate(ch, db);
    expect(r.applied).toContain(3);
    const columns = await rows<{ name: string; type: string }>(`DESCRIBE TABLE ${db}.quarantine_latest`);
    expect(columns.map((c) => `${c.name} ${c.type}`)).toEqual(
      expect.arrayContaining([
        "status Enum8('open' = 1, 'redriven' = 2)",
        "redriven_at Nullable(DateTime('UTC'))",
        'redrive_id Nullable(String)',
        'original_hex String',
      ]),
    );
  });

  it('shows a redriven record as redriven, by its redrive, with its original bytes', async () => {
    await insert(open, 7);
    const before = await rows<{ status: string }>(
      `SELECT status FROM ${db}.quarantine_latest WHERE id = 'q-0001'`,
    );
    expect(before).toEqual([{ status: 'open' }]);
    const at = Date.UTC(2026, 11, 2, 8, 30);
    await insert(redrivenRecord(open, { id: 'rd-1', at }), 12);
    // A record written before the lifecycle fields existed is open.
    const { status: _s, redriven_at: _a, redrive_id: _i, ...old } = { ...open, id: 'q-0002' };
    await insert(old, 13);
    const latest = await rows<Record<string, unknown>>(
      `SELECT id, status, redriven_at, redrive_id, original_hex, original_size FROM ${db}.quarantine_latest ORDER BY id`,
    );
    expect(latest).toEqual([
      {
        id: 'q-0001',
        status: 'redriven',
        redriven_at: '2026-12-02 08:30:00',
        redrive_id: 'rd-1',
        original_hex: '000102fa',
        original_size: 4,
      },
      {
        id: 'q-0002',
        status: 'open',
        redriven_at: null,
        redrive_id: null,
        original_hex: '000102fa',
        original_size: 4,
      },
    ]);
  });
});
