import { describe, expect, it } from 'vitest';
import { normalise } from '../../../../processors/normalise/index.js';
import { connection, envelope, fixture, iso, meter } from '../helpers.js';

const quantities = JSON.parse(fixture('enerkey/quantities.json')) as {
  id: number;
  name: string;
  unit: string;
}[];
const electricity = JSON.stringify(quantities[0]);

describe('enerkey.facility', () => {
  it('normalises a facility into an asset with its properties as metadata', () => {
    const r = normalise(
      envelope({
        format: 'enerkey.facility',
        entity_kind: 'asset',
        external_id: '1001',
        payload: fixture('enerkey/facility.json'),
      }),
      {},
    );
    expect(r.rejects).toEqual([]);
    expect(r.assets).toEqual([
      expect.objectContaining({
        provider: 'enerkey',
        external_id: '1001',
        name: 'Head office',
        address: 'Mannerheimintie 1, 00100 Helsinki, FI',
        derived: false,
        active: true,
        metadata: {
          customerFacilityId: 'FI-0001',
          timeZone: 'Europe/Helsinki',
          'property.buildingType': 'Office',
          'property.grossArea': '5230',
          'property.yearOfConstruction': '1987',
        },
      }),
    ]);
  });

  it('rejects a facility without id', () => {
    const r = normalise(envelope({ format: 'enerkey.facility', payload: '{"name":"x"}' }), {});
    expect(r.rejects[0]).toMatchObject({ code: 'NORM_PAYLOAD_SCHEMA', recordIndex: null });
    expect(r.rejects[0]!.message).toContain('id');
  });
});

describe('enerkey.meter', () => {
  it('maps the quantity name through the taxonomy and takes the facility zone from meta', () => {
    const env = envelope({
      format: 'enerkey.meter',
      entity_kind: 'meter',
      external_id: '20001',
      payload: fixture('enerkey/meter.json'),
      meta: { quantity: electricity, time_zone: 'Europe/Helsinki' },
    });
    const r = normalise(env, {});
    expect(r.rejects).toEqual([]);
    expect(r.meters[0]).toMatchObject({
      external_id: '20001',
      asset_external_id: '1001',
      meter_type: 'Energy',
      meter_subtype: 'Off-site Electricity',
      unit: 'kWh',
      description: 'Main electricity',
      time_zone: 'Europe/Helsinki',
      metadata: {
        name: 'Main electricity',
        meterType: 'Main',
        enegiaId: 'EN-20001',
        quantityId: '1',
        quantityName: 'Electricity',
        meter_type_source: 'inferred-name',
      },
    });
  });

  it.each([
    [2, 'Energy', 'District Heating and Cooling', 'MWh'],
    [3, 'Water', null, 'm3'],
    [4, 'Energy', 'District Heating and Cooling', 'MWh'],
    [5, 'Energy', 'Natural Gas', 'm3'],
  ])('quantity %s → %s / %s in %s', (qid, type, subtype, unit) => {
    const q = quantities.find((x) => x.id === qid)!;
    const payload = JSON.stringify({ id: 1, facilityId: 2, name: 'M', quantityId: qid, unit: q.unit });
    const r = normalise(
      envelope({ format: 'enerkey.meter', payload, meta: { quantity: JSON.stringify(q) } }),
      {},
    );
    expect(r.meters[0]).toMatchObject({ meter_type: type, meter_subtype: subtype, unit });
  });

  it('uses the connection mapping for quantity names, and quarantines what cannot be mapped', () => {
    const payload = JSON.stringify({ id: 1, facilityId: 2, name: 'Counter', quantityId: 9, unit: 'pcs' });
    const meta = { quantity: JSON.stringify({ id: 9, name: 'Bins', unit: 'pcs' }) };
    const unmapped = normalise(envelope({ format: 'enerkey.meter', payload, meta }), {});
    expect(unmapped.rejects[0]).toMatchObject({ code: 'NORM_METER_TYPE_UNMAPPED' });
    const mapped = normalise(envelope({ format: 'enerkey.meter', payload, meta }), {
      connection: connection({
        provider: 'enerkey',
        meterTypes: { bins: { type: 'Waste', subtype: 'Non-hazardous' } },
      }),
    });
    expect(mapped.meters[0]).toMatchObject({
      meter_type: 'Waste',
      meter_subtype: 'Non-hazardous',
      unit: 'pcs',
      canonical_unit: null,
    });
  });

  it('rejects a malformed meta.quantity', () => {
    const r = normalise(
      envelope({
        format: 'enerkey.meter',
        payload: fixture('enerkey/meter.json'),
        meta: { quantity: '{"id":1}' },
      }),
      {},
    );
    expect(r.rejects[0]!.code).toBe('NORM_PAYLOAD_SCHEMA');
    expect(r.rejects[0]!.message).toContain('meta.quantity');
  });
});

