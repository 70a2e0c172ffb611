import { describe, expect, it } from 'vitest';
import { AggregateState, type ChangelogEntry } from '../../../../processors/aggregate/core/index.js';
import { calendarFor, dateToDayNo } from '../../../../processors/aggregate/core/zone.js';
import type { UsageAggregate, UsageInterval } from '../../../../schemas/records.js';
import { batch, interval, iso } from '../helpers.js';

const Q = 15 * 60_000;
const H = 3_600_000;
const NOW = 1_800_000_000_000;

/** Quarter-hours covering a whole local day. */
function quarterHours(
  zone: string,
  date: string,
  value = 1,
  over: Partial<UsageInterval> = {},
): UsageInterval[] {
  const cal = calendarFor(zone);
  const d = dateToDayNo(date);
  const out: UsageInterval[] = [];
  for (let t = cal.dayStart(d); t < cal.dayStart(d + 1); t += Q) out.push(interval(t, t + Q, value, over));
  return out;
}

const day = (aggs: UsageAggregate[], period: string, channel = 'consumption') =>
  aggs.find((a) => a.granularity === 'day' && a.period === period && a.channel === channel);
const month = (aggs: UsageAggregate[], period: string, channel = 'consumption') =>
  aggs.find((a) => a.granularity === 'month' && a.period === period && a.channel === channel);

describe('AggregateState: local days and DST', () => {
  it.each([
    ['Europe/Helsinki', '2024-03-31', 92, iso('2024-03-30T22:00:00Z')],
    ['Europe/Helsinki', '2024-10-27', 100, iso('2024-10-26T21:00:00Z')],
    ['America/New_York', '2024-03-10', 92, iso('2024-03-10T05:00:00Z')],
    ['America/New_York', '2024-11-03', 100, iso('2024-11-03T04:00:00Z')],
    ['UTC', '2024-03-31', 96, iso('2024-03-31T00:00:00Z')],
    ['Europe/Helsinki', '2024-06-01', 96, iso('2024-05-31T21:00:00Z')],
  ])('%s %s has %i quarter-hours', (zone, date, expected, start) => {
    const s = new AggregateState();
    const { aggregates, rejects } = s.apply(batch(quarterHours(zone, date, 0.25), { time_zone: zone }), NOW);
    expect(rejects).toEqual([]);
    const d = day(aggregates, date)!;
    expect(d).toMatchObject({
      connection_id: 'c1',
      meter_external_id: 'm1',
      granularity: 'day',
      period: date,
      period_start: start,
      time_zone: zone,
      channel: 'consumption',
      value: expected * 0.25,
      unit: 'kWh',
      interval_count: expected,
      expected_count: expected,
      completeness: 1,
      estimated_count: 0,
      prorated: false,
      version: NOW,
      updated_at: NOW,
    });
    const m = month(aggregates, date.slice(0, 7))!;
    expect(m.interval_count).toBe(expected);
    expect(m.value).toBe(expected * 0.25);
  });

  it('knows the month has its DST day: March 2024 in Helsinki expects 31 × 96 − 4 quarter-hours', () => {
    const s = new AggregateState();
    const { aggregates } = s.apply(batch(quarterHours('Europe/Helsinki', '2024-03-15', 1)), NOW);
    expect(month(aggregates, '2024-03')).toMatchObject({
      expected_count: 31 * 96 - 4,
      interval_count: 96,
      period_start: iso('2024-02-29T22:00:00Z'),
    });
    expect(month(aggregates, '2024-03')!.completeness).toBeCloseTo(96 / (31 * 96 - 4), 12);
  });

  it('counts estimated intervals and partial days', () => {
    const s = new AggregateState();
    const ivs = quarterHours('UTC', '2024-05-01', 2).slice(0, 48);
    ivs[3]!.estimated = true;
    ivs[4]!.estimated = true;
    const d = day(s.apply(batch(ivs, { time_zone: 'UTC' }), NOW).aggregates, '2024-05-01')!;
    expect(d).toMatchObject({
      value: 96,
      interval_count: 48,
      expected_count: 96,
      completeness: 0.5,
      estimated_count: 2,
    });
  });

  it('assigns an interval to the local day of its start (late evening UTC is the next day in Helsinki)', () => {
    const s = new AggregateState();
    const t = iso('2024-05-01T22:00:00Z'); // 01:00 on 2 May in Helsinki
    const { aggregates } = s.apply(batch([interval(t, t + Q, 3)]), NOW);
    expect(aggregates.filter((a) => a.granularity === 'day').map((a) => a.period)).toEqual(['2024-05-02']);
  });
});

