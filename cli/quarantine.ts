/**
 * `meterflow quarantine list | inspect | redrive`: what was rejected and why, and sending it
 * back through the pipeline after a mapping or configuration fix.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, Message, Producer } from 'kafkajs';
import { loadConfig, type Config } from '../lib/config.js';
import { errorMessage, MeterflowError } from '../lib/errors.js';
import { abortable, createKafka, readToEnd, type ReadMessage } from '../lib/kafka.js';
import { AvroRegistry, readerType } from '../lib/registry.js';
import {
  QUARANTINE_STATUS_HEADER,
  quarantineHeaders,
  quarantineIdFromHeaders,
  quarantineIdOf,
  redrivenRecord,
  type Redrive,
} from '../schemas/quarantine.js';
import { DAY_MS } from '../schemas/time.js';
import { QUARANTINE_HEADERS, TOPICS, topicName } from '../schemas/topics.js';
import type { QuarantineRecord } from '../schemas/records.js';
import { commandDeadline, parse, timeoutOption, type Command } from './args.js';

export interface QuarantineFilter {
  reason?: string | undefined;
  stage?: string | undefined;
  connection?: string | undefined;
  since?: number | undefined;
  /** Only records still open: not redriven since they were written (and no redrive marks). */
  open?: boolean | undefined;
}

export function matches(q: QuarantineRecord, f: QuarantineFilter): boolean {
  return (
    (!f.reason || q.reason_code === f.reason) &&
    (!f.stage || q.stage === f.stage) &&
    (!f.connection || q.connection_id === f.connection) &&
    (!f.since || q.quarantined_at >= f.since) &&
    (!f.open || (q.status ?? 'open') === 'open')
  );
}

/**
 * Where the latest redrive mark of each redriven record sits: id -> offset. A mark is written to
 * the partition of the record it marks, after it, so a record at a lower offset than its id's
 * mark was redriven and one at a higher offset (quarantined again under the same id, by a replay
 * of the same source offset) is open again.
 */
export type RedriveMarks = Map<string, bigint>;

/** Reads the marks of the records the filter's headers let through, from headers only. */
export async function readRedriveMarks(
  kafka: Kafka,
  topic: string,
  filter: QuarantineFilter,
  signal?: AbortSignal,
): Promise<RedriveMarks> {
  const marks: RedriveMarks = new Map();
  await readToEnd(
    kafka,
    topic,
    (m) => {
      if (m.headers[QUARANTINE_STATUS_HEADER] !== 'redriven' || !headersMayMatch(m.headers, filter)) return;
      const id = quarantineIdFromHeaders(m.headers);
      if (id !== undefined) marks.set(id, BigInt(m.offset));
    },
    signal ? { signal } : {},
  );
  return marks;
}

/**
 * Whether a message of the quarantine topic is an open record, from its headers: false for a mark
 * and for a record redriven after it; undefined when the headers cannot tell (no headers).
 */
export function openFromHeaders(m: ReadMessage, marks: RedriveMarks): boolean | undefined {
  if (m.headers[QUARANTINE_STATUS_HEADER] === 'redriven') return false;
  const id = quarantineIdFromHeaders(m.headers);
  if (id === undefined) return undefined;
  return !redrivenAfter(marks, id, m.offset);
}

function redrivenAfter(marks: RedriveMarks, id: string, offset: string): boolean {
  const mark = marks.get(id);
  return mark !== undefined && mark > BigInt(offset);
}

/**
 * The filter on the dead-letter headers, before anything is decoded: false when a header rules
 * the record out. A record without the header (written before headers existed) is not ruled out
 * here; `matches` decides on its decoded value.
 */
export function headersMayMatch(headers: Record<string, string>, f: QuarantineFilter): boolean {
  // Records written with headers always carry the reason; the connection header only when the
  // record has a connection.
  if (headers[QUARANTINE_HEADERS.reason] === undefined) return true;
  return (
    (!f.reason || headers[QUARANTINE_HEADERS.reason] === f.reason) &&
    (!f.stage || headers[QUARANTINE_HEADERS.stage] === f.stage) &&
    (!f.connection || headers[QUARANTINE_HEADERS.connection] === f.connection)
  );
}

/** What a scan hands out for each record whose headers pass the filter. */
export type Scanned =
  | { kind: 'record'; record: QuarantineRecord; message: ReadMessage }
  | { kind: 'undecodable'; error: string; message: ReadMessage };

export interface ScanOptions {
  config?: Config;
  registry?: AvroRegistry;
  signal?: AbortSignal;
  /**
   * Called for each record that passes the header filter; returning false says the value is not
   * wanted (a cap was reached): it is then counted from its headers without being decoded.
   */
  wantsValue?: () => boolean;
}

export interface ScanResult {
  /** Records matching the filter, by reason (from the headers where not decoded). */
  byReason: Map<string, number>;
  matched: number;
}

