/**
 * The terminal renderer: one status line redrawn in place on a TTY, plain throttled lines with no
 * control characters elsewhere, and lines (or log errors) printed above the status, never through it.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bar, createTerminal, formatAge, jsonLogs, table, type Out } from '../../../cli/terminal.js';
import { createLogger, logToFile } from '../../../lib/log.js';

function recorder(isTTY: boolean, columns = 60): Out & { text: string } {
  const out = {
    text: '',
    isTTY,
    columns,
    write(t: string) {
      out.text += t;
      return true;
    },
  };
  return out;
}

/** What a terminal shows: carriage returns and erase-line applied, line by line. */
function screen(raw: string): string[] {
  const lines: string[] = [''];
  for (const part of raw.split(/(\r\x1b\[2K|\n)/)) {
    if (part === '\r\x1b[2K') lines[lines.length - 1] = '';
    else if (part === '\n') lines.push('');
    else lines[lines.length - 1] += part;
  }
  return lines;
}

describe('terminal on a TTY', () => {
  it('redraws one status line and prints lines above it, the status redrawn after', () => {
    const out = recorder(true);
    const t = createTerminal(out);
    t.status('syncing 1');
    t.status('syncing 2');
    t.line('a: succeeded');
    t.status('syncing 3');
    expect(screen(out.text)).toEqual(['a: succeeded', 'syncing 3']);
    t.endStatus('synced 3');
    expect(screen(out.text)).toEqual(['a: succeeded', 'synced 3', '']);
  });

  it('keeps the status on one row: longer text is cut to the width', () => {
    const out = recorder(true, 20);
    const t = createTerminal(out);
    t.status('x'.repeat(50));
    expect(screen(out.text)).toEqual([`${'x'.repeat(18)}…`]);
    t.endStatus();
    expect(screen(out.text)).toEqual(['']);
  });

  it('prints warnings on the error stream above the status line', () => {
    const out = recorder(true);
    const err = recorder(true);
    const t = createTerminal(out, err);
    t.status('copying');
    t.warn('error: broker went away');
    expect(err.text).toBe('error: broker went away\n');
    expect(screen(out.text)).toEqual(['copying']);
  });
});

describe('terminal without a TTY', () => {
  it('prints plain status lines, throttled, and no control characters', () => {
    const out = recorder(false);
    let now = 0;
    const t = createTerminal(out, out, { plainEveryMs: 1_000, now: () => now });
    t.status('[#....] 1 chunks');
    now = 500;
    t.status('[##...] 2 chunks'); // too soon: skipped
    now = 1_500;
    t.status('[###..] 3 chunks');
    t.line('a \x1b[31mred\x1b[0m line\r');
    now = 1_700;
    t.status('[####.] 4 chunks');
    t.endStatus();
    expect(out.text).toBe('[#....] 1 chunks\n[###..] 3 chunks\na [31mred[0m line\n[####.] 4 chunks\n');
    expect(out.text).not.toMatch(/[\r\x1b]/);
  });

  it('prints a given final line once, and nothing more when the last status was printed', () => {
    const out = recorder(false);
    const t = createTerminal(out, out, { plainEveryMs: 0 });
    t.status('done 5');
    t.endStatus();
    t.status('x');
    t.endStatus('finished');
    expect(out.text).toBe('done 5\nx\nfinished\n');
  });
});

describe('helpers', () => {
  it('bar, age and table', () => {
    expect(bar(1, 4, 8)).toBe('[##......]');
    expect(bar(0, 0, 4)).toBe('[####]');
    expect(formatAge(42_000)).toBe('42 s');
    expect(formatAge(7 * 60_000)).toBe('7 min');
    expect(formatAge(5 * 3_600_000)).toBe('5 h');
    expect(formatAge(3 * 86_400_000)).toBe('3 d');
    expect(
      table(
        ['group', 'lag'],
        [
          ['g1', 0],
          ['group-two', 12],
        ],
      ),
    ).toEqual(['  group      lag', '  ---------  ---', '  g1           0', '  group-two   12']);
  });

  it('LOG_FORMAT: json, file or unset; anything else is a configuration error', () => {
    expect(jsonLogs({ LOG_FORMAT: 'json' })).toBe(true);
    expect(jsonLogs({})).toBe(false);
    expect(jsonLogs({ LOG_FORMAT: 'file' })).toBe(false);
    expect(() => jsonLogs({ LOG_FORMAT: 'pretty' })).toThrow(/LOG_FORMAT/);
  });
});

describe('logToFile', () => {
  it('writes JSON lines to the file, created on the first line, and echoes errors as text', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mf-log-')), 'sub', 'x.log');
    const echoed: string[] = [];
    const { written } = logToFile(path, { level: 50, echo: (t) => echoed.push(t) });
    const log = createLogger('info', 'test');
    expect(existsSync(path)).toBe(false);
    expect(written()).toBe(false);
    log.info({ token: 'secret-value' }, 'hello');
    log.error({ err: new Error('boom') }, 'it failed');
    expect(written()).toBe(true);
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['hello', 'it failed']);
    expect(readFileSync(path, 'utf8')).not.toContain('secret-value');
    expect(echoed).toEqual(['error: it failed: boom']);
  });

  it('eager: the file exists as soon as its path can be printed', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mf-log-')), 'now.log');
    logToFile(path, undefined, true);
    expect(existsSync(path)).toBe(true);
  });
});
