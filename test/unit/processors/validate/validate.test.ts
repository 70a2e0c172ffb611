import { describe, expect, it } from 'vitest';
import {
  DEFAULT_VALIDATE_OPTIONS,
  validateAsset,
  validateBatch,
  validateMeter,
} from '../../../../processors/validate/index.js';
import type { Asset } from '../../../../schemas/records.js';
import { batch, interval, iso, meter } from '../helpers.js';

const H = 3_600_000;
const t0 = iso('2024-01-01T00:00:00Z');

describe('validateBatch', () => {
  it('passes valid intervals through with canonical values', () => {
    const { valid, rejects } = validateBatch(batch([interval(t0, t0 + H, 5)]), meter());
    expect(rejects).toEqual([]);
    expect(valid.intervals).toEqual([interval(t0, t0 + H, 5)]);
  });

  it('rejects the whole batch for an unknown meter', () => {
    const { valid, rejects } = validateBatch(
      batch([interval(t0, t0 + H, 5), interval(t0 + H, t0 + 2 * H, 5)]),
      undefined,
    );
    expect(valid.intervals).toEqual([]);
    expect(rejects).toEqual([
      {
        code: 'VAL_UNKNOWN_METER',
        message: expect.stringContaining('m1') as string,
        recordIndex: null,
        detail: null,
      },
    ]);
  });

  it('rejects the whole batch for an invalid zone, a missing unit, an incompatible unit', () => {
    expect(
      validateBatch(batch([interval(t0, t0 + H, 1)], { time_zone: 'Mars/Olympus' }), meter()).rejects[0]!
        .code,
    ).toBe('VAL_INVALID_TIME_ZONE');
    expect(validateBatch(batch([interval(t0, t0 + H, 1)], { unit: ' ' }), meter()).rejects[0]!.code).toBe(
      'VAL_REQUIRED_FIELD',
    );
    const conflict = validateBatch(batch([interval(t0, t0 + H, 1)], { unit: 'm3' }), meter());
    expect(conflict.rejects).toEqual([
      expect.objectContaining({ code: 'VAL_UNIT_CONFLICT', recordIndex: null }),
    ]);
    expect(conflict.valid.intervals).toEqual([]);
  });

  it('converts values to the meter unit when compatible', () => {
    const { valid, rejects } = validateBatch(
      batch([interval(t0, t0 + H, 1.5), interval(t0, t0 + H, 2, { channel: 'cost', currency: 'EUR' })], {
        unit: 'MWh',
        canonical_unit: 'kWh',
      }),
      meter(),
    );
    expect(rejects).toEqual([]);
    expect(valid.unit).toBe('kWh');
    expect(valid.intervals[0]).toMatchObject({ value: 1500, value_canonical: 1500 });
    expect(valid.intervals[1]).toMatchObject({ value: 2, value_canonical: null, currency: 'EUR' });
    const litres = validateBatch(
      batch([interval(t0, t0 + H, 250)], { unit: 'l' }),
      meter({ unit: 'm3', canonical_unit: 'm3' }),
    );
    expect(litres.valid.intervals[0]).toMatchObject({ value: 0.25, value_canonical: 0.25 });
  });

  it('accepts an unknown unit only against the same unknown unit, without canonical value', () => {
    const m = meter({ unit: 'Pallets', canonical_unit: null, meter_type: 'Waste', meter_subtype: null });
    const same = validateBatch(
      batch([interval(t0, t0 + H, 3)], { unit: 'pallets', canonical_unit: null }),
      m,
    );
    expect(same.rejects).toEqual([]);
    expect(same.valid.intervals[0]).toMatchObject({ value: 3, value_canonical: null });
    expect(validateBatch(batch([interval(t0, t0 + H, 3)], { unit: 'bins' }), m).rejects[0]!.code).toBe(
      'VAL_UNIT_CONFLICT',
    );
  });

  it('gives exactly one reject per failing interval, the first rule it fails, and keeps the rest', () => {
    const intervals = [
      interval(t0, t0 + H, 1), // ok
      interval(t0, t0, 1), // end = start
      interval(t0 + H, t0, 1), // end before start
      interval(t0, t0 + H, Number.NaN), // not finite
      interval(t0, Number.POSITIVE_INFINITY, 1), // not finite end
      interval(t0, t0 + H, -1), // negative consumption
      interval(t0, t0 + H, -1, { channel: 'redelivery' }), // negative redelivery
      interval(t0, t0 + H, -5, { channel: 'cost', currency: 'EUR' }), // credit: ok
      interval(t0, t0 + H, 5, { channel: 'cost', currency: null }), // no currency
      interval(t0, t0 + H, 5, { channel: 'cost', currency: 'euro' }), // not ISO 4217
      interval(t0, t0 + H, 2_000_000), // > 1e6 kWh in one hour
      interval(t0, t0, Number.NaN), // NaN value and end = start: first rule (finite) wins
      interval(t0, t0 + H, 1, { channel: 'gas' as never }), // unknown channel
    ];
    const { valid, rejects } = validateBatch(batch(intervals), meter());
    expect(valid.intervals.map((i) => [i.channel, i.value])).toEqual([
      ['consumption', 1],
      ['cost', -5],
    ]);
    expect(rejects.map((r) => [r.recordIndex, r.code])).toEqual([
      [1, 'VAL_END_NOT_AFTER_START'],
      [2, 'VAL_END_NOT_AFTER_START'],
      [3, 'VAL_NOT_FINITE'],
      [4, 'VAL_NOT_FINITE'],
      [5, 'VAL_NEGATIVE_CONSUMPTION'],
      [6, 'VAL_NEGATIVE_CONSUMPTION'],
      [8, 'VAL_CURRENCY_MISSING'],
      [9, 'VAL_CURRENCY_INVALID'],
      [10, 'VAL_IMPLAUSIBLE_MAGNITUDE'],
      [11, 'VAL_NOT_FINITE'],
      [12, 'VAL_REQUIRED_FIELD'],
    ]);
    expect(JSON.parse(rejects[4]!.detail!)).toMatchObject({ value: -1 });
  });

  it('scales the magnitude limit with the interval and the unit, with configurable limits', () => {
    const month = 30 * 24 * H;
    // 100 GWh over a month is 139 MWh/h: plausible for the default energy limit.
    expect(validateBatch(batch([interval(t0, t0 + month, 100_000_000)]), meter()).rejects).toEqual([]);
    // 2 GWh in an hour is not, also when reported in MWh.
    expect(
      validateBatch(batch([interval(t0, t0 + H, 2000)], { unit: 'MWh' }), meter()).rejects[0]!.code,
    ).toBe('VAL_IMPLAUSIBLE_MAGNITUDE');
    // A one-second interval is judged as if it lasted the minimum (15 min).
    expect(validateBatch(batch([interval(t0, t0 + 1000, 200_000)]), meter()).rejects).toEqual([]);
    // Water: 100,000 m3 per hour by default; tighter when configured.
    const water = meter({ unit: 'm3', canonical_unit: 'm3', meter_type: 'Water', meter_subtype: null });
    expect(validateBatch(batch([interval(t0, t0 + H, 500)], { unit: 'm3' }), water).rejects).toEqual([]);
    const strict = validateBatch(batch([interval(t0, t0 + H, 500)], { unit: 'm3' }), water, {
      maxPerHour: { ...DEFAULT_VALIDATE_OPTIONS.maxPerHour, volume: 100 },
    });
    expect(strict.rejects[0]!.code).toBe('VAL_IMPLAUSIBLE_MAGNITUDE');
  });
});

