/**
 * The aggregation state of one meter-channel: its slots, its per-day bookkeeping and its months,
 * and the arithmetic from slots to day and month aggregates in the channel's IANA zone.
 *
 * Rules (DESIGN.md §5):
 *  - local calendar days and months; a DST day has 23 or 25 hours (92 or 100 quarter-hours);
 *  - expected_count = local day length / resolution, where the resolution is the channel's
 *    shortest interval duration capped at one day;
 *  - completeness = the share of the period covered by intervals (at most 1). For regular data
 *    that is exactly count / expected; unlike count / expected it stays right for intervals
 *    that only partly overlap the period (a monthly bill covers its month fully: 1, not 1/31);
 *  - an interval crossing a day (or month) boundary is allocated pro rata by time overlap, and the
 *    aggregate is flagged `prorated`; it counts as one interval in every period it overlaps;
 *  - version = max(previous + 1, now): increases on every change, also across restarts; an
 *    aggregate whose content did not change is not emitted again.
 */
import type { UsageAggregate, UsageChannel } from '../../../schemas/records.js';
import { encodeDay, encodeMonth, type DayEntry } from './codec.js';
import { DayTable } from './days.js';
import { MonthTable } from './months.js';
import { PeriodTotals, type PeriodBook, type SlotTotals } from './period.js';
import { GridStore, IrregularStore, type IrregularInterval } from './slots.js';
import { DAY_MS, HOUR_MS } from '../../../schemas/time.js';
import { lookupUnit } from '../../../schemas/units.js';
import {
  calendarFor,
  dayNoToDate,
  firstDayOfMonth,
  monthNoToString,
  monthOfDayNo,
  type ZoneCalendar,
} from './zone.js';

/** Longest slot kept on the regular grid; longer intervals (daily, monthly) are irregular slots. */
const GRID_MAX_RES = 6 * HOUR_MS;
const GRID_MIN_RES = 1_000;

export interface ChannelIdentity {
  connection_id: string;
  meter_external_id: string;
  channel: UsageChannel;
}

export class ChannelState {
  readonly id: ChannelIdentity;
  readonly zone: string;
  readonly unit: string;
  /** Canonical unit and factor of `unit`; null for cost (a currency) and unknown units. */
  private readonly canonical: { unit: string; factor: number } | null;
  private readonly cal: ZoneCalendar;
  grid: GridStore | null = null;
  readonly irregular = new IrregularStore();
  /** Shortest interval duration seen (ms). */
  private minDuration = Number.POSITIVE_INFINITY;
  private resolutionChanged = false;
  readonly days = new DayTable();
  readonly months = new MonthTable();
  /** Versions never go below this (set when the state is rebuilt for a new zone). */
  versionFloor = 0;
  /** Latest interval end seen: the channel's event-time clock for retention. */
  private highWater = Number.NEGATIVE_INFINITY;
  /** Slots before this instant were evicted (retention); intervals starting earlier are refused. */
  evictedBefore = Number.NEGATIVE_INFINITY;

  /** Days whose slots changed in the current apply. */
  private readonly touched = new Set<number>();
  private lastTouched = Number.NaN;
  /** Days and months to write to the changelog at the next snapshot. */
  readonly dirtyDays = new Set<number>();
  readonly dirtyMonths = new Set<number>();

  /** One-day cache for dayOf: consecutive intervals nearly always fall in the same day. */
  private cachedDay = Number.NaN;
  private cachedDayStart = 0;
  private cachedDayEnd = 0;
  /** Scratch for recomputation, reused: it runs for every touched day and month. */
  private readonly slotScratch: SlotTotals = { sum: 0, count: 0, estimated: 0 };
  private readonly totals = new PeriodTotals();

