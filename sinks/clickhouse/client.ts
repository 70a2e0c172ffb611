/**
 * The ClickHouse HTTP client as the sink uses it, set up to work unchanged against ClickHouse
 * 18.16 (Debian, CI) and current releases, plus the classification of its errors.
 *
 * 18.16 notes (see ANALYSTS.md "Compatibility"): no HTTP compression (18.16 does not reliably
 * accept compressed request bodies), no session, no query parameters, no settings the old server
 * does not know. Its error bodies read `Code: 49, e.displayText() = DB::Exception: ...`, which
 * @clickhouse/client does not parse (it returns a plain Error), so the code is read here from the
 * message for both the old and the new (`Code: 691. DB::Exception: ...`) formats.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../lib/config.js';
import { errorMessage } from '../../lib/errors.js';

export type { ClickHouseClient };

export function createChClient(
  ch: Config['clickhouse'],
  options: { requestTimeoutMs?: number } = {},
): ClickHouseClient {
  return createClient({
    url: ch.url,
    username: ch.username,
    password: ch.password,
    compression: { request: false, response: false },
    request_timeout: options.requestTimeoutMs ?? 60_000,
    max_open_connections: 4,
    // The client logs every failed request at ERROR with its own formatter; the sink classifies
    // and logs failures itself (a data error is routine there: the row goes to quarantine).
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** Quotes an identifier (database, table) for DDL; names are validated by the config schema. */
export function ident(name: string): string {
  return '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}

/**
 * Server error codes that mean "this input cannot be stored": the rows are wrong, not the
 * server. Only these trigger bisecting and quarantine; anything else is retried.
 */
const DATA_ERROR_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA (but see SCHEMA_MISMATCH below)
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DOESNT_MATCH
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  691, // UNKNOWN_ELEMENT_OF_ENUM (current releases)
]);

/** 18.16 reports an unknown Enum element as code 49 (LOGICAL_ERROR), newer ones as 36 or 691. */
const ENUM_ELEMENT = /Unknown element '.*' for (type )?Enum/i;
/**
 * The table does not have the columns the sink sends: a migration is missing, not a bad row.
 * Bisecting it would quarantine every row, so it is retried (and logged) instead.
 */
const SCHEMA_MISMATCH = /Unknown field found|No such column|There is no column|Unknown identifier/i;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);
const NETWORK_MESSAGE =
  /socket hang up|Timeout error|ECONNRESET|ECONNREFUSED|other side closed|aborted|EPIPE/i;

export type ChErrorKind =
  /** the rows cannot be stored: bisect and quarantine */
  | 'data'
  /** ClickHouse did not answer (connection refused, reset, timeout): back off, pause */
  | 'unreachable'
  /** ClickHouse answered with an error that is not about the rows (overload, missing table...) */
  | 'server';

export interface ChErrorInfo {
  kind: ChErrorKind;
  /** Server error code when ClickHouse answered. */
  code?: number;
  message: string;
}

/** Reads the server code from either error format; undefined for a network error. */
export function serverErrorCode(err: unknown): number | undefined {
  const fromProp = (err as { code?: unknown }).code;
  if (typeof fromProp === 'string' && /^\d+$/.test(fromProp)) return Number(fromProp);
  const m = /Code: (\d+)[.,]/.exec(errorMessage(err));
  return m?.[1] ? Number(m[1]) : undefined;
}

export function classifyChError(err: unknown): ChErrorInfo {
  const message = errorMessage(err).split(', e.what()')[0]!.trim();
  const code = serverErrorCode(err);
  if (code === undefined) {
    const sysCode = (err as { code?: unknown }).code;
    if ((typeof sysCode === 'string' && NETWORK_CODES.has(sysCode)) || NETWORK_MESSAGE.test(message)) {
      return { kind: 'unreachable', message };
    }
    // An HTTP failure without a ClickHouse body (proxy 502, ...) is treated as unavailability.
    return { kind: 'unreachable', message };
  }
  if (SCHEMA_MISMATCH.test(message)) return { kind: 'server', code, message };
  if (DATA_ERROR_CODES.has(code) || ENUM_ELEMENT.test(message)) return { kind: 'data', code, message };
  return { kind: 'server', code, message };
}
