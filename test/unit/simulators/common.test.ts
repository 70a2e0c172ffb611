import { describe, it, expect } from 'vitest';
import { mulberry32, rngFor } from '../../../simulators/common/prng.js';
import {
  formatZoned,
  localDayBounds,
  offsetMinutes,
  parseIsoInstant,
  quarterHoursInLocalDay,
  zonedTimeToUtc,
  formatLocalNoOffset,
} from '../../../simulators/common/time.js';
import { generateDay, hourlyOfDay } from '../../../simulators/common/load.js';
import type { MeterModel } from '../../../simulators/common/load.js';
import { startHttpServer } from '../../../simulators/common/http.js';

const model = (over: Partial<MeterModel> = {}): MeterModel => ({
  key: 'm1',
  commodity: 'electricity',
  unit: 'kWh',
  decimals: 3,
  timeZone: 'Europe/Helsinki',
  building: 'office',
  size: 100,
  latitude: 60.2,
  longitude: 24.9,
  solarKwp: 80,
  resolutionMinutes: 15,
  gapRate: 0,
  estimateRate: 0,
  ...over,
});

describe('prng', () => {
  it('is deterministic from a seed and differs between seeds and key paths', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(mulberry32(43)()).not.toBe(xs[0]);
    expect(rngFor(1, 'meter', 1)()).toBe(rngFor(1, 'meter', 1)());
    expect(rngFor(1, 'meter', 1)()).not.toBe(rngFor(1, 'meter', 2)());
  });
});

describe('time zones', () => {
  it('has 92 / 96 / 100 quarter-hours on DST days in Helsinki and New York, 96 in UTC', () => {
    expect(quarterHoursInLocalDay('Europe/Helsinki', '2024-03-31')).toBe(92);
    expect(quarterHoursInLocalDay('Europe/Helsinki', '2024-10-27')).toBe(100);
    expect(quarterHoursInLocalDay('Europe/Helsinki', '2024-06-15')).toBe(96);
    expect(quarterHoursInLocalDay('America/New_York', '2024-03-10')).toBe(92);
    expect(quarterHoursInLocalDay('America/New_York', '2024-11-03')).toBe(100);
    expect(quarterHoursInLocalDay('UTC', '2024-03-31')).toBe(96);
  });

  it('finds local midnights and offsets', () => {
    expect(localDayBounds('Europe/Helsinki', '2024-01-01').start).toBe(Date.parse('2023-12-31T22:00:00Z'));
    expect(localDayBounds('America/New_York', '2024-07-04').start).toBe(Date.parse('2024-07-04T04:00:00Z'));
    expect(offsetMinutes('Europe/Helsinki', Date.parse('2024-07-01T00:00:00Z'))).toBe(180);
    expect(offsetMinutes('America/New_York', Date.parse('2024-01-01T12:00:00Z'))).toBe(-300);
    expect(formatZoned(Date.parse('2024-03-15T06:00:00Z'), 'Europe/Helsinki')).toBe(
      '2024-03-15T08:00:00+02:00',
    );
    expect(formatZoned(Date.parse('2024-03-15T06:00:00Z'), 'UTC', { zulu: true })).toBe(
      '2024-03-15T06:00:00Z',
    );
  });

  it('handles the skipped and the repeated hour', () => {
    // 03:30 does not exist in Helsinki on 2024-03-31: mapped forward past the gap.
    expect(zonedTimeToUtc('Europe/Helsinki', 2024, 3, 31, 3, 30)).toBe(Date.parse('2024-03-31T01:30:00Z'));
    // 03:30 happens twice on 2024-10-27.
    expect(zonedTimeToUtc('Europe/Helsinki', 2024, 10, 27, 3, 30)).toBe(Date.parse('2024-10-27T00:30:00Z'));
    expect(zonedTimeToUtc('Europe/Helsinki', 2024, 10, 27, 3, 30, 0, true)).toBe(
      Date.parse('2024-10-27T01:30:00Z'),
    );
    expect(formatLocalNoOffset(Date.parse('2024-10-27T00:30:00Z'), 'Europe/Helsinki')).toBe(
      '2024-10-27T03:30:00',
    );
    expect(formatLocalNoOffset(Date.parse('2024-10-27T01:30:00Z'), 'Europe/Helsinki')).toBe(
      '2024-10-27T03:30:00',
    );
  });

  it('parses instants with offsets and rejects ones without', () => {
    expect(parseIsoInstant('2017-01-01T00:00:00+02:00')?.ms).toBe(Date.parse('2016-12-31T22:00:00Z'));
    expect(parseIsoInstant('2017-01-01T00:00:00Z')?.zulu).toBe(true);
    expect(parseIsoInstant('2017-01-01T00:00:00')).toBeNull();
    expect(parseIsoInstant('2017-02-30T00:00:00Z')).toBeNull();
  });
});

describe('load shapes', () => {
  it('generates the same day twice and DST days with 92/100 values', () => {
    const a = generateDay(7, model(), '2024-03-31');
    const b = generateDay(7, model(), '2024-03-31');
    expect(a.n).toBe(92);
    expect(Array.from(a.imp)).toEqual(Array.from(b.imp));
    expect(generateDay(7, model(), '2024-10-27').n).toBe(100);
    expect(Array.from(generateDay(8, model(), '2024-03-31').imp)).not.toEqual(Array.from(a.imp));
  });

  it('has solar export in summer daytime only, more in summer than winter', () => {
    const summer = generateDay(1, model({ solarKwp: 300 }), '2024-06-20');
    const winter = generateDay(1, model({ solarKwp: 300 }), '2024-12-20');
    const sum = (x: Float64Array | null): number => (x ? x.reduce((s, v) => s + v, 0) : 0);
    expect(sum(summer.exp)).toBeGreaterThan(sum(winter.exp));
    // no export at local midnight
    expect(summer.exp?.[0]).toBe(0);
  });

  it('has a weekly cycle for offices and 60-minute meters with equal quarters', () => {
    const m = model({ solarKwp: 0 });
    const total = (d: string): number => generateDay(1, m, d).imp.reduce((s, v) => s + v, 0);
    expect(total('2024-02-07')).toBeGreaterThan(total('2024-02-10') * 1.3); // Wed vs Sat
    const h = generateDay(1, model({ resolutionMinutes: 60, solarKwp: 0 }), '2024-02-07');
    expect(h.imp[0]).toBe(h.imp[3]);
    const hours = hourlyOfDay(h, 3);
    expect(hours).toHaveLength(24);
  });
});

describe('http helper', () => {
  it('binds 127.0.0.1 on a random port and closes', async () => {
    const s = await startHttpServer((_req, res) => res.end('ok'));
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await (await fetch(s.url)).text()).toBe('ok');
    await s.close();
    await expect(fetch(s.url)).rejects.toThrow();
  });
});
