/**
 * `meterflow` — the operator's command line. This is the composition root: the one place that
 * wires producers, processors and sinks together (they never import each other).
 *
 * Exit codes: 0 ok, 1 failure, 2 usage error, 3 refused for safety, 4 differences found.
 */
import { errorMessage, MeterflowError } from '../lib/errors.js';
import { COMMANDS, type CommandName } from './commands.js';
import { logsFor, terminal } from './terminal.js';

/** Commands that take long enough to show progress: their log file is named when they start. */
const LONG = new Set<string>(['demo', 'sync', 'backfill', 'replay']);

export const EXIT = { ok: 0, failure: 1, usage: 2, refused: 3, differences: 4 } as const;

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `meterflow — building energy, water and waste data from provider APIs to Kafka and ClickHouse

Usage: meterflow <command> [options]   (meterflow <command> --help for details)

Commands:
${lines.join('\n')}

Endpoints come from KAFKA_BROKERS, SCHEMA_REGISTRY_URL and CLICKHOUSE_URL, else from the local
services (deploy/local/services up). Connection files are read from MF_CONNECTIONS_DIR.
JSON logs go to a file (MF_LOG_FILE, else .local/logs/), or to stderr with LOG_FORMAT=json;
\`run\` always logs JSON to stderr.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS[name as CommandName];
  if (!command) {
    console.error(`meterflow: unknown command "${name}"\n\n${usage()}`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return EXIT.ok;
  }
  const logs = logsFor(name, { announce: LONG.has(name) });
  try {
    return await command.run(rest);
  } finally {
    terminal().endStatus();
    // A short command names its log file only when it wrote one (a warning, an error).
    if (logs && !LONG.has(name) && logs.written()) terminal().warn(`meterflow: logs in ${logs.path}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof MeterflowError) {
      console.error(`meterflow: ${err.code}: ${err.message}`);
      process.exitCode =
        err.code === 'CLI_USAGE' || err.code === 'CFG_INVALID'
          ? EXIT.usage
          : err.code === 'CLI_REFUSED'
            ? EXIT.refused
            : EXIT.failure;
    } else {
      console.error(`meterflow: ${errorMessage(err)}`);
      process.exitCode = EXIT.failure;
    }
  },
);
