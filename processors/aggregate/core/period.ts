/**
 * One aggregation period (a local day or month), shared by day and month recomputation:
 *  - PeriodTotals accumulates it from its slots: the grid part as ready-made sums, then every
 *    irregular interval overlapping the period, allocated pro rata by time overlap;
 *  - PeriodBook is the bookkeeping of what was emitted for it (DayTable, MonthTable).
 */
import type { IrregularInterval, IrregularStore } from './slots.js';

/** Sum, count and estimated count of regular slots (filled by GridStore.sumRange, DayTable.sumGrid). */
export interface SlotTotals {
  sum: number;
  count: number;
  estimated: number;
}

/** What an aggregate says about its period; a period is emitted again only when this changes. */
export interface PeriodContent {
  readonly value: number;
  readonly count: number;
  readonly estimated: number;
  readonly expected: number;
  readonly prorated: boolean;
}

/**
 * The bookkeeping of emitted periods that day and month recomputation share (DayTable, MonthTable):
 * a period is keyed by its local day or month number.
 */
export interface PeriodBook {
  /** Start keeping the period (no-op when kept). */
  add(period: number): void;
  /** Version of the period's last aggregate; 0 when none was emitted or restored. */
  versionOf(period: number): number;
  /**
   * Whether an aggregate with this content says something new: it differs from the last one
   * emitted, or none was emitted and the period has intervals.
   */
  hasNews(period: number, content: PeriodContent): boolean;
  /** An aggregate with this content and version was emitted. */
  markEmitted(period: number, version: number, content: PeriodContent): void;
  /** After a restore: a period with a version last emitted what its slots say now. */
  reloadContent(period: number, content: PeriodContent): void;
}

export class PeriodTotals implements PeriodContent {
  value = 0;
  count = 0;
  estimated = 0;
  /** Intervals the resolution says the period holds; set by the caller, who knows the resolution. */
  expected = 0;
  /** Milliseconds of the period covered by intervals (overlapping intervals count twice). */
  covered = 0;
  /** Some interval only partly overlaps the period. */
  prorated = false;

  /** Start over (one instance is reused per channel: recomputation runs per interval batch). */
  reset(): this {
    this.value = 0;
    this.count = 0;
    this.estimated = 0;
    this.expected = 0;
    this.covered = 0;
    this.prorated = false;
    return this;
  }

  /** Add regular slots of `res` ms each, already summed. */
  addSlots(slots: SlotTotals, res: number): void {
    this.value += slots.sum;
    this.count += slots.count;
    this.estimated += slots.estimated;
    this.covered += slots.count * res;
  }

  /** Add one interval's share of [from, to); it counts as one interval however little overlaps. */
  addInterval(iv: IrregularInterval, from: number, to: number): void {
    const share = overlapShare(iv, from, to);
    if (share < 1) this.prorated = true;
    this.value += iv.value * share;
    this.covered += share * (iv.end - iv.start);
    this.count++;
    if (iv.estimated) this.estimated++;
  }

  /** Add every irregular interval overlapping [from, to). */
  addOverlapping(irregular: IrregularStore, from: number, to: number): void {
    irregular.forEachOverlapping(from, to, (iv) => this.addInterval(iv, from, to));
  }

  /** Share of a period of `length` ms covered by intervals, at most 1. */
  completeness(length: number): number {
    return Math.min(1, this.covered / length);
  }
}

/** Fraction of an interval inside [from, to). */
export function overlapShare(iv: IrregularInterval, from: number, to: number): number {
  const overlap = Math.min(iv.end, to) - Math.max(iv.start, from);
  return overlap <= 0 ? 0 : overlap >= iv.end - iv.start ? 1 : overlap / (iv.end - iv.start);
}
