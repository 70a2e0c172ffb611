/**
 * Pure mapping from decoded topic records to ClickHouse rows, in the insert format of their table:
 * usage batches explode into one RowBinary row per interval (the hot path), every other record is
 * one JSONEachRow object whose keys are the column names of migrations/001_initial.ts and later.
 * Every column is sent: 18.16 does not apply DEFAULT expressions to fields missing from
 * JSONEachRow (input_format_defaults_for_omitted_fields came later).
 *
 * Values that ClickHouse would store altered rather than reject are refused here, per row:
 * a NaN or infinite number (JSON null: 18.16 stores nan, current releases 0) and an instant
 * outside DateTime's range 1970..2106 (both wrap it silently).
 */
import type {
  Asset,
  Meter,
  MeterMapping,
  QuarantineRecord,
  SyncRun,
  UsageAggregate,
  UsageBatch,
} from '../../schemas/records.js';
import {
  encodeValue,
  RowBinaryWriter,
  writeValue,
  type BinaryColumn,
  type BinaryType,
} from './row-binary.js';

export type Row = Record<string, unknown>;

/** Where a Kafka record sits; the version of its rows derives from it. */
export interface RecordCoordinates {
  partition: number;
  offset: string;
  /** Kafka record timestamp, epoch ms (string as kafkajs gives it). */
  timestamp: string;
}

/**
 * A row as one JSONEachRow line (without its newline), or the reason this row cannot be stored.
 * A line of bytes is a row too large to hold twice as a string (a quarantine row's hex).
 */
export type MappedRow = { ok: true; line: string | Buffer } | { ok: false; reason: string; detail: Row };

/** A row refused before any insert: its index in the record, why, and what it held. */
export interface Refusal {
  index: number;
  reason: string;
  detail: Row;
}

/** The rows of one record, encoded in its table's insert format. */
export interface EncodedRows {
  /** The stored rows back to back; several chunks when a row is already a large Buffer. */
  chunks: Buffer[];
  /** Where each stored row ends in the chunks' concatenation. */
  ends: Uint32Array;
  /** Index in the record of each stored row; null when every row was stored (row i is index i). */
  indexes: number[] | null;
  refused: Refusal[];
  /** Rows the record maps to, stored or not. */
  rows: number;
}

const NEWLINE = Buffer.from('\n');

/** JSONEachRow rows as EncodedRows: each line ends in a newline; a Buffer line is not copied. */
export function jsonRows(mapped: MappedRow[]): EncodedRows {
  const chunks: Buffer[] = [];
  const ends = new Uint32Array(mapped.length);
  const refused: Refusal[] = [];
  let indexes: number[] | null = null;
  let text = '';
  let bytes = 0;
  let stored = 0;
  mapped.forEach((r, index) => {
    if (!r.ok) {
      indexes ??= Array.from({ length: stored }, (_, i) => i);
      refused.push({ index, reason: r.reason, detail: r.detail });
      return;
    }
    if (typeof r.line === 'string') {
      text += r.line + '\n';
      bytes += Buffer.byteLength(r.line) + 1;
    } else {
      if (text.length > 0) chunks.push(Buffer.from(text));
      text = '';
      chunks.push(r.line, NEWLINE);
      bytes += r.line.length + 1;
    }
    ends[stored++] = bytes;
    indexes?.push(index);
  });
  if (text.length > 0) chunks.push(Buffer.from(text));
  return { chunks, ends: ends.subarray(0, stored), indexes, refused, rows: mapped.length };
}

const INDEX_BITS = 12n;
const MAX_INDEX = (1n << INDEX_BITS) - 1n;

/**
 * UInt64 version of the index-th row of a Kafka record: offset << 12 | min(index, 4095).
 * Every key lives on one partition (DESIGN.md §2), where offsets order its records: a replay
 * writes the same number again, a later record (a correction, a deactivation) a higher one. The
 * record timestamp would not do: a producer sends a whole batch with one timestamp.
 * Sent as a decimal string: it exceeds 2^53.
 */
export function ingestVersionBase(c: RecordCoordinates): bigint {
  return BigInt(c.offset) << INDEX_BITS;
}

export function ingestVersion(base: bigint, index: number): string {
  const i = BigInt(index);
  return (base | (i > MAX_INDEX ? MAX_INDEX : i)).toString();
}

