/**
 * Quarantine records, built in one place for the processors and the sink.
 *
 * A record stands for one rejected source message and one reason code: the original bytes once,
 * how many of the message's rows failed, and the first of them in `detail`. A message of 3,000
 * rows that all fail one rule is one record of about the message's size, never 3,000 copies of
 * it. Ids are deterministic in (stage, topic, partition, offset, reason), so a replay
 * re-quarantines under the same ids and converges downstream. Message, detail and headers are
 * bounded by QUARANTINE_LIMITS whatever the input.
 */
import { createHash } from 'node:crypto';
import type { QuarantineRecord } from './records.js';
import { QUARANTINE_HEADERS } from './topics.js';

export const QUARANTINE_LIMITS = {
  /** Characters of a record's message. */
  message: 2_000,
  /** Characters of a record's detail (JSON). */
  detail: 10_000,
  /** Characters of the message header. */
  header: 500,
  /** Rejected rows listed in detail, with their index, message and record. */
  rows: 20,
  /** Characters of a listed row's message. */
  rowMessage: 200,
  /** Characters of a listed row's record (JSON text); a longer one is listed cut, as a string. */
  rowRecord: 300,
  /** Distinct row messages counted per record; the rows of any further ones count as others. */
  messages: 100,
} as const;

/** Cuts text to `max` characters, marking the cut. */
export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** Where the rejected message was read. */
export interface QuarantineSource {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
}

export function quarantineId(
  stage: string,
  source: Pick<QuarantineSource, 'topic' | 'partition' | 'offset'>,
  reason: string,
): string {
  return createHash('sha256')
    .update(`${stage}|${source.topic}|${source.partition}|${source.offset}|${reason}`)
    .digest('hex')
    .slice(0, 32);
}

/** The row's message with its own index replaced by `*`, so that rows failing one rule group. */
export function ruleOf(message: string, index: number | null): string {
  if (index === null) return message;
  const rule = message.replace(new RegExp(`(^|[.[/ #])${index}(?=[.:\\]/ ]|$)`), '$1*');
  return rule.startsWith('*: ') ? rule.slice(3) : rule;
}

interface Sample {
  index: number | null;
  message: string;
  record: string | null;
}

/**
 * The rejections of one source message for one reason, in constant memory: a count, the first
 * rows, and a count per distinct message (rule).
 */
export class RejectedRows {
  count = 0;
  /** Smallest index of a rejected row; null while only the whole message was rejected. */
  firstIndex: number | null = null;
  private readonly samples: Sample[] = [];
  private readonly rules = new Map<string, number>();
  private otherRules = 0;

  constructor(readonly reason: string) {}

  /**
   * One rejected row (index null: the whole message). `record` is the row as JSON text, or a
   * function giving it: it is only made for the rows that are listed.
   */
  add(index: number | null, message: string, record: string | null | (() => string | null)): void {
    this.count++;
    if (index !== null && (this.firstIndex === null || index < this.firstIndex)) this.firstIndex = index;
    if (this.samples.length < QUARANTINE_LIMITS.rows) {
      const text = typeof record === 'function' ? record() : record;
      this.samples.push({ index, message, record: text });
    }
    const rule = ruleOf(message, index);
    const n = this.rules.get(rule);
    if (n !== undefined) this.rules.set(rule, n + 1);
    else if (this.rules.size < QUARANTINE_LIMITS.messages) this.rules.set(rule, 1);
    else this.otherRules++;
  }

  copy(): RejectedRows {
    const c = new RejectedRows(this.reason);
    c.count = this.count;
    c.firstIndex = this.firstIndex;
    c.samples.push(...this.samples);
    for (const [k, v] of this.rules) c.rules.set(k, v);
    c.otherRules = this.otherRules;
    return c;
  }

  /** One whole-message rejection: its message and detail are kept as they are (within limits). */
  private get whole(): Sample | undefined {
    const s = this.samples[0];
    return this.count === 1 && s?.index === null ? s : undefined;
  }

  /**
   * What the record says: "*.reading: usage.fields.value `reading` missing in 2,976 of 2,976
   * rows" when most rows fail one rule. `rows` is the number of rows of the message, when known.
   */
  message(rows: number | null): string {
    const first = this.samples[0];
    if (!first) return this.reason;
    if (this.count === 1) return first.message;
    const of = rows !== null && rows >= this.count ? ` of ${fmt(rows)}` : '';
    const ranked = [...this.rules].sort((a, b) => b[1] - a[1]);
    const [top, n] = ranked[0]!;
    if (n * 2 < this.count) return `${fmt(this.count)}${of} rows rejected, the first: ${first.message}`;
    const parts = [`${top} in ${fmt(n)}${of} rows`];
    const rest = this.count - n;
    if (rest > 0) {
      const [second, m] = ranked[1] ?? ['other messages', this.otherRules];
      parts.push(rest === m ? `${second} in ${fmt(m)} rows` : `${fmt(rest)} more rows, e.g. ${second}`);
    }
    return parts.join('; ');
  }

