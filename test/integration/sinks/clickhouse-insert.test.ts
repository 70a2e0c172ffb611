/**
 * The pieces under the sink's error handling, against the real ClickHouse where a server is
 * involved: error classification (live server errors, plus the message formats of current
 * releases recorded from ClickHouse 26.9), bisecting a refused batch, the row guards, versions.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeterflowError } from '../../../lib/errors.js';
import type { UsageBatch } from '../../../schemas/records.js';
import { classifyChError, createChClient } from '../../../sinks/clickhouse/client.js';
import { FAMILY_BINDINGS } from '../../../sinks/clickhouse/families.js';
import {
  clickhouseInsert,
  insertWithBisect,
  JSON_EACH_ROW,
  linesBody,
  type InsertFn,
  type Retry,
} from '../../../sinks/clickhouse/insert.js';
import { migrate } from '../../../sinks/clickhouse/migrate.js';
import { backoffDelay } from '../../../lib/retry.js';
import { readRow } from '../../../sinks/clickhouse/row-binary.js';
import {
  ingestVersion,
  ingestVersionBase,
  USAGE_COLUMNS,
  usageRows,
  type EncodedRows,
} from '../../../sinks/clickhouse/rows.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { scalar } from './fixtures.js';

let ctx: TestContext;
let ch: ClickHouseClient;
/** The sink's own client (quiet: it does not log failed requests). */
let sinkClient: ClickHouseClient;
let db: string;

beforeAll(async () => {
  ctx = createTestContext();
  db = ctx.config.clickhouse.database;
  ch = ctx.clickhouse();
  sinkClient = createChClient(ctx.config.clickhouse);
  await migrate(sinkClient, db);
});
afterAll(async () => {
  await sinkClient.close();
  await ctx.cleanup();
});

const noRetry: Retry = (_what, attempt) => attempt();

function batch(values: { channel?: string; value?: number; start?: number }[]): UsageBatch {
  const t0 = Date.UTC(2024, 0, 1);
  return {
    connection_id: 'c',
    provider: 'p',
    meter_external_id: 'm',
    sync_run_id: 'r',
    unit: 'kWh',
    canonical_unit: 'kWh',
    time_zone: 'UTC',
    source_topic: 'raw.usage',
    source_partition: 0,
    source_offset: 0,
    intervals: values.map((v, i) => ({
      start: v.start ?? t0 + i * 900_000,
      end: (v.start ?? t0 + i * 900_000) + 900_000,
      channel: (v.channel ?? 'consumption') as 'consumption',
      value: v.value ?? i,
      value_canonical: null,
      currency: null,
      estimated: false,
      from_readings: false,
      metadata: { 'quote"and\ttab': 'ü\n' },
    })),
  };
}

/** The stored rows of a usage record, each read back from RowBinary. */
function readBack(e: EncodedRows): Record<string, unknown>[] {
  const all = Buffer.concat(e.chunks);
  let start = 0;
  return Array.from(e.ends, (end) => {
    const { row } = readRow(USAGE_COLUMNS, all, start);
    start = end;
    return row;
  });
}

/** A usage row as a JSONEachRow line (newline included): a batch in the other format. */
const jsonLine = (row: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify(row) + '\n');

const usageFormat = FAMILY_BINDINGS.usage[0]!.format;

