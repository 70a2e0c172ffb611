import { describe, expect, it } from 'vitest';
import { normalise } from '../../../../processors/normalise/index.js';
import type { ConnectionInput } from '../../../../schemas/connection.js';
import { connection, envelope, iso, meter } from '../helpers.js';

const endpoint = { path: '/x' };
function genericConnection(
  over: {
    withAssets?: boolean;
    kind?: 'consumption' | 'reading';
    timeZone?: string;
    extra?: Partial<ConnectionInput>;
  } = {},
) {
  return connection({
    provider: 'generic',
    ...(over.timeZone ? { timeZone: over.timeZone } : {}),
    meterTypes: { EL: { type: 'Energy', subtype: 'Off-site Electricity' } },
    rollover: { default: 100000, meters: { 'M-2': 99999 } },
    generic: {
      ...(over.withAssets === false
        ? {}
        : {
            assets: {
              ...endpoint,
              fields: {
                externalId: 'id',
                name: 'info.name',
                address: 'info.address',
                metadata: { region: 'region' },
              },
            },
          }),
      meters: {
        ...endpoint,
        fields: {
          externalId: '@_id',
          assetId: 'building.id',
          assetName: 'building.name',
          assetAddress: 'building.address',
          type: 'kind',
          subtype: 'sub',
          unit: 'unit',
          description: 'label',
          timeZone: 'tz',
          metadata: { serial: 'serial' },
        },
      },
      usage: {
        ...endpoint,
        kind: over.kind ?? 'consumption',
        fields: {
          meterId: 'meter',
          start: 'from',
          end: 'to',
          timestamp: 'at',
          value: 'v',
          redelivery: 'back',
          production: 'pv',
          cost: 'cost.amount',
          currency: 'cost.currency',
          estimated: 'est',
          unit: 'unit',
        },
      },
    },
    ...over.extra,
  });
}

describe('generic.asset', () => {
  it('extracts fields by dot path', () => {
    const payload = JSON.stringify({
      id: 7,
      info: { name: 'Depot', address: 'Road 1' },
      region: 'North',
      other: { x: 1 },
    });
    const r = normalise(envelope({ format: 'generic.asset', entity_kind: 'asset', payload }), {
      connection: genericConnection(),
    });
    expect(r.rejects).toEqual([]);
    expect(r.assets[0]).toMatchObject({
      provider: 'generic',
      external_id: '7',
      name: 'Depot',
      address: 'Road 1',
      metadata: { region: 'North' },
      derived: false,
    });
  });

  it('names an asset by its address when the name is empty (CSV cell)', () => {
    const payload = JSON.stringify({ id: 'A', info: { name: ' ', address: 'Road 2' } });
    expect(
      normalise(envelope({ format: 'generic.asset', payload }), { connection: genericConnection() })
        .assets[0]!.name,
    ).toBe('Road 2');
  });

  it('rejects a missing id or name with the path', () => {
    const noId = normalise(envelope({ format: 'generic.asset', payload: '{"info":{"name":"x"}}' }), {
      connection: genericConnection(),
    });
    expect(noId.rejects[0]).toMatchObject({ code: 'NORM_PAYLOAD_SCHEMA', recordIndex: null });
    expect(noId.rejects[0]!.message).toContain('id');
    const noName = normalise(envelope({ format: 'generic.asset', payload: '{"id":"x"}' }), {
      connection: genericConnection(),
    });
    expect(noName.rejects[0]!.message).toContain('info.name');
  });

  it('derives the asset from a meter item when there is no asset endpoint', () => {
    const item = {
      '@_id': 'M-1',
      building: { id: 'B-9', name: 'Tower', address: 'Main 1' },
      kind: 'EL',
      unit: 'kWh',
    };
    const r = normalise(
      envelope({
        format: 'generic.asset',
        payload: JSON.stringify(item),
        meta: { derived: 'true', meter_external_id: 'M-1' },
      }),
      { connection: genericConnection({ withAssets: false }) },
    );
    expect(r.assets[0]).toMatchObject({
      external_id: 'B-9',
      name: 'Tower',
      address: 'Main 1',
      derived: true,
      metadata: { derivedFrom: 'meter', meterExternalId: 'M-1' },
    });
  });

  it('rejects generic payloads on a connection without generic configuration', () => {
    const r = normalise(envelope({ format: 'generic.asset', payload: '{}' }), { connection: connection() });
    expect(r.rejects[0]!.code).toBe('NORM_UNKNOWN_CONNECTION');
    expect(normalise(envelope({ format: 'generic.usage', payload: '[]' }), {}).rejects[0]!.code).toBe(
      'NORM_UNKNOWN_CONNECTION',
    );
  });
});

