/**
 * Data and checks shared by the ClickHouse sink tests: a deterministic dataset covering every
 * topic the sink loads (with corrections, deactivations, removed mappings, aggregate versions and
 * a few bad records), producing it, waiting for the sink to catch up, and ground truth computed
 * from what is actually on the topics.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin } from 'kafkajs';
import { groupLag } from '../../../lib/kafka.js';
import type {
  Asset,
  Meter,
  MeterMapping,
  QuarantineRecord,
  SyncRun,
  UsageAggregate,
  UsageBatch,
  UsageInterval,
} from '../../../schemas/records.js';
import { entityKey, topicName, type TopicId, type TopicRecords } from '../../../schemas/topics.js';
import { FAMILY_BINDINGS } from '../../../sinks/clickhouse/families.js';
import { FAMILIES } from '../../../sinks/clickhouse/options.js';
import type { TestContext } from '../../support/context.js';

const DAY = 86_400_000;
const QH = 900_000;
/** 2024-03-01T00:00:00Z */
export const T0 = Date.UTC(2024, 2, 1);

export interface Produced<K extends TopicId = TopicId> {
  topic: K;
  key: string;
  value: TopicRecords[K] | Buffer;
}

export interface DatasetOptions {
  connections?: number;
  metersPerConnection?: number;
  days?: number;
  /** Day offset of the first interval (to produce a second, disjoint wave). */
  firstDay?: number;
  /** Include records that the sink must quarantine. */
  bad?: boolean;
  /** Distinguishes ids of a second wave. */
  wave?: string;
}

function interval(
  start: number,
  value: number,
  channel: UsageInterval['channel'] = 'consumption',
): UsageInterval {
  return {
    start,
    end: start + QH,
    channel,
    value,
    value_canonical: channel === 'cost' ? null : value,
    currency: channel === 'cost' ? 'EUR' : null,
    estimated: false,
    from_readings: false,
    metadata: {},
  };
}

function usageBatch(conn: string, meter: string, intervals: UsageInterval[], run: string): UsageBatch {
  return {
    connection_id: conn,
    provider: 'test',
    meter_external_id: meter,
    sync_run_id: run,
    unit: 'kWh',
    canonical_unit: 'kWh',
    time_zone: 'Europe/Berlin',
    source_topic: 'raw.usage',
    source_partition: 0,
    source_offset: 0,
    intervals,
  };
}