/** DateTime range shared by 18.16 and current releases (UInt32 seconds). */
const MIN_S = 0;
const MAX_S = 4_294_967_295;

class RowProblem extends Error {}

function seconds(ms: number, field: string): number {
  const s = Math.floor(ms / 1000);
  if (!Number.isFinite(s) || s < MIN_S || s > MAX_S) {
    throw new RowProblem(`${field} ${ms} ms is outside the DateTime range 1970-01-01..2106-02-07`);
  }
  return s;
}

function optSeconds(ms: number | null | undefined, field: string): number | null {
  return ms === null || ms === undefined ? null : seconds(ms, field);
}

function finite(v: number, field: string): number {
  if (!Number.isFinite(v)) throw new RowProblem(`${field} is ${v}, not a finite number`);
  return v;
}

function optFinite(v: number | null | undefined, field: string): number | null {
  return v === null || v === undefined ? null : finite(v, field);
}

/** A map as JSON text: 18.16 has no Map type; visitParamExtractString reads it on every release. */
function json(map: Record<string, string> | undefined | null): string {
  if (!map) return '{}';
  for (const _ in map) return JSON.stringify(map);
  return '{}';
}

function kafkaColumns(c: RecordCoordinates, version: string): Row {
  return {
    ingest_version: version,
    kafka_partition: c.partition,
    kafka_offset: c.offset,
    kafka_timestamp: seconds(Number(c.timestamp), 'kafka timestamp'),
  };
}

function guard(build: () => Row, detail: () => Row): MappedRow {
  try {
    return { ok: true, line: JSON.stringify(build()) };
  } catch (err) {
    if (err instanceof RowProblem) return { ok: false, reason: err.message, detail: detail() };
    throw err;
  }
}

export function assetRow(a: Asset, c: RecordCoordinates): MappedRow {
  const base = ingestVersionBase(c);
  return guard(
    () => ({
      connection_id: a.connection_id,
      external_id: a.external_id,
      provider: a.provider,
      name: a.name,
      address: a.address ?? null,
      metadata: json(a.metadata),
      active: a.active ? 1 : 0,
      derived: a.derived ? 1 : 0,
      first_seen: seconds(a.first_seen, 'first_seen'),
      last_seen: seconds(a.last_seen, 'last_seen'),
      sync_run_id: a.sync_run_id,
      connection_version: a.connection_version ?? null,
      ...kafkaColumns(c, ingestVersion(base, 0)),
    }),
    () => ({ ...a }),
  );
}

export function meterRow(m: Meter, c: RecordCoordinates): MappedRow {
  const base = ingestVersionBase(c);
  return guard(
    () => ({
      connection_id: m.connection_id,
      external_id: m.external_id,
      provider: m.provider,
      asset_external_id: m.asset_external_id,
      meter_type: m.meter_type,
      meter_subtype: m.meter_subtype ?? null,
      unit: m.unit,
      canonical_unit: m.canonical_unit ?? null,
      description: m.description ?? null,
      time_zone: m.time_zone ?? null,
      reading_type: m.reading_type ?? 'consumption',
      rollover_value: optFinite(m.rollover_value, 'rollover_value'),
      metadata: json(m.metadata),
      active: m.active ? 1 : 0,
      first_seen: seconds(m.first_seen, 'first_seen'),
      last_seen: seconds(m.last_seen, 'last_seen'),
      sync_run_id: m.sync_run_id,
      connection_version: m.connection_version ?? null,
      ...kafkaColumns(c, ingestVersion(base, 0)),
    }),
    () => ({ ...m }),
  );
}

export function mappingRow(m: MeterMapping, c: RecordCoordinates): MappedRow {
  const base = ingestVersionBase(c);
  return guard(
    () => ({
      connection_id: m.connection_id,
      external_id: m.external_id,
      internal_meter_id: m.internal_meter_id ?? null,
      updated_at: seconds(m.updated_at, 'updated_at'),
      source: m.source,
      ...kafkaColumns(c, ingestVersion(base, 0)),
    }),
    () => ({ ...m }),
  );
}

/** The channel column's Enum8 codes (migrations/001_initial.ts). */
export const CHANNEL_CODES: Readonly<Record<string, number>> = {
  consumption: 1,
  redelivery: 2,
  production: 3,
  cost: 4,
};