describe('validateBatch: intervals in the future', () => {
  const now = iso('2024-05-20T12:00:00Z');
  const D = 24 * H;

  it('refuses an interval ending more than maxFutureMs after now as VAL_TIMESTAMP_FUTURE, keeps the rest', () => {
    const year2099 = iso('2099-01-01T00:00:00Z');
    const { valid, rejects } = validateBatch(
      batch([
        interval(now - H, now, 1),
        interval(year2099, year2099 + H, 1),
        interval(now + D, now + D + H, 1), // 25 h ahead: inside the default 2 days
        interval(now + 2 * D, now + 2 * D + H, 1), // ends 49 h ahead
      ]),
      meter(),
      { now: () => now },
    );
    expect(valid.intervals.map((i) => i.start)).toEqual([now - H, now + D]);
    expect(rejects.map((r) => [r.recordIndex, r.code])).toEqual([
      [1, 'VAL_TIMESTAMP_FUTURE'],
      [3, 'VAL_TIMESTAMP_FUTURE'],
    ]);
    expect(rejects[0]!.message).toContain('2099-01-01T01:00:00.000Z');
  });

  it('takes the tolerance from the options', () => {
    const ahead = batch([interval(now + 3 * D, now + 3 * D + H, 1)]);
    expect(validateBatch(ahead, meter(), { now: () => now }).rejects[0]!.code).toBe('VAL_TIMESTAMP_FUTURE');
    expect(validateBatch(ahead, meter(), { now: () => now, maxFutureMs: 7 * D }).rejects).toEqual([]);
  });
});

describe('validateMeter', () => {
  it('accepts a good meter', () => {
    expect(validateMeter(meter())).toEqual([]);
  });

  it('reports each problem', () => {
    const bad = meter({
      external_id: '',
      asset_external_id: '',
      unit: '',
      time_zone: 'Nowhere/Land',
      rollover_value: -3,
    });
    expect(validateMeter(bad).map((r) => r.code)).toEqual([
      'VAL_REQUIRED_FIELD',
      'VAL_REQUIRED_FIELD',
      'VAL_REQUIRED_FIELD',
      'VAL_INVALID_TIME_ZONE',
      'VAL_NOT_FINITE',
    ]);
    expect(validateMeter(meter({ meter_type: 'Gas' as never })).map((r) => r.code)).toEqual([
      'NORM_METER_TYPE_UNMAPPED',
    ]);
    expect(validateMeter(meter({ meter_subtype: 'Potable' })).map((r) => r.code)).toEqual([
      'NORM_METER_TYPE_UNMAPPED',
    ]);
  });
});

describe('validateAsset', () => {
  const asset: Asset = {
    connection_id: 'c1',
    provider: 'x',
    external_id: 'a1',
    name: 'A',
    address: null,
    metadata: {},
    active: true,
    derived: false,
    first_seen: 0,
    last_seen: 0,
    sync_run_id: 'r',
  };
  it('requires id and name', () => {
    expect(validateAsset(asset)).toEqual([]);
    expect(validateAsset({ ...asset, name: '  ' }).map((r) => r.code)).toEqual(['VAL_REQUIRED_FIELD']);
    expect(validateAsset({ ...asset, external_id: '' })[0]!.message).toContain('external_id');
  });
});
