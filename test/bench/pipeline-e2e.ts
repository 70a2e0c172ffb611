/**
 * Benchmark: the whole pipeline, each component in its own `meterflow` process as in
 * production: the Arcadia simulator (15-minute data) → `meterflow backfill` → `meterflow run
 * processors` → `meterflow run sinks` → ClickHouse, on the real services.
 *
 *   npx tsx test/bench/pipeline-e2e.ts [--meters 200] [--days 365] [--partitions 6] [--intervals normalized|raw]
 *        [--processors per-stage|one]  one process per processors stage (as deploy/k8s), or all in one
 *        [--heap MB|default]            --max-old-space-size of every meterflow process: 384 as the image's
 *                                       NODE_OPTIONS (deploy/k8s: 256); default: Node's, sized from the machine
 *        [--concurrency N]              the poller's sync.concurrency
 *        [--profile DIR]                CPU profiles of the staged processes (cpu-profile.mjs)
 *        [--cli built|source]           built: `npm run build`, then every process runs dist/cli/main.js
 *                                       as the container image does (default); source: bin/meterflow.js (tsx)
 *
 * 200 meters x 365 days (6.8 M intervals) takes about 11 minutes on the 2-core development machine.
 * 1. Stage by stage, on one topic prefix: the backfill alone, then the processors alone over the
 *    full raw.usage, then the sinks alone over the processors' output. Each gives a rate.
 * 2. The references, in the same run over the same data: a bare kafkajs consumer over raw.usage,
 *    the same consumer decoding every envelope and parsing its JSON payload, and clickhouse-client
 *    inserting the rows the sinks wrote (same tables, RowBinary, native protocol).
 * 3. End to end, on a fresh prefix and database: processors and sinks running, then the backfill;
 *    done when every group is at the end of its topics and ClickHouse holds every interval.
 * Intervals are the provider's quarter-hours of consumption that reached ClickHouse. Peak RSS is
 * each process's VmHWM, with the V8 heap and the memory outside it from its /metrics; CPU is user +
 * system time per interval; the time of transactions and inserts comes from the debug log; load
 * averages are printed because the machine may be shared. Prints figures and the targets; asserts
 * nothing. Removes its topics,
 * consumer groups and databases at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Admin } from 'kafkajs';
import type { ClickHouseClient } from '@clickhouse/client';
import { createChClient } from '../../sinks/clickhouse/client.js';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../../lib/config.js';
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
    // A folder: the staged processes write CPU profiles there (cpu-profile.mjs).
    profile: { type: 'string' },
    // per-stage: `run processors --stages X` per stage, as deploy/k8s runs them; one: all stages in one process.
    processors: { type: 'string', default: 'per-stage' },
    // The poller's meter batches fetched in parallel (the connection's sync.concurrency).
    concurrency: { type: 'string' },
    // MB: --max-old-space-size of every meterflow process, as the image's NODE_OPTIONS sets it;
    // `default` leaves Node's, which on a 24 GiB machine lets garbage grow far past 512 MB.
    heap: { type: 'string', default: '384' },
    // built: the compiled CLI (dist/), as the image runs it; source: the sources through tsx.
    cli: { type: 'string', default: 'built' },
  },
});
const METERS = Number(values.meters);
const DAYS = Number(values.days);
const FROM = '2024-01-01';
const TO = new Date(Date.parse(`${FROM}T00:00:00Z`) + DAYS * 86_400_000).toISOString().slice(0, 10);
const CONNECTION = 'bench-arcadia';
const HERE = dirname(fileURLToPath(import.meta.url));
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
  /** V8 heap and memory outside it (Buffers) at the highest RSS seen on /metrics. */
  memory?: { rss: number; heap: number; external: number };
}