/** Records in produce order. Values are exact binary fractions so sums compare exactly. */
export function makeDataset(o: DatasetOptions = {}): Produced[] {
  const connections = o.connections ?? 2;
  const meters = o.metersPerConnection ?? 6;
  const days = o.days ?? 3;
  const firstDay = o.firstDay ?? 0;
  const wave = o.wave ?? 'a';
  const out: Produced[] = [];
  const push = <K extends TopicId>(topic: K, key: string, value: TopicRecords[K] | Buffer): void => {
    out.push({ topic, key, value });
  };
  for (let c = 0; c < connections; c++) {
    const conn = `conn${c}`;
    const run = `run-${wave}-${c}`;
    const startedAt = T0 + firstDay * DAY;
    push('syncRuns', `${conn}/${run}`, syncRun(conn, run, 'running', startedAt, null));
    for (let a = 0; a < 2; a++) {
      const asset: Asset = {
        connection_id: conn,
        provider: 'test',
        external_id: `asset${a}`,
        name: `Building ${c}.${a}`,
        address: a === 0 ? `Street ${c}` : null,
        metadata: { floor: String(a) },
        active: true,
        derived: false,
        first_seen: T0,
        last_seen: startedAt,
        sync_run_id: run,
      };
      push('assets', entityKey(conn, asset.external_id), asset);
    }
    for (let m = 0; m < meters; m++) {
      const id = `m${m}`;
      const meter: Meter = {
        connection_id: conn,
        provider: 'test',
        external_id: id,
        asset_external_id: `asset${m % 2}`,
        meter_type: (['Energy', 'Water', 'Waste'] as const)[m % 3]!,
        meter_subtype: m % 3 === 0 ? 'Electricity' : null,
        unit: 'kWh',
        canonical_unit: 'kWh',
        description: null,
        time_zone: 'Europe/Berlin',
        reading_type: 'consumption',
        rollover_value: null,
        metadata: {},
        active: true,
        first_seen: T0,
        last_seen: startedAt,
        sync_run_id: run,
      };
      push('meters', entityKey(conn, id), meter);
      push('meterMappings', entityKey(conn, id), mapping(conn, id, `INT-${c}-${m}`, startedAt));
      for (let d = firstDay; d < firstDay + days; d++) {
        const day0 = T0 + d * DAY;
        const ivs = Array.from({ length: 96 }, (_, i) =>
          interval(day0 + i * QH, ((m + 1) * (i % 7) + d) / 4),
        );
        if (m === 0) ivs.push(...Array.from({ length: 4 }, (_, i) => interval(day0 + i * QH, 0.5, 'cost')));
        push('usage', entityKey(conn, id), usageBatch(conn, id, ivs, run));
        const total = ivs.filter((x) => x.channel === 'consumption').reduce((s, x) => s + x.value, 0);
        push('usageDaily', entityKey(conn, id), aggregate(conn, id, 'day', day0, total, 1, 96));
      }
      push('usageMonthly', entityKey(conn, id), aggregate(conn, id, 'month', T0, 1, 1, 96 * 31));
    }
    // Corrections: the first day of meter 0 is sent again with other values (replaces its slots),
    // and a batch is delivered twice (at-least-once upstream).
    const day0 = T0 + firstDay * DAY;
    push(
      'usage',
      entityKey(conn, 'm0'),
      usageBatch(
        conn,
        'm0',
        Array.from({ length: 96 }, (_, i) => interval(day0 + i * QH, 2 + i / 8)),
        run,
      ),
    );
    const again = usageBatch(
      conn,
      'm1',
      Array.from({ length: 96 }, (_, i) => interval(day0 + i * QH, ((1 + 1) * (i % 7) + firstDay) / 4)),
      run,
    );
    push('usage', entityKey(conn, 'm1'), again);
    push('usageDaily', entityKey(conn, 'm0'), aggregate(conn, 'm0', 'day', day0, 777.25, 2, 96));
    push('usageMonthly', entityKey(conn, 'm0'), aggregate(conn, 'm0', 'month', T0, 999.5, 2, 96 * 31));
    // A deactivated meter and asset, a removed mapping, a finished run.
    const last = meters - 1;
    const deact = out.find((p) => p.topic === 'meters' && p.key === entityKey(conn, `m${last}`))!
      .value as Meter;
    push('meters', entityKey(conn, `m${last}`), { ...deact, active: false });
    const a1 = out.find((p) => p.topic === 'assets' && p.key === entityKey(conn, 'asset1'))!.value as Asset;
    push('assets', entityKey(conn, 'asset1'), { ...a1, active: false, name: `${a1.name} (closed)` });
    push('meterMappings', entityKey(conn, 'm1'), mapping(conn, 'm1', null, startedAt + 1000));
    push('syncRuns', `${conn}/${run}`, syncRun(conn, run, 'succeeded', startedAt, startedAt + 60_000));
    push('quarantine', `${conn}/x`, {
      id: `validate-${wave}-${c}`,
      connection_id: conn,
      stage: 'validate',
      reason_code: 'VAL_NEGATIVE_CONSUMPTION',
      message: 'consumption is negative',
      source_topic: 'raw.usage',
      source_partition: 0,
      source_offset: c,
      record_index: 3,
      source_key: `${conn}/m0`,
      original: Buffer.from([0, 1, 2, 250]),
      detail: '{"value":-1}',
      quarantined_at: startedAt,
    } satisfies QuarantineRecord);
  }
  if (o.bad) {
    // Not Avro at all: NORM_DECODE_FAILED.
    push('usage', entityKey('conn0', 'm0'), Buffer.from('this is not avro'));
    // Interval 5 has a channel outside the taxonomy: ClickHouse refuses it (Enum8), the batch is
    // bisected and only that interval is quarantined. Interval 7 is NaN: refused before insert.
    const ivs = Array.from({ length: 12 }, (_, i) => interval(T0 + (firstDay + 20) * DAY + i * QH, 1));
    ivs[5] = { ...ivs[5]!, channel: 'steam' as UsageInterval['channel'] };
    ivs[7] = { ...ivs[7]!, value: Number.NaN };
    push('usage', entityKey('conn0', 'm2'), usageBatch('conn0', 'm2', ivs, 'run-bad'));
    // A meter whose type is outside the taxonomy: ClickHouse refuses the row.
    const m = out.find((p) => p.topic === 'meters')!.value as Meter;
    push('meters', entityKey('conn0', 'gas1'), {
      ...m,
      external_id: 'gas1',
      meter_type: 'Gas' as Meter['meter_type'],
    });
  }
  return out;
}