describe('generic.meter', () => {
  const item = {
    '@_id': 'M-1',
    building: { id: 'B-9' },
    kind: 'el',
    sub: 'x',
    unit: 'm³',
    label: 'Main',
    tz: 'Europe/Oslo',
    serial: 123,
  };

  it('maps the classification, normalises the unit, keeps the zone and metadata', () => {
    const r = normalise(
      envelope({ format: 'generic.meter', payload: JSON.stringify({ ...item, unit: 'KWH' }) }),
      { connection: genericConnection() },
    );
    expect(r.rejects).toEqual([]);
    expect(r.assets).toEqual([]);
    expect(r.meters[0]).toMatchObject({
      external_id: 'M-1',
      asset_external_id: 'B-9',
      meter_type: 'Energy',
      meter_subtype: 'Off-site Electricity',
      unit: 'kWh',
      canonical_unit: 'kWh',
      description: 'Main',
      time_zone: 'Europe/Oslo',
      reading_type: 'consumption',
      rollover_value: 100000,
      metadata: { serial: '123', providerType: 'el', providerSubtype: 'x', meter_type_source: 'mapping' },
    });
  });

  it('infers from the provider subtype and uses per-meter rollover and reading kind', () => {
    const r = normalise(
      envelope({
        format: 'generic.meter',
        payload: JSON.stringify({
          ...item,
          '@_id': 'M-2',
          kind: undefined,
          sub: 'Potable water',
          unit: 'm3',
        }),
      }),
      { connection: genericConnection({ kind: 'reading' }) },
    );
    expect(r.meters[0]).toMatchObject({
      meter_type: 'Water',
      meter_subtype: 'Potable',
      reading_type: 'reading',
      rollover_value: 99999,
      unit: 'm3',
    });
  });

  it('keeps an unknown unit as written and quarantines an unmappable type', () => {
    const pallets = normalise(
      envelope({ format: 'generic.meter', payload: JSON.stringify({ ...item, unit: 'Pallets' }) }),
      { connection: genericConnection() },
    );
    expect(pallets.meters[0]).toMatchObject({ unit: 'Pallets', canonical_unit: null });
    const unknown = normalise(
      envelope({
        format: 'generic.meter',
        payload: JSON.stringify({ ...item, kind: 'Type 7', sub: undefined, unit: 'm3' }),
      }),
      {
        connection: genericConnection(),
      },
    );
    expect(unknown.meters).toEqual([]);
    expect(unknown.rejects[0]!.code).toBe('NORM_METER_TYPE_UNMAPPED');
  });

  it('rejects a meter without unit', () => {
    const r = normalise(
      envelope({ format: 'generic.meter', payload: JSON.stringify({ ...item, unit: '' }) }),
      { connection: genericConnection() },
    );
    expect(r.rejects[0]).toMatchObject({ code: 'NORM_PAYLOAD_SCHEMA' });
    expect(r.rejects[0]!.message).toContain('unit');
  });
});

