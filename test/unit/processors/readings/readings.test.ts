import { describe, expect, it } from 'vitest';
import { differenceReadings, type LastReading } from '../../../../processors/readings/index.js';
import type { Reading } from '../../../../processors/normalise/types.js';

const D = 86_400_000;
const r = (day: number, value: number, index = day, estimated = false): Reading => ({
  timestamp: day * D,
  value,
  estimated,
  index,
});

describe('differenceReadings', () => {
  it('differences consecutive readings into [t_prev, t_cur) consumption, sorting first', () => {
    const out = differenceReadings(undefined, [r(2, 130), r(0, 100), r(1, 110, 1, true)]);
    expect(out.events).toEqual([]);
    expect(
      out.intervals.map((i) => [i.start / D, i.end / D, i.value, i.estimated, i.from_readings, i.channel]),
    ).toEqual([
      [0, 1, 10, true, true, 'consumption'],
      [1, 2, 20, true, true, 'consumption'],
    ]);
    expect(out.last).toEqual({ timestamp: 2 * D, value: 130, estimated: false, first: 0 });
  });

  it('continues from the stored last reading, which is plain JSON', () => {
    const first = differenceReadings(undefined, [r(0, 100), r(1, 110)]);
    const stored = JSON.parse(JSON.stringify(first.last)) as LastReading;
    const next = differenceReadings(stored, [r(2, 125)]);
    expect(next.intervals.map((i) => [i.start / D, i.end / D, i.value])).toEqual([[1, 2, 15]]);
  });

  it('drops exact duplicates, also of the stored reading (replays)', () => {
    const out = differenceReadings({ timestamp: 0, value: 100, estimated: false }, [
      r(0, 100),
      r(1, 110),
      r(1, 110, 5),
    ]);
    expect(out.events).toEqual([]);
    expect(out.intervals).toHaveLength(1);
  });

  it('quarantines a reading older than the baseline that contradicts it, or conflicting with it, never silently', () => {
    const out = differenceReadings({ timestamp: 5 * D, value: 500, estimated: false }, [
      r(3, 700),
      r(5, 501),
      r(6, 600),
    ]);
    expect(out.events.map((e) => [e.code, e.recordIndex])).toEqual([
      ['VAL_READING_OUT_OF_ORDER', 3],
      ['VAL_READING_OUT_OF_ORDER', 5],
    ]);
    expect(out.intervals.map((i) => i.value)).toEqual([100]);
  });

  it('counts re-delivered readings inside the span already differenced as covered, also from before a reset', () => {
    // Applied so far: day 0 to day 5, with a reset in between (values before it were higher).
    const prev = { timestamp: 5 * D, value: 50, estimated: false, first: 0 };
    const out = differenceReadings(prev, [r(1, 300), r(3, 900), r(4, 20), r(6, 80)]);
    expect(out.events).toEqual([]);
    expect(out.covered).toBe(3);
    expect(out.intervals.map((i) => [i.start / D, i.end / D, i.value])).toEqual([[5, 6, 30]]);
    expect(out.last).toMatchObject({ timestamp: 6 * D, first: 0 });
  });

  it('quarantines history older than the first reading ever applied: it cannot be differenced onto the baseline', () => {
    const out = differenceReadings({ timestamp: 5 * D, value: 500, estimated: false, first: 4 * D }, [
      r(2, 300),
      r(6, 650),
    ]);
    expect(out.events.map((e) => [e.code, e.recordIndex])).toEqual([['VAL_READING_OUT_OF_ORDER', 2]]);
    expect(out.events[0]!.message).toMatch(/older than the first reading applied/);
    expect(out.intervals.map((i) => i.value)).toEqual([150]);
  });

  it('treats a decrease without rollover value as a reset: no interval, one event, baseline restarts', () => {
    const out = differenceReadings(undefined, [r(0, 900), r(1, 950), r(2, 10), r(3, 25)]);
    expect(out.intervals.map((i) => [i.start / D, i.end / D, i.value])).toEqual([
      [0, 1, 50],
      [2, 3, 15],
    ]);
    expect(out.events).toHaveLength(1);
    expect(out.events[0]).toMatchObject({ code: 'VAL_METER_RESET', recordIndex: 2 });
    expect(JSON.parse(out.events[0]!.detail!)).toMatchObject({
      previous: { value: 950 },
      reading: { value: 10 },
    });
    expect(out.last).toMatchObject({ value: 25 });
    for (const i of out.intervals) expect(i.value).toBeGreaterThanOrEqual(0);
  });

  it('turns a plausible wrap at the rollover value into consumption flagged rollover', () => {
    const out = differenceReadings({ timestamp: 0, value: 99_990, estimated: false }, [r(1, 15)], {
      rolloverValue: 100_000,
    });
    expect(out.events).toEqual([]);
    expect(out.intervals).toHaveLength(1);
    expect(out.intervals[0]).toMatchObject({
      value: 25,
      metadata: { rollover: 'true' },
      from_readings: true,
    });
  });

  it('treats an implausible wrap as a reset even with a rollover value', () => {
    const out = differenceReadings({ timestamp: 0, value: 40_000, estimated: false }, [r(1, 100)], {
      rolloverValue: 100_000,
    });
    expect(out.intervals).toEqual([]);
    expect(out.events[0]!.code).toBe('VAL_METER_RESET');
    // A larger accepted fraction makes the same wrap a rollover.
    const loose = differenceReadings({ timestamp: 0, value: 40_000, estimated: false }, [r(1, 100)], {
      rolloverValue: 100_000,
      maxRolloverFraction: 0.7,
    });
    expect(loose.intervals[0]).toMatchObject({ value: 60_100 });
  });

  it('quarantines non-finite readings', () => {
    const out = differenceReadings(undefined, [r(0, 1), r(1, Number.NaN)]);
    expect(out.events.map((e) => e.code)).toEqual(['VAL_NOT_FINITE']);
    expect(out.last).toMatchObject({ value: 1 });
  });

  it('returns no baseline for no readings', () => {
    expect(differenceReadings(undefined, [])).toEqual({
      covered: 0,
      intervals: [],
      last: undefined,
      events: [],
    });
  });
});