describe('AggregateState: slots replace, never add twice', () => {
  it('does not re-emit a replayed duplicate', () => {
    const s = new AggregateState();
    const ivs = quarterHours('Europe/Helsinki', '2024-05-01', 1.5);
    expect(s.apply(batch(ivs), NOW).aggregates).toHaveLength(2);
    expect(s.apply(batch(ivs), NOW + 1000).aggregates).toEqual([]);
    // Duplicates inside one batch count once.
    const t = new AggregateState();
    const d = day(t.apply(batch([...ivs, ...ivs]), NOW).aggregates, '2024-05-01')!;
    expect(d).toMatchObject({ value: 144, interval_count: 96 });
  });

  it('replaces a corrected interval and re-emits day and month with higher versions', () => {
    const s = new AggregateState();
    const ivs = quarterHours('Europe/Helsinki', '2024-05-01', 1);
    const first = s.apply(batch(ivs), NOW).aggregates;
    const corrected = { ...ivs[10]!, value: 5, estimated: true };
    const second = s.apply(batch([corrected]), NOW - 5000).aggregates; // clock went backwards
    expect(second).toHaveLength(2);
    const d1 = day(first, '2024-05-01')!;
    const d2 = day(second, '2024-05-01')!;
    expect(d2).toMatchObject({ value: 100, interval_count: 96, estimated_count: 1 });
    expect(d2.version).toBe(d1.version + 1);
    expect(month(second, '2024-05')!.version).toBeGreaterThan(month(first, '2024-05')!.version);
    // Correcting back restores the value, again with a new version.
    const third = s.apply(batch([ivs[10]!]), NOW + 60_000).aggregates;
    expect(day(third, '2024-05-01')).toMatchObject({ value: 96, estimated_count: 0, version: NOW + 60_000 });
  });

  it('handles out-of-order and late data: the day and month are re-emitted with a higher version', () => {
    const s = new AggregateState();
    const ivs = quarterHours('UTC', '2024-07-10', 1);
    const late = ivs.slice(0, 10);
    const early = ivs.slice(10).reverse();
    const a = s.apply(batch(early, { time_zone: 'UTC' }), NOW).aggregates;
    expect(day(a, '2024-07-10')).toMatchObject({ interval_count: 86, completeness: 86 / 96 });
    const b = s.apply(batch(late, { time_zone: 'UTC' }), NOW + 86_400_000).aggregates;
    expect(day(b, '2024-07-10')).toMatchObject({
      value: 96,
      interval_count: 96,
      completeness: 1,
      version: NOW + 86_400_000,
    });
    // A late day of an earlier month touches only that day and month.
    const c = s.apply(
      batch(quarterHours('UTC', '2024-06-30', 2), { time_zone: 'UTC' }),
      NOW + 2 * 86_400_000,
    ).aggregates;
    expect(c.map((x) => `${x.granularity}:${x.period}`)).toEqual(['day:2024-06-30', 'month:2024-06']);
  });

  it('keeps channels apart', () => {
    const s = new AggregateState();
    const t = iso('2024-05-01T10:00:00Z');
    const { aggregates } = s.apply(
      batch([
        interval(t, t + Q, 2),
        interval(t, t + Q, 0.5, { channel: 'redelivery' }),
        interval(t, t + Q, 0.3, { channel: 'cost', currency: 'EUR', value_canonical: null }),
      ]),
      NOW,
    );
    expect(day(aggregates, '2024-05-01', 'consumption')!.value).toBe(2);
    expect(day(aggregates, '2024-05-01', 'redelivery')!.value).toBe(0.5);
    expect(day(aggregates, '2024-05-01', 'cost')).toMatchObject({ value: 0.3, unit: 'EUR' });
  });

  it('sums exactly like the original doubles, also for values that are not short decimals', () => {
    const s = new AggregateState();
    const t = iso('2024-05-01T00:00:00Z');
    const values = [0.1, 0.2, 1 / 3, 12.345, 1e-9, 123456.789012, 0.30000000000000004];
    const ivs = values.map((v, k) => interval(t + k * Q, t + (k + 1) * Q, v));
    const d = day(s.apply(batch(ivs, { time_zone: 'UTC' }), NOW).aggregates, '2024-05-01')!;
    expect(d.value).toBe(values.reduce((a, b) => a + b, 0));
  });
});

