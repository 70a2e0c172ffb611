/**
 * Aggregate stage: usage → usage.daily and usage.monthly (compacted, versioned).
 *
 * One AggregateState per input partition holds the slots of the partition's meters; its dirty
 * days go to the changelog in the same transaction as the aggregates they produced, so a
 * restarted or rebalanced instance rebuilds exactly the committed slots. Replays are safe: a
 * replayed interval replaces its own slot, and an unchanged aggregate is not emitted again.
 */
import type { Config } from '../../lib/config.js';
import type { AvroRegistry, Serde } from '../../lib/registry.js';
import { readerType } from '../../lib/registry.js';
import { aggregateKey, topicName } from '../../schemas/topics.js';
import type { UsageAggregate, UsageBatch } from '../../schemas/records.js';
import { AggregateState } from './core/index.js';
import type { InMessage, Output, Stage } from '../runtime/stage.js';
import { connectionOfKey } from '../runtime/quarantine.js';
import { decodeValue } from '../runtime/envelope.js';

export interface AggregateStageDeps {
  config: Config;
  registry: AvroRegistry;
  now?: () => number;
}

export class AggregateStage implements Stage {
  readonly name = 'aggregate';
  readonly groupId: string;
  readonly inputTopic: string;
  readonly changelogTopic: string;
  readonly outputTopics;
  private readonly dailyTopic: string;
  private readonly monthlyTopic: string;
  private dailySerde!: Serde<UsageAggregate>;
  private monthlySerde!: Serde<UsageAggregate>;
  private readonly states = new Map<number, AggregateState>();
  private readonly reader = readerType('usage');
  /** Latest aggregate per key changed in the current batch: one message per key per batch. */
  private readonly pending = new Map<number, Map<string, UsageAggregate>>();
  private readonly now: () => number;

  constructor(private readonly deps: AggregateStageDeps) {
    const prefix = deps.config.kafka.topicPrefix;
    this.groupId = `${prefix}processors.aggregate`;
    this.inputTopic = topicName(prefix, 'usage');
    this.changelogTopic = `${prefix}state.aggregate`;
    this.dailyTopic = topicName(prefix, 'usageDaily');
    this.monthlyTopic = topicName(prefix, 'usageMonthly');
    this.outputTopics = [
      { name: this.dailyTopic, cleanup: 'compact' as const },
      { name: this.monthlyTopic, cleanup: 'compact' as const },
    ];
    this.now = deps.now ?? Date.now;
  }

  async setup(): Promise<void> {
    const prefix = this.deps.config.kafka.topicPrefix;
    this.dailySerde = await this.deps.registry.registerTopic(prefix, 'usageDaily');
    this.monthlySerde = await this.deps.registry.registerTopic(prefix, 'usageMonthly');
  }

  private state(partition: number): AggregateState {
    let s = this.states.get(partition);
    if (!s) this.states.set(partition, (s = new AggregateState()));
    return s;
  }

  restore(partition: number, key: string, value: Buffer | null): void {
    this.state(partition).restore({ key, value });
  }

  drop(partition: number): void {
    this.states.delete(partition);
    this.pending.delete(partition);
  }

  async process(msg: InMessage, out: Output): Promise<void> {
    const decoded = await decodeValue<UsageBatch>(this.deps.registry, msg, this.reader);
    if (!decoded.ok) {
      out.reject(msg, { ...decoded.rejection, connectionId: connectionOfKey(msg.key) });
      return;
    }
    const batch = decoded.value;
    const result = this.state(msg.partition).apply(batch, this.now());
    for (const r of result.rejects) out.reject(msg, { ...r, connectionId: batch.connection_id });
    let pending = this.pending.get(msg.partition);
    if (!pending) this.pending.set(msg.partition, (pending = new Map<string, UsageAggregate>()));
    for (const agg of result.aggregates) pending.set(aggregateKey(agg), agg);
  }

  flush(partition: number, out: Output): void {
    for (const [key, agg] of this.pending.get(partition) ?? []) {
      // Compacted topics keep one value per key, so the key names the whole aggregate; the
      // partition mirrors the input's, keeping all of a meter's aggregates on one partition.
      if (agg.granularity === 'day')
        out.send({ topic: this.dailyTopic, key, value: this.dailySerde.encode(agg), partition });
      else out.send({ topic: this.monthlyTopic, key, value: this.monthlySerde.encode(agg), partition });
    }
    this.pending.delete(partition);
    const s = this.states.get(partition);
    if (!s) return;
    for (const entry of s.snapshotDirty()) out.changelog(partition, entry.key, entry.value);
  }
}
