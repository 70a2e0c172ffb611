/**
 * The pure mapping from decoded records to ClickHouse rows (sinks/clickhouse/rows.ts): the
 * columns of each family, JSON text that JSONEachRow reads back unchanged (one line per row),
 * usage rows in RowBinary that read back to the same values,
 * the replay-stable version, and the per-row refusal of values ClickHouse would store altered.
 */
import { describe, expect, it } from 'vitest';
import type {
  Asset,
  Meter,
  MeterMapping,
  SyncRun,
  UsageAggregate,
  UsageBatch,
  UsageInterval,
} from '../../../schemas/records.js';
import {
  aggregateRow,
  assetRow,
  ingestVersion,
  ingestVersionBase,
  mappingRow,
  meterRow,
  syncRunRow,
  USAGE_COLUMNS,
  usageRows,
  type EncodedRows,
  type MappedRow,
  type RecordCoordinates,
} from '../../../sinks/clickhouse/rows.js';
import { readRow } from '../../../sinks/clickhouse/row-binary.js';
import { FAMILY_BINDINGS } from '../../../sinks/clickhouse/families.js';

const T = Date.UTC(2024, 0, 1);
const coords: RecordCoordinates = { partition: 2, offset: '12', timestamp: String(T + 5_000) };
/** ingest_version of row `index` of the record at offset 12. */
const version = (index: number): string => String(12 * 4096 + index);
const kafka = { kafka_partition: 2, kafka_offset: '12', kafka_timestamp: T / 1000 + 5 };

/** The row's line, parsed; also checks it is one line of canonical JSON text. */
function parsed(r: MappedRow | undefined): Record<string, unknown> {
  if (!r?.ok) throw new Error(`refused: ${r ? JSON.stringify(r) : 'no row'}`);
  const line = r.line.toString();
  expect(line).not.toContain('\n');
  const row = JSON.parse(line) as Record<string, unknown>;
  // What JSON.stringify writes: JSONEachRow reads every value back as written.
  expect(JSON.stringify(row)).toBe(line);
  return row;
}

function refusal(r: MappedRow | undefined): string {
  if (!r || r.ok) throw new Error('stored');
  return r.reason;
}

/** A string that needs every kind of escape, and characters beyond ASCII. */
const TRICKY = 'a "quote", a \\ backslash,\na newline, a\ttab, \u0001, é, 😀 and \u2028';

const asset: Asset = {
  connection_id: 'c1',
  provider: 'arcadia',
  external_id: 'site-1',
  name: TRICKY,
  address: null,
  metadata: { floor: '3', note: TRICKY },
  active: true,
  derived: false,
  first_seen: T,
  last_seen: T + 86_400_000,
  sync_run_id: 'run-1',
};

const meter: Meter = {
  connection_id: 'c1',
  provider: 'arcadia',
  external_id: 'm1',
  asset_external_id: 'site-1',
  meter_type: 'Energy',
  meter_subtype: null,
  unit: 'kWh',
  canonical_unit: 'kWh',
  description: null,
  time_zone: 'Europe/Berlin',
  reading_type: 'reading',
  rollover_value: 99_999,
  metadata: {},
  active: false,
  first_seen: T,
  last_seen: T,
  sync_run_id: 'run-1',
};

function interval(i: number, over: Partial<UsageInterval> = {}): UsageInterval {
  return {
    start: T + i * 900_000,
    end: T + (i + 1) * 900_000,
    channel: 'consumption',
    value: i + 0.5,
    value_canonical: null,
    currency: null,
    estimated: false,
    from_readings: false,
    metadata: {},
    ...over,
  };
}

function usage(intervals: UsageInterval[], over: Partial<UsageBatch> = {}): UsageBatch {
  return {
    connection_id: 'c1',
    provider: 'arcadia',
    meter_external_id: 'm1',
    sync_run_id: 'run-1',
    unit: 'kWh',
    canonical_unit: null,
    time_zone: 'UTC',
    source_topic: 'raw.usage',
    source_partition: 0,
    source_offset: 7,
    intervals,
    ...over,
  };
}

