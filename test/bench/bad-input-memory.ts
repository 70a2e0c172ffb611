/**
 * Benchmark: peak RSS of the processors and of the ClickHouse sink, each in its own process
 * (`meterflow run processors` / `run sinks`), while they consume input whose rows all fail:
 *
 *   (a) 100 raw.usage messages of 3,000 rows each, every row failing one rule (a generic
 *       connection whose usage.fields.value path never matches);
 *   (b) one raw.usage message at the size limit (the largest, gzip-compressed as the pollers
 *       write, that the broker accepts: message.max.bytes), every row failing;
 *   (c) a replay of the topic full of them: the processors' usage group and the sink's groups
 *       reset to the earliest offset and consumed again.
 *
 *   npx tsx test/bench/bad-input-memory.ts [--messages 100] [--rows 3000]
 *
 * Fresh processes per case; the peak is the kernel's VmHWM of each. Prints figures against the
 * 512 MB ceiling; asserts nothing. Uses a fresh topic prefix and ClickHouse database and
 * removes both at the end.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { ClickHouseClient } from '@clickhouse/client';
import { COMPRESSION } from '../../lib/kafka.js';
import type { RawEnvelope } from '../../schemas/records.js';
import { topicName } from '../../schemas/topics.js';
import { createTestContext, type TestContext } from '../support/context.js';
import { spawnCli, type CliProcess } from '../support/pipeline.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '100' },
    rows: { type: 'string', default: '3000' },
  },
});
const MESSAGES = Number(values.messages);
const ROWS = Number(values.rows);
const CEILING_MB = 512;
const CONNECTION = 'bench-bad';
const Q = 15 * 60_000;
const T0 = Date.UTC(2024, 0, 1);

const connection = {
  id: CONNECTION,
  provider: 'generic',
  baseUrls: { production: 'http://127.0.0.1:9' },
  auth: { type: 'none' },
  timeZone: 'UTC',
  meterTypes: { electricity: { type: 'Energy', subtype: 'Off-site Electricity' } },
  generic: {
    format: 'json',
    meters: { path: '/meters', fields: { externalId: 'id', assetId: 'site', type: 'kind', unit: 'unit' } },
    // The provider calls it `reading`: `value` never matches, so every row fails.
    usage: {
      path: '/usage/{meterId}',
      kind: 'consumption',
      fields: { start: 'from', end: 'to', value: 'value' },
    },
  },
};

function envelope(meter: string, rows: number, seed: number): RawEnvelope {
  const items = [];
  for (let i = 0; i < rows; i++) {
    const start = T0 + i * Q;
    items.push({
      from: new Date(start).toISOString(),
      to: new Date(start + Q).toISOString(),
      reading: ((i * 7919 + seed * 104_729) % 100_000) / 1000,
      quality: i % 7 === 0 ? 'estimated' : 'measured',
    });
  }
  return {
    connection_id: CONNECTION,
    provider: 'generic',
    entity_kind: 'usage',
    format: 'generic.usage',
    external_id: meter,
    sync_run_id: 'bench',
    request_url: `http://127.0.0.1:9/usage/${meter}`,
    request_page: null,
    received_at: Date.now(),
    content_type: 'application/json',
    payload: JSON.stringify(items),
    meta: {
      meter_format: 'generic.meter',
      meter_payload: JSON.stringify({ id: meter, site: 'site1', kind: 'electricity', unit: 'kWh' }),
    },
  };
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

/** Peak and current RSS of a process, from the kernel (VmHWM, VmRSS), in bytes. */
function rssOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) =>
    Number(/(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(name)) ?? '')?.[1] ?? 0);
  return { peak: kb('VmHWM:') * 1024, now: kb('VmRSS:') * 1024 };
}

/**
 * Records a group has still to read, per partition. `markers`: the topic is written in
 * transactions, so the last offset of a partition is a commit marker the group never commits past.
 */
