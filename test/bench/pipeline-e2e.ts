/**
 * Benchmark: the whole pipeline, each component in its own `meterflow` process as in
 * production: the Arcadia simulator (15-minute data) → `meterflow backfill` → `meterflow run
 * processors` → `meterflow run sinks` → ClickHouse, on the real services.
 *
 *   npx tsx test/bench/pipeline-e2e.ts [--meters 200] [--days 365] [--partitions 6] [--intervals normalized|raw]
 *
 * 1. Stage by stage, on one topic prefix: the backfill alone, then the processors alone over the
 *    full raw.usage, then the sinks alone over the processors' output. Each gives a rate.
 * 2. The references, in the same run over the same data: a bare kafkajs consumer over raw.usage,
 *    the same consumer decoding every envelope and parsing its JSON payload, and clickhouse-client
 *    inserting the rows the sinks wrote (same tables, JSONEachRow, native protocol).
 * 3. End to end, on a fresh prefix and database: processors and sinks running, then the backfill;
 *    done when every group is at the end of its topics and ClickHouse holds every interval.
 * Intervals are the provider's quarter-hours of consumption that reached ClickHouse. Peak RSS is
 * each process's VmHWM. Prints figures and the targets; asserts nothing. Removes its topics,
 * consumer groups and databases at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Admin } from 'kafkajs';
import type { ClickHouseClient } from '@clickhouse/client';
import { createChClient } from '../../sinks/clickhouse/client.js';
import { stringify } from 'yaml';
import { groupLag, readToEnd } from '../../lib/kafka.js';
import { topicName } from '../../schemas/topics.js';
import { FAMILY_BINDINGS } from '../../sinks/clickhouse/families.js';
import { startArcadiaSimulator, type ArcadiaSimulator } from '../../simulators/arcadia.js';
import { createTestContext, type TestContext } from '../support/context.js';
import { logLines, spawnCli, type CliProcess } from '../support/pipeline.js';
import {
  clickhouseClientInsert,
  consumeAll,
  cpuSecondsOf,
  decodeAndParse,
  fmt,
  hasClickhouseClient,
  peakRssOf,
} from './common.js';

const { values } = parseArgs({
  options: {
    meters: { type: 'string', default: '200' },
    days: { type: 'string', default: '365' },
    partitions: { type: 'string', default: '6' },
    // The Arcadia connector's two forms: normalized (its default: 15-minute arrays) or raw readings.
    intervals: { type: 'string', default: 'normalized' },
  },
});
const METERS = Number(values.meters);
const DAYS = Number(values.days);
const FROM = '2024-01-01';
const TO = new Date(Date.parse(`${FROM}T00:00:00Z`) + DAYS * 86_400_000).toISOString().slice(0, 10);
const CONNECTION = 'bench-arcadia';
const TARGET_E2E = 100_000;
const TARGET_PROCESSORS = 0.6;
const TARGET_RSS = 512 * 1024 * 1024;
const mb = (b: number | undefined) => (b === undefined ? '?' : `${fmt(b / 1024 / 1024)} MB`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A `meterflow` child process with its peak RSS and CPU time sampled until it exits. */
interface Proc {
  name: string;
  cli: CliProcess;
  peak: number | undefined;
  cpu: number | undefined;
  spawnedAt: number;
}

