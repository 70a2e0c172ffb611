/**
 * Table families: which topics feed which table, and how a record becomes rows. Each family runs
 * its own consumer group, so a slow or failing table (e.g. usage during a backfill) never holds
 * back entities or quarantine.
 */
import type { TopicId } from '../../schemas/topics.js';
import type { FamilyName } from './options.js';
import {
  aggregateRow,
  assetRow,
  mappingRow,
  meterRow,
  quarantineRow,
  syncRunRow,
  usageRows,
  type MappedRow,
  type RecordCoordinates,
} from './rows.js';

export interface TopicBinding {
  topic: TopicId;
  table: string;
  /** Rows of one decoded record (usage: one per interval). */
  map(record: unknown, c: RecordCoordinates): MappedRow[];
}

/* The casts are the boundary: the record was decoded with this topic's registered schema. */
const one =
  <T>(f: (r: T, c: RecordCoordinates) => MappedRow) =>
  (r: unknown, c: RecordCoordinates): MappedRow[] => [f(r as T, c)];

export const FAMILY_BINDINGS: Record<FamilyName, TopicBinding[]> = {
  entities: [
    { topic: 'assets', table: 'assets', map: one(assetRow) },
    { topic: 'meters', table: 'meters', map: one(meterRow) },
  ],
  usage: [
    {
      topic: 'usage',
      table: 'usage_intervals',
      map: (r, c) => usageRows(r as Parameters<typeof usageRows>[0], c),
    },
  ],
  aggregates: [
    { topic: 'usageDaily', table: 'usage_daily', map: one(aggregateRow) },
    { topic: 'usageMonthly', table: 'usage_monthly', map: one(aggregateRow) },
  ],
  quarantine: [{ topic: 'quarantine', table: 'quarantine', map: one(quarantineRow) }],
  syncRuns: [{ topic: 'syncRuns', table: 'sync_runs', map: one(syncRunRow) }],
  mappings: [{ topic: 'meterMappings', table: 'meter_mappings', map: one(mappingRow) }],
};
