/**
 * One flush of taken records: insert each table's rows (bisecting what ClickHouse refuses for its
 * content), quarantine every refused row and undecodable record, then commit the records' offsets.
 * Inserts and quarantine writes are retried through lib/retry while ClickHouse or Kafka fail,
 * with the family's topics paused meanwhile; a flush that fails part way is repeated whole by the
 * caller (ids and versions are replay-stable, so what was written twice collapses).
 *
 * Drain: once the drain deadline has passed or the drain is aborted, a retriable failure ends the
 * flush with DrainTimeout instead of another try; the abort's reason is a DrainTimeout too, so a
 * wait cut short ends the same way.
 */
import type { Consumer } from 'kafkajs';
import { errorMessage, isMeterflowError, MeterflowError } from '../../lib/errors.js';
import { bySize, PRODUCE_REQUEST_BYTES } from '../../lib/kafka.js';
import type { Logger } from '../../lib/log.js';
import { sinkMetrics } from '../../lib/metrics.js';
import { retry, type BackoffPolicy } from '../../lib/retry.js';
import { buildQuarantineRecord, type RejectedRows } from '../../schemas/quarantine.js';
import type { QuarantineRecord } from '../../schemas/records.js';
import { ident } from './client.js';
import { addProblem, type Entry } from './entry.js';
import { SINK_EVENTS } from './events.js';
import { insertWithBisect, type InsertFn, type Retry, type RowBatch, type RowRef } from './insert.js';
import type { FamilyName } from './options.js';
import { partitionKey, type PartitionProgress } from './partitions.js';
import type { PauseGate } from './pause-gate.js';
import { SINK_STAGE, type SinkReason } from './quarantine.js';

/** The drain ran out of time: what is not committed is read again by the group's next consumer. */
export class DrainTimeout extends Error {}

/** Writes quarantine records to the quarantine topic; resolves once Kafka acknowledged them. */
export interface QuarantineWriter {
  write(records: QuarantineRecord[]): Promise<void>;
}

/** What a flush counts (a part of the loader's stats). */
export interface FlushStats {
  rowsInserted: number;
  inserts: number;
  quarantined: number;
  retries: number;
  flushes: number;
  commits: number;
  lastError: string | null;
}

export interface FlusherDeps {
  family: FamilyName;
  database: string;
  insert: InsertFn;
  quarantine: QuarantineWriter;
  commitOffsets: Consumer['commitOffsets'];
  partitions: PartitionProgress;
  gate: PauseGate;
  policy: BackoffPolicy;
  /** Aborted (with a DrainTimeout) when the drain runs out of time. */
  signal: AbortSignal;
  /** When the drain gives up retrying (Infinity while not stopping). */
  drainDeadline: () => number;
  stats: FlushStats;
  log: Logger;
}

interface RowOwner {
  entry: Entry;
  index: number;
}

/** Commit tries before giving up: a failed commit only means reading the records again. */
const COMMIT_ATTEMPTS = 5;

/** About the encoded size of a quarantine record: its original, texts, and 1 KiB of the rest. */
const quarantineBytes = (r: QuarantineRecord): number =>
  r.original.length + r.message.length + (r.detail?.length ?? 0) + 1024;

/** The rows of some records of one table, as one insert. */
function rowBatch(entries: Entry[]): RowBatch<RowOwner> {
  const body: Buffer[] = [];
  let count = 0;
  for (const e of entries) {
    body.push(...e.body!);
    count += e.rowCount;
  }
  return { body, count, refs: () => entries.flatMap(rowRefs) };
}

/** Each stored row of a record as its own slice of bytes (only to bisect a refused batch). */
function rowRefs(entry: Entry): RowRef<RowOwner>[] {
  const all = entry.body!.length === 1 ? entry.body![0]! : Buffer.concat(entry.body!);
  let start = 0;
  return Array.from(entry.ends!, (end, i) => {
    const bytes = all.subarray(start, end);
    start = end;
    return { bytes, ref: { entry, index: entry.indexes?.[i] ?? i } };
  });
}

export class Flusher {
  constructor(private readonly deps: FlusherDeps) {}

  /** Inserts, quarantines and commits `entries`; throws when a step fails for good (or the drain ends). */
  async flush(entries: Entry[]): Promise<void> {
    const { deps } = this;
    const started = Date.now();
    const db = ident(deps.database);

    // Records per table, in arrival order.
    const byTable = new Map<string, Entry[]>();
    for (const entry of entries) {
      if (!entry.body) continue;
      const list = byTable.get(entry.table);
      if (list) list.push(entry);
      else byTable.set(entry.table, [entry]);
    }

    // Per record and reason: the rows refused before the insert, then those ClickHouse refuses.
    // Copies, so that a retried flush starts again from what consuming found.
    const refused = new Map<Entry, Map<SinkReason, RejectedRows>>();
    for (const entry of entries) {
      if (!entry.problems) continue;
      const own = new Map<SinkReason, RejectedRows>();
      for (const [reason, r] of entry.problems) own.set(reason, r.copy());
      refused.set(entry, own);
    }
    let rows = 0;
    for (const [table, members] of byTable) {
      const batch = rowBatch(members);
      const insertStarted = process.hrtime.bigint();
      const outcome = await insertWithBisect(
        deps.insert,
        `${db}.${table}`,
        members[0]!.binding.format,
        batch,
        this.retry,
        (size, message) =>
          deps.log[size === batch.count ? 'warn' : 'debug'](
            { event: SINK_EVENTS.bisect, table, size, err: message },
            'ClickHouse refused a batch for its content; bisecting',
          ),
      );
      deps.stats.inserts += outcome.inserts;
      rows += batch.count - outcome.rejected.length;
      sinkMetrics.rowsInserted.inc({ table }, batch.count - outcome.rejected.length);
      sinkMetrics.insertSeconds.observe({ table }, Number(process.hrtime.bigint() - insertStarted) / 1e9);
      const perInterval = table === 'usage_intervals';
      for (const r of outcome.rejected) {
        let own = refused.get(r.ref.entry);
        if (!own) refused.set(r.ref.entry, (own = new Map<SinkReason, RejectedRows>()));
        const { binding } = r.ref.entry;
        addProblem(own, 'SINK_INSERT_REJECTED', perInterval ? r.ref.index : null, r.message, () =>
          binding.describe(r.bytes),
        );
      }
    }
    const quarantine: QuarantineRecord[] = [];
    for (const [entry, byReason] of refused) {
      for (const rejected of byReason.values()) quarantine.push(quarantineRecord(entry, rejected));
    }
    if (quarantine.length > 0) await this.writeQuarantine(quarantine);
    deps.stats.rowsInserted += rows;
    await this.commit(entries);
    deps.stats.flushes++;
    deps.log.debug(
      { event: SINK_EVENTS.flushed, records: entries.length, rows, ms: Date.now() - started },
      'flushed',
    );
  }

