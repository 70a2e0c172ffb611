import { describe, expect, it } from 'vitest';
import { normalise } from '../../../../processors/normalise/index.js';
import { connection, envelope, fixture, iso } from '../helpers.js';

const meterJson = fixture('arcadia/meter.json');
const siteJson = fixture('arcadia/site.json');

function withMeter(patch: (m: Record<string, unknown>) => void): string {
  const m = JSON.parse(meterJson) as Record<string, unknown>;
  patch(m);
  return JSON.stringify(m);
}

describe('arcadia.meter', () => {
  it('normalises the document example', () => {
    const r = normalise(envelope({ format: 'arcadia.meter', entity_kind: 'meter', payload: meterJson }), {
      connection: connection({ timeZone: 'America/New_York' }),
    });
    expect(r.rejects).toEqual([]);
    expect(r.assets).toEqual([]); // the site is its own arcadia.site envelope
    expect(r.meters).toHaveLength(1);
    const m = r.meters[0]!;
    expect(m).toMatchObject({
      connection_id: 'c1',
      provider: 'arcadia',
      external_id: 'mtr_1234',
      asset_external_id: 'string',
      meter_type: 'Energy',
      unit: 'kWh',
      canonical_unit: 'kWh',
      time_zone: 'America/New_York',
      reading_type: 'consumption',
      active: true,
      first_seen: 1_700_000_000_000,
      last_seen: 1_700_000_000_000,
      sync_run_id: 'run-1',
    });
    // serviceType "string" says nothing; kWh decides Energy, and the metadata says so.
    expect(m.meter_subtype).toBeNull();
    expect(m.metadata.meter_type_source).toBe('inferred-unit');
    expect(m.metadata).toMatchObject({
      meterNumber: 'string',
      normalizedMeterNumber: 'string',
      pointOfDeliveryNumber: 'string',
      providerName: 'string',
      tariffName: 'string',
      status: 'INTERVALS_NOT_REQUESTED',
      meterConstantMultiplier: '0',
      isIntervalsProductActive: 'false',
    });
    for (const v of Object.values(m.metadata)) expect(typeof v).toBe('string');
  });

  it('maps serviceType electric to Off-site Electricity by default, and the connection mapping wins', () => {
    const payload = withMeter((m) => (m.serviceType = 'ELECTRIC'));
    const byDefault = normalise(envelope({ format: 'arcadia.meter', payload }), {});
    expect(byDefault.meters[0]).toMatchObject({
      meter_type: 'Energy',
      meter_subtype: 'Off-site Electricity',
      time_zone: null,
    });
    expect(byDefault.meters[0]!.metadata.meter_type_source).toBe('default');
    const configured = normalise(envelope({ format: 'arcadia.meter', payload }), {
      connection: connection({ meterTypes: { electric: { type: 'Energy', subtype: 'EV Charging' } } }),
    });
    expect(configured.meters[0]!.meter_subtype).toBe('EV Charging');
  });

  it('rejects a meter whose classification contradicts kWh (NORM_METER_TYPE_UNMAPPED)', () => {
    const payload = withMeter((m) => (m.serviceType = 'water'));
    const r = normalise(envelope({ format: 'arcadia.meter', payload }), {});
    expect(r.meters).toEqual([]);
    expect(r.rejects).toHaveLength(1);
    expect(r.rejects[0]!.code).toBe('NORM_METER_TYPE_UNMAPPED');
    expect(r.rejects[0]!.message).toContain('"water"');
  });

  it('derives the asset from the service address when the meter has no site', () => {
    const payload = withMeter((m) => {
      delete m.site;
      m.serviceAddress = {
        fullAddress: '1 Main St, Springfield, IL 62701',
        city: 'Springfield',
        country: 'US',
      };
    });
    const r = normalise(envelope({ format: 'arcadia.meter', payload }), {});
    expect(r.rejects).toEqual([]);
    expect(r.assets).toHaveLength(1);
    const a = r.assets[0]!;
    expect(a).toMatchObject({
      name: '1 Main St, Springfield, IL 62701',
      address: '1 Main St, Springfield, IL 62701',
      derived: true,
    });
    expect(a.external_id).toMatch(/^addr-[0-9a-f]{16}$/);
    expect(r.meters[0]!.asset_external_id).toBe(a.external_id);
    // The same address, spelled differently, gives the same asset.
    const again = normalise(
      envelope({
        format: 'arcadia.meter',
        payload: withMeter((m) => {
          delete m.site;
          m.serviceAddress = { fullAddress: '1 main st.  springfield IL 62701' };
        }),
      }),
      {},
    );
    expect(again.assets[0]!.external_id).toBe(a.external_id);
  });

  it('rejects a meter with neither site nor address, and one failing its schema with the field path', () => {
    const none = normalise(
      envelope({
        format: 'arcadia.meter',
        payload: withMeter((m) => {
          delete m.site;
          delete m.serviceAddress;
        }),
      }),
      {},
    );
    expect(none.rejects[0]).toMatchObject({ code: 'NORM_PAYLOAD_SCHEMA', recordIndex: null });
    const bad = normalise(envelope({ format: 'arcadia.meter', payload: withMeter((m) => (m.id = 42)) }), {});
    expect(bad.rejects).toHaveLength(1);
    expect(bad.rejects[0]!.code).toBe('NORM_PAYLOAD_SCHEMA');
    expect(bad.rejects[0]!.message).toContain('id:');
    const badSite = normalise(
      envelope({
        format: 'arcadia.meter',
        payload: withMeter((m) => ((m.site as Record<string, unknown>).siteName = 7)),
      }),
      {},
    );
    expect(badSite.rejects[0]!.message).toContain('site.siteName');
  });
});

