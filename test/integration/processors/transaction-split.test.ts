/**
 * A batch whose outputs pass maxTransactionBytes commits in pieces, each a whole transaction
 * (outputs, changelog, offsets). With a limit of one byte every message is its own piece: the
 * outputs and offsets all get committed, and a SIGKILL between two pieces of a batch keeps the
 * committed pieces and redoes the rest: the aggregates equal a ground truth computed here,
 * nothing lost and nothing counted twice.
 */
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupLag, topicOffsets } from '../../../lib/kafka.js';
import * as processors from '../../../processors/index.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import { topicName, type TopicId } from '../../../schemas/topics.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import {
  eventually,
  latestAggregates,
  produceRaw,
  readTopic,
  spawnCli,
  type CliProcess,
} from '../../support/pipeline.js';
import {
  compareWithTruth,
  dayChunk as arcadiaDayChunk,
  groundTruth,
  type DayMeter,
} from '../../support/arcadia-days.js';

const T0 = Date.UTC(2024, 2, 1);
const CONNECTION = 'acme-arcadia';
const METERS: DayMeter[] = [
  { id: 'mtr_split_hel', zone: 'Europe/Helsinki', seed: 1 },
  { id: 'mtr_split_utc', zone: 'UTC', seed: 2 },
];
/** Days of the in-process run, then of the run that is killed. */
const FIRST_DAYS = 12;
const ALL_DAYS = 120;
const SERIES = { connection: CONNECTION, meters: METERS, t0: T0, runId: 'run-split' };
const dayChunk = (m: DayMeter, day: number, scale = 1) => arcadiaDayChunk(SERIES, m, day, scale);

/** Every meter's days [from, to); every third day first delivered wrong, then corrected. */
function chunks(from: number, to: number): RawEnvelope[] {
  const out: RawEnvelope[] = [];
  for (const m of METERS) {
    for (let d = from; d < to; d++) {
      if (d % 3 === 1) out.push(dayChunk(m, d, 3));
      out.push(dayChunk(m, d));
    }
  }
  return out;
}

/** Local day and month totals of days [0, days), computed with Intl alone. */
let ctx: TestContext;
let admin: Admin;
let proc: CliProcess | undefined;

async function problems(days: number): Promise<string[]> {
  const latest = latestAggregates([
    ...(await readTopic(ctx, 'usageDaily')).map((r) => r.value),
    ...(await readTopic(ctx, 'usageMonthly')).map((r) => r.value),
  ]);
  return compareWithTruth(latest, groundTruth(SERIES, days));
}

const topic = (id: TopicId) => topicName(ctx.config.kafka.topicPrefix, id);
const usageGroup = () => `${ctx.config.kafka.topicPrefix}processors.usage`;
const aggregateGroup = () => `${ctx.config.kafka.topicPrefix}processors.aggregate`;

/** Committed offsets of the usage stage on raw.usage, by partition (-1: none yet). */
async function committed(): Promise<Map<number, number>> {
  const [t] = await admin.fetchOffsets({ groupId: usageGroup(), topics: [topic('rawUsage')] });
  return new Map(t!.partitions.map((p) => [p.partition, Number(p.offset)]));
}

/** Records of a topic read committed, and transaction markers (the other offsets). */
async function recordsAndMarkers(id: TopicId): Promise<{ records: number; markers: number }> {
  const records = (await readTopic(ctx, id)).length;
  const offsets = (await topicOffsets(admin, topic(id))).reduce(
    (s, o) => s + Number(o.high) - Number(o.low),
    0,
  );
  return { records, markers: offsets - records };
}

/** End offsets of raw.usage by partition. */
async function rawEnds(): Promise<Map<number, number>> {
  return new Map((await topicOffsets(admin, topic('rawUsage'))).map((o) => [o.partition, Number(o.high)]));
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
  admin = ctx.kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  proc?.child.kill('SIGKILL');
  await admin?.disconnect();
  await ctx.cleanup();
});

