/**
 * A small RFC 4180 CSV reader and writer. The reader takes the first row as the header and returns
 * one object of strings per row; the writer quotes where needed and can neutralise spreadsheet
 * formulas (cells beginning with = + - @, tab or CR get a leading apostrophe).
 */

export class CsvError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'CsvError';
  }
}

/** Parses CSV text into rows of cells. Handles quoted fields, doubled quotes, CRLF/LF and embedded newlines. */
export function parseCsvRows(text: string, delimiter = ','): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let i = 0;
  let line = 1;
  let quoted = false;
  let cellStarted = false;
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          cell += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = src[i];
        if (next !== undefined && next !== delimiter && next !== '\n' && next !== '\r') {
          throw new CsvError(`unexpected character after closing quote on line ${line}`, line);
        }
        continue;
      }
      if (c === '\n') line++;
      cell += c;
      i++;
      continue;
    }
    if (c === '"' && !cellStarted) {
      quoted = true;
      cellStarted = true;
      i++;
      continue;
    }
    if (c === delimiter) {
      row.push(cell);
      cell = '';
      cellStarted = false;
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      cellStarted = false;
      i += c === '\r' && src[i + 1] === '\n' ? 2 : 1;
      line++;
      continue;
    }
    cell += c;
    cellStarted = true;
    i++;
  }
  if (quoted) throw new CsvError(`unterminated quoted field starting before line ${line}`, line);
  if (cellStarted || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  // Blank lines carry no record.
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

/** Parses CSV with a header row into objects of strings (keys = header cells, trimmed). */
export function parseCsv(text: string, delimiter = ','): Record<string, string>[] {
  const rows = parseCsvRows(text, delimiter);
  const header = rows[0];
  if (!header) return [];
  const names = header.map((h) => h.trim());
  return rows.slice(1).map((r, idx) => {
    if (r.length !== names.length) {
      throw new CsvError(`row ${idx + 2} has ${r.length} cells, the header has ${names.length}`, idx + 2);
    }
    const o: Record<string, string> = {};
    names.forEach((name, j) => (o[name] = r[j]!));
    return o;
  });
}

const FORMULA_START = /^[=+\-@\t\r]/;

/** Prefixes a cell that a spreadsheet would treat as a formula with an apostrophe. */
export function escapeFormula(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell;
}

export function csvCell(value: string, options: { escapeFormulas?: boolean } = {}): string {
  const v = options.escapeFormulas ? escapeFormula(value) : value;
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** Writes rows (first row = header) as CRLF-terminated CSV. */
export function writeCsv(
  rows: readonly (readonly string[])[],
  options: { escapeFormulas?: boolean } = {},
): string {
  return rows.map((r) => r.map((c) => csvCell(c, options)).join(',') + '\r\n').join('');
}
