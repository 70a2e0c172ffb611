/**
 * The topic catalogue (DESIGN.md §3): logical name, value schema and retention. The physical
 * name is `<prefix><logical>`; the prefix comes from configuration (default "meterflow.").
 */
import {
  assetSchema,
  connectionVersionSchema,
  meterMappingSchema,
  meterSchema,
  quarantineSchema,
  rawEnvelopeSchema,
  syncRunSchema,
  syncStateSchema,
  usageAggregateSchema,
  usageBatchSchema,
  type AvroSchema,
} from './avro.js';
import type {
  Asset,
  ConnectionVersion,
  Meter,
  MeterMapping,
  QuarantineRecord,
  RawEnvelope,
  SyncRun,
  SyncState,
  UsageAggregate,
  UsageBatch,
} from './records.js';

export interface TopicSpec {
  logical: string;
  schema: AvroSchema;
  /** compact: latest value per key (entities, aggregates, state); delete: long retention log. */
  cleanup: 'compact' | 'delete';
  /** -1 = keep forever (replay source); else ms. */
  retentionMs: number;
  /** max.message.bytes of the topic; absent: the broker's (1 MiB by default). */
  maxMessageBytes?: number;
}

/** Retention of the quarantine topic: 30 days. */
export const QUARANTINE_RETENTION_MS = 30 * 24 * 60 * 60 * 1_000;

/**
 * Largest record batch the quarantine topic accepts (max.message.bytes): 8 MiB. A record carries
 * its source message's original bytes, whole, plus a message, detail and headers of about 12 KB
 * at most, so a source at the broker's default limit (1 MiB) makes a record just above that
 * default; 8 MiB leaves room for sources of topics whose limit was raised, and writers send a
 * large record in a request of its own.
 */
export const QUARANTINE_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

export const TOPICS = {
  rawEntities: { logical: 'raw.entities', schema: rawEnvelopeSchema, cleanup: 'delete', retentionMs: -1 },
  rawUsage: { logical: 'raw.usage', schema: rawEnvelopeSchema, cleanup: 'delete', retentionMs: -1 },
  assets: { logical: 'assets', schema: assetSchema, cleanup: 'compact', retentionMs: -1 },
  meters: { logical: 'meters', schema: meterSchema, cleanup: 'compact', retentionMs: -1 },
  usage: { logical: 'usage', schema: usageBatchSchema, cleanup: 'delete', retentionMs: -1 },
  usageDaily: { logical: 'usage.daily', schema: usageAggregateSchema, cleanup: 'compact', retentionMs: -1 },
  usageMonthly: {
    logical: 'usage.monthly',
    schema: usageAggregateSchema,
    cleanup: 'compact',
    retentionMs: -1,
  },
  /**
   * Rejected input is evidence for an operator, not a replay source (the raw topics are): kept
   * 30 days, enough to notice, fix and redrive, and bounded whatever a broken provider sends.
   * Applies when the topic is created; an existing topic keeps its retention.ms. Its
   * max.message.bytes is raised on an existing topic too.
   */
  quarantine: {
    logical: 'quarantine',
    schema: quarantineSchema,
    cleanup: 'delete',
    retentionMs: QUARANTINE_RETENTION_MS,
    maxMessageBytes: QUARANTINE_MAX_MESSAGE_BYTES,
  },
  syncState: { logical: 'sync-state', schema: syncStateSchema, cleanup: 'compact', retentionMs: -1 },
  syncRuns: { logical: 'sync-runs', schema: syncRunSchema, cleanup: 'compact', retentionMs: -1 },
  meterMappings: {
    logical: 'meter-mappings',
    schema: meterMappingSchema,
    cleanup: 'compact',
    retentionMs: -1,
  },
  /**
   * Connection configuration as a stream (DESIGN.md §3): the latest version of every connection,
   * key connection_id, read as a table by the processors; a tombstone removes a connection.
   */
  connections: {
    logical: 'connections',
    schema: connectionVersionSchema,
    cleanup: 'compact',
    retentionMs: -1,
  },
} as const satisfies Record<string, TopicSpec>;

export type TopicId = keyof typeof TOPICS;

/** The record type carried by each topic. */
export interface TopicRecords {
  rawEntities: RawEnvelope;
  rawUsage: RawEnvelope;
  assets: Asset;
  meters: Meter;
  usage: UsageBatch;
  usageDaily: UsageAggregate;
  usageMonthly: UsageAggregate;
  quarantine: QuarantineRecord;
  syncState: SyncState;
  syncRuns: SyncRun;
  meterMappings: MeterMapping;
  connections: ConnectionVersion;
}

export function topicName(prefix: string, id: TopicId): string {
  return prefix + TOPICS[id].logical;
}

/** Kafka key of an entity or of a meter's usage: `connection_id/external_id`. */
export function entityKey(connectionId: string, externalId: string): string {
  return `${connectionId}/${externalId}`;
}

/** The connection of a `connection_id/...` key (entities, usage, aggregates, quarantine); else null. */
export function connectionOfKey(key: string | Buffer | null | undefined): string | null {
  if (!key) return null;
  const k = typeof key === 'string' ? key : key.toString('utf8');
  const slash = k.indexOf('/');
  return slash > 0 ? k.slice(0, slash) : null;
}

/** Key of a daily or monthly aggregate: `connection_id/meter|channel|period` (compacted topics). */
export function aggregateKey(a: {
  connection_id: string;
  meter_external_id: string;
  channel: string;
  period: string;
}): string {
  return `${a.connection_id}/${a.meter_external_id}|${a.channel}|${a.period}`;
}

/** Kafka headers on quarantine records, in the spirit of Kafka Connect's dead-letter headers. */
export const QUARANTINE_HEADERS = {
  reason: 'mf.error.reason',
  stage: 'mf.error.stage',
  message: 'mf.error.message',
  topic: 'mf.error.source.topic',
  partition: 'mf.error.source.partition',
  offset: 'mf.error.source.offset',
  connection: 'mf.error.connection',
} as const;
