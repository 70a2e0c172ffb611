/**
 * `meterflow status`: per connection the last sync, the age of its last success, watermarks and
 * errors; per consumer group the lag; quarantine counts by reason. Tables, or --json.
 */
import type { Kafka } from 'kafkajs';
import { loadConfig, type Config } from '../lib/config.js';
import { abortable, committedLag, createKafka, readToEnd } from '../lib/kafka.js';
import { AvroRegistry } from '../lib/registry.js';
import { QUARANTINE_HEADERS, topicName } from '../schemas/topics.js';
import { openFromHeaders, readRedriveMarks } from './quarantine.js';
import type { SyncRun, SyncState } from '../schemas/records.js';
import { commandDeadline, parse, timeoutOption, type Command } from './args.js';
import { formatAge, table, terminal } from './terminal.js';

export interface StatusReport {
  connections: {
    connection_id: string;
    last_run: SyncRun | null;
    /** When the latest succeeded run finished (ms since epoch), and how long ago at collection. */
    last_success_at: number | null;
    last_success_age_seconds: number | null;
    scopes: number;
    oldest_watermark: string | null;
    newest_watermark: string | null;
  }[];
  groups: { group: string; topic: string; lag: number; state: string; members: number }[];
  quarantine: Record<string, number>;
}

export interface StatusOptions {
  /** Default: loadConfig(). */
  config?: Config;
  /** The command's deadline: every connect, lookup and read races it. */
  signal?: AbortSignal;
}

/** Decodes a topic's records one at a time as they are read: nothing but `onRecord`'s keeps. */
async function readDecoded<T>(
  kafka: Kafka,
  registry: AvroRegistry,
  topic: string,
  signal: AbortSignal | undefined,
  onRecord: (r: T) => void,
): Promise<void> {
  await readToEnd(
    kafka,
    topic,
    async (m) => {
      if (m.value) onRecord(await abortable(registry.decode<T>(m.value), signal));
    },
    signal ? { signal } : {},
  );
}

export async function collectStatus(options: StatusOptions = {}): Promise<StatusReport> {
  const { signal } = options;
  const config = options.config ?? loadConfig();
  const prefix = config.kafka.topicPrefix;
  const kafka = createKafka(config, '-cli');
  const registry = AvroRegistry.fromConfig(config);
  const admin = kafka.admin();
  const connecting = admin.connect();
  try {
    await abortable(connecting, signal);
    const topics = new Set(await abortable(admin.listTopics(), signal));

    // Latest run per connection and latest state per scope, kept as the records stream by.
    const lastRun = new Map<string, SyncRun>();
    const lastSuccess = new Map<string, number>();
    if (topics.has(topicName(prefix, 'syncRuns'))) {
      await readDecoded<SyncRun>(kafka, registry, topicName(prefix, 'syncRuns'), signal, (r) => {
        if (r.status === 'succeeded' && r.finished_at !== null)
          lastSuccess.set(r.connection_id, Math.max(lastSuccess.get(r.connection_id) ?? 0, r.finished_at));
        const prev = lastRun.get(r.connection_id);
        if (
          !prev ||
          r.started_at > prev.started_at ||
          (r.started_at === prev.started_at && r.finished_at !== null)
        )
          lastRun.set(r.connection_id, r);
      });
    }
    const latestState = new Map<string, SyncState>();
    if (topics.has(topicName(prefix, 'syncState'))) {
      await readDecoded<SyncState>(kafka, registry, topicName(prefix, 'syncState'), signal, (s) =>
        latestState.set(`${s.connection_id}/${s.scope}`, s),
      );
    }
    const ids = new Set([...lastRun.keys(), ...[...latestState.values()].map((s) => s.connection_id)]);
    const collectedAt = Date.now();
    const connections = [...ids].sort().map((id) => {
      const success = lastSuccess.get(id) ?? null;
      const marks = [...latestState.values()]
        .filter((s) => s.connection_id === id && s.watermark)
        .map((s) => s.watermark!)
        .sort();
      return {
        connection_id: id,
        last_run: lastRun.get(id) ?? null,
        last_success_at: success,
        last_success_age_seconds:
          success === null ? null : Math.max(0, Math.round((collectedAt - success) / 1000)),
        scopes: [...latestState.values()].filter((s) => s.connection_id === id).length,
        oldest_watermark: marks[0] ?? null,
        newest_watermark: marks[marks.length - 1] ?? null,
      };
    });

    const groups: StatusReport['groups'] = [];
    const listed = (await abortable(admin.listGroups(), signal)).groups.filter((g) =>
      g.groupId.startsWith(prefix),
    );
    const described =
      listed.length > 0
        ? (await abortable(admin.describeGroups(listed.map((g) => g.groupId)), signal)).groups
        : [];
    for (const g of described) {
      const offsets = await abortable(admin.fetchOffsets({ groupId: g.groupId }), signal);
      for (const t of offsets) {
        if (!topics.has(t.topic)) continue;
        const lags = await committedLag(kafka, admin, g.groupId, t.topic, signal ? { signal } : {});
        const lag = lags.reduce((n, p) => n + p.lag, 0);
        groups.push({ group: g.groupId, topic: t.topic, lag, state: g.state, members: g.members.length });
      }
    }

    // Open records counted from the dead-letter headers: no value is decoded or kept; a first
    // pass finds the redrive marks. A record without headers cannot tell and counts as open.
    const quarantine: Record<string, number> = {};
    const quarantineTopic = topicName(prefix, 'quarantine');
    if (topics.has(quarantineTopic)) {
      const marks = await readRedriveMarks(kafka, quarantineTopic, {}, signal);
      await readToEnd(
        kafka,
        quarantineTopic,
        (m) => {
          if (openFromHeaders(m, marks) === false) return;
          const reason = m.headers[QUARANTINE_HEADERS.reason] ?? 'unknown';
          quarantine[reason] = (quarantine[reason] ?? 0) + 1;
        },
        signal ? { signal } : {},
      );
    }
    return { connections, groups, quarantine };
  } finally {
    // After a deadline the connect may still be pending: disconnect whenever it settles.
    const closing = connecting.then(
      () => admin.disconnect(),
      () => undefined,
    );
    if (!signal?.aborted) await closing;
  }
}

