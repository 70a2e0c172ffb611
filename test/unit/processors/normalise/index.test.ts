import { describe, expect, it } from 'vitest';
import { NORMALISERS, normalise } from '../../../../processors/normalise/index.js';
import { envelope } from '../helpers.js';

describe('normalise dispatch', () => {
  it('covers every documented format', () => {
    expect(Object.keys(NORMALISERS).sort()).toEqual(
      [
        'arcadia.intervals',
        'arcadia.meter',
        'arcadia.normalizedIntervals',
        'arcadia.site',
        'enerkey.facility',
        'enerkey.hourly',
        'enerkey.meter',
        'enerkey.monthly',
        'enerkey.quantity',
        'generic.asset',
        'generic.meter',
        'generic.usage',
      ].sort(),
    );
  });

  it('rejects an unknown format as a whole (NORM_UNKNOWN_FORMAT), also prototype names', () => {
    for (const format of ['acme.meter', 'toString', '__proto__']) {
      const r = normalise(envelope({ format, payload: '{}' }));
      expect(r.rejects).toEqual([
        {
          code: 'NORM_UNKNOWN_FORMAT',
          message: expect.stringContaining(format) as string,
          recordIndex: null,
          detail: null,
        },
      ]);
    }
  });

  it('rejects a payload that is not JSON (NORM_PAYLOAD_JSON)', () => {
    const r = normalise(envelope({ format: 'arcadia.meter', payload: '{"id": "mtr_1",' }));
    expect(r.rejects).toHaveLength(1);
    expect(r.rejects[0]).toMatchObject({ code: 'NORM_PAYLOAD_JSON', recordIndex: null, detail: null });
    expect(r.assets).toEqual([]);
    expect(r.meters).toEqual([]);
    expect(r.batch).toBeNull();
  });
});
