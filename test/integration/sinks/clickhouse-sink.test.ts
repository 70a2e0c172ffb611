/**
 * The ClickHouse sink against real Kafka, the registry and ClickHouse: migrations, loading every
 * table family, ground truth from the topics, quarantine of bad records (bisecting a refused
 * batch), replays converging, and the drain on stop.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../lib/config.js';
import { groupLag, readToEnd } from '../../../lib/kafka.js';
import type { QuarantineRecord } from '../../../schemas/records.js';
import { QUARANTINE_HEADERS, topicName, type TopicId, type TopicRecords } from '../../../schemas/topics.js';
import { migrate, MIGRATIONS, type ClickHouseSink } from '../../../sinks/clickhouse/index.js';
import * as clickhouse from '../../../sinks/clickhouse/index.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually } from '../../support/pipeline.js';
import {
  createTopicsWithRetry,
  makeDataset,
  produceDataset,
  rows,
  scalar,
  sinkLag,
  snapshotViews,
  truthFrom,
  type Truth,
} from './fixtures.js';

let ctx: TestContext;
let ch: ClickHouseClient;
let db: string;
const sinks: ClickHouseSink[] = [];

/** Every record of a topic that decodes, in partition order. */
async function readDecoded<K extends TopicId>(
  id: K,
): Promise<{ key: string; value: TopicRecords[K]; headers: Record<string, string> }[]> {
  const raw: { key: string; value: Buffer; headers: Record<string, string> }[] = [];
  await readToEnd(ctx.kafka, topicName(ctx.config.kafka.topicPrefix, id), (m) => {
    if (m.value) raw.push({ key: m.key?.toString() ?? '', value: m.value, headers: m.headers });
  });
  const out: { key: string; value: TopicRecords[K]; headers: Record<string, string> }[] = [];
  for (const r of raw) {
    try {
      out.push({
        key: r.key,
        value: await ctx.registry.decode<TopicRecords[K]>(r.value),
        headers: r.headers,
      });
    } catch {
      // not decodable: the sink quarantines it
    }
  }
  return out;
}

async function runSinkUntilCaughtUp(
  groupIdPrefix: string,
  extra: Record<string, unknown> = {},
): Promise<ClickHouseSink> {
  const sink = clickhouse.create(
    { groupIdPrefix, batchMaxRows: 1_000, batchMaxMs: 200, retryMaxMs: 1_000, ...extra },
    { ...ctx },
  );
  sinks.push(sink);
  const t0 = Date.now();
  await sink.start();
  ctx.log.info({ ms: Date.now() - t0 }, 'sink started');
  // Caught up when no group lags and the sink's own quarantine records have been loaded too.
  const ok = await eventually(
    async () => (await sinkLag(ctx, groupIdPrefix)) === 0 && (await sinkLag(ctx, groupIdPrefix)) === 0,
    90_000,
    500,
  );
  expect(ok).toBe(true);
  ctx.log.info({ ms: Date.now() - t0 }, 'sink caught up');
  return sink;
}

/** A usage-only sink whose batches never fill and never age within a test. */
function usageSinkWithoutTimer(
  config: Config,
  groupIdPrefix: string,
  extra: Record<string, unknown> = {},
): ClickHouseSink {
  return clickhouse.create(
    { groupIdPrefix, families: ['usage'], batchMaxRows: 1_000_000, batchMaxMs: 600_000, ...extra },
    { ...ctx, config },
  );
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  db = ctx.config.clickhouse.database;
  ch = ctx.clickhouse();
  await createTopicsWithRetry(ctx);
});

afterAll(async () => {
  for (const s of sinks) await s.stop().catch(() => undefined);
  await ctx.cleanup();
});

