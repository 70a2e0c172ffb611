/**
 * ClickHouse's RowBinary format, for the few column types meterflow's hot table uses: each row is
 * its columns' values back to back in the order of the INSERT's column list, little-endian, with
 * strings as a LEB128 length and their UTF-8 bytes, Nullable as a 0/1 byte before the value,
 * DateTime as UInt32 seconds and Enum8 as its Int8 code. Read the same way by 18.16 and current
 * releases.
 *
 * Why: a usage row in JSONEachRow is ~450 bytes of text that the sink assembles and ClickHouse
 * parses key by key; in RowBinary it is ~200 bytes, most of them copied from a prefix the whole
 * record shares, and ClickHouse reads it without parsing.
 */

export type BinaryType =
  | 'String'
  | 'UInt8'
  | 'UInt32'
  | 'UInt64'
  | 'Float64'
  | 'DateTime'
  | { enum8: Readonly<Record<string, number>> }
  | { nullable: BinaryType };

export type BinaryColumn = readonly [name: string, type: BinaryType];

/** A growing buffer that rows are written into. */
export class RowBinaryWriter {
  private buf: Buffer;
  private at = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialBytes));
  }

  get length(): number {
    return this.at;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  /** Bytes already in RowBinary (a prefix of constant columns, an encoded string). */
  raw(bytes: Buffer): void {
    this.room(bytes.length);
    // TypedArray#set: Buffer#copy's argument handling costs more than a short copy itself.
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
  }

  uint8(v: number): void {
    this.room(1);
    this.buf[this.at++] = v;
  }

  uint32(v: number): void {
    this.room(4);
    this.at = this.buf.writeUInt32LE(v, this.at);
  }

  /** A non-negative integer below 2^53 (a bigint or a decimal string for anything larger). */
  uint64(v: number | bigint | string): void {
    this.room(8);
    if (typeof v === 'number' && v <= Number.MAX_SAFE_INTEGER) {
      this.buf.writeUInt32LE(v % 0x1_0000_0000, this.at);
      this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), this.at + 4);
      this.at += 8;
    } else {
      this.at = this.buf.writeBigUInt64LE(BigInt(v), this.at);
    }
  }

  float64(v: number): void {
    this.room(8);
    this.at = this.buf.writeDoubleLE(v, this.at);
  }

  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.room(n + 5);
    this.leb128(n);
    this.at += this.buf.write(s, this.at, n, 'utf8');
  }

  private leb128(n: number): void {
    while (n >= 0x80) {
      this.buf[this.at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.at++] = n;
  }

  /** The bytes written, trimmed when most of the buffer is unused (it is kept in memory). */
  take(): Buffer {
    const out =
      this.at * 2 < this.buf.length
        ? Buffer.from(this.buf.subarray(0, this.at))
        : this.buf.subarray(0, this.at);
    this.buf = Buffer.alloc(0);
    this.at = 0;
    return out;
  }
}

/** One value of a column, in RowBinary (for a prefix or a repeated value). */
export function encodeValue(type: BinaryType, value: unknown): Buffer {
  const w = new RowBinaryWriter(64);
  writeValue(w, type, value);
  return w.take();
}

/**
 * Writes a value of the column's type. The caller checked the value: it is of the type (a string
 * for String, a name of the enum, an integer in range), or null for a Nullable.
 */
export function writeValue(w: RowBinaryWriter, type: BinaryType, value: unknown): void {
  if (typeof type === 'object') {
    if ('nullable' in type) {
      if (value === null || value === undefined) return w.uint8(1);
      w.uint8(0);
      return writeValue(w, type.nullable, value);
    }
    return w.uint8(type.enum8[value as string]!);
  }
  switch (type) {
    case 'String':
      return w.string(value as string);
    case 'UInt8':
      return w.uint8(value as number);
    case 'UInt32':
    case 'DateTime':
      return w.uint32(value as number);
    case 'UInt64':
      return w.uint64(value as number | string);
    case 'Float64':
      return w.float64(value as number);
  }
}

/**
 * Reads one row back (the text a quarantine record shows for a row ClickHouse refused; tests).
 * UInt64 comes back as a decimal string, as ClickHouse's JSON output quotes it; DateTime as seconds.
 */
export function readRow(
  columns: readonly BinaryColumn[],
  buf: Buffer,
  start = 0,
): { row: Record<string, unknown>; end: number } {
  let at = start;
  const need = (n: number) => {
    if (at + n > buf.length) throw new RangeError(`RowBinary row ends after ${buf.length - start} bytes`);
  };
  const read = (type: BinaryType): unknown => {
    if (typeof type === 'object') {
      if ('nullable' in type) {
        need(1);
        return buf[at++] === 1 ? null : read(type.nullable);
      }
      need(1);
      const code = buf.readInt8(at++);
      return Object.keys(type.enum8).find((k) => type.enum8[k] === code) ?? code;
    }
    switch (type) {
      case 'String': {
        let n = 0;
        for (let shift = 0; ; shift += 7) {
          need(1);
          const b = buf[at++]!;
          n += (b & 0x7f) * 2 ** shift;
          if (b < 0x80) break;
        }
        need(n);
        const s = buf.toString('utf8', at, at + n);
        at += n;
        return s;
      }
      case 'UInt8':
        need(1);
        return buf[at++];
      case 'UInt32':
      case 'DateTime':
        need(4);
        at += 4;
        return buf.readUInt32LE(at - 4);
      case 'UInt64':
        need(8);
        at += 8;
        return buf.readBigUInt64LE(at - 8).toString();
      case 'Float64':
        need(8);
        at += 8;
        return buf.readDoubleLE(at - 8);
    }
  };
  const row: Record<string, unknown> = {};
  for (const [name, type] of columns) row[name] = read(type);
  return { row, end: at };
}
