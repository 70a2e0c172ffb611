/**
 * 001: the tables and latest-state views of DESIGN.md §6.
 *
 * Every table is a ReplacingMergeTree whose ORDER BY is exactly the identity of a fact, so that a
 * row inserted twice (a crash between insert and offset commit, a replay) collapses to one row in
 * merges, and the `*_latest` views collapse it at query time before merges have run. Partitions
 * are derived from key columns only: ReplacingMergeTree never merges across partitions, so a
 * partition key outside the identity could keep two versions of one fact apart forever.
 *
 * Portable to ClickHouse 18.16 and current releases: DateTime('UTC') (no DateTime64), Enum8 for
 * the fixed taxonomies (rejects unknown values instead of storing them; no LowCardinality),
 * metadata maps as JSON text (no Map type in 18.16), new-style engine syntax.
 *
 * Version columns (`ingest_version`, UInt64) order the rows of one key: the record's Kafka offset
 * shifted left 12 bits plus the row's index inside its record (see ../rows.ts). A key always
 * lives on one partition, so a replay writes the same version again and a later record (a
 * correction, a deactivation) a higher one. Re-creating a topic restarts its offsets: load it
 * into a fresh database. Aggregates use their own `version`.
 */
import { ident } from '../client.js';
import { latestViewSelect, type Migration } from './types.js';

const CHANNEL = "Enum8('consumption' = 1, 'redelivery' = 2, 'production' = 3, 'cost' = 4)";
const METER_TYPE = "Enum8('Energy' = 1, 'Water' = 2, 'Waste' = 3)";
const READING_TYPE = "Enum8('consumption' = 1, 'reading' = 2)";
const TS = "DateTime('UTC')";

/** Where each row came from, on every table: for audits and for the version. */
const KAFKA_COLUMNS = [
  ['ingest_version', 'UInt64'],
  ['kafka_partition', 'UInt32'],
  ['kafka_offset', 'UInt64'],
  ['kafka_timestamp', TS],
] as const;

interface TableSpec {
  name: string;
  columns: (readonly [string, string])[];
  keys: string[];
  partitionBy?: string;
  version: string;
  /** Columns the latest view leaves out (besides the keys). */
  hidden: string[];
  exposeVersionAs?: string;
}

const TABLES: TableSpec[] = [
  {
    name: 'assets',
    columns: [
      ['connection_id', 'String'],
      ['external_id', 'String'],
      ['provider', 'String'],
      ['name', 'String'],
      ['address', 'Nullable(String)'],
      ['metadata', 'String'],
      ['active', 'UInt8'],
      ['derived', 'UInt8'],
      ['first_seen', TS],
      ['last_seen', TS],
      ['sync_run_id', 'String'],
      ...KAFKA_COLUMNS,
    ],
    keys: ['connection_id', 'external_id'],
    version: 'ingest_version',
    hidden: ['ingest_version', 'kafka_partition', 'kafka_offset'],
  },
  {
    name: 'meters',
    columns: [
      ['connection_id', 'String'],
      ['external_id', 'String'],
      ['provider', 'String'],
      ['asset_external_id', 'String'],
      ['meter_type', METER_TYPE],
      ['meter_subtype', 'Nullable(String)'],
      ['unit', 'String'],
      ['canonical_unit', 'Nullable(String)'],
      ['description', 'Nullable(String)'],
      ['time_zone', 'Nullable(String)'],
      ['reading_type', READING_TYPE],
      ['rollover_value', 'Nullable(Float64)'],
      ['metadata', 'String'],
      ['active', 'UInt8'],
      ['first_seen', TS],
      ['last_seen', TS],
      ['sync_run_id', 'String'],
      ...KAFKA_COLUMNS,
    ],
    keys: ['connection_id', 'external_id'],
    version: 'ingest_version',
    hidden: ['ingest_version', 'kafka_partition', 'kafka_offset'],
  },
  {
    name: 'meter_mappings',
    columns: [
      ['connection_id', 'String'],
      ['external_id', 'String'],
      ['internal_meter_id', 'Nullable(String)'],
      ['updated_at', TS],
      ['source', 'String'],
      ...KAFKA_COLUMNS,
    ],
    keys: ['connection_id', 'external_id'],
    version: 'ingest_version',
    hidden: ['ingest_version', 'kafka_partition', 'kafka_offset'],
  },
  {
    name: 'usage_intervals',
    columns: [
      ['connection_id', 'String'],
      ['meter_external_id', 'String'],
      ['channel', CHANNEL],
      ['interval_start', TS],
      ['interval_end', TS],
      ['provider', 'String'],
      ['value', 'Float64'],
      ['unit', 'String'],
      ['value_canonical', 'Nullable(Float64)'],
      ['canonical_unit', 'Nullable(String)'],
      ['currency', 'Nullable(String)'],
      ['estimated', 'UInt8'],
      ['from_readings', 'UInt8'],
      ['metadata', 'String'],
      ['time_zone', 'String'],
      ['sync_run_id', 'String'],
      ['source_topic', 'String'],
      ['source_partition', 'UInt32'],
      ['source_offset', 'UInt64'],
      ...KAFKA_COLUMNS,
    ],
    // A slot is (meter, channel, interval): the end is part of it, so an hourly value and a
    // quarter-hour value that start together are different facts, as in the aggregator.
    keys: ['connection_id', 'meter_external_id', 'channel', 'interval_start', 'interval_end'],
    partitionBy: 'toYYYYMM(interval_start)',
    version: 'ingest_version',
    hidden: ['ingest_version', 'kafka_partition', 'kafka_offset'],
  },
  ...(['usage_daily', 'usage_monthly'] as const).map((name): TableSpec => ({
    name,
    columns: [
      ['connection_id', 'String'],
      ['meter_external_id', 'String'],
      ['channel', CHANNEL],
      ['period', 'String'],
      ['period_date', 'Date'],
      ['period_start', TS],
      ['time_zone', 'String'],
      ['value', 'Float64'],
      ['unit', 'String'],
      ['interval_count', 'UInt32'],
      ['expected_count', 'UInt32'],
      ['completeness', 'Float64'],
      ['estimated_count', 'UInt32'],
      ['prorated', 'UInt8'],
      ['version', 'UInt64'],
      ['updated_at', TS],
      ...KAFKA_COLUMNS,
    ],
    keys: ['connection_id', 'meter_external_id', 'channel', 'period'],
    // period_date is the local date of `period` (first day of the month for monthly rows):
    // a function of the key, so versions of one period always share a partition.
    partitionBy: name === 'usage_daily' ? 'toYYYYMM(period_date)' : 'toYear(period_date)',
    version: 'version',
    hidden: ['version', 'ingest_version', 'kafka_partition', 'kafka_offset', 'kafka_timestamp'],
    exposeVersionAs: 'version',
  })),
  {
    name: 'quarantine',
    columns: [
      ['id', 'String'],
      ['connection_id', 'Nullable(String)'],
      ['stage', 'String'],
      ['reason_code', 'String'],
      ['message', 'String'],
      ['source_topic', 'String'],
      ['source_partition', 'UInt32'],
      ['source_offset', 'UInt64'],
      ['record_index', 'Nullable(Int32)'],
      ['source_key', 'Nullable(String)'],
      // The original bytes as hex (`unhex(original_hex)`): JSON rows carry text, not bytes.
      ['original_hex', 'String'],
      ['original_size', 'UInt32'],
      ['detail', 'Nullable(String)'],
      ['quarantined_at', TS],
      ...KAFKA_COLUMNS,
    ],
    // The id is deterministic (same bad input, same id). No time partition: quarantined_at
    // differs between two quarantinings of the same input.
    keys: ['id'],
    version: 'ingest_version',
    hidden: ['ingest_version', 'kafka_partition', 'kafka_offset', 'kafka_timestamp'],
  },
  {
    name: 'sync_runs',
    columns: [
      ['connection_id', 'String'],
      ['sync_run_id', 'String'],
      ['provider', 'String'],
      ['mode', 'String'],
      ['status', 'String'],
      ['started_at', TS],
      ['finished_at', `Nullable(${TS})`],
      ['range_from', 'Nullable(String)'],
      ['range_to', 'Nullable(String)'],
      ['entities', 'UInt64'],
      ['usage_chunks', 'UInt64'],
      ['intervals', 'UInt64'],
      ['requests', 'UInt64'],
      ['retries', 'UInt64'],
      ['errors', 'UInt64'],
      ['error_messages', 'Array(String)'],
      ['snapshot_complete', 'UInt8'],
      ...KAFKA_COLUMNS,
    ],
    keys: ['connection_id', 'sync_run_id'],
    version: 'ingest_version',
    hidden: ['ingest_version', 'kafka_partition', 'kafka_offset'],
  },
];

