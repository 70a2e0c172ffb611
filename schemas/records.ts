/**
 * TypeScript shapes of every record on meterflow's topics. They mirror the Avro schemas in
 * ./avro.ts field for field (snake_case, as consumers in other languages see them).
 * Instants are epoch milliseconds (Avro long, logicalType timestamp-millis).
 */

/** Raw provider data as received, wrapped in an envelope. Topics raw.entities and raw.usage. */
export interface RawEnvelope {
  connection_id: string;
  provider: string;
  /** asset | meter | reference | snapshot_complete | usage */
  entity_kind: RawEntityKind;
  /** Provider payload format, selects the normaliser, e.g. "arcadia.meter", "enerkey.hourly". */
  format: string;
  /** Entity external id, or the meter external id for usage. */
  external_id: string;
  sync_run_id: string;
  /** Request URL without credentials. */
  request_url: string;
  request_page: string | null;
  received_at: number;
  content_type: string;
  /** Payload text exactly as received (one entity or one usage chunk). */
  payload: string;
  /** Extra context from the poller: requested range, chunk index, snapshot kinds... */
  meta: Record<string, string>;
  /**
   * Version of the connection (topic `connections`) the poller ran with; absent or null in
   * envelopes written before versions were published. Processors apply this version or a later one.
   */
  connection_version?: number | null;
}

export type RawEntityKind = 'asset' | 'meter' | 'reference' | 'snapshot_complete' | 'usage';

export interface Asset {
  connection_id: string;
  provider: string;
  external_id: string;
  name: string;
  address: string | null;
  metadata: Record<string, string>;
  active: boolean;
  /** True when the provider has no asset endpoint and the asset comes from meter location data. */
  derived: boolean;
  first_seen: number;
  last_seen: number;
  sync_run_id: string;
  /** Version of the connection (topic `connections`) the processors applied; null: files or none. */
  connection_version?: number | null;
}

export type MeterCategory = 'Energy' | 'Water' | 'Waste';

export interface Meter {
  connection_id: string;
  provider: string;
  external_id: string;
  asset_external_id: string;
  meter_type: MeterCategory;
  meter_subtype: string | null;
  /** Unit as the provider reports it, normalised to the registry's symbol when known. */
  unit: string;
  /** kWh, m3 or kg when the unit converts; null for a unit registered as unknown. */
  canonical_unit: string | null;
  description: string | null;
  /** IANA time zone used for local days and months. */
  time_zone: string | null;
  /** consumption: values per period; reading: cumulative register values. */
  reading_type: 'consumption' | 'reading';
  /** Register value at which a cumulative meter wraps to zero; null when unknown. */
  rollover_value: number | null;
  metadata: Record<string, string>;
  active: boolean;
  first_seen: number;
  last_seen: number;
  sync_run_id: string;
  /** Version of the connection (topic `connections`) the processors applied; null: files or none. */
  connection_version?: number | null;
}

export type UsageChannel = 'consumption' | 'redelivery' | 'production' | 'cost';

export interface UsageInterval {
  /** Inclusive start, epoch ms. */
  start: number;
  /** Exclusive end, epoch ms. */
  end: number;
  channel: UsageChannel;
  /** In the batch unit (for cost: in `currency`). */
  value: number;
  /** In the canonical unit (kWh, m3, kg); null for cost and for units that do not convert. */
  value_canonical: number | null;
  currency: string | null;
  estimated: boolean;
  /** Consumption computed by differencing two register readings. */
  from_readings: boolean;
  metadata: Record<string, string>;
}

/** Canonical usage: one message per meter per provider chunk (topic usage, key connection/meter). */
export interface UsageBatch {
  connection_id: string;
  provider: string;
  meter_external_id: string;
  sync_run_id: string;
  unit: string;
  canonical_unit: string | null;
  time_zone: string;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  intervals: UsageInterval[];
  /** Version of the connection (topic `connections`) the processors applied; null: files or none. */
  connection_version?: number | null;
}