  constructor(id: ChannelIdentity, zone: string, unit: string) {
    this.id = id;
    this.zone = zone;
    this.unit = unit;
    const info = id.channel === 'cost' ? undefined : lookupUnit(unit);
    this.canonical =
      info?.canonical && info.factor !== null ? { unit: info.canonical, factor: info.factor } : null;
    this.cal = calendarFor(zone);
  }

  get key(): string {
    return channelKey(this.id);
  }

  private dayOf(t: number): number {
    if (t >= this.cachedDayStart && t < this.cachedDayEnd) return this.cachedDay;
    const d = this.cal.dayOf(t);
    this.cachedDay = d;
    this.cachedDayStart = this.cal.dayStart(d);
    this.cachedDayEnd = this.cal.dayStart(d + 1);
    return d;
  }

  private touch(day: number): void {
    if (day === this.lastTouched) return;
    this.lastTouched = day;
    this.touched.add(day);
    this.dirtyDays.add(day);
  }

  private touchSpan(start: number, end: number): void {
    const last = this.dayOf(end - 1);
    for (let d = this.dayOf(start); d <= last; d++) this.touch(d);
  }

  private noteDuration(duration: number): void {
    if (duration >= this.minDuration) return;
    if (
      Number.isFinite(this.minDuration) &&
      Math.min(duration, DAY_MS) !== Math.min(this.minDuration, DAY_MS)
    ) {
      // Every day's expected count changes with the resolution.
      this.resolutionChanged = true;
    }
    this.minDuration = duration;
  }

  /** Write one interval into its slot (replacing what the slot held). Values already validated. */
  write(start: number, end: number, value: number, estimated: boolean): void {
    const duration = end - start;
    if (end > this.highWater) this.highWater = end;
    this.noteDuration(duration);
    const day = this.dayOf(start);
    const oneDay = end <= this.cachedDayEnd;
    let index: number | undefined;
    if (oneDay) {
      if (this.grid) {
        if (this.grid.res === duration) index = this.grid.indexOf(start);
      } else if (duration >= GRID_MIN_RES && duration <= GRID_MAX_RES && DAY_MS % duration === 0) {
        this.grid = new GridStore(duration, start);
        index = this.grid.indexOf(start);
      }
    }
    if (index !== undefined && this.grid) {
      if (this.irregular.size > 0) {
        const removed = this.irregular.remove(start);
        if (removed) this.touchSpan(removed.start, removed.end);
      }
      if (this.grid.set(index, value, estimated)) this.touch(day);
      return;
    }
    // One slot per start: an irregular interval replaces a grid slot with the same start.
    const gridIndex = this.grid?.indexOf(start);
    if (gridIndex !== undefined && this.grid?.clear(gridIndex)) this.touch(day);
    const old = this.irregular.upsert({ start, end, value, estimated });
    if (old === 'unchanged') return;
    if (old) this.touchSpan(old.start, old.end);
    this.touchSpan(start, end);
  }

  private expectedFor(dayLength: number): number {
    const res = Math.min(this.minDuration, DAY_MS);
    return Number.isFinite(res) ? Math.max(1, Math.round(dayLength / res)) : 0;
  }

  private nextVersion(previous: number, now: number): number {
    return Math.max(previous + 1, now, this.versionFloor + 1);
  }

  /**
   * Recompute one day from its slots. With `emit`, returns the aggregate when it changed (and
   * records the new version); without, only refreshes the caches (after a restore).
   */
  private recomputeDay(day: number, now: number, emit: boolean): UsageAggregate | null {
    this.days.add(day);
    const start = this.cal.dayStart(day);
    const end = this.cal.dayStart(day + 1);
    const slots = this.slotScratch;
    if (this.grid)
      this.grid.sumRange(this.grid.firstIndexAtOrAfter(start), this.grid.firstIndexAtOrAfter(end), slots);
    else {
      slots.sum = 0;
      slots.count = 0;
      slots.estimated = 0;
    }
    this.days.setGrid(day, slots);
    const totals = this.totals.reset();
    totals.addSlots(slots, this.grid ? this.grid.res : 0);
    totals.addOverlapping(this.irregular, start, end);
    totals.expected = this.expectedFor(end - start);
    const version = this.settle(this.days, day, totals, now, emit);
    if (version === null) return null;
    this.dirtyDays.add(day);
    return this.aggregate({ granularity: 'day', period: dayNoToDate(day), start, end, totals, version, now });
  }

