import { describe, expect, it } from 'vitest';
import { GridStore, IrregularStore, PAGE_SIZE } from '../../../../processors/aggregate/core/slots.js';
import {
  decodeEntry,
  encodeDay,
  encodeMonth,
  slotArray,
} from '../../../../processors/aggregate/core/codec.js';
import {
  calendarFor,
  dateToDayNo,
  dayNoToDate,
  monthNoToString,
  monthOfDayNo,
  firstDayOfMonth,
  wallToInstant,
  offsetAt,
} from '../../../../processors/aggregate/core/zone.js';

describe('GridStore', () => {
  it('stores exact doubles, widening integer pages and falling back to Float64', () => {
    const g = new GridStore(900_000, 0);
    const values = [1, 12.345, 0.000001, 2_000_000.5, 1 / 3, -0.25, 0];
    values.forEach((v, k) => expect(g.set(k, v, k % 2 === 0)).toBe(true));
    values.forEach((v, k) => {
      expect(g.get(k)).toBe(v);
      expect(g.isEstimated(k)).toBe(k % 2 === 0);
    });
    expect(g.size).toBe(values.length);
    expect(g.set(1, 12.345, false)).toBe(false); // unchanged
    expect(g.set(1, 12.345, true)).toBe(true); // the flag changed
    expect(g.clear(1)).toBe(true);
    expect(g.clear(1)).toBe(false);
    expect(Number.isNaN(g.get(1))).toBe(true);
    expect(g.size).toBe(values.length - 1);
  });

  it('keeps short decimals in 4 bytes a slot', () => {
    const g = new GridStore(900_000, 0);
    for (let k = 0; k < PAGE_SIZE; k++) g.set(k, (k * 7) / 1000, false);
    expect(g.bytes()).toBe(PAGE_SIZE * 4 + PAGE_SIZE / 8);
    const out = { sum: 0, count: 0, estimated: 0 };
    g.sumRange(0, PAGE_SIZE, out);
    let expected = 0;
    for (let k = 0; k < PAGE_SIZE; k++) expected += (k * 7) / 1000;
    expect(out).toEqual({ sum: expected, count: PAGE_SIZE, estimated: 0 });
  });

  it('handles negative slot indices, pages and phases', () => {
    const g = new GridStore(3_600_000, 1_800_000 + 3_600_000 * 5);
    expect(g.phase).toBe(1_800_000);
    expect(g.indexOf(1_800_000 - 3_600_000 * 3000)).toBe(-3000);
    expect(g.indexOf(1_800_001)).toBeUndefined();
    g.set(-3000, 5, true);
    g.set(PAGE_SIZE * 3 + 1, 6, false);
    const seen: [number, number, boolean][] = [];
    g.forEach((i, v, e) => seen.push([i, v, e]));
    expect(seen).toEqual([
      [-3000, 5, true],
      [PAGE_SIZE * 3 + 1, 6, false],
    ]);
  });
});

describe('IrregularStore', () => {
  it('replaces by start and finds overlaps', () => {
    const s = new IrregularStore();
    expect(s.upsert({ start: 100, end: 200, value: 1, estimated: false })).toBeUndefined();
    expect(s.upsert({ start: 0, end: 50, value: 2, estimated: false })).toBeUndefined();
    expect(s.upsert({ start: 100, end: 200, value: 1, estimated: false })).toBe('unchanged');
    expect(s.upsert({ start: 100, end: 300, value: 3, estimated: true })).toEqual({
      start: 100,
      end: 200,
      value: 1,
      estimated: false,
    });
    const hits: number[] = [];
    s.forEachOverlapping(250, 260, (iv) => hits.push(iv.start));
    expect(hits).toEqual([100]);
    expect(s.remove(100)).toMatchObject({ value: 3 });
    expect(s.size).toBe(1);
    expect(s.minDuration()).toBe(50);
  });
});

describe('changelog codec', () => {
  it('round-trips day and month entries', () => {
    const day = {
      connection_id: 'c1',
      meter_external_id: 'mätare|7',
      channel: 'consumption' as const,
      zone: 'Europe/Helsinki',
      unit: 'kWh',
      dayNo: 19_813,
      version: 1_800_000_000_123,
      gridRes: 900_000,
      gridPhase: 0,
      slots: [
        { index: 1_900_000, value: 1.5, estimated: false },
        { index: 1_900_007, value: 1 / 3, estimated: true },
      ],
      irregular: [{ start: 1, end: 86_400_001, value: 24, estimated: true }],
    };
    const { slots, ...rest } = day;
    expect(decodeEntry(encodeDay(rest, slotArray(slots)))).toEqual({ kind: 1, ...day });
    const month = {
      connection_id: 'c1',
      meter_external_id: 'm',
      channel: 'cost' as const,
      zone: 'UTC',
      unit: 'EUR',
      monthNo: 24_290,
      version: 5,
    };
    expect(decodeEntry(encodeMonth(month))).toEqual({ kind: 2, ...month });
    expect(() => decodeEntry(Buffer.from([9, 1]))).toThrow();
  });
});

describe('zone arithmetic', () => {
  it('converts day and month numbers', () => {
    const d = dateToDayNo('2024-02-29');
    expect(dayNoToDate(d)).toBe('2024-02-29');
    expect(Number.isNaN(dateToDayNo('2023-02-29'))).toBe(true);
    expect(monthNoToString(monthOfDayNo(d))).toBe('2024-02');
    expect(dayNoToDate(firstDayOfMonth(monthOfDayNo(d) + 1))).toBe('2024-03-01');
    expect(monthNoToString(monthOfDayNo(dateToDayNo('2024-12-31')) + 1)).toBe('2025-01');
  });

  it('finds local midnights, also where midnight does not exist', () => {
    // Santiago skipped 00:00-01:00 on 2024-09-08: the day starts at 01:00 local (04:00Z).
    const cal = calendarFor('America/Santiago');
    expect(cal.dayStart(dateToDayNo('2024-09-08'))).toBe(Date.UTC(2024, 8, 8, 4));
    expect(cal.dayLength(dateToDayNo('2024-09-08'))).toBe(23 * 3_600_000);
    // Kathmandu is UTC+05:45.
    expect(offsetAt('Asia/Kathmandu', Date.UTC(2024, 0, 1))).toBe((5 * 60 + 45) * 60_000);
    expect(wallToInstant('Asia/Kathmandu', Date.UTC(2024, 0, 1))).toBe(Date.UTC(2023, 11, 31, 18, 15));
  });
});
