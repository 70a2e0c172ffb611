/**
 * Kafka client setup from configuration, topic provisioning from the catalogue, and small
 * helpers that kafkajs lacks (reading a topic to its end, group lag).
 */
import { promisify } from 'node:util';
import { gzip, unzip } from 'node:zlib';
import kafkajs, {
  CompressionTypes,
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type ITopicConfig,
  type SASLOptions,
} from 'kafkajs';
import type { Config } from './config.js';
import { errorMessage, MeterflowError } from './errors.js';
import { retry } from './retry.js';
import { TOPICS, topicName, type TopicId, type TopicSpec } from '../schemas/topics.js';

export { CompressionTypes };

export function createKafka(config: Config, clientIdSuffix = '', retries = 8): Kafka {
  const k = config.kafka;
  const sasl: SASLOptions | undefined = k.sasl
    ? { mechanism: k.sasl.mechanism, username: k.sasl.username, password: k.sasl.password }
    : undefined;
  return new Kafka({
    clientId: k.clientId + clientIdSuffix,
    brokers: k.brokers,
    ssl: k.ssl,
    ...(sasl ? { sasl } : {}),
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    // kafkajs' own logger is noisy and unstructured; our stages log what matters.
    logLevel: logLevel.NOTHING,
    retry: { retries, initialRetryTime: 200, maxRetryTime: 5_000 },
  });
}

/** Default codec for produced batches. GZIP is built into kafkajs; no native addon needed. */
export const COMPRESSION = CompressionTypes.GZIP;

/**
 * Retries of a transactional producer that commits transaction after transaction. The broker
 * answers CONCURRENT_TRANSACTIONS to the first request of a transaction while it still writes the
 * previous one's commit markers (a few ms), and kafkajs waits its first backoff before asking
 * again: 200 ms with the client's settings, most of a small transaction's time
 * (test/bench/kafka-clients.ts). 20 ms first and more tries: a broker that is really away is
 * still given about 25 s in all (21 s before).
 */
export const TRANSACTION_RETRY = { initialRetryTime: 20, retries: 12 } as const;

/**
 * Uncompressed bytes per produce request; well below the broker's 1 MiB default. kafkajs has no
 * request size limit of its own: it sends all of a partition's messages in one record batch, and
 * brokers refuse a batch over the topic's max.message.bytes, so writers slice with `bySize`.
 */
export const PRODUCE_REQUEST_BYTES = 768 * 1024;

/**
 * Consecutive slices of `items` of at most `maxBytes` each by `size`; an item larger than that
 * travels alone (the topic's max.message.bytes decides whether it fits).
 */
export function* bySize<T>(items: Iterable<T>, size: (item: T) => number, maxBytes: number): Generator<T[]> {
  let slice: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (slice.length > 0 && bytes + n > maxBytes) {
      yield slice;
      slice = [];
      bytes = 0;
    }
    slice.push(item);
    bytes += n;
  }
  if (slice.length > 0) yield slice;
}

const gzipAsync = promisify(gzip);
const unzipAsync = promisify(unzip);
/**
 * kafkajs compresses at zlib's default level 6. Level 1 costs a fraction of the CPU for record
 * batches of JSON and Avro (measured in test/bench/processors.ts) and any consumer reads it.
 */
export const GZIP_LEVEL = 1;
// kafkajs is CommonJS and Node's ESM loader does not see this export by name.
kafkajs.CompressionCodecs[CompressionTypes.GZIP] = () => ({
  compress: (encoder: { buffer: Buffer }) => gzipAsync(encoder.buffer, { level: GZIP_LEVEL }),
  decompress: (buffer: Buffer) => unzipAsync(buffer),
});

export interface TopicRequest {
  name: string;
  cleanup: 'compact' | 'delete';
  retentionMs?: number;
  partitions?: number;
  /**
   * max.message.bytes of the topic (else the broker's, 1 MiB by default). Raised on an existing
   * topic whose limit is lower: records that need it would otherwise be refused for good.
   */
  maxMessageBytes?: number;
}

/** The request for a catalogue topic under the configured prefix. */
export function catalogueTopic(config: Config, id: TopicId): TopicRequest {
  const spec: TopicSpec = TOPICS[id];
  return {
    name: topicName(config.kafka.topicPrefix, id),
    cleanup: spec.cleanup,
    retentionMs: spec.retentionMs,
    ...(spec.maxMessageBytes !== undefined ? { maxMessageBytes: spec.maxMessageBytes } : {}),
  };
}

