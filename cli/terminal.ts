/**
 * What a person sees: human lines and one status line (a progress bar) that is redrawn in place
 * on a terminal and printed as plain, throttled lines elsewhere (CI, tests, pipes), with no
 * control characters. JSON logs do not go here: logsFor() sends them to a file, or to stderr with
 * LOG_FORMAT=json; errors among them come back as human lines above the status line.
 */
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/config.js';
import { MeterflowError } from '../lib/errors.js';
import { logToFile } from '../lib/log.js';

/** The part of a stream the terminal uses: process.stdout, or a test's recorder. */
export interface Out {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface TerminalOptions {
  /** Redraw the status line in place. Default: the output is a TTY. */
  live?: boolean;
  /** Without redraw, print the status at most this often (ms); the final one always. */
  plainEveryMs?: number;
  now?: () => number;
}

export interface Terminal {
  /** A line that stays, printed above the status line. */
  line(text: string): void;
  /** The same, on the error stream. */
  warn(text: string): void;
  /** Replaces the status line (progress). */
  status(text: string): void;
  /** Ends the status line; `final`, when given, stays as a line. */
  endStatus(final?: string): void;
}

const CLEAR = '\r\x1b[2K';

/** Control characters (escape sequences, carriage returns) never reach a log or CI output. */
function clean(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
}

export function createTerminal(out: Out, err: Out = out, options: TerminalOptions = {}): Terminal {
  const live = options.live ?? out.isTTY === true;
  const everyMs = options.plainEveryMs ?? 5_000;
  const now = options.now ?? Date.now;
  let current = ''; // the status line shown (live) or last asked for (plain)
  let printedAt = Number.NEGATIVE_INFINITY;
  let printed = '';

  // One row: a wrapped status line could not be redrawn with a carriage return.
  const fit = (text: string) => {
    const width = (out.columns ?? 80) - 1;
    return text.length > width ? `${text.slice(0, width - 1)}…` : text;
  };
  const above = (stream: Out, text: string) => {
    const lines = clean(text).replace(/\n$/, '');
    if (live && current) {
      out.write(CLEAR);
      stream.write(`${lines}\n`);
      out.write(fit(current));
    } else stream.write(`${lines}\n`);
  };
  return {
    line: (text) => above(out, text),
    warn: (text) => above(err, text),
    status(text) {
      const t = clean(text).replace(/\n/g, ' ');
      if (live) {
        if (t !== current) out.write(`${CLEAR}${fit(t)}`);
        current = t;
        return;
      }
      current = t;
      if (t !== printed && now() - printedAt >= everyMs) {
        out.write(`${t}\n`);
        printed = t;
        printedAt = now();
      }
    },
    endStatus(final) {
      if (live && current) out.write(CLEAR);
      const last = final === undefined ? (live ? '' : current) : clean(final);
      if (last && (live || last !== printed)) out.write(`${last}\n`);
      current = '';
      printed = '';
      printedAt = Number.NEGATIVE_INFINITY;
    },
  };
}

let shared: Terminal | undefined;

/** The process's terminal: stdout for lines and status, stderr for warnings. */
export function terminal(): Terminal {
  shared ??= createTerminal(process.stdout, process.stderr, {
    // With JSON logs on the same screen a redrawn line would be cut by them: plain lines then.
    live: process.stdout.isTTY === true && !jsonLogs(),
  });
  return shared;
}

/** `[#######.....] 12/40` */
export function bar(done: number, total: number, width = 25): string {
  const n = total <= 0 ? width : Math.max(0, Math.min(width, Math.round((done / total) * width)));
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}]`;
}

/** "42 s", "7 min", "5 h", "3 d": how long ago, for a person. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7_200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3_600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** Rows under a header, columns padded to their widest cell; numbers right-aligned. */
export function table(header: string[], rows: (string | number)[][], indent = '  '): string[] {
  const cells = rows.map((r) => r.map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const format = (r: string[]) =>
    indent +
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...cells.map(format)];
}

/** LOG_FORMAT=json: JSON lines on stderr, as containers want. Anything else but unset is an error. */
export function jsonLogs(env: NodeJS.ProcessEnv = process.env): boolean {
  const format = env.LOG_FORMAT?.trim().toLowerCase();
  if (format === undefined || format === '' || format === 'file') return false;
  if (format === 'json') return true;
  throw new MeterflowError('CFG_INVALID', `LOG_FORMAT must be json or file, not "${env.LOG_FORMAT}"`);
}

/**
 * Where a command's JSON logs go. Services (`run`) and LOG_FORMAT=json: stderr, as before.
 * Otherwise a file, $MF_LOG_FILE or .local/logs/meterflow-<command>-<time>-<pid>.log, created on the
 * first line; error lines also appear on the terminal as text. `announce` (long commands) creates
 * the file now and prints its path at the start; otherwise the caller names it if written.
 */
export function logsFor(
  command: string,
  options: { env?: NodeJS.ProcessEnv; announce?: boolean } = {},
): { path: string; written: () => boolean } | undefined {
  const env = options.env ?? process.env;
  if (command === 'run' || jsonLogs(env)) return undefined;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  const path =
    env.MF_LOG_FILE?.trim() ||
    join(REPO_ROOT, '.local/logs', `meterflow-${command}-${stamp}-${process.pid}.log`);
  const { written } = logToFile(
    path,
    { level: 50, echo: (text) => terminal().warn(text) },
    options.announce === true,
  );
  if (options.announce) terminal().warn(`meterflow: logs in ${path}`);
  return { path, written };
}
