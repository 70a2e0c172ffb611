/**
 * Kafka side of a sync run: one transactional producer per run (transactionalId per connection, so
 * a second writer for the same connection fences the first). Each call is one transaction; calls
 * are serialised, so concurrent meter batches never interleave inside a transaction.
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { COMPRESSION } from '../../lib/kafka.js';
import type { AvroRegistry, Serde } from '../../lib/registry.js';
import type { RawEnvelope, SyncRun, SyncState } from '../../schemas/records.js';
import { entityKey, topicName } from '../../schemas/topics.js';

export interface WriterDeps {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
}

export class SyncWriter {
  private chain: Promise<unknown> = Promise.resolve();
  private partitionsOfEntities: number | undefined;

  private constructor(
    private readonly deps: WriterDeps,
    private readonly connectionId: string,
    private readonly producer: Producer,
    private readonly serdes: {
      entities: Serde<RawEnvelope>;
      usage: Serde<RawEnvelope>;
      state: Serde<SyncState>;
      runs: Serde<SyncRun>;
    },
  ) {}

  static transactionalId(config: Config, connectionId: string): string {
    return `${config.kafka.topicPrefix}producer.${connectionId}`;
  }

  static async open(deps: WriterDeps, connectionId: string): Promise<SyncWriter> {
    const prefix = deps.config.kafka.topicPrefix;
    const [entities, usage, state, runs] = await Promise.all([
      deps.registry.registerTopic(prefix, 'rawEntities'),
      deps.registry.registerTopic(prefix, 'rawUsage'),
      deps.registry.registerTopic(prefix, 'syncState'),
      deps.registry.registerTopic(prefix, 'syncRuns'),
    ]);
    const producer = deps.kafka.producer({
      transactionalId: SyncWriter.transactionalId(deps.config, connectionId),
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      transactionTimeout: 60_000,
    });
    try {
      await producer.connect();
    } catch (cause) {
      throw new MeterflowError('KAFKA_UNREACHABLE', `connection ${connectionId}: cannot connect the producer: ${errorMessage(cause)}`, {
        cause,
        retriable: true,
        context: { connection: connectionId },
      });
    }
    return new SyncWriter(deps, connectionId, producer, { entities, usage, state, runs });
  }

  private topic(id: 'rawEntities' | 'rawUsage' | 'syncState' | 'syncRuns'): string {
    return topicName(this.deps.config.kafka.topicPrefix, id);
  }

  /** Runs `fn`'s sends in one transaction, after every earlier call finished. */
  private transact(batches: { topic: string; messages: Message[] }[]): Promise<void> {
    const run = async (): Promise<void> => {
      const nonEmpty = batches.filter((b) => b.messages.length > 0);
      if (nonEmpty.length === 0) return;
      const txn = await this.producer.transaction();
      try {
        for (const b of nonEmpty) await txn.send({ topic: b.topic, messages: b.messages, compression: COMPRESSION });
        await txn.commit();
      } catch (cause) {
        await txn.abort().catch(() => undefined);
        throw new MeterflowError('KAFKA_UNREACHABLE', `connection ${this.connectionId}: transaction failed: ${errorMessage(cause)}`, {
          cause,
          retriable: true,
          context: { connection: this.connectionId, topics: nonEmpty.map((b) => b.topic) },
        });
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private envelopeMessages(serde: Serde<RawEnvelope>, envs: RawEnvelope[]): Message[] {
    return envs.map((e) => ({ key: entityKey(e.connection_id, e.external_id), value: serde.encode(e) }));
  }

  private stateMessages(states: SyncState[]): Message[] {
    return states.map((s) => ({ key: entityKey(s.connection_id, s.scope), value: this.serdes.state.encode(s) }));
  }

  /** Entity envelopes of one page. */
  entities(envs: RawEnvelope[]): Promise<void> {
    return this.transact([{ topic: this.topic('rawEntities'), messages: this.envelopeMessages(this.serdes.entities, envs) }]);
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
      messages.push({ key: entityKey(template.connection_id, '*'), value: this.serdes.entities.encode(template), partition: p });
    }
    await this.transact([{ topic: this.topic('rawEntities'), messages }]);
    return n;
  }

  run(record: SyncRun): Promise<void> {
    return this.transact([
      { topic: this.topic('syncRuns'), messages: [{ key: entityKey(record.connection_id, record.sync_run_id), value: this.serdes.runs.encode(record) }] },
    ]);
  }

  async close(): Promise<void> {
    await this.chain.catch(() => undefined);
    await this.producer.disconnect().catch(() => undefined);
  }
}