  /** Recompute one month: the grid parts of its days, then the irregular slots overlapping it. */
  private recomputeMonth(month: number, now: number, emit: boolean): UsageAggregate | null {
    this.months.add(month);
    const firstDay = firstDayOfMonth(month);
    const nextFirst = firstDayOfMonth(month + 1);
    const start = this.cal.dayStart(firstDay);
    const end = this.cal.dayStart(nextFirst);
    const slots = this.slotScratch;
    this.days.sumGrid(firstDay, nextFirst, slots);
    const totals = this.totals.reset();
    totals.addSlots(slots, this.grid ? this.grid.res : 0);
    totals.addOverlapping(this.irregular, start, end);
    for (let d = firstDay; d < nextFirst; d++) totals.expected += this.expectedFor(this.cal.dayLength(d));
    const version = this.settle(this.months, month, totals, now, emit);
    if (version === null) return null;
    this.dirtyMonths.add(month);
    return this.aggregate({
      granularity: 'month',
      period: monthNoToString(month),
      start,
      end,
      totals,
      version,
      now,
    });
  }

  /**
   * Book a recomputed period: with `emit`, its new version when it has news (null when not);
   * without, only the remembered content of an already versioned period is refreshed.
   */
  private settle(
    book: PeriodBook,
    period: number,
    totals: PeriodTotals,
    now: number,
    emit: boolean,
  ): number | null {
    if (!emit) {
      book.reloadContent(period, totals);
      return null;
    }
    if (!book.hasNews(period, totals)) return null;
    const version = this.nextVersion(book.versionOf(period), now);
    book.markEmitted(period, version, totals);
    return version;
  }

  private aggregate(p: {
    granularity: 'day' | 'month';
    /** YYYY-MM-DD or YYYY-MM. */
    period: string;
    /** The period's bounds (ms since the epoch). */
    start: number;
    end: number;
    totals: PeriodTotals;
    version: number;
    now: number;
  }): UsageAggregate {
    const t = p.totals;
    return {
      connection_id: this.id.connection_id,
      meter_external_id: this.id.meter_external_id,
      granularity: p.granularity,
      period: p.period,
      period_start: p.start,
      time_zone: this.zone,
      channel: this.id.channel,
      value: t.value,
      unit: this.unit,
      interval_count: t.count,
      expected_count: t.expected,
      completeness: t.completeness(p.end - p.start),
      estimated_count: t.estimated,
      prorated: t.prorated,
      version: p.version,
      updated_at: p.now,
      // The sum converted once, not a sum of converted intervals: a kWh meter's stays exact.
      value_canonical: this.canonical ? t.value * this.canonical.factor : null,
      canonical_unit: this.canonical?.unit ?? null,
    };
  }

  /** Aggregates of the days touched since the last call, and of their months, that changed. */
  collect(now: number): UsageAggregate[] {
    if (this.resolutionChanged) {
      this.resolutionChanged = false;
      if (!Number.isNaN(this.days.first))
        for (let d = this.days.first; d <= this.days.last; d++) this.touched.add(d);
    }
    if (this.touched.size === 0) return [];
    const out: UsageAggregate[] = [];
    const days = [...this.touched].sort((a, b) => a - b);
    this.touched.clear();
    this.lastTouched = Number.NaN;
    const months: number[] = [];
    for (const d of days) {
      const agg = this.recomputeDay(d, now, true);
      if (agg) out.push(agg);
      const m = monthOfDayNo(d);
      if (months[months.length - 1] !== m) months.push(m);
    }
    for (const m of months) {
      const agg = this.recomputeMonth(m, now, true);
      if (agg) out.push(agg);
    }
    return out;
  }

