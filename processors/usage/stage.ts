/**
 * Usage stage: raw.usage → usage (canonical batches) and quarantine.
 *
 * The meter of a chunk comes from the `meters` topic (a live table every instance reads in
 * full) or, when the poller attached it, from the envelope itself (meta.meter_format and
 * meta.meter_payload): the poller emits a meter before its usage, but the two travel through
 * different topics and stages, so the envelope copy removes that race. A meter still unknown
 * after the table caught up is a VAL_UNKNOWN_METER quarantine, never a guess.
 *
 * State per input partition: the last register reading of every cumulative meter, so that
 * readings become consumption across chunks and restarts.
 */
import type { Config } from '../../lib/config.js';
import type { Kafka } from 'kafkajs';
import type { AvroRegistry, Serde } from '../../lib/registry.js';
import { readerType } from '../../lib/registry.js';
import { connectionOfKey, entityKey, topicName } from '../../schemas/topics.js';
import type { Meter, RawEnvelope, UsageBatch } from '../../schemas/records.js';
import type { ConnectionConfig } from '../../schemas/connection.js';
import { normalise } from '../normalise/index.js';
import { validateMeter } from '../validate/index.js';
import type { LastReading } from '../readings/index.js';
import { completeChunk, normaliseChunk } from './pipeline.js';
import type { InMessage, Output, Stage } from '../runtime/stage.js';
import { decodeEnvelope } from '../runtime/envelope.js';
import { TopicTable } from '../runtime/topic-table.js';
import type { ConnectionResolver } from '../runtime/connections.js';
import { PartitionStore } from '../runtime/partition-store.js';

/** The last register reading of a meter and the raw.usage offset that produced it. */
interface ReadingState {
  last: LastReading;
  /** Readings from this offset or earlier are already differenced (a replay): skip them. */
  offset: number;
}

export interface UsageStageDeps {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
  connections: ConnectionResolver;
}

/**
 * Why a chunk has no meter, in words: the connector's reason (meta.unmatched) for rows it could
 * not give a meter, else a meter that neither the meters topic nor the chunk knows.
 */
function unknownMeter(env: RawEnvelope): {
  code: 'VAL_UNKNOWN_METER';
  message: string;
  detail: string | null;
} {
  const unmatched = env.meta.unmatched;
  const of = `of connection ${env.connection_id}`;
  if (unmatched === undefined) {
    return {
      code: 'VAL_UNKNOWN_METER',
      message: env.external_id
        ? `meter ${env.external_id} ${of} is not known (not in the meters topic and not attached to the chunk)`
        : `a usage chunk ${of} names no meter (empty external_id)`,
      detail: null,
    };
  }
  const rows = rowCount(env.payload);
  const what =
    rows === null ? 'usage rows' : `${rows.toLocaleString('en-US')} usage row${rows === 1 ? '' : 's'}`;
  return {
    code: 'VAL_UNKNOWN_METER',
    message: env.external_id
      ? `${what} ${of} ${rows === 1 ? 'is' : 'are'} of meter ${env.external_id}, which the meter listing does not have: ${unmatched}`
      : `${what} ${of} ${rows === 1 ? 'carries' : 'carry'} no meter id: ${unmatched}`,
    detail: JSON.stringify({ rows, unmatched }),
  };
}

/** Rows of a payload that is a JSON array (as generic usage rows are handed on); else null. */
function rowCount(payload: string): number | null {
  try {
    const parsed: unknown = JSON.parse(payload);
    return Array.isArray(parsed) ? parsed.length : null;
  } catch {
    return null;
  }
}

/** Distinct attached meter payloads remembered; the cache starts afresh when full. */
const ATTACHED_METERS_CACHED = 10_000;

export class UsageStage implements Stage {
  readonly name = 'usage';
  readonly groupId: string;
  readonly inputTopic: string;
  readonly changelogTopic: string;
  readonly outputTopics;
  private readonly usageTopic: string;
  private usageSerde!: Serde<UsageBatch>;
  private meters!: TopicTable<Meter>;
  private readonly readings = new PartitionStore<ReadingState>();
  /** Meters normalised from the payload attached to usage chunks, by connection and payload. */
  private readonly attachedMeters = new Map<string, Meter | undefined>();

  constructor(private readonly deps: UsageStageDeps) {
    const prefix = deps.config.kafka.topicPrefix;
    this.groupId = `${prefix}processors.usage`;
    this.inputTopic = topicName(prefix, 'rawUsage');
    this.changelogTopic = `${prefix}state.usage`;
    this.usageTopic = topicName(prefix, 'usage');
    this.outputTopics = [
      { name: this.usageTopic, cleanup: 'delete' as const },
      { name: topicName(prefix, 'meters'), cleanup: 'compact' as const },
    ];
  }

