/**
 * One table family's consumer: the Kafka side (consume, pause, drain) composed of its parts.
 * RecordDecoder (entry.ts) turns records into rows, RowBuffer holds them and decides when a batch
 * is due, PauseGate keeps the reasons to pause, PartitionProgress what is assigned and read to
 * its end, and Flusher inserts, quarantines and commits one batch.
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
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { errorMessage } from '../../lib/errors.js';
import { groupLag } from '../../lib/kafka.js';
import type { Logger } from '../../lib/log.js';
import { readerType, type AvroRegistry } from '../../lib/registry.js';
import { retry, type BackoffPolicy } from '../../lib/retry.js';
import { topicName } from '../../schemas/topics.js';
import { RecordDecoder, type Entry } from './entry.js';
import { SINK_EVENTS } from './events.js';
import type { TopicBinding } from './families.js';
import { DrainTimeout, Flusher, type FlushStats, type QuarantineWriter } from './flusher.js';
import type { InsertFn } from './insert.js';
import type { FamilyName, SinkOptions } from './options.js';
import { PartitionProgress } from './partitions.js';
import { PauseGate } from './pause-gate.js';
import { RowBuffer } from './row-buffer.js';

export type { QuarantineWriter } from './flusher.js';

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

export interface LoaderStats extends FlushStats {
  family: FamilyName;
  recordsConsumed: number;
  /** kafkajs consumer crashes (it restarts itself on retriable ones); expected to stay 0. */
  crashes: number;
  paused: boolean;
}

/** Rows mapped between two turns of the event loop while consuming. */
const YIELD_EVERY_ROWS = 2_000;

export class FamilyLoader {
  private readonly consumer: Consumer;
  private readonly topics: string[];
  private readonly byTopic: Map<string, TopicBinding>;
  private readonly log: Logger;
  private readonly policy: BackoffPolicy;
  private readonly decoder: RecordDecoder;
  private readonly buffer: RowBuffer<Entry>;
  private readonly partitions = new PartitionProgress();
  private readonly gate: PauseGate;
  private readonly flusher: Flusher;

  /** Records taken from the buffer and not yet flushed: a failed flush repeats them. */
  private inflight: Entry[] | null = null;
  private flushing: Promise<void> | null = null;
  private flushAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private batchInProgress: Promise<void> | null = null;
  private stopping = false;
  private drainDeadline = Infinity;
  private readonly abort = new AbortController();
  private readonly stats: Omit<LoaderStats, 'paused'>;