describe('arcadia.site', () => {
  it('normalises the site object of the document example', () => {
    const r = normalise(
      envelope({ format: 'arcadia.site', entity_kind: 'asset', external_id: 'string', payload: siteJson }),
      {},
    );
    expect(r.rejects).toEqual([]);
    expect(r.assets).toEqual([
      {
        connection_id: 'c1',
        provider: 'arcadia',
        external_id: 'string',
        name: 'string',
        address: 'string',
        metadata: {
          siteName: 'string',
          siteCode: 'string',
          siteNumber: 'string',
          region: 'string',
          subRegion: 'string',
          facilityType: 'string',
          meterIds: 'string',
        },
        active: true,
        derived: false,
        first_seen: 1_700_000_000_000,
        last_seen: 1_700_000_000_000,
        sync_run_id: 'run-1',
      },
    ]);
  });

  it('names a site without siteName by its address, built from parts when fullAddress is absent', () => {
    const site = {
      id: 'site_1',
      serviceAddress: {
        streetLine1: '5 Elm St',
        city: 'Boston',
        state: 'MA',
        postalCode: '02110',
        country: 'US',
      },
    };
    const r = normalise(envelope({ format: 'arcadia.site', payload: JSON.stringify(site) }), {});
    expect(r.assets[0]).toMatchObject({
      external_id: 'site_1',
      name: '5 Elm St, Boston MA 02110, US',
      address: '5 Elm St, Boston MA 02110, US',
    });
  });
});

