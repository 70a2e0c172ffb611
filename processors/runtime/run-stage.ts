/**
 * The consume-transform-produce runtime shared by every stage.
 *
 * Per input partition batch: process each message, let the stage flush what changed, then send
 * outputs, quarantine records, changelog entries AND the input offsets in ONE Kafka transaction.
 * Downstream consumers read committed only, so a crash at any point either shows the whole
 * batch's effects or none of them. After an aborted transaction, the partition's in-memory
 * state is rebuilt from the changelog before the batch is retried, so state never runs ahead
 * of what was committed.
 *
 * A batch whose outputs pass maxTransactionBytes is committed in pieces: the stage flushes, the
 * outputs so far commit with the offset of the last message processed, and the rest of the batch
 * goes on in a new transaction. Each piece is a whole transaction (outputs, changelog, offsets),
 * so a crash between pieces keeps the committed ones and redoes the others from the changelog:
 * nothing lost, nothing counted twice. Memory and transaction size stay within the limit plus
 * one message's outputs.
 *
 * kafkajs has no per-partition rebalance hooks; assignment changes are taken from GROUP_JOIN
 * events and applied lazily: the first batch of a newly owned partition restores its state.
 */
import type { Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { errorMessage, isRetriable, MeterflowError } from '../../lib/errors.js';
import {
  bySize,
  catalogueTopic,
  COMPRESSION,
  ensureTopics,
  PRODUCE_REQUEST_BYTES,
  readToEnd,
  TRANSACTION_RETRY,
} from '../../lib/kafka.js';
import type { Logger } from '../../lib/log.js';
import { isRegistryUnavailable, type AvroRegistry, type Serde } from '../../lib/registry.js';
import { topicName } from '../../schemas/topics.js';
import type { QuarantineRecord } from '../../schemas/records.js';
import { quarantineMessage } from '../../schemas/quarantine.js';
import { connectionOfKey, RejectionGroups } from './quarantine.js';
import type { InMessage, OutMessage, Output, Rejection, Stage } from './stage.js';
import { stageMetrics } from '../../lib/metrics.js';

export interface RunStageOptions {
  /** A message whose processing fails with a retriable error this many times is quarantined. */
  maxAttempts?: number;
  /** Consumer session timeout (ms). */
  sessionTimeoutMs?: number;
  /** Bytes fetched per partition per request. */
  maxBytesPerPartition?: number;
  /** A fetch waits for this many bytes (or fetchMaxWaitMs): fewer, larger batches and transactions. */
  fetchMinBytes?: number;
  /** ms a fetch waits for fetchMinBytes: the latency a quiet stream gains per stage. */
  fetchMaxWaitMs?: number;
  /** Uncompressed bytes per produce request inside a transaction. */
  maxRequestBytes?: number;
  /** Input partitions processed (and committed) at the same time. */
  concurrentPartitions?: number;
  /**
   * Encoded bytes of outputs (values and keys) after which a batch commits what it has processed
   * and goes on in a new transaction: bounds memory and transaction size per partition.
   * Default: the configuration's processors.maxTransactionBytes (MF_MAX_TRANSACTION_BYTES), else
   * 16 MiB.
   */
  maxTransactionBytes?: number;
  now?: () => number;
}

const DEFAULTS = {
  maxAttempts: 5,
  sessionTimeoutMs: 30_000,
  // 1 MiB: records arrive compressed and kafkajs keeps every partition's fetched batch, decompressed,
  // until it is processed. raw.usage is JSON that gzip shrinks ~8x: 4 MiB per partition held
  // ~130 MB of batches with 6 partitions (test/bench/pipeline-e2e.ts).
  maxBytesPerPartition: 1024 * 1024,
  // While a backfill streams in, a fetch that returns at the first record gives batches of one or
  // two messages, each a transaction: waiting up to 250 ms for 256 KiB cut the transactions of
  // test/bench/pipeline-e2e.ts from 353 to 120 (usage) and Kafka's CPU by 40%.
  fetchMinBytes: 256 * 1024,
  fetchMaxWaitMs: 250,
  concurrentPartitions: 4,
  maxRequestBytes: PRODUCE_REQUEST_BYTES,
  /** 16 MiB: far above a normal batch's outputs, far below the 512 MB a process may use. */
  maxTransactionBytes: 16 * 1024 * 1024,
} as const;

export interface RunningStage {
  readonly stage: Stage;
  /** Resolves once the consumer joined its group and began fetching. */
  readonly ready: Promise<void>;
  /** Resolves (never rejects) if the consumer stops for good on its own: the process should exit. */
  readonly failed: Promise<Error>;
  stop(): Promise<void>;
}

interface Deps {
  kafka: Kafka;
  config: Config;
  registry: AvroRegistry;
  log: Logger;
}

/** What one transaction will carry: outputs, changelog entries and quarantine records. */
class BatchOutput implements Output {
  readonly messages: OutMessage[] = [];
  rejected = 0;
  /** Encoded bytes of `messages` (values and keys). */
  bytes = 0;
  private readonly groups = new RejectionGroups();
  constructor(
    private readonly stageName: string,
    private readonly quarantineTopic: string,
    private readonly quarantineSerde: Serde<QuarantineRecord>,
    private readonly changelogTopic: string | null,
    private readonly now: () => number,
  ) {}

  send(message: OutMessage): void {
    this.push(message);
  }

  /** Collected until `settle`: one record per (message, reason), whatever the number of rows. */
  reject(source: InMessage, rejection: Rejection): void {
    this.groups.add(source, rejection);
  }

  changelog(partition: number, key: string, value: Buffer | null): void {
    if (!this.changelogTopic) throw new Error(`stage ${this.stageName} has no changelog topic`);
    this.push({ topic: this.changelogTopic, key, value, partition });
  }

  /** Turns the rejections collected so far into quarantine records (after each message). */
  settle(): void {
    if (this.groups.size === 0) return;
    for (const record of this.groups.take(this.stageName, this.now())) {
      this.rejected++;
      stageMetrics.quarantined.inc({ stage: this.stageName, reason: record.reason_code });
      this.push({
        topic: this.quarantineTopic,
        ...quarantineMessage(record, this.quarantineSerde.encode(record)),
      });
    }
  }

  private push(message: OutMessage): void {
    this.messages.push(message);
    this.bytes += (message.value?.length ?? 0) + (message.key?.length ?? 0);
  }
}

function headerText(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (Array.isArray(v)) return v.map(headerText).join(',');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function toInMessage(
  topic: string,
  partition: number,
  m: {
    offset: string;
    key: Buffer | null;
    value: Buffer | null;
    headers?: Record<string, unknown>;
    timestamp: string;
  },
): InMessage {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) headers[k] = headerText(v);
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ? m.key.toString('utf8') : null,
    value: m.value,
    headers,
    timestamp: m.timestamp,
  };
}

