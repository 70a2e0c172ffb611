/**
 * Scale-out on the real services: a year of 15-minute Arcadia data (duplicated readings, gaps,
 * DST days, late corrections of some days) goes through `meterflow backfill` into three
 * `meterflow run processors` and two `meterflow run sinks` processes sharing 6 partitions.
 * While it flows, a fourth processors process joins, one is SIGKILLed together with one sinks
 * process, and one is stopped with SIGTERM. At the end every daily and monthly total, in the
 * compacted topics and in ClickHouse, equals the simulator's ground truth; no aggregate key has
 * two contents for one version; the quarantine holds exactly the garbage produced on purpose.
 * The test prints how long each rebalance and each state restore took.
 *
 * Size: SCALE_METERS x SCALE_DAYS, default 100 x 366 (about 3.5 M quarter-hours, 1,200 provider
 * chunks); the backfill alone takes about 110 s of it on the shared 2-core machine. Smaller for
 * development: SCALE_METERS=10 SCALE_DAYS=60 (about 80 s, mostly the two 30 s session timeouts
 * after the SIGKILLs).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ClickHouseClient } from '@clickhouse/client';
import { startArcadiaSimulator, type ArcadiaSimulator } from '../../simulators/arcadia.js';
import { localDate } from '../../simulators/common/time.js';
import type { RawEnvelope, UsageAggregate } from '../../schemas/records.js';
import { topicName } from '../../schemas/topics.js';
import { groupLag } from '../../lib/kafka.js';
import { waitUntilQuiet } from '../../cli/quiet.js';
import { createTestContext, type TestContext } from '../support/context.js';
import {
  latestAggregates,
  logLines,
  produceBytes,
  produceRaw,
  readTopic,
  spawnCli,
  versionConflicts,
  type CliProcess,
} from '../support/pipeline.js';

const METERS = Number(process.env.SCALE_METERS ?? 100);
const DAYS = Number(process.env.SCALE_DAYS ?? 366);
const FROM_DAY = '2024-01-01';
const FROM = Date.parse(`${FROM_DAY}T00:00:00Z`);
const TO = FROM + DAYS * 86_400_000;
const TO_DAY = new Date(TO).toISOString().slice(0, 10);
const CONNECTION = 'scale-arcadia';
const PARTITIONS = 6;
const ZONES = ['Europe/Helsinki', 'America/New_York', 'Europe/Berlin', 'America/Los_Angeles', 'UTC'];
/** Undecodable raw.usage messages produced on purpose: the quarantine must hold exactly these. */
const GARBAGE = 4;
const STAGES = ['entities', 'usage', 'aggregate'];
const HOUR = 3_600_000;

let ctx: TestContext;
let sim: ArcadiaSimulator;
let ch: ClickHouseClient;
let admin: Admin;
let dir: string;
const procs: CliProcess[] = [];
/** Late corrections: slot start → corrected import kWh, per meter. */
const corrections = new Map<string, Map<number, number>>();

function cli(args: string[], env: Record<string, string> = {}): CliProcess {
  const p = spawnCli(ctx, args, {
    MF_CONNECTIONS_DIR: dir,
    SCALE_ARC_ID: sim.options.clientId,
    SCALE_ARC_SECRET: sim.options.clientSecret,
    ...env,
  });
  procs.push(p);
  return p;
}
const processors = () => cli(['run', 'processors'], { LOG_LEVEL: 'info' });
const sinks = () => cli(['run', 'sinks']);

