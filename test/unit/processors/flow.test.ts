/** The pure stages chained as the usage and aggregate stages chain them. */
import { describe, expect, it } from 'vitest';
import { AggregateState } from '../../../processors/aggregate/core/index.js';
import { normalise } from '../../../processors/normalise/index.js';
import { differenceReadings } from '../../../processors/readings/index.js';
import { validateBatch, validateMeter } from '../../../processors/validate/index.js';
import { connection, envelope, fixture } from './helpers.js';

/** The aggregation clock: after the data (the aggregator refuses intervals ending far after now). */
const NOW = Date.UTC(2025, 0, 1);

describe('normalise → readings → validate → aggregate', () => {
  it('EnerKey: meter and hourly values in the poller shapes end as local-day aggregates', () => {
    const meterEnv = envelope({
      format: 'enerkey.meter',
      entity_kind: 'meter',
      external_id: '20001',
      payload: fixture('enerkey/meter.json'),
      meta: {
        quantity: JSON.stringify({ id: 1, name: 'Electricity', unit: 'kWh' }),
        time_zone: 'Europe/Helsinki',
      },
    });
    const meter = normalise(meterEnv).meters[0]!;
    expect(validateMeter(meter)).toEqual([]);
    const entry = JSON.parse(fixture('enerkey/hourly.json')) as unknown;
    const payload = JSON.stringify({
      from: '2024-01-01T00:00:00+02:00',
      to: '2024-01-02T00:00:00+02:00',
      resolution: 'PT1H',
      meters: [entry],
    });
    const usage = normalise(envelope({ format: 'enerkey.hourly', external_id: '20001', payload }), { meter });
    expect(usage.rejects).toEqual([]);
    const { valid, rejects } = validateBatch(usage.batch!, meter);
    expect(rejects).toEqual([]);
    const { aggregates } = new AggregateState().apply(valid, NOW);
    const day = aggregates.find((a) => a.granularity === 'day' && a.period === '2024-01-01')!;
    expect(day).toMatchObject({
      time_zone: 'Europe/Helsinki',
      value: 12.345 + 11.5 + 10.25,
      interval_count: 3,
      expected_count: 24,
      estimated_count: 1,
    });
  });

  it('generic readings: a reset is quarantined, the rest becomes consumption', () => {
    const conn = connection({
      provider: 'generic',
      timeZone: 'Europe/Helsinki',
      meterTypes: { water: { type: 'Water', subtype: 'Potable' } },
      generic: {
        meters: { path: '/m', fields: { externalId: 'id', assetId: 'site', unit: 'unit', type: 'kind' } },
        usage: { path: '/u/{meterId}', kind: 'reading', fields: { timestamp: 'date', value: 'reading' } },
      },
    });
    const meter = normalise(
      envelope({
        format: 'generic.meter',
        payload: JSON.stringify({ id: 'W1', site: 'S', unit: 'm³', kind: 'WATER' }),
      }),
      { connection: conn },
    ).meters[0]!;
    expect(meter).toMatchObject({ unit: 'm3', reading_type: 'reading', meter_subtype: 'Potable' });
    const items = [
      { date: '2024-03-30', reading: '100.5' },
      { date: '2024-03-31', reading: '101.25' },
      { date: '2024-04-01', reading: '3' },
      { date: '2024-04-02', reading: '4.5' },
    ];
    const usage = normalise(
      envelope({ format: 'generic.usage', external_id: 'W1', payload: JSON.stringify(items) }),
      { connection: conn, meter },
    );
    const diff = differenceReadings(undefined, usage.readings, {});
    expect(diff.events.map((e) => [e.code, e.recordIndex])).toEqual([['VAL_METER_RESET', 2]]);
    const batch = { ...usage.batch!, intervals: diff.intervals };
    const { valid } = validateBatch(batch, meter);
    expect(valid.intervals.map((i) => [i.value, i.value_canonical])).toEqual([
      [0.75, 0.75],
      [1.5, 1.5],
    ]);
    const { aggregates } = new AggregateState().apply(valid, NOW);
    // Daily readings at local midnight give whole local days: not prorated. 31 March (the reset
    // span, also the 23-hour DST day) has no consumption at all.
    expect(aggregates.find((a) => a.period === '2024-03-30')).toMatchObject({
      value: 0.75,
      prorated: false,
      completeness: 1,
    });
    expect(aggregates.find((a) => a.period === '2024-03')).toMatchObject({ value: 0.75 });
    expect(aggregates.find((a) => a.period === '2024-04')).toMatchObject({ value: 1.5 });
  });
});
