/**
 * `meterflow connections publish|list|show`: connection files as versions on the compacted
 * `connections` topic, which processors on every host apply without a copy of the files
 * (DESIGN.md §5). A sync publishes its own connection too; `publish` is for a folder at once
 * (before processors start, after a fix without syncing, or with --prune to remove connections).
 */
import { loadConfig } from '../lib/config.js';
import { MeterflowError } from '../lib/errors.js';
import { createKafka } from '../lib/kafka.js';
import { AvroRegistry } from '../lib/registry.js';
import { loadConnectionSources, publishConnections, readConnectionVersions } from '../producers/index.js';
import { commandDeadline, parse, timeoutOption, type Command } from './args.js';
import { table } from './terminal.js';

const HELP = `Usage: meterflow connections publish [--connections <dir>] [--connection <id>] [--prune] [--dry-run]
       meterflow connections list [--json] [--timeout SECONDS]
       meterflow connections show --connection <id> [--timeout SECONDS]

publish  checks every connection file of the folder (default MF_CONNECTIONS_DIR) and publishes
         each one whose content differs from the topic's latest as its next version (1, 2, ...);
         an unchanged file writes nothing. Every file is checked before anything is written, and
         a file holding anything that reads like a secret value is refused (CFG_INVALID, the
         field named, the value never printed). --prune removes (tombstones) connections on the
         topic that no file has. --dry-run says what would be published.
list     the latest version of every connection: version, provider, when, from which host and file.
show     the content of a connection's latest version (canonical JSON; secrets only as variable names).

Processors apply the version a record was fetched with, or a later one; a sync publishes its
connection before it fetches, so a fixed file needs no command: the next sync carries it.`;

function deps() {
  const config = loadConfig();
  return { config, kafka: createKafka(config, '-cli'), registry: AvroRegistry.fromConfig(config) };
}

async function publish(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      connections: { type: 'string' },
      connection: { type: 'string' },
      prune: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
    },
    false,
  );
  if (values.prune && values.connection)
    throw new MeterflowError('CLI_USAGE', '--prune works on the whole folder, not with --connection');
  const d = deps();
  const dir = values.connections ?? d.config.connectionsDir;
  let sources = await loadConnectionSources(dir);
  if (values.connection) {
    sources = sources.filter((s) => s.connection.id === values.connection);
    if (sources.length === 0)
      throw new MeterflowError('CFG_INVALID', `no connection file in ${dir} has id "${values.connection}"`, {
        context: { dir, connection: values.connection },
      });
  }
  const result = await publishConnections(
    d,
    sources.map((s) => ({ connection: s.connection, source: s.file })),
    { prune: values.prune === true, dryRun: values['dry-run'] === true },
  );
  const verb = values['dry-run'] ? 'would be published' : 'published';
  for (const p of result.published) {
    const file = sources.find((s) => s.connection.id === p.connectionId)?.file ?? '';
    console.log(
      p.changed
        ? `${p.connectionId}: version ${p.version} ${verb} (${file})`
        : `${p.connectionId}: unchanged at version ${p.version} (${file})`,
    );
  }
  for (const id of result.removed)
    console.log(`${id}: ${values['dry-run'] ? 'would be removed' : 'removed'} (no file has it)`);
  if (result.published.length === 0 && result.removed.length === 0)
    console.log(`no connection files in ${dir}`);
  return 0;
}

async function list(argv: string[], show: boolean): Promise<number> {
  const { values } = parse(
    argv,
    { json: { type: 'boolean' }, connection: { type: 'string' }, ...timeoutOption },
    false,
  );
  if (show && !values.connection) throw new MeterflowError('CLI_USAGE', 'show needs --connection <id>');
  const deadline = commandDeadline(`meterflow connections ${show ? 'show' : 'list'}`, values.timeout, 60);
  try {
    const versions = await readConnectionVersions(deps(), { signal: deadline.signal });
    const all = [...versions.latest.values()].sort((a, b) => a.connection_id.localeCompare(b.connection_id));
    if (show) {
      const v = versions.latest.get(values.connection!);
      if (!v) {
        console.error(`meterflow: connection "${values.connection}" has no version on the connections topic`);
        return 1;
      }
      console.log(
        `# ${v.connection_id} version ${v.version}, published ${new Date(v.published_at).toISOString()} by ${v.host} from ${v.source}`,
      );
      console.log(JSON.stringify(JSON.parse(v.content), null, 2));
      return 0;
    }
    if (values.json) {
      console.log(
        JSON.stringify(
          all.map(({ content: _c, ...meta }) => meta),
          null,
          2,
        ),
      );
      return 0;
    }
    if (all.length === 0) {
      console.log(
        'no connections on the connections topic (a sync or `meterflow connections publish` adds them)',
      );
      return 0;
    }
    for (const line of table(
      ['connection', 'version', 'provider', 'published (UTC)', 'host', 'source', 'sha256'],
      all.map((v) => [
        v.connection_id,
        v.version,
        v.provider,
        new Date(v.published_at).toISOString().slice(0, 19).replace('T', ' '),
        v.host,
        v.source,
        v.content_sha256.slice(0, 12),
      ]),
      '',
    ))
      console.log(line);
    return 0;
  } finally {
    deadline.clear();
  }
}

export const connectionsCommand: Command = {
  summary: 'publish connection files as versions to the connections topic; list or show them',
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'publish':
        return publish(rest);
      case 'list':
        return list(rest, false);
      case 'show':
        return list(rest, true);
      default:
        throw new MeterflowError('CLI_USAGE', `connections needs publish, list or show\n\n${HELP}`);
    }
  },
};