/**
 * Creates missing topics. Existing ones are left as they are, except that a max.message.bytes
 * below the requested one is raised.
 */
export async function ensureTopics(admin: Admin, config: Config, requests: TopicRequest[]): Promise<void> {
  let existing: string[];
  try {
    existing = await admin.listTopics();
  } catch (cause) {
    throw new MeterflowError(
      'KAFKA_UNREACHABLE',
      `Kafka at ${config.kafka.brokers.join(',')} did not answer: ${errorMessage(cause)}`,
      {
        cause,
        retriable: true,
        context: { brokers: config.kafka.brokers },
      },
    );
  }
  for (const r of requests) {
    if (r.maxMessageBytes === undefined || !existing.includes(r.name)) continue;
    try {
      await raiseMaxMessageBytes(admin, r.name, r.maxMessageBytes);
    } catch (cause) {
      throw new MeterflowError(
        'KAFKA_TOPIC_SETUP',
        `cannot raise max.message.bytes of topic ${r.name} to ${r.maxMessageBytes}: ${errorMessage(cause)}; set it on the topic (kafka-configs --alter --add-config max.message.bytes=${r.maxMessageBytes})`,
        { cause, context: { topic: r.name, maxMessageBytes: r.maxMessageBytes } },
      );
    }
  }
  const missing = requests.filter((r) => !existing.includes(r.name));
  if (missing.length === 0) return;
  const topics: ITopicConfig[] = missing.map((r) => ({
    topic: r.name,
    numPartitions: r.partitions ?? config.kafka.partitions,
    replicationFactor: config.kafka.replicationFactor,
    configEntries: [
      { name: 'cleanup.policy', value: r.cleanup },
      { name: 'retention.ms', value: String(r.retentionMs ?? -1) },
      ...(r.cleanup === 'compact' ? [{ name: 'min.cleanable.dirty.ratio', value: '0.1' }] : []),
      ...(r.maxMessageBytes !== undefined
        ? [{ name: 'max.message.bytes', value: String(r.maxMessageBytes) }]
        : []),
    ],
  }));
  let failure: unknown;
  try {
    await admin.createTopics({ topics, waitForLeaders: false });
  } catch (cause) {
    // A concurrent creator may have won the race; that is fine if the topics now exist.
    failure = cause;
  }
  await awaitLeaders(
    admin,
    missing.map((r) => r.name),
    failure,
  );
}

/**
 * Raises an existing topic's max.message.bytes to `bytes` when it is lower. kafkajs only has the
 * non-incremental AlterConfigs, which replaces every setting of the topic: the topic's own
 * settings (retention, cleanup policy...) are sent along unchanged.
 */
async function raiseMaxMessageBytes(admin: Admin, topic: string, bytes: number): Promise<void> {
  const described = await admin.describeConfigs({
    resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }],
    includeSynonyms: false,
  });
  const entries = described.resources[0]?.configEntries ?? [];
  const current = entries.find((e) => e.configName === 'max.message.bytes');
  if (current && Number(current.configValue) >= bytes) return;
  const own = entries.filter(
    (e) => e.configSource === kafkajs.ConfigSource.TOPIC_CONFIG && e.configName !== 'max.message.bytes',
  );
  await admin.alterConfigs({
    validateOnly: false,
    resources: [
      {
        type: kafkajs.ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: [
          ...own.map((e) => ({ name: e.configName, value: e.configValue })),
          { name: 'max.message.bytes', value: String(bytes) },
        ],
      },
    ],
  });
}

/**
 * Waits (bounded) until every partition of the topics has a leader: a broker under load
 * answers "does not host this topic-partition" for a moment after a create.
 */
async function awaitLeaders(
  admin: Admin,
  names: string[],
  failure: unknown,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = failure;
  while (Date.now() < deadline) {
    try {
      const listed = await admin.listTopics();
      if (names.every((n) => listed.includes(n))) {
        const meta = await admin.fetchTopicMetadata({ topics: names });
        if (meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)))
          return;
      }
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new MeterflowError(
    'KAFKA_TOPIC_SETUP',
    `cannot create topics ${names.join(', ')}: ${last === undefined ? 'no leader elected in time' : errorMessage(last)}`,
    {
      cause: last,
      context: { topics: names },
    },
  );
}

