/**
 * Entities stage: raw.entities → assets, meters (compacted) and quarantine.
 *
 * State per input partition: the last canonical record of every entity key, with the sync run
 * that last saw it. It keeps first_seen stable across syncs and lets a `snapshot_complete`
 * marker (sent by the poller to every partition after a complete snapshot) deactivate exactly
 * the entities of that connection that the run did not see. A partial snapshot sends no marker,
 * so nothing is deactivated.
 */
import type { Config } from '../../lib/config.js';
import type { AvroRegistry, Serde } from '../../lib/registry.js';
import { connectionOfKey, entityKey, topicName } from '../../schemas/topics.js';
import type { Asset, Meter, RawEnvelope } from '../../schemas/records.js';
import type { ConnectionResolver } from '../runtime/connections.js';
import { normalise } from '../normalise/index.js';
import { validateAsset, validateMeter } from '../validate/index.js';
import type { InMessage, Output, Stage } from '../runtime/stage.js';
import { decodeEnvelope } from '../runtime/envelope.js';
import { PartitionStore } from '../runtime/partition-store.js';

type EntityState =
  { kind: 'asset'; record: Asset; lastRun: string } | { kind: 'meter'; record: Meter; lastRun: string };

export interface EntitiesStageDeps {
  config: Config;
  registry: AvroRegistry;
  connections: ConnectionResolver;
}

export class EntitiesStage implements Stage {
  readonly name = 'entities';
  readonly groupId: string;
  readonly inputTopic: string;
  readonly changelogTopic: string;
  readonly outputTopics;
  private readonly assetsTopic: string;
  private readonly metersTopic: string;
  private assetSerde!: Serde<Asset>;
  private meterSerde!: Serde<Meter>;
  private readonly state = new PartitionStore<EntityState>();

  constructor(private readonly deps: EntitiesStageDeps) {
    const prefix = deps.config.kafka.topicPrefix;
    this.groupId = `${prefix}processors.entities`;
    this.inputTopic = topicName(prefix, 'rawEntities');
    this.changelogTopic = `${prefix}state.entities`;
    this.assetsTopic = topicName(prefix, 'assets');
    this.metersTopic = topicName(prefix, 'meters');
    this.outputTopics = [
      { name: this.assetsTopic, cleanup: 'compact' as const },
      { name: this.metersTopic, cleanup: 'compact' as const },
    ];
  }

  async setup(): Promise<void> {
    const prefix = this.deps.config.kafka.topicPrefix;
    this.assetSerde = await this.deps.registry.registerTopic(prefix, 'assets');
    this.meterSerde = await this.deps.registry.registerTopic(prefix, 'meters');
  }

  restore(partition: number, key: string, value: Buffer | null): void {
    this.state.restore(partition, key, value);
  }

  drop(partition: number): void {
    this.state.drop(partition);
  }

  private put(partition: number, key: string, entry: EntityState, out: Output): void {
    this.state.set(partition, key, entry);
    if (entry.kind === 'asset')
      out.send({ topic: this.assetsTopic, key, value: this.assetSerde.encode(entry.record) });
    else out.send({ topic: this.metersTopic, key, value: this.meterSerde.encode(entry.record) });
  }

  async process(msg: InMessage, out: Output): Promise<void> {
    const decoded = await decodeEnvelope(this.deps.registry, msg);
    if (!decoded.ok) {
      out.reject(msg, { ...decoded.rejection, connectionId: connectionOfKey(msg.key) });
      return;
    }
    const env = decoded.envelope;
    if (env.entity_kind === 'snapshot_complete') {
      this.deactivateUnseen(msg.partition, env, out);
      return;
    }
    if (env.entity_kind === 'reference') return; // reference data (EnerKey quantities) travels with the meters
    const resolved = await this.deps.connections.resolve(env.connection_id, env.connection_version);
    if (!resolved.ok) {
      out.reject(msg, {
        ...resolved.rejection,
        connectionId: env.connection_id,
        connectionVersion: resolved.version,
      });
      return;
    }
    const { connection, version } = resolved;
    const result = normalise(env, { connection });
    for (const r of result.rejects) {
      out.reject(msg, {
        code: r.code,
        message: r.message,
        connectionId: env.connection_id,
        connectionVersion: version,
        recordIndex: r.recordIndex,
        detail: r.detail,
      });
    }
    const s = this.state.partition(msg.partition);
    for (const asset of result.assets) {
      const problems = validateAsset(asset);
      if (problems.length > 0) {
        for (const p of problems)
          out.reject(msg, { ...p, connectionId: env.connection_id, connectionVersion: version });
        continue;
      }
      const key = entityKey(asset.connection_id, asset.external_id);
      const prev = s.get(key);
      const record: Asset = {
        ...asset,
        active: true,
        first_seen: prev ? prev.record.first_seen : asset.first_seen,
        connection_version: version,
      };
      this.put(msg.partition, key, { kind: 'asset', record, lastRun: env.sync_run_id }, out);
    }
    for (const meter of result.meters) {
      const problems = validateMeter(meter);
      if (problems.length > 0) {
        for (const p of problems)
          out.reject(msg, { ...p, connectionId: env.connection_id, connectionVersion: version });
        continue;
      }
      const key = entityKey(meter.connection_id, meter.external_id);
      const prev = s.get(key);
      const record: Meter = {
        ...meter,
        active: true,
        first_seen: prev ? prev.record.first_seen : meter.first_seen,
        connection_version: version,
      };
      this.put(msg.partition, key, { kind: 'meter', record, lastRun: env.sync_run_id }, out);
    }
  }

  /** After a complete snapshot: entities of the connection that the run did not see become inactive. */
  private deactivateUnseen(partition: number, env: RawEnvelope, out: Output): void {
    let kinds: string[] = ['asset', 'meter'];
    try {
      const parsed = JSON.parse(env.payload) as { kinds?: unknown; meters?: unknown; assets?: unknown };
      if (Array.isArray(parsed.kinds)) kinds = parsed.kinds.filter((k): k is string => typeof k === 'string');
      // A run that saw none of a kind never deactivates that kind: an empty answer is far more
      // likely a fault than every entity gone (markers without counts keep the old meaning).
      kinds = kinds.filter(
        (k) => !(k === 'asset' && parsed.assets === 0) && !(k === 'meter' && parsed.meters === 0),
      );
    } catch {
      // The marker's payload is optional detail; without it, both kinds were complete.
    }
    if (kinds.length === 0) return;
    for (const [key, entry] of this.state.partition(partition)) {
      if (entry.record.connection_id !== env.connection_id || !kinds.includes(entry.kind)) continue;
      if (!entry.record.active || entry.lastRun === env.sync_run_id) continue;
      const record = { ...entry.record, active: false, sync_run_id: env.sync_run_id };
      this.put(partition, key, { ...entry, record } as EntityState, out);
    }
  }

  flush(partition: number, out: Output): void {
    this.state.flush(partition, out);
  }
}