describe('AggregateState: pro rata', () => {
  it('allocates an interval spanning local days by time overlap, flagged prorated', () => {
    const s = new AggregateState();
    // 18:00 on 1 May to 06:00 on 2 May, Helsinki time: 6 h on each day.
    const { aggregates } = s.apply(
      batch([interval(iso('2024-05-01T15:00:00Z'), iso('2024-05-02T03:00:00Z'), 12)]),
      NOW,
    );
    // Completeness is the share of the day covered: 6 of 24 hours.
    expect(day(aggregates, '2024-05-01')).toMatchObject({
      value: 6,
      prorated: true,
      interval_count: 1,
      expected_count: 2,
      completeness: 0.25,
    });
    expect(day(aggregates, '2024-05-02')).toMatchObject({ value: 6, prorated: true, interval_count: 1 });
    expect(month(aggregates, '2024-05')).toMatchObject({ value: 12, prorated: false, interval_count: 1 });
  });

  it('spreads a monthly bill over the days and months it covers', () => {
    const s = new AggregateState();
    // A bill from 15 Jan to 15 Feb (local): 17 days in January, 14 in February.
    const start = iso('2024-01-14T22:00:00Z');
    const end = iso('2024-02-14T22:00:00Z');
    const { aggregates } = s.apply(batch([interval(start, end, 310)]), NOW);
    const days = aggregates.filter((a) => a.granularity === 'day');
    expect(days).toHaveLength(31);
    for (const d of days)
      expect(d).toMatchObject({
        value: 10,
        prorated: true,
        interval_count: 1,
        expected_count: 1,
        completeness: 1,
      });
    expect(month(aggregates, '2024-01')).toMatchObject({
      value: 170,
      prorated: true,
      interval_count: 1,
      expected_count: 31,
    });
    expect(month(aggregates, '2024-02')).toMatchObject({
      value: 140,
      prorated: true,
      interval_count: 1,
      expected_count: 29,
    });
  });

  it('a whole local month (e.g. EnerKey monthly) is not prorated for its month', () => {
    const s = new AggregateState();
    const { aggregates } = s.apply(
      batch([interval(iso('2023-12-31T22:00:00Z'), iso('2024-01-31T22:00:00Z'), 9120.5)]),
      NOW,
    );
    expect(month(aggregates, '2024-01')).toMatchObject({
      value: 9120.5,
      prorated: false,
      interval_count: 1,
      completeness: 1,
    });
    expect(day(aggregates, '2024-01-01')!.prorated).toBe(true);
  });

  it('a corrected bill with another end replaces its slot and re-allocates', () => {
    const s = new AggregateState();
    const start = iso('2024-03-01T00:00:00Z');
    s.apply(batch([interval(start, start + 10 * 86_400_000, 100)], { time_zone: 'UTC' }), NOW);
    const { aggregates } = s.apply(
      batch([interval(start, start + 5 * 86_400_000, 60)], { time_zone: 'UTC' }),
      NOW + 1,
    );
    expect(day(aggregates, '2024-03-01')).toMatchObject({ value: 12, completeness: 1 });
    expect(day(aggregates, '2024-03-08')).toMatchObject({ value: 0, interval_count: 0, completeness: 0 });
    expect(month(aggregates, '2024-03')).toMatchObject({
      value: 60,
      interval_count: 1,
      completeness: 5 / 31,
    });
  });

  it('daily values on a DST day (23 h) are whole days, not prorated', () => {
    const s = new AggregateState();
    const cal = calendarFor('Europe/Helsinki');
    const ivs = ['2024-03-30', '2024-03-31', '2024-04-01'].map((date) => {
      const d = dateToDayNo(date);
      return interval(cal.dayStart(d), cal.dayStart(d + 1), 24);
    });
    const { aggregates } = s.apply(batch(ivs), NOW);
    for (const date of ['2024-03-30', '2024-03-31', '2024-04-01']) {
      expect(day(aggregates, date)).toMatchObject({
        value: 24,
        prorated: false,
        interval_count: 1,
        expected_count: 1,
        completeness: 1,
      });
    }
  });
});

describe('AggregateState: resolution', () => {
  it('re-emits days when a finer resolution appears (expected count changes)', () => {
    const s = new AggregateState();
    const t = iso('2024-05-01T00:00:00Z');
    const hourly = Array.from({ length: 24 }, (_, k) => interval(t + k * H, t + (k + 1) * H, 4));
    const a = s.apply(batch(hourly, { time_zone: 'UTC' }), NOW).aggregates;
    expect(day(a, '2024-05-01')).toMatchObject({ expected_count: 24, completeness: 1 });
    const t2 = iso('2024-05-02T00:00:00Z');
    const b = s.apply(batch([interval(t2, t2 + Q, 1)], { time_zone: 'UTC' }), NOW + 1).aggregates;
    // The hourly day is still fully covered (completeness is coverage), but expects 96 slots now.
    expect(day(b, '2024-05-01')).toMatchObject({
      value: 96,
      interval_count: 24,
      expected_count: 96,
      completeness: 1,
    });
    expect(day(b, '2024-05-02')).toMatchObject({ expected_count: 96, interval_count: 1 });
  });
});

