/**
 * Slot storage of one meter-channel. A slot is one interval start: writing an interval whose start
 * already has a slot REPLACES it (duplicates and corrections never add twice).
 *
 *  - GridStore: intervals of the channel's regular resolution (e.g. 15 min), aligned to a fixed
 *    phase and inside one local day. Values live in pages of 1,024 slots (typed arrays, no object
 *    per slot) with an estimated bitset: 4 bytes a slot while values are short decimals, 8 bytes
 *    otherwise, so 35M slots (1,000 meters × 1 year × 96) take ~140-280 MB. Small pages keep the
 *    waste at the edges small.
 *  - IrregularStore: everything else (monthly bills, daily values on DST days, odd durations),
 *    sorted parallel arrays by start. Few per meter, so plain arrays are fine.
 */

export const PAGE_SIZE = 1024;
const PAGE_WORDS = PAGE_SIZE / 32;

/** Empty marker of an integer page (never a real scaled value). */
const EMPTY_INT = -2147483648;
const MAX_INT = 2147483647;
/** Decimal scales tried for integer pages: values with up to 6 decimals stay exact. */
const SCALES = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/**
 * A page of slots. Provider values are decimals with few digits (EnerKey rounds kWh to 3
 * decimals), so a page first stores them as integers at a decimal scale (4 bytes a slot) and only
 * widens to Float64 (8 bytes) when a value is not exactly `integer / scale`. Decoding divides by
 * the scale, which gives back the very same double the provider's decimal parsed to, so sums are
 * identical to summing the originals.
 */
interface Page {
  ints: Int32Array | null;
  scale: number;
  floats: Float64Array | null;
  estimated: Uint32Array;
}

function newPage(): Page {
  // Values and estimated bits share one allocation: fewer, larger mallocs fragment less.
  const buffer = new ArrayBuffer(PAGE_SIZE * 4 + PAGE_WORDS * 4);
  return {
    ints: new Int32Array(buffer, 0, PAGE_SIZE).fill(EMPTY_INT),
    scale: 1,
    floats: null,
    estimated: new Uint32Array(buffer, PAGE_SIZE * 4, PAGE_WORDS),
  };
}

/** `value` as an integer at `scale`, or undefined when that is not exact. */
function scaled(value: number, scale: number): number | undefined {
  const i = Math.round(value * scale);
  return i > -MAX_INT && i <= MAX_INT && i / scale === value ? i : undefined;
}

function readPage(page: Page, o: number): number {
  if (page.floats) return page.floats[o]!;
  const i = page.ints![o]!;
  return i === EMPTY_INT ? Number.NaN : i / page.scale;
}

/** Store a value in a page, widening the page's scale or switching it to Float64 when needed. */
function writePage(page: Page, o: number, value: number): void {
  if (page.floats) {
    page.floats[o] = value;
    return;
  }
  const ints = page.ints!;
  if (Number.isNaN(value)) {
    ints[o] = EMPTY_INT;
    return;
  }
  const direct = scaled(value, page.scale);
  if (direct !== undefined) {
    ints[o] = direct;
    return;
  }
  for (const scale of SCALES) {
    if (scale <= page.scale || scaled(value, scale) === undefined) continue;
    const factor = scale / page.scale;
    let fits = true;
    for (let k = 0; k < PAGE_SIZE && fits; k++) {
      const i = ints[k]!;
      if (i !== EMPTY_INT && Math.abs(i * factor) > MAX_INT - 1) fits = false;
    }
    if (!fits) break;
    for (let k = 0; k < PAGE_SIZE; k++) if (ints[k] !== EMPTY_INT) ints[k] = ints[k]! * factor;
    page.scale = scale;
    ints[o] = scaled(value, scale)!;
    return;
  }
  const floats = new Float64Array(PAGE_SIZE);
  for (let k = 0; k < PAGE_SIZE; k++) floats[k] = readPage(page, k);
  floats[o] = value;
  page.floats = floats;
  page.ints = null;
  // Detach the bits from the shared buffer so the integer values can be freed.
  page.estimated = Uint32Array.from(page.estimated);
}

export class GridStore {
  /** Slot length in ms. */
  readonly res: number;
  /** Slot starts are phase + k * res (phase in [0, res)). */
  readonly phase: number;
  private readonly pages = new Map<number, Page>();
  /** Number of filled slots. */
  size = 0;

  constructor(res: number, phase: number) {
    this.res = res;
    this.phase = ((phase % res) + res) % res;
  }

  /** Slot index of a start instant, or undefined when the start is off the grid. */
  indexOf(start: number): number | undefined {
    const k = (start - this.phase) / this.res;
    return Number.isInteger(k) ? k : undefined;
  }

  startOf(index: number): number {
    return this.phase + index * this.res;
  }

