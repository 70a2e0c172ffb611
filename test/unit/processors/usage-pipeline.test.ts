/** The usage stage's pure chain, as the stage and `meterflow reconcile` both run it. */
import { describe, expect, it } from 'vitest';
import { normalise } from '../../../processors/normalise/index.js';
import {
  completeChunk,
  normaliseChunk,
  rolloverOf,
  usageMonthTotals,
} from '../../../processors/usage/pipeline.js';
import { connection, envelope, meter } from './helpers.js';

const NOW = Date.UTC(2025, 0, 1);

const conn = connection({
  provider: 'generic',
  timeZone: 'Europe/Helsinki',
  meterTypes: { water: { type: 'Water', subtype: 'Potable' } },
  rollover: { meters: { W1: 1000 } },
  generic: {
    meters: { path: '/m', fields: { externalId: 'id', assetId: 'site', unit: 'unit', type: 'kind' } },
    usage: { path: '/u/{meterId}', kind: 'reading', fields: { timestamp: 'date', value: 'reading' } },
  },
});
const meterEnv = envelope({
  format: 'generic.meter',
  entity_kind: 'meter',
  external_id: 'W1',
  payload: JSON.stringify({ id: 'W1', site: 'S', unit: 'm³', kind: 'WATER' }),
});
const usageEnv = (items: { date: string; reading: string }[], from: string) =>
  envelope({
    format: 'generic.usage',
    external_id: 'W1',
    payload: JSON.stringify(items),
    meta: { range_from: from },
  });

describe('usage pipeline', () => {
  it('rollover: the connection per meter, then the meter, then the connection default', () => {
    const m = meter({ external_id: 'W1', rollover_value: 500 });
    expect(rolloverOf(connection({ rollover: { meters: { W1: 1000 }, default: 9 } }), m)).toBe(1000);
    expect(rolloverOf(connection({ rollover: { default: 9 } }), m)).toBe(500);
    expect(rolloverOf(connection({ rollover: { default: 9 } }), meter({ rollover_value: null }))).toBe(9);
    expect(rolloverOf(undefined, meter({ rollover_value: null }))).toBeUndefined();
  });

  it('differences readings across chunks, wrapping at the rollover value', () => {
    const m = normalise(meterEnv, { connection: conn }).meters[0]!;
    const first = normaliseChunk(
      usageEnv(
        [
          { date: '2024-03-01', reading: '998' },
          { date: '2024-03-02', reading: '999.5' },
        ],
        '2024-03-01',
      ),
      conn,
      m,
    );
    expect(first.rows).toBe(2);
    const a = completeChunk(first.batch!, first.readings, { connection: conn, meter: m, last: undefined });
    expect(a.valid.intervals.map((i) => i.value)).toEqual([1.5]);
    const second = normaliseChunk(usageEnv([{ date: '2024-03-03', reading: '0.5' }], '2024-03-03'), conn, m);
    const b = completeChunk(second.batch!, second.readings, { connection: conn, meter: m, last: a.last });
    expect(b.rejects).toEqual([]);
    expect(b.valid.intervals.map((i) => [i.value, i.metadata])).toEqual([[1, { rollover: 'true' }]]);
  });

  it('usageMonthTotals runs the chain in time order and sums months', () => {
    const totals = usageMonthTotals(
      conn,
      [meterEnv],
      [
        // Out of order on purpose: the chain sorts chunks by their range.
        usageEnv([{ date: '2024-03-03', reading: '0.5' }], '2024-03-03'),
        usageEnv(
          [
            { date: '2024-03-01', reading: '998' },
            { date: '2024-03-02', reading: '999.5' },
          ],
          '2024-03-01',
        ),
      ],
      () => NOW,
    );
    expect(totals.get('W1|2024-03')?.value).toBeCloseTo(2.5, 9);
  });
});
