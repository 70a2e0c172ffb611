/**
 * Compact binary changelog values of the aggregation state (little-endian):
 *
 *   day entry   : u8 kind=1, u8 format=1, header, i32 dayNo, f64 version,
 *                 f64 gridRes (0 = no grid slots), f64 gridPhase,
 *                 f64 first slot index, u32 n, n × (u32 offset from the first slot, f64 value),
 *                 ceil(n/8) bytes of estimated bits,
 *                 u32 m, m × (f64 start, f64 end, f64 value, u8 estimated)   (irregular slots starting that day)
 *   month entry : u8 kind=2, u8 format=1, header, i32 monthNo, f64 version
 *   header      : str connection_id, str meter_external_id, str channel, str zone, str unit
 *                 (str = u16 byte length + UTF-8)
 *
 * The identity travels in the value as well as in the key so that restore never has to parse a
 * meter id that may itself contain separators. ~12 bytes per quarter-hour slot.
 */
import type { UsageChannel } from '../../../schemas/records.js';
import type { IrregularInterval } from './slots.js';

const FORMAT = 1;
export const KIND_DAY = 1;
export const KIND_MONTH = 2;

export interface EntryHeader {
  connection_id: string;
  meter_external_id: string;
  channel: UsageChannel;
  zone: string;
  unit: string;
}

export interface DayEntry extends EntryHeader {
  kind: typeof KIND_DAY;
  dayNo: number;
  version: number;
  gridRes: number;
  gridPhase: number;
  /** Grid slots as absolute slot indices. */
  slots: { index: number; value: number; estimated: boolean }[];
  irregular: IrregularInterval[];
}

export interface MonthEntry extends EntryHeader {
  kind: typeof KIND_MONTH;
  monthNo: number;
  version: number;
}

/** Writes into a buffer of the exact size computed up front: one allocation per entry. */
class Writer {
  private readonly buf: Buffer;
  private pos = 0;

  constructor(size: number) {
    // Every byte is written (checked in done()), so the pooled unsafe allocation is fine and keeps
    // the many small entries of a transaction from each taking a malloc of their own.
    this.buf = Buffer.allocUnsafe(size);
  }
  u8(v: number): void {
    this.pos = this.buf.writeUInt8(v, this.pos);
  }
  u32(v: number): void {
    this.pos = this.buf.writeUInt32LE(v, this.pos);
  }
  i32(v: number): void {
    this.pos = this.buf.writeInt32LE(v, this.pos);
  }
  f64(v: number): void {
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }
  str(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    if (n > 0xffff) throw new RangeError('string too long for the changelog codec');
    this.pos = this.buf.writeUInt16LE(n, this.pos);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  done(): Buffer {
    if (this.pos !== this.buf.length)
      throw new RangeError(`changelog entry size mismatch: wrote ${this.pos} of ${this.buf.length}`);
    return this.buf;
  }
}

function headerSize(h: EntryHeader): number {
  let n = 2;
  for (const s of [h.connection_id, h.meter_external_id, h.channel, h.zone, h.unit])
    n += 2 + Buffer.byteLength(s, 'utf8');
  return n;
}

class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  u8(): number {
    const v = this.buf.readUInt8(this.pos);
    this.pos += 1;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  str(): string {
    const n = this.buf.readUInt16LE(this.pos);
    const s = this.buf.toString('utf8', this.pos + 2, this.pos + 2 + n);
    this.pos += 2 + n;
    return s;
  }
  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new RangeError('truncated changelog value');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

function writeHeader(w: Writer, kind: number, h: EntryHeader): void {
  w.u8(kind);
  w.u8(FORMAT);
  w.str(h.connection_id);
  w.str(h.meter_external_id);
  w.str(h.channel);
  w.str(h.zone);
  w.str(h.unit);
}

/** Grid slots of a day for encoding, without an object per slot. */
export interface SlotSource {
  count: number;
  /** Calls fn for each filled slot in index order; `count` calls in total. */
  each(fn: (index: number, value: number, estimated: boolean) => void): void;
}

export function encodeDay(e: Omit<DayEntry, 'kind' | 'slots'>, slots: SlotSource): Buffer {
  const n = slots.count;
  const w = new Writer(
    headerSize(e) + 4 + 8 * 4 + 4 + n * 12 + Math.ceil(n / 8) + 4 + e.irregular.length * 25,
  );
  writeHeader(w, KIND_DAY, e);
  w.i32(e.dayNo);
  w.f64(e.version);
  w.f64(e.gridRes);
  w.f64(e.gridPhase);
  const bits = new Uint8Array(Math.ceil(n / 8));
  let first = Number.NaN;
  let k = 0;
  slots.each((index, value, estimated) => {
    if (k === 0) {
      first = index;
      w.f64(first);
      w.u32(n);
    }
    w.u32(index - first);
    w.f64(value);
    if (estimated) bits[k >>> 3]! |= 1 << (k & 7);
    k++;
  });
  if (k !== n) throw new RangeError(`changelog entry: ${k} slots listed, ${n} announced`);
  if (n === 0) {
    w.f64(0);
    w.u32(0);
  }
  w.bytes(bits);
  w.u32(e.irregular.length);
  for (const iv of e.irregular) {
    w.f64(iv.start);
    w.f64(iv.end);
    w.f64(iv.value);
    w.u8(iv.estimated ? 1 : 0);
  }
  return w.done();
}

/** Slots given as an array (tests, small entries). */
export function slotArray(slots: DayEntry['slots']): SlotSource {
  return { count: slots.length, each: (fn) => slots.forEach((s) => fn(s.index, s.value, s.estimated)) };
}

export function encodeMonth(e: Omit<MonthEntry, 'kind'>): Buffer {
  const w = new Writer(headerSize(e) + 4 + 8);
  writeHeader(w, KIND_MONTH, e);
  w.i32(e.monthNo);
  w.f64(e.version);
  return w.done();
}

export function decodeEntry(buf: Buffer): DayEntry | MonthEntry {
  const r = new Reader(buf);
  const kind = r.u8();
  const format = r.u8();
  if (format !== FORMAT) throw new RangeError(`unknown aggregate changelog format ${format}`);
  const header: EntryHeader = {
    connection_id: r.str(),
    meter_external_id: r.str(),
    channel: r.str() as UsageChannel,
    zone: r.str(),
    unit: r.str(),
  };
  if (kind === KIND_MONTH) return { kind: KIND_MONTH, ...header, monthNo: r.i32(), version: r.f64() };
  if (kind !== KIND_DAY) throw new RangeError(`unknown aggregate changelog entry kind ${kind}`);
  const dayNo = r.i32();
  const version = r.f64();
  const gridRes = r.f64();
  const gridPhase = r.f64();
  const first = r.f64();
  const n = r.u32();
  const raw: { index: number; value: number }[] = [];
  for (let k = 0; k < n; k++) raw.push({ index: first + r.u32(), value: r.f64() });
  const bits = r.bytes(Math.ceil(n / 8));
  const slots = raw.map((s, k) => ({ ...s, estimated: ((bits[k >>> 3] ?? 0) & (1 << (k & 7))) !== 0 }));
  const m = r.u32();
  const irregular: IrregularInterval[] = [];
  for (let k = 0; k < m; k++)
    irregular.push({ start: r.f64(), end: r.f64(), value: r.f64(), estimated: r.u8() === 1 });
  return { kind: KIND_DAY, ...header, dayNo, version, gridRes, gridPhase, slots, irregular };
}