const aggregate: UsageAggregate = {
  connection_id: 'c1',
  meter_external_id: 'm1',
  granularity: 'month',
  period: '2024-03',
  period_start: Date.UTC(2024, 2, 1),
  time_zone: 'UTC',
  channel: 'consumption',
  value: 123.25,
  unit: 'kWh',
  interval_count: 2_900,
  expected_count: 2_976,
  completeness: 0.974,
  estimated_count: 3,
  prorated: true,
  version: 4,
  updated_at: T,
  value_canonical: 123.25,
  canonical_unit: 'kWh',
};

const syncRun: SyncRun = {
  connection_id: 'c1',
  sync_run_id: 'run-1',
  provider: 'arcadia',
  mode: 'backfill',
  status: 'running',
  started_at: T,
  finished_at: null,
  range_from: '2024-01-01',
  range_to: null,
  entities: 4,
  usage_chunks: 2,
  intervals: 192,
  requests: 9,
  retries: 1,
  errors: 0,
  error_messages: [],
  snapshot_complete: false,
};

const mapping: MeterMapping = {
  connection_id: 'c1',
  external_id: 'm1',
  internal_meter_id: null,
  updated_at: T,
  source: 'manual',
};

describe('entity rows', () => {
  it('an asset: every column in order, flags as 0/1, instants as seconds, metadata as JSON text', () => {
    const row = parsed(assetRow(asset, coords));
    expect(Object.keys(row)).toEqual([
      'connection_id',
      'external_id',
      'provider',
      'name',
      'address',
      'metadata',
      'active',
      'derived',
      'first_seen',
      'last_seen',
      'sync_run_id',
      'connection_version',
      'ingest_version',
      'kafka_partition',
      'kafka_offset',
      'kafka_timestamp',
    ]);
    expect(row).toEqual({
      connection_id: 'c1',
      external_id: 'site-1',
      provider: 'arcadia',
      name: TRICKY,
      address: null,
      metadata: JSON.stringify(asset.metadata),
      active: 1,
      derived: 0,
      first_seen: T / 1000,
      last_seen: T / 1000 + 86_400,
      sync_run_id: 'run-1',
      connection_version: null,
      ingest_version: version(0),
      ...kafka,
    });
    expect(JSON.parse(row.metadata as string)).toEqual(asset.metadata);
  });

  it('a meter: nullable columns as null, an empty map as "{}", reading_type defaults to consumption', () => {
    expect(parsed(meterRow(meter, coords))).toEqual({
      connection_id: 'c1',
      external_id: 'm1',
      provider: 'arcadia',
      asset_external_id: 'site-1',
      meter_type: 'Energy',
      meter_subtype: null,
      unit: 'kWh',
      canonical_unit: 'kWh',
      description: null,
      time_zone: 'Europe/Berlin',
      reading_type: 'reading',
      rollover_value: 99_999,
      metadata: '{}',
      active: 0,
      first_seen: T / 1000,
      last_seen: T / 1000,
      sync_run_id: 'run-1',
      connection_version: null,
      ingest_version: version(0),
      ...kafka,
    });
    // The version the processors applied (topic connections), when the record has one.
    expect(parsed(meterRow({ ...meter, connection_version: 3 }, coords)).connection_version).toBe(3);
    expect(parsed(assetRow({ ...asset, connection_version: 3 }, coords)).connection_version).toBe(3);
    const older = { ...meter, reading_type: undefined, rollover_value: undefined, time_zone: undefined };
    expect(parsed(meterRow(older as unknown as Meter, coords))).toMatchObject({
      reading_type: 'consumption',
      rollover_value: null,
      time_zone: null,
    });
  });

  it('refuses a meter whose rollover is not a finite number, naming the field', () => {
    const r = meterRow({ ...meter, rollover_value: Number.NaN }, coords);
    expect(refusal(r)).toBe('rollover_value is NaN, not a finite number');
    // The detail is the record as it came, for the quarantine record.
    expect(r.ok ? null : r.detail).toMatchObject({ external_id: 'm1', rollover_value: Number.NaN });
  });

  it('a meter mapping', () => {
    expect(parsed(mappingRow(mapping, coords))).toEqual({
      connection_id: 'c1',
      external_id: 'm1',
      internal_meter_id: null,
      updated_at: T / 1000,
      source: 'manual',
      ingest_version: version(0),
      ...kafka,
    });
    expect(parsed(mappingRow({ ...mapping, internal_meter_id: 'int-9' }, coords)).internal_meter_id).toBe(
      'int-9',
    );
  });
});

