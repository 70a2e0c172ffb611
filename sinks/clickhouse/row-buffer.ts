/**
 * The family's buffer of consumed records and its batch policy, without Kafka or ClickHouse: what
 * one insert takes, when a batch is full, when the buffer is over its bounds (pause) or back under
 * half of them (resume), and when a partial batch is due (by age, or because every assigned
 * partition was read to its end). Time is passed in, so the rules are testable without timers.
 */

/** What the buffer needs to know of a record. */
export interface Sized {
  /** Rows it stores (0 for a tombstone or a record refused whole). */
  rowCount: number;
  /** Bytes it holds in memory. */
  bytes: number;
}

export interface BufferBounds {
  /** Rows of one insert. */
  batchMaxRows: number;
  /** Bytes of one insert. */
  batchMaxBytes: number;
  /** ms: a partial batch is flushed when its oldest record is this old. */
  batchMaxMs: number;
  /** Rows above which consumption pauses. */
  maxBufferedRows: number;
  /** Bytes above which consumption pauses. */
  maxBufferedBytes: number;
  /** Flush a partial batch once every assigned partition was read to its end. */
  flushWhenCaughtUp: boolean;
}

export class RowBuffer<T extends Sized> {
  private entries: T[] = [];
  /** Rows buffered; a record without rows counts as one, so that records alone fill it too. */
  private rows = 0;
  private bytes = 0;
  /** When the oldest buffered record arrived (or the rest of the buffer, after a take). */
  private oldestAt = 0;
  /** When the last partial batch was flushed (by age or because the member caught up). */
  private partialFlushAt = 0;

  constructor(private readonly bounds: BufferBounds) {}

  get length(): number {
    return this.entries.length;
  }

  get bufferedRows(): number {
    return this.rows;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  push(entry: T, now: number): void {
    if (this.entries.length === 0) this.oldestAt = now;
    this.entries.push(entry);
    this.rows += Math.max(1, entry.rowCount);
    this.bytes += entry.bytes;
  }

  /** Takes whole records from the head, up to one batch of rows and of bytes (at least one). */
  take(now: number): T[] {
    const b = this.bounds;
    let rows = 0;
    let bytes = 0;
    let n = 0;
    while (
      n < this.entries.length &&
      (n === 0 ||
        (rows + this.entries[n]!.rowCount <= b.batchMaxRows &&
          bytes + this.entries[n]!.bytes <= b.batchMaxBytes))
    ) {
      rows += this.entries[n]!.rowCount;
      bytes += this.entries[n]!.bytes;
      n++;
    }
    const taken = this.entries.splice(0, n);
    this.rows = 0;
    this.bytes = 0;
    for (const e of this.entries) {
      this.rows += Math.max(1, e.rowCount);
      this.bytes += e.bytes;
    }
    if (this.entries.length > 0) this.oldestAt = now;
    return taken;
  }

  /**
   * One batch is buffered: by rows or by bytes. A buffer bound set below the batch bound makes a
   * full buffer a batch: consumption pauses there, so waiting for more would only wait for
   * batchMaxMs.
   */
  batchFull(): boolean {
    const b = this.bounds;
    return (
      this.rows >= Math.min(b.batchMaxRows, b.maxBufferedRows) ||
      this.bytes >= Math.min(b.batchMaxBytes, b.maxBufferedBytes)
    );
  }

  /** At or above a buffer bound: consumption pauses. */
  overBounds(): boolean {
    return this.rows >= this.bounds.maxBufferedRows || this.overByteBound();
  }

  /** At or above the byte bound: a few large records fill memory before rows do. */
  overByteBound(): boolean {
    return this.bytes >= this.bounds.maxBufferedBytes;
  }

  /** Below half of both bounds: consumption paused for the buffer may resume. */
  drainedBelowHalf(): boolean {
    return this.rows < this.bounds.maxBufferedRows / 2 && this.bytes < this.bounds.maxBufferedBytes / 2;
  }

  /** The oldest buffered record is batchMaxMs old. */
  aged(now: number): boolean {
    return this.entries.length > 0 && now - this.oldestAt >= this.bounds.batchMaxMs;
  }

  /**
   * Whether to flush a partial batch now instead of when its oldest row is batchMaxMs old: every
   * partition assigned to this member was read to its end, so waiting would only add latency
   * (the end of a backfill, a quiet stream). Not within batchMaxMs of the last partial flush, so
   * that a trickle of records still makes about one small insert per batchMaxMs, as the age rule
   * alone does. A question only: the caller records the flush with partialFlushed().
   */
  caughtUp(now: number, allReadToEnd: () => boolean): boolean {
    return (
      this.entries.length > 0 &&
      this.bounds.flushWhenCaughtUp &&
      now - this.partialFlushAt >= this.bounds.batchMaxMs &&
      allReadToEnd()
    );
  }

  /** Records that a partial batch is being flushed now (by age or caught up). */
  partialFlushed(now: number): void {
    this.partialFlushAt = now;
  }
}
