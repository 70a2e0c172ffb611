/**
 * Meter mapping CSV, pure part: parsing and checking an import file against the known meters,
 * and rendering an export. Columns: connection_id, external_id, internal_meter_id. An empty
 * internal_meter_id removes a mapping. Nothing of a file with any problem is applied.
 */
import { CsvError, escapeFormula, parseCsvRows, writeCsv } from '../http/csv.js';

export const MAPPING_COLUMNS = ['connection_id', 'external_id', 'internal_meter_id'] as const;

export interface MappingRow {
  /** 1-based line of the row in the file (header = line 1). */
  line: number;
  connection_id: string;
  external_id: string;
  internal_meter_id: string | null;
}

export type MappingProblemKind =
  'header' | 'syntax' | 'missing_value' | 'unknown_meter' | 'duplicate_meter' | 'duplicate_internal_id';

export interface MappingProblem {
  line: number;
  kind: MappingProblemKind;
  message: string;
}

export interface MappingPlan {
  rows: MappingRow[];
  problems: MappingProblem[];
}

/** Undoes the export's formula escaping: a leading apostrophe before = + - @ is dropped. */
export function unescapeFormula(cell: string): string {
  return /^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
}

const keyOf = (connectionId: string, externalId: string): string => `${connectionId}/${externalId}`;

/**
 * Parses and checks an import file. `knownMeters` holds `connection_id/external_id` of every meter
 * currently on the meters topic. Every problem is reported, not just the first.
 */
export function planImport(csvText: string, knownMeters: ReadonlySet<string>): MappingPlan {
  const problems: MappingProblem[] = [];
  let table: string[][];
  try {
    table = parseCsvRows(csvText);
  } catch (e) {
    const line = e instanceof CsvError ? e.line : 0;
    return { rows: [], problems: [{ line, kind: 'syntax', message: (e as Error).message }] };
  }
  const header = (table[0] ?? []).map((h) => h.trim().toLowerCase());
  const idx = MAPPING_COLUMNS.map((c) => header.indexOf(c));
  if (idx.some((i) => i < 0) || header.length !== MAPPING_COLUMNS.length) {
    return {
      rows: [],
      problems: [
        {
          line: 1,
          kind: 'header',
          message: `the header must be ${MAPPING_COLUMNS.join(',')} (got ${header.join(',') || 'nothing'})`,
        },
      ],
    };
  }
  const rows: MappingRow[] = [];
  const firstLineOfMeter = new Map<string, number>();
  const firstLineOfInternal = new Map<string, number>();
  table.slice(1).forEach((cells, i) => {
    const line = i + 2;
    if (cells.length !== MAPPING_COLUMNS.length) {
      problems.push({
        line,
        kind: 'syntax',
        message: `line ${line} has ${cells.length} cells, expected ${MAPPING_COLUMNS.length}`,
      });
      return;
    }
    const [connectionId, externalId, internal] = idx.map((j) => unescapeFormula((cells[j] ?? '').trim())) as [
      string,
      string,
      string,
    ];
    if (connectionId === '' || externalId === '') {
      problems.push({
        line,
        kind: 'missing_value',
        message: `line ${line}: connection_id and external_id are required`,
      });
      return;
    }
    const key = keyOf(connectionId, externalId);
    if (!knownMeters.has(key))
      problems.push({
        line,
        kind: 'unknown_meter',
        message: `line ${line}: no meter ${externalId} in connection ${connectionId}`,
      });
    const prev = firstLineOfMeter.get(key);
    if (prev !== undefined)
      problems.push({
        line,
        kind: 'duplicate_meter',
        message: `line ${line}: meter ${externalId} of connection ${connectionId} is already mapped on line ${prev}`,
      });
    else firstLineOfMeter.set(key, line);
    if (internal !== '') {
      const p2 = firstLineOfInternal.get(internal);
      if (p2 !== undefined)
        problems.push({
          line,
          kind: 'duplicate_internal_id',
          message: `line ${line}: internal meter id ${internal} is already used on line ${p2}`,
        });
      else firstLineOfInternal.set(internal, line);
    }
    rows.push({
      line,
      connection_id: connectionId,
      external_id: externalId,
      internal_meter_id: internal === '' ? null : internal,
    });
  });
  return { rows, problems };
}

export interface ExportRow {
  connection_id: string;
  external_id: string;
  internal_meter_id: string | null;
}

/** CSV of mappings, sorted, with spreadsheet formulas neutralised. */
export function renderExport(rows: ExportRow[]): string {
  const sorted = [...rows].sort(
    (a, b) => a.connection_id.localeCompare(b.connection_id) || a.external_id.localeCompare(b.external_id),
  );
  return writeCsv(
    [[...MAPPING_COLUMNS], ...sorted.map((r) => [r.connection_id, r.external_id, r.internal_meter_id ?? ''])],
    { escapeFormulas: true },
  );
}

export { escapeFormula };