type Outcome = { ok: true; row: Record<string, unknown> } | { ok: false; reason: string; detail: unknown };

/** Each interval's outcome by its index: its row read back from RowBinary, or why it was refused. */
function outcomes(e: EncodedRows): Outcome[] {
  const out = new Array<Outcome>(e.rows);
  const all = Buffer.concat(e.chunks);
  let start = 0;
  e.ends.forEach((end, i) => {
    const { row, end: read } = readRow(USAGE_COLUMNS, all, start);
    // Every row is exactly its columns: the next one starts where this one ends.
    expect(read).toBe(end);
    out[e.indexes?.[i] ?? i] = { ok: true, row };
    start = end;
  });
  expect(start).toBe(all.length);
  for (const r of e.refused) out[r.index] = { ok: false, reason: r.reason, detail: r.detail };
  expect(out.filter(Boolean)).toHaveLength(e.rows);
  return out;
}

function rowOf(o: Outcome | undefined): Record<string, unknown> {
  if (!o?.ok) throw new Error(`refused: ${JSON.stringify(o)}`);
  return o.row;
}

function reasonOf(o: Outcome | undefined): string {
  if (!o || o.ok) throw new Error('stored');
  return o.reason;
}

describe('usage rows (RowBinary)', () => {
  it('one row per interval with every column, each read back as written', () => {
    // Each column once (test/integration/sinks/clickhouse-insert.test.ts holds them to the table's).
    const names = USAGE_COLUMNS.map(([name]) => name);
    expect(new Set(names).size).toBe(names.length);
    const rows = outcomes(
      usageRows(
        usage([interval(0), interval(1, { estimated: true, from_readings: true, value_canonical: 2.5 })], {
          canonical_unit: 'kWh',
        }),
        coords,
      ),
    );
    expect(rows).toHaveLength(2);
    expect(rowOf(rows[1])).toEqual({
      connection_id: 'c1',
      meter_external_id: 'm1',
      channel: 'consumption',
      interval_start: T / 1000 + 900,
      interval_end: T / 1000 + 1_800,
      provider: 'arcadia',
      value: 1.5,
      unit: 'kWh',
      value_canonical: 2.5,
      canonical_unit: 'kWh',
      currency: null,
      estimated: 1,
      from_readings: 1,
      metadata: '{}',
      time_zone: 'UTC',
      sync_run_id: 'run-1',
      source_topic: 'raw.usage',
      source_partition: 0,
      source_offset: '7',
      connection_version: null,
      ingest_version: version(1),
      ...kafka,
    });
    expect(rowOf(rows[0])).toMatchObject({ estimated: 0, from_readings: 0, value_canonical: null });
    const versioned = outcomes(usageRows(usage([interval(0)], { connection_version: 2 }), coords));
    expect(rowOf(versioned[0]).connection_version).toBe('2');
  });

  it('keeps every string as given, channel and currency changing mid-batch', () => {
    const rows = outcomes(
      usageRows(
        usage(
          [
            interval(0, { currency: 'EUR', channel: 'cost', metadata: { note: TRICKY } }),
            interval(1, { currency: 'EUR', channel: 'cost' }),
            interval(2, { currency: TRICKY, channel: 'production' }),
            interval(3, { currency: null }),
          ],
          { meter_external_id: TRICKY, time_zone: TRICKY, sync_run_id: 'r"1', unit: 'm³' },
        ),
        coords,
      ),
    ).map(rowOf);
    expect(rows.map((r) => [r.channel, r.currency])).toEqual([
      ['cost', 'EUR'],
      ['cost', 'EUR'],
      ['production', TRICKY],
      ['consumption', null],
    ]);
    for (const r of rows)
      expect(r).toMatchObject({ meter_external_id: TRICKY, time_zone: TRICKY, unit: 'm³' });
    expect(JSON.parse(rows[0]!.metadata as string)).toEqual({ note: TRICKY });
    expect(rows.map((r) => r.ingest_version)).toEqual([0, 1, 2, 3].map(version));
  });

  it('refuses what the columns cannot hold, per interval or, for a shared column, every interval', () => {
    // A channel outside the Enum8 (ClickHouse would refuse it) or a currency that is no string.
    const mixed = outcomes(
      usageRows(
        usage([
          interval(0),
          interval(1, { channel: 'steam' as 'cost' }),
          interval(2, { currency: 7 as unknown as string }),
          interval(3),
        ]),
        coords,
      ),
    );
    expect(reasonOf(mixed[1])).toBe(
      'channel is "steam", not one of consumption, redelivery, production, cost',
    );
    expect(reasonOf(mixed[2])).toBe('currency is 7, not a string');
    expect(rowOf(mixed[3])).toMatchObject({ channel: 'consumption', ingest_version: version(3) });
    // A field of the record without its schema type (a writer without the field): no row is stored.
    const odd = outcomes(
      usageRows(usage([interval(0), interval(1)], { time_zone: undefined as unknown as string }), coords),
    );
    expect(odd.map(reasonOf)).toEqual([
      'time_zone is undefined, not a string',
      'time_zone is undefined, not a string',
    ]);
  });

  it('refuses NaN and infinite numbers per interval; the siblings are stored', () => {
    const e = usageRows(
      usage([
        interval(0),
        interval(1, { value: Number.NaN }),
        interval(2, { value: Infinity }),
        interval(3, { value_canonical: -Infinity }),
        interval(4),
      ]),
      coords,
    );
    const rows = outcomes(e);
    expect(rows.map((r) => r.ok)).toEqual([true, false, false, false, true]);
    expect(reasonOf(rows[1])).toBe('value is NaN, not a finite number');
    expect(reasonOf(rows[2])).toBe('value is Infinity, not a finite number');
    expect(reasonOf(rows[3])).toBe('value_canonical is -Infinity, not a finite number');
    // The stored rows keep their own index in the version.
    expect(rowOf(rows[4]).ingest_version).toBe(version(4));
    expect(e.indexes).toEqual([0, 4]);
    // The detail of a refused row is its interval.
    expect(rows[1]!.ok ? null : rows[1]!.detail).toMatchObject({ start: T + 900_000 });
  });

  it('refuses instants outside DateTime (1970-01-01..2106-02-07), the edges included as stored', () => {
    const max = 4_294_967_295 * 1000;
    const rows = outcomes(
      usageRows(
        usage([
          interval(0, { start: 0, end: 900_000 }),
          interval(1, { start: -1 }),
          interval(2, { end: max + 1000 }),
          interval(3, { start: max - 900_000, end: max + 999 }),
          interval(4, { start: Number.NaN }),
        ]),
        coords,
      ),
    );
    expect(rowOf(rows[0])).toMatchObject({ interval_start: 0, interval_end: 900 });
    expect(reasonOf(rows[1])).toBe('start -1 ms is outside the DateTime range 1970-01-01..2106-02-07');
    expect(reasonOf(rows[2])).toMatch(/^end \d+ ms is outside the DateTime range/);
    expect(rowOf(rows[3])).toMatchObject({ interval_end: 4_294_967_295 });
    expect(reasonOf(rows[4])).toBe('start NaN ms is outside the DateTime range 1970-01-01..2106-02-07');
  });

  it('a Kafka timestamp out of range refuses every row, after each row reports its own problem', () => {
    const rows = outcomes(
      usageRows(usage([interval(0), interval(1, { value: Number.NaN })]), { ...coords, timestamp: '-5000' }),
    );
    expect(reasonOf(rows[0])).toMatch(/^kafka timestamp -5000 ms is outside/);
    expect(reasonOf(rows[1])).toBe('value is NaN, not a finite number');
  });

  it('a stored row reads back as JSON text for a quarantine sample', () => {
    const e = usageRows(usage([interval(0), interval(1)]), coords);
    const second = Buffer.concat(e.chunks).subarray(e.ends[0], e.ends[1]);
    expect(JSON.parse(FAMILY_BINDINGS.usage[0]!.describe(second))).toMatchObject({
      meter_external_id: 'm1',
      interval_start: T / 1000 + 900,
      value: 1.5,
      ingest_version: version(1),
    });
  });

  it('a batch of thousands of intervals is one buffer of rows, each read back in order', () => {
    const many = Array.from({ length: 5_000 }, (_, i) =>
      interval(i, { metadata: i % 7 === 0 ? { k: `v${i}` } : {} }),
    );
    const e = usageRows(usage(many), coords);
    expect(e.chunks).toHaveLength(1);
    const rows = outcomes(e).map(rowOf);
    expect(rows.map((r) => r.value)).toEqual(many.map((iv) => iv.value));
    expect(rows[7]!.metadata).toBe('{"k":"v7"}');
  });
});