describe('generic.usage (consumption)', () => {
  const m = meter({ external_id: 'M-1', unit: 'kWh', time_zone: 'Europe/Helsinki' });
  const env = (items: unknown) =>
    envelope({ format: 'generic.usage', external_id: 'M-1', payload: JSON.stringify(items) });

  it('reads consumption, redelivery, production and cost; local dates are local midnight in the zone', () => {
    const items = [
      {
        meter: 'M-1',
        from: '2024-03-31',
        to: '2024-04-01',
        v: '92.5',
        back: 1,
        pv: '3',
        cost: { amount: '-4.20', currency: 'EUR' },
        est: 'false',
      },
      { meter: 'M-1', from: '2024-04-01T00:00:00+03:00', to: '2024-04-01T01:00:00+03:00', v: 2, est: true },
    ];
    const r = normalise(env(items), {
      connection: genericConnection({ timeZone: 'Europe/Helsinki' }),
      meter: m,
    });
    expect(r.rejects).toEqual([]);
    const b = r.batch!;
    expect(b).toMatchObject({ meter_external_id: 'M-1', unit: 'kWh', time_zone: 'Europe/Helsinki' });
    expect(b.intervals.map((i) => [i.channel, i.start, i.end, i.value, i.currency, i.estimated])).toEqual([
      ['consumption', iso('2024-03-30T22:00:00Z'), iso('2024-03-31T21:00:00Z'), 92.5, null, false],
      ['redelivery', iso('2024-03-30T22:00:00Z'), iso('2024-03-31T21:00:00Z'), 1, null, false],
      ['production', iso('2024-03-30T22:00:00Z'), iso('2024-03-31T21:00:00Z'), 3, null, false],
      ['cost', iso('2024-03-30T22:00:00Z'), iso('2024-03-31T21:00:00Z'), -4.2, 'EUR', false],
      ['consumption', iso('2024-03-31T21:00:00Z'), iso('2024-03-31T22:00:00Z'), 2, null, true],
    ]);
    expect(b.intervals[3]!.value_canonical).toBeNull();
  });

  it('rejects local timestamps when no zone is configured (NORM_TIMESTAMP_NO_ZONE), per item', () => {
    const items = [
      { from: '2024-01-01T00:00:00Z', to: '2024-01-01T01:00:00Z', v: 1 },
      { from: '2024-01-01T01:00:00', to: '2024-01-01T02:00:00', v: 1 },
    ];
    const r = normalise(env(items), {
      connection: genericConnection(),
      meter: meter({ external_id: 'M-1', time_zone: null }),
    });
    expect(r.batch!.intervals).toHaveLength(1);
    expect(r.rejects).toEqual([
      {
        code: 'NORM_TIMESTAMP_NO_ZONE',
        message: expect.stringContaining('no time zone') as string,
        recordIndex: 1,
        detail: JSON.stringify(items[1]),
      },
    ]);
  });

  it('converts an item unit to the meter unit, rejects an incompatible one', () => {
    const items = [
      { from: '2024-01-01T00:00:00Z', to: '2024-01-01T01:00:00Z', v: 1.5, unit: 'MWh' },
      { from: '2024-01-01T01:00:00Z', to: '2024-01-01T02:00:00Z', v: 1, unit: 'm3' },
    ];
    const r = normalise(env(items), { connection: genericConnection(), meter: m });
    expect(r.batch!.intervals.map((i) => i.value)).toEqual([1500]);
    expect(r.rejects[0]).toMatchObject({ code: 'VAL_UNIT_CONFLICT', recordIndex: 1 });
  });

  it('rejects bad records one by one and keeps the rest', () => {
    const items = [
      { from: '2024-01-01T00:00:00Z', to: '2024-01-01T01:00:00Z', v: '1,5' },
      { from: '2024-01-01T00:00:00Z', to: '2024-01-01T01:00:00Z' },
      { from: '2024-01-01T00:00:00Z', to: '2024-01-01T01:00:00Z', v: 1, est: 'maybe' },
      { meter: 'M-9', from: '2024-01-01T00:00:00Z', to: '2024-01-01T01:00:00Z', v: 1 },
      { from: '2024-13-01', to: '2024-01-01T01:00:00Z', v: 1 },
      { to: '2024-01-01T01:00:00Z', v: 1 },
      { from: '2024-01-01T02:00:00Z', to: '2024-01-01T03:00:00Z', v: 4 },
    ];
    const r = normalise(env(items), { connection: genericConnection(), meter: m });
    expect(r.batch!.intervals.map((i) => i.value)).toEqual([4]);
    expect(r.rejects.map((x) => [x.code, x.recordIndex])).toEqual([
      ['NORM_PAYLOAD_SCHEMA', 0],
      ['NORM_PAYLOAD_SCHEMA', 1],
      ['NORM_PAYLOAD_SCHEMA', 2],
      ['NORM_PAYLOAD_SCHEMA', 3],
      ['NORM_TIMESTAMP_INVALID', 4],
      ['NORM_PAYLOAD_SCHEMA', 5],
    ]);
  });

  it('needs the meter and an array', () => {
    expect(normalise(env([]), { connection: genericConnection() }).rejects[0]!.code).toBe(
      'VAL_UNKNOWN_METER',
    );
    expect(
      normalise(envelope({ format: 'generic.usage', external_id: 'M-1', payload: '"x"' }), {
        connection: genericConnection(),
        meter: m,
      }).rejects[0]!.code,
    ).toBe('NORM_PAYLOAD_SCHEMA');
  });
});