/** To the minute, UTC: "2024-03-01 00:00". */
function when(t: number | string): string {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().slice(0, 16).replace('T', ' ');
}

/** The report as tables for a person; `--json` prints the report itself. */
export function renderStatus(report: StatusReport): string[] {
  const out: string[] = ['Connections'];
  if (report.connections.length === 0) out.push('  (no sync has run yet)');
  else
    out.push(
      ...table(
        [
          'connection',
          'last run',
          'started (UTC)',
          'last success',
          'entities',
          'intervals',
          'errors',
          'watermarks',
        ],
        report.connections.map((c) => {
          const r = c.last_run;
          return [
            c.connection_id,
            r ? `${r.status} (${r.mode})` : 'never',
            r ? when(r.started_at) : '-',
            c.last_success_age_seconds === null
              ? 'never'
              : `${formatAge(c.last_success_age_seconds * 1000)} ago`,
            r?.entities ?? 0,
            r?.intervals ?? 0,
            r?.errors ?? 0,
            `${c.scopes} scope(s) ${c.oldest_watermark ? when(c.oldest_watermark) : '-'} .. ${c.newest_watermark ? when(c.newest_watermark) : '-'}`,
          ];
        }),
      ),
    );
  for (const c of report.connections)
    for (const e of c.last_run?.error_messages.slice(0, 3) ?? [])
      out.push(`  ${c.connection_id} error: ${e}`);
  out.push('', 'Consumer groups (lag: records still to read; transaction markers are not lag)');
  if (report.groups.length === 0) out.push('  (none)');
  else
    out.push(
      ...table(
        ['group', 'topic', 'lag', 'state', 'members'],
        report.groups.map((g) => [g.group, g.topic, g.lag, g.state, g.members]),
      ),
    );
  out.push('', 'Quarantine (open records by reason)');
  const reasons = Object.entries(report.quarantine).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (reasons.length === 0) out.push('  (empty)');
  else out.push(...table(['reason', 'records'], reasons));
  return out;
}

export const statusCommand: Command = {
  summary: 'last sync and watermarks per connection, lag per consumer group, quarantine by reason',
  help: `Usage: meterflow status [--json] [--timeout SECONDS]

Lag counts the records a group has still to read: from its first unread record to the end of
each topic as a read_committed consumer sees it. Transaction markers behind the committed offset
are not lag, so a group that read all of a transactional topic shows 0.
Quarantine counts the open records (not redriven since) by their mf.error.reason header. "last success" is how long ago
the connection's latest succeeded sync finished. --json prints the same report for machines.
--timeout bounds the whole command, connecting included (default 60 s; CLI_TIMEOUT after it).`,
  async run(argv) {
    const { values } = parse(argv, { json: { type: 'boolean' }, ...timeoutOption }, false);
    const deadline = commandDeadline('meterflow status', values.timeout, 60);
    let report: StatusReport;
    try {
      report = await collectStatus({ signal: deadline.signal });
    } finally {
      deadline.clear();
    }
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    for (const line of renderStatus(report)) terminal().line(line);
    return 0;
  },
};