describe('AggregateState: zone change', () => {
  it('rebuilds local days in the new zone with versions above all old ones', () => {
    const s = new AggregateState();
    const ivs = quarterHours('UTC', '2024-05-01', 1);
    const a = s.apply(batch(ivs, { time_zone: 'UTC' }), NOW).aggregates;
    expect(day(a, '2024-05-01')!.value).toBe(96);
    s.snapshotDirty();
    const b = s.apply(batch([], { time_zone: 'Europe/Helsinki' }), NOW - 10).aggregates;
    expect(b).toEqual([]); // an empty batch does not touch the channel
    const c = s.apply(batch([ivs[0]!], { time_zone: 'Europe/Helsinki' }), NOW - 10).aggregates;
    // 00:00-03:00 UTC is the end of 1 May in Helsinki... of 2 May? 00:00 UTC = 03:00 on 1 May.
    expect(day(c, '2024-05-01')).toMatchObject({ value: 84, time_zone: 'Europe/Helsinki' });
    expect(day(c, '2024-05-02')).toMatchObject({ value: 12 });
    for (const x of c) expect(x.version).toBeGreaterThan(NOW);
    const entries = s.snapshotDirty();
    expect(entries.every((e) => e.key.startsWith('c1/m1|'))).toBe(true);
  });
});

/** What ClickHouse shows: the highest version per (meter, granularity, channel, period). */
function latest(view: Map<string, UsageAggregate>, aggs: UsageAggregate[]): Map<string, UsageAggregate> {
  for (const a of aggs) {
    const k = `${a.granularity}|${a.channel}|${a.period}`;
    const old = view.get(k);
    if (!old || a.version > old.version) view.set(k, a);
  }
  return view;
}
const total = (view: Map<string, UsageAggregate>, granularity: 'day' | 'month') =>
  [...view.values()].filter((a) => a.granularity === granularity).reduce((s, a) => s + a.value, 0);

function restoredFrom(log: ChangelogEntry[]): AggregateState {
  const s = new AggregateState();
  for (const e of log) s.restore(e);
  return s;
}

describe('AggregateState: restore and re-delivery never count an interval twice', () => {
  /** Quarter-hours of [from, to) with distinct short-decimal values. */
  function span(from: number, to: number): UsageInterval[] {
    const out: UsageInterval[] = [];
    for (let t = from; t < to; t += Q) out.push(interval(t, t + Q, ((t / Q) % 97) / 100 + 0.01));
    return out;
  }
  const sum = (ivs: UsageInterval[]) => ivs.reduce((s, iv) => s + iv.value, 0);

  it.each([
    ['America/New_York', '2024-03-10', 92],
    ['Europe/Helsinki', '2024-03-31', 92],
  ])('a %s DST day round-trips the changelog; re-delivery after restore is a no-op', (zone, date, n) => {
    const live = new AggregateState();
    const ivs = quarterHours(zone, date, 0.25);
    const first = live.apply(batch(ivs, { time_zone: zone }), NOW).aggregates;
    expect(day(first, date)).toMatchObject({ value: n * 0.25, interval_count: n, expected_count: n });
    const restored = restoredFrom(live.snapshotDirty());
    expect(restored.apply(batch(ivs, { time_zone: zone }), NOW + 1).aggregates).toEqual([]);
    // A correction after the restore: day and month move together.
    const fixed = restored.apply(
      batch([{ ...ivs[40]!, value: 1.25 }], { time_zone: zone }),
      NOW + 2,
    ).aggregates;
    expect(day(fixed, date)).toMatchObject({ value: n * 0.25 + 1, interval_count: n });
    expect(month(fixed, date.slice(0, 7))).toMatchObject({ value: n * 0.25 + 1, interval_count: n });
  });

  it('chunks cut at the connection zone midnight, restarts between chunks and replays of every chunk', () => {
    // A New York meter of a Helsinki connection: chunks end at Helsinki midnights, mid-day in
    // New York, across New York's DST change (10 March).
    const hel = calendarFor('Europe/Helsinki');
    const cuts = ['2024-03-01', '2024-03-04', '2024-03-09', '2024-03-11', '2024-03-20', '2024-04-01'].map(
      (d) => hel.dayStart(dateToDayNo(d)),
    );
    const chunks = cuts.slice(1).map((to, k) => span(cuts[k]!, to));
    const zone = 'America/New_York';
    const view = new Map<string, UsageAggregate>();
    const log: ChangelogEntry[] = [];
    let s = new AggregateState();
    let now = NOW;
    for (const [k, chunk] of chunks.entries()) {
      latest(view, s.apply(batch(chunk, { time_zone: zone }), now++).aggregates);
      log.push(...s.snapshotDirty());
      // Restart: state from the changelog, then the previous and the current chunk again.
      s = restoredFrom(log);
      for (const again of chunks.slice(Math.max(0, k - 1), k + 1))
        expect(s.apply(batch(again, { time_zone: zone }), now++).aggregates).toEqual([]);
      log.push(...s.snapshotDirty());
    }
    const truth = sum(chunks.flat());
    expect(total(view, 'day')).toBeCloseTo(truth, 9);
    expect(total(view, 'month')).toBeCloseTo(truth, 9);
    expect(view.get('day|consumption|2024-03-10')).toMatchObject({ interval_count: 92, expected_count: 92 });
  });

  it('an hourly grid with quarter-hours in the irregular slots survives restore and replays', () => {
    const zone = 'UTC';
    const live = new AggregateState();
    const log: ChangelogEntry[] = [];
    // An hourly interval first makes the grid hourly; the quarter-hours then go to the irregular
    // slots, except the one sharing the hour's start, which replaces it.
    const hour = interval(iso('2024-03-05T10:00:00Z'), iso('2024-03-05T11:00:00Z'), 4);
    const quarters = span(iso('2024-03-05T00:00:00Z'), iso('2024-03-06T00:00:00Z'));
    const view = new Map<string, UsageAggregate>();
    latest(view, live.apply(batch([hour], { time_zone: zone }), NOW).aggregates);
    latest(view, live.apply(batch(quarters, { time_zone: zone }), NOW + 1).aggregates);
    log.push(...live.snapshotDirty());
    expect(view.get('day|consumption|2024-03-05')!.value).toBeCloseTo(sum(quarters), 9);
    const restored = restoredFrom(log);
    expect(restored.apply(batch(quarters, { time_zone: zone }), NOW + 2).aggregates).toEqual([]);
    latest(view, restored.apply(batch([hour], { time_zone: zone }), NOW + 3).aggregates);
    latest(view, restored.apply(batch(quarters, { time_zone: zone }), NOW + 4).aggregates);
    expect(view.get('day|consumption|2024-03-05')!.value).toBeCloseTo(sum(quarters), 9);
    expect(view.get('month|consumption|2024-03')!.value).toBeCloseTo(sum(quarters), 9);
  });
});

