/**
 * Pure mapping from decoded topic records to ClickHouse rows (JSONEachRow objects whose keys are
 * the column names of migrations/001_initial.ts and later). A usage batch explodes into one row per
 * interval. Every column is sent: 18.16 does not apply DEFAULT expressions to fields missing
 * from JSONEachRow (input_format_defaults_for_omitted_fields came later).
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

/** Same as ingestVersion, without BigInt while the result is below 2^53 (offsets < 2^41). */
function fastVersion(offset: number, index: number): string {
  const i = index > 4095 ? 4095 : index;
  return offset < 2 ** 41
    ? String(offset * 4096 + i)
    : ((BigInt(offset) << INDEX_BITS) | BigInt(i)).toString();
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

/** usageRows for a batch whose fields do not all have their schema types: JSON.stringify decides. */
function usageRowsGeneric(b: UsageBatch, c: RecordCoordinates, firstIndex = 0): MappedRow[] {
  const offset = Number(c.offset);
  const out = new Array<MappedRow>(b.intervals.length);
  for (let i = 0; i < b.intervals.length; i++) {
    const iv = b.intervals[i]!;
    try {
      out[i] = {
        ok: true,
        line: JSON.stringify({
          connection_id: b.connection_id,
          meter_external_id: b.meter_external_id,
          channel: iv.channel,
          interval_start: seconds(iv.start, 'start'),
          interval_end: seconds(iv.end, 'end'),
          provider: b.provider,
          value: finite(iv.value, 'value'),
          unit: b.unit,
          value_canonical: optFinite(iv.value_canonical, 'value_canonical'),
          canonical_unit: b.canonical_unit ?? null,
          currency: iv.currency ?? null,
          estimated: iv.estimated ? 1 : 0,
          from_readings: iv.from_readings ? 1 : 0,
          metadata: json(iv.metadata),
          time_zone: b.time_zone,
          sync_run_id: b.sync_run_id,
          source_topic: b.source_topic,
          source_partition: b.source_partition,
          source_offset: b.source_offset,
          connection_version: b.connection_version ?? null,
          ingest_version: fastVersion(offset, firstIndex + i),
          kafka_partition: c.partition,
          kafka_offset: c.offset,
          kafka_timestamp: seconds(Number(c.timestamp), 'kafka timestamp'),
        }),
      };
    } catch (err) {
      if (!(err instanceof RowProblem)) throw err;
      out[i] = { ok: false, reason: err.message, detail: { ...iv } };
    }
  }
  return out;
}

/** JSON text of a string or null (undefined as null: the caller checked the types). */
function jsonText(v: string | null | undefined): string {
  return typeof v === 'string' ? JSON.stringify(v) : 'null';
}

/** JSON text of a number as JSON.stringify writes it. */
function jsonNumber(v: number): string {
  return Number.isFinite(v) ? String(v) : 'null';
}

/** Matches no decoded value: the first interval always escapes its channel. */
const NONE = Symbol('none');

const isOptString = (v: unknown): boolean => v === null || v === undefined || typeof v === 'string';

/**
 * One row per interval; a bad interval is refused alone, its siblings are stored.
 *
 * The hot path (a backfill loads millions of intervals): each line is assembled from text, the
 * columns the batch shares escaped once per record, instead of JSON.stringify over an object per
 * interval, which was the sink's largest CPU cost. The line is byte for byte what JSON.stringify
 * wrote (same keys, same order); a batch whose fields do not have their schema types takes the
 * generic path.
 */
export function usageRows(b: UsageBatch, c: RecordCoordinates): MappedRow[] {
  if (
    typeof b.connection_id !== 'string' ||
    typeof b.meter_external_id !== 'string' ||
    typeof b.provider !== 'string' ||
    typeof b.unit !== 'string' ||
    !isOptString(b.canonical_unit) ||
    typeof b.time_zone !== 'string' ||
    typeof b.sync_run_id !== 'string' ||
    typeof b.source_topic !== 'string' ||
    typeof b.source_partition !== 'number' ||
    typeof b.source_offset !== 'number' ||
    !(
      b.connection_version === null ||
      b.connection_version === undefined ||
      typeof b.connection_version === 'number'
    ) ||
    typeof c.offset !== 'string' ||
    typeof c.partition !== 'number'
  ) {
    return usageRowsGeneric(b, c);
  }
  const offset = Number(c.offset);
  const n = b.intervals.length;
  const out = new Array<MappedRow>(n);
  const head = `{"connection_id":${JSON.stringify(b.connection_id)},"meter_external_id":${JSON.stringify(b.meter_external_id)},"channel":`;
  const provider = `,"provider":${JSON.stringify(b.provider)},"value":`;
  const unit = `,"unit":${JSON.stringify(b.unit)},"value_canonical":`;
  const canonicalUnit = `,"canonical_unit":${jsonText(b.canonical_unit)},"currency":`;
  const tail =
    `,"time_zone":${JSON.stringify(b.time_zone)},"sync_run_id":${JSON.stringify(b.sync_run_id)}` +
    `,"source_topic":${JSON.stringify(b.source_topic)},"source_partition":${jsonNumber(b.source_partition)}` +
    `,"source_offset":${jsonNumber(b.source_offset)}` +
    `,"connection_version":${b.connection_version === null || b.connection_version === undefined ? 'null' : jsonNumber(b.connection_version)}` +
    `,"ingest_version":"`;
  const kafka = `","kafka_partition":${jsonNumber(c.partition)},"kafka_offset":${JSON.stringify(c.offset)},"kafka_timestamp":`;
  // Checked per interval after its own columns, as before, so a row reports its first problem.
  let kafkaTs = 0;
  let kafkaTsProblem: RowProblem | null = null;
  try {
    kafkaTs = seconds(Number(c.timestamp), 'kafka timestamp');
  } catch (err) {
    if (!(err instanceof RowProblem)) throw err;
    kafkaTsProblem = err;
  }
  // Channel, currency and metadata repeat across a batch: escape each distinct value once.
  let lastChannel: unknown = NONE;
  let channelText = '';
  let lastCurrency: unknown = undefined;
  let currencyText = 'null';
  for (let i = 0; i < n; i++) {
    const iv = b.intervals[i]!;
    if (iv.channel !== lastChannel) {
      if (typeof iv.channel !== 'string' || !isOptString(iv.currency)) {
        out[i] = usageRowsGeneric({ ...b, intervals: [iv] }, c, i)[0]!;
        continue;
      }
      lastChannel = iv.channel;
      channelText = JSON.stringify(iv.channel);
    }
    if (iv.currency !== lastCurrency) {
      if (!isOptString(iv.currency)) {
        out[i] = usageRowsGeneric({ ...b, intervals: [iv] }, c, i)[0]!;
        continue;
      }
      lastCurrency = iv.currency;
      currencyText = jsonText(iv.currency);
    }
    try {
      const start = seconds(iv.start, 'start');
      const end = seconds(iv.end, 'end');
      const value = finite(iv.value, 'value');
      const canonical = optFinite(iv.value_canonical, 'value_canonical');
      if (kafkaTsProblem) throw kafkaTsProblem;
      const metadata = json(iv.metadata);
      out[i] = {
        ok: true,
        line:
          head +
          channelText +
          ',"interval_start":' +
          start +
          ',"interval_end":' +
          end +
          provider +
          value +
          unit +
          (canonical === null ? 'null' : String(canonical)) +
          canonicalUnit +
          currencyText +
          (iv.estimated ? ',"estimated":1' : ',"estimated":0') +
          (iv.from_readings ? ',"from_readings":1,"metadata":' : ',"from_readings":0,"metadata":') +
          (metadata === '{}' ? '"{}"' : JSON.stringify(metadata)) +
          tail +
          fastVersion(offset, i) +
          kafka +
          kafkaTs +
          '}',
      };
    } catch (err) {
      if (!(err instanceof RowProblem)) throw err;
      out[i] = { ok: false, reason: err.message, detail: { ...iv } };
    }
  }
  return out;
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
