/**
 * `meterflow report` without ClickHouse: its arguments are checked before anything connects, the
 * default path, the summary lines, and the day arithmetic and time parsing its queries rely on.
 */
import { describe, expect, it } from 'vitest';
import { defaultReportPath, reportCommand, reportLines } from '../../../cli/report.js';
import { seriesLabel, type ReportData } from '../../../cli/report/data.js';
import { addDays, daysBetween, isoTime } from '../../../cli/report/queries.js';
import { REPO_ROOT } from '../../../lib/config.js';

describe('meterflow report', () => {
  it('refuses a bad --days or an empty --out with CLI_USAGE before connecting', async () => {
    for (const argv of [
      ['--days', '0'],
      ['--days', '2.5'],
      ['--days', 'x'],
      ['--days', '800'],
      ['--out', ' '],
    ])
      await expect(reportCommand.run(argv), argv.join(' ')).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(reportCommand.run(['--bogus'])).rejects.toMatchObject({ code: 'CLI_USAGE' });
  });

  it('writes under .local/reports by default, named by the UTC time', () => {
    expect(defaultReportPath(new Date('2024-03-05T14:02:09.123Z'))).toBe(
      `${REPO_ROOT}/.local/reports/meterflow-report-20240305-140209.html`,
    );
  });

  it('summarises the report in canonical units and ends with its path', () => {
    const data: ReportData = {
      generated_at: '2024-03-05T10:00:00.000Z',
      database: 'meterflow',
      window: { from: '2024-03-01', to: '2024-03-02', days: ['2024-03-01', '2024-03-02'] },
      meters_by_type: [{ meter_type: 'Energy', active: 2 }],
      series: [
        { meter_type: 'Energy', unit: 'kWh', label: 'Energy', total: 1234567.8, buildings: [] },
        { meter_type: 'Energy', unit: 'm3', label: seriesLabel('Energy', 'm3'), total: 12.25, buildings: [] },
      ],
      unconverted: { units: [], meters: 0 },
      completeness: { meters: [], total_meters: 2, mean_daily: 1, limit: 60 },
      quarantine: [
        {
          stage: 'usage',
          reason_code: 'VAL_METER_RESET',
          open: 2,
          redriven: 5,
          connections: [],
          first_at: null,
          last_at: null,
        },
      ],
      syncs: [],
    };
    const lines = reportLines(data, '/tmp/r.html');
    expect(lines[0]).toBe('Report: 2024-03-01 .. 2024-03-02 (2 day(s))');
    expect(lines[1]).toMatch(/^ {2}Energy +1,234,568 kWh +from 0 building\(s\)$/);
    expect(lines[2]).toMatch(/^ {2}Energy \(gas, by volume\) +12\.3 m3 /);
    expect(lines[3]).toContain('open quarantine: 2;');
    expect(lines.at(-1)).toBe('  report: /tmp/r.html');
    expect(seriesLabel('Water', 'm3')).toBe('Water');
  });

  it('counts days across month, leap day and DST boundaries, in UTC', () => {
    expect(addDays('2024-02-28', 1)).toBe('2024-02-29');
    expect(addDays('2024-03-01', -1)).toBe('2024-02-29');
    expect(addDays('2024-03-31', 1)).toBe('2024-04-01');
    expect(daysBetween('2024-03-30', '2024-04-02')).toEqual([
      '2024-03-30',
      '2024-03-31',
      '2024-04-01',
      '2024-04-02',
    ]);
    expect(daysBetween('2024-03-02', '2024-03-01')).toEqual([]);
    expect(isoTime('2024-03-05 14:02:09')).toBe('2024-03-05T14:02:09Z');
    expect(isoTime('0000-00-00 00:00:00')).toBeNull();
    expect(isoTime(null)).toBeNull();
  });
});
