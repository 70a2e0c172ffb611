/**
 * Helpers for pipeline tests: produce raw envelopes, run the real CLI as a child process (so a
 * test can SIGKILL it), and read the latest aggregates from the compacted topics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readToEnd } from '../../lib/kafka.js';
import { REPO_ROOT } from '../../lib/config.js';
import { topicName, type TopicId, type TopicRecords } from '../../schemas/topics.js';
import type { RawEnvelope, UsageAggregate } from '../../schemas/records.js';
import type { TestContext } from './context.js';
import type { ClickHouseClient } from '@clickhouse/client';
import { deepStrictEqual, ok } from 'node:assert/strict';
import { prefixLag } from '../../cli/quiet.js';

export async function produceRaw(
  ctx: TestContext,
  id: 'rawEntities' | 'rawUsage',
  envelopes: RawEnvelope[],
  batchSize = 40,
): Promise<void> {
  const serde = await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, id);
  const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < envelopes.length; i += batchSize) {
      await producer.send({
        topic: topicName(ctx.config.kafka.topicPrefix, id),
        messages: envelopes
          .slice(i, i + batchSize)
          .map((e) => ({ key: `${e.connection_id}/${e.external_id}`, value: serde.encode(e) })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Produces raw bytes (for poison-message tests). */
export async function produceBytes(
  ctx: TestContext,
  id: TopicId,
  messages: { key: string; value: Buffer }[],
): Promise<void> {
  const producer = ctx.kafka.producer();
  await producer.connect();
  await producer.send({ topic: topicName(ctx.config.kafka.topicPrefix, id), messages });
  await producer.disconnect();
}

export async function readTopic<K extends TopicId>(
  ctx: TestContext,
  id: K,
): Promise<{ key: string; value: TopicRecords[K]; headers: Record<string, string> }[]> {
  const out: { key: string; value: TopicRecords[K]; headers: Record<string, string> }[] = [];
  const raw: { key: string; value: Buffer; headers: Record<string, string> }[] = [];
  await readToEnd(ctx.kafka, topicName(ctx.config.kafka.topicPrefix, id), (m) => {
    if (m.key && m.value) raw.push({ key: m.key.toString(), value: m.value, headers: m.headers });
  });
  for (const r of raw)
    out.push({ key: r.key, value: await ctx.registry.decode<TopicRecords[K]>(r.value), headers: r.headers });
  return out;
}

/** Latest aggregate per (meter, channel, period): the highest version wins, as in ClickHouse. */
export function latestAggregates(records: UsageAggregate[]): Map<string, UsageAggregate> {
  const latest = new Map<string, UsageAggregate>();
  for (const r of records) {
    const k = `${r.connection_id}/${r.meter_external_id}|${r.channel}|${r.period}`;
    const prev = latest.get(k);
    if (!prev || r.version >= prev.version) latest.set(k, r);
  }
  return latest;
}

export interface CliProcess {
  child: ChildProcess;
  /** stdout and stderr interleaved (for failure messages). */
  output(): string;
  /** stdout alone: the command's result (JSON with --json). */
  stdout(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** Runs `meterflow <args>` with the test's prefix and endpoints. */
export function spawnCli(
  ctx: TestContext,
  args: string[],
  env: Record<string, string> = {},
  /** The CLI's entry: the sources through tsx, or a build's dist/cli/main.js (as the image runs). */
  entry = resolve(REPO_ROOT, 'bin/meterflow.js'),
): CliProcess {
  const connectionsDir = env.MF_CONNECTIONS_DIR ?? mkdtempSync(join(tmpdir(), 'mf-conn-'));
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      KAFKA_BROKERS: ctx.config.kafka.brokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.config.registry.url,
      CLICKHOUSE_URL: ctx.config.clickhouse.url,
      CLICKHOUSE_DATABASE: ctx.config.clickhouse.database,
      MF_TOPIC_PREFIX: ctx.config.kafka.topicPrefix,
      MF_TOPIC_PARTITIONS: String(ctx.config.kafka.partitions),
      MF_METRICS_PORT: '0',
      MF_CONNECTIONS_DIR: connectionsDir,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((r) =>
    child.on('exit', (code, signal) => r(code ?? signal ?? -1)),
  );
  return { child, output: () => out, stdout: () => stdout, exited };
}

/** Polls `check` until it returns true or the time is up; returns whether it did. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 1_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return check();
}

/** A process's pino log lines (JSON on stderr), skipping anything else it printed. */
export function logLines(output: string): { time: number; msg: string; [field: string]: unknown }[] {
  const lines: { time: number; msg: string; [field: string]: unknown }[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as { time?: unknown; msg?: unknown };
      if (typeof l.time === 'number' && typeof l.msg === 'string')
        lines.push(l as { time: number; msg: string });
    } catch {
      // a line cut by the kill, or not a log line
    }
  }
  return lines;
}

/**
 * Aggregate keys whose history, in topic order, is not one clean line of versions: a version
 * lower than an earlier one, or one version carried by two different contents (two writers).
 */
export function versionConflicts(records: UsageAggregate[]): string[] {
  const seen = new Map<string, { version: number; content: string }>();
  const bad = new Set<string>();
  for (const r of records) {
    const k = `${r.connection_id}/${r.meter_external_id}|${r.channel}|${r.period}`;
    const content = `${r.value}|${r.interval_count}|${r.estimated_count}`;
    const prev = seen.get(k);
    if (prev && (r.version < prev.version || (r.version === prev.version && content !== prev.content)))
      bad.add(k);
    seen.set(k, { version: r.version, content });
  }
  return [...bad];
}

/**
 * Waits until every consumer group of the test's prefix is at the end of its topics for three
 * polls in a row (one poll a second); returns whether that happened in time.
 */
export async function untilQuiet(ctx: TestContext, timeoutMs = 300_000): Promise<boolean> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    let streak = 0;
    return await eventually(
      async () => {
        streak = (await prefixLag(admin, ctx.config.kafka.topicPrefix)).quiet ? streak + 1 : 0;
        return streak >= 3;
      },
      timeoutMs,
      1_000,
    );
  } finally {
    await admin.disconnect();
  }
}

