/**
 * The sink's byte bounds against real Kafka and ClickHouse: a family buffer is flushed once it
 * holds batchMaxBytes, long before its row bound or its age, and consumption pauses while the
 * buffer holds maxBufferedBytes (an insert held back) and resumes once it drains. Every row is
 * loaded once in the end.
 */
import { Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { pino } from 'pino';
import type { Logger } from '../../../lib/log.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../lib/config.js';
import { groupLag } from '../../../lib/kafka.js';
import type { UsageBatch } from '../../../schemas/records.js';
import { topicName } from '../../../schemas/topics.js';
import { createChClient, type ClickHouseSink } from '../../../sinks/clickhouse/index.js';
import * as clickhouse from '../../../sinks/clickhouse/index.js';
import { SINK_EVENTS } from '../../../sinks/clickhouse/events.js';
import { clickhouseInsert, type InsertFn } from '../../../sinks/clickhouse/insert.js';
import { readRow } from '../../../sinks/clickhouse/row-binary.js';
import { USAGE_COLUMNS } from '../../../sinks/clickhouse/rows.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually } from '../../support/pipeline.js';
import { createTopicsWithRetry, produceDataset, scalar, T0, type Produced } from './fixtures.js';

const QH = 900_000;
const RECORDS = 40;
const ROWS_PER_RECORD = 96;
const KIB = 1024;

let ctx: TestContext;
let ch: ClickHouseClient;
const sinks: ClickHouseSink[] = [];
const databases: string[] = [];
const clients: ClickHouseClient[] = [];

/** 40 usage batches of one day of quarter-hours each (about 30 KB of row text apiece). */
function usageRecords(): Produced<'usage'>[] {
  return Array.from({ length: RECORDS }, (_, r) => {
    const meter = `bytes-m${r % 4}`;
    const day = Math.floor(r / 4);
    const batch: UsageBatch = {
      connection_id: 'bytes',
      provider: 'test',
      meter_external_id: meter,
      sync_run_id: 'run-bytes',
      unit: 'kWh',
      canonical_unit: 'kWh',
      time_zone: 'Europe/Berlin',
      source_topic: 'raw.usage',
      source_partition: 0,
      source_offset: r,
      intervals: Array.from({ length: ROWS_PER_RECORD }, (_, q) => {
        const start = T0 + day * 86_400_000 + q * QH;
        return {
          start,
          end: start + QH,
          channel: 'consumption' as const,
          value: (r * 100 + q) / 10,
          value_canonical: (r * 100 + q) / 10,
          currency: null,
          estimated: false,
          from_readings: false,
          metadata: {},
        };
      }),
    };
    return { topic: 'usage', key: `bytes/${meter}`, value: batch };
  });
}

interface Insert {
  rows: number;
  bytes: number;
}

/** The real insert, recorded, and held back while `gate` is set. */
function recordedInsert(config: Config, inserts: Insert[], gate: { wait: Promise<void> | null }): InsertFn {
  const client = createChClient(config.clickhouse);
  clients.push(client);
  const insert = clickhouseInsert(client);
  return async (table, body, format) => {
    if (gate.wait) await gate.wait;
    const bytes = body.reduce((s, b) => s + b.length, 0);
    await insert(table, body, format);
    // usage_intervals rows are RowBinary: counted by reading them back.
    const all = Buffer.concat(body);
    let rows = 0;
    for (let at = 0; at < all.length; rows++) at = readRow(USAGE_COLUMNS, all, at).end;
    inserts.push({ rows, bytes });
  };
}

/** A logger whose lines the test reads. */
function capturedLog(): {
  log: Logger;
  events: () => { event?: string; reason?: string }[];
} {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return {
    log: pino<never>({ level: 'info' }, stream),
    events: () => lines.map((l) => JSON.parse(l) as { event?: string; reason?: string }),
  };
}

function ownDatabase(name: string): Config {
  const database = `${ctx.config.clickhouse.database}_${name}`;
  databases.push(database);
  return { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, database } };
}

async function usageLag(group: string): Promise<number> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    const lag = await groupLag(admin, `${group}usage`, topicName(ctx.config.kafka.topicPrefix, 'usage'));
    return lag.reduce((s, p) => s + p.lag, 0);
  } finally {
    await admin.disconnect();
  }
}

const TOTAL_ROWS = RECORDS * ROWS_PER_RECORD;

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  ch = ctx.clickhouse();
  await createTopicsWithRetry(ctx);
  await produceDataset(ctx, usageRecords());
});

afterAll(async () => {
  for (const s of sinks) await s.stop().catch(() => undefined);
  for (const c of clients) await c.close().catch(() => undefined);
  for (const d of databases)
    await ch.command({ query: `DROP DATABASE IF EXISTS ${d}` }).catch(() => undefined);
  await ctx.cleanup();
});