  /** First slot index whose start is at or after `t`. */
  firstIndexAtOrAfter(t: number): number {
    return Math.ceil((t - this.phase) / this.res);
  }

  get(index: number): number {
    const p = Math.floor(index / PAGE_SIZE);
    const page = this.pages.get(p);
    return page ? readPage(page, index - p * PAGE_SIZE) : Number.NaN;
  }

  isEstimated(index: number): boolean {
    const p = Math.floor(index / PAGE_SIZE);
    const page = this.pages.get(p);
    if (!page) return false;
    const o = index - p * PAGE_SIZE;
    return (page.estimated[o >>> 5]! & (1 << (o & 31))) !== 0;
  }

  /** Write a slot; false when it already held exactly this value and flag (nothing changed). */
  set(index: number, value: number, estimated: boolean): boolean {
    const p = Math.floor(index / PAGE_SIZE);
    let page = this.pages.get(p);
    if (!page) this.pages.set(p, (page = newPage()));
    const o = index - p * PAGE_SIZE;
    const old = readPage(page, o);
    const word = o >>> 5;
    const bit = 1 << (o & 31);
    const oldEst = (page.estimated[word]! & bit) !== 0;
    if (old === value && oldEst === estimated) return false;
    if (Number.isNaN(old)) this.size++;
    writePage(page, o, value);
    page.estimated[word] = estimated ? page.estimated[word]! | bit : page.estimated[word]! & ~bit;
    return true;
  }

  /** Empty a slot; false when it was empty. */
  clear(index: number): boolean {
    const p = Math.floor(index / PAGE_SIZE);
    const page = this.pages.get(p);
    if (!page) return false;
    const o = index - p * PAGE_SIZE;
    if (Number.isNaN(readPage(page, o))) return false;
    writePage(page, o, Number.NaN);
    page.estimated[o >>> 5] = page.estimated[o >>> 5]! & ~(1 << (o & 31));
    this.size--;
    return true;
  }

  /** Filled slots with index in [from, to), in index order. */
  forEachIn(from: number, to: number, fn: (index: number, value: number, estimated: boolean) => void): void {
    let i = from;
    while (i < to) {
      const p = Math.floor(i / PAGE_SIZE);
      const pageEnd = Math.min(to, (p + 1) * PAGE_SIZE);
      const page = this.pages.get(p);
      if (page) {
        for (; i < pageEnd; i++) {
          const o = i - p * PAGE_SIZE;
          const v = readPage(page, o);
          if (!Number.isNaN(v)) fn(i, v, (page.estimated[o >>> 5]! & (1 << (o & 31))) !== 0);
        }
      }
      i = pageEnd;
    }
  }

  /** Sum, count and estimated count of filled slots with index in [from, to): the hot path. */
  sumRange(from: number, to: number, out: { sum: number; count: number; estimated: number }): void {
    let sum = 0;
    let count = 0;
    let estimated = 0;
    let i = from;
    while (i < to) {
      const p = Math.floor(i / PAGE_SIZE);
      const pageEnd = Math.min(to, (p + 1) * PAGE_SIZE);
      const page = this.pages.get(p);
      if (page) {
        const est = page.estimated;
        const end = pageEnd - p * PAGE_SIZE;
        const floats = page.floats;
        const ints = page.ints;
        for (let o = i - p * PAGE_SIZE; o < end; o++) {
          let v: number;
          if (floats) {
            v = floats[o]!;
            if (v !== v) continue;
          } else {
            const n = ints![o]!;
            if (n === EMPTY_INT) continue;
            v = n / page.scale;
          }
          sum += v;
          count++;
          if ((est[o >>> 5]! & (1 << (o & 31))) !== 0) estimated++;
        }
      }
      i = pageEnd;
    }
    out.sum = sum;
    out.count = count;
    out.estimated = estimated;
  }

  /** Empty every slot with index below `index` (retention), releasing whole pages. */
  dropBefore(index: number): void {
    for (const [p, page] of this.pages) {
      const pageStart = p * PAGE_SIZE;
      if (pageStart >= index) continue;
      const end = Math.min(PAGE_SIZE, index - pageStart);
      for (let o = 0; o < end; o++) if (!Number.isNaN(readPage(page, o))) this.size--;
      if (end === PAGE_SIZE) this.pages.delete(p);
      else for (let o = 0; o < end; o++) writePage(page, o, Number.NaN);
    }
  }

  /** Highest filled slot index, or undefined when empty. */
  maxIndex(): number | undefined {
    const pages = [...this.pages.keys()].sort((a, b) => b - a);
    for (const p of pages) {
      const page = this.pages.get(p)!;
      for (let o = PAGE_SIZE - 1; o >= 0; o--) if (!Number.isNaN(readPage(page, o))) return p * PAGE_SIZE + o;
    }
    return undefined;
  }