describe('usage rows in RowBinary', () => {
  it('name every column of usage_intervals with its type', async () => {
    const rs = await ch.query({
      query: `SELECT name, type FROM system.columns WHERE database = '${db}' AND table = 'usage_intervals'`,
      format: 'JSONEachRow',
    });
    const columns = await rs.json<{ name: string; type: string }>();
    const typeName = (t: (typeof USAGE_COLUMNS)[number][1]): string =>
      typeof t === 'string'
        ? t
        : 'nullable' in t
          ? `Nullable(${typeName(t.nullable)})`
          : `Enum8(${Object.entries(t.enum8)
              .map(([k, v]) => `'${k}' = ${v}`)
              .join(', ')})`;
    const ours = new Map(USAGE_COLUMNS.map(([name, type]) => [name, typeName(type)]));
    expect([...ours.keys()].sort()).toEqual(columns.map((c) => c.name).sort());
    for (const c of columns) expect(c.type.replace("DateTime('UTC')", 'DateTime')).toBe(ours.get(c.name));
  });

  it('are stored as they read back, strings with every escape included', async () => {
    const tricky = 'a "quote", a \\ backslash,\na newline, a\ttab, \u0001, é, 😀';
    const b = {
      ...batch([{}, { value: 2.75 }, { channel: 'cost' }]),
      connection_id: 'rb',
      meter_external_id: tricky,
    };
    b.intervals[2]!.currency = tricky;
    const e = usageRows(b, { partition: 4, offset: '77', timestamp: '1700000000000' });
    await clickhouseInsert(sinkClient)(`${db}.usage_intervals`, e.chunks, usageFormat);
    const rs = await ch.query({
      query: `SELECT ${USAGE_COLUMNS.map(([n, t]) => (t === 'DateTime' ? `toUInt32(${n}) AS ${n}` : n)).join(', ')} FROM ${db}.usage_intervals WHERE connection_id = 'rb' ORDER BY ingest_version`,
      format: 'JSONEachRow',
    });
    const stored = await rs.json<Record<string, unknown>>();
    // ClickHouse quotes 64-bit integers in JSON, as readRow returns them; DateTime read as seconds.
    expect(stored).toEqual(readBack(e));
    expect(stored.map((r) => [r.meter_external_id, r.channel, r.value, r.currency])).toEqual([
      [tricky, 'consumption', 0, null],
      [tricky, 'consumption', 2.75, null],
      [tricky, 'cost', 2, tricky],
    ]);
  });
});

describe('classifying ClickHouse errors', () => {
  it('tells refused rows from a missing table and from an unreachable server (live server)', async () => {
    const json = clickhouseInsert(sinkClient);
    const insert = (table: string, body: Buffer[]) => json(table, body, JSON_EACH_ROW);
    const errorOf = async (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e,
      );

    const badEnum = await errorOf(
      insert(`${db}.usage_intervals`, linesBody([JSON.stringify({ channel: 'steam' })])),
    );
    expect(classifyChError(badEnum).kind).toBe('data');
    const badNumber = await errorOf(insert(`${db}.usage_intervals`, linesBody(['{"value":"abc"}'])));
    expect(classifyChError(badNumber).kind).toBe('data');
    // A column the table does not have means a missing migration, not a bad row: never bisected.
    const unknownField = await errorOf(insert(`${db}.usage_intervals`, linesBody(['{"no_such_column":1}'])));
    expect(classifyChError(unknownField)).toMatchObject({ kind: 'server' });
    const noTable = await errorOf(insert(`${db}.no_such_table`, linesBody(['{}'])));
    expect(classifyChError(noTable)).toMatchObject({ kind: 'server', code: 60 });

    const down = createChClient(
      { ...ctx.config.clickhouse, url: 'http://127.0.0.1:9' },
      { requestTimeoutMs: 2_000 },
    );
    const refused = await errorOf(
      clickhouseInsert(down)(`${db}.usage_intervals`, linesBody(['{}']), JSON_EACH_ROW),
    );
    await down.close();
    expect(classifyChError(refused).kind).toBe('unreachable');
  });

  it('reads the codes of current releases too', () => {
    // As ClickHouse 26.9 words them (recorded with chdb 4.4).
    const enumErr = new Error(
      "Code: 691. DB::Exception: Unknown element 'bogus' for enum: (while reading the value of key ch): (at row 1)\n: While executing ParallelParsingBlockInputFormat. (UNKNOWN_ELEMENT_OF_ENUM)",
    );
    expect(classifyChError(enumErr)).toMatchObject({ kind: 'data', code: 691 });
    const tooMany = Object.assign(
      new Error('Too many parts (300). Merges are processing significantly slower than inserts'),
      { code: '252' },
    );
    expect(classifyChError(tooMany)).toMatchObject({ kind: 'server', code: 252 });
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(classifyChError(reset).kind).toBe('unreachable');
  });
});