const CHANNEL: BinaryType = { enum8: CHANNEL_CODES };
const CURRENCY: BinaryType = { nullable: 'String' };

/** Columns every row of a usage record shares, written once per record. */
const USAGE_SHARED: readonly BinaryColumn[] = [
  ['connection_id', 'String'],
  ['meter_external_id', 'String'],
  ['provider', 'String'],
  ['unit', 'String'],
  ['canonical_unit', { nullable: 'String' }],
  ['time_zone', 'String'],
  ['sync_run_id', 'String'],
  ['source_topic', 'String'],
  ['source_partition', 'UInt32'],
  ['source_offset', 'UInt64'],
  ['connection_version', { nullable: 'UInt64' }],
  ['kafka_partition', 'UInt32'],
  ['kafka_offset', 'UInt64'],
  ['kafka_timestamp', 'DateTime'],
];

/** usage_intervals in RowBinary: the shared columns first, then each interval's own. */
export const USAGE_COLUMNS: readonly BinaryColumn[] = [
  ...USAGE_SHARED,
  ['channel', CHANNEL],
  ['interval_start', 'DateTime'],
  ['interval_end', 'DateTime'],
  ['value', 'Float64'],
  ['value_canonical', { nullable: 'Float64' }],
  ['currency', CURRENCY],
  ['estimated', 'UInt8'],
  ['from_readings', 'UInt8'],
  ['metadata', 'String'],
  ['ingest_version', 'UInt64'],
];

const UINT32_MAX = 4_294_967_295;
const kind = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** Why a value cannot be written as the column's type, or null when it can. */
function typeProblem(type: BinaryType, v: unknown): string | null {
  if (typeof type === 'object') {
    if ('nullable' in type) return v === null || v === undefined ? null : typeProblem(type.nullable, v);
    return typeof v === 'string' && Object.hasOwn(type.enum8, v)
      ? null
      : `is ${kind(v)}, not one of ${Object.keys(type.enum8).join(', ')}`;
  }
  switch (type) {
    case 'String':
      return typeof v === 'string' ? null : `is ${kind(v)}, not a string`;
    case 'Float64':
      return typeof v === 'number' && Number.isFinite(v) ? null : `is ${kind(v)}, not a finite number`;
    case 'UInt8':
    case 'UInt32':
    case 'DateTime':
      return Number.isInteger(v) &&
        (v as number) >= 0 &&
        (v as number) <= (type === 'UInt8' ? 255 : UINT32_MAX)
        ? null
        : `is ${kind(v)}, not a ${type}`;
    case 'UInt64':
      return (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) ||
        (typeof v === 'string' && /^\d{1,20}$/.test(v) && BigInt(v) < 2n ** 64n)
        ? null
        : `is ${kind(v)}, not a UInt64`;
  }
}

function checked(type: BinaryType, v: unknown, field: string): unknown {
  const problem = typeProblem(type, v);
  if (problem) throw new RowProblem(`${field} ${problem}`);
  return v;
}

/**
 * The record's shared columns as RowBinary, or why none of its rows can be stored (a field
 * without its schema type, a Kafka timestamp outside DateTime).
 */
function usageShared(b: UsageBatch, c: RecordCoordinates): Buffer | RowProblem {
  const values: Record<string, unknown> = {
    connection_id: b.connection_id,
    meter_external_id: b.meter_external_id,
    provider: b.provider,
    unit: b.unit,
    canonical_unit: b.canonical_unit,
    time_zone: b.time_zone,
    sync_run_id: b.sync_run_id,
    source_topic: b.source_topic,
    source_partition: b.source_partition,
    source_offset: b.source_offset,
    connection_version: b.connection_version,
    kafka_partition: c.partition,
    kafka_offset: c.offset,
  };
  try {
    values.kafka_timestamp = seconds(Number(c.timestamp), 'kafka timestamp');
    // offset << 12 is the version: from 2^52 on it would not fit UInt64 (4.5e15 records).
    if (!(Number(c.offset) < 2 ** 52))
      throw new RowProblem(`kafka offset ${c.offset} is beyond 2^52: no UInt64 version`);
    const w = new RowBinaryWriter(512);
    for (const [name, type] of USAGE_SHARED) writeValue(w, type, checked(type, values[name], name));
    return w.take();
  } catch (err) {
    if (err instanceof RowProblem) return err;
    throw err;
  }
}

