/**
 * One error registry for meterflow. Codes are stable and never reused: tools, dashboards and the
 * quarantine topic route on them. Prefix = subsystem (CFG_, KAFKA_, REG_, POLL_, NORM_, VAL_, AGG_,
 * SINK_, RT_, CLI_). Quarantine reason codes are codes from this list.
 */

export const ERROR_CODES = {
  // Configuration
  CFG_INVALID: 'a configuration setting is missing or malformed',
  CFG_FILE_UNREADABLE: 'a configuration file could not be read or parsed',
  CFG_SECRET_MISSING: 'an environment variable named for a secret is not set',

  // Infrastructure clients
  KAFKA_UNREACHABLE: 'the Kafka brokers did not answer',
  KAFKA_TOPIC_SETUP: 'a topic could not be created or checked',
  REG_UNREACHABLE: 'the schema registry did not answer',
  REG_INCOMPATIBLE: 'a schema change is not compatible with the registered versions',
  REG_DECODE: 'a message could not be decoded with its registered schema',
  REG_AUTH: 'the schema registry refused our credentials (401/403)',
  CH_UNREACHABLE: 'ClickHouse did not answer',

  // Producers (pollers)
  POLL_HTTP_STATUS: 'the provider answered with an error status',
  POLL_HTTP_NETWORK: 'the provider could not be reached',
  POLL_HTTP_TIMEOUT: 'the provider did not answer in time',
  POLL_RESPONSE_TOO_LARGE: 'the provider response exceeded the size limit',
  POLL_RESPONSE_MALFORMED: 'the provider response body could not be parsed',
  POLL_RESPONSE_CONTENT_TYPE: 'the provider response had an unexpected content type',
  POLL_RESPONSE_SCHEMA: 'the provider response did not match the expected shape',
  POLL_AUTH: 'authentication with the provider failed',
  POLL_BUDGET_EXHAUSTED: 'the request budget for the connection is used up',
  POLL_PAGINATION_LOOP: 'the provider returned a page cursor that was already seen',
  POLL_FOREIGN_ORIGIN: 'the provider pointed to a URL outside the configured base URL',
  POLL_XML_UNSAFE: 'an XML body carried a DOCTYPE or an entity declaration',
  POLL_ACTIVATION_TIMEOUT: 'a meter did not reach the expected state in time',
  POLL_RUN_OVERLAP: 'a sync of this connection is already running',
  POLL_RUN_DEADLINE: 'a sync run exceeded its deadline (http.runDeadlineMs) and was aborted',
  POLL_RUN_STOPPED: 'a sync run was stopped by the operator or a shutdown before it finished',
  POLL_SNAPSHOT_EMPTY:
    'a snapshot found no meters or assets although the previous complete one had some; nothing is deactivated',

  // Normalise (quarantine reasons)
  NORM_ENVELOPE_MALFORMED: 'the raw envelope is not a valid envelope',
  NORM_DECODE_FAILED: 'the Kafka message could not be decoded (Avro / wire format)',
  NORM_PAYLOAD_JSON: 'the raw payload is not valid JSON',
  NORM_PAYLOAD_SCHEMA: 'the raw payload does not match the provider schema',
  NORM_UNKNOWN_FORMAT: 'no normaliser exists for the envelope format',
  NORM_UNKNOWN_CONNECTION: 'the envelope names a connection that is not configured',
  NORM_CONNECTION_VERSION_UNKNOWN:
    'the envelope names a connection version that the connections topic does not have (or this release cannot read)',
  NORM_TIMESTAMP_NO_ZONE: 'a local timestamp has no offset and no time zone is configured',
  NORM_TIMESTAMP_INVALID: 'a date or timestamp is not ISO 8601',
  NORM_METER_TYPE_UNMAPPED: 'the provider meter classification cannot be mapped to the taxonomy',
  NORM_USAGE_KIND_UNMAPPED: "a generic meter's usage kind field has no entry in meters.usageKinds",

  // Validate (quarantine reasons)
  VAL_REQUIRED_FIELD: 'a required field is missing or empty',
  VAL_END_NOT_AFTER_START: 'the period end is not strictly after its start',
  VAL_NOT_FINITE: 'a numeric field is NaN or infinite',
  VAL_NEGATIVE_CONSUMPTION: 'consumption is negative',
  VAL_IMPLAUSIBLE_MAGNITUDE: 'a value is implausibly large for its unit and interval',
  VAL_CURRENCY_MISSING: 'a cost is given without an ISO 4217 currency',
  VAL_CURRENCY_INVALID: 'the currency is not an ISO 4217 code',
  VAL_UNKNOWN_METER: 'the usage references a meter that is not known',
  VAL_UNIT_CONFLICT: 'the usage unit is not convertible to the meter unit',
  VAL_METER_RESET: 'a register reading decreased: meter reset or rollover',
  VAL_INVALID_TIME_ZONE: 'the time zone is not a valid IANA zone',
  VAL_READING_OUT_OF_ORDER:
    'a register reading is older than, or conflicts with, the last reading already applied',
  VAL_TIMESTAMP_FUTURE: 'an interval ends further in the future than the allowed tolerance',

  // Aggregate
  AGG_LATE_BEYOND_RETENTION: 'the interval is older than the aggregation state retention',

  // Sink
  SINK_INSERT_REJECTED: 'ClickHouse rejected a row for its content',
  SINK_INSERT_FAILED: 'an insert into ClickHouse failed',
  SINK_MIGRATION_FAILED: 'a ClickHouse migration failed',

  // Runtime
  RT_TRANSACTION_ABORTED:
    'a stage transaction was aborted (fenced after a rebalance, or a broker error); the batch is retried',
  RT_POISON_RECORD: 'a record made the stage fail repeatedly',
  RT_STATE_RESTORE: 'state could not be restored from its changelog',

  // CLI
  CLI_USAGE: 'the command line is not valid',
  CLI_REFUSED: 'the operation was refused for safety',
  CLI_TIMEOUT: 'an operator command did not finish within its deadline (--timeout)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorOptions {
  cause?: unknown;
  /** Whether repeating the same operation may succeed (network, 429, 5xx). Data errors never are. */
  retriable?: boolean;
  /** What and where: connection, endpoint, page, topic, partition, offset... never secrets. */
  context?: Record<string, unknown>;
}

export class MeterflowError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MeterflowError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.context = options.context ?? {};
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retriable: this.retriable,
      context: this.context,
    };
  }
}

export function isMeterflowError(err: unknown): err is MeterflowError {
  return err instanceof MeterflowError;
}

export function isRetriable(err: unknown): boolean {
  return err instanceof MeterflowError && err.retriable;
}

/** A message for any thrown value, without a stack. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
