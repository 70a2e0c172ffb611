import { describe, expect, it } from 'vitest';
import { parseTimestamp } from '../../../../processors/normalise/time.js';

const ok = (text: string, zone?: string): number => {
  const r = parseTimestamp(text, zone);
  if (!r.ok) throw new Error(r.message);
  return r.instant;
};

describe('parseTimestamp', () => {
  it('reads instants with Z or an offset, ignoring the zone', () => {
    expect(ok('2024-03-15T08:00:00Z', 'Europe/Helsinki')).toBe(Date.UTC(2024, 2, 15, 8));
    expect(ok('2024-03-15T08:00:00+00:00')).toBe(Date.UTC(2024, 2, 15, 8));
    expect(ok('2017-01-01T00:00:00+02:00')).toBe(Date.UTC(2016, 11, 31, 22));
    expect(ok('2023-08-29T07:00:00.000+00:00')).toBe(Date.UTC(2023, 7, 29, 7));
    expect(ok('2024-01-01T00:00:00.123456-0530')).toBe(Date.UTC(2024, 0, 1, 5, 30, 0, 123));
    expect(ok('2024-01-01 12:00+01')).toBe(Date.UTC(2024, 0, 1, 11));
  });

  it('places local times and dates in the zone, across DST', () => {
    expect(ok('2024-03-31', 'Europe/Helsinki')).toBe(Date.UTC(2024, 2, 30, 22));
    expect(ok('2024-04-01', 'Europe/Helsinki')).toBe(Date.UTC(2024, 2, 31, 21));
    expect(ok('2024-11-03T01:30:00', 'America/New_York')).toBe(Date.UTC(2024, 10, 3, 5, 30)); // first of the two 01:30
    expect(ok('2024-03-10T02:30:00', 'America/New_York')).toBe(Date.UTC(2024, 2, 10, 7, 30)); // in the gap: pushed forward
    expect(ok('2024-01-01T24:00:00', 'UTC')).toBe(Date.UTC(2024, 0, 2));
    expect(parseTimestamp('2024-01-01', 'UTC')).toMatchObject({ ok: true, dateOnly: true });
  });

  it('refuses local values without a zone: NORM_TIMESTAMP_NO_ZONE', () => {
    expect(parseTimestamp('2024-01-01T00:00:00', undefined)).toMatchObject({
      ok: false,
      code: 'NORM_TIMESTAMP_NO_ZONE',
    });
    expect(parseTimestamp('2024-01-01', null)).toMatchObject({ ok: false, code: 'NORM_TIMESTAMP_NO_ZONE' });
  });

  it.each([
    '2024-02-30',
    '2024-13-01',
    '2024-01-01T25:00:00Z',
    '01/02/2024',
    '2024-01-01T00:00:00+25:00',
    '',
    'now',
  ])('refuses %s: NORM_TIMESTAMP_INVALID', (text) => {
    expect(parseTimestamp(text, 'UTC')).toMatchObject({ ok: false, code: 'NORM_TIMESTAMP_INVALID' });
  });

  it.each([
    '0024-01-01T00:00:00Z', // the common layout
    '0099-12-31T23:59:59+02:00',
    '0000-01-01',
    '0050-06-01T12:00:00',
    '1899-12-31T00:00:00Z',
  ])('refuses the year of %s (outside 1900-9999) instead of moving it to 19xx', (text) => {
    const r = parseTimestamp(text, 'UTC');
    expect(r).toMatchObject({ ok: false, code: 'NORM_TIMESTAMP_INVALID' });
    expect(r.ok ? '' : r.message).toContain('year');
  });

  it('accepts the years at the edges of the range', () => {
    expect(ok('1900-01-01T00:00:00Z')).toBe(Date.UTC(1900, 0, 1));
    expect(ok('1900-01-01', 'UTC')).toBe(Date.UTC(1900, 0, 1));
    expect(ok('9999-12-31T00:00:00Z')).toBe(Date.UTC(9999, 11, 31));
  });

  it('refuses non-strings', () => {
    expect(parseTimestamp(1_700_000_000, 'UTC')).toMatchObject({ ok: false, code: 'NORM_TIMESTAMP_INVALID' });
  });
});