let sim: ArcadiaSimulator | undefined;
/** The part of the run under way, for the error message. */
let phase = 'start';
const contexts: TestContext[] = [];
const procs: Proc[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mf-bench-e2e-'));

function spawn(ctx: TestContext, name: string, args: string[], env: Record<string, string> = {}): Proc {
  const nodeOptions = [
    process.env.NODE_OPTIONS ?? '',
    values.heap !== 'default' ? `--max-old-space-size=${values.heap}` : '',
    values.profile && name.endsWith('(staged)') ? `--import ${join(HERE, 'cpu-profile.mjs')}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const profile: Record<string, string> = {
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    ...(values.profile && name.endsWith('(staged)')
      ? { MF_BENCH_CPU_PROFILE: join(values.profile, `${name.split(' ')[0]}.cpuprofile`) }
      : {}),
  };
  const entry =
    values.cli === 'built' ? join(REPO_ROOT, 'dist/cli/main.js') : join(REPO_ROOT, 'bin/meterflow.js');
  const cli = spawnCli(
    ctx,
    args,
    {
      ...profile,
      MF_CONNECTIONS_DIR: dir,
      BENCH_ARC_ID: sim!.options.clientId,
      BENCH_ARC_SECRET: sim!.options.clientSecret,
      ...env,
    },
    entry,
  );
  const p: Proc = { name, cli, peak: undefined, cpu: undefined, spawnedAt: Date.now() };
  const sample = () => {
    const pid = cli.child.pid;
    if (pid === undefined) return;
    p.peak = peakRssOf(pid) ?? p.peak;
    p.cpu = cpuSecondsOf(pid) ?? p.cpu;
  };
  const timer = setInterval(sample, 200);
  void cli.exited.then(() => clearInterval(timer));
  const port = args[args.indexOf('--metrics-port') + 1];
  if (args.includes('--metrics-port')) {
    const metrics = setInterval(() => void sampleMemory(p, Number(port)), 500);
    void cli.exited.then(() => clearInterval(metrics));
  }
  procs.push(p);
  return p;
}

/** A free TCP port on loopback, for a child's /metrics. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const metric = (text: string, name: string): number =>
  Number(new RegExp(`^meterflow_process_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

/** Keeps the heap and external memory of the sample with the highest RSS. */
async function sampleMemory(p: Proc, port: number): Promise<void> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const rss = metric(text, 'process_resident_memory_bytes');
    if (Number.isNaN(rss) || (p.memory && p.memory.rss >= rss)) return;
    p.memory = {
      rss,
      heap: metric(text, 'nodejs_heap_size_total_bytes'),
      external: metric(text, 'nodejs_external_memory_bytes'),
    };
  } catch {
    // not listening yet, or gone
  }
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

/**
 * Where a staged process's time went, from its debug log: per processors stage, the batches it
 * committed with the time spent processing them and the time of their transactions (sends,
 * offsets, commit); for the sinks, the flushes (insert and offset commit) per table family.
 */
function timings(p: Proc): string[] {
  const stages = new Map<
    string,
    { batches: number; messages: number; processMs: number; commitMs: number }
  >();
  const families = new Map<string, { flushes: number; rows: number; ms: number }>();
  for (const l of logLines(p.cli.output())) {
    if (l.msg === 'batch committed' && typeof l.stage === 'string') {
      const s = stages.get(l.stage) ?? { batches: 0, messages: 0, processMs: 0, commitMs: 0 };
      s.batches++;
      s.messages += Number(l.messages);
      s.processMs += Number(l.processMs);
      s.commitMs += Number(l.commitMs);
      stages.set(l.stage, s);
    } else if (l.msg === 'flushed' && typeof l.family === 'string') {
      const f = families.get(l.family) ?? { flushes: 0, rows: 0, ms: 0 };
      f.flushes++;
      f.rows += Number(l.rows);
      f.ms += Number(l.ms);
      families.set(l.family, f);
    }
  }
  const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return [
    ...[...stages].map(
      ([stage, s]) =>
        `${stage}: ${fmt(s.batches)} transactions for ${fmt(s.messages)} messages; processing ${sec(s.processMs)}, transactions ${sec(s.commitMs)} (${(s.commitMs / s.batches).toFixed(0)} ms each)`,
    ),
    ...[...families].map(
      ([family, f]) =>
        `${family}: ${fmt(f.flushes)} flushes of ${fmt(f.rows / f.flushes)} rows on average, ${sec(f.ms)} in inserts and commits (${(f.ms / f.flushes).toFixed(0)} ms each)`,
    ),
  ];
}

/** `uptime`'s load averages: the machine is shared, figures mean little without them. */
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

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
      ...(values.concurrency ? { sync: { concurrency: Number(values.concurrency) } } : {}),
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
    const file = join(dir, `${name}.bin`);
    const url = new URL(ctx.config.clickhouse.url);
    url.searchParams.set('query', `SELECT * FROM ${db}.${name} FORMAT RowBinary`);
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
    const r = clickhouseClientInsert(ctx.config, `${db}.ref_${name}`, file, 'FORMAT RowBinary');
    rmSync(file, { force: true });
    if ('error' in r) return `clickhouse-client failed on ${name}: ${r.error}`;
    rows += n;
    seconds += r.seconds;
  }
  return { rows, seconds };
}

/** The processors as production runs them: one process per stage (the default), or all in one. */
async function spawnProcessors(ctx: TestContext, suffix: string, logLevel: string): Promise<Proc[]> {
  if (values.processors === 'one')
    return [await spawnRun(ctx, `processors${suffix}`, ['processors'], logLevel)];
  const out: Proc[] = [];
  for (const stage of ['entities', 'usage', 'aggregate'])
    out.push(await spawnRun(ctx, `${stage}${suffix}`, ['processors', '--stages', stage], logLevel));
  return out;
}

