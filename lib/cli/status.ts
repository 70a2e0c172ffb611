/**
 * `meterflow status`: per connection the last sync, watermarks and errors; per consumer group
 * the lag; quarantine counts by reason.
 */
import { loadConfig } from '../config.js';
import { createKafka, readToEnd, topicOffsets } from '../kafka.js';
import { AvroRegistry } from '../registry.js';
import { QUARANTINE_HEADERS, topicName } from '../../schemas/topics.js';
import type { SyncRun, SyncState } from '../../schemas/records.js';
import { parse, type Command } from './args.js';

export interface StatusReport {
  connections: {
    connection_id: string;
    last_run: SyncRun | null;
    scopes: number;
    oldest_watermark: string | null;
    newest_watermark: string | null;
  }[];
  groups: { group: string; topic: string; lag: number; state: string; members: number }[];
  quarantine: Record<string, number>;
}

async function readDecoded<T>(
  kafka: ReturnType<typeof createKafka>,
  registry: AvroRegistry,
  topic: string,
): Promise<T[]> {
  const raw: Buffer[] = [];
  await readToEnd(kafka, topic, (m) => {
    if (m.value) raw.push(m.value);
  });
  const out: T[] = [];
  for (const v of raw) out.push(await registry.decode<T>(v));
  return out;
}

export async function collectStatus(): Promise<StatusReport> {
  const config = loadConfig();
  const prefix = config.kafka.topicPrefix;
  const kafka = createKafka(config, '-cli');
  const registry = AvroRegistry.fromConfig(config);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = new Set(await admin.listTopics());
    const runs = topics.has(topicName(prefix, 'syncRuns'))
      ? await readDecoded<SyncRun>(kafka, registry, topicName(prefix, 'syncRuns'))
      : [];
    const states = topics.has(topicName(prefix, 'syncState'))
      ? await readDecoded<SyncState>(kafka, registry, topicName(prefix, 'syncState'))
      : [];

    const lastRun = new Map<string, SyncRun>();
    for (const r of runs) {
      const prev = lastRun.get(r.connection_id);
      if (
        !prev ||
        r.started_at > prev.started_at ||
        (r.started_at === prev.started_at && r.finished_at !== null)
      )
        lastRun.set(r.connection_id, r);
    }
    const latestState = new Map<string, SyncState>();
    for (const s of states) latestState.set(`${s.connection_id}/${s.scope}`, s);
    const ids = new Set([...lastRun.keys(), ...[...latestState.values()].map((s) => s.connection_id)]);
    const connections = [...ids].sort().map((id) => {
      const marks = [...latestState.values()]
        .filter((s) => s.connection_id === id && s.watermark)
        .map((s) => s.watermark!)
        .sort();
      return {
        connection_id: id,
        last_run: lastRun.get(id) ?? null,
        scopes: [...latestState.values()].filter((s) => s.connection_id === id).length,
        oldest_watermark: marks[0] ?? null,
        newest_watermark: marks[marks.length - 1] ?? null,
      };
    });

    const groups: StatusReport['groups'] = [];
    const listed = (await admin.listGroups()).groups.filter((g) => g.groupId.startsWith(prefix));
    const described =
      listed.length > 0 ? (await admin.describeGroups(listed.map((g) => g.groupId))).groups : [];
    for (const g of described) {
      const offsets = await admin.fetchOffsets({ groupId: g.groupId });
      for (const t of offsets) {
        if (!topics.has(t.topic)) continue;
        const high = await topicOffsets(admin, t.topic);
        let lag = 0;
        for (const h of high) {
          const c = Number(t.partitions.find((p) => p.partition === h.partition)?.offset ?? -1);
          lag += c < 0 ? Number(h.high) - Number(h.low) : Math.max(0, Number(h.high) - c);
        }
        groups.push({ group: g.groupId, topic: t.topic, lag, state: g.state, members: g.members.length });
      }
    }

    const quarantine: Record<string, number> = {};
    if (topics.has(topicName(prefix, 'quarantine'))) {
      await readToEnd(kafka, topicName(prefix, 'quarantine'), (m) => {
        const reason = m.headers[QUARANTINE_HEADERS.reason] ?? 'unknown';
        quarantine[reason] = (quarantine[reason] ?? 0) + 1;
      });
    }
    return { connections, groups, quarantine };
  } finally {
    await admin.disconnect();
  }
}

export const statusCommand: Command = {
  summary: 'last sync and watermarks per connection, lag per consumer group, quarantine by reason',
  help: `Usage: meterflow status [--json]

Lag counts records between a group's committed offset and the end of each topic; a group that
reads transactional output stops one short of the end (the final commit marker) when idle.`,
  async run(argv) {
    const { values } = parse(argv, { json: { type: 'boolean' } }, false);
    const report = await collectStatus();
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    console.log('Connections');
    if (report.connections.length === 0) console.log('  (no sync has run yet)');
    for (const c of report.connections) {
      const r = c.last_run;
      const last = r
        ? `${r.status} ${new Date(r.started_at).toISOString()} (${r.mode}; ${r.entities} entities, ${r.intervals} intervals, ${r.requests} requests, ${r.errors} errors)`
        : 'never';
      console.log(
        `  ${c.connection_id}: last sync ${last}; ${c.scopes} watermark scope(s) from ${c.oldest_watermark ?? '-'} to ${c.newest_watermark ?? '-'}`,
      );
      for (const e of r?.error_messages.slice(0, 3) ?? []) console.log(`      error: ${e}`);
    }
    console.log('Consumer groups');
    if (report.groups.length === 0) console.log('  (none)');
    for (const g of report.groups)
      console.log(`  ${g.group} ← ${g.topic}: lag ${g.lag} (${g.state}, ${g.members} member(s))`);
    console.log('Quarantine');
    const reasons = Object.entries(report.quarantine).sort((a, b) => b[1] - a[1]);
    if (reasons.length === 0) console.log('  (empty)');
    for (const [reason, n] of reasons) console.log(`  ${reason.padEnd(28)} ${n}`);
    return 0;
  },
};