/** Creates every catalogue topic under the configured prefix. */
export async function ensureCatalogueTopics(
  admin: Admin,
  config: Config,
  ids: TopicId[] = Object.keys(TOPICS) as TopicId[],
): Promise<void> {
  await ensureTopics(
    admin,
    config,
    ids.map((id) => catalogueTopic(config, id)),
  );
}

/**
 * Offsets of every partition of a topic. Right after a topic is created, or after a leader
 * moved, a broker can answer NOT_LEADER / UNKNOWN_TOPIC_OR_PARTITION once; kafkajs' admin does
 * not retry that itself, so refresh the metadata and ask again (bounded).
 */
export async function topicOffsets(
  admin: Admin,
  topic: string,
  attempts = 10,
): ReturnType<Admin['fetchTopicOffsets']> {
  return retry(() => admin.fetchTopicOffsets(topic), {
    policy: { initialMs: 100, maxMs: 1_000 },
    maxAttempts: attempts,
    classify: isLeadershipMoment,
    onRetry: () =>
      admin.fetchTopicMetadata({ topics: [topic] }).then(
        () => undefined,
        () => undefined,
      ),
  });
}

/** A broker's passing "not the leader / does not host it yet" answer, not a real failure. */
function isLeadershipMoment(err: unknown): boolean {
  const type = (err as { type?: string }).type ?? '';
  return (
    /NOT_LEADER|UNKNOWN_TOPIC_OR_PARTITION|LEADER_NOT_AVAILABLE|REPLICA_NOT_AVAILABLE/.test(type) ||
    /not the leader|does not host|leader not available/i.test(errorMessage(err))
  );
}

/** High watermarks of every partition of a topic. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, string>> {
  const offsets = await topicOffsets(admin, topic);
  return new Map(offsets.map((o) => [o.partition, o.high]));
}

/** Lag of a consumer group on a topic: sum over partitions of (high watermark - committed). */
export async function groupLag(
  admin: Admin,
  groupId: string,
  topic: string,
): Promise<{ partition: number; lag: number }[]> {
  const [high, committed] = await Promise.all([
    topicOffsets(admin, topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const committedBy = new Map<number, string>();
  for (const t of committed) for (const p of t.partitions) committedBy.set(p.partition, p.offset);
  return high.map((h) => {
    const c = Number(committedBy.get(h.partition) ?? '-1');
    const hi = Number(h.high);
    const low = Number(h.low);
    return { partition: h.partition, lag: c < 0 ? hi - low : Math.max(0, hi - c) };
  });
}

/**
 * Settles with `p`, or rejects with the signal's reason as soon as it aborts, so that no await
 * (a connect, a group join, a lookup) outlives a deadline. `p` itself is not cancelled.
 */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(errorMessage(e)));
      },
    );
  });
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(errorMessage(r));
}

/**
 * A partition whose position stays short of its stop offset while the broker keeps answering
 * fetches has nothing readable left (its tail was removed by compaction): it is done after this
 * many answered fetches and this long without progress. Never the normal way to finish.
 */
const TAIL_FETCHES = 10;
const TAIL_MS = 3_000;

export interface ReadToEndOptions {
  /** Only these partitions (default all). */
  partitions?: number[];
  /** Safety net: give up with RT_STATE_RESTORE after this long (ms), setup included; default 120 s. */
  timeoutMs?: number;
  /** Aborts the read, setup included, rejecting with the signal's reason (a command deadline). */
  signal?: AbortSignal;
}

export interface ReadMessage {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: string;
}

interface Range {
  from: bigint;
  /** Exclusive: the last stable offset when the read began. */
  to: bigint;
}

/**
 * Reads the given offset ranges of a topic's partitions with read_committed isolation, calling
 * `onMessage` for each record in partition order; a partition is finished when its position
 * reaches the end of its range, or when `onMessage` returns true for one of its records.
 *
 * kafkajs has no manual assignment: a throw-away consumer group that commits nothing does the
 * reading (it seeks to each range's start when it joins), every partition outside the ranges is
 * paused, and the group is deleted afterwards. The position counts every offset the broker
 * returned, transaction markers and aborted records included (kafkajs reports batches of only
 * those through END_BATCH_PROCESS), so a partition ending in markers finishes as soon as they
 * are fetched.
 */
