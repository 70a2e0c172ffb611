/**
 * Canonical units on daily and monthly aggregates, against the real Kafka, registry and
 * ClickHouse: migration 002 on a database that already holds rows of 001, an interrupted run of
 * it, the sink loading value_canonical, the latest views exposing it, and a record written with
 * the first released schema (no canonical fields) loading with NULLs.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageAggregate } from '../../../schemas/records.js';
import type { AvroSchema } from '../../../schemas/avro.js';
import { history } from '../../../schemas/snapshot-history.js';
import { topicName } from '../../../schemas/topics.js';
import { migrate, MIGRATIONS, type ClickHouseSink } from '../../../sinks/clickhouse/index.js';
import * as clickhouse from '../../../sinks/clickhouse/index.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually } from '../../support/pipeline.js';
import { rows, sinkLag } from './fixtures.js';

let ctx: TestContext;
let ch: ClickHouseClient;
let db: string;
let sink: ClickHouseSink | undefined;

beforeAll(async () => {
  ctx = createTestContext({ partitions: 1 });
  db = ctx.config.clickhouse.database;
  ch = ctx.clickhouse();
  await ctx.createTopics();
});

afterAll(async () => {
  await sink?.stop().catch(() => undefined);
  await ctx.cleanup();
});

const T = Date.UTC(2024, 2, 1);

function aggregate(over: Partial<UsageAggregate>): UsageAggregate {
  return {
    connection_id: 'c1',
    meter_external_id: 'm1',
    granularity: 'month',
    period: '2024-03',
    period_start: T,
    time_zone: 'UTC',
    channel: 'consumption',
    value: 2,
    unit: 'MWh',
    interval_count: 2976,
    expected_count: 2976,
    completeness: 1,
    estimated_count: 0,
    prorated: false,
    version: 5,
    updated_at: T + 40 * 86_400_000,
    value_canonical: 2000,
    canonical_unit: 'kWh',
    ...over,
  };
}

describe('migration 002 on a database of 001', () => {
  it('adds the columns to tables holding rows; old rows read NULL; a run cut after its ALTER completes', async () => {
    const m001 = MIGRATIONS.find((m) => m.version === 1)!;
    const m002 = MIGRATIONS.find((m) => m.version === 2)!;
    await migrate(ch, db, undefined, [m001]);
    // A row as the sink wrote it before 002: no canonical columns.
    await ch.insert({
      table: `${db}.usage_daily`,
      format: 'JSONEachRow',
      values: [
        {
          connection_id: 'c0',
          meter_external_id: 'm0',
          channel: 'consumption',
          period: '2024-02-01',
          period_date: '2024-02-01',
          period_start: Date.UTC(2024, 1, 1) / 1000,
          time_zone: 'UTC',
          value: 3.5,
          unit: 'GJ',
          interval_count: 96,
          expected_count: 96,
          completeness: 1,
          estimated_count: 0,
          prorated: 0,
          version: '1',
          updated_at: Date.UTC(2024, 1, 2) / 1000,
          ingest_version: '0',
          kafka_partition: 0,
          kafka_offset: '0',
          kafka_timestamp: Date.UTC(2024, 1, 2) / 1000,
        },
      ],
    });
    // A run that died after the daily ALTER, before recording 002.
    await ch.command({ query: m002.statements(db)[0]! });
    const r = await migrate(ch, db);
    expect(r.applied).toContain(2);

    for (const view of ['usage_daily_latest', 'usage_monthly_latest']) {
      const cols = await rows<{ name: string; type: string }>(ch, `DESCRIBE TABLE ${db}.${view}`);
      expect(cols.map((c) => `${c.name}:${c.type}`)).toEqual(
        expect.arrayContaining(['value_canonical:Nullable(Float64)', 'canonical_unit:Nullable(String)']),
      );
    }
    expect(
      await rows(
        ch,
        `SELECT value, unit, value_canonical, canonical_unit, version FROM ${db}.usage_daily_latest`,
      ),
    ).toEqual([{ value: 3.5, unit: 'GJ', value_canonical: null, canonical_unit: null, version: '1' }]);
  });
});

describe('the sink', () => {
  it('loads value_canonical into the tables and views; a record of the first schema loads with NULL', async () => {
    const prefix = ctx.config.kafka.topicPrefix;
    // The first released schema, as a producer built before the canonical fields would write.
    const [, v1] = history('usageMonthly')[0]!;
    const old = await ctx.registry.register<Omit<UsageAggregate, 'value_canonical' | 'canonical_unit'>>(
      `${topicName(prefix, 'usageMonthly')}-value`,
      v1 as AvroSchema,
    );
    const current = await ctx.registry.registerTopic(prefix, 'usageMonthly');
    const daily = await ctx.registry.registerTopic(prefix, 'usageDaily');
    const { value_canonical: _v, canonical_unit: _u, ...oldRecord } = aggregate({ meter_external_id: 'old' });
    const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.sendBatch({
      topicMessages: [
        {
          topic: topicName(prefix, 'usageMonthly'),
          messages: [
            { key: 'c1/old', value: old.encode(oldRecord) },
            { key: 'c1/m1', value: current.encode(aggregate({})) },
            {
              key: 'c1/m2',
              value: current.encode(
                aggregate({ meter_external_id: 'm2', unit: 'GJ', value: 36, value_canonical: 10_000 }),
              ),
            },
            {
              key: 'c1/m2',
              value: current.encode(
                aggregate({
                  meter_external_id: 'm2',
                  channel: 'cost',
                  unit: 'EUR',
                  value: 900,
                  value_canonical: null,
                  canonical_unit: null,
                }),
              ),
            },
          ],
        },
        {
          topic: topicName(prefix, 'usageDaily'),
          messages: [
            {
              key: 'c1/m1',
              value: daily.encode(
                aggregate({ granularity: 'day', period: '2024-03-04', value: 0.25, value_canonical: 250 }),
              ),
            },
          ],
        },
      ],
    });
    await producer.disconnect();

    const groupIdPrefix = `${prefix}canon.`;
    sink = clickhouse.create(
      { groupIdPrefix, families: ['aggregates'], batchMaxRows: 1_000, batchMaxMs: 200 },
      { ...ctx },
    );
    await sink.start();
    expect(await eventually(async () => (await sinkLag(ctx, groupIdPrefix)) === 0, 60_000, 300)).toBe(true);

    expect(
      await rows(
        ch,
        `SELECT meter_external_id AS m, toString(channel) AS channel, value, unit, value_canonical, canonical_unit ` +
          `FROM ${db}.usage_monthly_latest WHERE connection_id = 'c1' ORDER BY m, channel`,
      ),
    ).toEqual([
      {
        m: 'm1',
        channel: 'consumption',
        value: 2,
        unit: 'MWh',
        value_canonical: 2000,
        canonical_unit: 'kWh',
      },
      {
        m: 'm2',
        channel: 'consumption',
        value: 36,
        unit: 'GJ',
        value_canonical: 10_000,
        canonical_unit: 'kWh',
      },
      { m: 'm2', channel: 'cost', value: 900, unit: 'EUR', value_canonical: null, canonical_unit: null },
      {
        m: 'old',
        channel: 'consumption',
        value: 2,
        unit: 'MWh',
        value_canonical: null,
        canonical_unit: null,
      },
    ]);
    expect(
      await rows(
        ch,
        `SELECT period, value_canonical, canonical_unit FROM ${db}.usage_daily_latest WHERE connection_id = 'c1'`,
      ),
    ).toEqual([{ period: '2024-03-04', value_canonical: 250, canonical_unit: 'kWh' }]);
    // One energy total in kWh across a MWh and a GJ meter, no grouping by unit.
    expect(
      await rows(
        ch,
        `SELECT sum(value_canonical) AS kwh FROM ${db}.usage_monthly_latest ` +
          `WHERE connection_id = 'c1' AND channel = 'consumption' AND canonical_unit = 'kWh'`,
      ),
    ).toEqual([{ kwh: 12_000 }]);
  });
});
