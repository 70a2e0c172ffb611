/**
 * Benchmark: intervals per second through normalise, validate and aggregate (the usage and
 * aggregate stages, with their Kafka transactions) on real Kafka, beside the ceiling measured
 * in the same run: a bare kafkajs consumer reading the same raw.usage topic. Also peak RSS.
 *
 *   npx tsx test/bench/processors.ts [--meters 200] [--days 365] [--partitions 6] [--mode in-process|processes]
 *                                    [--stages usage,aggregate]   (usage alone: normalise + validate)
 *                                    [--input-compression gzip|none]  (gzip: as the pollers write raw.usage)
 *
 * Prints figures; asserts nothing. Uses a fresh topic prefix and deletes it afterwards.
 */
import { parseArgs } from 'node:util';
import { COMPRESSION, CompressionTypes, groupLag } from '../../lib/kafka.js';
import { topicName } from '../../schemas/topics.js';
import type { RawEnvelope } from '../../schemas/records.js';
import * as processors from '../../processors/index.js';
import { createTestContext } from '../support/context.js';
import { spawnCli } from '../support/pipeline.js';
import { consumeAll, decodeAndParse } from './common.js';

const { values } = parseArgs({
  options: {
    meters: { type: 'string', default: '200' },
    days: { type: 'string', default: '365' },
    partitions: { type: 'string', default: '6' },
    // in-process: both stages in this process (one core); processes: one CLI process per stage.
    mode: { type: 'string', default: 'in-process' },
    stages: { type: 'string', default: 'usage,aggregate' },
    // gzip: raw.usage as the pollers write it (producers/sync/writer.ts); none: uncompressed.
    'input-compression': { type: 'string', default: 'gzip' },
  },
});
const STAGES = values.stages.split(',').map((s) => s.trim());
if (STAGES.some((s) => s !== 'usage' && s !== 'aggregate') || !STAGES.includes('usage')) {
  throw new Error(`--stages: usage or usage,aggregate, not ${values.stages}`);
}
const WITH_AGGREGATE = STAGES.includes('aggregate');
const INPUT_COMPRESSION = { gzip: COMPRESSION, none: CompressionTypes.None }[values['input-compression']];
if (INPUT_COMPRESSION === undefined) throw new Error('--input-compression: gzip or none');
const METERS = Number(values.meters);
const DAYS = Number(values.days);
const QUARTER = 15 * 60_000;
const T0 = Date.UTC(2024, 0, 1);
const ZONES = ['Europe/Helsinki', 'America/New_York', 'UTC'];
const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');

function chunk(meter: number, day: number): RawEnvelope {
  const id = `mtr_${meter}`;
  const readings = [];
  for (let q = 0; q < 96; q++) {
    const start = T0 + (day * 96 + q) * QUARTER;
    const v = (500 + ((q * 7919 + meter * 104_729 + day) % 1000)) / 1000;
    readings.push({
      startAt: iso(start),
      endAt: iso(start + QUARTER),
      direction: 'import',
      kwh: v,
      kw: v * 4,
    });
  }
  return {
    connection_id: 'bench',
    provider: 'arcadia',
    entity_kind: 'usage',
    format: 'arcadia.intervals',
    external_id: id,
    sync_run_id: 'bench',
    request_url: `http://127.0.0.1/plug/intervals/meters/${id}`,
    request_page: null,
    received_at: Date.now(),
    content_type: 'application/json',
    payload: JSON.stringify({ meterId: id, localTimezone: ZONES[meter % 3], readings }),
    meta: {
      meter_format: 'arcadia.meter',
      meter_payload: JSON.stringify({
        id,
        serviceType: 'electric',
        site: { id: `site_${meter}`, siteName: `Site ${meter}` },
      }),
    },
  };
}

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
const mb = (b: number) => (b / 1024 / 1024).toFixed(0);

