/**
 * Inserting rows with per-row outcomes. A batch that ClickHouse refuses for its content is split
 * in halves until the refused rows are isolated; every other row is stored. Errors that are not
 * about the rows (ClickHouse down, overloaded, table missing) are handed to `retry`, which repeats
 * the same slice until it succeeds, so the progress of a bisection survives an outage.
 */
import { Readable } from 'node:stream';
import { MeterflowError } from '../../lib/errors.js';
import { classifyChError, type ClickHouseClient } from './client.js';

export interface RowRef<T> {
  /** The row as one JSONEachRow line (serialised once, when the record is consumed). */
  line: string;
  /** What the caller needs to quarantine this row (its record, its index). */
  ref: T;
}

export interface Rejected<T> {
  ref: T;
  message: string;
}

/** Runs `attempt` until it succeeds; throws what is not retriable or when giving up (drain). */
export type Retry = <R>(what: string, attempt: () => Promise<R>) => Promise<R>;

/** Inserts JSONEachRow lines into a table; resolves when ClickHouse acknowledged them. */
export type InsertFn = (table: string, lines: string[]) => Promise<void>;

const LINES_PER_CHUNK = 2_000;

function* chunks(lines: string[]): Generator<string> {
  for (let i = 0; i < lines.length; i += LINES_PER_CHUNK) {
    yield lines.slice(i, i + LINES_PER_CHUNK).join('\n') + '\n';
  }
}

/**
 * Sends pre-serialised lines as the request body. Rows are turned into text once, while they
 * are consumed (overlapping the previous insert), and kept as compact strings rather than objects,
 * which roughly halves the sink's memory; client.insert would serialise them again here.
 */
export function jsonEachRowInsert(client: ClickHouseClient): InsertFn {
  return async (table, lines) => {
    const r = await client.exec({
      query: `INSERT INTO ${table} FORMAT JSONEachRow`,
      values: Readable.from(chunks(lines)),
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

export async function insertWithBisect<T>(
  insert: InsertFn,
  table: string,
  refs: RowRef<T>[],
  retry: Retry,
  onBisect?: (size: number, message: string) => void,
): Promise<InsertOutcome<T>> {
  const rejected: Rejected<T>[] = [];
  let inserts = 0;
  // Explicit stack instead of recursion: a batch of 1M rows would otherwise nest 20 deep per bad
  // row, and slices stay in order (left before right), which keeps the log readable.
  const stack: RowRef<T>[][] = refs.length > 0 ? [refs] : [];
  while (stack.length > 0) {
    const slice = stack.pop()!;
    const failure = await retry(`insert into ${table}`, async () => {
      inserts++;
      try {
        await insert(
          table,
          slice.map((r) => r.line),
        );
        return undefined;
      } catch (err) {
        const e = toInsertError(err, table, slice.length);
        if (e.code === 'SINK_INSERT_REJECTED') return e;
        throw e;
      }
    });
    if (!failure) continue;
    if (slice.length === 1) {
      rejected.push({ ref: slice[0]!.ref, message: failure.message });
      continue;
    }
    onBisect?.(slice.length, failure.message);
    const mid = Math.ceil(slice.length / 2);
    stack.push(slice.slice(mid), slice.slice(0, mid));
  }
  return { rejected, inserts };
}
