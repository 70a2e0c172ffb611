/**
 * Meter mapping import/export against Kafka: the known meters come from the `meters` topic (read to
 * its end), mappings live on the compacted `meter-mappings` topic. An import with any problem writes
 * nothing; a good one is written in one transaction.
 */
import type { Kafka } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { readToEnd } from '../../lib/kafka.js';
import { readerType, type AvroRegistry } from '../../lib/registry.js';
import type { Meter, MeterMapping } from '../../schemas/records.js';
import { entityKey, topicName } from '../../schemas/topics.js';
import { planImport, renderExport, type ExportRow, type MappingProblem } from './core.js';

export * from './core.js';

export interface MappingDeps {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
  now?: () => number;
}

export interface ImportResult {
  applied: boolean;
  rows: number;
  problems: MappingProblem[];
}

async function knownMeters(deps: MappingDeps): Promise<Map<string, Meter>> {
  const out = new Map<string, Meter>();
  const reader = readerType('meters');
  await readToEnd(deps.kafka, topicName(deps.config.kafka.topicPrefix, 'meters'), async (m) => {
    const key = m.key?.toString('utf8');
    if (!key) return;
    if (m.value === null) {
      out.delete(key);
      return;
    }
    const meter = await deps.registry.decode<Meter>(m.value, reader);
    out.set(entityKey(meter.connection_id, meter.external_id), meter);
  });
  return out;
}

async function currentMappings(deps: MappingDeps): Promise<Map<string, MeterMapping>> {
  const out = new Map<string, MeterMapping>();
  const reader = readerType('meterMappings');
  await readToEnd(deps.kafka, topicName(deps.config.kafka.topicPrefix, 'meterMappings'), async (m) => {
    const key = m.key?.toString('utf8');
    if (!key) return;
    if (m.value === null) {
      out.delete(key);
      return;
    }
    out.set(key, await deps.registry.decode<MeterMapping>(m.value, reader));
  });
  return out;
}

/** Checks a mapping CSV against the current meters; writes it to meter-mappings only when it has no problem. */
export async function importMappings(
  deps: MappingDeps,
  csvText: string,
  source = 'csv-import',
): Promise<ImportResult> {
  const meters = await knownMeters(deps);
  const plan = planImport(csvText, new Set(meters.keys()));
  if (plan.problems.length > 0) return { applied: false, rows: plan.rows.length, problems: plan.problems };
  if (plan.rows.length === 0) return { applied: true, rows: 0, problems: [] };
  const serde = await deps.registry.registerTopic(deps.config.kafka.topicPrefix, 'meterMappings');
  const now = (deps.now ?? Date.now)();
  const producer = deps.kafka.producer({
    transactionalId: `${deps.config.kafka.topicPrefix}mapping-import`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    const txn = await producer.transaction();
    try {
      await txn.send({
        topic: topicName(deps.config.kafka.topicPrefix, 'meterMappings'),
        messages: plan.rows.map((r) => ({
          key: entityKey(r.connection_id, r.external_id),
          value: serde.encode({
            connection_id: r.connection_id,
            external_id: r.external_id,
            internal_meter_id: r.internal_meter_id,
            updated_at: now,
            source,
          }),
        })),
      });
      await txn.commit();
    } catch (cause) {
      await txn.abort().catch(() => undefined);
      throw new MeterflowError(
        'KAFKA_UNREACHABLE',
        `meter mapping import not written: ${errorMessage(cause)}`,
        { cause, retriable: true },
      );
    }
  } finally {
    await producer.disconnect();
  }
  return { applied: true, rows: plan.rows.length, problems: [] };
}

/**
 * Exports the mapping of every current meter (an empty internal_meter_id where none is mapped),
 * optionally of one connection, as CSV safe to open in a spreadsheet.
 */
export async function exportMappings(
  deps: MappingDeps,
  options: { connectionId?: string } = {},
): Promise<string> {
  const [meters, mappings] = await Promise.all([knownMeters(deps), currentMappings(deps)]);
  const rows: ExportRow[] = [];
  const keys = new Set([
    ...meters.keys(),
    ...[...mappings.entries()].filter(([, m]) => m.internal_meter_id !== null).map(([k]) => k),
  ]);
  for (const key of keys) {
    const meter = meters.get(key);
    const mapping = mappings.get(key);
    const connectionId = meter?.connection_id ?? mapping!.connection_id;
    if (options.connectionId !== undefined && connectionId !== options.connectionId) continue;
    rows.push({
      connection_id: connectionId,
      external_id: meter?.external_id ?? mapping!.external_id,
      internal_meter_id: mapping?.internal_meter_id ?? null,
    });
  }
  return renderExport(rows);
}
