/** Shared helpers of the producer integration tests: contexts, topic reading, connection builders. */
import type { TestContext } from '../../support/context.js';
import { readToEnd, topicOffsets } from '../../../lib/kafka.js';
import { readerType } from '../../../lib/registry.js';
import {
  connectionSchema,
  type ConnectionConfig,
  type ConnectionInput,
} from '../../../schemas/connection.js';
import type { RawEnvelope, SyncRun, SyncState } from '../../../schemas/records.js';
import { topicName, type TopicId } from '../../../schemas/topics.js';
import type { SyncDeps } from '../../../producers/sync/engine.js';
import type { ArcadiaSimulator } from '../../../simulators/arcadia.js';
import { arcadiaConnectionFile, arcadiaCredentials } from '../../support/arcadia-connection.js';

export function connection(input: ConnectionInput): ConnectionConfig {
  return connectionSchema.parse(input);
}

/** An Arcadia connection on a simulator, credentials from ARC_ID / ARC_SECRET (see arcadiaEnv). */
export function arcadiaConnection(
  sim: ArcadiaSimulator,
  id: string,
  extra: Partial<ConnectionInput> = {},
): ConnectionConfig {
  return connection(arcadiaConnectionFile(sim, id, 'ARC', extra));
}

/** The environment that carries a simulator's Arcadia client credentials. */
export const arcadiaEnv = (sim: ArcadiaSimulator): Record<string, string> => arcadiaCredentials(sim, 'ARC');

export interface Read<T> {
  key: string;
  partition: number;
  value: T;
}

/**
 * Waits until the topic's committed end offsets stop moving: transaction markers are written after
 * commit() returns, so the last stable offset can trail a just-committed transaction briefly.
 */
export async function settled(ctx: TestContext, topic: string): Promise<void> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    let last = '';
    for (let i = 0; i < 40; i++) {
      const now = JSON.stringify(await topicOffsets(admin, topic));
      if (now === last) return;
      last = now;
      await new Promise((r) => setTimeout(r, 150));
    }
  } finally {
    await admin.disconnect();
  }
}

export async function readTopic<T>(ctx: TestContext, id: TopicId): Promise<Read<T>[]> {
  await settled(ctx, topicName(ctx.config.kafka.topicPrefix, id));
  const out: Read<T>[] = [];
  const reader = readerType(id);
  await readToEnd(ctx.kafka, topicName(ctx.config.kafka.topicPrefix, id), async (m) => {
    out.push({
      key: m.key?.toString('utf8') ?? '',
      partition: m.partition,
      value: await ctx.registry.decode<T>(m.value, reader),
    });
  });
  return out;
}

export const readEnvelopes = (
  ctx: TestContext,
  id: 'rawEntities' | 'rawUsage',
): Promise<Read<RawEnvelope>[]> => readTopic<RawEnvelope>(ctx, id);
export const readRuns = (ctx: TestContext): Promise<Read<SyncRun>[]> => readTopic<SyncRun>(ctx, 'syncRuns');
export const readStates = (ctx: TestContext): Promise<Read<SyncState>[]> =>
  readTopic<SyncState>(ctx, 'syncState');

/** Sync deps on a test context: fast (capped) sleeps so retries and Retry-After do not slow tests. */
export function syncDeps(
  ctx: TestContext,
  env: Record<string, string>,
  extra: Partial<SyncDeps> = {},
): SyncDeps {
  return {
    config: ctx.config,
    kafka: ctx.kafka,
    registry: ctx.registry,
    log: ctx.log,
    env,
    http: { sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))) },
    ...extra,
  };
}

/** A comparable identity of usage envelopes (duplicates collapse). */
export function usageKeys(envs: Read<RawEnvelope>[]): Set<string> {
  return new Set(
    envs.map(
      (e) =>
        `${e.value.format}|${e.value.external_id}|${e.value.meta.range_from}|${e.value.meta.range_to}|${e.value.payload}`,
    ),
  );
}