describe('enerkey.quantity', () => {
  it('emits nothing (reference data)', () => {
    const r = normalise(
      envelope({
        format: 'enerkey.quantity',
        entity_kind: 'reference',
        payload: fixture('enerkey/quantities.json'),
      }),
      {},
    );
    expect(r).toEqual({ assets: [], meters: [], batch: null, readings: [], rejects: [] });
  });
});

describe('enerkey.hourly', () => {
  const m = meter({ external_id: '20001', time_zone: 'Europe/Helsinki' });

  it('turns each value into the hour starting at its timestamp (Z or offset)', () => {
    const r = normalise(
      envelope({ format: 'enerkey.hourly', external_id: '20001', payload: fixture('enerkey/hourly.json') }),
      { meter: m },
    );
    expect(r.rejects).toEqual([]);
    expect(r.batch).toMatchObject({ meter_external_id: '20001', unit: 'kWh', time_zone: 'Europe/Helsinki' });
    expect(
      r.batch!.intervals.map((i) => [
        new Date(i.start).toISOString(),
        (i.end - i.start) / 3_600_000,
        i.value,
        i.estimated,
      ]),
    ).toEqual([
      ['2023-12-31T22:00:00.000Z', 1, 12.345, false],
      ['2023-12-31T23:00:00.000Z', 1, 11.5, true],
      ['2024-01-01T00:00:00.000Z', 1, 10.25, false],
    ]);
  });

  it('keeps the response unit (validate converts it to the meter unit)', () => {
    const payload = JSON.stringify({
      meterId: 20001,
      unit: 'MWh',
      values: [{ timestamp: '2024-01-01T00:00:00Z', value: 0.5 }],
    });
    const r = normalise(envelope({ format: 'enerkey.hourly', external_id: '20001', payload }), { meter: m });
    expect(r.batch!.unit).toBe('MWh');
    expect(r.batch!.intervals[0]!.value_canonical).toBe(500);
  });

  it('rejects bad values one by one', () => {
    const payload = JSON.stringify({
      meterId: 20001,
      unit: 'kWh',
      values: [
        { timestamp: '2024-01-01T00:00:00Z', value: 1 },
        { timestamp: '2024-01-01T01:00:00Z', value: null },
        { timestamp: '2024-01-01T02:00:00', value: 1 },
        { timestamp: 'yesterday', value: 1 },
      ],
    });
    const r = normalise(envelope({ format: 'enerkey.hourly', external_id: '20001', payload }), {
      meter: meter({ external_id: '20001', time_zone: null }),
    });
    expect(r.batch!.intervals).toHaveLength(1);
    expect(r.rejects.map((x) => [x.code, x.recordIndex])).toEqual([
      ['NORM_PAYLOAD_SCHEMA', 1],
      ['NORM_TIMESTAMP_NO_ZONE', 2],
      ['NORM_TIMESTAMP_INVALID', 3],
    ]);
    expect(r.rejects[0]!.message).toContain('values.1.value');
  });

  it('rejects a chunk of another meter', () => {
    const r = normalise(
      envelope({ format: 'enerkey.hourly', external_id: '20002', payload: fixture('enerkey/hourly.json') }),
      { meter: m },
    );
    expect(r.rejects[0]).toMatchObject({ code: 'NORM_PAYLOAD_SCHEMA', recordIndex: null });
  });
});

describe('enerkey.monthly', () => {
  it('spans each local month of the meter zone', () => {
    const m = meter({ external_id: '20001', time_zone: 'Europe/Helsinki' });
    const r = normalise(
      envelope({ format: 'enerkey.monthly', external_id: '20001', payload: fixture('enerkey/monthly.json') }),
      { meter: m },
    );
    expect(r.rejects).toEqual([]);
    expect(r.batch!.intervals.map((i) => [i.start, i.end, i.value, i.estimated])).toEqual([
      [iso('2023-12-31T22:00:00Z'), iso('2024-01-31T22:00:00Z'), 9120.5, false],
      [iso('2024-01-31T22:00:00Z'), iso('2024-02-29T22:00:00Z'), 8400.25, true],
    ]);
  });

  it('rejects a value that does not start a month in the zone (wrong zone shows up, not shifted data)', () => {
    const m = meter({ external_id: '20001', time_zone: 'UTC' });
    const r = normalise(
      envelope({ format: 'enerkey.monthly', external_id: '20001', payload: fixture('enerkey/monthly.json') }),
      { meter: m },
    );
    expect(r.batch!.intervals).toEqual([]);
    expect(r.rejects.map((x) => x.code)).toEqual(['NORM_TIMESTAMP_INVALID', 'NORM_TIMESTAMP_INVALID']);
  });
});