/** Version of the index-th row of the record at `offset`, as RowBinary's UInt64 takes it. */
function rowVersion(offset: number, index: number): number | bigint {
  const i = index > MAX_INDEX_N ? MAX_INDEX_N : index;
  return offset < 2 ** 41 ? offset * 4096 + i : (BigInt(offset) << INDEX_BITS) | BigInt(i);
}
const MAX_INDEX_N = Number(MAX_INDEX);

const NULL_BYTE = Buffer.from([1]);
const EMPTY_METADATA = encodeValue('String', '{}');

/**
 * One usage_intervals row per interval, in RowBinary (USAGE_COLUMNS); a bad interval is refused
 * alone, its siblings are stored.
 *
 * The hot path (a backfill loads millions of intervals): the columns the record shares are
 * encoded once and copied before each interval's own, channel and currency are encoded once per
 * distinct value, and every row goes into one buffer. A shared column that cannot be written
 * refuses every row, after each row reports its own first problem.
 */
export function usageRows(b: UsageBatch, c: RecordCoordinates): EncodedRows {
  const n = b.intervals.length;
  const shared = usageShared(b, c);
  const offset = Number(c.offset);
  const w = new RowBinaryWriter(n * (shared instanceof Buffer ? shared.length + 64 : 0) + 16);
  const ends = new Uint32Array(n);
  let stored = 0;
  let indexes: number[] | null = null;
  const refused: Refusal[] = [];
  // Channels and currencies alternate within a record (consumption, cost, ...): each distinct
  // value is checked and encoded once.
  const channels = new Map<unknown, number>();
  const currencies = new Map<unknown, Buffer>([[null, NULL_BYTE]]);
  for (let i = 0; i < n; i++) {
    const iv = b.intervals[i]!;
    try {
      let channelCode = channels.get(iv.channel);
      if (channelCode === undefined) {
        channelCode = CHANNEL_CODES[checked(CHANNEL, iv.channel, 'channel') as string]!;
        channels.set(iv.channel, channelCode);
      }
      let currencyBytes = currencies.get(iv.currency);
      if (currencyBytes === undefined) {
        currencyBytes = encodeValue(CURRENCY, checked(CURRENCY, iv.currency, 'currency'));
        currencies.set(iv.currency, currencyBytes);
      }
      const start = seconds(iv.start, 'start');
      const end = seconds(iv.end, 'end');
      const value = finite(iv.value, 'value');
      const canonical = optFinite(iv.value_canonical, 'value_canonical');
      if (shared instanceof RowProblem) throw shared;
      const metadata = json(iv.metadata);
      w.raw(shared);
      w.uint8(channelCode);
      w.uint32(start);
      w.uint32(end);
      w.float64(value);
      if (canonical === null) w.uint8(1);
      else {
        w.uint8(0);
        w.float64(canonical);
      }
      w.raw(currencyBytes);
      w.uint8(iv.estimated ? 1 : 0);
      w.uint8(iv.from_readings ? 1 : 0);
      if (metadata === '{}') w.raw(EMPTY_METADATA);
      else w.string(metadata);
      w.uint64(rowVersion(offset, i));
      ends[stored] = w.length;
      indexes?.push(i);
      stored++;
    } catch (err) {
      if (!(err instanceof RowProblem)) throw err;
      indexes ??= Array.from({ length: stored }, (_, k) => k);
      refused.push({ index: i, reason: err.message, detail: { ...iv } });
    }
  }
  return {
    chunks: stored > 0 ? [w.take()] : [],
    ends: ends.subarray(0, stored),
    indexes,
    refused,
    rows: n,
  };
}

/** "2024-03-05" stays, "2024-03" becomes its first day: the Date column of the period. */
function periodDate(period: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(period)) return period;
  if (/^\d{4}-\d{2}$/.test(period)) return `${period}-01`;
  throw new RowProblem(`period "${period}" is neither YYYY-MM-DD nor YYYY-MM`);
}