async function query<T>(sql: string): Promise<T[]> {
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

/** Local date of an instant, cached per hour (every zone here has whole-hour offsets). */
const dateCache = new Map<string, string>();
function dayOf(zone: string, ms: number): string {
  const hour = Math.floor(ms / HOUR) * HOUR;
  const k = `${zone}@${hour}`;
  let d = dateCache.get(k);
  if (d === undefined) dateCache.set(k, (d = localDate(zone, hour)));
  return d;
}

/** Ground truth from the simulator (with the late corrections): key → value and interval count. */
function groundTruth(): Map<string, { value: number; count: number }> {
  const truth = new Map<string, { value: number; count: number }>();
  const add = (key: string, v: number) => {
    const t = truth.get(key) ?? { value: 0, count: 0 };
    t.value += v;
    t.count += 1;
    truth.set(key, t);
  };
  const t = sim.truth();
  for (const m of t.meters) {
    const fixed = corrections.get(m.id);
    for (const iv of t.intervals(m.id, FROM, TO)) {
      if (iv.missing) continue;
      const day = dayOf(m.timeZone, iv.start);
      const imp = fixed?.get(iv.start) ?? iv.importKwh;
      for (const period of [day, day.slice(0, 7)]) {
        add(`${CONNECTION}/${m.id}|consumption|${period}`, imp);
        if (m.hasSolar) add(`${CONNECTION}/${m.id}|redelivery|${period}`, iv.exportKwh);
      }
    }
  }
  return truth;
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

/** Differences between actual aggregates and the truth, at most `limit` of them, as text. */
function differences(
  actual: Map<string, { value: number; count: number }>,
  truth: Map<string, { value: number; count: number }>,
  limit = 10,
): string[] {
  const out: string[] = [];
  for (const [k, t] of truth) {
    const a = actual.get(k);
    if (!a) out.push(`${k}: missing (truth ${t.value} from ${t.count} intervals)`);
    else if (!close(a.value, t.value) || a.count !== t.count)
      out.push(`${k}: ${a.value} from ${a.count} intervals, truth ${t.value} from ${t.count}`);
    if (out.length >= limit) return out;
  }
  for (const k of actual.keys()) if (!truth.has(k) && out.length < limit) out.push(`${k}: not in the truth`);
  return out;
}

/** The processors.usage group's committed offsets on raw.usage, summed. */
async function usageCommitted(): Promise<number> {
  const prefix = ctx.config.kafka.topicPrefix;
  const offsets = await admin.fetchOffsets({
    groupId: `${prefix}processors.usage`,
    topics: [topicName(prefix, 'rawUsage')],
  });
  return offsets[0]?.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0) ?? 0;
}

/** Waits until every group is Stable with `members` members; returns the ms since `since`. */
async function stableAfter(
  groups: string[],
  members: number,
  since: number,
  timeoutMs = 180_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const { groups: described } = await admin.describeGroups(groups);
    if (described.every((g) => g.state === 'Stable' && g.members.length === members))
      return Date.now() - since;
    last = described.map((g) => `${g.groupId} ${g.state} with ${g.members.length}`).join(', ');
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `not stable with ${members} members within ${timeoutMs} ms: ${last}\n${problems()}\nlogs: ${saveLogs()}`,
  );
}

/** Writes every process's output to a file (for a failure); returns the folder. */
function saveLogs(): string {
  const out = mkdtempSync(join(tmpdir(), 'mf-scale-logs-'));
  procs.forEach((p, i) =>
    writeFileSync(join(out, `${i}-${p.child.spawnargs.slice(2).join('-')}.log`), p.output()),
  );
  return out;
}

/** Warnings and errors the processes logged, for a failure message. */
function problems(): string {
  return procs
    .map((p, i) => {
      const bad = logLines(p.output()).filter((l) => Number(l.level) >= 40);
      return bad.length
        ? `process ${i}: ${bad
            .slice(-5)
            .map((l) => JSON.stringify(l))
            .join('\n')}`
        : '';
    })
    .filter(Boolean)
    .join('\n');
}

