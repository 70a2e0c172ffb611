/**
 * 002: daily and monthly aggregates carry their value in the canonical unit of its dimension
 * (`value_canonical` in `canonical_unit`: kWh, m3 or kg), so energy sums across kWh, MWh and GJ
 * meters without converting by hand. Both are NULL for cost, for units without a known
 * conversion and for rows loaded before this migration.
 *
 * 18.16 has neither `ADD COLUMN IF NOT EXISTS` nor `DROP VIEW`: each table gets both columns in
 * one ALTER (all or none; a re-run after it succeeded is told apart by migrate.ts), and each
 * latest view is dropped with `DROP TABLE IF EXISTS` and created again with the new columns.
 */
import { ident } from '../client.js';
import { latestViewSelect, type Migration } from './types.js';

/** The view's columns besides the key, as 001 had them, with the canonical pair after `unit`. */
const COLUMNS = [
  'period_date',
  'period_start',
  'time_zone',
  'value',
  'unit',
  'value_canonical',
  'canonical_unit',
  'interval_count',
  'expected_count',
  'completeness',
  'estimated_count',
  'prorated',
  'updated_at',
];

export const migration002: Migration = {
  version: 2,
  name: 'canonical value and unit on daily and monthly aggregates',
  statements(db) {
    const d = ident(db);
    return (['usage_daily', 'usage_monthly'] as const).flatMap((table) => [
      `ALTER TABLE ${d}.${table} ` +
        `ADD COLUMN value_canonical Nullable(Float64) AFTER unit, ` +
        `ADD COLUMN canonical_unit Nullable(String) AFTER value_canonical`,
      `DROP TABLE IF EXISTS ${d}.${table}_latest`,
      `CREATE VIEW IF NOT EXISTS ${d}.${table}_latest AS ` +
        latestViewSelect(`${d}.${table}`, {
          keys: ['connection_id', 'meter_external_id', 'channel', 'period'],
          columns: COLUMNS,
          nullable: ['value_canonical', 'canonical_unit'],
          version: 'version',
          exposeVersionAs: 'version',
        }),
    ]);
  },
};