  constructor(private readonly deps: LoaderDeps) {
    const o = deps.options;
    this.log = deps.log.child({ family: deps.family });
    this.topics = deps.bindings.map((b) => topicName(deps.topicPrefix, b.topic));
    this.byTopic = new Map(deps.bindings.map((b) => [topicName(deps.topicPrefix, b.topic), b]));
    this.policy = { initialMs: o.retryInitialMs, maxMs: o.retryMaxMs, factor: o.retryFactor };
    this.decoder = new RecordDecoder(
      deps.registry,
      new Map(deps.bindings.map((b) => [topicName(deps.topicPrefix, b.topic), readerType(b.topic)])),
      this.log,
    );
    this.buffer = new RowBuffer<Entry>({
      batchMaxRows: o.batchMaxRows,
      batchMaxBytes: o.batchMaxBytes,
      batchMaxMs: o.batchMaxMs,
      // One batch buffered while the previous one is inserted: consuming outpaces inserting, so a
      // second buffered batch only held memory (the sink passed 512 MB in test/bench/pipeline-e2e.ts).
      maxBufferedRows: o.maxBufferedRows ?? o.batchMaxRows,
      maxBufferedBytes: o.maxBufferedBytes ?? o.batchMaxBytes,
      flushWhenCaughtUp: o.flushWhenCaughtUp,
    });
    this.consumer = deps.kafka.consumer({
      groupId: deps.groupId,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: o.maxBytesPerPartition,
      maxWaitTimeInMs: o.fetchMaxWaitMs,
      // The sink only loads committed data of transactional producers (the processors).
      readUncommitted: false,
    });
    this.gate = new PauseGate({
      pause: (reason) => {
        this.consumer.pause(this.topics.map((topic) => ({ topic })));
        this.log.info({ event: SINK_EVENTS.paused, reason }, 'consumption paused');
      },
      resume: (reason) => {
        this.consumer.resume(this.topics.map((topic) => ({ topic })));
        this.log.info({ event: SINK_EVENTS.resumed, reason }, 'consumption resumed');
      },
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
      lastError: null,
    };
    this.flusher = new Flusher({
      family: deps.family,
      database: deps.database,
      insert: deps.insert,
      quarantine: deps.quarantine,
      commitOffsets: (offsets) => this.consumer.commitOffsets(offsets),
      partitions: this.partitions,
      gate: this.gate,
      policy: this.policy,
      signal: this.abort.signal,
      drainDeadline: () => this.drainDeadline,
      stats: this.stats,
      log: this.log,
    });
  }

  getStats(): LoaderStats {
    return { ...this.stats, paused: this.gate.paused };
  }

  async start(): Promise<void> {
    const c = this.consumer;
    c.on(c.events.GROUP_JOIN, (e) => {
      this.partitions.assign(e.payload.memberAssignment);
      void this.learnLags(e.payload.memberAssignment);
    });
    // A batch of only transaction markers never reaches eachBatch, but it is read to its end.
    c.on(c.events.END_BATCH_PROCESS, (e) => {
      if (e.payload.batchSize === 0)
        this.partitions.readTo(e.payload.topic, e.payload.partition, e.payload.offsetLag);
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
        if (this.buffer.aged(now)) {
          this.buffer.partialFlushed(now);
          this.requestFlush();
        } else this.flushIfCaughtUp();
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
    this.gate.close();
    this.log.info({ event: SINK_EVENTS.draining, buffered: this.buffer.length }, 'draining');
    clearInterval(this.timer);
    const { drainTimeoutMs } = this.deps.options;
    this.drainDeadline = Date.now() + drainTimeoutMs;
    let cut: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      cut = setTimeout(() => {
        // Ends every wait of the flush with a DrainTimeout, as a failure past the deadline does.
        this.abort.abort(new DrainTimeout(`not drained within ${drainTimeoutMs} ms`));
        resolve('timeout');
      }, drainTimeoutMs);
    });
    const drain = async (): Promise<'drained'> => {
      this.gate.pause('kafka');
      await this.batchInProgress?.catch(() => undefined);
      await this.flushing;
      if (this.buffer.length > 0 || this.inflight) await this.runFlushes();
      return 'drained';
    };
    try {
      // Raced against the deadline: an insert that hangs must not keep the process from exiting.
      // Whatever is not committed by then is read again by the next consumer of the group.
      const outcome = await Promise.race([drain(), timedOut]);
      if (outcome === 'timeout') throw new DrainTimeout(`not drained within ${drainTimeoutMs} ms`);
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
      this.gate.pauseFor('kafka', this.deps.options.retryMaxMs);
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
      if (this.stopping || !payload.isRunning() || payload.isStale() || this.gate.paused) break;
      consumed++;
      const entry = await this.decoder.toEntry(batch.topic, batch.partition, m, binding);
      if (entry === 'later') {
        this.gate.pauseFor('registry', this.deps.options.retryInitialMs * 5);
        break;
      }
      this.buffer.push(entry, Date.now());
      this.stats.recordsConsumed++;
      payload.resolveOffset(m.offset);
      sinceYield += entry.rowCount + 1;
      if (sinceYield >= YIELD_EVERY_ROWS) {
        // Decoding and mapping are CPU-bound and never wait on I/O by themselves: let the event
        // loop stream the running insert to ClickHouse meanwhile, so both proceed in parallel.
        sinceYield = 0;
        await new Promise<void>((r) => setImmediate(r));
        if (this.buffer.batchFull()) this.requestFlush();
      }
      // A few large records (quarantine records carry whole messages) fill memory before rows.
      if (this.buffer.overByteBound()) break;
    }
    if (consumed === batch.messages.length) {
      this.partitions.readTo(batch.topic, batch.partition, batch.offsetLag());
    }
    await payload.heartbeat().catch(() => undefined);
    if (this.buffer.batchFull()) this.requestFlush();
    else this.flushIfCaughtUp();
    if (this.buffer.overBounds()) this.gate.pause('buffer');
  }

  /**
   * Partitions that have nothing to read never deliver a batch: their lag at the group join says
   * so (PartitionProgress.learnLag).
   */
  private async learnLags(assignment: Record<string, number[]>): Promise<void> {
    const admin = this.deps.kafka.admin();
    try {
      await admin.connect();
      for (const [topic, partitions] of Object.entries(assignment)) {
        const lags = await groupLag(admin, this.deps.groupId, topic);
        for (const { partition, lag } of lags) this.partitions.learnLag(topic, partition, partitions, lag);
      }
    } catch (err) {
      // Only latency is at stake: partial batches then wait for batchMaxMs.
      this.log.debug({ event: SINK_EVENTS.unexpected, err: errorMessage(err) }, 'could not read group lag');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  // ---- flushing -----------------------------------------------------------------------------

  /** Flushes a partial batch when every assigned partition was read to its end (RowBuffer.caughtUp). */
  private flushIfCaughtUp(): void {
    const now = Date.now();
    if (!this.buffer.caughtUp(now, () => this.partitions.allReadToEnd())) return;
    this.buffer.partialFlushed(now);
    this.requestFlush();
  }

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
        if (!this.stopping) this.flushIfCaughtUp();
      });
  }

  /** Flushes until the buffer is below one batch; on an unexpected error keeps the batch and retries. */
  private async runFlushes(): Promise<void> {
    do {
      await retry(
        async () => {
          this.flushAgain = false;
          await this.flushOnce();
        },
        {
          policy: this.policy,
          signal: this.abort.signal,
          // Stopping: the drain decides what happens to what is left.
          classify: (err) => !(err instanceof DrainTimeout) && !this.stopping,
          onRetry: ({ err, attempt }) => {
            this.stats.lastError = errorMessage(err);
            this.log.error(
              { event: SINK_EVENTS.unexpected, err: errorMessage(err), attempt },
              'flush failed; retrying the same batch',
            );
          },
        },
      );
    } while (
      this.flushAgain ||
      this.buffer.batchFull() ||
      (this.stopping && (this.buffer.length > 0 || this.inflight))
    );
  }

  private async flushOnce(): Promise<void> {
    if (!this.inflight) {
      if (this.buffer.length === 0) return;
      this.inflight = this.buffer.take(Date.now());
      if (this.buffer.drainedBelowHalf()) this.gate.resume('buffer');
    }
    await this.flusher.flush(this.inflight);
    this.inflight = null;
  }
}