function mapping(conn: string, id: string, internal: string | null, at: number): MeterMapping {
  return { connection_id: conn, external_id: id, internal_meter_id: internal, updated_at: at, source: 'csv' };
}

function syncRun(
  conn: string,
  run: string,
  status: SyncRun['status'],
  started: number,
  finished: number | null,
): SyncRun {
  return {
    connection_id: conn,
    sync_run_id: run,
    provider: 'test',
    mode: 'incremental',
    status,
    started_at: started,
    finished_at: finished,
    range_from: '2024-03-01',
    range_to: null,
    entities: 10,
    usage_chunks: 5,
    intervals: 480,
    requests: 12,
    retries: status === 'running' ? 0 : 1,
    errors: 0,
    error_messages: [],
    snapshot_complete: status === 'succeeded',
  };
}

function aggregate(
  conn: string,
  meter: string,
  g: 'day' | 'month',
  start: number,
  value: number,
  version: number,
  expected: number,
): UsageAggregate {
  const d = new Date(start).toISOString();
  return {
    connection_id: conn,
    meter_external_id: meter,
    granularity: g,
    period: g === 'day' ? d.slice(0, 10) : d.slice(0, 7),
    period_start: start - 3_600_000,
    time_zone: 'Europe/Berlin',
    channel: 'consumption',
    value,
    unit: 'kWh',
    interval_count: 96,
    expected_count: expected,
    completeness: 96 / expected,
    estimated_count: 0,
    prorated: false,
    version,
    updated_at: start + DAY,
    value_canonical: value,
    canonical_unit: 'kWh',
  };
}

