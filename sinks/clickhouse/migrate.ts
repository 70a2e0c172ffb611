/**
 * Versioned ClickHouse migrations. Applied versions are recorded in `<db>.schema_migrations`;
 * running again applies only what is missing, so it is a no-op on an up-to-date database. Each
 * statement is idempotent (`IF NOT EXISTS`), so a run that died half-way through a migration
 * completes it next time. Two sinks starting together may both apply a migration: harmless for
 * the same reason, and schema_migrations collapses the duplicate record.
 *
 *   npx tsx sinks/clickhouse/migrate.ts     migrate the configured database (CLICKHOUSE_DATABASE)
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../../lib/config.js';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { classifyChError, createChClient, ident, type ClickHouseClient } from './client.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

export interface MigrationResult {
  applied: number[];
  alreadyApplied: number[];
}

export function migrationChecksum(m: Migration): string {
  // Checksummed with a placeholder database so the sum does not depend on the target.
  return createHash('sha256').update(m.statements('__db__').join(';\n')).digest('hex').slice(0, 16);
}

const ADD_COLUMNS = /^ALTER TABLE \S+ ADD COLUMN /;
const ALREADY_EXISTS = /column with this name already exists/i;

async function run(client: ClickHouseClient, query: string, what: string): Promise<void> {
  try {
    await client.command({ query });
  } catch (cause) {
    const info = classifyChError(cause);
    // 18.16 has no ADD COLUMN IF NOT EXISTS. An ALTER adds all its columns or none, so one
    // refused because they exist was applied by a run that stopped before recording it.
    if (ADD_COLUMNS.test(query) && ALREADY_EXISTS.test(info.message)) return;
    if (info.kind === 'unreachable') {
      throw new MeterflowError('CH_UNREACHABLE', `ClickHouse did not answer while ${what}: ${info.message}`, {
        cause,
        retriable: true,
      });
    }
    throw new MeterflowError('SINK_MIGRATION_FAILED', `${what} failed: ${info.message}`, {
      cause,
      context: { statement: query.slice(0, 500), code: info.code },
    });
  }
}

async function appliedVersions(client: ClickHouseClient, db: string): Promise<Map<number, string>> {
  const rs = await client.query({
    query: `SELECT version, any(checksum) AS checksum FROM ${ident(db)}.schema_migrations GROUP BY version`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ version: number | string; checksum: string }>();
  return new Map(rows.map((r) => [Number(r.version), r.checksum]));
}

/** Creates the database if needed and applies every pending migration in order. */
export async function migrate(
  client: ClickHouseClient,
  database: string,
  log?: Logger,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationResult> {
  const db = ident(database);
  await run(client, `CREATE DATABASE IF NOT EXISTS ${db}`, `creating database ${database}`);
  await run(
    client,
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, name String, checksum String, applied_at DateTime('UTC')) ` +
      `ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`,
    'creating schema_migrations',
  );
  let applied: Map<number, string>;
  try {
    applied = await appliedVersions(client, database);
  } catch (cause) {
    throw new MeterflowError(
      'CH_UNREACHABLE',
      `cannot read ${database}.schema_migrations: ${errorMessage(cause)}`,
      {
        cause,
        retriable: true,
      },
    );
  }
  const result: MigrationResult = { applied: [], alreadyApplied: [] };
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    const checksum = migrationChecksum(m);
    const known = applied.get(m.version);
    if (known !== undefined) {
      if (known !== checksum) {
        log?.warn(
          { event: 'ch.migration.changed', version: m.version, recorded: known, current: checksum },
          'an applied migration was edited since; add a new migration instead',
        );
      }
      result.alreadyApplied.push(m.version);
      continue;
    }
    const statements = m.statements(database);
    for (const [i, statement] of statements.entries()) {
      await run(
        client,
        statement,
        `migration ${m.version} (${m.name}) statement ${i + 1}/${statements.length}`,
      );
    }
    try {
      await client.insert({
        table: `${db}.schema_migrations`,
        values: [{ version: m.version, name: m.name, checksum, applied_at: Math.floor(Date.now() / 1000) }],
        format: 'JSONEachRow',
      });
    } catch (cause) {
      throw new MeterflowError(
        'SINK_MIGRATION_FAILED',
        `cannot record migration ${m.version}: ${errorMessage(cause)}`,
        { cause },
      );
    }
    log?.info(
      { event: 'ch.migration.applied', version: m.version, name: m.name, database },
      'migration applied',
    );
    result.applied.push(m.version);
  }
  return result;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'clickhouse-migrate');
  const client = createChClient(config.clickhouse);
  try {
    const r = await migrate(client, config.clickhouse.database, log);
    log.info({ event: 'ch.migration.done', ...r, database: config.clickhouse.database }, 'migrations done');
  } finally {
    await client.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${errorMessage(err)}\n`);
    process.exit(1);
  });
}