/** Raw Arcadia intervals responses for some meter-days, with changed import values. */
function lateCorrections(meterPayloads: Map<string, string>): RawEnvelope[] {
  const t = sim.truth();
  const out: RawEnvelope[] = [];
  const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');
  // DST days of the zones (2024) and an ordinary day, for every fifth meter with data then.
  const days = ['2024-03-10', '2024-03-31', '2024-10-27', '2024-11-03', '2024-02-14'].filter(
    (d) => Date.parse(`${d}T00:00:00Z`) < TO - 2 * 86_400_000,
  );
  t.meters.forEach((m, i) => {
    if (i % 5 !== 0) return;
    for (const day of days) {
      const dayStart = Date.parse(`${day}T00:00:00Z`);
      const readings = [];
      const fixed = corrections.get(m.id) ?? new Map<number, number>();
      for (const iv of t.intervals(m.id, dayStart - 86_400_000, dayStart + 2 * 86_400_000)) {
        if (iv.missing || dayOf(m.timeZone, iv.start) !== day) continue;
        const kwh = Math.round(iv.importKwh * 1500 + 7) / 1000;
        fixed.set(iv.start, kwh);
        readings.push({ startAt: iso(iv.start), endAt: iso(iv.end), direction: 'import', kwh, kw: kwh * 4 });
      }
      if (readings.length === 0) continue;
      corrections.set(m.id, fixed);
      out.push({
        connection_id: CONNECTION,
        provider: 'arcadia',
        entity_kind: 'usage',
        format: 'arcadia.intervals',
        external_id: m.id,
        sync_run_id: 'late-correction',
        request_url: `${sim.url}/plug/intervals/meters/${m.id}`,
        request_page: null,
        received_at: Date.now(),
        content_type: 'application/json',
        payload: JSON.stringify({ meterId: m.id, localTimezone: m.timeZone, readings }),
        meta: { meter_format: 'arcadia.meter', meter_payload: meterPayloads.get(m.id) ?? '' },
      });
    }
  });
  return out;
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: PARTITIONS });
  await ctx.createTopics();
  sim = await startArcadiaSimulator({
    seed: 15,
    credentials: 2,
    sites: Math.max(2, Math.ceil(METERS / 5)),
    meters: METERS,
    from: FROM_DAY,
    days: DAYS,
    intervalsActive: true,
    hourlyShare: 0,
    timeZones: ZONES,
    faults: { duplicateRecords: { every: 50, endpoints: ['intervals'] } },
  });
  dir = mkdtempSync(join(tmpdir(), 'mf-scale-'));
  writeFileSync(
    join(dir, `${CONNECTION}.yaml`),
    stringify({
      id: CONNECTION,
      provider: 'arcadia',
      baseUrls: { production: sim.url },
      auth: {
        type: 'oauth2ClientCredentials',
        tokenUrl: '/oauth2/token',
        clientIdEnv: 'SCALE_ARC_ID',
        clientSecretEnv: 'SCALE_ARC_SECRET',
      },
      timeZone: 'UTC',
      usageStart: FROM_DAY,
      http: {
        timeoutMs: 30_000,
        maxResponseBytes: 16_777_216,
        maxRetries: 4,
        backoffBaseMs: 10,
        backoffMaxMs: 200,
      },
      sync: { concurrency: 4 },
      options: {
        correlationId: sim.truth().credentials.map((c) => c.correlationId),
        intervals: 'raw',
      },
    }),
  );
  ch = ctx.clickhouse();
  admin = ctx.kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  await admin?.disconnect();
  await sim?.close();
  await ctx?.cleanup();
});