describe('migrations', () => {
  it('create every table and view once; running again is a no-op', async () => {
    const first = await migrate(ch, db);
    expect(first.applied).toEqual(MIGRATIONS.map((m) => m.version));
    const second = await migrate(ch, db);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(MIGRATIONS.map((m) => m.version));
    const tables = (
      await rows<{ name: string; engine: string }>(
        ch,
        `SELECT name, engine FROM system.tables WHERE database = '${db}' ORDER BY name`,
      )
    ).map((t) => `${t.name}:${t.engine}`);
    for (const t of [
      'assets',
      'meters',
      'meter_mappings',
      'usage_intervals',
      'usage_daily',
      'usage_monthly',
      'quarantine',
      'sync_runs',
    ]) {
      expect(tables).toContain(`${t}:ReplacingMergeTree`);
      expect(tables).toContain(`${t}_latest:View`);
    }
    expect(tables).toContain('meters_mapped:View');
    expect(await scalar(ch, `SELECT count() FROM ${db}.schema_migrations`)).toBe(MIGRATIONS.length);
  });
});

describe('loading the topics', () => {
  let truth: Truth;
  let firstSnapshot: Record<string, string[]>;

  it('loads every family; counts and sums equal the topic contents', async () => {
    await produceDataset(ctx, makeDataset({ connections: 2, metersPerConnection: 6, days: 3, bad: true }));
    await runSinkUntilCaughtUp(`${ctx.config.kafka.topicPrefix}g1.`);

    // Read concurrently: each read joins a throw-away consumer group, which takes seconds.
    const ids = [
      'usage',
      'assets',
      'meters',
      'meterMappings',
      'usageDaily',
      'usageMonthly',
      'syncRuns',
    ] as const;
    const read = await Promise.all(ids.map((id) => readDecoded(id)));
    const topics = Object.fromEntries(ids.map((id, i) => [id, read[i]])) as Parameters<typeof truthFrom>[0];
    truth = truthFrom(topics);

    // Usage: one row per slot, the last delivery's value.
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_intervals_latest`)).toBe(truth.slots);
    expect(await scalar(ch, `SELECT sum(value) FROM ${db}.usage_intervals_latest`)).toBeCloseTo(
      truth.valueSum,
      6,
    );
    const perMeter = await rows<{ m: string; v: number }>(
      ch,
      `SELECT concat(connection_id, '/', meter_external_id) AS m, sum(value) AS v FROM ${db}.usage_intervals_latest GROUP BY m ORDER BY m`,
    );
    expect(new Map(perMeter.map((r) => [r.m, Number(r.v)]))).toEqual(truth.perMeter);
    // Rows of every delivery are stored (corrections, the duplicate batch) until merges collapse
    // them; the view shows one row per slot either way.
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_intervals`)).toBeGreaterThanOrEqual(truth.slots);

    // Entities: latest state, deactivated ones visible.
    const assets = await rows<{ k: string; name: string; active: number }>(
      ch,
      `SELECT concat(connection_id, '/', external_id) AS k, name, active FROM ${db}.assets_latest ORDER BY k`,
    );
    expect(assets.map((a) => [a.k, a.name, Number(a.active)])).toEqual(
      [...truth.assets.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, a]) => [k, a.name, a.active ? 1 : 0]),
    );
    expect(await scalar(ch, `SELECT count() FROM ${db}.assets_latest WHERE active = 0`)).toBe(2);
    const meters = await rows<{
      k: string;
      active: number;
      internal_meter_id: string | null;
      meter_type: string;
    }>(
      ch,
      `SELECT concat(connection_id, '/', external_id) AS k, active, internal_meter_id, meter_type FROM ${db}.meters_mapped ORDER BY k`,
    );
    expect(meters.length).toBe(truth.meters.size);
    for (const m of meters) {
      const t = truth.meters.get(m.k)!;
      expect(Number(m.active)).toBe(t.active ? 1 : 0);
      expect(m.meter_type).toBe(t.meter_type);
      expect(m.internal_meter_id).toBe(truth.mappings.get(m.k) ?? null);
    }
    expect(meters.filter((m) => m.internal_meter_id === null).length).toBe(2); // the removed mappings

    // Aggregates: the highest version per (meter, channel, period).
    for (const [table, expected] of [
      ['usage_daily_latest', truth.daily],
      ['usage_monthly_latest', truth.monthly],
    ] as const) {
      expect(await scalar(ch, `SELECT count() FROM ${db}.${table}`)).toBe(expected.size);
      const sum = [...expected.values()].reduce((s, a) => s + a.value, 0);
      expect(await scalar(ch, `SELECT sum(value) FROM ${db}.${table}`)).toBeCloseTo(sum, 6);
      const versions = [...expected.values()].reduce((s, a) => s + a.version, 0);
      expect(await scalar(ch, `SELECT sum(version) FROM ${db}.${table}`)).toBe(versions);
    }

    // Sync runs: the final status.
    const runs = await rows<{ sync_run_id: string; status: string; finished_at: string | null }>(
      ch,
      `SELECT sync_run_id, status, finished_at FROM ${db}.sync_runs_latest ORDER BY sync_run_id`,
    );
    expect(runs.map((r) => r.status)).toEqual([...truth.runs.values()].map((r) => r.status));
    expect(runs.every((r) => r.finished_at !== null)).toBe(true);

    firstSnapshot = await snapshotViews(ch, db);
  });

  it('quarantines what ClickHouse refuses or cannot be decoded, and stores the rest of the batch', async () => {
    const q = await rows<{
      reason_code: string;
      stage: string;
      source_topic: string;
      record_index: number | null;
      original_size: number;
      detail: string | null;
    }>(
      ch,
      `SELECT reason_code, stage, source_topic, record_index, original_size, detail FROM ${db}.quarantine_latest WHERE stage = 'sink' ORDER BY reason_code, source_topic, record_index`,
    );
    const usageTopic = topicName(ctx.config.kafka.topicPrefix, 'usage');
    const metersTopic = topicName(ctx.config.kafka.topicPrefix, 'meters');
    expect(
      q.map((r) => [r.reason_code, r.source_topic, r.record_index === null ? null : Number(r.record_index)]),
    ).toEqual([
      ['NORM_DECODE_FAILED', usageTopic, null],
      ['SINK_INSERT_REJECTED', metersTopic, null], // meter_type 'Gas' refused by the Enum8 column
      // One record for the batch's two refused intervals, its first refused interval as index:
      // 5 (channel 'steam', bisected out of the batch) and 7 (NaN, refused before the insert).
      ['SINK_INSERT_REJECTED', usageTopic, 5],
    ]);
    const intervals = q.find(
      (r) => r.source_topic === usageTopic && r.reason_code === 'SINK_INSERT_REJECTED',
    )!;
    const detail = JSON.parse(intervals.detail!) as {
      rows: number;
      rejected: number;
      first: { index: number }[];
    };
    expect(detail).toMatchObject({ rows: 12, rejected: 2 });
    expect(detail.first.map((f) => f.index)).toEqual([5, 7]);
    expect(q.every((r) => Number(r.original_size) > 0)).toBe(true);
    // The 10 good intervals of that batch are stored.
    expect(
      await scalar(
        ch,
        `SELECT count() FROM ${db}.usage_intervals_latest WHERE meter_external_id = 'm2' AND sync_run_id = 'run-bad'`,
      ),
    ).toBe(10);
    // The other stages' quarantine records are loaded as they are.
    expect(await scalar(ch, `SELECT count() FROM ${db}.quarantine_latest WHERE stage = 'validate'`)).toBe(2);

    // On the quarantine topic: original bytes, coordinates and the dead-letter headers.
    const onTopic = (await readDecoded('quarantine')).filter((r) => r.value.stage === 'sink');
    expect(onTopic.length).toBe(3);
    for (const r of onTopic) {
      const rec: QuarantineRecord = r.value;
      expect(r.headers[QUARANTINE_HEADERS.reason]).toBe(rec.reason_code);
      expect(r.headers[QUARANTINE_HEADERS.stage]).toBe('sink');
      expect(r.headers[QUARANTINE_HEADERS.topic]).toBe(rec.source_topic);
      expect(r.headers[QUARANTINE_HEADERS.partition]).toBe(String(rec.source_partition));
      expect(r.headers[QUARANTINE_HEADERS.offset]).toBe(String(rec.source_offset));
      expect(r.headers[QUARANTINE_HEADERS.connection]).toBe('conn0');
      expect(rec.original.length).toBeGreaterThan(0);
    }
    const decodeFailure = onTopic.find((r) => r.value.reason_code === 'NORM_DECODE_FAILED')!;
    expect(decodeFailure.value.original.toString()).toBe('this is not avro');
  });

  it('replaying every topic twice (new consumer groups from the beginning) leaves the latest views unchanged', async () => {
    const inserted = (s: ClickHouseSink) => s.stats().map((f) => [f.family, f.rowsInserted, f.quarantined]);
    const first = sinks.splice(0)[0]!;
    await first.stop();
    for (const round of ['g2.', 'g3.']) {
      const sink = await runSinkUntilCaughtUp(`${ctx.config.kafka.topicPrefix}${round}`);
      await sink.stop();
      sinks.splice(sinks.indexOf(sink), 1);
      // Every row went in again (the quarantine family also loads the sink's new quarantine records)...
      expect(inserted(sink).filter(([f]) => f !== 'quarantine')).toEqual(
        inserted(first).filter(([f]) => f !== 'quarantine'),
      );
    }
    // ...and the views show exactly what they showed after the first load.
    expect(await snapshotViews(ch, db)).toEqual(firstSnapshot);
    // The sort keys are the facts' identities: merging collapses the duplicates in the tables too.
    for (const t of [
      'usage_intervals',
      'usage_daily',
      'usage_monthly',
      'assets',
      'meters',
      'meter_mappings',
      'sync_runs',
      'quarantine',
    ]) {
      await ch.command({ query: `OPTIMIZE TABLE ${db}.${t} FINAL` });
      expect(await scalar(ch, `SELECT count() FROM ${db}.${t}`)).toBe(
        await scalar(ch, `SELECT count() FROM ${db}.${t}_latest`),
      );
    }
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_intervals`)).toBe(truth.slots);
  });

  it('drains on stop: buffered rows are inserted and their offsets committed', async () => {
    const group = `${ctx.config.kafka.topicPrefix}drain.`;
    // Never flushes by itself within the test: only stop() can get the rows in.
    const sink = usageSinkWithoutTimer(ctx.config, group, { flushWhenCaughtUp: false });
    await sink.start();
    const records = (await readDecoded('usage')).length + 1; // + the undecodable one
    expect(
      await eventually(() => Promise.resolve(sink.stats()[0]!.recordsConsumed >= records), 60_000, 200),
    ).toBe(true);
    expect(sink.stats()[0]!.rowsInserted).toBe(0);
    await sink.stop();
    expect(sink.stats()[0]!.rowsInserted).toBeGreaterThan(0);
    const admin = ctx.kafka.admin();
    await admin.connect();
    const lag = await groupLag(
      admin,
      `${group}usage`,
      topicName(ctx.config.kafka.topicPrefix, 'usage'),
    ).finally(() => admin.disconnect());
    expect(lag.reduce((s, r) => s + r.lag, 0)).toBe(0);
  });

  it('flushes a partial batch once it has read every partition to its end, without waiting for batchMaxMs', async () => {
    const group = `${ctx.config.kafka.topicPrefix}caughtup.`;
    const database = `${db}_caughtup`;
    const config = { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, database } };
    const sink = usageSinkWithoutTimer(config, group);
    sinks.push(sink);
    try {
      await sink.start();
      // What the earlier tests loaded from the same topic.
      const rows = await scalar(ch, `SELECT count() FROM ${db}.usage_intervals_latest`);
      expect(rows).toBeGreaterThan(0);
      expect(
        await eventually(
          async () => (await scalar(ch, `SELECT count() FROM ${database}.usage_intervals_latest`)) === rows,
          60_000,
          200,
        ),
      ).toBe(true);
      expect(sink.stats()[0]!.flushes).toBeGreaterThan(0);
    } finally {
      await sink.stop();
      await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    }
  });
});