describe('AggregateState: zone change leaves no stale periods', () => {
  it('zeroes the days and months of the old zone that hold no data in the new one', () => {
    const s = new AggregateState();
    const view = new Map<string, UsageAggregate>();
    const log: ChangelogEntry[] = [];
    // One UTC day of quarter-hours: in New York 20 fall on 29 February, 76 on 1 March.
    const ivs = quarterHours('UTC', '2024-03-01', 1);
    latest(view, s.apply(batch(ivs, { time_zone: 'America/New_York' }), NOW).aggregates);
    log.push(...s.snapshotDirty());
    expect(view.get('day|consumption|2024-02-29')!.value).toBe(20);
    expect(view.get('month|consumption|2024-02')!.value).toBe(20);

    // The meter turns out to be in Helsinki: 88 on 1 March, 8 on 2 March, nothing in February.
    latest(view, s.apply(batch(ivs, { time_zone: 'Europe/Helsinki' }), NOW + 1).aggregates);
    log.push(...s.snapshotDirty());
    expect(view.get('day|consumption|2024-03-01')).toMatchObject({ value: 88, time_zone: 'Europe/Helsinki' });
    expect(view.get('day|consumption|2024-03-02')).toMatchObject({ value: 8 });
    expect(view.get('day|consumption|2024-02-29')).toMatchObject({
      value: 0,
      interval_count: 0,
      completeness: 0,
      time_zone: 'Europe/Helsinki',
    });
    expect(view.get('month|consumption|2024-02')).toMatchObject({ value: 0, interval_count: 0 });
    expect(total(view, 'day')).toBe(96);
    expect(total(view, 'month')).toBe(96);

    // The changelog keeps the zeroed periods' versions: a restored state replays as a no-op and
    // keeps versions increasing.
    const restored = restoredFrom(log);
    expect(restored.apply(batch(ivs, { time_zone: 'Europe/Helsinki' }), NOW + 2).aggregates).toEqual([]);
    const late = restored.apply(
      batch([interval(iso('2024-02-29T12:00:00Z'), iso('2024-02-29T12:15:00Z'), 3)], {
        time_zone: 'Europe/Helsinki',
      }),
      NOW - 1000,
    ).aggregates;
    const zeroed = view.get('day|consumption|2024-02-29')!.version;
    latest(view, late);
    expect(day(late, '2024-02-29')).toMatchObject({ value: 3, version: zeroed + 1 });
    expect(total(view, 'day')).toBe(99);
    expect(total(view, 'month')).toBe(99);
  });
});

