/**
 * Inserting rows with per-row outcomes. A batch that ClickHouse refuses for its content is split
 * in halves until the refused rows are isolated; every other row is stored. Errors that are not
 * about the rows (ClickHouse down, overloaded, table missing) are handed to `retry`, which repeats
 * the same slice until it succeeds, so the progress of a bisection survives an outage.
 */
import { Readable } from 'node:stream';
import { MeterflowError } from '../../lib/errors.js';
import { classifyChError, type ClickHouseClient } from './client.js';

/** How a table's rows are sent: the FORMAT, and the column list the rows follow (all when absent). */
export interface RowFormat {
  name: 'JSONEachRow' | 'RowBinary';
  columns?: readonly string[];
}

export const JSON_EACH_ROW: RowFormat = { name: 'JSONEachRow' };

export interface RowRef<T> {
  /** The row's bytes in its table's format (a JSONEachRow row ends in its newline). */
  bytes: Buffer;
  /** What the caller needs to quarantine this row (its record, its index). */
  ref: T;
}

/**
 * Rows ready to send, as Buffers made once when the records were consumed. The per-row view is
 * only built when ClickHouse refuses the batch for its content and it has to be bisected.
 */
export interface RowBatch<T> {
  body: Buffer[];
  count: number;
  refs(): RowRef<T>[];
}

export interface Rejected<T> {
  ref: T;
  bytes: Buffer;
  message: string;
}

/** Runs `attempt` until it succeeds; throws what is not retriable or when giving up (drain). */
export type Retry = <R>(what: string, attempt: () => Promise<R>) => Promise<R>;

/** Inserts rows (whole rows, in `format`) into a table; resolves when ClickHouse acknowledged them. */
export type InsertFn = (table: string, body: Buffer[], format: RowFormat) => Promise<void>;

/** JSONEachRow text of some lines, as one insert body. */
export function linesBody(lines: string[]): Buffer[] {
  return lines.length === 0 ? [] : [Buffer.from(lines.join('\n') + '\n')];
}

/**
 * Streams the prepared body: no copy, no second serialisation (client.insert would turn rows
 * into text again here). Buffers rather than strings keep the sink's rows off the V8 heap, which
 * cut its garbage collection time sharply in the benchmark.
 */
export function clickhouseInsert(client: ClickHouseClient): InsertFn {
  return async (table, body, format) => {
    const columns = format.columns ? ` (${format.columns.join(', ')})` : '';
    const r = await client.exec({
      query: `INSERT INTO ${table}${columns} FORMAT ${format.name}`,
      values: Readable.from(body),
    });
    // The answer to an INSERT is empty; read it so the socket returns to the pool.
    await new Promise<void>((resolve, reject) => {
      r.stream.on('error', reject).on('end', resolve).resume();
    });
  };
}

/** The error `retry` sees for a failed insert: retriable unless the rows are at fault. */
export function toInsertError(err: unknown, table: string, rows: number): MeterflowError {
  const info = classifyChError(err);
  if (info.kind === 'data') {
    return new MeterflowError('SINK_INSERT_REJECTED', info.message, {
      cause: err,
      context: { table, rows, code: info.code },
    });
  }
  if (info.kind === 'unreachable') {
    return new MeterflowError(
      'CH_UNREACHABLE',
      `ClickHouse did not answer an insert into ${table}: ${info.message}`,
      {
        cause: err,
        retriable: true,
        context: { table, rows },
      },
    );
  }
  return new MeterflowError('SINK_INSERT_FAILED', `insert into ${table} failed: ${info.message}`, {
    cause: err,
    retriable: true,
    context: { table, rows, code: info.code },
  });
}

export interface InsertOutcome<T> {
  rejected: Rejected<T>[];
  /** Inserts issued, including those of a bisection. */
  inserts: number;
}

/**
 * Inserts a batch; if ClickHouse refuses it for its content, splits it in halves until the
 * refused rows are isolated, and stores every other row.
 */
export async function insertWithBisect<T>(
  insert: InsertFn,
  table: string,
  format: RowFormat,
  rows: RowBatch<T> | RowRef<T>[],
  retry: Retry,
  onBisect?: (size: number, message: string) => void,
): Promise<InsertOutcome<T>> {
  const batch = Array.isArray(rows) ? refBatch(rows) : rows;
  const rejected: Rejected<T>[] = [];
  let inserts = 0;
  const attempt = (body: Buffer[], count: number) =>
    retry(`insert into ${table}`, async () => {
      inserts++;
      try {
        await insert(table, body, format);
        return undefined;
      } catch (err) {
        const e = toInsertError(err, table, count);
        if (e.code === 'SINK_INSERT_REJECTED') return e;
        throw e;
      }
    });
  if (batch.count === 0) return { rejected, inserts };
  const failure = await attempt(batch.body, batch.count);
  if (!failure) return { rejected, inserts };
  // Explicit stack instead of recursion: a batch of 1M rows would otherwise nest 20 deep per bad
  // row, and slices stay in order (left before right), which keeps the log readable.
  const stack: { slice: RowRef<T>[]; failure: MeterflowError | undefined }[] = [
    { slice: batch.refs(), failure },
  ];
  while (stack.length > 0) {
    const { slice, failure: known } = stack.pop()!;
    const refused = known ?? (await attempt(rowsBody(slice), slice.length));
    if (!refused) continue;
    if (slice.length === 1) {
      rejected.push({ ref: slice[0]!.ref, bytes: slice[0]!.bytes, message: refused.message });
      continue;
    }
    onBisect?.(slice.length, refused.message);
    const mid = Math.ceil(slice.length / 2);
    stack.push(
      { slice: slice.slice(mid), failure: undefined },
      { slice: slice.slice(0, mid), failure: undefined },
    );
  }
  return { rejected, inserts };
}

function rowsBody<T>(rows: RowRef<T>[]): Buffer[] {
  return rows.length === 0 ? [] : [Buffer.concat(rows.map((r) => r.bytes))];
}

function refBatch<T>(refs: RowRef<T>[]): RowBatch<T> {
  return {
    body: rowsBody(refs),
    count: refs.length,
    refs: () => refs,
  };
}