async function readRanges(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  /** Every partition of the topic: those outside `ranges` are paused. */
  partitions: number[],
  ranges: Map<number, Range>,
  onMessage: (m: ReadMessage) => boolean | void | Promise<boolean | void>,
  deadline: AbortSignal,
): Promise<number> {
  const remaining = new Map([...ranges].filter(([, r]) => r.to > r.from));
  if (remaining.size === 0) return 0;
  const groupId = `meterflow-reader-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  let consumer: Consumer | undefined;
  let closed = false;
  let count = 0;
  try {
    // Short fetch waits: a partition whose next offsets are only markers comes back quickly.
    const c = kafka.consumer({
      groupId,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
    });
    consumer = c;
    const done = new Promise<void>((resolve, reject) => {
      const fail = (e: unknown): void => reject(e instanceof Error ? e : new Error(errorMessage(e)));
      deadline.addEventListener('abort', () => fail(abortReason(deadline)), { once: true });
      const finish = (partition: number): void => {
        if (!remaining.delete(partition)) return;
        c.pause([{ topic, partitions: [partition] }]);
        if (remaining.size === 0) resolve();
      };
      /** Answered fetches and the time of the last progress of any unfinished partition. */
      let fetches = 0;
      let progressAt = Date.now();
      const progress = (partition: number, lastOffset: string): void => {
        const r = remaining.get(partition);
        if (!r) return;
        fetches = 0;
        progressAt = Date.now();
        if (BigInt(lastOffset) + 1n >= r.to) finish(partition);
      };
      c.on(c.events.GROUP_JOIN, () => {
        fetches = 0;
        progressAt = Date.now();
        const others = partitions.filter((p) => !remaining.has(p));
        if (others.length > 0) c.pause([{ topic, partitions: others }]);
        // Before the first fetch of the generation; a batch fetched earlier is skipped below.
        for (const [partition, r] of remaining)
          if (r.from > 0n) c.seek({ topic, partition, offset: r.from.toString() });
      });
      c.on(c.events.FETCH, () => {
        if (++fetches >= TAIL_FETCHES && Date.now() - progressAt >= TAIL_MS)
          for (const p of [...remaining.keys()]) finish(p);
      });
      // Batches of only transaction markers or aborted records, which eachBatch never sees.
      c.on(c.events.END_BATCH_PROCESS, (e) => progress(e.payload.partition, e.payload.lastOffset));
      c.on(c.events.CRASH, (e) => {
        if (!e.payload.restart) fail(e.payload.error);
      });
      // A deadline can pass while a step is pending: each step checks that the read is still on,
      // so that nothing connects or joins after the cleanup below ran.
      const start = async (): Promise<void> => {
        await c.connect();
        if (closed) return;
        await c.subscribe({ topic, fromBeginning: true });
        if (closed) return;
        await c.run({
          autoCommit: false,
          eachBatch: async (payload) => {
            const { batch } = payload;
            const r = remaining.get(batch.partition);
            if (!r) return;
            for (const m of batch.messages) {
              if (BigInt(m.offset) < r.from) continue;
              if (BigInt(m.offset) >= r.to) break;
              const headers: Record<string, string> = {};
              for (const [k, v] of Object.entries(m.headers ?? {}))
                if (v !== undefined) headers[k] = String(v);
              let stop: boolean | void;
              try {
                stop = await onMessage({
                  partition: batch.partition,
                  offset: m.offset,
                  key: m.key,
                  value: m.value,
                  headers,
                  timestamp: m.timestamp,
                });
              } catch (err) {
                // Handing the error to kafkajs would make it retry the batch: report it instead.
                fail(err);
                return;
              }
              count++;
              if (stop === true) {
                finish(batch.partition);
                return;
              }
            }
            progress(batch.partition, batch.lastOffset());
            await payload.heartbeat();
          },
        });
      };
      const started = start();
      abortable(started, deadline).catch(fail);
      // Disconnect again once a step that was pending at cleanup time settles.
      void started
        .then(
          () => (closed ? c.disconnect() : undefined),
          () => c.disconnect(),
        )
        .catch(() => undefined);
    });
    await done;
    return count;
  } finally {
    closed = true;
    // Cleanup is bounded too, and not awaited after a deadline: a broker that stopped answering
    // must not keep the caller waiting.
    const cleanup = (async () => {
      await consumer?.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
    })();
    if (!deadline.aborted) await Promise.race([cleanup, new Promise((r) => setTimeout(r, 5_000).unref())]);
  }
}

/** A signal that aborts with `signal` or after `timeoutMs` (RT_STATE_RESTORE), whichever first. */
function deadlineOf(
  topic: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): { deadline: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  // Infinity: the caller's signal is the only deadline.
  const timer = Number.isFinite(timeoutMs)
    ? setTimeout(
        () =>
          controller.abort(
            new MeterflowError(
              'RT_STATE_RESTORE',
              `reading ${topic} to its end took longer than ${timeoutMs} ms`,
              {
                retriable: true,
                context: { topic },
              },
            ),
          ),
        timeoutMs,
      )
    : undefined;
  const onAbort = (): void => controller.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return {
    deadline: controller.signal,
    clear: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Reads a topic from the beginning up to each partition's last stable offset taken at the start
 * (the end as a read_committed consumer sees it: kafkajs lists offsets with that isolation),
 * calling `onMessage` for each record in partition order, and returns as soon as every
 * partition's position reached it. The time taken follows what is read: an empty partition
 * costs one offsets request, a small one a group join and a fetch or two. Used to restore state
 * from compacted topics and to inspect topics.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  onMessage: (m: ReadMessage) => void | Promise<void>,
  options: ReadToEndOptions = {},
): Promise<number> {
  const { deadline, clear } = deadlineOf(topic, options.timeoutMs ?? 120_000, options.signal);
  const admin = kafka.admin();
  const connecting = admin.connect();
  try {
    await abortable(connecting, deadline);
    const offsets = await abortable(topicOffsets(admin, topic), deadline);
    const ranges = new Map<number, Range>();
    for (const o of offsets) {
      if (options.partitions && !options.partitions.includes(o.partition)) continue;
      ranges.set(o.partition, { from: BigInt(o.low), to: BigInt(o.high) });
    }
    return await readRanges(
      kafka,
      admin,
      topic,
      offsets.map((o) => o.partition),
      ranges,
      async (m) => {
        await onMessage(m);
      },
      deadline,
    );
  } finally {
    clear();
    // A connect still pending after a deadline is closed whenever it settles.
    const closing = connecting.then(
      () => admin.disconnect(),
      () => undefined,
    );
    if (!deadline.aborted) await Promise.race([closing, new Promise((r) => setTimeout(r, 2_000).unref())]);
  }
}

export interface PartitionLag {
  partition: number;
  /** Records from the group's first unread record to the last stable offset. */
  lag: number;
}

/**
 * Lag of a consumer group on a topic that transaction markers do not inflate. A group reading
 * transactional output commits the offset after its last record, which is the commit marker: by
 * offsets it stays one behind per partition for ever. Where the committed offset is short of the
 * last stable offset, the records in between are fetched up to the first one a read_committed
 * consumer would deliver; without one the lag is 0, else it counts from that record (markers
 * after it still count, as they do in any offset arithmetic).
 */
export async function committedLag(
  kafka: Kafka,
  admin: Admin,
  groupId: string,
  topic: string,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<PartitionLag[]> {
  const [ends, committed] = await abortable(
    Promise.all([topicOffsets(admin, topic), admin.fetchOffsets({ groupId, topics: [topic] })]),
    options.signal,
  );
  const committedBy = new Map<number, bigint>();
  for (const t of committed) for (const p of t.partitions) committedBy.set(p.partition, BigInt(p.offset));
  const ranges = new Map<number, Range>();
  for (const e of ends) {
    const low = BigInt(e.low);
    const c = committedBy.get(e.partition) ?? -1n;
    ranges.set(e.partition, { from: c < low ? low : c, to: BigInt(e.high) });
  }
  const first = new Map<number, bigint>();
  if ([...ranges.values()].some((r) => r.to > r.from)) {
    const { deadline, clear } = deadlineOf(topic, options.timeoutMs ?? 60_000, options.signal);
    try {
      await readRanges(
        kafka,
        admin,
        topic,
        ends.map((e) => e.partition),
        ranges,
        (m) => {
          first.set(m.partition, BigInt(m.offset));
          return true;
        },
        deadline,
      );
    } finally {
      clear();
    }
  }
  return [...ranges].map(([partition, r]) => {
    const f = first.get(partition);
    return { partition, lag: f === undefined ? 0 : Number(r.to - f) };
  });
}
