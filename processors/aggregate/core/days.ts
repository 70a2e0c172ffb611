/**
 * Per-local-day bookkeeping of one meter-channel, in growable typed arrays indexed by local day
 * number (an object per day would cost ~10x more for 365k meter-days):
 *  - the grid part of the day (sum, count, estimated count of the regular slots), a cache derived
 *    from the slots so month totals are a 31-element sum;
 *  - the version and the content of the last emitted day aggregate, to bump versions and to skip
 *    re-emitting an unchanged aggregate.
 * The arrays stay inside: callers speak in local day numbers.
 */
import type { PeriodBook, PeriodContent, SlotTotals } from './period.js';

const FLAG_EMITTED = 1;
const FLAG_PRORATED = 2;

export class DayTable implements PeriodBook {
  /** Day number of index 0. */
  private base = 0;
  private capacity = 0;
  private lowest = Number.NaN;
  private highest = Number.NaN;

  private gridSum = new Float64Array(0);
  private gridCount = new Int32Array(0);
  private gridEstimated = new Int32Array(0);
  private version = new Float64Array(0);
  private emittedValue = new Float64Array(0);
  private emittedCount = new Int32Array(0);
  private emittedEstimated = new Int32Array(0);
  private emittedExpected = new Int32Array(0);
  private flags = new Uint8Array(0);

  /** Lowest and highest day number kept (NaN when empty); days between may hold nothing. */
  get first(): number {
    return this.lowest;
  }

  get last(): number {
    return this.highest;
  }

  add(day: number): void {
    this.slot(day);
  }

  /** Store the grid part of a day (adding the day). */
  setGrid(day: number, slots: SlotTotals): void {
    const i = this.slot(day);
    this.gridSum[i] = slots.sum;
    this.gridCount[i] = slots.count;
    this.gridEstimated[i] = slots.estimated;
  }

  /** Sum the grid parts of the days in [fromDay, toDay) into `out` (a month: 28 to 31 days). */
  sumGrid(fromDay: number, toDay: number, out: SlotTotals): void {
    let sum = 0;
    let count = 0;
    let estimated = 0;
    for (let d = fromDay; d < toDay; d++) {
      const i = this.find(d);
      if (i < 0) continue;
      sum += this.gridSum[i]!;
      count += this.gridCount[i]!;
      estimated += this.gridEstimated[i]!;
    }
    out.sum = sum;
    out.count = count;
    out.estimated = estimated;
  }

  /** Whether the day has anything for the changelog: a version, or grid slots. */
  hasState(day: number): boolean {
    const i = this.find(day);
    return i >= 0 && (this.version[i]! > 0 || this.gridCount[i]! > 0);
  }

  versionOf(day: number): number {
    const i = this.find(day);
    return i >= 0 ? this.version[i]! : 0;
  }

  /** Set the version of a day restored from the changelog (adding the day). */
  setVersion(day: number, version: number): void {
    const i = this.slot(day); // first: growing replaces the arrays
    this.version[i] = version;
  }

  hasNews(day: number, c: PeriodContent): boolean {
    const i = this.find(day);
    const flags = i >= 0 ? this.flags[i]! : 0;
    if ((flags & FLAG_EMITTED) === 0) return c.count !== 0;
    return !(
      this.emittedValue[i] === c.value &&
      this.emittedCount[i] === c.count &&
      this.emittedEstimated[i] === c.estimated &&
      this.emittedExpected[i] === c.expected &&
      (flags & FLAG_PRORATED) === (c.prorated ? FLAG_PRORATED : 0)
    );
  }

  markEmitted(day: number, version: number, c: PeriodContent): void {
    const i = this.slot(day);
    this.version[i] = version;
    this.remember(i, c);
  }

  reloadContent(day: number, c: PeriodContent): void {
    const i = this.find(day);
    if (i >= 0 && this.version[i]! > 0) this.remember(i, c);
  }

  private remember(i: number, c: PeriodContent): void {
    this.emittedValue[i] = c.value;
    this.emittedCount[i] = c.count;
    this.emittedEstimated[i] = c.estimated;
    this.emittedExpected[i] = c.expected;
    this.flags[i] = FLAG_EMITTED | (c.prorated ? FLAG_PRORATED : 0);
  }

