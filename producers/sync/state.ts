/** Restores a connection's sync state by reading the compacted sync-state topic to its end. */
import type { Kafka } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { readToEnd } from '../../lib/kafka.js';
import { readerType, type AvroRegistry } from '../../lib/registry.js';
import type { SyncState } from '../../schemas/records.js';
import { topicName } from '../../schemas/topics.js';

export type SyncStateMap = Map<string, SyncState>;

export async function loadSyncState(
  deps: { config: Config; kafka: Kafka; registry: AvroRegistry },
  connectionId: string,
): Promise<SyncStateMap> {
  const topic = topicName(deps.config.kafka.topicPrefix, 'syncState');
  const prefix = `${connectionId}/`;
  const out: SyncStateMap = new Map();
  const reader = readerType('syncState');
  await readToEnd(deps.kafka, topic, async (m) => {
    const key = m.key?.toString('utf8');
    if (!key?.startsWith(prefix)) return;
    const scope = key.slice(prefix.length);
    if (m.value === null) {
      out.delete(scope);
      return;
    }
    const s = await deps.registry.decode<SyncState>(m.value, reader);
    out.set(scope, s);
  });
  return out;
}

export function watermarkOf(state: SyncStateMap, scope: string): number | undefined {
  const w = state.get(scope)?.watermark;
  if (!w) return undefined;
  const t = Date.parse(w);
  return Number.isNaN(t) ? undefined : t;
}
