/**
 * The sink's batch policy without Kafka or ClickHouse (sinks/clickhouse/row-buffer.ts): what one
 * insert takes, when a batch is full, the pause and resume marks, and when a partial batch is due.
 */
import { describe, expect, it } from 'vitest';
import { RowBuffer, type BufferBounds, type Sized } from '../../../sinks/clickhouse/row-buffer.js';

const bounds: BufferBounds = {
  batchMaxRows: 100,
  batchMaxBytes: 10_000,
  batchMaxMs: 1_000,
  maxBufferedRows: 200,
  maxBufferedBytes: 20_000,
  flushWhenCaughtUp: true,
};

interface Rec extends Sized {
  id: number;
}

let next = 0;
const rec = (rowCount: number, bytes = 10): Rec => ({ id: next++, rowCount, bytes });

function filled(recs: Rec[], b: Partial<BufferBounds> = {}, now = 0): RowBuffer<Rec> {
  const buf = new RowBuffer<Rec>({ ...bounds, ...b });
  for (const r of recs) buf.push(r, now);
  return buf;
}

describe('RowBuffer.take', () => {
  it('takes whole records from the head up to one batch of rows, in order', () => {
    const recs = [rec(40), rec(40), rec(40), rec(10)];
    const buf = filled(recs);
    expect(buf.take(5).map((r) => r.id)).toEqual([recs[0]!.id, recs[1]!.id]);
    expect(buf.length).toBe(2);
    expect(buf.bufferedRows).toBe(50);
    expect(buf.take(5).map((r) => r.id)).toEqual([recs[2]!.id, recs[3]!.id]);
    expect(buf.length).toBe(0);
  });

  it('stops at the byte bound too, and always takes at least one record, however large', () => {
    const buf = filled([rec(1, 6_000), rec(1, 6_000), rec(500, 50_000)]);
    expect(buf.take(0)).toHaveLength(1);
    expect(buf.take(0)).toHaveLength(1);
    const [huge] = buf.take(0);
    expect(huge!.rowCount).toBe(500);
    expect(buf.take(0)).toEqual([]);
  });

  it('counts a record without rows as one row, so tombstones alone fill the buffer too', () => {
    const buf = filled(Array.from({ length: 100 }, () => rec(0, 0)));
    expect(buf.bufferedRows).toBe(100);
    expect(buf.batchFull()).toBe(true);
    // Records without rows cost nothing in a batch: one insert takes them all.
    expect(buf.take(0)).toHaveLength(100);
    expect(buf.bufferedRows).toBe(0);
  });
});

describe('RowBuffer bounds', () => {
  it('a batch is full at batchMaxRows or at batchMaxBytes', () => {
    expect(filled([rec(99)]).batchFull()).toBe(false);
    expect(filled([rec(99), rec(1)]).batchFull()).toBe(true);
    expect(filled([rec(1, 9_999)]).batchFull()).toBe(false);
    expect(filled([rec(1, 10_000)]).batchFull()).toBe(true);
  });

  it('a buffer bound below the batch bound makes a full buffer a batch', () => {
    expect(filled([rec(30)], { maxBufferedRows: 30 }).batchFull()).toBe(true);
    expect(filled([rec(1, 3_000)], { maxBufferedBytes: 3_000 }).batchFull()).toBe(true);
  });

  it('over the buffer bounds pauses; under half of both resumes', () => {
    const buf = filled([rec(100), rec(99)]);
    expect(buf.overBounds()).toBe(false);
    buf.push(rec(1), 0);
    expect(buf.overBounds()).toBe(true);
    expect(buf.overByteBound()).toBe(false);
    buf.take(0);
    // 100 rows left: half the row bound is not below half.
    expect(buf.bufferedRows).toBe(100);
    expect(buf.drainedBelowHalf()).toBe(false);
    buf.take(0);
    expect(buf.drainedBelowHalf()).toBe(true);

    const big = filled([rec(1, 20_000)]);
    expect(big.overByteBound()).toBe(true);
    expect(big.overBounds()).toBe(true);
    const half = filled([rec(1, 10_000)]);
    expect(half.drainedBelowHalf()).toBe(false);
  });
});

describe('RowBuffer partial batches', () => {
  it('ages from its oldest record; after a take, from the take', () => {
    const buf = new RowBuffer<Rec>(bounds);
    expect(buf.aged(10_000)).toBe(false);
    buf.push(rec(60), 1_000);
    buf.push(rec(60), 1_800);
    expect(buf.aged(1_999)).toBe(false);
    expect(buf.aged(2_000)).toBe(true);
    buf.take(2_500);
    expect(buf.aged(3_000)).toBe(false);
    expect(buf.aged(3_500)).toBe(true);
  });

  it('is due when caught up, at most once per batchMaxMs, and asking has no effect', () => {
    const buf = filled([rec(1)], {}, 0);
    expect(buf.caughtUp(5_000, () => false)).toBe(false);
    expect(buf.caughtUp(5_000, () => true)).toBe(true);
    // A question: asking again gives the same answer.
    expect(buf.caughtUp(5_000, () => true)).toBe(true);
    buf.partialFlushed(5_000);
    expect(buf.caughtUp(5_999, () => true)).toBe(false);
    expect(buf.caughtUp(6_000, () => true)).toBe(true);
  });

  it('is never due when empty or with flushWhenCaughtUp off', () => {
    expect(new RowBuffer<Rec>(bounds).caughtUp(5_000, () => true)).toBe(false);
    expect(filled([rec(1)], { flushWhenCaughtUp: false }).caughtUp(5_000, () => true)).toBe(false);
  });
});
