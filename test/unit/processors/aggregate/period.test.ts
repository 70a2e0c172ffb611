import { describe, expect, it } from 'vitest';
import { overlapShare, PeriodTotals } from '../../../../processors/aggregate/core/period.js';
import { IrregularStore } from '../../../../processors/aggregate/core/slots.js';

const H = 3_600_000;
const iv = (start: number, end: number, value: number, estimated = false) => ({
  start,
  end,
  value,
  estimated,
});

describe('overlapShare', () => {
  it('is the fraction of the interval inside the period, 0 outside, 1 inside', () => {
    expect(overlapShare(iv(0, 4 * H, 1), 0, 4 * H)).toBe(1);
    expect(overlapShare(iv(H, 2 * H, 1), 0, 4 * H)).toBe(1);
    expect(overlapShare(iv(0, 4 * H, 1), 3 * H, 8 * H)).toBe(0.25);
    expect(overlapShare(iv(0, 4 * H, 1), 4 * H, 8 * H)).toBe(0); // touching is not overlapping
    expect(overlapShare(iv(5 * H, 6 * H, 1), 0, 4 * H)).toBe(0);
  });
});

describe('PeriodTotals', () => {
  it('adds regular slots as sums, covering count × resolution', () => {
    const t = new PeriodTotals();
    t.addSlots({ sum: 1.5, count: 3, estimated: 1 }, 15 * 60_000);
    t.addSlots({ sum: 0.5, count: 1, estimated: 0 }, 15 * 60_000);
    expect([t.value, t.count, t.estimated, t.covered, t.prorated]).toEqual([2, 4, 1, 60 * 60_000, false]);
    expect(t.completeness(2 * H)).toBe(0.5);
  });

  it('allocates an interval crossing the period pro rata, counting it once and flagging it', () => {
    const t = new PeriodTotals();
    // A 24-hour interval of which 6 hours fall in [18h, 42h).
    t.addInterval(iv(0, 24 * H, 8, true), 18 * H, 42 * H);
    expect(t.value).toBe(2);
    expect(t.count).toBe(1);
    expect(t.estimated).toBe(1);
    expect(t.covered).toBe(6 * H);
    expect(t.prorated).toBe(true);
    expect(t.completeness(24 * H)).toBe(0.25);
  });

  it('adds every stored interval overlapping the period, and only those', () => {
    const store = new IrregularStore();
    store.upsert(iv(0, 2 * H, 4)); // half inside [H, 5H)
    store.upsert(iv(2 * H, 4 * H, 3, true)); // inside
    store.upsert(iv(5 * H, 6 * H, 100)); // outside
    const t = new PeriodTotals();
    t.addOverlapping(store, H, 5 * H);
    expect([t.value, t.count, t.estimated, t.covered, t.prorated]).toEqual([5, 2, 1, 3 * H, true]);
    expect(t.completeness(4 * H)).toBe(0.75);
  });

  it('never reports completeness above 1 (overlapping intervals cover twice)', () => {
    const t = new PeriodTotals();
    t.addInterval(iv(0, H, 1), 0, H);
    t.addInterval(iv(0, H, 1), 0, H);
    expect(t.covered).toBe(2 * H);
    expect(t.completeness(H)).toBe(1);
  });

  it('starts over on reset, expected included', () => {
    const t = new PeriodTotals();
    t.addInterval(iv(0, 2 * H, 1, true), H, 2 * H);
    t.expected = 96;
    expect(t.reset()).toBe(t);
    expect([t.value, t.count, t.estimated, t.expected, t.covered, t.prorated]).toEqual([
      0,
      0,
      0,
      0,
      0,
      false,
    ]);
  });
});