let sim: ArcadiaSimulator | undefined;
const contexts: TestContext[] = [];
const procs: Proc[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mf-bench-e2e-'));

function spawn(ctx: TestContext, name: string, args: string[], env: Record<string, string> = {}): Proc {
  const cli = spawnCli(ctx, args, {
    MF_CONNECTIONS_DIR: dir,
    BENCH_ARC_ID: sim!.options.clientId,
    BENCH_ARC_SECRET: sim!.options.clientSecret,
    ...env,
  });
  const p: Proc = { name, cli, peak: undefined, cpu: undefined, spawnedAt: Date.now() };
  const sample = () => {
    const pid = cli.child.pid;
    if (pid === undefined) return;
    p.peak = peakRssOf(pid) ?? p.peak;
    p.cpu = cpuSecondsOf(pid) ?? p.cpu;
  };
  const timer = setInterval(sample, 200);
  void cli.exited.then(() => clearInterval(timer));
  procs.push(p);
  return p;
}

async function stop(p: Proc): Promise<void> {
  p.cli.child.kill('SIGTERM');
  const code = await p.cli.exited;
  if (code !== 0) throw new Error(`${p.name} exited with ${code}: ${p.cli.output().slice(-2000)}`);
}

async function ok(p: Proc): Promise<number> {
  const code = await p.cli.exited;
  if (code !== 0) throw new Error(`${p.name} exited with ${code}: ${p.cli.output().slice(-2000)}`);
  return (Date.now() - p.spawnedAt) / 1000;
}

/** Every named group has committed and is at the end of its topic (1 left: a commit marker). */
async function caughtUp(admin: Admin, groups: [string, string][]): Promise<boolean> {
  for (const [group, topic] of groups) {
    const lag = await groupLag(admin, group, topic);
    if (lag.some((l) => l.lag > 1)) return false;
  }
  return true;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 1_800_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/** The time the process logged `msg` first (its pino log), or undefined. */
function loggedAt(p: Proc, msg: string): number | undefined {
  return logLines(p.cli.output()).find((l) => l.msg === msg)?.time;
}

/** A ClickHouse client per context with a long timeout: counts over millions of rows on a busy machine. */
const clients = new Map<TestContext, ClickHouseClient>();
function chOf(ctx: TestContext): ClickHouseClient {
  let c = clients.get(ctx);
  if (!c) clients.set(ctx, (c = createChClient(ctx.config.clickhouse, { requestTimeoutMs: 900_000 })));
  return c;
}

async function clickhouseCount(ctx: TestContext, sql: string): Promise<number> {
  const rs = await chOf(ctx).query({ query: sql, format: 'JSONEachRow' });
  const rows = await rs.json<{ n: string }>();
  return Number(rows[0]?.n ?? 0);
}

function consumptionRows(ctx: TestContext): Promise<number> {
  return clickhouseCount(
    ctx,
    `SELECT count() AS n FROM ${ctx.config.clickhouse.database}.usage_intervals_latest WHERE channel = 'consumption'`,
  );
}

/** The sinks' groups of a prefix with the topics they read: one group per table family. */
function sinkGroups(prefix: string): [string, string][] {
  return Object.entries(FAMILY_BINDINGS).flatMap(([family, bindings]) =>
    bindings.map((b): [string, string] => [`${prefix}clickhouse-sink.${family}`, topicName(prefix, b.topic)]),
  );
}

function processorGroups(prefix: string): [string, string][] {
  return [
    [`${prefix}processors.entities`, topicName(prefix, 'rawEntities')],
    [`${prefix}processors.usage`, topicName(prefix, 'rawUsage')],
    [`${prefix}processors.aggregate`, topicName(prefix, 'usage')],
  ];
}

function writeConnection(): void {
  writeFileSync(
    join(dir, `${CONNECTION}.yaml`),
    stringify({
      id: CONNECTION,
      provider: 'arcadia',
      baseUrls: { production: sim!.url },
      auth: {
        type: 'oauth2ClientCredentials',
        tokenUrl: '/oauth2/token',
        clientIdEnv: 'BENCH_ARC_ID',
        clientSecretEnv: 'BENCH_ARC_SECRET',
      },
      timeZone: 'UTC',
      usageStart: FROM,
      http: {
        timeoutMs: 60_000,
        maxResponseBytes: 67_108_864,
        maxRetries: 6,
        backoffBaseMs: 100,
        backoffMaxMs: 5_000,
      },
      options: {
        correlationId: sim!.truth().credentials.map((c) => c.correlationId),
        intervals: values.intervals,
      },
    }),
  );
}

/** Dumps every table the sinks filled and inserts the rows again with clickhouse-client. */
async function clickhouseClientReference(
  ctx: TestContext,
): Promise<{ rows: number; seconds: number } | string> {
  if (!hasClickhouseClient()) return 'clickhouse-client is not installed';
  const db = ctx.config.clickhouse.database;
  const ch = chOf(ctx);
  const tables = await (
    await ch.query({
      query: `SELECT name FROM system.tables WHERE database = '${db}' AND engine LIKE '%MergeTree%' AND name NOT LIKE 'ref_%'`,
      format: 'JSONEachRow',
    })
  ).json<{ name: string }>();
  let rows = 0;
  let seconds = 0;
  for (const { name } of tables) {
    const n = await clickhouseCount(ctx, `SELECT count() AS n FROM ${db}.${name}`);
    if (n === 0) continue;
    const file = join(dir, `${name}.jsonl`);
    const url = new URL(ctx.config.clickhouse.url);
    url.searchParams.set('query', `SELECT * FROM ${db}.${name} FORMAT JSONEachRow`);
    url.searchParams.set('output_format_json_quote_64bit_integers', '0');
    execFileSync('curl', [
      '-sS',
      '--fail',
      '-u',
      `${ctx.config.clickhouse.username}:${ctx.config.clickhouse.password ?? ''}`,
      '-o',
      file,
      url.toString(),
    ]);
    await ch.command({ query: `CREATE TABLE ${db}.ref_${name} AS ${db}.${name}` });
    const r = clickhouseClientInsert(ctx.config, `${db}.ref_${name}`, file);
    rmSync(file, { force: true });
    if ('error' in r) return `clickhouse-client failed on ${name}: ${r.error}`;
    rows += n;
    seconds += r.seconds;
  }
  return { rows, seconds };
}

async function main(): Promise<void> {
  sim = await startArcadiaSimulator({
    seed: 42,
    meters: METERS,
    days: DAYS,
    from: FROM,
    intervalsActive: true,
    hourlyShare: 0,
    timeZones: ['Europe/Helsinki', 'Europe/Berlin', 'America/New_York', 'America/Chicago', 'UTC'],
  });
  writeConnection();
  console.log(
    `pipeline end to end: ${METERS} meters x ${DAYS} days of 15-minute data (Arcadia ${values.intervals} intervals), ${values.partitions} partitions`,
  );

  // 1. Stage by stage.
  const staged = createTestContext({ partitions: Number(values.partitions) });
  contexts.push(staged);
  await staged.createTopics();
  const prefix = staged.config.kafka.topicPrefix;
  const admin = staged.kafka.admin();
  await admin.connect();
  try {
    await ok(spawn(staged, 'migrate', ['migrate']));
    const backfill = spawn(staged, 'backfill (staged)', [
      'backfill',
      '--connection',
      CONNECTION,
      '--from',
      FROM,
      '--to',
      TO,
    ]);
    const producerSeconds = await ok(backfill);

    const proc = spawn(staged, 'processors (staged)', ['run', 'processors'], { LOG_LEVEL: 'info' });
    await until(() => caughtUp(admin, processorGroups(prefix)), 'processors caught up');
    const procDone = Date.now();
    const procSeconds = (procDone - proc.spawnedAt) / 1000;
    const procReady = loggedAt(proc, 'running');
    await stop(proc);

    const sink = spawn(staged, 'sinks (staged)', ['run', 'sinks']);
    await until(() => caughtUp(admin, sinkGroups(prefix)), 'sinks caught up');
    const sinkSeconds = (Date.now() - sink.spawnedAt) / 1000;
    await stop(sink);
    const intervals = await consumptionRows(staged);
    if (intervals === 0)
      throw new Error(`no intervals reached ClickHouse: ${sink.cli.output().slice(-2000)}`);
    const rows = await clickhouseCount(
      staged,
      `SELECT count() AS n FROM ${staged.config.clickhouse.database}.usage_intervals_latest`,
    );

    // 2. References over the same data.
    const rawUsage = topicName(prefix, 'rawUsage');
    const messages = await readToEnd(staged.kafka, rawUsage, () => undefined);
    const bareSeconds = await consumeAll(
      staged.kafka,
      rawUsage,
      `${prefix}bench.bare`,
      messages,
      () => undefined,
    );
    const parseSeconds = await consumeAll(
      staged.kafka,
      rawUsage,
      `${prefix}bench.parse`,
      messages,
      decodeAndParse(staged.registry),
    );
    const chRef = await clickhouseClientReference(staged);

    // 3. End to end on a fresh prefix and database: the long-running components first.
    const e2e = createTestContext({ partitions: Number(values.partitions) });
    contexts.push(e2e);
    await e2e.createTopics();
    const e2ePrefix = e2e.config.kafka.topicPrefix;
    await ok(spawn(e2e, 'migrate', ['migrate']));
    const e2eProc = spawn(e2e, 'processors', ['run', 'processors'], { LOG_LEVEL: 'info' });
    const e2eSink = spawn(e2e, 'sinks', ['run', 'sinks']);
    await until(
      () => Promise.resolve(loggedAt(e2eProc, 'running') !== undefined),
      'processors ready',
      120_000,
    );
    const e2eBackfill = spawn(e2e, 'backfill', [
      'backfill',
      '--connection',
      CONNECTION,
      '--from',
      FROM,
      '--to',
      TO,
    ]);
    const started = e2eBackfill.spawnedAt;
    const marks: Record<string, number> = {};
    const e2eAdmin = e2e.kafka.admin();
    await e2eAdmin.connect();
    try {
      let backfillDone = false;
      void e2eBackfill.cli.exited.then(() => (backfillDone = true));
      // When the processors had read everything the backfill wrote.
      const watch = setInterval(() => {
        if (!backfillDone || marks.processors) return;
        void caughtUp(e2eAdmin, processorGroups(e2ePrefix))
          .then((yes) => {
            if (yes) marks.processors ??= Date.now();
          })
          .catch(() => undefined);
      }, 500);
      await ok(e2eBackfill);
      marks.producers = Date.now();
      // Done when every processors and sinks group has read its topics to the end (a sink
      // commits its offsets only after the insert): no heavy counting in the loop.
      await until(
        () => caughtUp(e2eAdmin, [...processorGroups(e2ePrefix), ...sinkGroups(e2ePrefix)]),
        'end to end caught up',
      );
      marks.clickhouse = Date.now();
      clearInterval(watch);
    } finally {
      await e2eAdmin.disconnect();
    }
    const e2eSeconds = (marks.clickhouse - started) / 1000;
    const e2eIntervals = await consumptionRows(e2e);
    await stop(e2eProc);
    await stop(e2eSink);

    // Figures.
    const rate = (s: number) => `${fmt(intervals / s)} intervals/s`;
    // Like the references (timed from their first poll): from the groups joined to caught up.
    const procRate = intervals / ((procReady ? procDone - procReady : procDone - proc.spawnedAt) / 1000);
    const parseRate = intervals / parseSeconds;
    console.log(
      `\n${fmt(intervals)} intervals (${fmt(rows)} rows with every channel) in ${fmt(messages)} raw.usage messages`,
    );
    console.log('stage by stage (each alone, its process start-up included):');
    console.log(
      `  producers  (meterflow backfill):    ${producerSeconds.toFixed(1)} s  ${rate(producerSeconds)}`,
    );
    console.log(
      `  processors (meterflow run processors): ${procSeconds.toFixed(1)} s  ${rate(procSeconds)}` +
        (procReady
          ? `; after start-up (${((procReady - proc.spawnedAt) / 1000).toFixed(1)} s): ${rate((procDone - procReady) / 1000)}`
          : ''),
    );
    console.log(`  sinks      (meterflow run sinks):   ${sinkSeconds.toFixed(1)} s  ${rate(sinkSeconds)}`);
    console.log('references, same data:');
    console.log(
      `  bare kafkajs consumer over raw.usage:     ${bareSeconds.toFixed(2)} s  ${rate(bareSeconds)}`,
    );
    console.log(
      `  consumer + Avro decode + JSON.parse:      ${parseSeconds.toFixed(2)} s  ${rate(parseSeconds)}`,
    );
    if (typeof chRef === 'string') console.log(`  clickhouse-client: ${chRef}`);
    else
      console.log(
        `  clickhouse-client inserting the sinks' ${fmt(chRef.rows)} rows (JSONEachRow, native): ${chRef.seconds.toFixed(2)} s  ${fmt(chRef.rows / chRef.seconds)} rows/s = ${rate(chRef.seconds)}`,
      );
    console.log(
      'end to end (processors and sinks running, then the backfill; until ClickHouse holds everything):',
    );
    console.log(
      `  ${e2eSeconds.toFixed(1)} s  ${rate(e2eSeconds)}; check: ClickHouse holds ${fmt(e2eIntervals)} intervals (${e2eIntervals === intervals ? 'all' : `expected ${fmt(intervals)}`})`,
    );
    const at = (k: string) => (marks[k] ? `${((marks[k] - started) / 1000).toFixed(1)} s` : '?');
    console.log(
      `  backfill done at ${at('producers')}, processors caught up at ${at('processors')}, ClickHouse complete at ${at('clickhouse')}`,
    );
    console.log('processes (peak RSS = VmHWM; CPU = user + system):');
    for (const p of procs.filter((x) => x.name !== 'migrate'))
      console.log(
        `  ${p.name.padEnd(22)} peak RSS ${mb(p.peak).padStart(7)}  CPU ${(p.cpu ?? 0).toFixed(1)} s`,
      );
    const peak = Math.max(...procs.map((p) => p.peak ?? 0));
    const verdict = (okay: boolean) => (okay ? 'met' : 'NOT met');
    console.log('targets:');
    console.log(
      `  end to end >= ${fmt(TARGET_E2E)} intervals/s: ${fmt(intervals / e2eSeconds)} — ${verdict(intervals / e2eSeconds >= TARGET_E2E)}`,
    );
    console.log(
      `  processors (after start-up) >= ${TARGET_PROCESSORS * 100}% of decode+parse: ${((procRate / parseRate) * 100).toFixed(0)}% — ${verdict(procRate >= TARGET_PROCESSORS * parseRate)}`,
    );
    console.log(`  every process <= 512 MB: largest ${mb(peak)} — ${verdict(peak <= TARGET_RSS)}`);
  } finally {
    await admin.disconnect();
  }
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  for (const p of procs) p.cli.child.kill('SIGKILL');
  await sim?.close();
  for (const c of contexts) {
    await c.cleanup().catch(() => undefined);
    // cleanup() drops the database with a short timeout, which a busy server can miss.
    await chOf(c)
      .command({ query: `DROP DATABASE IF EXISTS ${c.config.clickhouse.database}` })
      .catch((err: unknown) =>
        console.error(`could not drop ${c.config.clickhouse.database}: ${String(err)}`),
      );
    await chOf(c).close();
  }
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
