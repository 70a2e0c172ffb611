/**
 * Per-local-day bookkeeping of one meter-channel, in growable typed arrays indexed by local day
 * number (an object per day would cost ~10x more for 365k meter-days):
 *  - the grid part of the day (sum, count, estimated count of the regular slots), a cache derived
 *    from the slots so month totals are a 31-element sum;
 *  - the version and the content of the last emitted day aggregate, to bump versions and to skip
 *    re-emitting an unchanged aggregate.
 */

export const FLAG_EMITTED = 1;
export const FLAG_PRORATED = 2;

export class DayTable {
  /** Day number of index 0. */
  private base = 0;
  private capacity = 0;
  /** Lowest and highest day number ever touched (NaN when empty). */
  first = Number.NaN;
  last = Number.NaN;

  gridSum = new Float64Array(0);
  gridCount = new Int32Array(0);
  gridEstimated = new Int32Array(0);
  version = new Float64Array(0);
  emittedValue = new Float64Array(0);
  emittedCount = new Int32Array(0);
  emittedEstimated = new Int32Array(0);
  emittedExpected = new Int32Array(0);
  flags = new Uint8Array(0);

  /** Array index of a day, growing the arrays to include it. */
  slot(day: number): number {
    if (this.capacity === 0) {
      this.base = day - 32;
      this.resize(this.base, 128);
    } else if (day < this.base) {
      const newBase = day - Math.max(32, this.capacity >>> 1);
      this.resize(newBase, this.capacity + (this.base - newBase));
    } else if (day >= this.base + this.capacity) {
      this.resize(this.base, Math.max(this.capacity * 2, day - this.base + 32));
    }
    if (Number.isNaN(this.first) || day < this.first) this.first = day;
    if (Number.isNaN(this.last) || day > this.last) this.last = day;
    return day - this.base;
  }

  /** Array index of a day if it is inside the table, else -1 (no growth). */
  find(day: number): number {
    const i = day - this.base;
    return this.capacity > 0 && i >= 0 && i < this.capacity && day >= this.first && day <= this.last ? i : -1;
  }

  /** Forget every day before `day` (retention): the arrays shrink to the days kept. */
  dropBefore(day: number): void {
    if (this.capacity === 0 || Number.isNaN(this.first) || day <= this.first) return;
    if (day > this.last) {
      this.relocate(0, 0, 0, 0);
      this.first = Number.NaN;
      this.last = Number.NaN;
      return;
    }
    const newBase = day - 32;
    this.relocate(newBase, this.last - newBase + 1 + 32, day, this.last + 1);
    this.first = day;
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

/** Month bookkeeping: a dozen per meter-channel and year, so plain objects. */
export interface MonthRecord {
  version: number;
  emitted: boolean;
  value: number;
  count: number;
  estimated: number;
  expected: number;
  prorated: boolean;
}