describe('versions', () => {
  it('offset << 12 | index, the index capped at 4095; a replay writes the same version', () => {
    const v = (offset: string, i: number): bigint =>
      BigInt(ingestVersion(ingestVersionBase({ partition: 0, offset, timestamp: '0' }), i));
    expect(v('12', 1)).toBe(12n * 4096n + 1n);
    expect(v('10', 4095) < v('11', 0)).toBe(true);
    expect(v('10', 9_999)).toBe(v('10', 4095));
    expect(v('10', 3)).toBe(v('10', 3));
    // Beyond 2^53: exact, as a decimal string.
    expect(v('9007199254740993', 0) > v('9007199254740992', 4095)).toBe(true);
  });

  it('usage rows agree with ingestVersion, past 2^41 offsets and 4096 intervals too', () => {
    // Up to 2^52 - 1 (about 140 years at 1M records/s): offset << 12 fits UInt64.
    for (const offset of ['0', '12', String(2 ** 41 - 1), String(2 ** 41), String(2 ** 52 - 1)]) {
      const base = ingestVersionBase({ partition: 0, offset, timestamp: '0' });
      const rows = outcomes(usageRows(usage([interval(0), interval(1)]), { ...coords, offset }));
      expect(rows.map((r) => rowOf(r).ingest_version)).toEqual([
        ingestVersion(base, 0),
        ingestVersion(base, 1),
      ]);
    }
    // From 2^52 on, offset << 12 is beyond UInt64: refused rather than stored wrapped.
    const beyond = outcomes(usageRows(usage([interval(0)]), { ...coords, offset: String(2 ** 52) }));
    expect(reasonOf(beyond[0])).toBe('kafka offset 4503599627370496 is beyond 2^52: no UInt64 version');
    const many = Array.from({ length: 4_098 }, (_, i) => interval(i % 96));
    const rows = outcomes(usageRows(usage(many), coords));
    expect(rowOf(rows[4_094]).ingest_version).toBe(version(4_094));
    expect(rowOf(rows[4_095]).ingest_version).toBe(version(4_095));
    expect(rowOf(rows[4_097]).ingest_version).toBe(version(4_095));
  });

  it('every family versions its single row at index 0', () => {
    for (const r of [
      assetRow(asset, coords),
      meterRow(meter, coords),
      mappingRow(mapping, coords),
      aggregateRow(aggregate, coords),
      syncRunRow(syncRun, coords),
    ])
      expect(parsed(r).ingest_version).toBe(version(0));
  });
});

