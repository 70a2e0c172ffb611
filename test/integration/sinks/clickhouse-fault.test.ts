/**
 * ClickHouse becomes unreachable while records keep arriving, then comes back. The fault is real:
 * a TCP proxy between the sink and the shared ClickHouse drops and refuses connections, then
 * accepts them without ever answering (timeouts), then forwards again. After catch-up every record
 * is in the latest views exactly once, nothing was committed before it was stored, and the sink
 * never crashed.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../lib/config.js';
import { groupLag, readToEnd } from '../../../lib/kafka.js';
import { AvroRegistry } from '../../../lib/registry.js';
import { topicName, type TopicId, type TopicRecords } from '../../../schemas/topics.js';
import { createChClient, type ClickHouseSink } from '../../../sinks/clickhouse/index.js';
import * as clickhouse from '../../../sinks/clickhouse/index.js';
import { clickhouseInsert } from '../../../sinks/clickhouse/insert.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually } from '../../support/pipeline.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';
import {
  createTopicsWithRetry,
  makeDataset,
  produceDataset,
  rows,
  scalar,
  sinkLag,
  truthFrom,
} from './fixtures.js';

let ctx: TestContext;
let ch: ClickHouseClient;
let proxy: TcpProxy;
let sink: ClickHouseSink | undefined;
const extraDatabases: string[] = [];

async function readDecoded<K extends TopicId>(id: K): Promise<{ key: string; value: TopicRecords[K] }[]> {
  const raw: { key: string; value: Buffer }[] = [];
  await readToEnd(ctx.kafka, topicName(ctx.config.kafka.topicPrefix, id), (m) => {
    if (m.value) raw.push({ key: m.key?.toString() ?? '', value: m.value });
  });
  return Promise.all(
    raw.map(async (r) => ({ key: r.key, value: await ctx.registry.decode<TopicRecords[K]>(r.value) })),
  );
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  ch = ctx.clickhouse();
  await createTopicsWithRetry(ctx);
  const target = new URL(ctx.config.clickhouse.url);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 8123) });
});

afterAll(async () => {
  await sink?.stop().catch(() => undefined);
  for (const d of extraDatabases)
    await ch.command({ query: `DROP DATABASE IF EXISTS ${d}` }).catch(() => undefined);
  await proxy?.close();
  await ctx.cleanup();
});

describe('ClickHouse faults', () => {
  it('backs off, pauses, and loads every record exactly once after ClickHouse is back', async () => {
    const config: Config = { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, url: proxy.url } };
    const group = `${config.kafka.topicPrefix}fault.`;
    sink = clickhouse.create(
      {
        groupIdPrefix: group,
        batchMaxRows: 500,
        batchMaxMs: 100,
        retryInitialMs: 50,
        retryMaxMs: 500,
        requestTimeoutMs: 1_500,
      },
      { ...ctx, config },
    );
    await produceDataset(ctx, makeDataset({ wave: 'a', days: 2 }));
    await sink.start();
    expect(await eventually(async () => (await sinkLag(ctx, group)) === 0, 60_000, 300)).toBe(true);
    const db = ctx.config.clickhouse.database;
    const loadedBefore = await scalar(ch, `SELECT count() FROM ${db}.usage_intervals_latest`);
    expect(loadedBefore).toBeGreaterThan(0);

    // 1. Connections dropped and refused while a second wave arrives.
    await proxy.cut('refuse');
    await produceDataset(ctx, makeDataset({ wave: 'b', firstDay: 5, days: 2 }));
    expect(
      await eventually(
        () => Promise.resolve(sink!.stats().some((s) => s.retries > 0 && s.paused)),
        20_000,
        200,
      ),
    ).toBe(true);
    // Nothing of the second wave is committed while ClickHouse cannot store it.
    expect(await sinkLag(ctx, group)).toBeGreaterThan(0);
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_intervals_latest`)).toBe(loadedBefore);

    // 2. Connections accepted but never answered (requests time out), while a third wave arrives.
    await proxy.cut('blackhole');
    await produceDataset(ctx, makeDataset({ wave: 'c', firstDay: 10, days: 2 }));
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await sinkLag(ctx, group)).toBeGreaterThan(0);

    // 3. Back.
    await proxy.restore();
    expect(await eventually(async () => (await sinkLag(ctx, group)) === 0, 90_000, 300)).toBe(true);

    const stats = sink.stats();
    expect(stats.every((s) => s.crashes === 0)).toBe(true);
    expect(stats.every((s) => !s.paused)).toBe(true);
    expect(stats.reduce((n, s) => n + s.retries, 0)).toBeGreaterThan(0);

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
    const truth = truthFrom(Object.fromEntries(ids.map((id, i) => [id, read[i]])));
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_intervals_latest`)).toBe(truth.slots);
    expect(await scalar(ch, `SELECT sum(value) FROM ${db}.usage_intervals_latest`)).toBeCloseTo(
      truth.valueSum,
      6,
    );
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_daily_latest`)).toBe(truth.daily.size);
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_monthly_latest`)).toBe(truth.monthly.size);
    expect(await scalar(ch, `SELECT count() FROM ${db}.assets_latest`)).toBe(truth.assets.size);
    expect(await scalar(ch, `SELECT count() FROM ${db}.meters_latest`)).toBe(truth.meters.size);
    expect(await scalar(ch, `SELECT count() FROM ${db}.sync_runs_latest`)).toBe(truth.runs.size);
    const runs = await rows<{ status: string }>(ch, `SELECT status FROM ${db}.sync_runs_latest`);
    expect(runs.every((r) => r.status === 'succeeded')).toBe(true);
    // Three waves, each with 2 quarantine records from another stage; the sink quarantined nothing.
    expect(await scalar(ch, `SELECT count() FROM ${db}.quarantine_latest`)).toBe(6);
  });

  it('a crash between insert and commit inserts rows twice; the latest views show them once', async () => {
    // Its own database: the first test loaded the same topics already.
    const database = `${ctx.config.clickhouse.database}_crash`;
    extraDatabases.push(database);
    const config: Config = { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, database } };
    const group = `${config.kafka.topicPrefix}crash.`;
    const client = createChClient(config.clickhouse);
    const real = clickhouseInsert(client);
    let hung = 0;
    // The first usage insert reaches ClickHouse, then the process "dies" before it can commit:
    // the insert never returns and stop() gives up after its drain timeout.
    const crashing = clickhouse.create(
      {
        groupIdPrefix: group,
        families: ['usage'],
        batchMaxRows: 100_000,
        batchMaxMs: 300,
        drainTimeoutMs: 500,
      },
      {
        ...ctx,
        config,
        insert: async (table, body, format) => {
          await real(table, body, format);
          hung++;
          await new Promise(() => undefined);
        },
      },
    );
    await crashing.start();
    expect(await eventually(() => Promise.resolve(hung > 0), 30_000, 100)).toBe(true);
    await crashing.stop();
    const inserted = await scalar(ch, `SELECT count() FROM ${database}.usage_intervals`);
    expect(inserted).toBeGreaterThan(0);
    const admin = ctx.kafka.admin();
    await admin.connect();
    const usageTopic = topicName(config.kafka.topicPrefix, 'usage');
    const lagBefore = (await groupLag(admin, `${group}usage`, usageTopic)).reduce((n, p) => n + p.lag, 0);
    expect(lagBefore).toBeGreaterThan(0); // nothing was committed

    // The next process of the same group starts from the last commit and inserts those rows again.
    const recovered = clickhouse.create(
      { groupIdPrefix: group, families: ['usage'], migrate: false },
      { ...ctx, config },
    );
    await recovered.start();
    expect(
      await eventually(
        async () => (await groupLag(admin, `${group}usage`, usageTopic)).every((p) => p.lag === 0),
        60_000,
        300,
      ),
    ).toBe(true);
    await recovered.stop();
    await admin.disconnect();
    await client.close();

    const truth = truthFrom({ usage: await readDecoded('usage') });
    expect(await scalar(ch, `SELECT count() FROM ${database}.usage_intervals_latest`)).toBe(truth.slots);
    expect(await scalar(ch, `SELECT sum(value) FROM ${database}.usage_intervals_latest`)).toBeCloseTo(
      truth.valueSum,
      6,
    );
    // The first flush's rows are in the table twice until a merge; the sort key makes them one
    // (as it does for the slots the topic itself delivers twice: corrections, duplicate batches).
    await ch.command({ query: `OPTIMIZE TABLE ${database}.usage_intervals FINAL` });
    expect(await scalar(ch, `SELECT count() FROM ${database}.usage_intervals`)).toBe(truth.slots);
  });

  it('while the schema registry is unreachable, records wait (paused) instead of being quarantined', async () => {
    const database = `${ctx.config.clickhouse.database}_reg`;
    extraDatabases.push(database);
    const config: Config = { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, database } };
    const group = `${config.kafka.topicPrefix}reg.`;
    const target = new URL(ctx.config.registry.url);
    const regProxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
    try {
      await regProxy.cut('refuse');
      // A registry client with an empty cache: it must ask the registry for every writer schema.
      const registry = new AvroRegistry(`${regProxy.url}${target.pathname}`);
      const s = clickhouse.create(
        { groupIdPrefix: group, families: ['usage'], retryInitialMs: 50 },
        { ...ctx, config, registry },
      );
      await s.start();
      try {
        expect(await eventually(() => Promise.resolve(s.stats()[0]!.paused), 30_000, 100)).toBe(true);
        await new Promise((r) => setTimeout(r, 2_000));
        expect(s.stats()[0]!.recordsConsumed).toBe(0);
        expect(s.stats()[0]!.quarantined).toBe(0);
        await regProxy.restore();
        const admin = ctx.kafka.admin();
        await admin.connect();
        const usageTopic = topicName(config.kafka.topicPrefix, 'usage');
        const caughtUp = await eventually(
          async () => (await groupLag(admin, `${group}usage`, usageTopic)).every((p) => p.lag === 0),
          60_000,
          300,
        );
        await admin.disconnect();
        expect(caughtUp).toBe(true);
        expect(s.stats()[0]!.quarantined).toBe(0);
      } finally {
        await s.stop();
      }
      const truth = truthFrom({ usage: await readDecoded('usage') });
      expect(await scalar(ch, `SELECT count() FROM ${database}.usage_intervals_latest`)).toBe(truth.slots);
    } finally {
      await regProxy.close();
    }
  });

  it('stopping while ClickHouse is unreachable ends the drain at its deadline, cutting the backoff', async () => {
    const database = `${ctx.config.clickhouse.database}_drain`;
    extraDatabases.push(database);
    const config: Config = { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, database } };
    const group = `${config.kafka.topicPrefix}drain.`;
    const lines: { level: number; event?: string; msg: string }[] = [];
    const log = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as never);
          done();
        },
      }),
    );
    await produceDataset(ctx, makeDataset({ wave: 'd', firstDay: 20, days: 1 }));
    let inserts = 0;
    const down = clickhouse.create(
      {
        groupIdPrefix: group,
        families: ['usage'],
        batchMaxMs: 100,
        // Only the drain's abort can end this wait within the test.
        retryInitialMs: 120_000,
        retryMaxMs: 120_000,
        drainTimeoutMs: 500,
      },
      {
        ...ctx,
        config,
        log,
        insert: () => {
          inserts++;
          return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
        },
      },
    );
    await down.start();
    expect(await eventually(() => Promise.resolve(inserts > 0), 30_000, 50)).toBe(true);
    const stopping = Date.now();
    await down.stop();
    expect(Date.now() - stopping).toBeLessThan(10_000);
    const admin = ctx.kafka.admin();
    await admin.connect();
    const usageTopic = topicName(config.kafka.topicPrefix, 'usage');
    const lag = (await groupLag(admin, `${group}usage`, usageTopic)).reduce((n, p) => n + p.lag, 0);
    await admin.disconnect();
    expect(lag).toBeGreaterThan(0); // nothing committed
    const events = lines.map((l) => l.event);
    expect(events).toContain('ch.sink.insert.retry');
    expect(events).toContain('ch.sink.drain.incomplete');
    // The drain ran out of time: no flush failure, no unexpected error.
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});
