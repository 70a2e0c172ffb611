/**
 * Publishing connections to the compacted `connections` topic (DESIGN.md §3, §5): a connection's
 * content is published as a new version when it differs from the topic's latest, so processors on
 * every host apply the file the producers ran with, without a copy of it. A sync publishes its
 * connection first and stamps the version on every envelope; `meterflow connections publish`
 * does the same for a folder without syncing.
 *
 * Nothing that looks like a secret is published: connection files hold the NAMES of variables,
 * and a value that reads like a credential is refused with CFG_INVALID (its length only).
 */
import { hostname } from 'node:os';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { catalogueTopic, ensureTopics, readToEnd } from '../../lib/kafka.js';
import { readerType, type AvroRegistry } from '../../lib/registry.js';
import type { ConnectionConfig } from '../../schemas/connection.js';
import { nextConnectionVersion, publishProblems } from '../../schemas/connection-version.js';
import type { ConnectionVersion } from '../../schemas/records.js';
import { topicName } from '../../schemas/topics.js';

export interface PublishDeps {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
}

/** The topic as read to its end: the latest version of each connection, and the highest seen. */
export interface ConnectionVersions {
  latest: Map<string, ConnectionVersion>;
  /** Highest version the topic still holds per id, removed connections included. */
  highest: Map<string, number>;
}

/** Creates the connections topic when missing (a producer or command may run before anything else). */
export async function ensureConnectionsTopic(deps: PublishDeps): Promise<void> {
  const admin = deps.kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, deps.config, [catalogueTopic(deps.config, 'connections')]);
  } finally {
    await admin.disconnect();
  }
}

/** Reads the connections topic to its last stable offset. */
export async function readConnectionVersions(
  deps: PublishDeps,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<ConnectionVersions> {
  await ensureConnectionsTopic(deps);
  const topic = topicName(deps.config.kafka.topicPrefix, 'connections');
  const reader = readerType('connections');
  const latest = new Map<string, ConnectionVersion>();
  const highest = new Map<string, number>();
  await readToEnd(
    deps.kafka,
    topic,
    async (m) => {
      const id = m.key?.toString('utf8');
      if (!id) return;
      if (m.value === null) {
        latest.delete(id);
        return;
      }
      const v = await deps.registry.decode<ConnectionVersion>(m.value, reader);
      latest.set(id, v);
      highest.set(id, Math.max(highest.get(id) ?? 0, v.version));
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    },
  );
  return { latest, highest };
}

/** CFG_INVALID when a connection holds anything that reads like a secret value. */
export function refuseSecrets(c: ConnectionConfig, source: string): void {
  const problems = publishProblems(c);
  if (problems.length === 0) return;
  throw new MeterflowError(
    'CFG_INVALID',
    `connection ${c.id} (${source}) is not published: ${problems.map((p) => `${p.path} ${p.problem}`).join('; ')}`,
    { context: { connection: c.id, source, fields: problems.map((p) => p.path) } },
  );
}

/** What publishing one connection did. */
export interface Published {
  connectionId: string;
  version: number;
  /** False when the topic already had this content (the version is the existing one). */
  changed: boolean;
  record: ConnectionVersion;
}

/**
 * The record to publish for `c` given the topic's versions, or the existing version when the
 * content is unchanged. Refuses secrets first.
 */
export function planPublish(
  versions: ConnectionVersions,
  c: ConnectionConfig,
  meta: { source: string; host?: string; now: number },
): Published {
  refuseSecrets(c, meta.source);
  const latest = versions.latest.get(c.id);
  const next = nextConnectionVersion(
    latest,
    c,
    { source: meta.source, host: meta.host ?? hostname(), now: meta.now },
    versions.highest.get(c.id) ?? 0,
  );
  if (next) return { connectionId: c.id, version: next.version, changed: true, record: next };
  return { connectionId: c.id, version: latest!.version, changed: false, record: latest! };
}

/**
 * Publishes each connection whose content differs from the topic's latest, and with `prune`
 * removes (tombstones) connections on the topic that are not among them. Idempotent: publishing
 * an unchanged folder again writes nothing.
 */
export async function publishConnections(
  deps: PublishDeps,
  items: { connection: ConnectionConfig; source: string }[],
  options: { prune?: boolean; dryRun?: boolean; now?: () => number; signal?: AbortSignal } = {},
): Promise<{ published: Published[]; removed: string[] }> {
  // Every file is checked before anything is written: all or nothing.
  for (const { connection, source } of items) refuseSecrets(connection, source);
  const versions = await readConnectionVersions(deps, options.signal ? { signal: options.signal } : {});
  const now = options.now ?? Date.now;
  const published = items.map(({ connection, source }) =>
    planPublish(versions, connection, { source, now: now() }),
  );
  const ids = new Set(items.map((i) => i.connection.id));
  const removed = options.prune ? [...versions.latest.keys()].filter((id) => !ids.has(id)).sort() : [];
  const changed = published.filter((p) => p.changed);
  if (options.dryRun || (changed.length === 0 && removed.length === 0)) return { published, removed };
  const serde = await deps.registry.registerTopic(deps.config.kafka.topicPrefix, 'connections');
  const producer = deps.kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  try {
    await producer.connect();
    await producer.send({
      topic: topicName(deps.config.kafka.topicPrefix, 'connections'),
      acks: -1,
      messages: [
        ...changed.map((p) => ({ key: p.connectionId, value: serde.encode(p.record) })),
        ...removed.map((id) => ({ key: id, value: null })),
      ],
    });
  } catch (cause) {
    throw new MeterflowError('KAFKA_UNREACHABLE', `cannot publish connections: ${errorMessage(cause)}`, {
      cause,
      retriable: true,
      context: { connections: changed.map((p) => p.connectionId) },
    });
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
  return { published, removed };
}
