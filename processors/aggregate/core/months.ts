/**
 * Month bookkeeping of one meter-channel: the version and the content of the last emitted month
 * aggregate, per local month number. A dozen per meter-channel and year, so plain objects in a
 * map (in insertion order, which the changelog and retention keep).
 */
import type { PeriodBook, PeriodContent } from './period.js';

interface MonthRecord {
  version: number;
  emitted: boolean;
  value: number;
  count: number;
  estimated: number;
  expected: number;
  prorated: boolean;
}

function blank(version: number, emitted: boolean, value: number): MonthRecord {
  return { version, emitted, value, count: 0, estimated: 0, expected: 0, prorated: false };
}

export class MonthTable implements PeriodBook {
  private readonly records = new Map<number, MonthRecord>();

  add(month: number): void {
    if (!this.records.has(month)) this.records.set(month, blank(0, false, 0));
  }

  /** Months kept, in the order they were added. */
  keys(): number[] {
    return [...this.records.keys()];
  }

  delete(month: number): void {
    this.records.delete(month);
  }

  versionOf(month: number): number {
    return this.records.get(month)?.version ?? 0;
  }

  hasNews(month: number, c: PeriodContent): boolean {
    const rec = this.records.get(month);
    if (!rec?.emitted) return c.count !== 0;
    return !(
      rec.value === c.value &&
      rec.count === c.count &&
      rec.estimated === c.estimated &&
      rec.expected === c.expected &&
      rec.prorated === c.prorated
    );
  }

  markEmitted(month: number, version: number, c: PeriodContent): void {
    const rec = this.records.get(month);
    if (rec) remember(rec, version, c);
    else this.records.set(month, remember(blank(0, false, 0), version, c));
  }

  reloadContent(month: number, c: PeriodContent): void {
    const rec = this.records.get(month);
    if (rec && rec.version > 0) remember(rec, rec.version, c);
  }

  /** A month restored from the changelog: its version, its content unknown until recomputed. */
  restore(month: number, version: number): void {
    this.records.set(month, blank(version, false, 0));
  }

  /**
   * Count the month as emitted with a content nothing equals: its next recomputation emits it,
   * as zero if it holds no intervals (a zone rebuild).
   */
  markStale(month: number): void {
    this.records.set(month, blank(0, true, Number.NaN));
  }

  /** Every month with a version, in insertion order. */
  forEachVersioned(fn: (month: number) => void): void {
    for (const [m, rec] of this.records) if (rec.version !== 0) fn(m);
  }

  maxVersion(): number {
    let max = 0;
    for (const rec of this.records.values()) if (rec.version > max) max = rec.version;
    return max;
  }
}

function remember(rec: MonthRecord, version: number, c: PeriodContent): MonthRecord {
  rec.version = version;
  rec.emitted = true;
  rec.value = c.value;
  rec.count = c.count;
  rec.estimated = c.estimated;
  rec.expected = c.expected;
  rec.prorated = c.prorated;
  return rec;
}