describe('generic.usage (reading)', () => {
  it('returns register readings (and a batch header without intervals)', () => {
    const items = [
      { meter: 'M-1', at: '2024-01-02', v: '1050.5', est: 'E' },
      { meter: 'M-1', at: '2024-01-01', v: 1000 },
      { meter: 'M-1', at: 'never', v: 1 },
    ];
    const r = normalise(
      envelope({ format: 'generic.usage', external_id: 'M-1', payload: JSON.stringify(items) }),
      {
        connection: genericConnection({ kind: 'reading', timeZone: 'UTC' }),
        meter: meter({ external_id: 'M-1', unit: 'm3', reading_type: 'reading' }),
      },
    );
    expect(r.batch).toMatchObject({ unit: 'm3', intervals: [] });
    expect(r.readings).toEqual([
      { timestamp: iso('2024-01-02T00:00:00Z'), value: 1050.5, estimated: true, index: 0 },
      { timestamp: iso('2024-01-01T00:00:00Z'), value: 1000, estimated: false, index: 1 },
    ]);
    expect(r.rejects.map((x) => [x.code, x.recordIndex])).toEqual([['NORM_TIMESTAMP_INVALID', 2]]);
  });
});

describe('generic: each meter has its own usage kind', () => {
  const mixedConnection = connection({
    provider: 'generic',
    timeZone: 'Europe/Berlin',
    meterTypes: { electricity: { type: 'Energy' }, water: { type: 'Water', subtype: 'Potable' } },
    generic: {
      meters: {
        ...endpoint,
        fields: { externalId: 'id', assetId: 'site', type: 'medium', unit: 'unit', usageKind: 'kind' },
        usageKinds: { interval: 'consumption', register: 'reading' },
      },
      usage: { path: '/meters/{meterId}/usage', fields: { meterId: 'meter_id', estimated: 'estimated' } },
      usageByKind: {
        consumption: { fields: { start: 'start', end: 'end', value: 'value' } },
        reading: { fields: { timestamp: 'read_at', value: 'reading' } },
      },
    },
  });
  const meterOf = (item: Record<string, unknown>) =>
    normalise(envelope({ format: 'generic.meter', payload: JSON.stringify(item) }), {
      connection: mixedConnection,
    });
  const base = { site: 'S-1', unit: 'kWh', medium: 'electricity' };

  it("a meter's reading_type is its kind field mapped through usageKinds (case-insensitive)", () => {
    expect(meterOf({ ...base, id: 'E-1', kind: 'interval' }).meters[0]!.reading_type).toBe('consumption');
    const water = meterOf({ ...base, id: 'W-1', kind: 'Register', medium: 'water', unit: 'm3' });
    expect(water.rejects).toEqual([]);
    expect(water.meters[0]!.reading_type).toBe('reading');
  });

  it('a kind value without a mapping, or none, quarantines the meter as NORM_USAGE_KIND_UNMAPPED', () => {
    const virtual = meterOf({ ...base, id: 'V-1', kind: 'virtual' });
    expect(virtual.meters).toEqual([]);
    expect(virtual.rejects).toHaveLength(1);
    expect(virtual.rejects[0]!.code).toBe('NORM_USAGE_KIND_UNMAPPED');
    expect(virtual.rejects[0]!.message).toContain('meter V-1');
    expect(virtual.rejects[0]!.message).toContain('"virtual"');
    expect(virtual.rejects[0]!.message).toContain('interval, register');
    const none = meterOf({ ...base, id: 'V-2' });
    expect(none.rejects[0]!.code).toBe('NORM_USAGE_KIND_UNMAPPED');
    expect(none.rejects[0]!.message).toContain('kind is missing');
  });

  it("rows are read with the meter's own kind and field set only", () => {
    const interval = {
      meter_id: 'X',
      start: '2024-03-31T00:00:00+01:00',
      end: '2024-03-31T00:15:00+01:00',
      value: 1.5,
    };
    const register = { meter_id: 'X', read_at: '2024-03-31T00:00:00+01:00', reading: 99999.5 };
    const usage = (reading_type: 'consumption' | 'reading') =>
      normalise(
        envelope({
          format: 'generic.usage',
          external_id: 'X',
          payload: JSON.stringify([interval, register]),
        }),
        {
          connection: mixedConnection,
          meter: meter({ external_id: 'X', unit: reading_type === 'reading' ? 'm3' : 'kWh', reading_type }),
        },
      );
    const e = usage('consumption');
    expect(e.batch!.intervals.map((i) => i.value)).toEqual([1.5]);
    expect(e.readings).toEqual([]);
    expect(e.rejects.map((r) => [r.code, r.recordIndex])).toEqual([['NORM_PAYLOAD_SCHEMA', 1]]);
    const w = usage('reading');
    expect(w.batch!.intervals).toEqual([]);
    expect(w.readings.map((r) => r.value)).toEqual([99999.5]);
    expect(w.rejects.map((r) => [r.code, r.recordIndex])).toEqual([['NORM_PAYLOAD_SCHEMA', 0]]);
  });
});
