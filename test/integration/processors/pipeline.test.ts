/**
 * The stream end to end on real Kafka: a year of 15-minute data for meters in Europe/Helsinki,
 * America/New_York and UTC, with duplicates, corrections, out-of-order and late chunks, goes
 * through the real processors (the CLI in a child process) and must give daily and monthly
 * totals equal to a ground truth computed here, independently of the processor code — also
 * after the processors are killed with SIGKILL mid-stream and after raw.usage is replayed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawEnvelope } from '../../../schemas/records.js';
import { groupLag } from '../../../lib/kafka.js';
import { topicName } from '../../../schemas/topics.js';
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

const T0 = Date.UTC(2024, 0, 1);
const DAYS = 366; // 2024 is a leap year: both DST transitions of every zone are inside
const CONNECTION = 'acme-arcadia';
const METERS: DayMeter[] = [
  { id: 'mtr_hel', zone: 'Europe/Helsinki', seed: 1 },
  { id: 'mtr_nyc', zone: 'America/New_York', seed: 2 },
  { id: 'mtr_utc', zone: 'UTC', seed: 3, solar: true },
];
const SERIES = { connection: CONNECTION, meters: METERS, t0: T0, runId: 'run-1' };
const dayChunk = (m: DayMeter, day: number, scale = 1) => arcadiaDayChunk(SERIES, m, day, scale);

/** Raw usage in a hostile order: weeks shuffled inside, duplicates, wrong values corrected later, late days. */
function hostileStream(dayFrom: number, dayTo: number): { main: RawEnvelope[]; late: RawEnvelope[] } {
  const main: RawEnvelope[] = [];
  const late: RawEnvelope[] = [];
  for (const m of METERS) {
    for (let week = dayFrom; week < dayTo; week += 7) {
      const days = [];
      for (let d = week; d < Math.min(week + 7, dayTo); d++) days.push(d);
      days.reverse(); // out of order inside each week
      for (const d of days) {
        if (d % 13 === 5) {
          late.push(dayChunk(m, d));
          continue;
        }
        if (d % 7 === 3) main.push(dayChunk(m, d, 2)); // a wrong first delivery, corrected below
        main.push(dayChunk(m, d));
        if (d % 10 === 0) main.push(dayChunk(m, d)); // duplicate delivery
      }
    }
  }
  return { main, late };
}

let ctx: TestContext;
let proc: CliProcess | undefined;
const truth = groundTruth(SERIES, DAYS);

async function currentProblems(): Promise<string[]> {
  const latest = latestAggregates([
    ...(await readTopic(ctx, 'usageDaily')).map((r) => r.value),
    ...(await readTopic(ctx, 'usageMonthly')).map((r) => r.value),
  ]);
  return compareWithTruth(latest, truth);
}

/** Waits until the topics show the truth (the stream may still be running). */
async function converged(timeoutMs: number): Promise<string[]> {
  let problems: string[] = ['not checked'];
  await eventually(async () => (problems = await currentProblems()).length === 0, timeoutMs, 3_000);
  return problems;
}

function startProcessors(): CliProcess {
  return spawnCli(ctx, ['run', 'processors'], { MF_INSTANCE_ID: 'pipeline-test' });
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
});
afterAll(async () => {
  proc?.child.kill('SIGKILL');
  await ctx.cleanup();
});

describe('processors on real Kafka', () => {
  it('a DST day has 92 or 100 quarter-hours in the ground truth itself', () => {
    expect(truth.get(`${CONNECTION}/mtr_hel|consumption|2024-03-31`)?.count).toBe(92);
    expect(truth.get(`${CONNECTION}/mtr_hel|consumption|2024-10-27`)?.count).toBe(100);
    expect(truth.get(`${CONNECTION}/mtr_nyc|consumption|2024-03-10`)?.count).toBe(92);
    expect(truth.get(`${CONNECTION}/mtr_nyc|consumption|2024-11-03`)?.count).toBe(100);
    expect(truth.get(`${CONNECTION}/mtr_utc|consumption|2024-03-31`)?.count).toBe(96);
  });

  it('aggregates a hostile year exactly, across a SIGKILL mid-stream', async () => {
    const first = hostileStream(0, 180);
    const second = hostileStream(180, DAYS);
    await produceRaw(ctx, 'rawUsage', first.main);

    proc = startProcessors();
    const someOutput = await eventually(
      async () => (await readTopic(ctx, 'usageDaily')).length > 50,
      120_000,
      500,
    );
    expect(someOutput, proc.output()).toBe(true);
    proc.child.kill('SIGKILL');
    expect(await proc.exited).toBe('SIGKILL');

    // While the processors are dead the rest of the year arrives, late days last.
    await produceRaw(ctx, 'rawUsage', [...second.main, ...first.late, ...second.late]);
    proc = startProcessors();
    const problems = await converged(240_000);
    expect(problems.slice(0, 10), proc.output()).toEqual([]);

    // DST days carry their own expected counts.
    const daily = latestAggregates((await readTopic(ctx, 'usageDaily')).map((r) => r.value));
    const hel = (d: string) => daily.get(`${CONNECTION}/mtr_hel|consumption|${d}`)!;
    expect([
      hel('2024-03-31').expected_count,
      hel('2024-10-27').expected_count,
      hel('2024-06-01').expected_count,
    ]).toEqual([92, 100, 96]);
    expect(hel('2024-06-01').completeness).toBe(1);
  });

  it('gives the same totals after raw.usage is replayed from the beginning', async () => {
    proc!.child.kill('SIGTERM');
    expect(await proc!.exited).toBe(0);

    const admin = ctx.kafka.admin();
    await admin.connect();
    const prefix = ctx.config.kafka.topicPrefix;
    const rawUsage = topicName(prefix, 'rawUsage');
    await admin.resetOffsets({ groupId: `${prefix}processors.usage`, topic: rawUsage, earliest: true });
    const before = (await readTopic(ctx, 'usage')).length;

    proc = startProcessors();
    // The usage stage has re-read every raw chunk once its committed offsets reach the end.
    const replayed = await eventually(
      async () => (await groupLag(admin, `${prefix}processors.usage`, rawUsage)).every((p) => p.lag === 0),
      180_000,
      1_000,
    );
    expect(replayed, proc.output()).toBe(true);
    expect((await readTopic(ctx, 'usage')).length).toBeGreaterThan(before);
    // ...and the aggregate stage has consumed all of it (its offsets stop at the final commit
    // marker of the transactional input, hence lag <= 1).
    const usageTopic = topicName(prefix, 'usage');
    const aggregated = await eventually(
      async () =>
        (await groupLag(admin, `${prefix}processors.aggregate`, usageTopic)).every((p) => p.lag <= 1),
      180_000,
      1_000,
    );
    await admin.disconnect();
    expect(aggregated, proc.output()).toBe(true);
    expect((await currentProblems()).slice(0, 10), proc.output()).toEqual([]);
  });
});
