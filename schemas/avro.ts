/**
 * Avro schemas of every meterflow topic, registered with BACKWARD compatibility under
 * `<topic>-value`. Change them only compatibly (add fields with defaults); the schema test
 * fails the build otherwise. Field order and names mirror ./records.ts.
 */

export type AvroSchema = Record<string, unknown>;

const NS = 'io.meterflow';
const ts = { type: 'long', logicalType: 'timestamp-millis' } as const;
const optString = { type: ['null', 'string'], default: null } as const;
const stringMap = { type: 'map', values: 'string' } as const;

function field(name: string, type: unknown, doc?: string, extra: Record<string, unknown> = {}) {
  return { name, type, ...(doc ? { doc } : {}), ...extra };
}
function opt(name: string, type: string, doc?: string) {
  return { name, type: ['null', type], default: null, ...(doc ? { doc } : {}) };
}

export const rawEnvelopeSchema: AvroSchema = {
  type: 'record',
  name: 'RawEnvelope',
  namespace: NS,
  doc: 'A provider payload exactly as received, with where it came from.',
  fields: [
    field('connection_id', 'string'),
    field('provider', 'string'),
    field('entity_kind', 'string', 'asset | meter | reference | snapshot_complete | usage'),
    field('format', 'string', 'payload format that selects the normaliser, e.g. arcadia.meter'),
    field('external_id', 'string'),
    field('sync_run_id', 'string'),
    field('request_url', 'string', 'request URL without credentials'),
    { name: 'request_page', ...optString },
    field('received_at', ts),
    field('content_type', 'string'),
    field('payload', 'string'),
    field('meta', stringMap, undefined, { default: {} }),
    opt(
      'connection_version',
      'long',
      'version of the connection (topic connections) the poller ran with; null before it was published',
    ),
  ],
};

export const assetSchema: AvroSchema = {
  type: 'record',
  name: 'Asset',
  namespace: NS,
  fields: [
    field('connection_id', 'string'),
    field('provider', 'string'),
    field('external_id', 'string'),
    field('name', 'string'),
    { name: 'address', ...optString },
    field('metadata', stringMap, undefined, { default: {} }),
    field('active', 'boolean'),
    field('derived', 'boolean', 'derived from meter location data', { default: false }),
    field('first_seen', ts),
    field('last_seen', ts),
    field('sync_run_id', 'string'),
    opt('connection_version', 'long', 'version of the connection (topic connections) the processors applied'),
  ],
};

export const meterSchema: AvroSchema = {
  type: 'record',
  name: 'Meter',
  namespace: NS,
  fields: [
    field('connection_id', 'string'),
    field('provider', 'string'),
    field('external_id', 'string'),
    field('asset_external_id', 'string'),
    field('meter_type', 'string', 'Energy | Water | Waste'),
    { name: 'meter_subtype', ...optString },
    field('unit', 'string'),
    { name: 'canonical_unit', ...optString },
    { name: 'description', ...optString },
    { name: 'time_zone', ...optString },
    field('reading_type', 'string', 'consumption | reading', { default: 'consumption' }),
    opt('rollover_value', 'double'),
    field('metadata', stringMap, undefined, { default: {} }),
    field('active', 'boolean'),
    field('first_seen', ts),
    field('last_seen', ts),
    field('sync_run_id', 'string'),
    opt('connection_version', 'long', 'version of the connection (topic connections) the processors applied'),
  ],
};

const usageIntervalSchema: AvroSchema = {
  type: 'record',
  name: 'UsageInterval',
  namespace: NS,
  fields: [
    field('start', ts),
    field('end', ts),
    field('channel', 'string', 'consumption | redelivery | production | cost'),
    field('value', 'double'),
    opt('value_canonical', 'double'),
    { name: 'currency', ...optString },
    field('estimated', 'boolean', undefined, { default: false }),
    field('from_readings', 'boolean', undefined, { default: false }),
    field('metadata', stringMap, undefined, { default: {} }),
  ],
};

export const usageBatchSchema: AvroSchema = {
  type: 'record',
  name: 'UsageBatch',
  namespace: NS,
  doc: 'Canonical usage of one meter from one provider chunk.',
  fields: [
    field('connection_id', 'string'),
    field('provider', 'string'),
    field('meter_external_id', 'string'),
    field('sync_run_id', 'string'),
    field('unit', 'string'),
    { name: 'canonical_unit', ...optString },
    field('time_zone', 'string'),
    field('source_topic', 'string'),
    field('source_partition', 'int'),
    field('source_offset', 'long'),
    field('intervals', { type: 'array', items: usageIntervalSchema }),
    opt('connection_version', 'long', 'version of the connection (topic connections) the processors applied'),
  ],
};

