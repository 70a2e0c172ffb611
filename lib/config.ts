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
import { parseOrThrow } from './parse-or-throw.js';

/** The folder of package.json above this module: the repository, from sources or a build (dist/). */
function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(resolve(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '..');
  }
}

export const REPO_ROOT = packageRoot(dirname(fileURLToPath(import.meta.url)));
export const LOCAL_ENDPOINTS_FILE = resolve(REPO_ROOT, '.local/endpoints.env');

interface EnvVar {
  name: string;
  /** The setting it fills (dotted path in the configuration). */
  setting: string;
  /** What it means, for the schema's description. */
  doc?: string;
  /** Also read from .local/endpoints.env (the local services' endpoints). */
  local?: boolean;
  /** Read only when this variable is set too (SASL credentials without a mechanism mean nothing). */
  with?: string;
}

/**
 * Every environment variable, once: the schema's descriptions, collect() and the names in
 * error messages all come from this table.
 */
const ENV_VARS: readonly EnvVar[] = [
  { name: 'KAFKA_BROKERS', setting: 'kafka.brokers', doc: 'comma-separated host:port list', local: true },
  { name: 'KAFKA_CLIENT_ID', setting: 'kafka.clientId' },
  { name: 'KAFKA_SSL', setting: 'kafka.ssl', doc: 'use TLS' },
  { name: 'KAFKA_SASL_MECHANISM', setting: 'kafka.sasl.mechanism' },
  { name: 'KAFKA_SASL_USERNAME', setting: 'kafka.sasl.username', with: 'KAFKA_SASL_MECHANISM' },
  { name: 'KAFKA_SASL_PASSWORD', setting: 'kafka.sasl.password', with: 'KAFKA_SASL_MECHANISM' },
  { name: 'MF_TOPIC_PREFIX', setting: 'kafka.topicPrefix' },
  { name: 'MF_TOPIC_PARTITIONS', setting: 'kafka.partitions', doc: 'partitions of created topics' },
  { name: 'MF_TOPIC_REPLICATION', setting: 'kafka.replicationFactor' },
  { name: 'SCHEMA_REGISTRY_URL', setting: 'registry.url', doc: 'Confluent API', local: true },
  { name: 'SCHEMA_REGISTRY_USERNAME', setting: 'registry.username' },
  { name: 'SCHEMA_REGISTRY_PASSWORD', setting: 'registry.password' },
  { name: 'CLICKHOUSE_URL', setting: 'clickhouse.url', doc: 'e.g. http://127.0.0.1:8123', local: true },
  { name: 'CLICKHOUSE_USER', setting: 'clickhouse.username' },
  { name: 'CLICKHOUSE_PASSWORD', setting: 'clickhouse.password' },
  { name: 'CLICKHOUSE_DATABASE', setting: 'clickhouse.database' },
  { name: 'MF_CONNECTIONS_DIR', setting: 'connectionsDir', doc: 'folder of connection files' },
  { name: 'LOG_LEVEL', setting: 'logLevel' },
  { name: 'MF_METRICS_PORT', setting: 'metricsPort', doc: '0 = off' },
  {
    name: 'MF_METRICS_HOST',
    setting: 'metricsHost',
    doc: 'bind address of /metrics, /healthz, /readyz (0.0.0.0 in containers)',
  },
  {
    name: 'MF_MAX_TRANSACTION_BYTES',
    setting: 'processors.maxTransactionBytes',
    doc: 'encoded output bytes after which a processors batch commits what it has processed and goes on in a new transaction (default 16 MiB)',
  },
];

const ENV_NAME = new Map(ENV_VARS.map((v) => [v.setting, v.name]));

/** The variable behind a setting. */
function envName(setting: string): string {
  const name = ENV_NAME.get(setting);
  if (name === undefined) throw new Error(`no environment variable fills ${setting}`);
  return name;
}

/** Description of a setting, or of a section (every variable under it): "NAME[, NAME]: doc". */
function envDoc(setting: string): string {
  const vars = ENV_VARS.filter((v) => v.setting === setting || v.setting.startsWith(`${setting}.`));
  if (vars.length === 0) throw new Error(`no environment variable fills ${setting}`);
  const doc = vars.length === 1 ? vars[0]!.doc : undefined;
  return `${vars.map((v) => v.name).join(', ')}${doc ? `: ${doc}` : ''}`;
}

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
const serviceUrl = (section: 'registry' | 'clickhouse') =>
  z
    .string()
    .url()
    .refine(
      (u) => {
        // An unparseable URL is already reported by url() above.
        const parsed = URL.canParse(u) ? new URL(u) : undefined;
        return !parsed || (parsed.username === '' && parsed.password === '');
      },
      {
        message: `must not contain user:password@; set ${envName(`${section}.username`)} and ${envName(`${section}.password`)} instead`,
      },
    )
    .describe(envDoc(`${section}.url`));