describe('arcadia.intervals', () => {
  it('normalises the document example (import → consumption, kWh)', () => {
    const r = normalise(
      envelope({ format: 'arcadia.intervals', payload: fixture('arcadia/intervals.json') }),
      { connection: connection({ timeZone: 'America/Chicago' }) },
    );
    expect(r.rejects).toEqual([]);
    const b = r.batch!;
    expect(b).toMatchObject({
      connection_id: 'c1',
      meter_external_id: 'mtr_1234',
      unit: 'kWh',
      canonical_unit: 'kWh',
      // localTimezone "string" is not a zone: the connection's zone is used.
      time_zone: 'America/Chicago',
      source_topic: '',
      source_partition: -1,
      source_offset: -1,
    });
    expect(b.intervals).toEqual([
      {
        start: iso('2023-08-29T07:00:00Z'),
        end: iso('2023-08-29T07:01:00Z'),
        channel: 'consumption',
        value: 0,
        value_canonical: 0,
        currency: null,
        estimated: false,
        from_readings: false,
        metadata: {},
      },
    ]);
  });

  it('maps export to redelivery, uses a valid localTimezone and rejects one bad reading with its index', () => {
    const payload = {
      meterId: 'mtr_1234',
      localTimezone: 'America/Los_Angeles',
      readings: [
        {
          startAt: '2024-03-10T08:00:00.000+00:00',
          endAt: '2024-03-10T08:15:00.000+00:00',
          direction: 'import',
          kwh: 1.25,
          kw: 5,
        },
        {
          startAt: '2024-03-10T08:00:00.000+00:00',
          endAt: '2024-03-10T08:15:00.000+00:00',
          direction: 'export',
          kwh: 0.5,
          kw: 2,
        },
        {
          startAt: '2024-03-10T08:15:00.000+00:00',
          endAt: '2024-03-10T08:30:00.000+00:00',
          direction: 'sideways',
          kwh: 1,
        },
        { startAt: '10/03/2024 08:30', endAt: '2024-03-10T08:45:00.000+00:00', direction: 'import', kwh: 1 },
        {
          startAt: '2024-03-10T08:45:00.000+00:00',
          endAt: '2024-03-10T09:00:00.000+00:00',
          direction: 'import',
          kwh: null,
        },
      ],
    };
    const r = normalise(envelope({ format: 'arcadia.intervals', payload: JSON.stringify(payload) }), {});
    expect(r.batch!.time_zone).toBe('America/Los_Angeles');
    expect(r.batch!.intervals.map((i) => [i.channel, i.value])).toEqual([
      ['consumption', 1.25],
      ['redelivery', 0.5],
    ]);
    expect(r.rejects.map((x) => [x.code, x.recordIndex])).toEqual([
      ['NORM_PAYLOAD_SCHEMA', 2],
      ['NORM_TIMESTAMP_INVALID', 3],
      ['NORM_PAYLOAD_SCHEMA', 4],
    ]);
    expect(r.rejects[0]!.message).toContain('readings.2.direction');
    expect(JSON.parse(r.rejects[0]!.detail!)).toEqual(payload.readings[2]);
  });

  it('rejects a response for another meter and one without readings', () => {
    const other = normalise(
      envelope({ format: 'arcadia.intervals', payload: JSON.stringify({ meterId: 'mtr_9', readings: [] }) }),
      {},
    );
    expect(other.rejects[0]).toMatchObject({ code: 'NORM_PAYLOAD_SCHEMA', recordIndex: null });
    const missing = normalise(
      envelope({ format: 'arcadia.intervals', payload: JSON.stringify({ meterId: 'mtr_1234' }) }),
      {},
    );
    expect(missing.rejects[0]!.message).toContain('readings');
    expect(missing.batch).toBeNull();
  });
});

describe('arcadia.normalizedIntervals', () => {
  it('normalises the document example: element i covers startAt + i × 15 min', () => {
    const r = normalise(
      envelope({
        format: 'arcadia.normalizedIntervals',
        payload: fixture('arcadia/normalized-intervals.json'),
      }),
      {},
    );
    expect(r.rejects).toEqual([]);
    const t0 = iso('2023-08-29T07:00:00Z');
    const q = 15 * 60_000;
    expect(r.batch!.time_zone).toBe('UTC');
    expect(r.batch!.intervals.map((i) => [i.start - t0, i.end - t0, i.channel, i.value])).toEqual([
      [0, q, 'consumption', 2],
      [0, q, 'redelivery', 1],
      [q, 2 * q, 'consumption', 2],
      [q, 2 * q, 'redelivery', 1],
    ]);
  });

  it('continues the index across reading objects, skips nulls, honours the duration', () => {
    const payload = {
      meterId: 'mtr_1234',
      intervalDurationMinutes: 30,
      startAt: '2024-01-01T00:00:00Z',
      readings: [{ importKwh: [1, null] }, { importKwh: [3], exportKwh: [0.5] }],
    };
    const r = normalise(
      envelope({ format: 'arcadia.normalizedIntervals', payload: JSON.stringify(payload) }),
      {},
    );
    const t0 = iso('2024-01-01T00:00:00Z');
    expect(
      r.batch!.intervals.map((i) => [
        (i.start - t0) / 60_000,
        (i.end - i.start) / 60_000,
        i.channel,
        i.value,
      ]),
    ).toEqual([
      [0, 30, 'consumption', 1],
      [60, 30, 'consumption', 3],
      [60, 30, 'redelivery', 0.5],
    ]);
  });

  it('rejects a non-numeric element with the path', () => {
    const payload = {
      meterId: 'mtr_1234',
      startAt: '2024-01-01T00:00:00Z',
      readings: [{ importKwh: [1, 'x'] }],
    };
    const r = normalise(
      envelope({ format: 'arcadia.normalizedIntervals', payload: JSON.stringify(payload) }),
      {},
    );
    expect(r.rejects).toHaveLength(1);
    expect(r.rejects[0]!.message).toContain('readings.0.importKwh.1');
  });
});
