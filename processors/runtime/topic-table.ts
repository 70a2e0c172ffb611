/**
 * A live, read-only view of a compacted topic (like a Kafka Streams GlobalKTable): every
 * instance reads all partitions from the beginning with a private consumer group that commits
 * nothing, and keeps the latest value per key in memory. `catchUp()` waits until the view
 * includes everything committed to the topic when it was called.
 */
import type { Consumer, Kafka } from 'kafkajs';
import { MeterflowError } from '../../lib/errors.js';
import { topicOffsets } from '../../lib/kafka.js';
import { sleep } from '../../lib/retry.js';

export class TopicTable<T> {
  private readonly rows = new Map<string, T>();
  private readonly positions = new Map<number, bigint>();
  private consumer: Consumer | undefined;
  private readonly groupId = `meterflow-table-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

  constructor(
    private readonly kafka: Kafka,
    readonly topic: string,
    private readonly decode: (value: Buffer) => Promise<T>,
    private readonly onError: (err: unknown, offset: string) => void = () => undefined,
  ) {}

  get(key: string): T | undefined {
    return this.rows.get(key);
  }

  get size(): number {
    return this.rows.size;
  }

  values(): IterableIterator<T> {
    return this.rows.values();
  }

  async start(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      // New meters should show up within a fraction of a second, not after a 5 s long poll.
      maxWaitTimeInMs: 250,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      this.positions.set(e.payload.partition, BigInt(e.payload.lastOffset) + 1n);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (!m.key) continue;
          const key = m.key.toString('utf8');
          if (m.value === null) {
            this.rows.delete(key);
            continue;
          }
          try {
            this.rows.set(key, await this.decode(m.value));
          } catch (err) {
            this.onError(err, m.offset);
          }
        }
      },
    });
    await this.catchUp();
  }

  /** Waits until every record committed to the topic before this call is in the view. */
  async catchUp(timeoutMs = 30_000): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    let targets: { partition: number; high: bigint; low: bigint }[];
    try {
      targets = (await topicOffsets(admin, this.topic)).map((o) => ({
        partition: o.partition,
        high: BigInt(o.high),
        low: BigInt(o.low),
      }));
    } finally {
      await admin.disconnect();
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const behind = targets.filter(
        (t) => t.high > t.low && (this.positions.get(t.partition) ?? t.low) < t.high,
      );
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        throw new MeterflowError(
          'RT_STATE_RESTORE',
          `table ${this.topic} did not catch up within ${timeoutMs} ms`,
          {
            retriable: true,
            context: { topic: this.topic, partitions: behind.map((b) => b.partition) },
          },
        );
      }
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    const admin = this.kafka.admin();
    await admin.connect().catch(() => undefined);
    await admin.deleteGroups([this.groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