describe('aggregate rows', () => {
  it('a month: its period date is the first day, the version as text', () => {
    expect(parsed(aggregateRow(aggregate, coords))).toEqual({
      connection_id: 'c1',
      meter_external_id: 'm1',
      channel: 'consumption',
      period: '2024-03',
      period_date: '2024-03-01',
      period_start: Date.UTC(2024, 2, 1) / 1000,
      time_zone: 'UTC',
      value: 123.25,
      unit: 'kWh',
      interval_count: 2_900,
      expected_count: 2_976,
      completeness: 0.974,
      estimated_count: 3,
      prorated: 1,
      version: '4',
      updated_at: T / 1000,
      value_canonical: 123.25,
      canonical_unit: 'kWh',
      ingest_version: version(0),
      ...kafka,
    });
  });

  it('canonical value and unit: a MWh month in kWh, cost with both null', () => {
    expect(
      parsed(aggregateRow({ ...aggregate, value: 1.5, unit: 'MWh', value_canonical: 1500 }, coords)),
    ).toMatchObject({ value: 1.5, unit: 'MWh', value_canonical: 1500, canonical_unit: 'kWh' });
    const cost = {
      ...aggregate,
      channel: 'cost' as const,
      unit: 'EUR',
      value_canonical: null,
      canonical_unit: null,
    };
    expect(parsed(aggregateRow(cost, coords))).toMatchObject({ value_canonical: null, canonical_unit: null });
    expect(refusal(aggregateRow({ ...aggregate, value_canonical: Number.POSITIVE_INFINITY }, coords))).toBe(
      'value_canonical is Infinity, not a finite number',
    );
  });

  it('an aggregate written before the canonical fields existed loads them as NULL', () => {
    const { value_canonical: _v, canonical_unit: _u, ...old } = aggregate;
    expect(parsed(aggregateRow(old as UsageAggregate, coords))).toMatchObject({
      value: 123.25,
      value_canonical: null,
      canonical_unit: null,
    });
  });

  it('a day keeps its date; a period of neither form, a NaN completeness or a bad instant is refused', () => {
    expect(
      parsed(aggregateRow({ ...aggregate, period: '2024-03-05', prorated: false }, coords)),
    ).toMatchObject({ period_date: '2024-03-05', prorated: 0 });
    expect(refusal(aggregateRow({ ...aggregate, period: '2024-W10' }, coords))).toBe(
      'period "2024-W10" is neither YYYY-MM-DD nor YYYY-MM',
    );
    expect(refusal(aggregateRow({ ...aggregate, completeness: Number.NaN }, coords))).toBe(
      'completeness is NaN, not a finite number',
    );
    expect(refusal(aggregateRow({ ...aggregate, updated_at: 1e16 }, coords))).toMatch(
      /^updated_at 10000000000000000 ms is outside the DateTime range/,
    );
  });
});

describe('sync run rows', () => {
  it('an open run: finished_at null, error messages as an array, flags as 0/1', () => {
    expect(parsed(syncRunRow(syncRun, coords))).toEqual({
      connection_id: 'c1',
      sync_run_id: 'run-1',
      provider: 'arcadia',
      mode: 'backfill',
      status: 'running',
      started_at: T / 1000,
      finished_at: null,
      range_from: '2024-01-01',
      range_to: null,
      entities: 4,
      usage_chunks: 2,
      intervals: 192,
      requests: 9,
      retries: 1,
      errors: 0,
      error_messages: [],
      snapshot_complete: 0,
      ingest_version: version(0),
      ...kafka,
    });
  });

  it('a finished run with escaped messages; a finish beyond 2106 is refused', () => {
    const done = { ...syncRun, finished_at: T + 60_000, error_messages: [TRICKY], snapshot_complete: true };
    expect(parsed(syncRunRow(done, coords))).toMatchObject({
      finished_at: T / 1000 + 60,
      error_messages: [TRICKY],
      snapshot_complete: 1,
    });
    expect(refusal(syncRunRow({ ...done, finished_at: 5e12 }, coords))).toMatch(
      /^finished_at 5000000000000 ms/,
    );
  });
});
