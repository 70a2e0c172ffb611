/**
 * One quarantine record per rejected message and reason: the rows counted, the first listed,
 * the original bytes once, everything within QUARANTINE_LIMITS.
 */
import { describe, expect, it } from 'vitest';
import { RejectionGroups } from '../../../../processors/runtime/quarantine.js';
import type { InMessage, Rejection } from '../../../../processors/runtime/stage.js';
import {
  QUARANTINE_LIMITS,
  quarantineHeaders,
  quarantineKey,
  ruleOf,
} from '../../../../schemas/quarantine.js';
import { connectionOfKey, QUARANTINE_HEADERS } from '../../../../schemas/topics.js';

function message(offset: string, bytes = 250_000): InMessage {
  return {
    topic: 'meterflow.raw.usage',
    partition: 3,
    offset,
    key: 'acme/m1',
    value: Buffer.alloc(bytes, 7),
    headers: {},
    timestamp: '0',
  };
}

const missing = (i: number, rows = 2_976): Rejection => ({
  code: 'NORM_PAYLOAD_SCHEMA',
  message: `${i}.reading: usage.fields.value \`reading\` missing`,
  connectionId: 'acme',
  recordIndex: i,
  detail: JSON.stringify({ from: `2024-06-01T00:${i}`, reading: i }),
  rows,
});

describe('quarantine records of the processors', () => {
  it('a message whose 2,976 rows all fail one rule is one record with the count and the first rows', () => {
    const src = message('41');
    const groups = new RejectionGroups();
    for (let i = 0; i < 2_976; i++) groups.add(src, missing(i));
    const [q, ...more] = groups.take('usage', 1_000);
    expect(more).toEqual([]);
    expect(q!.original).toBe(src.value); // the bytes once, not a copy per row
    expect(q!.record_index).toBe(0);
    expect(q!.message).toBe('*.reading: usage.fields.value `reading` missing in 2,976 of 2,976 rows');
    const detail = JSON.parse(q!.detail!) as {
      rows: number;
      rejected: number;
      messages: { message: string; rows: number }[];
      first: { index: number; message: string; record: unknown }[];
    };
    expect(detail.rows).toBe(2_976);
    expect(detail.rejected).toBe(2_976);
    expect(detail.messages).toEqual([
      { message: '*.reading: usage.fields.value `reading` missing', rows: 2_976 },
    ]);
    expect(detail.first.map((f) => f.index)).toEqual(
      Array.from({ length: QUARANTINE_LIMITS.rows }, (_, i) => i),
    );
    expect(detail.first[3]).toEqual({
      index: 3,
      message: '3.reading: usage.fields.value `reading` missing',
      record: { from: '2024-06-01T00:3', reading: 3 },
    });
    expect(groups.size).toBe(0);
  });

  it('one record per message and reason, with ids that a replay gives again', () => {
    const run = () => {
      const groups = new RejectionGroups();
      for (const offset of ['7', '8']) {
        const src = message(offset, 10);
        groups.add(src, missing(0, 3));
        groups.add(src, { ...missing(1, 3), code: 'VAL_NOT_FINITE', message: '1.reading: value is NaN' });
        groups.add(src, missing(2, 3));
      }
      return groups.take('usage', Date.now());
    };
    const first = run();
    expect(first.map((q) => [q.source_offset, q.reason_code, q.record_index])).toEqual([
      [7, 'NORM_PAYLOAD_SCHEMA', 0],
      [7, 'VAL_NOT_FINITE', 1],
      [8, 'NORM_PAYLOAD_SCHEMA', 0],
      [8, 'VAL_NOT_FINITE', 1],
    ]);
    expect(new Set(first.map((q) => q.id)).size).toBe(4);
    expect(run().map((q) => q.id)).toEqual(first.map((q) => q.id));
    expect(first[0]!.message).toBe('*.reading: usage.fields.value `reading` missing in 2 of 3 rows');
    // A single failing row keeps its own message.
    expect(first[1]!.message).toBe('1.reading: value is NaN');
  });

  it('rows failing different rules: the main rule and the others are said', () => {
    const src = message('1', 10);
    const groups = new RejectionGroups();
    for (let i = 0; i < 3_000; i++) {
      groups.add(
        src,
        i % 3 === 2
          ? { ...missing(i, 3_000), message: `${i}.from: required start is missing` }
          : missing(i, 3_000),
      );
    }
    const [q] = groups.take('usage', 0);
    expect(q!.message).toBe(
      '*.reading: usage.fields.value `reading` missing in 2,000 of 3,000 rows; *.from: required start is missing in 1,000 rows',
    );
  });

  it('a whole-message rejection keeps its message and detail', () => {
    const groups = new RejectionGroups();
    groups.add(message('5', 10), {
      code: 'NORM_DECODE_FAILED',
      message: 'not Avro',
      connectionId: null,
      recordIndex: null,
      detail: null,
    });
    const [q] = groups.take('usage', 0);
    expect(q).toMatchObject({ message: 'not Avro', detail: null, record_index: null, connection_id: null });
  });

  it('message, detail and headers are bounded whatever the input (L9)', () => {
    const src = message('9', 10);
    const groups = new RejectionGroups();
    const huge = 'x'.repeat(50_000);
    for (let i = 0; i < 100; i++) {
      groups.add(src, {
        code: 'NORM_PAYLOAD_SCHEMA',
        message: `${i}: ${huge}`,
        connectionId: 'acme',
        recordIndex: i,
        detail: JSON.stringify({ blob: huge }),
      });
    }
    groups.add(message('10', 10), {
      code: 'NORM_PAYLOAD_SCHEMA',
      message: huge,
      connectionId: 'acme',
      recordIndex: null,
      detail: huge,
    });
    for (const q of groups.take('usage', 0)) {
      expect(q.message.length).toBeLessThanOrEqual(QUARANTINE_LIMITS.message);
      expect(q.detail!.length).toBeLessThanOrEqual(QUARANTINE_LIMITS.detail);
      expect(quarantineHeaders(q)[QUARANTINE_HEADERS.message]!.length).toBeLessThanOrEqual(
        QUARANTINE_LIMITS.header,
      );
      if (q.source_offset === 9) expect(JSON.parse(q.detail!)).toMatchObject({ rejected: 100 });
    }
  });

  it('keys carry the connection; one parser reads it back', () => {
    const groups = new RejectionGroups();
    groups.add({ ...message('3', 10), key: null }, missing(0, 1));
    const [q] = groups.take('usage', 0);
    expect(quarantineKey(q!)).toBe('acme/meterflow.raw.usage:3:3');
    expect(connectionOfKey(quarantineKey(q!))).toBe('acme');
    expect(connectionOfKey(Buffer.from('acme/m1'))).toBe('acme');
    expect(connectionOfKey('no-slash')).toBeNull();
    expect(connectionOfKey(null)).toBeNull();
  });

  it('a rule is the message with its own row index as *', () => {
    expect(ruleOf('readings.12.direction: invalid', 12)).toBe('readings.*.direction: invalid');
    expect(ruleOf('values.3: not a number', 3)).toBe('values.*: not a number');
    expect(ruleOf('12: kWh 12 is negative', 12)).toBe('kWh 12 is negative');
    expect(ruleOf('channel "steam" is not allowed', 4)).toBe('channel "steam" is not allowed');
  });
});
