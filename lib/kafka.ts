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
import { TOPICS, topicName, type TopicId } from '../schemas/topics.js';

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
}

/** Creates missing topics; existing ones are left as they are. */
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
    ids.map((id) => ({
      name: topicName(config.kafka.topicPrefix, id),
      cleanup: TOPICS[id].cleanup,
      retentionMs: TOPICS[id].retentionMs,
    })),
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
  for (let attempt = 1; ; attempt++) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (err) {
      const type = (err as { type?: string }).type ?? '';
      const retriable =
        /NOT_LEADER|UNKNOWN_TOPIC_OR_PARTITION|LEADER_NOT_AVAILABLE|REPLICA_NOT_AVAILABLE/.test(type) ||
        /not the leader|does not host|leader not available/i.test(errorMessage(err));
      if (!retriable || attempt >= attempts) throw err;
      await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
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

/** Consecutive answered fetches without data before the idle rule of readToEnd may apply. */
const IDLE_FETCHES = 3;

export interface ReadToEndOptions {
  /** Only these partitions (default all). */
  partitions?: number[];
  /** Give up after this long (ms). */
  timeoutMs?: number;
  /** A partition counts as read when nothing new arrived for this long (ms). */
  idleMs?: number;
}

export interface ReadMessage {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: string;
}

/**
 * Reads a topic from the beginning up to the high watermarks taken at the start, with
 * read_committed isolation, calling `onMessage` for each record in partition order. kafkajs has
 * no manual assignment, so this uses a throw-away consumer group that commits nothing and is
 * deleted afterwards. Used to restore state from compacted topics and to inspect topics.
 * A partition whose remaining offsets belong to a transaction still open (or markers kafkajs does
 * not report) cannot be read to its watermark: it is also done once the broker has answered
 * several fetches in a row with nothing new and `idleMs` has passed. Counting answered fetches,
 * not only time, keeps a slow broker or a starved process from ending a state restore early.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  onMessage: (m: ReadMessage) => void | Promise<void>,
  options: ReadToEndOptions = {},
): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const idleMs = options.idleMs ?? 1_500;
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `meterflow-reader-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  let consumer: Consumer | undefined;
  try {
    const offsets = await topicOffsets(admin, topic);
    const remaining = new Map<number, bigint>();
    for (const o of offsets) {
      if (options.partitions && !options.partitions.includes(o.partition)) continue;
      if (BigInt(o.high) > BigInt(o.low)) remaining.set(o.partition, BigInt(o.high));
    }
    if (remaining.size === 0) return 0;
    // Short fetch waits: an empty fetch must come back quickly for the idle rule to mean
    // "nothing more is committed", not "the broker is still holding a long poll".
    consumer = kafka.consumer({
      groupId,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let count = 0;
    let lastActivity = Date.now();
    /** Fetches answered since anything arrived. */
    let emptyFetches = 0;
    const started = Date.now();
    let failure: unknown;
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true;
      lastActivity = Date.now();
      emptyFetches = 0;
    });
    // Emitted when a fetch is answered, before its batches (if any) are handed out.
    consumer.on(consumer.events.FETCH, () => {
      emptyFetches++;
    });
    // Also fired for batches holding only transaction markers, which eachBatch never sees.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const stop = remaining.get(e.payload.partition);
      lastActivity = Date.now();
      emptyFetches = 0;
      if (stop !== undefined && BigInt(e.payload.lastOffset) + 1n >= stop)
        remaining.delete(e.payload.partition);
    });
    await consumer
      .run({
        autoCommit: false,
        eachBatch: async (payload) => {
          const { batch } = payload;
          const stop = remaining.get(batch.partition);
          if (stop === undefined) return;
          lastActivity = Date.now();
          emptyFetches = 0;
          for (const m of batch.messages) {
            if (BigInt(m.offset) >= stop) break;
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) headers[k] = String(v);
            await onMessage({
              partition: batch.partition,
              offset: m.offset,
              key: m.key,
              value: m.value,
              headers,
              timestamp: m.timestamp,
            });
            count++;
          }
          if (BigInt(batch.lastOffset()) + 1n >= stop) remaining.delete(batch.partition);
          await payload.heartbeat();
        },
      })
      .catch((e: unknown) => {
        failure = e;
      });
    while (remaining.size > 0 && failure === undefined) {
      const now = Date.now();
      if (now - started > timeoutMs) {
        throw new MeterflowError(
          'RT_STATE_RESTORE',
          `reading ${topic} to its end took longer than ${timeoutMs} ms`,
          { context: { topic } },
        );
      }
      if (joined && emptyFetches >= IDLE_FETCHES && now - lastActivity > idleMs) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (failure !== undefined) throw failure instanceof Error ? failure : new Error(errorMessage(failure));
    return count;
  } finally {
    await consumer?.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
