/**
 * What this member owns and how far it has read each partition: the caught-up rule asks whether
 * every assigned partition was read to its end, and commits skip partitions it no longer owns.
 * Lags are kept as kafkajs reports them (decimal strings).
 */
/** One string per topic-partition, for maps. */
export const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class PartitionProgress {
  private assignment = new Map<string, Set<number>>();
  /** Per topic-partition, the lag after the last batch read to its end (control records count). */
  private readonly lagAfterBatch = new Map<string, string>();

  /** A new assignment (group join): what was known of the lags no longer holds. */
  assign(memberAssignment: Record<string, number[]>): void {
    this.assignment = new Map(Object.entries(memberAssignment).map(([t, ps]) => [t, new Set(ps)]));
    this.lagAfterBatch.clear();
  }

  /** A batch of the partition was read to its end, leaving `lag` behind it. */
  readTo(topic: string, partition: number, lag: string): void {
    this.lagAfterBatch.set(partitionKey(topic, partition), lag);
  }

  /**
   * The group's lag of an assigned partition, read at the join, unless a batch told more since.
   * A lag of one is taken as nothing: after a restart, the record behind the committed offset of a
   * transactional topic is usually the commit marker (at worst a flush comes early).
   */
  learnLag(topic: string, partition: number, assigned: number[], lag: number): void {
    const k = partitionKey(topic, partition);
    if (assigned.includes(partition) && !this.lagAfterBatch.has(k))
      this.lagAfterBatch.set(k, lag <= 1 ? '0' : String(lag));
  }

  /** Every assigned partition was read to its end (true with no assignment yet). */
  allReadToEnd(): boolean {
    for (const [t, ps] of this.assignment) {
      for (const p of ps) if (this.lagAfterBatch.get(partitionKey(t, p)) !== '0') return false;
    }
    return true;
  }

  /** Whether this member may commit the partition: it owns it, or no assignment is known yet. */
  owns(topic: string, partition: number): boolean {
    return this.assignment.size === 0 || this.assignment.get(topic)?.has(partition) === true;
  }
}
