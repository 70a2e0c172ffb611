/**
 * Kafka client setup from configuration, topic provisioning from the catalogue, and small
 * helpers that kafkajs lacks (reading a topic to its end, group lag).
 */
import { CompressionCodecs, CompressionTypes, Kafka, logLevel, type Admin, type ITopicConfig, type SASLOptions } from 'kafkajs';
import type { Config } from './config.js';
import { errorMessage, MeterflowError } from './errors.js';
import { TOPICS, topicName, type TopicId } from '../schemas/topics.js';

export { CompressionTypes };

export function createKafka(config: Config, clientIdSuffix = ''): Kafka {
  const k = config.kafka;
  const sasl: SASLOptions | undefined = k.sasl
    ? ({ mechanism: k.sasl.mechanism, username: k.sasl.username, password: k.sasl.password } as SASLOptions)
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
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
  });
}

/** Default codec for produced batches. GZIP is built into kafkajs; no native addon needed. */
export const COMPRESSION = CompressionTypes.GZIP;
void CompressionCodecs;

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
    throw new MeterflowError('KAFKA_UNREACHABLE', `Kafka at ${config.kafka.brokers.join(',')} did not answer: ${errorMessage(cause)}`, {
      cause,
      retriable: true,
      context: { brokers: config.kafka.brokers },
    });
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
  try {
    await admin.createTopics({ topics, waitForLeaders: true });
  } catch (cause) {
    // A concurrent creator may have won the race; that is fine if the topics now exist.
    const now = await admin.listTopics();
    const stillMissing = missing.filter((r) => !now.includes(r.name));
    if (stillMissing.length > 0) {
      throw new MeterflowError('KAFKA_TOPIC_SETUP', `cannot create topics ${stillMissing.map((t) => t.name).join(', ')}: ${errorMessage(cause)}`, {
        cause,
        context: { topics: stillMissing.map((t) => t.name) },
      });
    }
  }
}

/** Creates every catalogue topic under the configured prefix. */
export async function ensureCatalogueTopics(admin: Admin, config: Config, ids: TopicId[] = Object.keys(TOPICS) as TopicId[]): Promise<void> {
  await ensureTopics(
    admin,
    config,
    ids.map((id) => ({ name: topicName(config.kafka.topicPrefix, id), cleanup: TOPICS[id].cleanup, retentionMs: TOPICS[id].retentionMs })),
  );
}

/** High watermarks of every partition of a topic. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, string>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, o.high]));
}

/** Lag of a consumer group on a topic: sum over partitions of (high watermark - committed). */
export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<{ partition: number; lag: number }[]> {
  const [high, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
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