describe('AggregateState: rejects', () => {
  it('refuses what validate should have removed, one reject per interval', () => {
    const s = new AggregateState();
    const t = iso('2024-05-01T00:00:00Z');
    const { aggregates, rejects } = s.apply(
      batch([
        interval(t, t, 1),
        interval(t, t + Q, Number.NaN),
        interval(t, t + Q, 1, { channel: 'cost', currency: null }),
        interval(t, t + Q, 1),
      ]),
      NOW,
    );
    expect(rejects.map((r) => [r.code, r.recordIndex])).toEqual([
      ['VAL_END_NOT_AFTER_START', 0],
      ['VAL_NOT_FINITE', 1],
      ['VAL_CURRENCY_MISSING', 2],
    ]);
    expect(aggregates).toHaveLength(2);
    expect(s.apply(batch([interval(t, t + Q, 1)], { time_zone: 'Nope/Zone' }), NOW).rejects[0]!.code).toBe(
      'VAL_INVALID_TIME_ZONE',
    );
  });

  it('converts a compatible unit change and refuses an incompatible one', () => {
    const s = new AggregateState();
    const t = iso('2024-05-01T00:00:00Z');
    s.apply(batch([interval(t, t + Q, 1)], { time_zone: 'UTC' }), NOW);
    const ok = s.apply(
      batch([interval(t + Q, t + 2 * Q, 0.002)], { time_zone: 'UTC', unit: 'MWh' }),
      NOW + 1,
    );
    expect(day(ok.aggregates, '2024-05-01')).toMatchObject({ value: 3, unit: 'kWh' });
    const bad = s.apply(
      batch([interval(t + 2 * Q, t + 3 * Q, 1)], { time_zone: 'UTC', unit: 'm3' }),
      NOW + 2,
    );
    expect(bad.rejects[0]).toMatchObject({ code: 'VAL_UNIT_CONFLICT', recordIndex: 0 });
  });
});

describe('AggregateState: changelog', () => {
  function feed(s: AggregateState, log: ChangelogEntry[]): UsageAggregate[] {
    const out: UsageAggregate[] = [];
    const zone = 'Europe/Helsinki';
    const days = ['2024-03-30', '2024-03-31', '2024-04-01', '2024-10-27'];
    days.forEach((date, k) => {
      const ivs = quarterHours(zone, date, 0.1 * (k + 1));
      ivs[5]!.estimated = true;
      out.push(...s.apply(batch(ivs), NOW + k).aggregates);
      log.push(...s.snapshotDirty());
    });
    // A second meter, a bill across months, a redelivery channel, a correction.
    out.push(
      ...s.apply(
        batch([interval(iso('2024-03-20T00:00:00Z'), iso('2024-04-10T00:00:00Z'), 210)], {
          meter_external_id: 'm|2',
        }),
        NOW + 10,
      ).aggregates,
    );
    out.push(
      ...s.apply(batch(quarterHours(zone, '2024-04-01', 0.05, { channel: 'redelivery' })), NOW + 11)
        .aggregates,
    );
    out.push(
      ...s.apply(batch([interval(iso('2024-03-31T10:00:00Z'), iso('2024-03-31T10:15:00Z'), 7)]), NOW + 12)
        .aggregates,
    );
    log.push(...s.snapshotDirty());
    return out;
  }

  it('keys entries per meter-channel-local-day and month, prefixed by connection/meter|', () => {
    const s = new AggregateState();
    const log: ChangelogEntry[] = [];
    feed(s, log);
    expect(log.map((e) => e.key)).toContain('c1/m1|consumption|D|2024-03-31');
    expect(log.map((e) => e.key)).toContain('c1/m1|consumption|M|2024-03');
    expect(log.map((e) => e.key)).toContain('c1/m|2|consumption|D|2024-03-20');
    for (const e of log) expect(e.key.startsWith('c1/m1|') || e.key.startsWith('c1/m|2|')).toBe(true);
    expect(s.snapshotDirty()).toEqual([]);
    // A quarter-hour day entry is compact.
    const dayEntry = log.find((e) => e.key === 'c1/m1|consumption|D|2024-10-27')!;
    expect(dayEntry.value!.length).toBeLessThan(100 * 12 + 200);
  });

  it('restores into a fresh state that behaves identically', () => {
    const live = new AggregateState();
    const log: ChangelogEntry[] = [];
    feed(live, log);

    const restored = new AggregateState();
    for (const e of log) restored.restore(e);

    // Replays are no-ops in both.
    const replay = batch(quarterHours('Europe/Helsinki', '2024-03-31', 0.2));
    replay.intervals[5]!.estimated = true;
    const k = replay.intervals.findIndex((i) => i.start === iso('2024-03-31T10:00:00Z'));
    replay.intervals[k] = interval(iso('2024-03-31T10:00:00Z'), iso('2024-03-31T10:15:00Z'), 7);
    expect(live.apply(replay, NOW + 100).aggregates).toEqual([]);
    expect(restored.apply(replay, NOW + 100).aggregates).toEqual([]);

    // Further changes produce identical aggregates (values, counts, versions).
    const more = [
      batch(quarterHours('Europe/Helsinki', '2024-03-31', 0.3)),
      batch([interval(iso('2024-04-05T00:00:00Z'), iso('2024-04-12T00:00:00Z'), 70)], {
        meter_external_id: 'm|2',
      }),
      batch(quarterHours('Europe/Helsinki', '2024-04-01', 0.06, { channel: 'redelivery' })),
      batch(quarterHours('Europe/Helsinki', '2024-10-28', 1)),
    ];
    for (const [k, b] of more.entries()) {
      const a = live.apply(b, NOW + 200 + k).aggregates;
      const r = restored.apply(b, NOW + 200 + k).aggregates;
      expect(r).toEqual(a);
      expect(a.length).toBeGreaterThan(0);
    }
    // And their changelogs agree byte for byte.
    const liveLog = live.snapshotDirty();
    const restoredLog = restored.snapshotDirty();
    expect(restoredLog.map((e) => [e.key, e.value?.toString('hex')])).toEqual(
      liveLog.map((e) => [e.key, e.value?.toString('hex')]),
    );
  });

  it('keeps versions increasing across a restart even when the clock is behind', () => {
    const live = new AggregateState();
    const log: ChangelogEntry[] = [];
    const ivs = quarterHours('UTC', '2024-05-01', 1);
    const first = live.apply(batch(ivs, { time_zone: 'UTC' }), NOW).aggregates;
    log.push(...live.snapshotDirty());
    const restored = new AggregateState();
    for (const e of log) restored.restore(e);
    const next = restored.apply(
      batch([{ ...ivs[0]!, value: 2 }], { time_zone: 'UTC' }),
      NOW - 60_000,
    ).aggregates;
    expect(day(next, '2024-05-01')!.version).toBe(day(first, '2024-05-01')!.version + 1);
    expect(month(next, '2024-05')!.version).toBe(month(first, '2024-05')!.version + 1);
  });

  it('a tombstone removes the day from the state', () => {
    const s = new AggregateState();
    const ivs = quarterHours('UTC', '2024-05-01', 1);
    s.apply(batch(ivs, { time_zone: 'UTC' }), NOW);
    const log = s.snapshotDirty();
    const restored = new AggregateState();
    for (const e of log) restored.restore(e);
    restored.restore({ key: 'c1/m1|consumption|D|2024-05-01', value: null });
    // The data is gone: re-sending it emits the day again from scratch.
    const again = restored.apply(batch(ivs, { time_zone: 'UTC' }), NOW + 1).aggregates;
    expect(day(again, '2024-05-01')).toMatchObject({ value: 96, version: NOW + 1 });
  });
});

