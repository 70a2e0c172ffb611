/**
 * Structured JSON logs (pino). Secrets are redacted by path wherever they could appear; the
 * HTTP client also strips them from URLs before anything is logged.
 */
import { pino, type Logger } from 'pino';

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

/** JSON lines on stderr: stdout stays free for command output (reports, CSV, --json). */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', name = 'meterflow'): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination(2));
}
