/**
 * `meterflow migrate`: applies pending ClickHouse migrations (a no-op when up to date).
 */
import { loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { createChClient, migrate } from '../sinks/clickhouse/index.js';
import { parse, type Command } from './args.js';

export const migrateCommand: Command = {
  summary: 'create or update the ClickHouse tables and views (idempotent)',
  help: `Usage: meterflow migrate

Applies the migrations in sinks/clickhouse/migrations to CLICKHOUSE_DATABASE (default meterflow),
creating the database if needed. Applied versions are recorded in <db>.schema_migrations, so a
second run does nothing. The sink also migrates when it starts.`,
  async run(argv) {
    parse(argv, {}, false);
    const config = loadConfig();
    const client = createChClient(config.clickhouse, {});
    try {
      const result = await migrate(client, config.clickhouse.database, createLogger(config.logLevel));
      console.log(
        result.applied.length > 0
          ? `applied migration(s) ${result.applied.join(', ')} to ${config.clickhouse.database}`
          : `${config.clickhouse.database} is up to date (${result.alreadyApplied.length} migration(s) applied before)`,
      );
      return 0;
    } finally {
      await client.close();
    }
  },
};