  /**
   * Retention: drop whole local months older than `retentionMonths` before the month of the
   * latest data, and return the changelog keys to delete. Whole months, because a month
   * aggregate recomputed from a partly evicted month would be wrong; later intervals starting
   * before the cut are refused (AGG_LATE_BEYOND_RETENTION) for the same reason.
   */
  evict(retentionMonths: number): string[] {
    if (!Number.isFinite(retentionMonths) || !Number.isFinite(this.highWater)) return [];
    let cutMonth = monthOfDayNo(this.cal.dayOf(this.highWater - 1)) - retentionMonths;
    let cutDay = firstDayOfMonth(cutMonth);
    let cut = this.cal.dayStart(cutDay);
    // Never cut through an interval: it is stored with its start day and counts in later days.
    for (;;) {
      let earliest = cut;
      this.irregular.forEachOverlapping(cut - 1, cut, (iv) => {
        if (iv.start < earliest) earliest = iv.start;
      });
      if (earliest >= cut) break;
      cutMonth = monthOfDayNo(this.cal.dayOf(earliest));
      cutDay = firstDayOfMonth(cutMonth);
      cut = this.cal.dayStart(cutDay);
    }
    if (cut <= this.evictedBefore) return [];
    this.evictedBefore = cut;
    const deleted: string[] = [];
    if (!Number.isNaN(this.days.first)) {
      for (let d = this.days.first; d < cutDay && d <= this.days.last; d++) {
        if (this.days.hasState(d)) deleted.push(this.dayKey(d));
        this.dirtyDays.delete(d);
        this.touched.delete(d);
      }
    }
    this.grid?.dropBefore(this.grid.firstIndexAtOrAfter(cut));
    // Every irregular slot starting before the cut also ends by it (see the loop above).
    this.irregular.removeEndingBy(cut);
    this.days.dropBefore(cutDay);
    for (const m of this.months.keys()) {
      if (m >= cutMonth) continue;
      if (this.months.versionOf(m) > 0) deleted.push(this.monthKey(m));
      this.months.delete(m);
      this.dirtyMonths.delete(m);
    }
    return deleted;
  }

  /** Refresh every cache from the slots, without emitting (after restoring from the changelog). */
  refreshAfterRestore(): void {
    const maxIndex = this.grid?.maxIndex();
    this.highWater = Math.max(
      maxIndex === undefined || !this.grid
        ? Number.NEGATIVE_INFINITY
        : this.grid.startOf(maxIndex) + this.grid.res,
      this.irregular.maxEnd(),
    );
    this.minDuration = Math.min(
      this.grid ? this.grid.res : Number.POSITIVE_INFINITY,
      this.irregular.minDuration(),
    );
    this.resolutionChanged = false;
    this.touched.clear();
    this.lastTouched = Number.NaN;
    const months = new Set<number>(this.months.keys());
    if (!Number.isNaN(this.days.first)) {
      for (let d = this.days.first; d <= this.days.last; d++) {
        this.recomputeDay(d, 0, false);
        months.add(monthOfDayNo(d));
      }
    }
    for (const m of months) this.recomputeMonth(m, 0, false);
  }

  // ---- changelog -------------------------------------------------------------------------

  dayKey(day: number): string {
    return `${this.key}|D|${dayNoToDate(day)}`;
  }

  monthKey(month: number): string {
    return `${this.key}|M|${monthNoToString(month)}`;
  }

