/**
 * `meterflow sync` and `meterflow backfill`: one run of a connection now, with progress.
 */
import { MeterflowError } from '../lib/errors.js';
import * as producers from '../producers/index.js';
import type { SyncRun } from '../schemas/records.js';
import { bootstrap } from './bootstrap.js';
import { parse, type Command } from './args.js';
import { bar, terminal } from './terminal.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function printRun(r: SyncRun): void {
  const seconds = r.finished_at ? ((r.finished_at - r.started_at) / 1000).toFixed(1) : '?';
  const term = terminal();
  term.line(
    `${r.connection_id}: ${r.status} in ${seconds} s — ${r.entities} entities${r.snapshot_complete ? ' (complete snapshot)' : ''}, ${r.usage_chunks} usage chunks, ${r.requests} requests, ${r.retries} retries, ${r.errors} errors (run ${r.sync_run_id})`,
  );
  for (const e of r.error_messages.slice(0, 10)) term.line(`  error: ${e}`);
}

async function runOnce(argv: string[], backfill: boolean): Promise<number> {
  const { values } = parse(
    argv,
    {
      connection: { type: 'string' },
      connections: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'entities-only': { type: 'boolean' },
    },
    false,
  );
  if (!values.connection) throw new MeterflowError('CLI_USAGE', '--connection is required');
  if (backfill && (!values.from || !DATE.test(values.from)))
    throw new MeterflowError('CLI_USAGE', 'backfill needs --from YYYY-MM-DD');
  if (values.to && !DATE.test(values.to)) throw new MeterflowError('CLI_USAGE', '--to must be YYYY-MM-DD');
  const rt = await bootstrap(values.connections ? { connectionsDir: values.connections } : {});
  const from = values.from ? Date.parse(`${values.from}T00:00:00Z`) : undefined;
  const to = values.to ? Date.parse(`${values.to}T00:00:00Z`) : Date.now();
  let chunks = 0;
  let reached = from ?? 0;
  const term = terminal();
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  term.status(`${values.connection}: snapshot of assets and meters`);
  const polling = producers.create(
    // The run reads its file again from the folder, so the version it publishes names the file.
    {
      connections: [...rt.connections.values()],
      connectionsDir: values.connections ?? rt.config.connectionsDir,
    },
    {
      ...rt,
      onEvent: (e) => {
        if (e.name !== 'sync.chunk.committed') return;
        chunks++;
        const chunkTo = typeof e.data.to === 'number' ? e.data.to : reached;
        reached = Math.max(reached, chunkTo);
        if (from !== undefined && to > from) {
          const pct = Math.min(100, Math.round(((reached - from) / (to - from)) * 100));
          term.status(`${bar(pct, 100)} ${pct}% ${chunks} chunks, up to ${day(reached)}`);
        } else term.status(`${values.connection}: ${chunks} chunks committed`);
      },
    },
  );
  try {
    const run = await polling.runOnce(values.connection, {
      ...(values.from ? { from: `${values.from}T00:00:00Z` } : {}),
      ...(values.to ? { to: `${values.to}T00:00:00Z` } : {}),
      ...(values['entities-only'] ? { mode: 'entities' as const } : {}),
    });
    term.endStatus();
    printRun(run);
    return run.status === 'succeeded' ? 0 : 1;
  } finally {
    await polling.stop();
  }
}

export const syncCommand: Command = {
  summary: 'run one incremental sync of a connection now',
  help: `Usage: meterflow sync --connection <id> [--connections <dir>] [--to YYYY-MM-DD] [--entities-only]

Snapshots the connection's assets and meters, then fetches usage of every meter from its stored
watermark (or the connection's usageStart) to now. Each chunk and its watermark commit together,
so an interrupted sync resumes where it stopped. Refused when a sync of the connection is already
running in this process. Exit code 0 when the run succeeded, 1 when it was partial or failed.`,
  run: (argv) => runOnce(argv, false),
};

export const backfillCommand: Command = {
  summary: 're-poll a connection for a date range, with a progress bar',
  help: `Usage: meterflow backfill --connection <id> --from YYYY-MM-DD [--to YYYY-MM-DD] [--connections <dir>]

Fetches usage of every meter for [from, to) again, regardless of watermarks (a watermark only
moves forward). Re-polled intervals replace their slots downstream, so nothing is counted twice.`,
  run: (argv) => runOnce(argv, true),
};
