/**
 * One table family's consumer: decode, map, buffer, insert, quarantine, then commit.
 *
 * Offsets: kafkajs runs with autoCommit off. A record's offset is resolved (so the fetch moves
 * on) when it is buffered, and committed only after every row of it and of every record before
 * it on its partition is acknowledged by ClickHouse (or quarantined, with Kafka's ack). A crash
 * in between re-reads those records and inserts them again; every table's ORDER BY is the fact's
 * identity and the version is replay-stable, so the duplicates collapse.
 *
 * Backpressure: eachBatch never waits for ClickHouse. While an insert is failing, or when the
 * buffer is over its limit (rows or bytes), or while the registry cannot resolve a schema, the
 * family's topics are paused; the kafkajs loop keeps heartbeating, so the group stays stable
 * during an outage.
 *
 * Quarantine: one record per Kafka record and reason (schemas/quarantine.ts), with the number of
 * refused rows and the first ones, whatever the number of bad intervals.
 */
import { sinkMetrics } from '../../lib/metrics.js';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { errorMessage, isMeterflowError, MeterflowError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { isRegistryUnavailable, readerType, type AvroRegistry } from '../../lib/registry.js';
import { bySize, groupLag, PRODUCE_REQUEST_BYTES } from '../../lib/kafka.js';
import type avro from 'avsc';
import type { QuarantineRecord } from '../../schemas/records.js';
import { buildQuarantineRecord, RejectedRows } from '../../schemas/quarantine.js';
import { connectionOfKey, topicName } from '../../schemas/topics.js';
import { ident } from './client.js';
import { SINK_EVENTS } from './events.js';
import type { TopicBinding } from './families.js';
import { insertWithBisect, splitLines, type InsertFn, type Retry, type RowBatch } from './insert.js';
import type { FamilyName, SinkOptions } from './options.js';
import { SINK_STAGE, type SinkReason } from './quarantine.js';
import { backoffDelay, sleep } from './retry.js';

/** Writes quarantine records to the quarantine topic; resolves once Kafka acknowledged them. */
export interface QuarantineWriter {
  write(records: QuarantineRecord[]): Promise<void>;
}

export interface LoaderDeps {
  family: FamilyName;
  bindings: TopicBinding[];
  topicPrefix: string;
  database: string;
  groupId: string;
  kafka: Kafka;
  registry: AvroRegistry;
  insert: InsertFn;
  quarantine: QuarantineWriter;
  log: Logger;
  options: SinkOptions;
}

export interface LoaderStats {
  family: FamilyName;
  recordsConsumed: number;
  rowsInserted: number;
  inserts: number;
  quarantined: number;
  retries: number;
  flushes: number;
  commits: number;
  /** kafkajs consumer crashes (it restarts itself on retriable ones); expected to stay 0. */
  crashes: number;
  paused: boolean;
  lastError: string | null;
}

/** A consumed record with its rows and the rows that were refused before any insert. */
interface Entry {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  table: string;
  /** Its storable rows as JSONEachRow text, each line ending in a newline; null when none. */
  text: Buffer[] | null;
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

const NEWLINE = Buffer.from('\n');

/** About the encoded size of a quarantine record: its original, texts, and 1 KiB of the rest. */
const quarantineBytes = (r: QuarantineRecord): number =>
  r.original.length + r.message.length + (r.detail?.length ?? 0) + 1024;

function addProblem(
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

interface RowOwner {
  entry: Entry;
  index: number;
}

type PauseReason = 'clickhouse' | 'buffer' | 'registry' | 'kafka';

class DrainTimeout extends Error {}

/** Rows mapped between two turns of the event loop while consuming. */
const YIELD_EVERY_ROWS = 2_000;

const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** The rows of some records of one table, as one insert. */
function rowBatch(entries: Entry[]): RowBatch<RowOwner> {
  const body: Buffer[] = [];
  let count = 0;
  for (const e of entries) {
    body.push(...e.text!);
    count += e.rowCount;
  }
  return {
    body,
    count,
    refs: () =>
      entries.flatMap((entry) =>
        splitLines(Buffer.concat(entry.text!)).map((line, i) => ({
          line,
          ref: { entry, index: entry.indexes?.[i] ?? i },
        })),
      ),
  };
}

export class FamilyLoader {
  private readonly consumer: Consumer;
  private readonly topics: string[];
  private readonly byTopic: Map<string, TopicBinding>;
  /** The topics' current schemas: records of older writers are resolved to them (defaults filled). */
  private readonly readers: Map<string, avro.Type>;
  private readonly log: Logger;
  private readonly maxBuffered: number;
  private readonly maxBufferedBytes: number;

  private buffer: Entry[] = [];
  private bufferedRows = 0;
  private bufferedBytes = 0;
  private oldestAt = 0;
  private inflight: Entry[] | null = null;
  private flushing: Promise<void> | null = null;
  private flushAgain = false;
  private timer: NodeJS.Timeout | undefined;
  /** Per topic-partition, the lag after the last batch read to its end (control records count). */
  private readonly lagAfterBatch = new Map<string, string>();
  /** When the last partial batch was flushed (by age or because the member caught up). */
  private partialFlushAt = 0;
  private batchInProgress: Promise<void> | null = null;
  private readonly pauses = new Set<PauseReason>();
  private assignment = new Map<string, Set<number>>();
  private stopping = false;
  private drainDeadline = Infinity;
  private readonly abort = new AbortController();
  private readonly stats: LoaderStats;

  constructor(private readonly deps: LoaderDeps) {
    const o = deps.options;
    this.log = deps.log.child({ family: deps.family });
    this.topics = deps.bindings.map((b) => topicName(deps.topicPrefix, b.topic));
    this.byTopic = new Map(deps.bindings.map((b) => [topicName(deps.topicPrefix, b.topic), b]));
    this.readers = new Map(
      deps.bindings.map((b) => [topicName(deps.topicPrefix, b.topic), readerType(b.topic)]),
    );
    this.maxBuffered = o.maxBufferedRows ?? o.batchMaxRows * 2;
    this.maxBufferedBytes = o.maxBufferedBytes ?? o.batchMaxBytes * 2;
    this.consumer = deps.kafka.consumer({
      groupId: deps.groupId,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: o.maxBytesPerPartition,
      maxWaitTimeInMs: o.fetchMaxWaitMs,
      // The sink only loads committed data of transactional producers (the processors).
      readUncommitted: false,
    });
    this.stats = {
      family: deps.family,
      recordsConsumed: 0,
      rowsInserted: 0,
      inserts: 0,
      quarantined: 0,
      retries: 0,
      flushes: 0,
      commits: 0,
      crashes: 0,
      paused: false,
      lastError: null,
    };
  }

  getStats(): LoaderStats {
    return { ...this.stats, paused: this.pauses.size > 0 };
  }

  async start(): Promise<void> {
    const c = this.consumer;
    c.on(c.events.GROUP_JOIN, (e) => {
      this.assignment = new Map(
        Object.entries(e.payload.memberAssignment).map(([t, ps]) => [t, new Set(ps)]),
      );
      this.lagAfterBatch.clear();
      void this.learnLags(e.payload.memberAssignment);
    });
    // A batch of only transaction markers never reaches eachBatch, but it is read to its end.
    c.on(c.events.END_BATCH_PROCESS, (e) => {
      if (e.payload.batchSize === 0)
        this.lagAfterBatch.set(partitionKey(e.payload.topic, e.payload.partition), e.payload.offsetLag);
    });
    c.on(c.events.CRASH, (e) => {
      this.stats.crashes++;
      // kafkajs restarts the consumer itself on retriable failures (restartOnFailure default).
      this.log.error(
        { event: SINK_EVENTS.unexpected, err: errorMessage(e.payload.error), restart: e.payload.restart },
        'consumer crashed',
      );
    });
    await c.connect();
    await c.subscribe({ topics: this.topics, fromBeginning: this.deps.options.fromBeginning });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
    const tick = Math.max(10, Math.min(250, Math.floor(this.deps.options.batchMaxMs / 4)));
    this.timer = setInterval(() => {
      if (this.buffer.length > 0 && !this.flushing) {
        const now = Date.now();
        if (now - this.oldestAt >= this.deps.options.batchMaxMs) {
          this.partialFlushAt = now;
          this.requestFlush();
        } else if (this.caughtUp()) this.requestFlush();
      }
    }, tick);
    this.timer.unref();
    this.log.info(
      { event: SINK_EVENTS.started, topics: this.topics, groupId: this.deps.groupId },
      'loader started',
    );
  }

  /** Flushes what is buffered, commits, leaves the group. Gives up inserting after drainTimeoutMs. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ event: SINK_EVENTS.draining, buffered: this.buffer.length }, 'draining');
    clearInterval(this.timer);
    this.drainDeadline = Date.now() + this.deps.options.drainTimeoutMs;
    let cut: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      cut = setTimeout(() => {
        this.abort.abort();
        resolve('timeout');
      }, this.deps.options.drainTimeoutMs);
    });
    const drain = async (): Promise<'drained'> => {
      this.pauseAll('kafka');
      await this.batchInProgress?.catch(() => undefined);
      await this.flushing;
      if (this.buffer.length > 0 || this.inflight) await this.runFlushes();
      return 'drained';
    };
    try {
      // Raced against the deadline: an insert that hangs must not keep the process from exiting.
      // Whatever is not committed by then is read again by the next consumer of the group.
      const outcome = await Promise.race([drain(), timedOut]);
      if (outcome === 'timeout')
        throw new DrainTimeout(`not drained within ${this.deps.options.drainTimeoutMs} ms`);
    } catch (err) {
      this.log.warn(
        { event: SINK_EVENTS.drainIncomplete, err: errorMessage(err) },
        'could not flush everything; uncommitted records will be read again',
      );
    } finally {
      clearTimeout(cut);
      await this.consumer.disconnect().catch(() => undefined);
      this.log.info({ event: SINK_EVENTS.stopped, stats: this.getStats() }, 'loader stopped');
    }
  }

  // ---- consuming ----------------------------------------------------------------------------

  private onBatch(payload: EachBatchPayload): Promise<void> {
    const p = this.consumeBatch(payload).catch((err: unknown) => {
      // Never let an error escape into kafkajs: it would restart the consumer and re-deliver
      // anyway. Back off instead, and read the unresolved records again.
      this.stats.lastError = errorMessage(err);
      this.log.error(
        { event: SINK_EVENTS.unexpected, err: errorMessage(err) },
        'unexpected error while consuming',
      );
      this.pauseFor('kafka', this.deps.options.retryMaxMs);
    });
    this.batchInProgress = p;
    return p;
  }

  private async consumeBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const binding = this.byTopic.get(batch.topic);
    if (!binding) return;
    let sinceYield = 0;
    let consumed = 0;
    for (const m of batch.messages) {
      if (this.stopping || !payload.isRunning() || payload.isStale() || this.pauses.size > 0) break;
      consumed++;
      const entry = await this.toEntry(batch.topic, batch.partition, m, binding);
      if (entry === 'later') {
        this.pauseFor('registry', this.deps.options.retryInitialMs * 5);
        break;
      }
      if (this.buffer.length === 0) this.oldestAt = Date.now();
      this.buffer.push(entry);
      this.bufferedRows += Math.max(1, entry.rowCount);
      this.bufferedBytes += entry.bytes;
      this.stats.recordsConsumed++;
      payload.resolveOffset(m.offset);
      sinceYield += entry.rowCount + 1;
      if (sinceYield >= YIELD_EVERY_ROWS) {
        // Decoding and mapping are CPU-bound and never wait on I/O by themselves: let the event
        // loop stream the running insert to ClickHouse meanwhile, so both proceed in parallel.
        sinceYield = 0;
        await new Promise<void>((r) => setImmediate(r));
        if (this.batchFull()) this.requestFlush();
      }
      // A few large records (quarantine records carry whole messages) fill memory before rows.
      if (this.bufferedBytes >= this.maxBufferedBytes) break;
    }
    if (consumed === batch.messages.length) {
      this.lagAfterBatch.set(partitionKey(batch.topic, batch.partition), batch.offsetLag());
    }
    await payload.heartbeat().catch(() => undefined);
    if (this.batchFull()) this.requestFlush();
    else if (this.caughtUp()) this.requestFlush();
    if (this.bufferedRows >= this.maxBuffered || this.bufferedBytes >= this.maxBufferedBytes)
      this.pauseAll('buffer');
  }

  /**
   * One batch is buffered: by rows or by bytes. A buffer bound set below the batch bound makes a
   * full buffer a batch: consumption pauses there, so waiting for more would only wait for
   * batchMaxMs.
   */
  private batchFull(): boolean {
    const o = this.deps.options;
    return (
      this.bufferedRows >= Math.min(o.batchMaxRows, this.maxBuffered) ||
      this.bufferedBytes >= Math.min(o.batchMaxBytes, this.maxBufferedBytes)
    );
  }

  /**
   * Partitions that have nothing to read never deliver a batch: their lag at the group join says
   * so. A lag of one is taken as nothing, too: after a restart, the record behind the committed
   * offset of a transactional topic is usually the commit marker (at worst a flush comes early).
   */
  private async learnLags(assignment: Record<string, number[]>): Promise<void> {
    const admin = this.deps.kafka.admin();
    try {
      await admin.connect();
      for (const [topic, partitions] of Object.entries(assignment)) {
        const lags = await groupLag(admin, this.deps.groupId, topic);
        for (const { partition, lag } of lags) {
          const k = partitionKey(topic, partition);
          if (partitions.includes(partition) && !this.lagAfterBatch.has(k))
            this.lagAfterBatch.set(k, lag <= 1 ? '0' : String(lag));
        }
      }
    } catch (err) {
      // Only latency is at stake: partial batches then wait for batchMaxMs.
      this.log.debug({ event: SINK_EVENTS.unexpected, err: errorMessage(err) }, 'could not read group lag');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * Whether to flush a partial batch now instead of when its oldest row is batchMaxMs old: every
   * partition assigned to this member was read to its end, so waiting would only add latency
   * (the end of a backfill, a quiet stream). Not within batchMaxMs of the last partial flush, so
   * that a trickle of records still makes about one small insert per batchMaxMs, as the age rule
   * alone does.
   */
  private caughtUp(): boolean {
    if (this.buffer.length === 0 || !this.deps.options.flushWhenCaughtUp) return false;
    const now = Date.now();
    if (now - this.partialFlushAt < this.deps.options.batchMaxMs) return false;
    for (const [t, ps] of this.assignment) {
      for (const p of ps) if (this.lagAfterBatch.get(partitionKey(t, p)) !== '0') return false;
    }
    this.partialFlushAt = now;
    return true;
  }

  /** Decodes and maps one record; 'later' when the registry is unreachable. */
  private async toEntry(
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
      text: null,
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
      record = await this.deps.registry.decode(m.value, this.readers.get(topic));
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
    let mapped;
    try {
      mapped = binding.map(record, { partition, offset: m.offset, timestamp: m.timestamp });
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
    entry.rows = mapped.length;
    const chunks: Buffer[] = [];
    let text = '';
    mapped.forEach((r, index) => {
      if (r.ok) {
        if (typeof r.line === 'string') text += r.line + '\n';
        else {
          // Already bytes (a quarantine row's hex): kept as it is, never copied into a string.
          if (text.length > 0) chunks.push(Buffer.from(text));
          text = '';
          chunks.push(r.line, NEWLINE);
        }
        entry.indexes?.push(index);
        entry.rowCount++;
        return;
      }
      entry.indexes ??= Array.from({ length: entry.rowCount }, (_, i) => i);
      addProblem(
        (entry.problems ??= new Map<SinkReason, RejectedRows>()),
        'SINK_INSERT_REJECTED',
        perInterval ? index : null,
        `not stored: ${r.reason}`,
        () => JSON.stringify(r.detail),
      );
    });
    if (text.length > 0) chunks.push(Buffer.from(text));
    if (entry.rowCount > 0) {
      entry.text = chunks;
      for (const c of chunks) entry.bytes += c.length;
    }
    return entry;
  }

  // ---- pausing ------------------------------------------------------------------------------

  private pauseAll(reason: PauseReason): void {
    const wasPaused = this.pauses.size > 0;
    this.pauses.add(reason);
    if (!wasPaused) {
      this.consumer.pause(this.topics.map((topic) => ({ topic })));
      this.log.info({ event: SINK_EVENTS.paused, reason }, 'consumption paused');
    }
  }

  private resume(reason: PauseReason): void {
    if (!this.pauses.delete(reason)) return;
    if (this.pauses.size === 0 && !this.stopping) {
      this.consumer.resume(this.topics.map((topic) => ({ topic })));
      this.log.info({ event: SINK_EVENTS.resumed, reason }, 'consumption resumed');
    }
  }

  private pauseFor(reason: PauseReason, ms: number): void {
    this.pauseAll(reason);
    setTimeout(() => this.resume(reason), ms).unref();
  }

  // ---- flushing -----------------------------------------------------------------------------

  private requestFlush(): void {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = this.runFlushes()
      .catch((err: unknown) => {
        if (!(err instanceof DrainTimeout)) {
          this.log.error({ event: SINK_EVENTS.unexpected, err: errorMessage(err) }, 'flush failed');
        }
      })
      .finally(() => {
        this.flushing = null;
        // The records read while this flush ran may be the last ones for now.
        if (!this.stopping && this.caughtUp()) this.requestFlush();
      });
  }

  /** Flushes until the buffer is below one batch; on an unexpected error keeps the batch and retries. */
  private async runFlushes(): Promise<void> {
    let attempt = 0;
    do {
      this.flushAgain = false;
      try {
        await this.flushOnce();
        attempt = 0;
      } catch (err) {
        if (err instanceof DrainTimeout || this.stopping) throw err;
        attempt++;
        this.stats.lastError = errorMessage(err);
        this.log.error(
          { event: SINK_EVENTS.unexpected, err: errorMessage(err), attempt },
          'flush failed; retrying the same batch',
        );
        await sleep(backoffDelay(this.policy(), attempt), this.abort.signal);
        this.flushAgain = true;
      }
    } while (
      this.flushAgain ||
      this.batchFull() ||
      (this.stopping && (this.buffer.length > 0 || this.inflight))
    );
  }

  private policy() {
    const o = this.deps.options;
    return { initialMs: o.retryInitialMs, maxMs: o.retryMaxMs, factor: o.retryFactor };
  }

  /** Takes whole records from the head of the buffer, up to one batch of rows and of bytes. */
  private take(): Entry[] {
    const o = this.deps.options;
    let rows = 0;
    let bytes = 0;
    let n = 0;
    while (
      n < this.buffer.length &&
      (n === 0 ||
        (rows + this.buffer[n]!.rowCount <= o.batchMaxRows &&
          bytes + this.buffer[n]!.bytes <= o.batchMaxBytes))
    ) {
      rows += this.buffer[n]!.rowCount;
      bytes += this.buffer[n]!.bytes;
      n++;
    }
    const taken = this.buffer.splice(0, n);
    this.bufferedRows = 0;
    this.bufferedBytes = 0;
    for (const e of this.buffer) {
      this.bufferedRows += Math.max(1, e.rowCount);
      this.bufferedBytes += e.bytes;
    }
    if (this.buffer.length > 0) this.oldestAt = Date.now();
    if (this.bufferedRows < this.maxBuffered / 2 && this.bufferedBytes < this.maxBufferedBytes / 2)
      this.resume('buffer');
    return taken;
  }

  private readonly retry: Retry = async (what, attempt) => {
    let n = 0;
    for (;;) {
      try {
        const r = await attempt();
        if (n > 0) {
          this.log.info(
            { event: SINK_EVENTS.insertRecovered, what, attempts: n + 1 },
            'ClickHouse answers again',
          );
          this.resume('clickhouse');
        }
        return r;
      } catch (err) {
        if (!(isMeterflowError(err) && err.retriable)) throw err;
        n++;
        this.stats.retries++;
        this.stats.lastError = err.message;
        if (n === 1) this.pauseAll('clickhouse');
        if (Date.now() >= this.drainDeadline || this.abort.signal.aborted)
          throw new DrainTimeout(err.message);
        const delay = backoffDelay(this.policy(), n);
        const lvl = n === 1 || n % 10 === 0 ? 'warn' : 'debug';
        sinkMetrics.insertErrors.inc({ table: this.deps.family });
        this.log[lvl](
          {
            event: SINK_EVENTS.insertRetry,
            what,
            code: err.code,
            attempt: n,
            delayMs: delay,
            err: err.message,
          },
          'retrying',
        );
        await sleep(delay, this.abort.signal);
      }
    }
  };

  private async flushOnce(): Promise<void> {
    if (!this.inflight) {
      if (this.buffer.length === 0) return;
      this.inflight = this.take();
    }
    const entries = this.inflight;
    const started = Date.now();
    const db = ident(this.deps.database);

    // Records per table, in arrival order.
    const byTable = new Map<string, Entry[]>();
    for (const entry of entries) {
      if (!entry.text) continue;
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
        this.deps.insert,
        `${db}.${table}`,
        batch,
        this.retry,
        (size, message) =>
          this.log[size === batch.count ? 'warn' : 'debug'](
            { event: SINK_EVENTS.bisect, table, size, err: message },
            'ClickHouse refused a batch for its content; bisecting',
          ),
      );
      this.stats.inserts += outcome.inserts;
      rows += batch.count - outcome.rejected.length;
      sinkMetrics.rowsInserted.inc({ table }, batch.count - outcome.rejected.length);
      sinkMetrics.insertSeconds.observe({ table }, Number(process.hrtime.bigint() - insertStarted) / 1e9);
      const perInterval = table === 'usage_intervals';
      for (const r of outcome.rejected) {
        let own = refused.get(r.ref.entry);
        if (!own) refused.set(r.ref.entry, (own = new Map<SinkReason, RejectedRows>()));
        addProblem(own, 'SINK_INSERT_REJECTED', perInterval ? r.ref.index : null, r.message, r.line);
      }
    }
    const quarantine: QuarantineRecord[] = [];
    for (const [entry, byReason] of refused) {
      for (const rejected of byReason.values()) quarantine.push(this.quarantineRecord(entry, rejected));
    }
    if (quarantine.length > 0) {
      // A record carries a whole source message: many of them are far above what one request
      // may hold. A retried flush may write a slice again; ids are stable, so copies collapse.
      for (const slice of bySize(quarantine, quarantineBytes, PRODUCE_REQUEST_BYTES)) {
        await this.retry('write quarantine records', async () => {
          try {
            await this.deps.quarantine.write(slice);
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
      this.stats.quarantined += quarantine.length;
      this.log.warn(
        {
          event: SINK_EVENTS.quarantined,
          count: quarantine.length,
          reasons: [...new Set(quarantine.map((q) => q.reason_code))],
        },
        'records quarantined',
      );
    }
    this.stats.rowsInserted += rows;
    await this.commit(entries);
    this.inflight = null;
    this.stats.flushes++;
    this.log.debug(
      { event: SINK_EVENTS.flushed, records: entries.length, rows, ms: Date.now() - started },
      'flushed',
    );
  }

  private quarantineRecord(entry: Entry, rejected: RejectedRows): QuarantineRecord {
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

  /** Commits the next offset of every partition in `entries`; a failure only means re-reading. */
  private async commit(entries: Entry[]): Promise<void> {
    const next = new Map<string, { topic: string; partition: number; offset: bigint }>();
    for (const e of entries) {
      const k = partitionKey(e.topic, e.partition);
      const o = BigInt(e.offset) + 1n;
      const cur = next.get(k);
      if (!cur || o > cur.offset) next.set(k, { topic: e.topic, partition: e.partition, offset: o });
    }
    // Only partitions this member still owns: after a rebalance the new owner re-reads them.
    const offsets = [...next.values()]
      .filter((o) => this.assignment.size === 0 || this.assignment.get(o.topic)?.has(o.partition))
      .map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset.toString() }));
    if (offsets.length === 0) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.consumer.commitOffsets(offsets);
        this.stats.commits++;
        return;
      } catch (err) {
        if (attempt >= 5) {
          this.log.warn(
            { event: SINK_EVENTS.commitFailed, err: errorMessage(err), offsets },
            'offset commit failed; these records will be read and inserted again (duplicates collapse)',
          );
          return;
        }
        await sleep(backoffDelay(this.policy(), attempt), this.abort.signal);
      }
    }
  }
}