describe('sink byte bounds', () => {
  it('flushes a batch at batchMaxBytes, long before its row bound and its age', async () => {
    const config = ownDatabase('bybytes');
    const group = `${ctx.config.kafka.topicPrefix}bybytes.`;
    const inserts: Insert[] = [];
    const sink = clickhouse.create(
      {
        groupIdPrefix: group,
        families: ['usage'], // Neither rows, age nor catching up ever flush within the test: only bytes can.
        batchMaxRows: 1_000_000,
        batchMaxMs: 600_000,
        flushWhenCaughtUp: false,
        batchMaxBytes: 128 * KIB,
      },
      { ...ctx, config, insert: recordedInsert(config, inserts, { wait: null }) },
    );
    sinks.push(sink);
    await sink.start();
    const db = config.clickhouse.database;
    // Rows arrive in ClickHouse while the sink runs, in several inserts each within the bound.
    expect(
      await eventually(
        async () => (await scalar(ch, `SELECT count() FROM ${db}.usage_intervals`)) >= TOTAL_ROWS / 2,
        60_000,
        200,
      ),
    ).toBe(true);
    expect(inserts.length).toBeGreaterThanOrEqual(2);
    expect(
      await eventually(() => Promise.resolve(sink.stats()[0]!.recordsConsumed === RECORDS), 60_000, 100),
    ).toBe(true);
    for (const i of inserts) {
      expect(i.bytes).toBeLessThanOrEqual(128 * KIB);
      expect(i.rows).toBeLessThan(TOTAL_ROWS);
    }
    // What stays buffered (less than one batch of bytes) goes in on stop; every row once.
    await sink.stop();
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_intervals`)).toBe(TOTAL_ROWS);
    expect(await usageLag(group)).toBe(0);
  });

  it('pauses consumption above maxBufferedBytes while an insert is held back, then resumes', async () => {
    const config = ownDatabase('paused');
    const group = `${ctx.config.kafka.topicPrefix}paused.`;
    const inserts: Insert[] = [];
    let release: () => void = () => undefined;
    const gate: { wait: Promise<void> | null } = { wait: new Promise<void>((r) => (release = r)) };
    const { log, events } = capturedLog();
    const sink = clickhouse.create(
      {
        groupIdPrefix: group,
        families: ['usage'],
        batchMaxRows: 1_000_000,
        batchMaxMs: 600_000,
        flushWhenCaughtUp: false,
        batchMaxBytes: 64 * KIB,
        maxBufferedBytes: 256 * KIB,
        maxBytesPerPartition: 16 * KIB,
      },
      { ...ctx, config, log, insert: recordedInsert(config, inserts, gate) },
    );
    sinks.push(sink);
    await sink.start();
    const stats = () => sink.stats()[0]!;
    // The first insert is held: the buffer fills up to its byte bound and consumption pauses.
    expect(await eventually(() => Promise.resolve(stats().paused), 60_000, 100)).toBe(true);
    const consumed = stats().recordsConsumed;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(stats().recordsConsumed).toBe(consumed);
    expect(stats().paused).toBe(true);
    // Far from everything was read: the pause is what held it.
    expect(consumed).toBeLessThan(RECORDS);
    expect(await usageLag(group)).toBeGreaterThan(0);
    expect(
      events()
        .filter((e) => e.event === SINK_EVENTS.paused)
        .map((e) => e.reason),
    ).toEqual(['buffer']);

    gate.wait = null;
    release();
    // The held insert goes through, the buffer drains, consumption resumes and reads the rest.
    expect(await eventually(() => Promise.resolve(stats().recordsConsumed === RECORDS), 60_000, 100)).toBe(
      true,
    );
    expect(events().some((e) => e.event === SINK_EVENTS.resumed && e.reason === 'buffer')).toBe(true);
    await sink.stop();
    const db = config.clickhouse.database;
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_intervals`)).toBe(TOTAL_ROWS);
    expect(await usageLag(group)).toBe(0);
  });

  it('with maxBufferedBytes below batchMaxBytes, a full buffer is flushed instead of waiting for its age', async () => {
    const config = ownDatabase('smallbuffer');
    const group = `${ctx.config.kafka.topicPrefix}smallbuffer.`;
    const inserts: Insert[] = [];
    const sink = clickhouse.create(
      {
        groupIdPrefix: group,
        families: ['usage'],
        batchMaxRows: 1_000_000,
        batchMaxMs: 600_000,
        flushWhenCaughtUp: false,
        batchMaxBytes: 64 * 1024 * KIB, // Memory bound far below a batch: the buffer can never fill a batch.
        maxBufferedBytes: 128 * KIB,
      },
      { ...ctx, config, insert: recordedInsert(config, inserts, { wait: null }) },
    );
    sinks.push(sink);
    await sink.start();
    const stats = () => sink.stats()[0]!;
    expect(await eventually(() => Promise.resolve(stats().recordsConsumed === RECORDS), 60_000, 100)).toBe(
      true,
    );
    expect(inserts.length).toBeGreaterThanOrEqual(2);
    await sink.stop();
    const db = config.clickhouse.database;
    expect(await scalar(ch, `SELECT count() FROM ${db}.usage_intervals`)).toBe(TOTAL_ROWS);
  });
});
