/**
 * Table families: which topics feed which table, and how a record becomes rows. Each family runs
 * its own consumer group, so a slow or failing table (e.g. usage during a backfill) never holds
 * back entities or quarantine.
 */
import type { TopicId } from '../../schemas/topics.js';
import { JSON_EACH_ROW, type RowFormat } from './insert.js';
import type { FamilyName } from './options.js';
import { readRow } from './row-binary.js';
import {
  aggregateRow,
  assetRow,
  jsonRows,
  mappingRow,
  meterRow,
  quarantineRow,
  syncRunRow,
  USAGE_COLUMNS,
  usageRows,
  type EncodedRows,
  type MappedRow,
  type RecordCoordinates,
} from './rows.js';

export interface TopicBinding {
  topic: TopicId;
  table: string;
  format: RowFormat;
  /** Rows of one decoded record (usage: one per interval), in `format`. */
  encode(record: unknown, c: RecordCoordinates): EncodedRows;
  /** One stored row as text, for the quarantine record of a row ClickHouse refused. */
  describe(row: Buffer): string;
}

/** What a quarantine sample shows of a row: the first KiB is enough to recognise it. */
const SHOWN_BYTES = 1024;

/* The casts are the boundary: the record was decoded with this topic's registered schema. */
const json = <T>(
  topic: TopicId,
  table: string,
  f: (r: T, c: RecordCoordinates) => MappedRow,
): TopicBinding => ({
  topic,
  table,
  format: JSON_EACH_ROW,
  encode: (r, c) => jsonRows([f(r as T, c)]),
  describe: (row) => row.toString('utf8', 0, Math.min(row.length, SHOWN_BYTES)).replace(/\n$/, ''),
});

export const FAMILY_BINDINGS: Record<FamilyName, TopicBinding[]> = {
  entities: [json('assets', 'assets', assetRow), json('meters', 'meters', meterRow)],
  usage: [
    {
      topic: 'usage',
      table: 'usage_intervals',
      format: { name: 'RowBinary', columns: USAGE_COLUMNS.map(([name]) => name) },
      encode: (r, c) => usageRows(r as Parameters<typeof usageRows>[0], c),
      describe: (row) => JSON.stringify(readRow(USAGE_COLUMNS, row).row),
    },
  ],
  aggregates: [
    json('usageDaily', 'usage_daily', aggregateRow),
    json('usageMonthly', 'usage_monthly', aggregateRow),
  ],
  quarantine: [json('quarantine', 'quarantine', quarantineRow)],
  syncRuns: [json('syncRuns', 'sync_runs', syncRunRow)],
  mappings: [json('meterMappings', 'meter_mappings', mappingRow)],
};
