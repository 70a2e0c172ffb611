/**
 * Keyed state of a stage, split by input partition, with the changes of the current batch
 * tracked so that `flush` writes exactly them to the changelog (JSON values; null deletes).
 */
import type { Output } from './stage.js';

export class PartitionStore<T> {
  private readonly data = new Map<number, Map<string, T>>();
  private readonly dirty = new Map<number, Set<string>>();

  /** The partition's entries (created empty on first use). */
  partition(partition: number): Map<string, T> {
    let m = this.data.get(partition);
    if (!m) this.data.set(partition, (m = new Map<string, T>()));
    return m;
  }

  get(partition: number, key: string): T | undefined {
    return this.data.get(partition)?.get(key);
  }

  set(partition: number, key: string, value: T): void {
    this.partition(partition).set(key, value);
    this.touch(partition, key);
  }

  delete(partition: number, key: string): void {
    this.data.get(partition)?.delete(key);
    this.touch(partition, key);
  }

  private touch(partition: number, key: string): void {
    let d = this.dirty.get(partition);
    if (!d) this.dirty.set(partition, (d = new Set<string>()));
    d.add(key);
  }

  /** Applies one changelog record (restore); not marked dirty. */
  restore(partition: number, key: string, value: Buffer | null): void {
    if (value === null) this.data.get(partition)?.delete(key);
    else this.partition(partition).set(key, JSON.parse(value.toString('utf8')) as T);
  }

  drop(partition: number): void {
    this.data.delete(partition);
    this.dirty.delete(partition);
  }

  /** Writes the partition's changes since the last flush to the changelog. */
  flush(partition: number, out: Output): void {
    const d = this.dirty.get(partition);
    if (!d) return;
    const m = this.data.get(partition);
    for (const key of d) {
      const value = m?.get(key);
      out.changelog(partition, key, value === undefined ? null : Buffer.from(JSON.stringify(value)));
    }
    this.dirty.delete(partition);
  }
}