function createTable(db: string, t: TableSpec): string {
  const cols = t.columns.map(([n, type]) => `  ${n} ${type}`).join(',\n');
  return (
    `CREATE TABLE IF NOT EXISTS ${ident(db)}.${t.name} (\n${cols}\n)\n` +
    `ENGINE = ReplacingMergeTree(${t.version})\n` +
    (t.partitionBy ? `PARTITION BY ${t.partitionBy}\n` : '') +
    `ORDER BY (${t.keys.join(', ')})`
  );
}

function createLatestView(db: string, t: TableSpec): string {
  const columns = t.columns.map(([n]) => n).filter((n) => !t.keys.includes(n) && !t.hidden.includes(n));
  const select = latestViewSelect(`${ident(db)}.${t.name}`, {
    keys: t.keys,
    columns,
    nullable: t.columns.filter(([, type]) => type.startsWith('Nullable(')).map(([n]) => n),
    version: t.version,
    ...(t.exposeVersionAs ? { exposeVersionAs: t.exposeVersionAs } : {}),
  });
  return `CREATE VIEW IF NOT EXISTS ${ident(db)}.${t.name}_latest AS ${select}`;
}

/**
 * meters_latest with the internal meter id of meter_mappings_latest (NULL when unmapped or
 * when the mapping was removed). `mapped` tells a missing mapping from a removed one without
 * depending on join_use_nulls, whose default differs between releases.
 */
function createMetersMapped(db: string): string {
  const d = ident(db);
  return (
    `CREATE VIEW IF NOT EXISTS ${d}.meters_mapped AS ` +
    `SELECT m.*, if(mp.mapped = 1, mp.mapped_internal_id, NULL) AS internal_meter_id, mp.mapped AS has_mapping ` +
    `FROM ${d}.meters_latest AS m ` +
    `ANY LEFT JOIN (SELECT connection_id, external_id, internal_meter_id AS mapped_internal_id, toUInt8(1) AS mapped ` +
    `FROM ${d}.meter_mappings_latest) AS mp USING (connection_id, external_id)`
  );
}

export const migration001: Migration = {
  version: 1,
  name: 'initial tables and latest views',
  statements(db) {
    return [
      ...TABLES.map((t) => createTable(db, t)),
      ...TABLES.map((t) => createLatestView(db, t)),
      createMetersMapped(db),
    ];
  },
};
