/**
 * 004: the connection version the processors applied (topic `connections`, DESIGN.md §5) on
 * assets, meters, usage intervals and quarantine records, so a row tells which version of its
 * connection file it was processed with. NULL for rows processed from files or before versions
 * existed.
 *
 * 18.16 has neither `ADD COLUMN IF NOT EXISTS` nor `DROP VIEW`: each table gets the column in one
 * ALTER (a re-run after it succeeded is told apart by migrate.ts), and each latest view is
 * dropped with `DROP TABLE IF EXISTS` and created again with the column; meters_mapped, which
 * selects `m.*` from meters_latest, is created again after it.
 */
import { ident } from '../client.js';
import { latestViewSelect, type LatestViewSpec, type Migration } from './types.js';
import { QUARANTINE_VIEW_COLUMNS, QUARANTINE_VIEW_NULLABLE } from './003_quarantine_status.js';

interface ViewChange {
  table: string;
  /** The column the new one follows in the table. */
  after: string;
  view: LatestViewSpec;
}

const VERSION = 'connection_version';

/** The views' columns as 001 and 003 made them, with the version after `after`. */
const CHANGES: ViewChange[] = [
  {
    table: 'assets',
    after: 'sync_run_id',
    view: {
      keys: ['connection_id', 'external_id'],
      columns: [
        'provider',
        'name',
        'address',
        'metadata',
        'active',
        'derived',
        'first_seen',
        'last_seen',
        'sync_run_id',
        VERSION,
        'kafka_timestamp',
      ],
      nullable: ['address', VERSION],
      version: 'ingest_version',
    },
  },
  {
    table: 'meters',
    after: 'sync_run_id',
    view: {
      keys: ['connection_id', 'external_id'],
      columns: [
        'provider',
        'asset_external_id',
        'meter_type',
        'meter_subtype',
        'unit',
        'canonical_unit',
        'description',
        'time_zone',
        'reading_type',
        'rollover_value',
        'metadata',
        'active',
        'first_seen',
        'last_seen',
        'sync_run_id',
        VERSION,
        'kafka_timestamp',
      ],
      nullable: ['meter_subtype', 'canonical_unit', 'description', 'time_zone', 'rollover_value', VERSION],
      version: 'ingest_version',
    },
  },
  {
    table: 'usage_intervals',
    after: 'source_offset',
    view: {
      keys: ['connection_id', 'meter_external_id', 'channel', 'interval_start', 'interval_end'],
      columns: [
        'provider',
        'value',
        'unit',
        'value_canonical',
        'canonical_unit',
        'currency',
        'estimated',
        'from_readings',
        'metadata',
        'time_zone',
        'sync_run_id',
        'source_topic',
        'source_partition',
        'source_offset',
        VERSION,
        'kafka_timestamp',
      ],
      nullable: ['value_canonical', 'canonical_unit', 'currency', VERSION],
      version: 'ingest_version',
    },
  },
  {
    table: 'quarantine',
    after: 'redrive_id',
    view: {
      keys: ['id'],
      columns: [...QUARANTINE_VIEW_COLUMNS, VERSION],
      nullable: [...QUARANTINE_VIEW_NULLABLE, VERSION],
      version: 'ingest_version',
    },
  },
];

/** meters_mapped exactly as 001 created it, over the new meters_latest. */
function metersMapped(d: string): string {
  return (
    `CREATE VIEW IF NOT EXISTS ${d}.meters_mapped AS ` +
    `SELECT m.*, if(mp.mapped = 1, mp.mapped_internal_id, NULL) AS internal_meter_id, mp.mapped AS has_mapping ` +
    `FROM ${d}.meters_latest AS m ` +
    `ANY LEFT JOIN (SELECT connection_id, external_id, internal_meter_id AS mapped_internal_id, toUInt8(1) AS mapped ` +
    `FROM ${d}.meter_mappings_latest) AS mp USING (connection_id, external_id)`
  );
}

export const migration004: Migration = {
  version: 4,
  name: 'connection version on assets, meters, usage intervals and quarantine',
  statements(db) {
    const d = ident(db);
    return [
      ...CHANGES.map(
        (c) => `ALTER TABLE ${d}.${c.table} ADD COLUMN ${VERSION} Nullable(UInt64) AFTER ${c.after}`,
      ),
      `DROP TABLE IF EXISTS ${d}.meters_mapped`,
      ...CHANGES.flatMap((c) => [
        `DROP TABLE IF EXISTS ${d}.${c.table}_latest`,
        `CREATE VIEW IF NOT EXISTS ${d}.${c.table}_latest AS ` + latestViewSelect(`${d}.${c.table}`, c.view),
      ]),
      metersMapped(d),
    ];
  },
};
