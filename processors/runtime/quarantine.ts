/**
 * Quarantine records: the rejected message byte for byte, a stable reason code, the stage and
 * the source coordinates, also as Kafka headers (like Kafka Connect's dead-letter headers) so
 * tools can route on them without decoding the value.
 */
import { createHash } from 'node:crypto';
import { QUARANTINE_HEADERS } from '../../schemas/topics.js';
import type { QuarantineRecord } from '../../schemas/records.js';
import type { InMessage, Rejection } from './stage.js';

/** The same bad input always gets the same id, so replays and retries converge downstream. */
export function quarantineId(stage: string, source: InMessage, rejection: Rejection): string {
  return createHash('sha1')
    .update(
      `${stage}|${source.topic}|${source.partition}|${source.offset}|${rejection.recordIndex ?? '-'}|${rejection.code}`,
    )
    .digest('hex');
}

export function buildQuarantineRecord(
  stage: string,
  source: InMessage,
  rejection: Rejection,
  now: number,
): QuarantineRecord {
  return {
    id: quarantineId(stage, source, rejection),
    connection_id: rejection.connectionId,
    stage,
    reason_code: rejection.code,
    message: rejection.message,
    source_topic: source.topic,
    source_partition: source.partition,
    source_offset: Number(source.offset),
    record_index: rejection.recordIndex,
    source_key: source.key,
    original: source.value ?? Buffer.alloc(0),
    detail: rejection.detail,
    quarantined_at: now,
  };
}

export function quarantineHeaders(record: QuarantineRecord): Record<string, string> {
  return {
    [QUARANTINE_HEADERS.reason]: record.reason_code,
    [QUARANTINE_HEADERS.stage]: record.stage,
    [QUARANTINE_HEADERS.message]: record.message.slice(0, 1000),
    [QUARANTINE_HEADERS.topic]: record.source_topic,
    [QUARANTINE_HEADERS.partition]: String(record.source_partition),
    [QUARANTINE_HEADERS.offset]: String(record.source_offset),
    ...(record.connection_id ? { [QUARANTINE_HEADERS.connection]: record.connection_id } : {}),
  };
}

/** `connection_id/...` keys carry the connection; quarantine is keyed by it too. */
export function connectionOfKey(key: string | null): string | null {
  if (!key) return null;
  const i = key.indexOf('/');
  return i > 0 ? key.slice(0, i) : null;
}