describe('bisecting a refused batch', () => {
  it('stores every good row and isolates each bad one, wherever they are', async () => {
    const values = Array.from({ length: 37 }, () => ({}));
    for (const i of [0, 13, 14, 36]) values[i] = { channel: 'steam' };
    // Bisecting does not depend on the format: JSONEachRow lets ClickHouse itself refuse a row.
    const rows = readBack(
      usageRows(batch(values.map(() => ({}))), { partition: 0, offset: '1', timestamp: String(Date.now()) }),
    );
    const refs = rows.map((r, i) => ({ bytes: jsonLine({ ...r, ...values[i] }), ref: i }));
    const bisected: number[] = [];
    const out = await insertWithBisect(
      clickhouseInsert(sinkClient),
      `${db}.usage_intervals`,
      JSON_EACH_ROW,
      refs,
      noRetry,
      (size) => bisected.push(size),
    );
    expect(out.rejected.map((r) => r.ref).sort((a, b) => a - b)).toEqual([0, 13, 14, 36]);
    expect(out.rejected[0]!.message).toMatch(/steam/);
    expect(bisected[0]).toBe(37);
    expect(
      await scalar(ch, `SELECT count() FROM ${db}.usage_intervals_latest WHERE connection_id = 'c'`),
    ).toBe(33);
    // Strings with quotes, tabs, newlines and non-ASCII survive the JSON rows.
    expect(
      await scalar(
        ch,
        `SELECT countIf(metadata = '{"quote\\\\"and\\\\ttab":"ü\\\\n"}') FROM ${db}.usage_intervals WHERE connection_id = 'c'`,
      ),
    ).toBe(33);
  });

  it('hands errors that are not about the rows to the retry policy, keeping its progress', async () => {
    let calls = 0;
    const flaky = clickhouseInsert(sinkClient);
    const insert: InsertFn = async (table, body, format) => {
      calls++;
      if (calls === 2)
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
      await flaky(table, body, format);
    };
    const seen: string[] = [];
    const retry: Retry = async (what, attempt) => {
      for (;;) {
        try {
          return await attempt();
        } catch (err) {
          seen.push((err as MeterflowError).code);
          if (!(err instanceof MeterflowError && err.retriable)) throw err;
        }
      }
    };
    const values = [{}, { channel: 'steam' }, {}, {}];
    const rows = readBack(
      usageRows(batch(values.map(() => ({}))), { partition: 0, offset: '2', timestamp: String(Date.now()) }),
    );
    const refs = rows.map((r, i) => ({ bytes: jsonLine({ ...r, ...values[i] }), ref: i }));
    const out = await insertWithBisect(insert, `${db}.usage_intervals`, JSON_EACH_ROW, refs, retry);
    expect(seen).toEqual(['CH_UNREACHABLE']);
    expect(out.rejected.map((r) => r.ref)).toEqual([1]);
  });
});

describe('rows', () => {
  it('refuses values ClickHouse would store altered, per interval', () => {
    const e = usageRows(
      batch([
        {},
        { value: Number.NaN },
        { value: Infinity },
        { start: -1_000 },
        { start: 5_000_000_000_000 },
        {},
      ]),
      { partition: 0, offset: '3', timestamp: String(Date.now()) },
    );
    expect(e.indexes).toEqual([0, 5]);
    expect(e.refused.map((r) => r.index)).toEqual([1, 2, 3, 4]);
    expect(e.refused[0]!.reason).toMatch(/value is NaN/);
    expect(e.refused[2]!.reason).toMatch(/DateTime range/);
  });

  it('versions grow with the offset and the index, and a replay gets the same version', () => {
    const v = (offset: string, i: number) =>
      BigInt(ingestVersion(ingestVersionBase({ partition: 0, offset, timestamp: '0' }), i));
    expect(v('10', 0) < v('10', 1)).toBe(true);
    expect(v('10', 4095) < v('11', 0)).toBe(true);
    expect(v('10', 9999)).toBe(v('10', 4095));
    expect(v('9007199254740993', 0) > v('9007199254740992', 4095)).toBe(true);
    const line = (offset: string) =>
      readBack(usageRows(batch([{}, {}]), { partition: 0, offset, timestamp: '1700000000000' }))[1]!
        .ingest_version as string;
    expect(line('12')).toBe(String(12 * 4096 + 1));
    expect(line('12')).toBe(line('12'));
    expect(BigInt(line('3000000000000'))).toBe(v('3000000000000', 1));
  });

  it('backs off exponentially with jitter, capped', () => {
    const p = { initialMs: 100, maxMs: 1_000, factor: 2 };
    expect(backoffDelay(1, p, () => 0)).toBe(50);
    expect(backoffDelay(1, p, () => 1)).toBe(100);
    expect(backoffDelay(3, p, () => 1)).toBe(400);
    expect(backoffDelay(30, p, () => 1)).toBe(1_000);
    expect(backoffDelay(30, p, () => 0)).toBe(500);
  });
});
