import { describe, expect, it } from 'vitest';
import { DayTable } from '../../../../processors/aggregate/core/days.js';
import { MonthTable } from '../../../../processors/aggregate/core/months.js';
import type { PeriodBook, PeriodContent } from '../../../../processors/aggregate/core/period.js';

const content = (over: Partial<PeriodContent> = {}): PeriodContent => ({
  value: 2.5,
  count: 96,
  estimated: 1,
  expected: 96,
  prorated: false,
  ...over,
});

/** The bookkeeping day and month recomputation share: both tables must behave alike. */
const books: [string, () => PeriodBook][] = [
  ['DayTable', () => new DayTable()],
  ['MonthTable', () => new MonthTable()],
];

describe.each(books)('%s as a PeriodBook', (_name, make) => {
  it('has news for a period never emitted only when it holds intervals', () => {
    const b = make();
    b.add(100);
    expect(b.versionOf(100)).toBe(0);
    expect(b.hasNews(100, content({ count: 0, value: 0 }))).toBe(false);
    expect(b.hasNews(100, content())).toBe(true);
  });

  it('has no news for the content last emitted, and news for any change of it', () => {
    const b = make();
    b.add(100);
    b.markEmitted(100, 7, content());
    expect(b.versionOf(100)).toBe(7);
    expect(b.hasNews(100, content())).toBe(false);
    for (const change of [
      { value: 2.6 },
      { count: 95 },
      { estimated: 0 },
      { expected: 92 },
      { prorated: true },
    ])
      expect(b.hasNews(100, content(change))).toBe(true);
    // Once emitted, a period that lost its intervals is news (it is emitted as zero).
    expect(b.hasNews(100, content({ value: 0, count: 0, estimated: 0 }))).toBe(true);
  });

  it('reloads the content of a versioned period only', () => {
    const b = make();
    b.add(100);
    b.reloadContent(100, content());
    expect(b.hasNews(100, content())).toBe(true); // no version: nothing was emitted
    b.markEmitted(100, 3, content());
    b.reloadContent(100, content({ value: 9 }));
    expect(b.versionOf(100)).toBe(3);
    expect(b.hasNews(100, content({ value: 9 }))).toBe(false);
  });
});

describe('DayTable', () => {
  it('keeps its arrays to itself across growth in both directions', () => {
    const t = new DayTable();
    t.setGrid(20_000, { sum: 1.5, count: 4, estimated: 1 });
    // Far enough on both sides that the arrays are reallocated by these very calls.
    t.setVersion(19_000, 11);
    t.markEmitted(21_000, 12, content());
    t.setGrid(21_500, { sum: 2, count: 8, estimated: 0 });
    expect(t.versionOf(19_000)).toBe(11);
    expect(t.versionOf(21_000)).toBe(12);
    expect([t.first, t.last]).toEqual([19_000, 21_500]);
    const out = { sum: 0, count: 0, estimated: 0 };
    t.sumGrid(19_000, 21_501, out);
    expect(out).toEqual({ sum: 3.5, count: 12, estimated: 1 });
  });

  it('sums the grid parts of a range of days, skipping days it does not hold', () => {
    const t = new DayTable();
    t.setGrid(10, { sum: 1, count: 2, estimated: 0 });
    t.setGrid(12, { sum: 0.5, count: 1, estimated: 1 });
    const out = { sum: 99, count: 99, estimated: 99 };
    t.sumGrid(0, 12, out); // [0, 12): day 12 is out
    expect(out).toEqual({ sum: 1, count: 2, estimated: 0 });
    t.sumGrid(11, 40, out);
    expect(out).toEqual({ sum: 0.5, count: 1, estimated: 1 });
    t.sumGrid(500, 531, out);
    expect(out).toEqual({ sum: 0, count: 0, estimated: 0 });
  });

  it('says which days have changelog state: a version or grid slots', () => {
    const t = new DayTable();
    t.setGrid(5, { sum: 0, count: 0, estimated: 0 });
    t.setGrid(6, { sum: 1, count: 1, estimated: 0 });
    t.setVersion(7, 4);
    expect([5, 6, 7, 8].map((d) => t.hasState(d))).toEqual([false, true, true, false]);
  });

  it('forgets a day, marks one stale, lists the versioned days and their highest version', () => {
    const t = new DayTable();
    t.markEmitted(1, 5, content());
    t.markEmitted(2, 9, content());
    t.setVersion(4, 3);
    const versioned: number[] = [];
    t.forEachVersioned((d) => versioned.push(d));
    expect(versioned).toEqual([1, 2, 4]);
    expect(t.maxVersion()).toBe(9);

    t.forget(2);
    expect(t.versionOf(2)).toBe(0);
    expect(t.hasNews(2, content({ count: 0, value: 0 }))).toBe(false); // not emitted any more

    t.markStale(3); // a day another zone emitted: its next content, even zero, is news
    expect(t.hasNews(3, content({ value: 0, count: 0, estimated: 0 }))).toBe(true);
    expect(t.versionOf(3)).toBe(0);
  });

  it('drops the days before a cut', () => {
    const t = new DayTable();
    t.markEmitted(10, 1, content());
    t.markEmitted(40, 2, content());
    t.dropBefore(20);
    expect([t.first, t.last]).toEqual([20, 40]);
    expect(t.versionOf(10)).toBe(0);
    expect(t.versionOf(40)).toBe(2);
    t.dropBefore(41);
    expect(Number.isNaN(t.first)).toBe(true);
    expect(t.maxVersion()).toBe(0);
  });
});

describe('MonthTable', () => {
  it('keeps months in insertion order, restores versions and marks months stale', () => {
    const t = new MonthTable();
    t.add(24_290);
    t.restore(24_288, 6);
    t.markEmitted(24_289, 8, content());
    t.add(24_290); // already kept: stays where it is
    expect(t.keys()).toEqual([24_290, 24_288, 24_289]);
    expect(t.versionOf(24_288)).toBe(6);
    // A restored month's content is unknown: it has news until recomputed and reloaded.
    expect(t.hasNews(24_288, content({ count: 0, value: 0 }))).toBe(false);
    expect(t.hasNews(24_288, content())).toBe(true);
    expect(t.maxVersion()).toBe(8);
    const versioned: number[] = [];
    t.forEachVersioned((m) => versioned.push(m));
    expect(versioned).toEqual([24_288, 24_289]);

    t.markStale(24_289);
    expect(t.versionOf(24_289)).toBe(0);
    expect(t.hasNews(24_289, content({ value: 0, count: 0, estimated: 0 }))).toBe(true);
    t.delete(24_290);
    expect(t.keys()).toEqual([24_288, 24_289]);
  });
});