  /**
   * Repeats an insert or a write while it fails retriably, with the topics paused from the first
   * failure until it succeeds. After the drain deadline a retriable failure is a DrainTimeout.
   */
  private readonly retry: Retry = (what, attempt) => {
    const { deps } = this;
    return retry(
      async (n) => {
        try {
          const r = await attempt();
          if (n > 1) {
            deps.log.info(
              { event: SINK_EVENTS.insertRecovered, what, attempts: n },
              'ClickHouse answers again',
            );
            deps.gate.resume('clickhouse');
          }
          return r;
        } catch (err) {
          if (!(isMeterflowError(err) && err.retriable)) throw err;
          deps.stats.retries++;
          deps.stats.lastError = err.message;
          if (n === 1) deps.gate.pause('clickhouse');
          if (Date.now() >= deps.drainDeadline() || deps.signal.aborted)
            throw new DrainTimeout(err.message, { cause: err });
          throw err;
        }
      },
      {
        policy: deps.policy,
        signal: deps.signal,
        onRetry: ({ err, attempt: n, delayMs }) => {
          sinkMetrics.insertErrors.inc({ table: deps.family });
          deps.log[n === 1 || n % 10 === 0 ? 'warn' : 'debug'](
            {
              event: SINK_EVENTS.insertRetry,
              what,
              code: isMeterflowError(err) ? err.code : undefined,
              attempt: n,
              delayMs,
              err: errorMessage(err),
            },
            'retrying',
          );
        },
      },
    );
  };

  private async writeQuarantine(quarantine: QuarantineRecord[]): Promise<void> {
    const { deps } = this;
    // A record carries a whole source message: many of them are far above what one request
    // may hold. A retried flush may write a slice again; ids are stable, so copies collapse.
    for (const slice of bySize(quarantine, quarantineBytes, PRODUCE_REQUEST_BYTES)) {
      await this.retry('write quarantine records', async () => {
        try {
          await deps.quarantine.write(slice);
        } catch (err) {
          throw isMeterflowError(err)
            ? err
            : new MeterflowError('KAFKA_UNREACHABLE', `cannot write to quarantine: ${errorMessage(err)}`, {
                cause: err,
                retriable: true,
              });
        }
      });
    }
    deps.stats.quarantined += quarantine.length;
    deps.log.warn(
      {
        event: SINK_EVENTS.quarantined,
        count: quarantine.length,
        reasons: [...new Set(quarantine.map((q) => q.reason_code))],
      },
      'records quarantined',
    );
  }

  /** Commits the next offset of every partition in `entries`; a failure only means re-reading. */
  private async commit(entries: Entry[]): Promise<void> {
    const { deps } = this;
    const next = new Map<string, { topic: string; partition: number; offset: bigint }>();
    for (const e of entries) {
      const k = partitionKey(e.topic, e.partition);
      const o = BigInt(e.offset) + 1n;
      const cur = next.get(k);
      if (!cur || o > cur.offset) next.set(k, { topic: e.topic, partition: e.partition, offset: o });
    }
    // Only partitions this member still owns: after a rebalance the new owner re-reads them.
    const offsets = [...next.values()]
      .filter((o) => deps.partitions.owns(o.topic, o.partition))
      .map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset.toString() }));
    if (offsets.length === 0) return;
    try {
      await retry(() => deps.commitOffsets(offsets), {
        policy: deps.policy,
        signal: deps.signal,
        classify: () => true,
        maxAttempts: COMMIT_ATTEMPTS,
      });
      deps.stats.commits++;
    } catch (err) {
      deps.log.warn(
        { event: SINK_EVENTS.commitFailed, err: errorMessage(err), offsets },
        'offset commit failed; these records will be read and inserted again (duplicates collapse)',
      );
    }
  }
}

function quarantineRecord(entry: Entry, rejected: RejectedRows): QuarantineRecord {
  return buildQuarantineRecord({
    stage: SINK_STAGE,
    source: {
      topic: entry.topic,
      partition: entry.partition,
      offset: entry.offset,
      key: entry.key ? entry.key.toString('utf8') : null,
      value: entry.value,
    },
    connectionId: entry.connectionId,
    rejected,
    rows: entry.table === 'usage_intervals' ? entry.rows : null,
    now: Date.now(),
  });
}