  /** Forget a day's version and what it emitted (its changelog entry was deleted). */
  forget(day: number): void {
    const i = this.find(day);
    if (i < 0) return;
    this.version[i] = 0;
    this.flags[i] = 0;
  }

  /**
   * Count the day as emitted with a content nothing equals (adding the day): its next
   * recomputation emits it, as zero if it holds no intervals (a zone rebuild).
   */
  markStale(day: number): void {
    const i = this.slot(day);
    this.flags[i] = FLAG_EMITTED;
    this.emittedValue[i] = Number.NaN;
  }

  /** Every day with a version, in day order. */
  forEachVersioned(fn: (day: number) => void): void {
    if (Number.isNaN(this.lowest)) return;
    for (let d = this.lowest; d <= this.highest; d++) if (this.versionOf(d) !== 0) fn(d);
  }

  maxVersion(): number {
    let max = 0;
    for (const v of this.version) if (v > max) max = v;
    return max;
  }

  /** Array index of a day, growing the arrays to include it. */
  private slot(day: number): number {
    if (this.capacity === 0) {
      this.base = day - 32;
      this.resize(this.base, 128);
    } else if (day < this.base) {
      const newBase = day - Math.max(32, this.capacity >>> 1);
      this.resize(newBase, this.capacity + (this.base - newBase));
    } else if (day >= this.base + this.capacity) {
      this.resize(this.base, Math.max(this.capacity * 2, day - this.base + 32));
    }
    if (Number.isNaN(this.lowest) || day < this.lowest) this.lowest = day;
    if (Number.isNaN(this.highest) || day > this.highest) this.highest = day;
    return day - this.base;
  }

  /** Array index of a day if it is inside the table, else -1 (no growth). */
  private find(day: number): number {
    const i = day - this.base;
    return this.capacity > 0 && i >= 0 && i < this.capacity && day >= this.lowest && day <= this.highest
      ? i
      : -1;
  }

  /** Forget every day before `day` (retention): the arrays shrink to the days kept. */
  dropBefore(day: number): void {
    if (this.capacity === 0 || Number.isNaN(this.lowest) || day <= this.lowest) return;
    if (day > this.highest) {
      this.relocate(0, 0, 0, 0);
      this.lowest = Number.NaN;
      this.highest = Number.NaN;
      return;
    }
    const newBase = day - 32;
    this.relocate(newBase, this.highest - newBase + 1 + 32, day, this.highest + 1);
    this.lowest = day;
  }

  private resize(newBase: number, newCapacity: number): void {
    this.relocate(newBase, newCapacity, this.base, this.base + this.capacity);
  }

  /** New arrays of `newCapacity` days from `newBase`, keeping the days in [keepFrom, keepTo). */
  private relocate(newBase: number, newCapacity: number, keepFrom: number, keepTo: number): void {
    const copy = <T extends Float64Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(newCapacity);
      if (this.capacity > 0 && newCapacity > 0 && keepTo > keepFrom) {
        next.set(old.subarray(keepFrom - this.base, keepTo - this.base), keepFrom - newBase);
      }
      return next;
    };
    this.gridSum = copy(this.gridSum, (n) => new Float64Array(n));
    this.gridCount = copy(this.gridCount, (n) => new Int32Array(n));
    this.gridEstimated = copy(this.gridEstimated, (n) => new Int32Array(n));
    this.version = copy(this.version, (n) => new Float64Array(n));
    this.emittedValue = copy(this.emittedValue, (n) => new Float64Array(n));
    this.emittedCount = copy(this.emittedCount, (n) => new Int32Array(n));
    this.emittedEstimated = copy(this.emittedEstimated, (n) => new Int32Array(n));
    this.emittedExpected = copy(this.emittedExpected, (n) => new Int32Array(n));
    this.flags = copy(this.flags, (n) => new Uint8Array(n));
    this.base = newBase;
    this.capacity = newCapacity;
  }
}