  /**
   * JSON: the number of rows and of rejected rows, the count per message, and the first rows
   * with index, message and record (the row's JSON, or its first characters as a string).
   */
  detail(rows: number | null): string | null {
    const whole = this.whole;
    if (whole) return whole.record === null ? null : truncate(whole.record, QUARANTINE_LIMITS.detail);
    const listed = [...this.samples]
      .sort((a, b) => (a.index ?? -1) - (b.index ?? -1))
      .map((s) => ({
        index: s.index,
        message: truncate(s.message, QUARANTINE_LIMITS.rowMessage),
        record: recordValue(s.record),
      }));
    const messages = [...this.rules]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([message, n]) => ({ message: truncate(message, QUARANTINE_LIMITS.rowMessage), rows: n }));
    const build = (n: number): string =>
      JSON.stringify({ rows, rejected: this.count, messages, first: listed.slice(0, n) });
    let n = listed.length;
    let text = build(n);
    // Rows go from the end of the list until the whole fits (long messages, long records).
    while (text.length > QUARANTINE_LIMITS.detail && n > 1) text = build(--n);
    return truncate(text, QUARANTINE_LIMITS.detail);
  }
}

function recordValue(text: string | null): unknown {
  if (text === null) return null;
  if (text.length > QUARANTINE_LIMITS.rowRecord) return truncate(text, QUARANTINE_LIMITS.rowRecord);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

export interface QuarantineInput {
  stage: string;
  source: QuarantineSource;
  connectionId: string | null;
  rejected: RejectedRows;
  /** Rows of the source message, when the stage knows them. */
  rows?: number | null | undefined;
  now: number;
  /** The connection version applied, or named by the envelope (topic `connections`). */
  connectionVersion?: number | null | undefined;
}

export function buildQuarantineRecord(q: QuarantineInput): QuarantineRecord {
  const rows = q.rows ?? null;
  return {
    id: quarantineId(q.stage, q.source, q.rejected.reason),
    connection_id: q.connectionId,
    stage: q.stage,
    reason_code: q.rejected.reason,
    message: truncate(q.rejected.message(rows), QUARANTINE_LIMITS.message),
    source_topic: q.source.topic,
    source_partition: q.source.partition,
    source_offset: Number(q.source.offset),
    record_index: q.rejected.firstIndex,
    source_key: q.source.key,
    original: q.source.value ?? Buffer.alloc(0),
    detail: q.rejected.detail(rows),
    quarantined_at: q.now,
    status: 'open',
    redriven_at: null,
    redrive_id: null,
    connection_version: q.connectionVersion ?? null,
  };
}

/** One run of `meterflow quarantine redrive`. */
export interface Redrive {
  id: string;
  /** When it ran (ms since epoch): the same for every record it re-sent. */
  at: number;
}

/**
 * The record a redrive writes after re-sending `q`'s original: the same id and fields, now
 * redriven. It keeps the original bytes: ClickHouse keeps only the latest row of an id once
 * parts merge, and the bytes must stay there for the audit; a record is marked once, since a
 * redrive only re-sends open records.
 */
export function redrivenRecord(q: QuarantineRecord, redrive: Redrive): QuarantineRecord {
  return { ...q, status: 'redriven', redriven_at: redrive.at, redrive_id: redrive.id };
}

/**
 * Header of a record written by a redrive (`redriven`); open records have none. Tools tell the
 * two apart without decoding.
 */
export const QUARANTINE_STATUS_HEADER = 'mf.quarantine.status';

/**
 * The id of the record whose dead-letter headers these are, computed as quarantineId does from
 * the same inputs; undefined for a record without them (written before headers existed).
 */
export function quarantineIdFromHeaders(headers: Record<string, string | undefined>): string | undefined {
  const stage = headers[QUARANTINE_HEADERS.stage];
  const reason = headers[QUARANTINE_HEADERS.reason];
  const topic = headers[QUARANTINE_HEADERS.topic];
  const partition = headers[QUARANTINE_HEADERS.partition];
  const offset = headers[QUARANTINE_HEADERS.offset];
  if (stage === undefined || reason === undefined || topic === undefined) return undefined;
  if (partition === undefined || offset === undefined) return undefined;
  return quarantineId(stage, { topic, partition: Number(partition), offset }, reason);
}

/** The id of a decoded record, computed from its source the way the headers give it. */
export function quarantineIdOf(q: QuarantineRecord): string {
  return quarantineId(
    q.stage,
    { topic: q.source_topic, partition: q.source_partition, offset: String(q.source_offset) },
    q.reason_code,
  );
}

/** The dead-letter headers of a record (routing without decoding it). */
export function quarantineHeaders(rec: QuarantineRecord): Record<string, string> {
  return {
    [QUARANTINE_HEADERS.reason]: rec.reason_code,
    [QUARANTINE_HEADERS.stage]: rec.stage,
    [QUARANTINE_HEADERS.message]: truncate(rec.message, QUARANTINE_LIMITS.header),
    [QUARANTINE_HEADERS.topic]: rec.source_topic,
    [QUARANTINE_HEADERS.partition]: String(rec.source_partition),
    [QUARANTINE_HEADERS.offset]: String(rec.source_offset),
    ...(rec.connection_id ? { [QUARANTINE_HEADERS.connection]: rec.connection_id } : {}),
    ...(rec.status === 'redriven' ? { [QUARANTINE_STATUS_HEADER]: 'redriven' } : {}),
  };
}

/** The key of a record: the source's key (`connection/...`), else one naming its coordinates. */
export function quarantineKey(rec: QuarantineRecord): string {
  return (
    rec.source_key ??
    `${rec.connection_id ?? '-'}/${rec.source_topic}:${rec.source_partition}:${rec.source_offset}`
  );
}

/** A record's Kafka message: key, encoded value and headers. */
export function quarantineMessage(
  rec: QuarantineRecord,
  value: Buffer,
): { key: string; value: Buffer; headers: Record<string, string> } {
  return { key: quarantineKey(rec), value, headers: quarantineHeaders(rec) };
}