/** Consumption per `connection/meter|period` from a `*_latest` aggregate view in ClickHouse. */
export async function consumptionTotals(
  ctx: TestContext,
  ch: ClickHouseClient,
  table: 'usage_daily_latest' | 'usage_monthly_latest',
): Promise<Map<string, number>> {
  const rs = await ch.query({
    query: `SELECT connection_id, meter_external_id, period, value FROM ${ctx.config.clickhouse.database}.${table} WHERE channel = 'consumption'`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{
    connection_id: string;
    meter_external_id: string;
    period: string;
    value: number;
  }>();
  return new Map(rows.map((r) => [`${r.connection_id}/${r.meter_external_id}|${r.period}`, Number(r.value)]));
}

/**
 * Asserts the same keys (zero totals may be extra) and values within 1e-6 relative. Uses
 * node:assert, not vitest's expect, so that benchmarks can import this module too.
 */
export function expectSameTotals(actual: Map<string, number>, want: Map<string, number>, what: string): void {
  const missing = [...want.keys()].filter((k) => !actual.has(k));
  const extra = [...actual.keys()].filter((k) => !want.has(k) && (actual.get(k) ?? 0) !== 0);
  deepStrictEqual(
    { missing: missing.slice(0, 10), extra: extra.slice(0, 10) },
    { missing: [], extra: [] },
    what,
  );
  const wrong: string[] = [];
  for (const [k, v] of want) {
    const got = actual.get(k) as number;
    if (Math.abs(got - v) > 1e-6 * Math.max(1, Math.abs(v))) wrong.push(`${k}: ${got} != ${v}`);
  }
  deepStrictEqual(wrong.slice(0, 10), [], what);
}

/** A test file's CLI processes: started with its context and environment, all killed at the end. */
export interface CliRunner {
  /** Starts `meterflow <args>`; `extra` adds to (or overrides) the file's environment. */
  start: (args: string[], extra?: Record<string, string>) => CliProcess;
  /** Runs `meterflow <args>` to its end. */
  run: (
    args: string[],
    extra?: Record<string, string>,
  ) => Promise<{ code: number | string; out: string; stdout: string }>;
  /** Everything the processes printed so far, for an assertion's message. */
  outputs: () => string;
  /** SIGKILLs every process still running (for afterAll). */
  killAll: () => void;
}

/**
 * Waits until `table` holds a total for as many keys as `want` (up to 5 minutes), then until the
 * pipeline is quiet, so the totals read next are final. `outputs` explains a timeout.
 */
export async function untilTotalsLoaded(
  ctx: TestContext,
  ch: ClickHouseClient,
  table: 'usage_daily_latest' | 'usage_monthly_latest',
  want: Map<string, number>,
  outputs: () => string,
): Promise<void> {
  const loaded = await eventually(
    async () => (await consumptionTotals(ctx, ch, table)).size >= want.size,
    300_000,
    2_000,
  );
  ok(loaded, outputs());
  ok(await untilQuiet(ctx), 'the pipeline did not go quiet');
}

/** `ctx` and `env` are read at each start, so a file can set them in its beforeAll. */
export function cliRunner(ctx: () => TestContext, env: () => Record<string, string>): CliRunner {
  const procs: CliProcess[] = [];
  const start = (args: string[], extra: Record<string, string> = {}): CliProcess => {
    const p = spawnCli(ctx(), args, { ...env(), ...extra });
    procs.push(p);
    return p;
  };
  return {
    start,
    run: async (args, extra) => {
      const p = start(args, extra);
      const code = await p.exited;
      return { code, out: p.output(), stdout: p.stdout() };
    },
    outputs: () => procs.map((p) => p.output()).join('\n'),
    killAll: () => {
      for (const p of procs) p.child.kill('SIGKILL');
    },
  };
}