async function lagOf(ctx: TestContext, group: string, topic: string, markers: boolean): Promise<number> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    const [high, committed] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId: group, topics: [topic] }),
    ]);
    const at = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]));
    let lag = 0;
    for (const h of high) {
      const c = at.get(h.partition) ?? -1;
      const behind = Number(h.high) - (c < 0 ? Number(h.low) : c);
      lag += Math.max(0, markers && behind > 0 && c >= 0 ? behind - 1 : behind);
    }
    return lag;
  } finally {
    await admin.disconnect();
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function count(ch: ClickHouseClient, db: string, sql: string): Promise<number> {
  const rs = await ch.query({ query: sql.replaceAll('{db}', db), format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: string }>();
  return Number(row?.n ?? 0);
}

interface CaseResult {
  name: string;
  processors: { peak: number; seconds: number };
  sink: { peak: number; seconds: number };
}

async function main(): Promise<void> {
  const ctx = createTestContext({ partitions: 3 });
  const dir = mkdtempSync(join(tmpdir(), 'mf-bench-bad-'));
  writeFileSync(join(dir, `${CONNECTION}.json`), JSON.stringify(connection));
  const prefix = ctx.config.kafka.topicPrefix;
  const db = ctx.config.clickhouse.database;
  const rawUsage = topicName(prefix, 'rawUsage');
  const quarantine = topicName(prefix, 'quarantine');
  const usageGroup = `${prefix}processors.usage`;
  const sinkQuarantineGroup = `${prefix}clickhouse-sink.quarantine`;
  const ch = ctx.clickhouse();
  const procs: CliProcess[] = [];
  const results: CaseResult[] = [];
  let quarantinedBefore = 0;

  const produce = async (envs: RawEnvelope[]) => {
    const serde = await ctx.registry.registerTopic(prefix, 'rawUsage');
    const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      for (const e of envs) {
        await producer.send({
          topic: rawUsage,
          compression: COMPRESSION,
          messages: [{ key: `${e.connection_id}/${e.external_id}`, value: serde.encode(e) }],
        });
      }
    } finally {
      await producer.disconnect();
    }
  };

  /** Runs both components in their own processes until both read their input to its end. */
  const runCase = async (name: string, distinct: number) => {
    const start = Date.now();
    const processors = spawnCli(ctx, ['run', 'processors', '--stages', 'usage'], { MF_CONNECTIONS_DIR: dir });
    const sink = spawnCli(ctx, ['run', 'sinks'], { MF_CONNECTIONS_DIR: dir });
    procs.push(processors, sink);
    let processorsSeconds = 0;
    try {
      await until(`${name}: the processors to read raw.usage`, async () => {
        const done = (await lagOf(ctx, usageGroup, rawUsage, false)) === 0;
        if (done) processorsSeconds = (Date.now() - start) / 1000;
        return done;
      });
      await until(`${name}: the sink to load ${distinct} quarantine records`, async () => {
        const n = await count(
          ch,
          db,
          `SELECT count() AS n FROM {db}.quarantine_latest WHERE stage = 'usage'`,
        );
        return n >= distinct && (await lagOf(ctx, sinkQuarantineGroup, quarantine, true)) === 0;
      });
      const sinkSeconds = (Date.now() - start) / 1000;
      results.push({
        name,
        processors: { peak: rssOf(processors.child.pid!).peak, seconds: processorsSeconds },
        sink: { peak: rssOf(sink.child.pid!).peak, seconds: sinkSeconds },
      });
    } catch (err) {
      console.error(processors.output().slice(-3_000));
      console.error(sink.output().slice(-3_000));
      throw err;
    } finally {
      for (const p of [processors, sink]) p.child.kill('SIGTERM');
      await Promise.all([processors.exited, sink.exited]);
    }
  };

  try {
    await ctx.createTopics();

    // (a) many messages of 3,000 failing rows.
    const envs = Array.from({ length: MESSAGES }, (_, i) => envelope(`m${i % 10}`, ROWS, i));
    const serde = await ctx.registry.registerTopic(prefix, 'rawUsage');
    const one = serde.encode(envs[0]!).length;
    await produce(envs);
    console.log(
      `(a) ${MESSAGES} messages of ${ROWS} rows, ${(one / 1024).toFixed(0)} KiB each (Avro), every row failing`,
    );
    await runCase(`(a) ${MESSAGES} x ${ROWS} failing rows`, MESSAGES);
    quarantinedBefore += MESSAGES;

    // (b) one message at the size limit: the largest gzip-compressed record the broker accepts.
    let rows = ROWS;
    const compressed = (e: RawEnvelope) => gzipSync(serde.encode(e), { level: 1 }).length;
    // Grow until the compressed envelope is just under the broker's default message.max.bytes.
    const LIMIT = 1_048_588;
    while (compressed(envelope('big', rows * 2, 7)) < LIMIT * 0.97) rows *= 2;
    let lo = rows;
    let hi = rows * 2;
    while (hi - lo > Math.max(50, lo / 200)) {
      const mid = Math.floor((lo + hi) / 2);
      if (compressed(envelope('big', mid, 7)) < LIMIT * 0.97) lo = mid;
      else hi = mid;
    }
    const big = envelope('big', lo, 7);
    await produce([big]);
    console.log(
      `(b) one message of ${lo} rows: ${mb(serde.encode(big).length)} MB Avro, ${(compressed(big) / 1024).toFixed(0)} KiB gzip (limit ${(LIMIT / 1024).toFixed(0)} KiB), every row failing`,
    );
    await runCase(`(b) one message at the size limit (${lo} rows)`, MESSAGES + 1);
    quarantinedBefore += 1;

    // (c) replay: both groups back to the start of their topics, consumed again.
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      await admin.resetOffsets({ groupId: usageGroup, topic: rawUsage, earliest: true });
      await admin.resetOffsets({ groupId: sinkQuarantineGroup, topic: quarantine, earliest: true });
    } finally {
      await admin.disconnect();
    }
    console.log(`(c) replay of raw.usage (${quarantinedBefore} messages) and of the quarantine topic`);
    await runCase('(c) replay of the topic', quarantinedBefore);

    const records = await count(
      ch,
      db,
      `SELECT count() AS n FROM {db}.quarantine_latest WHERE stage = 'usage'`,
    );
    console.log(
      `\nquarantine records (latest, distinct ids): ${records} for ${quarantinedBefore} failing messages`,
    );
    console.log(`peak RSS per process and case (ceiling ${CEILING_MB} MB):`);
    for (const r of results) {
      const line = (what: string, x: { peak: number; seconds: number }) =>
        `  ${r.name.padEnd(44)} ${what.padEnd(11)} ${mb(x.peak).padStart(5)} MB  ${x.peak / 1024 / 1024 < CEILING_MB ? 'under' : 'OVER'} ${CEILING_MB} MB  (${x.seconds.toFixed(1)} s)`;
      console.log(line('processors', r.processors));
      console.log(line('sink', r.sink));
    }
    console.log(
      '  before this change (review reliability-2026-12, H2): one 255 KB envelope of 3,000 failing rows made 731 MiB of quarantine in one transaction',
    );
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    await ctx.cleanup();
  }
}

await main();
