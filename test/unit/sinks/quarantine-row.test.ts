/**
 * The sink's quarantine row: the original as hex straight into the line's bytes (no string of
 * twice its size), and the sink's records built by the one quarantine builder.
 */
import { describe, expect, it } from 'vitest';
import { quarantineRow } from '../../../sinks/clickhouse/rows.js';
import { SINK_STAGE } from '../../../sinks/clickhouse/quarantine.js';
import { buildQuarantineRecord, RejectedRows } from '../../../schemas/quarantine.js';
import type { QuarantineRecord } from '../../../schemas/records.js';

const coords = { partition: 1, offset: '12', timestamp: String(Date.UTC(2024, 0, 1)) };

function record(original: Buffer, message = 'bad'): QuarantineRecord {
  const rejected = new RejectedRows('SINK_INSERT_REJECTED');
  rejected.add(null, message, null);
  return buildQuarantineRecord({
    stage: SINK_STAGE,
    source: { topic: 't', partition: 0, offset: '4', key: 'c/m', value: original },
    connectionId: 'c',
    rejected,
    now: Date.UTC(2024, 0, 2),
  });
}

describe('quarantine rows for ClickHouse', () => {
  it('writes original_hex into a Buffer line that parses to the whole row', () => {
    const original = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 256));
    const r = quarantineRow(record(original), coords);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Buffer.isBuffer(r.line)).toBe(true);
    const row = JSON.parse(r.line.toString()) as Record<string, unknown>;
    expect(row.original_hex).toBe(original.toString('hex'));
    expect(row.original_size).toBe(200_000);
    expect(row).toMatchObject({ stage: 'sink', reason_code: 'SINK_INSERT_REJECTED', message: 'bad' });
    // The line is the hex plus the other columns: nothing else of the original's size.
    expect(r.line.length).toBeLessThan(original.length * 2 + 1_000);
  });

  it('input that imitates the placeholder cannot move the hex', () => {
    const original = Buffer.from('payload');
    const r = quarantineRow(record(original, '\u0000original_hex\u0000'), coords);
    if (!r.ok) throw new Error('not mapped');
    const row = JSON.parse(r.line.toString()) as Record<string, unknown>;
    expect(row.message).toBe('\u0000original_hex\u0000');
    expect(row.original_hex).toBe(original.toString('hex'));
  });

  it('an empty original is an empty hex', () => {
    const r = quarantineRow(record(Buffer.alloc(0)), coords);
    if (!r.ok) throw new Error('not mapped');
    expect(JSON.parse(r.line.toString())).toMatchObject({ original_hex: '', original_size: 0 });
  });

  it('many refused intervals of one record are one record: count and first indexes', () => {
    const rejected = new RejectedRows('SINK_INSERT_REJECTED');
    for (let i = 10; i < 5_000; i++)
      rejected.add(i, 'not stored: value is NaN, not a finite number', '{"v":null}');
    const q = buildQuarantineRecord({
      stage: SINK_STAGE,
      source: { topic: 'usage', partition: 2, offset: '99', key: 'c/m', value: Buffer.alloc(100_000) },
      connectionId: 'c',
      rejected,
      rows: 5_000,
      now: 0,
    });
    expect(q.record_index).toBe(10);
    expect(q.message).toBe('not stored: value is NaN, not a finite number in 4,990 of 5,000 rows');
    const detail = JSON.parse(q.detail!) as { rows: number; rejected: number; first: { index: number }[] };
    expect(detail).toMatchObject({ rows: 5_000, rejected: 4_990 });
    expect(detail.first.map((f) => f.index)).toEqual(Array.from({ length: 20 }, (_, i) => 10 + i));
  });
});