export const usageAggregateSchema: AvroSchema = {
  type: 'record',
  name: 'UsageAggregate',
  namespace: NS,
  fields: [
    field('connection_id', 'string'),
    field('meter_external_id', 'string'),
    field('granularity', 'string', 'day | month'),
    field('period', 'string', 'YYYY-MM-DD or YYYY-MM, local to time_zone'),
    field('period_start', ts),
    field('time_zone', 'string'),
    field('channel', 'string'),
    field('value', 'double'),
    field('unit', 'string'),
    field('interval_count', 'int'),
    field('expected_count', 'int'),
    field('completeness', 'double'),
    field('estimated_count', 'int'),
    field('prorated', 'boolean'),
    field('version', 'long'),
    field('updated_at', ts),
    opt('value_canonical', 'double', 'value in canonical_unit; null for cost and units that do not convert'),
    { name: 'canonical_unit', ...optString, doc: 'kWh, m3 or kg; null for cost and unknown units' },
  ],
};

export const quarantineSchema: AvroSchema = {
  type: 'record',
  name: 'QuarantineRecord',
  namespace: NS,
  fields: [
    field('id', 'string'),
    { name: 'connection_id', ...optString },
    field('stage', 'string'),
    field('reason_code', 'string'),
    field('message', 'string'),
    field('source_topic', 'string'),
    field('source_partition', 'int'),
    field('source_offset', 'long'),
    opt('record_index', 'int'),
    { name: 'source_key', ...optString },
    field('original', 'bytes'),
    { name: 'detail', ...optString },
    field('quarantined_at', ts),
    field('status', 'string', 'open | redriven: a redrive writes the record again as redriven', {
      default: 'open',
    }),
    { name: 'redriven_at', type: ['null', ts], default: null },
    { name: 'redrive_id', ...optString },
    opt(
      'connection_version',
      'long',
      'version of the connection the stage applied (or the envelope named) when it rejected the record',
    ),
  ],
};

export const syncStateSchema: AvroSchema = {
  type: 'record',
  name: 'SyncState',
  namespace: NS,
  fields: [
    field('connection_id', 'string'),
    field('scope', 'string'),
    { name: 'watermark', ...optString },
    { name: 'checkpoint', ...optString },
    field('sync_run_id', 'string'),
    field('updated_at', ts),
  ],
};

export const syncRunSchema: AvroSchema = {
  type: 'record',
  name: 'SyncRun',
  namespace: NS,
  fields: [
    field('connection_id', 'string'),
    field('sync_run_id', 'string'),
    field('provider', 'string'),
    field('mode', 'string'),
    field('status', 'string', 'running | succeeded | failed | partial'),
    field('started_at', ts),
    opt('finished_at', 'long'),
    { name: 'range_from', ...optString },
    { name: 'range_to', ...optString },
    field('entities', 'long'),
    field('usage_chunks', 'long'),
    field('intervals', 'long'),
    field('requests', 'long'),
    field('retries', 'long'),
    field('errors', 'long'),
    field('error_messages', { type: 'array', items: 'string' }, undefined, { default: [] }),
    field('snapshot_complete', 'boolean', undefined, { default: false }),
  ],
};

export const meterMappingSchema: AvroSchema = {
  type: 'record',
  name: 'MeterMapping',
  namespace: NS,
  fields: [
    field('connection_id', 'string'),
    field('external_id', 'string'),
    { name: 'internal_meter_id', ...optString },
    field('updated_at', ts),
    field('source', 'string'),
  ],
};

export const connectionVersionSchema: AvroSchema = {
  type: 'record',
  name: 'ConnectionVersion',
  namespace: NS,
  doc: 'One version of a connection file (compacted, key connection_id; a tombstone removes it). Secrets only as variable names.',
  fields: [
    field('connection_id', 'string'),
    field('version', 'long', '1 for the first publication, previous + 1 for every change of content'),
    field('provider', 'string'),
    field('content', 'string', 'the connection as canonical JSON: sorted keys, defaults filled in'),
    field('content_sha256', 'string', 'hex SHA-256 of content: an unchanged file is not published again'),
    field('published_at', ts),
    field('source', 'string', 'what published it: a file path, or the component'),
    field('host', 'string', 'host name of the publisher'),
  ],
};
