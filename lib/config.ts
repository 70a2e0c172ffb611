/**
 * meterflow's configuration: one zod schema, parsed once at start. Sources, strongest first:
 * environment variables, an optional JSON/YAML file (MF_CONFIG_FILE), then the endpoints that
 * `deploy/local/services up` wrote to .local/endpoints.env, then defaults. A bad setting fails at
 * start with the setting's name and what is wrong.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { errorMessage, MeterflowError } from './errors.js';
import { parseFileText } from './parse-file.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const LOCAL_ENDPOINTS_FILE = resolve(REPO_ROOT, '.local/endpoints.env');

const csv = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port')).min(1));
const bool = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
]);
const int = z.coerce.number().int();

/**
 * A service URL without `user:password@`: credentials have their own variables, and a URL is
 * printed in errors and logs (zod's messages never echo the value).
 */
const serviceUrl = (user: string, password: string) =>
  z
    .string()
    .url()
    .refine(
      (u) => {
        // An unparseable URL is already reported by url() above.
        const parsed = URL.canParse(u) ? new URL(u) : undefined;
        return !parsed || (parsed.username === '' && parsed.password === '');
      },
      { message: `must not contain user:password@; set ${user} and ${password} instead` },
    );

export const configSchema = z
  .object({
    kafka: z
      .object({
        brokers: csv.describe('KAFKA_BROKERS: comma-separated host:port list'),
        clientId: z.string().default('meterflow').describe('KAFKA_CLIENT_ID'),
        ssl: bool.default(false).describe('KAFKA_SSL: use TLS'),
        sasl: z
          .object({
            mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
            username: z.string().min(1),
            password: z.string().min(1),
          })
          .optional()
          .describe('KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD'),
        topicPrefix: z.string().default('meterflow.').describe('MF_TOPIC_PREFIX'),
        partitions: int
          .pipe(z.number().min(1))
          .default(6)
          .describe('MF_TOPIC_PARTITIONS: partitions of created topics'),
        replicationFactor: int.pipe(z.number().min(1)).default(1).describe('MF_TOPIC_REPLICATION'),
      })
      .strict(),
    registry: z
      .object({
        url: serviceUrl('SCHEMA_REGISTRY_USERNAME', 'SCHEMA_REGISTRY_PASSWORD').describe(
          'SCHEMA_REGISTRY_URL (Confluent API)',
        ),
        username: z.string().optional().describe('SCHEMA_REGISTRY_USERNAME'),
        password: z.string().optional().describe('SCHEMA_REGISTRY_PASSWORD'),
      })
      .strict(),
    clickhouse: z
      .object({
        url: serviceUrl('CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD').describe(
          'CLICKHOUSE_URL, e.g. http://127.0.0.1:8123',
        ),
        username: z.string().default('default').describe('CLICKHOUSE_USER'),
        password: z.string().default('').describe('CLICKHOUSE_PASSWORD'),
        database: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
          .default('meterflow')
          .describe('CLICKHOUSE_DATABASE'),
      })
      .strict(),
    connectionsDir: z
      .string()
      .default('connections')
      .describe('MF_CONNECTIONS_DIR: folder of connection files'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('LOG_LEVEL'),
    metricsPort: int.pipe(z.number().min(0).max(65535)).default(9464).describe('MF_METRICS_PORT (0 = off)'),
    metricsHost: z
      .string()
      .default('127.0.0.1')
      .describe('MF_METRICS_HOST: bind address of /metrics, /healthz, /readyz (0.0.0.0 in containers)'),
    processors: z
      .object({
        maxTransactionBytes: int
          .pipe(z.number().min(1))
          .optional()
          .describe(
            'MF_MAX_TRANSACTION_BYTES: encoded output bytes after which a processors batch commits what it has processed and goes on in a new transaction (default 16 MiB)',
          ),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/** Reads KEY=VALUE lines (as written by deploy/local/services). */
export function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m?.[1]) out[m[1]] = m[2]!.replace(/^['"]|['"]$/g, '');
  }
  return out;
}

/** Reads MF_CONFIG_FILE. A syntax error names the line and column, never the line's text. */
function readConfigFile(path: string): Record<string, unknown> {
  const unreadable = (reason: string, context: Record<string, unknown> = {}, cause?: unknown) =>
    new MeterflowError('CFG_FILE_UNREADABLE', `cannot read configuration file ${path}: ${reason}`, {
      cause,
      context: { path, ...context },
    });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw unreadable(errorMessage(cause), {}, cause);
  }
  const parsed = parseFileText(text, path);
  if (!parsed.ok) {
    const { line, column, kind } = parsed.problem;
    throw unreadable(parsed.problem.text, { line, column, kind });
  }
  const doc = parsed.value ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw unreadable('the top level is not a mapping');
  return doc as Record<string, unknown>;
}

type Env = Record<string, string | undefined>;

function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Builds the raw (unvalidated) config object from env, file and local endpoints. */
function collect(env: Env): Record<string, unknown> {
  const local = existsSync(LOCAL_ENDPOINTS_FILE) ? readEnvFile(LOCAL_ENDPOINTS_FILE) : {};
  const file = env.MF_CONFIG_FILE ? readConfigFile(env.MF_CONFIG_FILE) : {};
  const pick = (name: string): string | undefined => env[name] ?? local[name];
  const fileSection = (k: string): Record<string, unknown> =>
    typeof file[k] === 'object' && file[k] !== null ? (file[k] as Record<string, unknown>) : {};

  const saslMechanism = env.KAFKA_SASL_MECHANISM;
  const kafka = {
    ...fileSection('kafka'),
    ...definedOnly({
      brokers: pick('KAFKA_BROKERS') ?? fileSection('kafka').brokers,
      clientId: env.KAFKA_CLIENT_ID,
      ssl: env.KAFKA_SSL,
      topicPrefix: env.MF_TOPIC_PREFIX,
      partitions: env.MF_TOPIC_PARTITIONS,
      replicationFactor: env.MF_TOPIC_REPLICATION,
      sasl: saslMechanism
        ? { mechanism: saslMechanism, username: env.KAFKA_SASL_USERNAME, password: env.KAFKA_SASL_PASSWORD }
        : undefined,
    }),
  };
  const registry = {
    ...fileSection('registry'),
    ...definedOnly({
      url: pick('SCHEMA_REGISTRY_URL'),
      username: env.SCHEMA_REGISTRY_USERNAME,
      password: env.SCHEMA_REGISTRY_PASSWORD,
    }),
  };
  const clickhouse = {
    ...fileSection('clickhouse'),
    ...definedOnly({
      url: pick('CLICKHOUSE_URL'),
      username: env.CLICKHOUSE_USER,
      password: env.CLICKHOUSE_PASSWORD,
      database: env.CLICKHOUSE_DATABASE,
    }),
  };
  const processors = {
    ...fileSection('processors'),
    ...definedOnly({ maxTransactionBytes: env.MF_MAX_TRANSACTION_BYTES }),
  };
  return {
    ...file,
    kafka,
    registry,
    clickhouse,
    processors,
    ...definedOnly({
      connectionsDir: env.MF_CONNECTIONS_DIR,
      logLevel: env.LOG_LEVEL,
      metricsPort: env.MF_METRICS_PORT,
      metricsHost: env.MF_METRICS_HOST,
    }),
  };
}

const ENV_NAMES: Record<string, string> = {
  'kafka.brokers': 'KAFKA_BROKERS',
  'registry.url': 'SCHEMA_REGISTRY_URL',
  'clickhouse.url': 'CLICKHOUSE_URL',
  'clickhouse.database': 'CLICKHOUSE_DATABASE',
  'kafka.partitions': 'MF_TOPIC_PARTITIONS',
  logLevel: 'LOG_LEVEL',
  metricsPort: 'MF_METRICS_PORT',
  'processors.maxTransactionBytes': 'MF_MAX_TRANSACTION_BYTES',
};

/** Parses the configuration; throws CFG_INVALID naming every bad setting (secrets never echoed). */
export function loadConfig(env: Env = process.env): Config {
  const result = configSchema.safeParse(collect(env));
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    const path = i.path.join('.');
    const setting = i.path.filter((p) => typeof p !== 'number').join('.');
    const name = ENV_NAMES[setting] ? `${setting} (${ENV_NAMES[setting]})` : path;
    return `${name}: ${i.message}`;
  });
  throw new MeterflowError('CFG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, {
    context: { settings: result.error.issues.map((i) => i.path.join('.')) },
  });
}