/** Produces the dataset in order (one producer, so per-key order is the list order). */
export async function produceDataset(ctx: TestContext, data: Produced[], batchSize = 500): Promise<void> {
  const prefix = ctx.config.kafka.topicPrefix;
  const serdes = new Map<TopicId, { encode(v: unknown): Buffer }>();
  for (const id of new Set(data.map((d) => d.topic))) {
    serdes.set(id, await ctx.registry.registerTopic(prefix, id));
  }
  const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < data.length; i += batchSize) {
      const slice = data.slice(i, i + batchSize);
      await producer.sendBatch({
        topicMessages: slice.map((d) => ({
          topic: topicName(prefix, d.topic),
          messages: [
            { key: d.key, value: Buffer.isBuffer(d.value) ? d.value : serdes.get(d.topic)!.encode(d.value) },
          ],
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Total lag of the sink's groups over all their topics. */
export async function sinkLag(ctx: TestContext, groupPrefix: string): Promise<number> {
  const admin: Admin = ctx.kafka.admin();
  await admin.connect();
  try {
    let lag = 0;
    for (const f of FAMILIES) {
      for (const b of FAMILY_BINDINGS[f]) {
        const rows = await groupLag(admin, groupPrefix + f, topicName(ctx.config.kafka.topicPrefix, b.topic));
        lag += rows.reduce((s, r) => s + r.lag, 0);
      }
    }
    return lag;
  } finally {
    await admin.disconnect();
  }
}

export async function rows<T = Record<string, unknown>>(ch: ClickHouseClient, query: string): Promise<T[]> {
  const rs = await ch.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

export async function scalar(ch: ClickHouseClient, query: string): Promise<number> {
  const r = await rows<Record<string, unknown>>(ch, query);
  return Number(Object.values(r[0] ?? {})[0]);
}

/** Every `*_latest` view and meters_mapped, as sorted JSON lines (a snapshot to compare). */
export const LATEST_VIEWS: Record<string, { order: string; exclude?: string[] }> = {
  assets_latest: { order: 'connection_id, external_id' },
  meters_latest: { order: 'connection_id, external_id' },
  meter_mappings_latest: { order: 'connection_id, external_id' },
  meters_mapped: { order: 'connection_id, external_id' },
  usage_intervals_latest: {
    order: 'connection_id, meter_external_id, channel, interval_start, interval_end',
  },
  usage_daily_latest: { order: 'connection_id, meter_external_id, channel, period' },
  usage_monthly_latest: { order: 'connection_id, meter_external_id, channel, period' },
  // quarantined_at is when the sink quarantined: a replay quarantines the same input again (same id).
  quarantine_latest: { order: 'id', exclude: ['quarantined_at'] },
  sync_runs_latest: { order: 'connection_id, sync_run_id' },
};

export async function snapshotViews(ch: ClickHouseClient, db: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [view, spec] of Object.entries(LATEST_VIEWS)) {
    const list = await rows(ch, `SELECT * FROM ${db}.${view} ORDER BY ${spec.order}`);
    out[view] = list.map((r) => {
      for (const x of spec.exclude ?? []) delete r[x];
      // 64-bit integers are quoted by 18.16 and not by current releases: compare as text.
      return JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' ? String(v) : v));
    });
  }
  return out;
}

export interface Truth {
  slots: number;
  valueSum: number;
  perMeter: Map<string, number>;
  assets: Map<string, Asset>;
  meters: Map<string, Meter>;
  mappings: Map<string, string | null>;
  daily: Map<string, UsageAggregate>;
  monthly: Map<string, UsageAggregate>;
  runs: Map<string, SyncRun>;
}

/**
 * What the latest views must show, from the records as they are on the topics (in partition
 * order, which is per-key order). Usage intervals: the last delivery of a slot wins.
 */
export function truthFrom(topics: { [K in TopicId]?: { key: string; value: TopicRecords[K] }[] }): Truth {
  const slotsMap = new Map<string, number>();
  const perMeter = new Map<string, number>();
  for (const { value: b } of topics.usage ?? []) {
    b.intervals.forEach((iv) => {
      if (
        !Number.isFinite(iv.value) ||
        !['consumption', 'redelivery', 'production', 'cost'].includes(iv.channel)
      )
        return;
      slotsMap.set(`${b.connection_id}/${b.meter_external_id}|${iv.channel}|${iv.start}|${iv.end}`, iv.value);
    });
  }
  let valueSum = 0;
  for (const [k, v] of slotsMap) {
    valueSum += v;
    const meter = k.split('|')[0]!;
    perMeter.set(meter, (perMeter.get(meter) ?? 0) + v);
  }
  const lastBy = <T>(
    list: { key: string; value: T }[] | undefined,
    key: (v: T) => string,
    keep: (v: T) => boolean = () => true,
  ) => {
    const m = new Map<string, T>();
    for (const { value } of list ?? []) if (keep(value)) m.set(key(value), value);
    return m;
  };
  const byVersion = (list: { value: UsageAggregate }[] | undefined) => {
    const m = new Map<string, UsageAggregate>();
    for (const { value: a } of list ?? []) {
      const k = `${a.connection_id}/${a.meter_external_id}|${a.channel}|${a.period}`;
      const prev = m.get(k);
      if (!prev || a.version >= prev.version) m.set(k, a);
    }
    return m;
  };
  const mappings = new Map<string, string | null>();
  for (const { value } of topics.meterMappings ?? [])
    mappings.set(`${value.connection_id}/${value.external_id}`, value.internal_meter_id);
  return {
    slots: slotsMap.size,
    valueSum,
    perMeter,
    assets: lastBy(topics.assets, (a) => `${a.connection_id}/${a.external_id}`),
    meters: lastBy(
      topics.meters,
      (m) => `${m.connection_id}/${m.external_id}`,
      (m) => ['Energy', 'Water', 'Waste'].includes(m.meter_type),
    ),
    mappings,
    daily: byVersion(topics.usageDaily),
    monthly: byVersion(topics.usageMonthly),
    runs: lastBy(topics.syncRuns, (r) => `${r.connection_id}/${r.sync_run_id}`),
  };
}

/**
 * ctx.createTopics, retried: on a busy broker createTopics with waitForLeaders sometimes fails with
 * UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this topic-partition") although the
 * topics are being created; a second call finds them.
 */
export async function createTopicsWithRetry(ctx: TestContext, attempts = 4): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await ctx.createTopics();
      return;
    } catch (err) {
      if (i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 1_000 * i));
    }
  }
}
