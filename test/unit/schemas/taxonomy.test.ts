import { describe, expect, it } from 'vitest';
import { isReject, meterTypeOrReject } from '../../../processors/normalise/common.js';
import type { ConnectionConfig } from '../../../schemas/connection.js';
import { canonicalSubtype, mapMeterType, METER_TAXONOMY } from '../../../schemas/taxonomy.js';

describe('meter-type taxonomy', () => {
  it('is exactly the seed list', () => {
    expect(METER_TAXONOMY).toEqual({
      Energy: [
        'Coal',
        'Coke',
        'Diesel',
        'District Chilled Water',
        'District Heating and Cooling',
        'District Hot Water',
        'District Steam',
        'EV Charging',
        'Fuel Oil',
        'Natural Gas',
        'Off-site Electricity',
        'On-site Renewable Electricity',
        'Propane',
        'Wood',
      ],
      Water: ['Potable', 'Reclaimed', 'Grey'],
      Waste: ['Hazardous', 'Non-hazardous'],
    });
    expect(canonicalSubtype('Water', 'grey')).toBe('Grey');
    expect(canonicalSubtype('Energy', 'grey')).toBeUndefined();
  });
});

describe('mapMeterType', () => {
  const mapping = {
    ELEC: { type: 'Energy' as const, subtype: 'Off-site Electricity' },
    'Cold Water': { type: 'Water' as const, subtype: 'potable' },
    Skip: { type: 'Waste' as const },
    Bad: { type: 'Energy' as const, subtype: 'Nuclear fusion' },
  };

  it('applies the connection mapping case-insensitively, with the taxonomy spelling', () => {
    expect(mapMeterType('elec', mapping)).toEqual({
      type: 'Energy',
      subtype: 'Off-site Electricity',
      source: 'mapping',
    });
    expect(mapMeterType('cold  water', mapping)).toEqual({
      type: 'Water',
      subtype: 'Potable',
      source: 'mapping',
    });
    expect(mapMeterType('SKIP', mapping)).toEqual({ type: 'Waste', subtype: null, source: 'mapping' });
  });

  it('does not accept a mapped sub-category outside the taxonomy', () => {
    expect(mapMeterType('Bad', mapping, { unit: 'kWh' })).toBeUndefined();
  });

  it('prefers the connection mapping over provider defaults', () => {
    const defaults = { electric: { type: 'Energy' as const, subtype: 'Off-site Electricity' } };
    const own = { Electric: { type: 'Energy' as const, subtype: 'On-site Renewable Electricity' } };
    expect(mapMeterType('electric', own, { defaults })?.subtype).toBe('On-site Renewable Electricity');
    expect(mapMeterType('electric', {}, { defaults })).toEqual({
      type: 'Energy',
      subtype: 'Off-site Electricity',
      source: 'default',
    });
  });

  it.each([
    ['Electricity', 'kWh', 'Energy', 'Off-site Electricity'],
    ['Heating', 'MWh', 'Energy', 'District Heating and Cooling'],
    ['District heating', 'MWh', 'Energy', 'District Heating and Cooling'],
    ['District cooling', 'MWh', 'Energy', 'District Heating and Cooling'],
    ['district hot water', 'GJ', 'Energy', 'District Hot Water'],
    ['Natural gas', 'm³', 'Energy', 'Natural Gas'],
    ['Water', 'm3', 'Water', null],
    ['Potable water', 'l', 'Water', 'Potable'],
    ['grey', 'm3', 'Water', 'Grey'],
    ['Solar PV', 'kWh', 'Energy', 'On-site Renewable Electricity'],
    ['Hazardous waste', 't', 'Waste', 'Hazardous'],
    ['non-hazardous waste', 'kg', 'Waste', 'Non-hazardous'],
    ['EV charging', 'kWh', 'Energy', 'EV Charging'],
    ['Wood', 't', 'Energy', 'Wood'],
  ])('infers %s (%s) as %s / %s', (name, unit, type, subtype) => {
    expect(mapMeterType(name, {}, { unit })).toEqual({ type, subtype, source: 'inferred-name' });
  });

  it('infers from the quantity name when there is no classification', () => {
    expect(mapMeterType(null, {}, { unit: 'm3', quantityName: 'Water' })).toEqual({
      type: 'Water',
      subtype: null,
      source: 'inferred-name',
    });
  });

  it('infers Energy from an energy unit alone, nothing from volume or mass alone', () => {
    expect(mapMeterType('string', {}, { unit: 'kWh' })).toEqual({
      type: 'Energy',
      subtype: null,
      source: 'inferred-unit',
    });
    expect(mapMeterType(undefined, {}, { unit: 'm3' })).toBeUndefined();
    expect(mapMeterType('', {}, { unit: 'kg' })).toBeUndefined();
  });

  it('returns undefined when the name and the unit disagree (no guess)', () => {
    expect(mapMeterType('Water', {}, { unit: 'kWh' })).toBeUndefined();
    expect(mapMeterType('Electricity', {}, { unit: 'm3' })).toBeUndefined();
  });

  it('returns undefined when nothing decides', () => {
    expect(mapMeterType('Type 7', {}, {})).toBeUndefined();
    expect(mapMeterType('Type 7', {}, { unit: 'pallets' })).toBeUndefined();
    expect(mapMeterType(null, undefined)).toBeUndefined();
  });

  it('matches whole words only', () => {
    // "gasket" is not gas, "powerhouse water" is water.
    expect(mapMeterType('gasket counter', {}, {})).toBeUndefined();
  });
});

describe('the advice of an unmapped meter (NORM_METER_TYPE_UNMAPPED)', () => {
  const withMapping = (meterTypes: ConnectionConfig['meterTypes']) => ({ meterTypes }) as ConnectionConfig;
  const advice = (classification: string, connection: ConnectionConfig): string => {
    const r = meterTypeOrReject(classification, connection, {}, 'M1');
    if (!isReject(r)) throw new Error('expected a reject');
    expect(r.code).toBe('NORM_METER_TYPE_UNMAPPED');
    return r.message;
  };

  it('asks to add a classification that has no meterTypes entry', () => {
    expect(advice('Gizmo', withMapping({}))).toContain("add it to the connection's meterTypes");
  });

  it('names the entry that is already there and what is wrong with it, never asks to add it (review L4)', () => {
    // Such a connection no longer loads; a connection built without the schema can still carry it.
    const msg = advice('electric', withMapping({ Electric: { type: 'Energy', subtype: 'Electricity' } }));
    expect(msg).not.toContain('add it');
    expect(msg).toContain('meterTypes entry "Electric"');
    expect(msg).toContain('"Electricity" is not a sub-category of Energy');
    expect(msg).toContain('Off-site Electricity');
  });
});
