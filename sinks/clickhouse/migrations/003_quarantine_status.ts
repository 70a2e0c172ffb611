/**
 * 003: the lifecycle of a quarantine record. A redrive writes the record again with the same id
 * and `status = 'redriven'`, `redriven_at` and `redrive_id`; it lands on the partition of the
 * original at a later offset, so its ingest_version is higher and ReplacingMergeTree and the view
 * keep it as the latest row of the id. A record quarantined again after a redrive comes from a new
 * source offset, so it has a new id and stays open.
 *
 * 18.16 has neither `ADD COLUMN IF NOT EXISTS` nor `DROP VIEW`: the three columns are added in one
 * ALTER (all or none; a re-run after it succeeded is told apart by migrate.ts), and the view is
 * dropped with `DROP TABLE IF EXISTS` and created again with the new columns.
 */
import { ident } from '../client.js';
import { latestViewSelect, type Migration } from './types.js';

const TS = "DateTime('UTC')";

const QUARANTINE_STATUS = "Enum8('open' = 1, 'redriven' = 2)";

/** The view's columns besides the id, as 001 had them, then the lifecycle (004 builds on them). */
export const QUARANTINE_VIEW_COLUMNS = [
  'connection_id',
  'stage',
  'reason_code',
  'message',
  'source_topic',
  'source_partition',
  'source_offset',
  'record_index',
  'source_key',
  'original_hex',
  'original_size',
  'detail',
  'quarantined_at',
  'status',
  'redriven_at',
  'redrive_id',
];
export const QUARANTINE_VIEW_NULLABLE = [
  'connection_id',
  'record_index',
  'source_key',
  'detail',
  'redriven_at',
  'redrive_id',
];

export const migration003: Migration = {
  version: 3,
  name: 'quarantine status: open or redriven',
  statements(db) {
    const d = ident(db);
    return [
      `ALTER TABLE ${d}.quarantine ` +
        `ADD COLUMN status ${QUARANTINE_STATUS} DEFAULT 'open' AFTER quarantined_at, ` +
        `ADD COLUMN redriven_at Nullable(${TS}) AFTER status, ` +
        `ADD COLUMN redrive_id Nullable(String) AFTER redriven_at`,
      `DROP TABLE IF EXISTS ${d}.quarantine_latest`,
      `CREATE VIEW IF NOT EXISTS ${d}.quarantine_latest AS ` +
        latestViewSelect(`${d}.quarantine`, {
          keys: ['id'],
          columns: QUARANTINE_VIEW_COLUMNS,
          nullable: QUARANTINE_VIEW_NULLABLE,
          version: 'ingest_version',
        }),
    ];
  },
};