export type AggregateGranularity = 'day' | 'month';

/** usage.daily and usage.monthly: compacted, key connection/meter; one record per meter, channel and period. */
export interface UsageAggregate {
  connection_id: string;
  meter_external_id: string;
  granularity: AggregateGranularity;
  /** YYYY-MM-DD (day) or YYYY-MM (month), local to time_zone. */
  period: string;
  /** Local period start as an instant (epoch ms). */
  period_start: number;
  time_zone: string;
  channel: UsageChannel;
  value: number;
  unit: string;
  interval_count: number;
  expected_count: number;
  completeness: number;
  estimated_count: number;
  /** Some value came from a period longer than the slot, allocated pro rata. */
  prorated: boolean;
  version: number;
  updated_at: number;
  /**
   * `value` in the canonical unit of its dimension (kWh, m3, kg). Null for cost (it stays in its
   * currency) and for units without a known conversion; gas in m3 stays volume (no calorific value).
   */
  value_canonical: number | null;
  canonical_unit: string | null;
}

export interface QuarantineRecord {
  /** Deterministic: the same bad input always gets the same id, so replays converge. */
  id: string;
  connection_id: string | null;
  stage: string;
  reason_code: string;
  message: string;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  /** Index of the offending record inside a chunk; null when the whole message is rejected. */
  record_index: number | null;
  source_key: string | null;
  /** The original Kafka message value, byte for byte. */
  original: Buffer;
  /** The offending record as JSON text, when one record of a chunk is rejected. */
  detail: string | null;
  quarantined_at: number;
  /**
   * `redriven` on the record a redrive writes (same id, later offset) after re-sending the
   * original; records written before the field existed decode as `open` with a reader schema.
   */
  status?: QuarantineStatus;
  redriven_at?: number | null;
  /** The redrive that re-sent it: one id per `meterflow quarantine redrive` run. */
  redrive_id?: string | null;
  /** Version of the connection applied (or named by the envelope) when the record was rejected. */
  connection_version?: number | null;
}

export type QuarantineStatus = 'open' | 'redriven';

/** Poller checkpoints and watermarks (compacted, key connection/scope). */
export interface SyncState {
  connection_id: string;
  scope: string;
  /** ISO instant up to which data was emitted (exclusive), or null. */
  watermark: string | null;
  /** Opaque JSON of a resumable position inside a run. */
  checkpoint: string | null;
  sync_run_id: string;
  updated_at: number;
}

export type SyncRunStatus = 'running' | 'succeeded' | 'failed' | 'partial';

export interface SyncRun {
  connection_id: string;
  sync_run_id: string;
  provider: string;
  mode: string;
  status: SyncRunStatus;
  started_at: number;
  finished_at: number | null;
  range_from: string | null;
  range_to: string | null;
  entities: number;
  usage_chunks: number;
  intervals: number;
  requests: number;
  retries: number;
  errors: number;
  error_messages: string[];
  snapshot_complete: boolean;
}

/** Provider meter to internal meter mapping (compacted, key connection/external_id). */
export interface MeterMapping {
  connection_id: string;
  external_id: string;
  /** Null removes the mapping. */
  internal_meter_id: string | null;
  updated_at: number;
  source: string;
}

/**
 * One version of a connection (topic `connections`, compacted, key connection_id): what the
 * processors apply to that connection's records, so no process needs the file itself.
 */
export interface ConnectionVersion {
  connection_id: string;
  /** 1, then previous + 1 for every change of `content`. */
  version: number;
  provider: string;
  /** The connection as canonical JSON (sorted keys, defaults filled in); secrets only as variable names. */
  content: string;
  /** Hex SHA-256 of `content`. */
  content_sha256: string;
  published_at: number;
  /** A file path, or the component that published it. */
  source: string;
  host: string;
}