const QUARANTINE_READER = readerType('quarantine');

/**
 * Streams the quarantine topic: the header filter first, then one record at a time is decoded
 * and handed to `onRecord`, which prints or sends it. Nothing of the topic is kept. With `open`,
 * a first pass over the headers finds the redrive marks (the only thing kept: an id and offset per
 * redriven record the filter matches), and the second leaves out marks and redriven records.
 */
export async function scanQuarantine(
  filter: QuarantineFilter,
  onRecord: (s: Scanned) => void | Promise<void>,
  options: ScanOptions = {},
): Promise<ScanResult> {
  const config = options.config ?? loadConfig();
  const kafka = createKafka(config, '-cli');
  const registry = options.registry ?? AvroRegistry.fromConfig(config);
  const topic = topicName(config.kafka.topicPrefix, 'quarantine');
  const byReason = new Map<string, number>();
  let matched = 0;
  const count = (reason: string): void => {
    matched++;
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
  };
  const marks = filter.open ? await readRedriveMarks(kafka, topic, filter, options.signal) : undefined;
  await readToEnd(
    kafka,
    topic,
    async (m) => {
      if (!headersMayMatch(m.headers, filter)) return;
      const open = marks ? openFromHeaders(m, marks) : undefined;
      if (open === false) return;
      const headerReason = m.headers[QUARANTINE_HEADERS.reason];
      // Past a cap the value is not needed when the headers can tell the reason and the filter.
      if (options.wantsValue?.() === false && headerReason !== undefined && !filter.since) {
        count(headerReason);
        return;
      }
      if (!m.value) return;
      let record: QuarantineRecord;
      try {
        // With the reader schema, records written before the lifecycle fields decode as open.
        record = await abortable(
          registry.decode<QuarantineRecord>(m.value, QUARANTINE_READER),
          options.signal,
        );
      } catch (err) {
        if (options.signal?.aborted) throw err;
        count(headerReason ?? 'undecodable');
        await onRecord({ kind: 'undecodable', error: errorMessage(err), message: m });
        return;
      }
      if (!matches(record, filter)) return;
      if (marks && open === undefined && redrivenAfter(marks, quarantineIdOf(record), m.offset)) return;
      count(record.reason_code);
      await onRecord({ kind: 'record', record, message: m });
    },
    options.signal ? { signal: options.signal } : {},
  );
  return { byReason, matched };
}

const filterOptions = {
  reason: { type: 'string' },
  stage: { type: 'string' },
  connection: { type: 'string' },
  since: { type: 'string' },
  open: { type: 'boolean' },
  json: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  limit: { type: 'string' },
  ...timeoutOption,
} as const;

function filterFrom(values: {
  reason?: string | undefined;
  stage?: string | undefined;
  connection?: string | undefined;
  since?: string | undefined;
  open?: boolean | undefined;
}): QuarantineFilter {
  const since = values.since ? Date.parse(values.since) : undefined;
  if (values.since && Number.isNaN(since))
    throw new MeterflowError('CLI_USAGE', `--since must be an ISO time, not "${values.since}"`);
  return {
    reason: values.reason,
    stage: values.stage,
    connection: values.connection,
    since,
    open: values.open === true,
  };
}

function limitFrom(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new MeterflowError('CLI_USAGE', `--limit must be a whole number, not "${value}"`);
  return n;
}

function where(m: ReadMessage): string {
  return `quarantine:${m.partition}:${m.offset}`;
}

function listLine(q: QuarantineRecord): string {
  const redriven =
    q.status === 'redriven'
      ? `  [redriven ${q.redriven_at == null ? '' : new Date(q.redriven_at).toISOString()} by ${q.redrive_id ?? '?'}]`
      : '';
  return `${q.id.slice(0, 12)}  ${new Date(q.quarantined_at).toISOString()}  ${q.stage.padEnd(9)} ${q.reason_code.padEnd(26)} ${q.source_topic}:${q.source_partition}:${q.source_offset}${q.record_index === null ? '' : `#${q.record_index}`}  ${q.message}${redriven}`;
}

function printRecord(q: QuarantineRecord): void {
  const original = q.original.toString('utf8');
  const printable = /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(original);
  console.log(
    JSON.stringify(
      {
        ...q,
        quarantined_at: new Date(q.quarantined_at).toISOString(),
        redriven_at: q.redriven_at == null ? null : new Date(q.redriven_at).toISOString(),
        original: printable ? original : `base64:${q.original.toString('base64')}`,
      },
      null,
      2,
    ),
  );
}

function printCounts(result: ScanResult, open: boolean): void {
  console.log(`${result.matched} ${open ? 'open ' : ''}quarantined record(s)`);
  for (const [reason, n] of [...result.byReason].sort((a, b) => b[1] - a[1]))
    console.log(`  ${reason.padEnd(28)} ${n}`);
}

