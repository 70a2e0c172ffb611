/**
 * Structured JSON logs (pino). Secrets are redacted by path wherever they could appear; the
 * HTTP client also strips them from URLs before anything is logged.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type DestinationStream, type Logger } from 'pino';

type SonicBoom = ReturnType<typeof pino.destination>;

export type { Logger };

export const REDACT_PATHS = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'clientSecret',
  '*.clientSecret',
  'client_secret',
  '*.client_secret',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'sasl.password',
  'kafka.sasl.password',
  'registry.password',
  'clickhouse.password',
];

/**
 * Where this process's JSON lines go: stderr (services, containers, LOG_FORMAT=json) unless the
 * CLI sent them to a file (logToFile) so that a person's terminal stays readable. One choice per
 * process: every logger created after it writes to the same destination.
 */
let destination: DestinationStream | undefined;

/** JSON lines on stderr: stdout stays free for command output (reports, CSV, --json). */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', name = 'meterflow'): Logger {
  destination ??= pino.destination(2);
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);
}

/** A log line as a person reads it, for the lines (errors) also shown on the terminal. */
export interface LogEcho {
  level: number;
  echo(line: string): void;
}

/**
 * Sends every later logger's JSON lines to `path` (created with its folder on first write, so a
 * command that logs nothing leaves no file; `eager` creates it now, for a path already printed). With `echo`, lines at or above its level are also
 * handed over as text (already redacted), e.g. to be printed above a progress line.
 * Returns whether anything has been written.
 */
export function logToFile(path: string, echo?: LogEcho, eager = false): { written: () => boolean } {
  let file: SonicBoom | undefined;
  const open = (): SonicBoom => {
    mkdirSync(dirname(path), { recursive: true });
    // Synchronous: a CLI may end with process.exit (a deadline) and must not lose its last lines.
    file = pino.destination({ dest: path, sync: true, append: true });
    return file;
  };
  if (eager) open();
  destination = {
    write(line: string) {
      (file ?? open()).write(line);
      if (!echo) return;
      const parsed = parseLine(line);
      if (parsed && parsed.level >= echo.level) echo.echo(parsed.text);
    },
  };
  return { written: () => file !== undefined };
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

function parseLine(line: string): { level: number; text: string } | undefined {
  try {
    const o = JSON.parse(line) as { level?: unknown; msg?: unknown; err?: { message?: unknown } };
    const level = typeof o.level === 'number' ? o.level : 0;
    const err = typeof o.err?.message === 'string' ? `: ${o.err.message}` : '';
    return { level, text: `${LEVELS[level] ?? 'log'}: ${typeof o.msg === 'string' ? o.msg : ''}${err}` };
  } catch {
    return undefined;
  }
}