  /** The changelog value of a day: its grid slots, the irregular slots starting in it, its version. */
  encodeDay(day: number): Buffer | null {
    const version = this.days.versionOf(day);
    const start = this.cal.dayStart(day);
    const end = this.cal.dayStart(day + 1);
    const grid = this.grid;
    const from = grid ? grid.firstIndexAtOrAfter(start) : 0;
    const to = grid ? grid.firstIndexAtOrAfter(end) : 0;
    const count = grid ? grid.countRange(from, to) : 0;
    const irregular: IrregularInterval[] = [];
    this.irregular.forEachStartingIn(start, end, (iv) => irregular.push(iv));
    if (version === 0 && count === 0 && irregular.length === 0) return null;
    return encodeDay(
      {
        ...this.id,
        zone: this.zone,
        unit: this.unit,
        dayNo: day,
        version,
        gridRes: grid?.res ?? 0,
        gridPhase: grid?.phase ?? 0,
        irregular,
      },
      { count, each: (fn) => grid?.forEachIn(from, to, fn) },
    );
  }

  encodeMonth(month: number): Buffer | null {
    const version = this.months.versionOf(month);
    if (version === 0) return null;
    return encodeMonth({ ...this.id, zone: this.zone, unit: this.unit, monthNo: month, version });
  }

  /** Put a day's slots and version back (restore); caches are refreshed by refreshAfterRestore. */
  restoreDay(entry: DayEntry): void {
    this.clearDay(entry.dayNo);
    this.days.setVersion(entry.dayNo, entry.version);
    for (const s of entry.slots) {
      const start = entry.gridPhase + s.index * entry.gridRes;
      if (!this.grid) this.grid = new GridStore(entry.gridRes, entry.gridPhase);
      if (this.grid.res === entry.gridRes && this.grid.phase === entry.gridPhase)
        this.grid.set(s.index, s.value, s.estimated);
      else
        this.irregular.upsert({ start, end: start + entry.gridRes, value: s.value, estimated: s.estimated });
    }
    for (const iv of entry.irregular) this.irregular.upsert(iv);
  }

  /** Forget a day's slots and version (a tombstone in the changelog). */
  clearDay(day: number): void {
    const start = this.cal.dayStart(day);
    const end = this.cal.dayStart(day + 1);
    if (this.grid) {
      const grid = this.grid;
      const indices: number[] = [];
      grid.forEachIn(grid.firstIndexAtOrAfter(start), grid.firstIndexAtOrAfter(end), (index) =>
        indices.push(index),
      );
      for (const index of indices) grid.clear(index);
    }
    const starts: number[] = [];
    this.irregular.forEachStartingIn(start, end, (iv) => starts.push(iv.start));
    for (const s of starts) this.irregular.remove(s);
    this.days.forget(day);
  }

  restoreMonth(month: number, version: number): void {
    this.months.restore(month, version);
  }

  /**
   * Take over the periods a channel in another zone emitted (zone rebuild): each is emitted again
   * at the next collect, as zero where this zone puts no data there, so that no aggregate of the
   * old zone stays the latest of its key.
   */
  supersede(old: ChannelState): void {
    old.days.forEachVersioned((d) => {
      this.days.markStale(d);
      this.touched.add(d);
    });
    old.months.forEachVersioned((m) => {
      this.months.markStale(m);
      this.touched.add(firstDayOfMonth(m));
    });
  }

  /** Every slot, for rebuilding the channel in another zone. */
  forEachSlot(fn: (start: number, end: number, value: number, estimated: boolean) => void): void {
    const grid = this.grid;
    if (grid)
      grid.forEach((index, value, estimated) =>
        fn(grid.startOf(index), grid.startOf(index) + grid.res, value, estimated),
      );
    this.irregular.forEach((iv) => fn(iv.start, iv.end, iv.value, iv.estimated));
  }

  /** Highest version of any day or month (for the version floor of a rebuilt channel). */
  maxVersion(): number {
    return Math.max(this.days.maxVersion(), this.months.maxVersion());
  }
}

export function channelKey(id: ChannelIdentity): string {
  return `${id.connection_id}/${id.meter_external_id}|${id.channel}`;
}