const RETENTION_DAYS = TOPICS.quarantine.retentionMs / DAY_MS;

async function list(filter: QuarantineFilter, limit: number, json: boolean, signal: AbortSignal) {
  let shown = 0;
  const result = await scanQuarantine(
    filter,
    (s) => {
      if (shown >= limit) return;
      shown++;
      if (s.kind === 'undecodable') {
        const line = `${where(s.message)}: cannot decode (${s.error})`;
        if (json) console.log(JSON.stringify({ at: where(s.message), undecodable: s.error }));
        else console.log(line);
        return;
      }
      const q = s.record;
      if (json) console.log(JSON.stringify({ ...q, original: q.original.toString('base64') }));
      else console.log(listLine(q));
    },
    { signal, wantsValue: () => shown < limit },
  );
  const rest = result.matched - shown;
  if (json) {
    if (rest > 0) console.error(`${rest} more record(s) not shown (--limit ${limit})`);
    return;
  }
  printCounts(result, filter.open === true);
  if (rest > 0) console.log(`${rest} more record(s) not shown (--limit ${limit}, or narrow the filter)`);
}

/** The latest version of each record whose id starts with `id`, at most `limit` of them. */
async function inspect(id: string, filter: QuarantineFilter, limit: number, signal: AbortSignal) {
  const found = new Map<string, QuarantineRecord>();
  let more = 0;
  const seenMore = new Set<string>();
  await scanQuarantine(
    filter,
    (s) => {
      if (s.kind !== 'record' || !(s.record.id === id || s.record.id.startsWith(id))) return;
      if (found.has(s.record.id) || found.size < limit) found.set(s.record.id, s.record);
      else if (seenMore.size < 1_000 && !seenMore.has(s.record.id)) {
        seenMore.add(s.record.id);
        more++;
      }
    },
    { signal },
  );
  if (found.size === 0) {
    console.error(`no quarantine record ${id}`);
    return 1;
  }
  for (const q of found.values()) printRecord(q);
  if (more > 0) console.error(`${more} more record(s) match ${id}: give more of the id`);
  return 0;
}

/**
 * Sends each open matching record's original bytes back to its source topic, as the records
 * stream by, in sends of at most REDRIVE_BATCH messages; a source message rejected for several
 * reasons goes back once. Then each record it re-sent is written again to the quarantine topic,
 * on its own partition, as redriven by this redrive: list --open, status and quarantine_latest no
 * longer count it, and a later redrive leaves it alone. The marks follow the sends they stand
 * for, so a redrive that stops between the two leaves the records open (a redrive is safe to
 * repeat). A record the stage rejects again gets a new id (its source offset is new) and is open.
 */
const REDRIVE_BATCH = 100;

interface PendingMark {
  partition: number;
  key: Buffer | null;
  record: QuarantineRecord;
}

