/**
 * Kafka side of a sync run: one transactional producer per run (transactionalId per connection, so
 * a second writer for the same connection fences the first). Each call's messages commit atomically;
 * concurrent calls share transactions (group commit).
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { COMPRESSION, TRANSACTION_RETRY } from '../../lib/kafka.js';
import { sleep } from '../../lib/retry.js';
import type { AvroRegistry, Serde } from '../../lib/registry.js';
import type { ConnectionVersion, RawEnvelope, SyncRun, SyncState } from '../../schemas/records.js';
import { entityKey, topicName } from '../../schemas/topics.js';

export interface WriterDeps {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
}

/** Largest group commit: calls and approximate encoded bytes per transaction. */
const GROUP_MAX_CALLS = 64;
const GROUP_MAX_BYTES = 16 * 1024 * 1024;

interface PendingCall {
  batches: { topic: string; messages: Message[] }[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class SyncWriter {
  private readonly pending: PendingCall[] = [];
  private flushing = false;
  private partitionsOfEntities: number | undefined;
  /**
   * The version of the connection this run publishes or found on the `connections` topic: every
   * envelope carries it, so each processor applies that version (or a later one).
   */
  connectionVersion: number | null = null;

  private constructor(
    private readonly deps: WriterDeps,
    private readonly connectionId: string,
    private readonly producer: Producer,
    private readonly serdes: {
      entities: Serde<RawEnvelope>;
      usage: Serde<RawEnvelope>;
      state: Serde<SyncState>;
      runs: Serde<SyncRun>;
      connections: Serde<ConnectionVersion>;
    },
  ) {}

  static transactionalId(config: Config, connectionId: string): string {
    return `${config.kafka.topicPrefix}producer.${connectionId}`;
  }

  static async open(deps: WriterDeps, connectionId: string): Promise<SyncWriter> {
    const prefix = deps.config.kafka.topicPrefix;
    const [entities, usage, state, runs, connections] = await Promise.all([
      deps.registry.registerTopic(prefix, 'rawEntities'),
      deps.registry.registerTopic(prefix, 'rawUsage'),
      deps.registry.registerTopic(prefix, 'syncState'),
      deps.registry.registerTopic(prefix, 'syncRuns'),
      deps.registry.registerTopic(prefix, 'connections'),
    ]);
    const producer = deps.kafka.producer({
      transactionalId: SyncWriter.transactionalId(deps.config, connectionId),
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      transactionTimeout: 60_000,
      // One transaction per chunk, back to back: see TRANSACTION_RETRY.
      retry: TRANSACTION_RETRY,
    });
    try {
      await producer.connect();
    } catch (cause) {
      throw new MeterflowError(
        'KAFKA_UNREACHABLE',
        `connection ${connectionId}: cannot connect the producer: ${errorMessage(cause)}`,
        {
          cause,
          retriable: true,
          context: { connection: connectionId },
        },
      );
    }
    return new SyncWriter(deps, connectionId, producer, { entities, usage, state, runs, connections });
  }

  private topic(id: 'rawEntities' | 'rawUsage' | 'syncState' | 'syncRuns' | 'connections'): string {
    return topicName(this.deps.config.kafka.topicPrefix, id);
  }

  /**
   * Sends `batches` in a Kafka transaction. Group commit: calls that arrive while a transaction is
   * in flight are merged into the next one (in arrival order, up to GROUP_MAX_CALLS / GROUP_MAX_BYTES),
   * so concurrent meter batches share commits. A call resolves only after the transaction holding
   * it committed; if that transaction fails, every call in it rejects and none of it is visible.
   */
  private transact(batches: { topic: string; messages: Message[] }[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ batches, resolve, reject });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const group: PendingCall[] = [];
        let bytes = 0;
        while (
          this.pending.length > 0 &&
          group.length < GROUP_MAX_CALLS &&
          (group.length === 0 || bytes < GROUP_MAX_BYTES)
        ) {
          const call = this.pending.shift()!;
          for (const b of call.batches)
            for (const m of b.messages) bytes += (m.value as Buffer | null)?.length ?? 0;
          group.push(call);
        }
        try {
          await this.commit(group.flatMap((c) => c.batches));
          for (const c of group) c.resolve();
        } catch (e) {
          for (const c of group) c.reject(e);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async commit(batches: { topic: string; messages: Message[] }[]): Promise<void> {
    // One send per topic, messages in call order.
    const byTopic = new Map<string, Message[]>();
    for (const b of batches)
      if (b.messages.length > 0) byTopic.set(b.topic, [...(byTopic.get(b.topic) ?? []), ...b.messages]);
    if (byTopic.size === 0) return;
    const txn = await this.producer.transaction();
    try {
      for (const [topic, messages] of byTopic) await txn.send({ topic, messages, compression: COMPRESSION });
      await txn.commit();
    } catch (cause) {
      await txn.abort().catch(() => undefined);
      throw new MeterflowError(
        'KAFKA_UNREACHABLE',
        `connection ${this.connectionId}: transaction failed: ${errorMessage(cause)}`,
        {
          cause,
          retriable: true,
          context: { connection: this.connectionId, topics: [...byTopic.keys()] },
        },
      );
    }
  }

  /** An envelope with this run's connection version. */
  private stamped(e: RawEnvelope): RawEnvelope {
    return { ...e, connection_version: this.connectionVersion };
  }

  private envelopeMessages(serde: Serde<RawEnvelope>, envs: RawEnvelope[]): Message[] {
    return envs.map((e) => ({
      key: entityKey(e.connection_id, e.external_id),
      value: serde.encode(this.stamped(e)),
    }));
  }

  /** A new version of the connection on the `connections` topic (key: the connection id). */
  connection(record: ConnectionVersion): Promise<void> {
    return this.transact([
      {
        topic: this.topic('connections'),
        messages: [{ key: record.connection_id, value: this.serdes.connections.encode(record) }],
      },
    ]);
  }

  private stateMessages(states: SyncState[]): Message[] {
    return states.map((s) => ({
      key: entityKey(s.connection_id, s.scope),
      value: this.serdes.state.encode(s),
    }));
  }

  /** Entity envelopes of one page. */
  entities(envs: RawEnvelope[]): Promise<void> {
    return this.transact([
      { topic: this.topic('rawEntities'), messages: this.envelopeMessages(this.serdes.entities, envs) },
    ]);
  }

  /** The usage envelopes of one chunk and the watermarks they justify, atomically. */
  usageChunk(envs: RawEnvelope[], states: SyncState[]): Promise<void> {
    return this.transact([
      { topic: this.topic('rawUsage'), messages: this.envelopeMessages(this.serdes.usage, envs) },
      { topic: this.topic('syncState'), messages: this.stateMessages(states) },
    ]);
  }

  /** State records only (e.g. the snapshot scope). */
  states(states: SyncState[]): Promise<void> {
    return this.transact([{ topic: this.topic('syncState'), messages: this.stateMessages(states) }]);
  }

  async entityPartitions(): Promise<number> {
    if (this.partitionsOfEntities !== undefined) return this.partitionsOfEntities;
    const admin = this.deps.kafka.admin();
    await admin.connect();
    try {
      const md = await admin.fetchTopicMetadata({ topics: [this.topic('rawEntities')] });
      this.partitionsOfEntities = md.topics[0]?.partitions.length ?? 0;
      return this.partitionsOfEntities;
    } finally {
      await admin.disconnect();
    }
  }

  /** One snapshot_complete marker on EVERY partition of raw.entities (explicit partition numbers). */
  async snapshotComplete(template: RawEnvelope): Promise<number> {
    const n = await this.entityPartitions();
    const messages: Message[] = [];
    for (let p = 0; p < n; p++) {
      messages.push({
        key: entityKey(template.connection_id, '*'),
        value: this.serdes.entities.encode(this.stamped(template)),
        partition: p,
      });
    }
    await this.transact([{ topic: this.topic('rawEntities'), messages }]);
    return n;
  }

  run(record: SyncRun): Promise<void> {
    return this.transact([
      {
        topic: this.topic('syncRuns'),
        messages: [
          {
            key: entityKey(record.connection_id, record.sync_run_id),
            value: this.serdes.runs.encode(record),
          },
        ],
      },
    ]);
  }

  async close(): Promise<void> {
    while (this.flushing || this.pending.length > 0) await sleep(10);
    await this.producer.disconnect().catch(() => undefined);
  }
}