/** `meterflow run ...` with its /metrics on a port of its own (for the memory breakdown). */
async function spawnRun(ctx: TestContext, name: string, args: string[], logLevel: string): Promise<Proc> {
  const port = await freePort();
  return spawn(ctx, name, ['run', ...args, '--metrics-port', String(port)], { LOG_LEVEL: logLevel });
}

/** When the last of the processes logged that it runs (all joined their groups), or undefined. */
function allRunning(ps: Proc[]): number | undefined {
  const times = ps.map((p) => loggedAt(p, 'running'));
  return times.every((t) => t !== undefined) ? Math.max(...times) : undefined;
}

/** CPU seconds of the local ClickHouse and Kafka servers, when their pid files are readable. */
function serviceCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, file] of [
    ['ClickHouse', '.local/clickhouse/clickhouse.pid'],
    ['Kafka', '.local/kafka/kafka.pid'],
  ] as const) {
    try {
      const cpu = cpuSecondsOf(Number(readFileSync(join(REPO_ROOT, file), 'utf8').trim()));
      if (cpu !== undefined) out[name] = cpu;
    } catch {
      // services given by the environment: not on this machine, or not ours to read
    }
  }
  return out;
}

/** CPU seconds each local service used since `before`, as "name N s". */
function cpuSince(before: Record<string, number>, after = serviceCpu()): string[] {
  return Object.keys(after)
    .filter((k) => before[k] !== undefined)
    .map((k) => `${k} ${(after[k]! - before[k]!).toFixed(1)} s`);
}