export function aggregateRow(a: UsageAggregate, c: RecordCoordinates): MappedRow {
  const base = ingestVersionBase(c);
  return guard(
    () => ({
      connection_id: a.connection_id,
      meter_external_id: a.meter_external_id,
      channel: a.channel,
      period: a.period,
      period_date: periodDate(a.period),
      period_start: seconds(a.period_start, 'period_start'),
      time_zone: a.time_zone,
      value: finite(a.value, 'value'),
      unit: a.unit,
      // Absent (undefined) in a record decoded without schema resolution from before the field.
      value_canonical: optFinite(a.value_canonical, 'value_canonical'),
      canonical_unit: a.canonical_unit ?? null,
      interval_count: a.interval_count,
      expected_count: a.expected_count,
      completeness: finite(a.completeness, 'completeness'),
      estimated_count: a.estimated_count,
      prorated: a.prorated ? 1 : 0,
      version: String(a.version),
      updated_at: seconds(a.updated_at, 'updated_at'),
      ...kafkaColumns(c, ingestVersion(base, 0)),
    }),
    () => ({ ...a }),
  );
}

/** Bytes of the original turned into hex per step: only small strings on the V8 heap. */
const HEX_STEP = 64 * 1024;
const ORIGINAL_HEX = '\u0000original_hex\u0000';

/**
 * The quarantine row as bytes. `original_hex` is the one column the table needs as hex (twice the
 * original's size); it is written straight into the line's Buffer in steps, so no string of that
 * size is made, and JSON.stringify handles every other column.
 */
export function quarantineRow(q: QuarantineRecord, c: RecordCoordinates): MappedRow {
  const base = ingestVersionBase(c);
  const original = Buffer.isBuffer(q.original) ? q.original : Buffer.from(q.original ?? []);
  const mapped = guard(
    () => ({
      id: q.id,
      connection_id: q.connection_id ?? null,
      stage: q.stage,
      reason_code: q.reason_code,
      message: q.message,
      source_topic: q.source_topic,
      source_partition: q.source_partition,
      source_offset: q.source_offset,
      record_index: q.record_index ?? null,
      source_key: q.source_key ?? null,
      original_size: original.length,
      detail: q.detail ?? null,
      quarantined_at: seconds(q.quarantined_at, 'quarantined_at'),
      // Records written before the lifecycle fields existed are open.
      status: q.status ?? 'open',
      redriven_at: optSeconds(q.redriven_at, 'redriven_at'),
      redrive_id: q.redrive_id ?? null,
      connection_version: q.connection_version ?? null,
      ...kafkaColumns(c, ingestVersion(base, 0)),
      // Last, so that nothing from the input can follow (or imitate) the placeholder.
      original_hex: ORIGINAL_HEX,
    }),
    () => ({ id: q.id, reason_code: q.reason_code }),
  );
  if (!mapped.ok || typeof mapped.line !== 'string') return mapped;
  const at = mapped.line.lastIndexOf(JSON.stringify(ORIGINAL_HEX));
  const head = Buffer.from(mapped.line.slice(0, at + 1));
  const tail = Buffer.from(mapped.line.slice(at + JSON.stringify(ORIGINAL_HEX).length - 1));
  const line = Buffer.allocUnsafe(head.length + original.length * 2 + tail.length);
  let o = head.copy(line, 0);
  for (let i = 0; i < original.length; i += HEX_STEP) {
    o += line.write(original.subarray(i, i + HEX_STEP).toString('hex'), o, 'latin1');
  }
  tail.copy(line, o);
  return { ok: true, line };
}

export function syncRunRow(r: SyncRun, c: RecordCoordinates): MappedRow {
  const base = ingestVersionBase(c);
  return guard(
    () => ({
      connection_id: r.connection_id,
      sync_run_id: r.sync_run_id,
      provider: r.provider,
      mode: r.mode,
      status: r.status,
      started_at: seconds(r.started_at, 'started_at'),
      finished_at: optSeconds(r.finished_at, 'finished_at'),
      range_from: r.range_from ?? null,
      range_to: r.range_to ?? null,
      entities: r.entities,
      usage_chunks: r.usage_chunks,
      intervals: r.intervals,
      requests: r.requests,
      retries: r.retries,
      errors: r.errors,
      error_messages: r.error_messages ?? [],
      snapshot_complete: r.snapshot_complete ? 1 : 0,
      ...kafkaColumns(c, ingestVersion(base, 0)),
    }),
    () => ({ ...r }),
  );
}