const ctx = createTestContext({ partitions: Number(values.partitions) });
try {
  await ctx.createTopics();
  const prefix = ctx.config.kafka.topicPrefix;
  const rawUsage = topicName(prefix, 'rawUsage');
  const serde = await ctx.registry.registerTopic(prefix, 'rawUsage');

  // 1. Load the input: one message per meter per day (one provider response chunk).
  const producer = ctx.kafka.producer({ idempotent: true });
  await producer.connect();
  let t = Date.now();
  let messages = 0;
  for (let day = 0; day < DAYS; day++) {
    const batch = [];
    for (let m = 0; m < METERS; m++)
      batch.push({ key: `bench/mtr_${m}`, value: serde.encode(chunk(m, day)) });
    await producer.send({ topic: rawUsage, messages: batch, compression: INPUT_COMPRESSION });
    messages += batch.length;
  }
  await producer.disconnect();
  const intervals = messages * 96;
  console.log(
    `input: ${messages} messages, ${intervals} intervals (${METERS} meters x ${DAYS} days), ${values['input-compression']}, loaded in ${((Date.now() - t) / 1000).toFixed(1)} s`,
  );

  // 2. Ceiling: a bare kafkajs consumer reading the same topic, decoding nothing. A second
  // reference also decodes each envelope and parses its JSON payload: the least work any
  // normaliser has to do, to show where the time of the real stages goes.
  const bareSeconds = await consumeAll(ctx.kafka, rawUsage, `${prefix}bench.bare`, messages, () => undefined);
  const parseSeconds = await consumeAll(
    ctx.kafka,
    rawUsage,
    `${prefix}bench.parse`,
    messages,
    decodeAndParse(ctx.registry),
  );
  const bareRate = intervals / bareSeconds;
  console.log(
    `bare kafkajs consumer: ${bareSeconds.toFixed(2)} s, ${Math.round(messages / bareSeconds)} msg/s, ${Math.round(bareRate)} intervals/s`,
  );
  console.log(
    `reference, consumer + Avro decode + JSON.parse of each payload: ${parseSeconds.toFixed(2)} s, ${Math.round(intervals / parseSeconds)} intervals/s`,
  );

  // 3. The usage and aggregate stages in this process, from the same topic.
  const rssBefore = process.memoryUsage().rss;
  peakRss = rssBefore;
  t = Date.now();
  const inProcess = values.mode !== 'processes';
  const running = inProcess
    ? processors.create({ stages: WITH_AGGREGATE ? ['usage', 'aggregate'] : ['usage'] }, ctx)
    : undefined;
  await running?.start();
  const children = inProcess
    ? []
    : STAGES.map((stage) => spawnCli(ctx, ['run', 'processors', '--stages', stage]));
  await running?.ready;
  const readyAt = Date.now();
  const eluStart = performance.eventLoopUtilization();
  const admin = ctx.kafka.admin();
  await admin.connect();
  const usageTopic = topicName(prefix, 'usage');
  let usageDoneAt = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const raw = await groupLag(admin, `${prefix}processors.usage`, rawUsage);
    const agg = await groupLag(admin, `${prefix}processors.aggregate`, usageTopic);
    const usageHigh = (await admin.fetchTopicOffsets(usageTopic)).reduce((s, o) => s + Number(o.high), 0);
    if (!usageDoneAt && raw.every((p) => p.lag === 0)) usageDoneAt = Date.now();
    if (usageDoneAt && !WITH_AGGREGATE) break;
    if (raw.every((p) => p.lag === 0) && usageHigh > 0 && agg.every((p) => p.lag <= 1)) break;
  }
  const pipeSeconds = (Date.now() - t) / 1000;
  const elu = performance.eventLoopUtilization(eluStart).utilization;
  const steadySeconds = (Date.now() - readyAt) / 1000;
  await admin.disconnect();
  await running?.stop();
  for (const c of children) {
    c.child.kill('SIGTERM');
    await c.exited;
  }
  const pipeRate = intervals / pipeSeconds;
  const how = inProcess
    ? `${WITH_AGGREGATE ? 'both stages' : 'the stage'} in this process`
    : 'one CLI process per stage, startup included';
  console.log(
    `${WITH_AGGREGATE ? 'normalise+validate+aggregate' : 'normalise+validate (usage stage alone)'} (${how}): ${pipeSeconds.toFixed(2)} s, ${Math.round(pipeRate)} intervals/s`,
  );
  console.log(
    `  the usage stage (normalise, validate) had read all of raw.usage after ${((usageDoneAt - t) / 1000).toFixed(2)} s`,
  );
  if (inProcess) {
    console.log(
      `  event loop busy ${(elu * 100).toFixed(0)}% of the time (the rest waits on Kafka: fetches, transaction round trips)`,
    );
    console.log(
      `  after both stages joined their groups: ${steadySeconds.toFixed(2)} s, ${Math.round(intervals / steadySeconds)} intervals/s`,
    );
  }
  console.log(
    `ratio to the bare consumer: ${((pipeRate / bareRate) * 100).toFixed(1)}% (target >= 60%); to the decode+parse reference: ${((pipeRate / (intervals / parseSeconds)) * 100).toFixed(1)}%`,
  );
  if (inProcess) {
    console.log(
      `RSS of this process (which also ran the two reference consumers): before the stages ${mb(rssBefore)} MB, peak ${mb(peakRss)} MB; ` +
        'the 400 MB target for 1,000 meters x 1 year: npx tsx test/bench/aggregate-memory.ts',
    );
  }
} finally {
  clearInterval(sampler);
  await ctx.cleanup();
}