  /** Number of filled slots with index in [from, to). */
  countRange(from: number, to: number): number {
    const t = { sum: 0, count: 0, estimated: 0 };
    this.sumRange(from, to, t);
    return t.count;
  }

  /** All filled slots, in index order (rebuilds). */
  forEach(fn: (index: number, value: number, estimated: boolean) => void): void {
    for (const p of [...this.pages.keys()].sort((a, b) => a - b))
      this.forEachIn(p * PAGE_SIZE, (p + 1) * PAGE_SIZE, fn);
  }

  /** Bytes held by slot pages (for diagnostics and the memory benchmark). */
  bytes(): number {
    let n = 0;
    for (const page of this.pages.values())
      n +=
        (page.floats ? page.floats.byteLength + page.estimated.byteLength : 0) +
        (page.ints ? page.ints.buffer.byteLength : 0);
    return n;
  }
}

export interface IrregularInterval {
  start: number;
  end: number;
  value: number;
  estimated: boolean;
}

export class IrregularStore {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly values: number[] = [];
  private readonly estimated: boolean[] = [];
  /** Longest duration ever stored: bounds the backwards scan for overlaps (never shrinks). */
  private maxDuration = 0;

  get size(): number {
    return this.starts.length;
  }

  /** Index of the first start >= t. */
  private lowerBound(t: number): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get(start: number): IrregularInterval | undefined {
    const i = this.lowerBound(start);
    if (this.starts[i] !== start) return undefined;
    return { start, end: this.ends[i]!, value: this.values[i]!, estimated: this.estimated[i]! };
  }

  /** Insert or replace the slot at iv.start; returns the replaced interval, or 'unchanged'. */
  upsert(iv: IrregularInterval): IrregularInterval | undefined | 'unchanged' {
    const i = this.lowerBound(iv.start);
    this.maxDuration = Math.max(this.maxDuration, iv.end - iv.start);
    if (this.starts[i] === iv.start) {
      const old = {
        start: iv.start,
        end: this.ends[i]!,
        value: this.values[i]!,
        estimated: this.estimated[i]!,
      };
      if (old.end === iv.end && old.value === iv.value && old.estimated === iv.estimated) return 'unchanged';
      this.ends[i] = iv.end;
      this.values[i] = iv.value;
      this.estimated[i] = iv.estimated;
      return old;
    }
    this.starts.splice(i, 0, iv.start);
    this.ends.splice(i, 0, iv.end);
    this.values.splice(i, 0, iv.value);
    this.estimated.splice(i, 0, iv.estimated);
    return undefined;
  }

  remove(start: number): IrregularInterval | undefined {
    const i = this.lowerBound(start);
    if (this.starts[i] !== start) return undefined;
    const old = { start, end: this.ends[i]!, value: this.values[i]!, estimated: this.estimated[i]! };
    this.starts.splice(i, 1);
    this.ends.splice(i, 1);
    this.values.splice(i, 1);
    this.estimated.splice(i, 1);
    return old;
  }

  /** Intervals overlapping [from, to), in start order. */
  forEachOverlapping(from: number, to: number, fn: (iv: IrregularInterval) => void): void {
    const hi = this.lowerBound(to);
    let lo = this.lowerBound(from - this.maxDuration);
    for (; lo < hi; lo++) {
      const end = this.ends[lo]!;
      if (end > from)
        fn({ start: this.starts[lo]!, end, value: this.values[lo]!, estimated: this.estimated[lo]! });
    }
  }

  /** Intervals whose start lies in [from, to), in start order. */
  forEachStartingIn(from: number, to: number, fn: (iv: IrregularInterval) => void): void {
    for (let i = this.lowerBound(from); i < this.starts.length && this.starts[i]! < to; i++) {
      fn({
        start: this.starts[i]!,
        end: this.ends[i]!,
        value: this.values[i]!,
        estimated: this.estimated[i]!,
      });
    }
  }

  forEach(fn: (iv: IrregularInterval) => void): void {
    for (let i = 0; i < this.starts.length; i++) {
      fn({
        start: this.starts[i]!,
        end: this.ends[i]!,
        value: this.values[i]!,
        estimated: this.estimated[i]!,
      });
    }
  }

  /** Remove the intervals that end at or before `t` (retention). */
  removeEndingBy(t: number): void {
    for (let i = this.starts.length - 1; i >= 0; i--) {
      if (this.ends[i]! <= t) {
        this.starts.splice(i, 1);
        this.ends.splice(i, 1);
        this.values.splice(i, 1);
        this.estimated.splice(i, 1);
      }
    }
  }

  maxEnd(): number {
    let max = Number.NEGATIVE_INFINITY;
    for (const e of this.ends) if (e > max) max = e;
    return max;
  }

  minDuration(): number {
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.starts.length; i++) min = Math.min(min, this.ends[i]! - this.starts[i]!);
    return min;
  }
}