async function redrive(
  filter: QuarantineFilter,
  limit: number,
  dryRun: boolean,
  signal: AbortSignal,
): Promise<number> {
  const config = loadConfig();
  const registry = AvroRegistry.fromConfig(config);
  const quarantineTopic = topicName(config.kafka.topicPrefix, 'quarantine');
  const run: Redrive = { id: randomUUID(), at: Date.now() };
  let producer: Producer | undefined;
  let encodeMark: ((q: QuarantineRecord) => Buffer) | undefined;
  if (!dryRun) {
    const serde = await abortable(registry.registerTopic(config.kafka.topicPrefix, 'quarantine'), signal);
    encodeMark = (q) => serde.encode(q);
    producer = createKafka(config, '-cli').producer({ idempotent: true });
    await abortable(producer.connect(), signal);
  }
  const sources = new Set<string>();
  const marked = new Set<string>();
  let pending: { topic: string; key: string | null; value: Buffer; id: string }[] = [];
  let pendingMarks: PendingMark[] = [];
  let sent = 0;
  let marks = 0;
  let undecodable = 0;
  const flush = async (): Promise<void> => {
    if (!producer || !encodeMark) return;
    const batch = pending;
    pending = [];
    if (batch.length > 0) {
      await abortable(
        producer.sendBatch({
          topicMessages: [...new Set(batch.map((b) => b.topic))].map((topic) => ({
            topic,
            messages: batch
              .filter((b) => b.topic === topic)
              .map((b) => ({
                key: b.key,
                value: b.value,
                headers: { 'mf.redrive.of': b.id, 'mf.redrive.id': run.id },
              })),
          })),
        }),
        signal,
      );
      sent += batch.length;
    }
    const toMark = pendingMarks;
    pendingMarks = [];
    if (toMark.length === 0) return;
    const encode = encodeMark;
    const messages: Message[] = toMark.map((p) => {
      const mark = redrivenRecord(p.record, run);
      return { partition: p.partition, key: p.key, value: encode(mark), headers: quarantineHeaders(mark) };
    });
    await abortable(producer.send({ topic: quarantineTopic, messages }), signal);
    marks += toMark.length;
  };
  try {
    const result = await scanQuarantine(
      { ...filter, open: true },
      async (s) => {
        if (s.kind === 'undecodable') {
          undecodable++;
          console.error(`${where(s.message)}: cannot decode, not redriven (${s.error})`);
          return;
        }
        const q = s.record;
        const source = `${q.source_topic}|${q.source_partition}|${q.source_offset}`;
        if (!sources.has(source)) {
          if (sources.size >= limit) return;
          sources.add(source);
          pending.push({ topic: q.source_topic, key: q.source_key, value: q.original, id: q.id });
        }
        // A record quarantined twice under one id (a replay) is marked once.
        if (!marked.has(q.id)) {
          marked.add(q.id);
          pendingMarks.push({ partition: s.message.partition, key: s.message.key, record: q });
        }
        if (pending.length >= REDRIVE_BATCH || pendingMarks.length >= REDRIVE_BATCH) await flush();
      },
      { config, registry, signal, wantsValue: () => sources.size < limit },
    );
    await flush();
    if (dryRun) {
      console.log(
        `would redrive ${sources.size} message(s) to their source topics (${result.matched} open quarantine record(s))`,
      );
    } else {
      console.log(
        `redrove ${sources.size} message(s) to their source topics; marked ${marks} quarantine record(s) redriven by redrive ${run.id}`,
      );
    }
    if (sources.size >= limit && Number.isFinite(limit))
      console.log(`stopped at --limit ${limit}; run again for the rest (a redrive is safe to repeat)`);
    return undecodable > 0 ? 1 : 0;
  } catch (err) {
    if (sent > 0)
      console.error(
        `redrove ${sent} message(s) and marked ${marks} record(s) before the failure; a redrive is safe to repeat`,
      );
    throw err;
  } finally {
    if (producer) {
      const closing = producer.disconnect().catch(() => undefined);
      if (!signal.aborted) await closing;
    }
  }
}

export const quarantineCommand: Command = {
  summary: 'list, inspect and redrive quarantined records',
  help: `Usage:
  meterflow quarantine list    [--open] [--reason CODE] [--stage S] [--connection C] [--since ISO] [--limit N] [--json]
  meterflow quarantine inspect <id> [--reason CODE] [--stage S] [--connection C] [--limit N]
  meterflow quarantine redrive [--reason CODE] [--stage S] [--connection C] [--since ISO] [--limit N] [--dry-run]
  every form: [--timeout SECONDS] (default 60; the whole command, connecting included: CLI_TIMEOUT)

The topic is read as a stream: --reason, --stage and --connection are matched on the records'
mf.error.* headers before anything is decoded, and nothing is held but what is printed.
list: one line per record (id, time, stage, reason, source, message; when and by which redrive
  for a redriven one) as they are read, at most --limit (default 100), then the count by reason
  of every match. --open: only what still needs work, records not redriven since.
inspect: the whole record, with the original bytes (as text when they are UTF-8 JSON); the latest
  version of each record whose id starts with <id>, at most --limit (default 5).
redrive: writes each open record's original bytes back to its source topic with its key, so the
  stage that rejected it sees it again (after you fixed a mapping or a connection file); at most
  --limit source messages (default all). Then writes each record again, same id, as redriven
  (redriven_at, redrive_id; the id is printed): it is no longer open, and a record the stage
  rejects again is a new open record. Slot semantics and versions make this safe to repeat.

Records stay in the quarantine topic for ${RETENTION_DAYS} days (retention.ms of the topic, set when
\`meterflow migrate\` creates it; an existing topic keeps its own setting).`,
  async run(argv) {
    const { values, positionals } = parse(argv, filterOptions);
    const action = positionals[0];
    if (action !== 'list' && action !== 'inspect' && action !== 'redrive')
      throw new MeterflowError('CLI_USAGE', 'quarantine needs list, inspect or redrive');
    const filter = filterFrom(values);
    const id = positionals[1];
    if (action === 'inspect' && !id) throw new MeterflowError('CLI_USAGE', 'quarantine inspect needs an id');
    const deadline = commandDeadline(`meterflow quarantine ${action}`, values.timeout, 60);
    try {
      if (action === 'list') {
        await list(filter, limitFrom(values.limit, 100), values.json === true, deadline.signal);
        return 0;
      }
      if (action === 'inspect')
        return await inspect(id!, filter, limitFrom(values.limit, 5), deadline.signal);
      return await redrive(
        filter,
        limitFrom(values.limit, Number.POSITIVE_INFINITY),
        values['dry-run'] === true,
        deadline.signal,
      );
    } finally {
      deadline.clear();
    }
  },
};
