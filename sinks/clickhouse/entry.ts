/**
 * A consumed Kafka record as the sink holds it: its rows in its table's insert format, the rows refused
 * before any insert, and what a quarantine record or a commit needs of it. RecordDecoder decodes
 * (through the registry) and maps one record into an Entry.
 */
import type avro from 'avsc';
import type { KafkaMessage } from 'kafkajs';
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { isRegistryUnavailable, type AvroRegistry } from '../../lib/registry.js';
import { RejectedRows } from '../../schemas/quarantine.js';
import { connectionOfKey } from '../../schemas/topics.js';
import { SINK_EVENTS } from './events.js';
import type { TopicBinding } from './families.js';
import type { SinkReason } from './quarantine.js';

/** A consumed record with its rows and the rows that were refused before any insert. */
export interface Entry {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  table: string;
  binding: TopicBinding;
  /** Its storable rows in the binding's format, back to back; null when none. */
  body: Buffer[] | null;
  /** Where each storable row ends in the body's concatenation. */
  ends: Uint32Array | null;
  rowCount: number;
  /** Rows the record maps to (a usage batch: its intervals), stored or not. */
  rows: number;
  /** Bytes it holds in memory: its value and its rows' text. */
  bytes: number;
  /** The index in its record of each row, when some rows were refused (else row i is index i). */
  indexes: number[] | null;
  /** Rows refused before any insert (or the whole record), by reason. */
  problems: Map<SinkReason, RejectedRows> | null;
  connectionId: string | null;
}

export function addProblem(
  problems: Map<SinkReason, RejectedRows>,
  reason: SinkReason,
  index: number | null,
  message: string,
  record: string | null | (() => string | null),
): void {
  let rows = problems.get(reason);
  if (!rows) problems.set(reason, (rows = new RejectedRows(reason)));
  rows.add(index, message, record);
}

export class RecordDecoder {
  constructor(
    private readonly registry: AvroRegistry,
    /** Per topic, its current schema: records of older writers are resolved to it (defaults filled). */
    private readonly readers: Map<string, avro.Type>,
    private readonly log: Logger,
  ) {}

  /** Decodes and maps one record; 'later' when the registry is unreachable. */
  async toEntry(
    topic: string,
    partition: number,
    m: KafkaMessage,
    binding: TopicBinding,
  ): Promise<Entry | 'later'> {
    const entry: Entry = {
      topic,
      partition,
      offset: m.offset,
      key: m.key,
      value: m.value,
      table: binding.table,
      binding,
      body: null,
      ends: null,
      rowCount: 0,
      rows: 0,
      bytes: m.value?.length ?? 0,
      indexes: null,
      problems: null,
      connectionId: connectionOfKey(m.key),
    };
    // A tombstone on a compacted topic carries nothing to load; its offset still gets committed.
    if (m.value === null) return entry;
    let record: unknown;
    try {
      record = await this.registry.decode(m.value, this.readers.get(topic));
    } catch (err) {
      if (isRegistryUnavailable(err)) {
        this.log.warn(
          { event: SINK_EVENTS.decodeDeferred, topic, partition, offset: m.offset, err: errorMessage(err) },
          'registry unreachable; will retry',
        );
        return 'later';
      }
      addProblem(
        (entry.problems = new Map<SinkReason, RejectedRows>()),
        'NORM_DECODE_FAILED',
        null,
        errorMessage(err),
        null,
      );
      return entry;
    }
    const cid = (record as { connection_id?: unknown }).connection_id;
    if (typeof cid === 'string') entry.connectionId = cid;
    let encoded;
    try {
      encoded = binding.encode(record, { partition, offset: m.offset, timestamp: m.timestamp });
    } catch (err) {
      // A record that decodes but does not have the shape of the topic's schema.
      addProblem(
        (entry.problems = new Map<SinkReason, RejectedRows>()),
        'NORM_DECODE_FAILED',
        null,
        `record does not map to ${binding.table}: ${errorMessage(err)}`,
        null,
      );
      return entry;
    }
    const perInterval = binding.table === 'usage_intervals';
    entry.rows = encoded.rows;
    entry.indexes = encoded.indexes;
    for (const r of encoded.refused) {
      addProblem(
        (entry.problems ??= new Map<SinkReason, RejectedRows>()),
        'SINK_INSERT_REJECTED',
        perInterval ? r.index : null,
        `not stored: ${r.reason}`,
        () => JSON.stringify(r.detail),
      );
    }
    entry.rowCount = encoded.ends.length;
    if (entry.rowCount > 0) {
      entry.body = encoded.chunks;
      entry.ends = encoded.ends;
      for (const c of encoded.chunks) entry.bytes += c.length;
    }
    return entry;
  }
}
