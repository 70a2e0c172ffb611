/**
 * Quarantine records the sink writes: a record that cannot be decoded (NORM_DECODE_FAILED) or a
 * row that ClickHouse rejects for its content (SINK_INSERT_REJECTED). The id is deterministic
 * in the source coordinates, so quarantining the same input again (a replay) converges.
 */
import { createHash } from 'node:crypto';
import type { IHeaders, Message } from 'kafkajs';
import type { ErrorCode } from '../../lib/errors.js';
import type { QuarantineRecord } from '../../schemas/records.js';
import { QUARANTINE_HEADERS } from '../../schemas/topics.js';

export const SINK_STAGE = 'sink';

export interface QuarantineInput {
  reason: Extract<ErrorCode, 'SINK_INSERT_REJECTED' | 'NORM_DECODE_FAILED'>;
  message: string;
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Index of the offending interval in a usage batch; null when the whole record is rejected. */
  recordIndex: number | null;
  detail: unknown;
  /** From the decoded record when there is one, else from the key (`connection/...`). */
  connectionId: string | null;
}

export function quarantineId(
  topic: string,
  partition: number,
  offset: string,
  recordIndex: number | null,
): string {
  return createHash('sha256')
    .update(`${SINK_STAGE}|${topic}|${partition}|${offset}|${recordIndex ?? ''}`)
    .digest('hex')
    .slice(0, 32);
}

export function connectionFromKey(key: Buffer | null): string | null {
  if (!key) return null;
  const k = key.toString('utf8');
  const slash = k.indexOf('/');
  return slash > 0 ? k.slice(0, slash) : null;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function buildQuarantineRecord(q: QuarantineInput, now: number = Date.now()): QuarantineRecord {
  return {
    id: quarantineId(q.topic, q.partition, q.offset, q.recordIndex),
    connection_id: q.connectionId,
    stage: SINK_STAGE,
    reason_code: q.reason,
    message: truncate(q.message, 2_000),
    source_topic: q.topic,
    source_partition: q.partition,
    source_offset: Number(q.offset),
    record_index: q.recordIndex,
    source_key: q.key ? q.key.toString('utf8') : null,
    original: q.value ?? Buffer.alloc(0),
    detail: q.detail === undefined ? null : truncate(JSON.stringify(q.detail), 10_000),
    quarantined_at: now,
  };
}

/** The Kafka message for a quarantine record, with the dead-letter headers. */
export function quarantineMessage(rec: QuarantineRecord, value: Buffer): Message {
  const headers: IHeaders = {
    [QUARANTINE_HEADERS.reason]: rec.reason_code,
    [QUARANTINE_HEADERS.stage]: rec.stage,
    [QUARANTINE_HEADERS.message]: truncate(rec.message, 500),
    [QUARANTINE_HEADERS.topic]: rec.source_topic,
    [QUARANTINE_HEADERS.partition]: String(rec.source_partition),
    [QUARANTINE_HEADERS.offset]: String(rec.source_offset),
    ...(rec.connection_id ? { [QUARANTINE_HEADERS.connection]: rec.connection_id } : {}),
  };
  const key =
    rec.source_key ??
    `${rec.connection_id ?? '-'}/${rec.source_topic}:${rec.source_partition}:${rec.source_offset}`;
  return { key, value, headers };
}