describe('scale-out: processes share the partitions through joins, kills and stops', () => {
  it(`keeps every total exact (${METERS} meters x ${DAYS} days)`, { timeout: 900_000 }, async () => {
    const started = Date.now();
    const prefix = ctx.config.kafka.topicPrefix;
    const db = ctx.config.clickhouse.database;
    const processorGroups = STAGES.map((s) => `${prefix}processors.${s}`);
    const migrate = cli(['migrate']);
    expect(await migrate.exited, migrate.output()).toBe(0);

    const p = [processors(), processors(), processors()];
    const s = [sinks(), sinks()];
    const startup = await stableAfter(processorGroups, 3, started);
    const backfill = cli(['backfill', '--connection', CONNECTION, '--from', FROM_DAY, '--to', TO_DAY]);
    let backfillDone = false;
    void backfill.exited.then(() => (backfillDone = true));
    // Garbage mid-stream, keyed like the meters' usage: quarantined once each, never retried.
    await produceBytes(
      ctx,
      'rawUsage',
      Array.from({ length: GARBAGE }, (_, i) => ({
        key: `${CONNECTION}/${sim.truth().meters[i % METERS]!.id}`,
        value: Buffer.from(`not avro ${i}`),
      })),
    );

    // About 12 chunks per meter-year (31-day requests), each in its own transaction: two offsets
    // per chunk with the commit marker. Late-starting meters have fewer.
    const expectedOffsets = 2 * METERS * Math.ceil(DAYS / 31) * 0.85;
    const events: { name: string; at: number; progress: string; rebalanceMs: Record<string, number> }[] = [];
    async function at(fraction: number, name: string, act: () => Promise<Record<string, number>>) {
      for (;;) {
        const done = await usageCommitted();
        if (done >= fraction * expectedOffsets) {
          const lag = await groupLag(admin, `${prefix}processors.usage`, topicName(prefix, 'rawUsage'));
          const behind = lag.reduce((sum, l) => sum + l.lag, 0);
          const progress = `raw.usage read to offset ${done} in all, ${behind} behind, backfill ${backfillDone ? 'done' : 'running'}`;
          // Mid-stream: something is still being produced, or still to be read (a transactional
          // partition read to its end still shows a lag of 1: the commit marker).
          expect(backfillDone && lag.every((l) => l.lag <= 1), `${name}: ${progress}`).toBe(false);
          const at = Date.now();
          events.push({ name, at, progress, rebalanceMs: await act() });
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }

    await at(0.1, 'a fourth processors process joins', async () => {
      const since = Date.now();
      p.push(processors());
      return { processors: await stableAfter(processorGroups, 4, since) };
    });
    const sinkGroups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(`${prefix}clickhouse-sink.`));
    expect(sinkGroups.length).toBeGreaterThan(0);
    await at(0.3, 'one processors and one sinks process SIGKILLed', async () => {
      const since = Date.now();
      p[0]!.child.kill('SIGKILL');
      s[0]!.child.kill('SIGKILL');
      const [proc, sink] = await Promise.all([
        stableAfter(processorGroups, 3, since),
        stableAfter(sinkGroups, 1, since),
      ]);
      return { processors: proc, sinks: sink };
    });
    await at(0.55, 'one processors process stopped with SIGTERM', async () => {
      const since = Date.now();
      p[1]!.child.kill('SIGTERM');
      const proc = await stableAfter(processorGroups, 2, since);
      expect(await p[1]!.exited, p[1]!.output()).toBe(0);
      return { processors: proc };
    });

    expect(await backfill.exited, backfill.output()).toBe(0);
    expect(backfill.output()).toMatch(/succeeded/);
    // Late corrections: some days (DST days among them) again, with other values.
    const meterPayloads = new Map(
      (await readTopic(ctx, 'rawEntities'))
        .filter((e) => e.value.format === 'arcadia.meter')
        .map((e) => [e.value.external_id, e.value.payload]),
    );
    const late = lateCorrections(meterPayloads);
    expect(late.length).toBeGreaterThan(0);
    await produceRaw(ctx, 'rawUsage', late);
    // The rebalances and state restores, from the processes' own logs (printed before the
    // checks, so that a failing run shows them too).
    console.log(`scale-out ${METERS} meters x ${DAYS} days, ${PARTITIONS} partitions`);
    console.log(`  three processors processes' groups stable ${startup} ms after spawning them`);
    for (const [i, e] of events.entries()) {
      const until = events[i + 1]?.at ?? Infinity;
      const logs = p.flatMap((proc) => logLines(proc.output()));
      const assigned = logs.filter(
        (l) => l.msg === 'partitions assigned' && l.time >= e.at && l.time < until,
      );
      const restores = logs.filter(
        (l) => l.msg === 'state restored from changelog' && l.time >= e.at && l.time < until,
      );
      console.log(`  ${e.name} (${e.progress}):`);
      console.log(
        `    groups stable again after ${Object.entries(e.rebalanceMs)
          .map(([k, v]) => `${k} ${v} ms`)
          .join(
            ', ',
          )}; last "partitions assigned" ${assigned.length ? Math.max(...assigned.map((l) => l.time)) - e.at : '-'} ms after`,
      );
      const byStage = new Map<string, { n: number; records: number; ms: number[] }>();
      for (const r of restores) {
        const k = String(r.stage);
        const b = byStage.get(k) ?? { n: 0, records: 0, ms: [] };
        b.n++;
        b.records += Number(r.records);
        b.ms.push(Number(r.ms));
        byStage.set(k, b);
      }
      for (const [stage, b] of byStage)
        console.log(
          `    ${stage}: ${b.n} partition restores, ${b.records} changelog records, ${Math.min(...b.ms)}..${Math.max(...b.ms)} ms each`,
        );
    }

    await waitUntilQuiet(admin, prefix, 300_000).catch(async (err: unknown) => {
      const { groups } = await admin.describeGroups(processorGroups);
      throw new Error(
        `${String(err)}; ${groups.map((g) => `${g.groupId} ${g.state} with ${g.members.length}`).join(', ')}\n${problems()}\nlogs: ${saveLogs()}`,
      );
    });
    const flowedMs = Date.now() - started;

    // Topics: latest aggregates equal the truth; versions never conflict.
    const truth = groundTruth();
    const daily = (await readTopic(ctx, 'usageDaily')).map((r) => r.value);
    const monthly = (await readTopic(ctx, 'usageMonthly')).map((r) => r.value);
    expect(versionConflicts(daily)).toEqual([]);
    expect(versionConflicts(monthly)).toEqual([]);
    const fromTopics = new Map<string, { value: number; count: number }>();
    for (const [k, a] of [...latestAggregates(daily), ...latestAggregates(monthly)] as [
      string,
      UsageAggregate,
    ][])
      fromTopics.set(k, { value: a.value, count: a.interval_count });
    expect(differences(fromTopics, truth)).toEqual([]);
    // DST days were in the data: local days of 92 and 100 quarter-hours.
    const counts = new Set([...latestAggregates(daily).values()].map((a) => a.interval_count));
    if (DAYS >= 310) expect([counts.has(92), counts.has(100)]).toEqual([true, true]);

    // ClickHouse: the same totals, one content per (key, version), one latest row per key.
    const fromClickHouse = new Map<string, { value: number; count: number }>();
    for (const table of ['usage_daily', 'usage_monthly']) {
      const rows = await query<{ k: string; value: number; count: number }>(
        `SELECT concat(connection_id, '/', meter_external_id, '|', toString(channel), '|', period) AS k, value, interval_count AS count FROM ${db}.${table}_latest`,
      );
      for (const r of rows) {
        expect(fromClickHouse.has(r.k), `${table}: two latest rows for ${r.k}`).toBe(false);
        fromClickHouse.set(r.k, { value: Number(r.value), count: Number(r.count) });
      }
      const conflicts = await query<{ k: string }>(
        `SELECT concat(meter_external_id, '|', toString(channel), '|', period, '@', toString(version)) AS k FROM ${db}.${table} GROUP BY connection_id, meter_external_id, channel, period, version HAVING uniqExact(value, interval_count) > 1 LIMIT 10`,
      );
      expect(conflicts, table).toEqual([]);
    }
    expect(differences(fromClickHouse, truth)).toEqual([]);

    // Quarantine: exactly the garbage, once each, in the topic and in ClickHouse.
    const quarantine = await readTopic(ctx, 'quarantine');
    expect(quarantine.map((q) => q.value.reason_code)).toEqual(Array(GARBAGE).fill('NORM_DECODE_FAILED'));
    const chQuarantine = await query<{ reason_code: string; n: string }>(
      `SELECT reason_code, count() AS n FROM ${db}.quarantine_latest GROUP BY reason_code`,
    );
    expect(chQuarantine.map((r) => [r.reason_code, Number(r.n)])).toEqual([['NORM_DECODE_FAILED', GARBAGE]]);

    console.log(
      `  ${truth.size} daily and monthly totals equal the truth; data flowed in ${(flowedMs / 1000).toFixed(0)} s, test ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
  });
});