/** Encoded bytes of an output in a produce request (value, key and record overhead). */
const requestBytes = (m: OutMessage): number => (m.value?.length ?? 0) + (m.key?.length ?? 0) + 64;

function groupByTopic(messages: OutMessage[]): { topic: string; messages: Message[] }[] {
  const byTopic = new Map<string, Message[]>();
  for (const m of messages) {
    let list = byTopic.get(m.topic);
    if (!list) byTopic.set(m.topic, (list = []));
    list.push({
      key: m.key,
      value: m.value,
      ...(m.partition !== undefined ? { partition: m.partition } : {}),
      ...(m.headers ? { headers: m.headers } : {}),
    });
  }
  return [...byTopic].map(([topic, msgs]) => ({ topic, messages: msgs }));
}

export async function runStage(
  stage: Stage,
  deps: Deps,
  options: RunStageOptions = {},
): Promise<RunningStage> {
  const { kafka, config, registry, log } = deps;
  const opts = {
    ...DEFAULTS,
    // The configured limit (MF_MAX_TRANSACTION_BYTES) unless the caller gives its own.
    ...(config.processors.maxTransactionBytes !== undefined
      ? { maxTransactionBytes: config.processors.maxTransactionBytes }
      : {}),
    ...options,
  };
  const now = options.now ?? Date.now;
  const slog = log.child({ stage: stage.name });
  const prefix = config.kafka.topicPrefix;
  const quarantineTopic = topicName(prefix, 'quarantine');

  // Topics: outputs, quarantine, and a changelog partitioned exactly like the input.
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, config, [
      { name: stage.inputTopic, cleanup: 'delete' },
      // The catalogue's retention and size limit: a record carries a whole source message.
      catalogueTopic(config, 'quarantine'),
      ...stage.outputTopics,
    ]);
    if (stage.changelogTopic) {
      const meta = await admin.fetchTopicMetadata({ topics: [stage.inputTopic] });
      const partitions = meta.topics[0]?.partitions.length ?? config.kafka.partitions;
      await ensureTopics(admin, config, [{ name: stage.changelogTopic, cleanup: 'compact', partitions }]);
    }
  } finally {
    await admin.disconnect();
  }

  const quarantineSerde = await registry.registerTopic(prefix, 'quarantine');
  await stage.setup();

  // One transactional producer per input partition, with an id derived from the partition
  // (not from the process): whichever instance owns partition p after a rebalance or a restart
  // uses the same transactional id, which fences the previous owner's unfinished transaction.
  // It also lets the partitions of one instance commit concurrently.
  const producers = new Map<number, Promise<Producer>>();
  const producerFor = (partition: number): Promise<Producer> => {
    let p = producers.get(partition);
    if (!p) {
      const producer = kafka.producer({
        transactionalId: `${stage.groupId}-${stage.inputTopic}-${partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        retry: TRANSACTION_RETRY,
      });
      // An empty transaction initialises the transactional id (InitProducerId), which fences
      // the previous owner and aborts whatever it left open.
      p = producer
        .connect()
        .then(() => producer.transaction())
        .then((t) => t.abort())
        .then(() => producer);
      p.catch(() => producers.delete(partition));
      producers.set(partition, p);
    }
    return p;
  };
  const consumer: Consumer = kafka.consumer({
    groupId: stage.groupId,
    readUncommitted: false,
    allowAutoTopicCreation: false,
    sessionTimeout: opts.sessionTimeoutMs,
    maxBytesPerPartition: opts.maxBytesPerPartition,
    minBytes: opts.fetchMinBytes,
    maxWaitTimeInMs: opts.fetchMaxWaitMs,
  });
  await consumer.connect();

  /** Partitions whose state is current in memory. */
  const restored = new Set<number>();
  let assigned = new Set<number>();
  const attempts = new Map<string, number>();

  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const next = new Set(e.payload.memberAssignment[stage.inputTopic] ?? []);
    for (const p of restored) {
      if (!next.has(p)) {
        stage.drop(p);
        restored.delete(p);
      }
    }
    assigned = next;
    slog.info({ partitions: [...next] }, 'partitions assigned');
    markReady();
  });
  let markFailed: (err: Error) => void = () => undefined;
  const failed = new Promise<Error>((resolve) => (markFailed = resolve));
  consumer.on(consumer.events.CRASH, (e) => {
    slog.error({ err: errorMessage(e.payload.error), restart: e.payload.restart }, 'consumer crashed');
    // kafkajs does not restart after an error it deems final: the stage would sit idle while the
    // process looks alive. Report it, so the process exits and its supervisor starts it again.
    if (!e.payload.restart) markFailed(e.payload.error);
  });

  async function restorePartition(partition: number): Promise<void> {
    stage.drop(partition);
    if (stage.changelogTopic) {
      const started = Date.now();
      const n = await readToEnd(
        kafka,
        stage.changelogTopic,
        (m) => {
          if (m.key) stage.restore(m.partition, m.key.toString('utf8'), m.value);
        },
        { partitions: [partition] },
      );
      slog.info({ partition, records: n, ms: Date.now() - started }, 'state restored from changelog');
    }
    restored.add(partition);
  }

  /**
   * kafkajs can hand out a new batch of a partition while a stale one (from before a rebalance)
   * is still running; two batches of one partition must never touch its state at once.
   */
  const running = new Map<number, Promise<void>>();
  function oneAtATime(partition: number, work: () => Promise<void>): Promise<void> {
    const next = (running.get(partition) ?? Promise.resolve()).catch(() => undefined).then(work);
    running.set(partition, next);
    return next;
  }

  await consumer.subscribe({ topic: stage.inputTopic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    // Partitions are independent (own state, own transactional producer): commits overlap.
    partitionsConsumedConcurrently: opts.concurrentPartitions,
    eachBatch: (payload) => oneAtATime(payload.batch.partition, () => processBatch(payload)),
  });

  async function processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (batch.messages.length === 0 || !payload.isRunning() || payload.isStale()) return;
    const partition = batch.partition;
    if (!restored.has(partition)) {
      // The partition's transactional producer first: initialising it aborts a transaction the
      // previous owner left open, so the restore below reads exactly what was committed.
      await producerFor(partition);
      await restorePartition(partition);
    }
    void assigned;

    const newOutput = () =>
      new BatchOutput(stage.name, quarantineTopic, quarantineSerde, stage.changelogTopic, now);
    let out = newOutput();
    let started = process.hrtime.bigint();
    let inPiece = 0;
    const last = batch.messages.length - 1;
    for (const [i, raw] of batch.messages.entries()) {
      const msg = toInMessage(batch.topic, partition, raw);
      try {
        await stage.process(msg, out);
      } catch (err) {
        const id = `${partition}:${msg.offset}`;
        // A registry that cannot answer (down, refusing our credentials) says nothing about the
        // record: such failures never count towards quarantining it, the batch waits instead.
        const outage = isRegistryUnavailable(err);
        const n = (attempts.get(id) ?? 0) + (outage ? 0 : 1);
        if (outage || (isRetriable(err) && n < opts.maxAttempts)) {
          attempts.set(id, n);
          if (outage) stageMetrics.registryWaits.inc({ stage: stage.name });
          // State may hold part of this batch: rebuild it before the retry.
          restored.delete(partition);
          throw err;
        }
        attempts.delete(id);
        slog.warn({ partition, offset: msg.offset, err: errorMessage(err) }, 'poison record quarantined');
        const code = err instanceof MeterflowError && !err.retriable ? err.code : 'RT_POISON_RECORD';
        out.reject(msg, {
          code,
          message: `${stage.name} failed on this record${n > 1 ? ` ${n} times` : ''}: ${errorMessage(err)}`,
          connectionId: connectionOfKey(msg.key),
          recordIndex: null,
          detail: null,
        });
      }
      out.settle();
      inPiece++;
      // A piece ends at the batch's end, or once its outputs pass the byte limit.
      if (i < last && out.bytes < opts.maxTransactionBytes) continue;
      await commitPiece(payload, out, raw.offset, inPiece, started);
      if (i < last) {
        slog.debug(
          { partition, offset: raw.offset, bytes: out.bytes },
          'transaction byte limit: batch split',
        );
        // After a rebalance or on stop, the rest of the batch is the next owner's to read.
        if (!payload.isRunning() || payload.isStale()) return;
        out = newOutput();
        started = process.hrtime.bigint();
        inPiece = 0;
      }
    }
  }

  /**
   * Lets the stage flush, then commits the outputs and the offset after `lastOffset` in one
   * transaction. On failure the partition's state is rebuilt from the changelog before the
   * uncommitted messages are read again.
   */
  async function commitPiece(
    payload: EachBatchPayload,
    out: BatchOutput,
    lastOffset: string,
    messages: number,
    started: bigint,
  ): Promise<void> {
    const { batch } = payload;
    const partition = batch.partition;
    stage.flush(partition, out);
    out.settle();
    const processedAt = process.hrtime.bigint();
    const transaction = await (await producerFor(partition)).transaction();
    try {
      // One large flush goes out as several requests, each below the topics' size limit.
      for (const slice of bySize(out.messages, requestBytes, opts.maxRequestBytes)) {
        await transaction.sendBatch({ topicMessages: groupByTopic(slice), compression: COMPRESSION });
      }
      await transaction.sendOffsets({
        consumerGroupId: stage.groupId,
        topics: [
          { topic: batch.topic, partitions: [{ partition, offset: (BigInt(lastOffset) + 1n).toString() }] },
        ],
      });
      await transaction.commit();
    } catch (err) {
      await transaction.abort().catch(() => undefined);
      restored.delete(partition);
      // A producer whose transaction failed may be fenced (another member initialised the same
      // transactional id after a rebalance) or in an error state: never reuse it. The next batch
      // of this partition, if it is still ours, starts a new one and restores the state.
      const retired = producers.get(partition);
      producers.delete(partition);
      void retired?.then((p) => p.disconnect()).catch(() => undefined);
      slog.warn({ partition, err: errorMessage(err) }, 'transaction aborted; state will be rebuilt');
      // Retriable, and without the client's error as cause: kafkajs would take a fenced
      // producer's error as final and never restart the consumer.
      throw new MeterflowError(
        'RT_TRANSACTION_ABORTED',
        `${stage.name}: the transaction of partition ${partition} was aborted: ${errorMessage(err)}`,
        { retriable: true, context: { stage: stage.name, partition } },
      );
    }
    payload.resolveOffset(lastOffset);
    await payload.heartbeat();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    slog.debug(
      {
        partition,
        messages,
        outputs: out.messages.length,
        bytes: out.bytes,
        processMs: Number(processedAt - started) / 1e6,
        commitMs: ms - Number(processedAt - started) / 1e6,
      },
      'batch committed',
    );
    stageMetrics.recordsIn.inc({ stage: stage.name }, messages);
    stageMetrics.recordsOut.inc({ stage: stage.name }, out.messages.length);
    stageMetrics.batchSeconds.observe({ stage: stage.name }, ms / 1000);
    stageMetrics.consumerLag.set(
      { group: stage.groupId, topic: batch.topic, partition: String(partition) },
      Number(batch.offsetLag()),
    );
  }

  let stopped = false;
  return {
    stage,
    ready,
    failed,
    async stop() {
      if (stopped) return;
      stopped = true;
      // disconnect() waits for the batch in flight to finish (and its transaction to commit).
      await consumer
        .disconnect()
        .catch((e: unknown) => slog.warn({ err: errorMessage(e) }, 'consumer disconnect'));
      for (const p of producers.values()) {
        await p
          .then((producer) => producer.disconnect())
          .catch((e: unknown) => slog.warn({ err: errorMessage(e) }, 'producer disconnect'));
      }
      await stage.close?.();
      slog.info('stopped');
    },
  };
}