async function main(): Promise<void> {
  if (values.cli === 'built')
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
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
    `pipeline end to end: ${METERS} meters x ${DAYS} days of 15-minute data (Arcadia ${values.intervals} intervals), ${values.partitions} partitions, processors ${values.processors === 'one' ? 'in one process' : 'one process per stage'}`,
  );
  console.log(
    values.heap === 'default'
      ? "every meterflow process runs with Node's default heap limit"
      : `every meterflow process runs with --max-old-space-size=${values.heap} (the image's NODE_OPTIONS: 384)`,
  );
  console.log(
    `the CLI: ${values.cli === 'built' ? 'compiled (npm run build; dist/cli/main.js, as the image runs it)' : 'sources through tsx (bin/meterflow.js)'}`,
  );
  console.log(`load average at the start: ${load()}`);

  // 1. Stage by stage.
  phase = 'stage by stage';
  const staged = createTestContext({ partitions: Number(values.partitions) });
  contexts.push(staged);
  await staged.createTopics();
  const prefix = staged.config.kafka.topicPrefix;
  const admin = staged.kafka.admin();
  await admin.connect();
  try {
    await ok(spawn(staged, 'migrate', ['migrate']));
    const simCpu = process.cpuUsage();
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
    const simCpuSeconds = (({ user, system }) => (user + system) / 1e6)(process.cpuUsage(simCpu));

    const proc = await spawnProcessors(staged, ' (staged)', 'debug');
    const procStarted = Math.min(...proc.map((p) => p.spawnedAt));
    let usageDone: number | undefined;
    await until(async () => {
      usageDone ??= (await caughtUp(admin, processorGroups(prefix).slice(1, 2))) ? Date.now() : undefined;
      return caughtUp(admin, processorGroups(prefix));
    }, 'processors caught up');
    const procDone = Date.now();
    const procSeconds = (procDone - procStarted) / 1000;
    const procReady = allRunning(proc);
    for (const p of proc) await stop(p);

    const sinkServicesBefore = serviceCpu();
    const sink = await spawnRun(staged, 'sinks (staged)', ['sinks'], 'debug');
    await until(() => caughtUp(admin, sinkGroups(prefix)), 'sinks caught up');
    const sinkDone = Date.now();
    const sinkServices = cpuSince(sinkServicesBefore);
    const sinkSeconds = (sinkDone - sink.spawnedAt) / 1000;
    const sinkReady = loggedAt(sink, 'running');
    await stop(sink);
    const intervals = await consumptionRows(staged);
    if (intervals === 0)
      throw new Error(`no intervals reached ClickHouse: ${sink.cli.output().slice(-2000)}`);
    const rows = await clickhouseCount(
      staged,
      `SELECT count() AS n FROM ${staged.config.clickhouse.database}.usage_intervals_latest`,
    );

    // 2. References over the same data.
    phase = 'references: consumers';
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
    phase = 'references: clickhouse-client';
    const chRef = await clickhouseClientReference(staged);

    // 3. End to end on a fresh prefix and database: the long-running components first.
    phase = 'end to end';
    const e2e = createTestContext({ partitions: Number(values.partitions) });
    contexts.push(e2e);
    await e2e.createTopics();
    const e2ePrefix = e2e.config.kafka.topicPrefix;
    await ok(spawn(e2e, 'migrate', ['migrate']));
    const e2eProc = await spawnProcessors(e2e, '', 'debug');
    const e2eSink = await spawnRun(e2e, 'sinks', ['sinks'], 'debug');
    await until(
      () => Promise.resolve(allRunning([...e2eProc, e2eSink]) !== undefined),
      'processors and sinks ready',
      120_000,
    );
    const servicesBefore = serviceCpu();
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
    const servicesAfter = serviceCpu();
    const e2eSeconds = (marks.clickhouse - started) / 1000;
    const e2eIntervals = await consumptionRows(e2e);
    for (const p of e2eProc) await stop(p);
    await stop(e2eSink);

    // Figures.
    phase = 'figures';
    const rate = (s: number) => `${fmt(intervals / s)} intervals/s`;
    const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    // Like the references (timed from their first poll): from the groups joined to caught up.
    const procRate = intervals / ((procReady ? procDone - procReady : procDone - procStarted) / 1000);
    const parseRate = intervals / parseSeconds;
    console.log(
      `\n${fmt(intervals)} intervals (${fmt(rows)} rows with every channel) in ${fmt(messages)} raw.usage messages`,
    );
    console.log('stage by stage (each alone; wall time from process start, then after start-up):');
    console.log(
      `  producers  (meterflow backfill):      ${producerSeconds.toFixed(1)} s  ${rate(producerSeconds)}`,
    );
    console.log(
      `  processors (meterflow run processors): ${procSeconds.toFixed(1)} s  ${rate(procSeconds)}` +
        (procReady
          ? `; after start-up (${secs(procReady - procStarted)}): ${rate((procDone - procReady) / 1000)}`
          : ''),
    );
    if (usageDone && procReady)
      console.log(
        `    the usage stage had read all of raw.usage ${secs(usageDone - procReady)} after start-up: ${rate((usageDone - procReady) / 1000)}`,
      );
    console.log(
      `  sinks      (meterflow run sinks):      ${sinkSeconds.toFixed(1)} s  ${rate(sinkSeconds)}` +
        (sinkReady
          ? `; after start-up (${secs(sinkReady - sink.spawnedAt)}): ${rate((sinkDone - sinkReady) / 1000)}`
          : ''),
    );
    if (sinkServices.length > 0)
      console.log(`    CPU of the local services while the sinks ran alone: ${sinkServices.join(', ')}`);
    console.log('  where the staged processors and sinks spent their time (debug log):');
    for (const line of [...proc.flatMap(timings), ...timings(sink)]) console.log(`    ${line}`);
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
        `  clickhouse-client inserting the sinks' ${fmt(chRef.rows)} rows (RowBinary, native): ${chRef.seconds.toFixed(2)} s  ${fmt(chRef.rows / chRef.seconds)} rows/s = ${rate(chRef.seconds)}`,
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
    console.log('  where the processors and sinks spent their time (debug log):');
    for (const line of [...e2eProc.flatMap(timings), ...timings(e2eSink)]) console.log(`    ${line}`);
    const services = cpuSince(servicesBefore, servicesAfter);
    if (services.length > 0)
      console.log(
        `  CPU of the local services meanwhile (shared with whatever else uses them): ${services.join(', ')}`,
      );
    console.log('processes (peak RSS = VmHWM; CPU = user + system, start-up included):');
    for (const p of procs.filter((x) => x.name !== 'migrate'))
      console.log(
        `  ${p.name.padEnd(22)} peak RSS ${mb(p.peak).padStart(7)}  CPU ${(p.cpu ?? 0).toFixed(1).padStart(6)} s = ${(((p.cpu ?? 0) / intervals) * 1e6).toFixed(1)} µs per interval` +
          (p.memory
            ? `; at its highest RSS seen on /metrics (${mb(p.memory.rss)}): V8 heap ${mb(p.memory.heap)}, outside it ${mb(p.memory.external)}`
            : ''),
      );
    console.log(
      `  simulator (in the bench process) while the staged backfill ran: CPU ${simCpuSeconds.toFixed(1)} s`,
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
    console.log(`load average at the end: ${load()}`);
  } finally {
    await admin.disconnect();
  }
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  // The stack of a socket error names no line of ours: say which part of the run it ended.
  console.error(`failed during ${phase}:`, err);
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