describe('a batch split into transactions by bytes', () => {
  it('commits every message of a batch as its own transaction: all outputs and offsets, none twice', async () => {
    const first = chunks(0, FIRST_DAYS);
    // Produced before the stages start: each partition's messages arrive as one batch.
    await produceRaw(ctx, 'rawUsage', first);
    const running = processors.create({ stages: ['usage', 'aggregate'], maxTransactionBytes: 1 }, ctx);
    try {
      await running.start();
      await running.ready;
      let left: string[] = [];
      const done = await eventually(
        async () => (left = await problems(FIRST_DAYS)).length === 0,
        120_000,
        1_000,
      );
      expect(done, left.slice(0, 5).join('\n')).toBe(true);
      const lagZero = async (group: string, id: TopicId) =>
        (await groupLag(admin, group, topic(id))).every((p) => p.lag <= 1);
      expect(await eventually(() => lagZero(usageGroup(), 'rawUsage'), 60_000, 500)).toBe(true);
      expect(await eventually(() => lagZero(aggregateGroup(), 'usage'), 60_000, 500)).toBe(true);
    } finally {
      await running.stop();
    }
    // One usage batch per raw message, none twice, and a commit marker per message: every
    // message was a transaction of its own (a batch in one transaction has one marker).
    const usage = await recordsAndMarkers('usage');
    expect(usage.records).toBe(first.length);
    expect(usage.markers).toBeGreaterThanOrEqual(first.length);
    // Every input offset is committed.
    const offsets = await committed();
    for (const [p, end] of await rawEnds())
      expect(Math.max(0, offsets.get(p) ?? 0), `partition ${p}`).toBe(end);
  }, 240_000);

  it('a SIGKILL between two pieces of a batch loses nothing and counts nothing twice', async () => {
    const at = (m: Map<number, number>, p: number) => Math.max(0, m.get(p) ?? 0);
    const before = await committed();
    const usageBefore = (await readTopic(ctx, 'usage')).length;
    const second = chunks(FIRST_DAYS, ALL_DAYS);
    // Produced before the processors start: each partition's messages come as one batch.
    await produceRaw(ctx, 'rawUsage', second);
    const ends = await rawEnds();
    const env = { MF_MAX_TRANSACTION_BYTES: '1', MF_INSTANCE_ID: 'split-test' };

    proc = spawnCli(ctx, ['run', 'processors', '--stages', 'usage,aggregate'], env);
    // Killed as soon as a partition has committed part of its new messages.
    const inside = (m: Map<number, number>) =>
      [...ends].some(([p, end]) => at(m, p) > at(before, p) && at(m, p) < end);
    const done = (m: Map<number, number>) => [...ends].every(([p, end]) => at(m, p) >= end);
    let mid = before;
    await eventually(async () => ((mid = await committed()), inside(mid) || done(mid)), 120_000, 20);
    const cut = inside(mid);
    proc.child.kill('SIGKILL');
    expect(await proc.exited).toBe('SIGKILL');
    // A partition's batch was committed in part: the kill came between two of its pieces.
    expect(
      cut,
      `committed ${JSON.stringify([...mid])} of ${JSON.stringify([...ends])}\n${proc.output()}`,
    ).toBe(true);
    expect(inside(await committed())).toBe(true);

    proc = spawnCli(ctx, ['run', 'processors', '--stages', 'usage,aggregate'], env);
    let left: string[] = [];
    const exact = await eventually(
      async () => (left = await problems(ALL_DAYS)).length === 0,
      240_000,
      2_000,
    );
    expect(exact, `${left.slice(0, 5).join('\n')}\n${proc.output()}`).toBe(true);
    // Exactly one usage batch per raw message is visible: the piece cut by the kill was aborted.
    expect(
      await eventually(
        async () => (await readTopic(ctx, 'usage')).length === usageBefore + second.length,
        60_000,
        1_000,
      ),
    ).toBe(true);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  }, 360_000);
});