  async setup(): Promise<void> {
    const prefix = this.deps.config.kafka.topicPrefix;
    this.usageSerde = await this.deps.registry.registerTopic(prefix, 'usage');
    const reader = readerType('meters');
    this.meters = new TopicTable<Meter>(this.deps.kafka, topicName(prefix, 'meters'), (v) =>
      this.deps.registry.decode<Meter>(v, reader),
    );
    await this.meters.start();
  }

  restore(partition: number, key: string, value: Buffer | null): void {
    this.readings.restore(partition, key, value);
  }

  drop(partition: number): void {
    this.readings.drop(partition);
  }

  /** The meter as the poller saw it when it fetched this chunk, if it attached one. */
  private meterFromEnvelope(
    env: RawEnvelope,
    connection: ConnectionConfig | undefined,
    version: number | null,
  ): Meter | undefined {
    const format = env.meta.meter_format;
    const payload = env.meta.meter_payload;
    if (!format || !payload) return undefined;
    // Every chunk of a meter carries the same payload: normalise it once per connection version
    // (a pure function of both: a fixed meterTypes entry changes the result).
    const cacheKey = `${env.connection_id}\u0000${version ?? ''}\u0000${format}\u0000${payload}`;
    if (this.attachedMeters.has(cacheKey)) return this.attachedMeters.get(cacheKey);
    const result = normalise({ ...env, entity_kind: 'meter', format, payload }, { connection });
    const meter = result.meters[0];
    const valid = meter && validateMeter(meter).length === 0 ? meter : undefined;
    if (this.attachedMeters.size >= ATTACHED_METERS_CACHED) this.attachedMeters.clear();
    this.attachedMeters.set(cacheKey, valid);
    return valid;
  }

  private async findMeter(
    env: RawEnvelope,
    connection: ConnectionConfig | undefined,
    version: number | null,
  ): Promise<Meter | undefined> {
    const key = entityKey(env.connection_id, env.external_id);
    const known = this.meters.get(key) ?? this.meterFromEnvelope(env, connection, version);
    if (known) return known;
    await this.meters.catchUp();
    return this.meters.get(key);
  }

  async process(msg: InMessage, out: Output): Promise<void> {
    const decoded = await decodeEnvelope(this.deps.registry, msg);
    if (!decoded.ok) {
      out.reject(msg, { ...decoded.rejection, connectionId: connectionOfKey(msg.key) });
      return;
    }
    const env = decoded.envelope;
    const connectionId = env.connection_id;
    if (env.entity_kind !== 'usage') {
      out.reject(msg, {
        code: 'NORM_ENVELOPE_MALFORMED',
        message: `raw.usage carries entity_kind "${env.entity_kind}"`,
        connectionId,
        recordIndex: null,
        detail: null,
      });
      return;
    }
    const resolved = await this.deps.connections.resolve(connectionId, env.connection_version);
    if (!resolved.ok) {
      out.reject(msg, { ...resolved.rejection, connectionId, connectionVersion: resolved.version });
      return;
    }
    const { connection, version: connectionVersion } = resolved;
    const meter = env.external_id ? await this.findMeter(env, connection, connectionVersion) : undefined;
    if (!meter) {
      out.reject(msg, { ...unknownMeter(env), connectionId, connectionVersion, recordIndex: null });
      return;
    }
    const chunk = normaliseChunk(env, connection, meter);
    const rows = chunk.rows;
    for (const r of chunk.rejects) out.reject(msg, { ...r, connectionId, connectionVersion, rows });
    if (!chunk.batch) return;

    const key = entityKey(connectionId, meter.external_id);
    const offset = Number(msg.offset);
    const prev = chunk.readings.length > 0 ? this.readings.get(msg.partition, key) : undefined;
    if (prev && offset <= prev.offset) return; // replayed chunk: its readings are already differenced
    const { valid, rejects, last } = completeChunk(chunk.batch, chunk.readings, {
      connection,
      meter,
      last: prev?.last,
    });
    if (chunk.readings.length > 0) {
      if (last) this.readings.set(msg.partition, key, { last, offset });
      else this.readings.delete(msg.partition, key);
    }
    for (const r of rejects) out.reject(msg, { ...r, connectionId, connectionVersion, rows });
    if (valid.intervals.length === 0) return;
    const canonical: UsageBatch = {
      ...valid,
      source_topic: msg.topic,
      source_partition: msg.partition,
      source_offset: offset,
      connection_version: connectionVersion,
    };
    out.send({
      topic: this.usageTopic,
      key,
      value: this.usageSerde.encode(canonical),
    });
  }

  flush(partition: number, out: Output): void {
    this.readings.flush(partition, out);
  }

  async close(): Promise<void> {
    await this.meters?.stop();
  }
}