describe('AggregateState: retention', () => {
  const utc = { time_zone: 'UTC' };
  const dayOf = (date: string, value = 1) => batch(quarterHours('UTC', date, value), utc);

  it('evicts whole months behind the latest data, deletes their changelog keys and refuses older data', () => {
    const s = new AggregateState({ retentionMonths: 2 });
    for (const date of ['2024-01-10', '2024-02-10', '2024-03-10']) s.apply(dayOf(date), NOW);
    const before = s.snapshotDirty();
    expect(before.every((e) => e.value !== null)).toBe(true);
    s.apply(dayOf('2024-04-10'), NOW + 1);
    const log = s.snapshotDirty();
    expect(log.filter((e) => e.value === null).map((e) => e.key)).toEqual([
      'c1/m1|consumption|D|2024-01-10',
      'c1/m1|consumption|M|2024-01',
    ]);
    const late = s.apply(dayOf('2024-01-11'), NOW + 2);
    expect(late.aggregates).toEqual([]);
    expect(late.rejects).toHaveLength(96);
    expect(late.rejects[0]).toMatchObject({ code: 'AGG_LATE_BEYOND_RETENTION', recordIndex: 0 });
    // February is kept and still aggregates correctly.
    const feb = s.apply(dayOf('2024-02-11'), NOW + 3).aggregates;
    expect(month(feb, '2024-02')).toMatchObject({ value: 192, interval_count: 192 });
  });

  it('never cuts through an interval that reaches into the kept months', () => {
    const s = new AggregateState({ retentionMonths: 1 });
    s.apply(batch([interval(iso('2024-01-20T00:00:00Z'), iso('2024-02-10T00:00:00Z'), 21)], utc), NOW);
    s.apply(dayOf('2024-03-05'), NOW);
    // March − 1 = February is kept; the bill starts in January and runs into February: January stays.
    expect(s.snapshotDirty().filter((e) => e.value === null)).toEqual([]);
    const feb = s.apply(dayOf('2024-02-20'), NOW + 1).aggregates;
    expect(month(feb, '2024-02')).toMatchObject({ value: 9 + 96, prorated: true });
    s.apply(dayOf('2024-04-05'), NOW + 2);
    const keys = s
      .snapshotDirty()
      .filter((e) => e.value === null)
      .map((e) => e.key);
    expect(keys).toContain('c1/m1|consumption|M|2024-01');
    expect(keys).toContain('c1/m1|consumption|D|2024-01-20');
    expect(keys).toContain('c1/m1|consumption|M|2024-02');
  });

  it('restores the retention cut from the changelog', () => {
    const live = new AggregateState({ retentionMonths: 2 });
    const log: ChangelogEntry[] = [];
    for (const date of ['2024-01-10', '2024-02-10', '2024-03-10', '2024-04-10']) {
      live.apply(dayOf(date), NOW);
      log.push(...live.snapshotDirty());
    }
    const restored = new AggregateState({ retentionMonths: 2 });
    for (const e of log) restored.restore(e);
    expect(restored.apply(dayOf('2024-01-12'), NOW + 1).rejects[0]!.code).toBe('AGG_LATE_BEYOND_RETENTION');
    expect(restored.apply(dayOf('2024-02-12'), NOW + 1).aggregates).toEqual(
      live.apply(dayOf('2024-02-12'), NOW + 1).aggregates,
    );
  });
});