export const configSchema = z
  .object({
    kafka: z
      .object({
        brokers: csv.describe(envDoc('kafka.brokers')),
        clientId: z.string().default('meterflow').describe(envDoc('kafka.clientId')),
        ssl: bool.default(false).describe(envDoc('kafka.ssl')),
        sasl: z
          .object({
            mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
            username: z.string().min(1),
            password: z.string().min(1),
          })
          .optional()
          .describe(envDoc('kafka.sasl')),
        topicPrefix: z.string().default('meterflow.').describe(envDoc('kafka.topicPrefix')),
        partitions: int.pipe(z.number().min(1)).default(6).describe(envDoc('kafka.partitions')),
        replicationFactor: int.pipe(z.number().min(1)).default(1).describe(envDoc('kafka.replicationFactor')),
      })
      .strict(),
    registry: z
      .object({
        url: serviceUrl('registry'),
        username: z.string().optional().describe(envDoc('registry.username')),
        password: z.string().optional().describe(envDoc('registry.password')),
      })
      .strict(),
    clickhouse: z
      .object({
        url: serviceUrl('clickhouse'),
        username: z.string().default('default').describe(envDoc('clickhouse.username')),
        password: z.string().default('').describe(envDoc('clickhouse.password')),
        database: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
          .default('meterflow')
          .describe(envDoc('clickhouse.database')),
      })
      .strict(),
    connectionsDir: z.string().default('connections').describe(envDoc('connectionsDir')),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe(envDoc('logLevel')),
    metricsPort: int.pipe(z.number().min(0).max(65535)).default(9464).describe(envDoc('metricsPort')),
    metricsHost: z.string().default('127.0.0.1').describe(envDoc('metricsHost')),
    processors: z
      .object({
        maxTransactionBytes: int
          .pipe(z.number().min(1))
          .optional()
          .describe(envDoc('processors.maxTransactionBytes')),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/** Parses KEY=VALUE lines as deploy/local/services writes them (`export`, quotes, # comments). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2] ?? '';
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    out[m[1] as string] = value;
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

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Builds the raw (unvalidated) config object: the file, with each set variable written over its
 * setting (endpoint variables also from the local endpoints file).
 */
function collect(env: Env): Record<string, unknown> {
  const local = existsSync(LOCAL_ENDPOINTS_FILE)
    ? parseEnvFile(readFileSync(LOCAL_ENDPOINTS_FILE, 'utf8'))
    : {};
  const file = env.MF_CONFIG_FILE ? readConfigFile(env.MF_CONFIG_FILE) : {};
  const raw: Record<string, unknown> = { ...file };
  // Sections are always objects, so a missing value is reported by its setting, not its section.
  for (const section of new Set(
    ENV_VARS.filter((v) => v.setting.includes('.')).map((v) => v.setting.split('.')[0]!),
  )) {
    const given = file[section];
    raw[section] = isObject(given) ? { ...given } : {};
  }
  for (const v of ENV_VARS) {
    const value = env[v.name] ?? (v.local ? local[v.name] : undefined);
    if (value === undefined || (v.with !== undefined && env[v.with] === undefined)) continue;
    const path = v.setting.split('.');
    let at = raw;
    for (const key of path.slice(0, -1)) {
      const inner = at[key];
      at = at[key] = isObject(inner) ? { ...inner } : {};
    }
    at[path.at(-1)!] = value;
  }
  return raw;
}

/** Parses the configuration; throws CFG_INVALID naming every bad setting (secrets never echoed). */
export function loadConfig(env: Env = process.env): Config {
  return parseOrThrow(configSchema, collect(env), {
    what: 'invalid configuration',
    label: (shown, issue) => {
      const setting = issue.path.filter((p) => typeof p !== 'number').join('.');
      const name = ENV_NAME.get(setting);
      return name ? `${setting} (${name})` : shown;
    },
  });
}
