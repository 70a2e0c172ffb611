import { describe, expect, it } from 'vitest';
import { csvCell, escapeFormula, parseCsv, parseCsvRows, writeCsv } from '../../../../producers/http/csv.js';

describe('CSV (RFC 4180)', () => {
  it('reads quoted fields, doubled quotes, embedded newlines, CRLF, BOM and a missing final newline', () => {
    const rows = parseCsvRows('\ufeffa,b,c\r\n"x, y","say ""hi""","line1\nline2"\r\n1,,3');
    expect(rows).toEqual([
      ['a', 'b', 'c'],
      ['x, y', 'say "hi"', 'line1\nline2'],
      ['1', '', '3'],
    ]);
  });
  it('objects by header; a row with the wrong width is an error', () => {
    expect(parseCsv('id,name\n1,a\n2,b\n')).toEqual([
      { id: '1', name: 'a' },
      { id: '2', name: 'b' },
    ]);
    expect(() => parseCsv('id,name\n1\n')).toThrow(/row 2 has 1 cells/);
    expect(() => parseCsvRows('"open')).toThrow(/unterminated/);
  });
  it('writes and reads back the same cells', () => {
    const table = [
      ['a', 'b'],
      ['x,y', 'q"q'],
      ['multi\nline', ''],
    ];
    expect(parseCsvRows(writeCsv(table))).toEqual(table);
  });
  it('neutralises formulas only when asked', () => {
    for (const c of ['=1+1', '+1', '-1', '@x', '\tx']) expect(escapeFormula(c)).toBe(`'${c}`);
    expect(escapeFormula('a=1')).toBe('a=1');
    expect(csvCell('=A1,B1', { escapeFormulas: true })).toBe(`"'=A1,B1"`);
    expect(csvCell('=A1')).toBe('=A1');
  });
});