describe('AggregateState: an interval far in the future', () => {
  const utc = { time_zone: 'UTC' };
  const now = iso('2024-05-20T12:00:00Z');
  const year2099 = iso('2099-01-01T00:00:00Z');

  it('is refused, never moves the retention clock, and later real data still counts (review H1)', () => {
    const s = new AggregateState();
    s.apply(batch(quarterHours('UTC', '2024-01-15', 1), utc), now);
    s.snapshotDirty();
    const poison = s.apply(batch([interval(year2099, year2099 + H, 5)], utc), now);
    expect(poison.aggregates).toEqual([]);
    expect(poison.rejects).toEqual([
      expect.objectContaining({ code: 'VAL_TIMESTAMP_FUTURE', recordIndex: 0 }),
    ]);
    // Nothing evicted: no tombstone of January.
    expect(s.snapshotDirty().filter((e) => e.value === null)).toEqual([]);
    const may = s.apply(batch(quarterHours('UTC', '2024-05-10', 2), utc), now + 1);
    expect(may.rejects).toEqual([]);
    expect(day(may.aggregates, '2024-05-10')).toMatchObject({ value: 192, interval_count: 96 });
    // January is still held: a correction of it re-aggregates the month from all its slots.
    const jan = s.apply(
      batch([interval(iso('2024-01-15T00:00:00Z'), iso('2024-01-15T00:15:00Z'), 3)], utc),
      now + 2,
    );
    expect(jan.rejects).toEqual([]);
    expect(month(jan.aggregates, '2024-01')).toMatchObject({ value: 95 + 3, interval_count: 96 });
  });

  it('the bound is now plus maxFutureMs', () => {
    const s = new AggregateState({ maxFutureMs: 60 * 60_000 });
    expect(s.apply(batch([interval(now, now + H, 1)], utc), now).rejects).toEqual([]);
    expect(s.apply(batch([interval(now + H, now + 2 * H, 1)], utc), now).rejects[0]!.code).toBe(
      'VAL_TIMESTAMP_FUTURE',
    );
  });
});

describe('AggregateState: canonical units', () => {
  const t = iso('2024-05-01T10:00:00Z');
  const aggs = (unit: string, ivs: UsageInterval[]) =>
    new AggregateState().apply(batch(ivs, { unit, canonical_unit: null, time_zone: 'UTC' }), NOW).aggregates;

  it.each([
    ['MWh', 1.25, 1250, 'kWh'],
    ['GJ', 3.6, 1000, 'kWh'],
    ['kWh', 7.5, 7.5, 'kWh'],
    ['l', 500, 0.5, 'm3'],
    ['t', 2, 2000, 'kg'],
  ])('a %s meter: day and month carry value_canonical in kWh, m3 or kg', (unit, value, canonical, cu) => {
    const out = aggs(unit, [interval(t, t + Q, value)]);
    for (const a of [day(out, '2024-05-01')!, month(out, '2024-05')!]) {
      expect(a).toMatchObject({ value, unit, canonical_unit: cu });
      expect(a.value_canonical).toBeCloseTo(canonical, 9);
    }
  });

  it('cost stays in its currency with both canonical fields null', () => {
    const out = aggs('MWh', [
      interval(t, t + Q, 0.3, { channel: 'cost', currency: 'EUR', value_canonical: null }),
    ]);
    expect(day(out, '2024-05-01', 'cost')).toMatchObject({
      value: 0.3,
      unit: 'EUR',
      value_canonical: null,
      canonical_unit: null,
    });
    expect(month(out, '2024-05', 'cost')).toMatchObject({ value_canonical: null, canonical_unit: null });
  });

  it('a unit without a known conversion has null, never a guess', () => {
    const out = aggs('bananas', [interval(t, t + Q, 4, { value_canonical: null })]);
    expect(day(out, '2024-05-01')).toMatchObject({ value: 4, value_canonical: null, canonical_unit: null });
  });
});
