import { describe, expect, it } from 'vitest';
import {
  convertUnit,
  foldUnit,
  lookupUnit,
  registerUnknownUnit,
  resolveUnit,
  toCanonical,
  unitsCompatible,
  unknownUnits,
} from '../../../schemas/units.js';

describe('unit registry', () => {
  it.each([
    ['kWh', 'kWh'],
    ['kwh', 'kWh'],
    ['KWH', 'kWh'],
    [' kWh ', 'kWh'],
    ['MWh', 'MWh'],
    ['GWh', 'GWh'],
    ['Wh', 'Wh'],
    ['MJ', 'MJ'],
    ['GJ', 'GJ'],
    ['therm', 'therm'],
    ['therms', 'therm'],
    ['m3', 'm3'],
    ['m³', 'm3'],
    ['M3', 'm3'],
    ['m^3', 'm3'],
    ['cubic meter', 'm3'],
    ['cubic metres', 'm3'],
    ['l', 'l'],
    ['L', 'l'],
    ['litre', 'l'],
    ['liters', 'l'],
    ['litres', 'l'],
    ['gal', 'US gal'],
    ['US gallon', 'US gal'],
    ['ft3', 'ft3'],
    ['ccf', 'ccf'],
    ['kg', 'kg'],
    ['t', 't'],
    ['tonne', 't'],
    ['lb', 'lb'],
    ['lbs', 'lb'],
  ])('knows %s as %s', (text, symbol) => {
    expect(lookupUnit(text)?.symbol).toBe(symbol);
  });

  it('folds case, spaces, superscripts and carets', () => {
    expect(foldUnit('  Cubic   Metre ')).toBe('cubic metre');
    expect(foldUnit('m³')).toBe('m3');
  });

  it('converts to the canonical unit of each dimension', () => {
    expect(toCanonical(2, 'MWh')).toBe(2000);
    expect(toCanonical(1500, 'Wh')).toBeCloseTo(1.5, 12);
    expect(toCanonical(3.6, 'GJ')).toBeCloseTo(1000, 9);
    expect(toCanonical(1, 'therm')).toBeCloseTo(29.3071, 3);
    expect(toCanonical(1, 'MJ')).toBeCloseTo(1 / 3.6, 12);
    expect(toCanonical(250, 'l')).toBeCloseTo(0.25, 12);
    expect(toCanonical(1, 'gal')).toBeCloseTo(0.003785411784, 12);
    expect(toCanonical(1, 'ccf')).toBeCloseTo(2.8316846592, 9);
    expect(toCanonical(2, 't')).toBe(2000);
    expect(toCanonical(1, 'lb')).toBeCloseTo(0.45359237, 12);
    expect(lookupUnit('m3')?.canonical).toBe('m3');
    expect(lookupUnit('lb')?.canonical).toBe('kg');
  });

  it('never converts an unknown unit, and registers it as written on first sight', () => {
    expect(lookupUnit('kVArh')).toBeUndefined();
    expect(toCanonical(5, 'kVArh')).toBeNull();
    const first = registerUnknownUnit(' kVArh ');
    expect(first).toEqual({ symbol: 'kVArh', dimension: null, factor: null, canonical: null, known: false });
    expect(registerUnknownUnit('KVARH')).toBe(first);
    expect(unknownUnits().map((u) => u.symbol)).toContain('kVArh');
    expect(resolveUnit('kwh').known).toBe(true);
    expect(resolveUnit('pallets').known).toBe(false);
  });

  it('leaves ambiguous texts unknown rather than guess', () => {
    for (const text of ['ton', 'tons', 'MBtu', 'kW', 'cf']) expect(lookupUnit(text)).toBeUndefined();
  });

  it('knows which units are compatible', () => {
    expect(unitsCompatible('kWh', 'MWh')).toBe(true);
    expect(unitsCompatible('GJ', 'therms')).toBe(true);
    expect(unitsCompatible('kWh', 'm3')).toBe(false);
    expect(unitsCompatible('l', 'gal')).toBe(true);
    expect(unitsCompatible('pallets', 'Pallets')).toBe(true);
    expect(unitsCompatible('pallets', 'kg')).toBe(false);
    expect(unitsCompatible('pallets', 'bins')).toBe(false);
  });

  it('converts between compatible units and refuses the rest', () => {
    expect(convertUnit(1.5, 'MWh', 'kWh')).toBe(1500);
    expect(convertUnit(1500, 'kWh', 'MWh')).toBeCloseTo(1.5, 12);
    expect(convertUnit(12.345, 'kWh', 'kwh')).toBe(12.345);
    expect(convertUnit(1, 'kWh', 'kg')).toBeNull();
    expect(convertUnit(3, 'pallets', 'pallets')).toBe(3);
    expect(convertUnit(3, 'pallets', 'kg')).toBeNull();
  });
});
