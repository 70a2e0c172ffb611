/**
 * ClickHouse sink throughput, against a ceiling measured in the same run.
 *
 *   npx tsx test/bench/sink-clickhouse.ts [intervals=1000000] [intervalsPerMessage=96]
 *
 * 1. Produces N usage intervals as UsageBatch messages to a fresh topic (random prefix).
 * 2. Times the sink (usage family only) loading them into ClickHouse: rows/s, peak RSS.
 * 3. Writes the very same rows (same mapping, same RowBinary format) to a file and times
 *    ClickHouse inserting that file over HTTP (curl --data-binary, the interface the sink uses)
 *    and with clickhouse-client when it is installed: the ceiling. Also the same file sent in
 *    requests of the sink's batch size, one after the other (each insert writes a part).
 * The sink figure is also split into the full batches and the last, partial one (inserted once the
 * sink has read every partition to its end, or after batchMaxMs).
 * Prints both figures and the ratio (target >= 50%). Cleans up its topics and database.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../lib/config.js';
import { COMPRESSION, createKafka, ensureCatalogueTopics } from '../../lib/kafka.js';
import { createLogger } from '../../lib/log.js';
import { AvroRegistry } from '../../lib/registry.js';
import type { UsageBatch, UsageInterval } from '../../schemas/records.js';
import { entityKey, topicName } from '../../schemas/topics.js';
import { createChClient } from '../../sinks/clickhouse/client.js';
import * as clickhouse from '../../sinks/clickhouse/index.js';
import { migrate } from '../../sinks/clickhouse/migrate.js';
import { sinkOptionsSchema } from '../../sinks/clickhouse/options.js';
import { USAGE_COLUMNS, usageRows } from '../../sinks/clickhouse/rows.js';
import { clickhouseClientInsert, fmt, hasClickhouseClient } from './common.js';

const N = Number(process.argv[2] ?? 1_000_000);
const PER_MESSAGE = Number(process.argv[3] ?? 96);
const METERS = 500;
/** The sink runs with its defaults (batch rows, batch age); the batched ceiling uses the same size. */
const DEFAULTS = sinkOptionsSchema.parse({});
const BATCH_ROWS = DEFAULTS.batchMaxRows;
const QH = 900_000;
const T0 = Date.UTC(2024, 0, 1);

function batchFor(i: number): { key: string; batch: UsageBatch } {
  const meter = `m${i % METERS}`;
  const chunk = Math.floor(i / METERS);
  const intervals: UsageInterval[] = [];
  for (let j = 0; j < PER_MESSAGE; j++) {
    const start = T0 + (chunk * PER_MESSAGE + j) * QH;
    intervals.push({
      start,
      end: start + QH,
      channel: 'consumption',
      value: ((i * 7 + j) % 1000) / 8,
      value_canonical: ((i * 7 + j) % 1000) / 8,
      currency: null,
      estimated: j % 50 === 0,
      from_readings: false,
      metadata: {},
    });
  }
  return {
    key: entityKey('bench', meter),
    batch: {
      connection_id: 'bench',
      provider: 'bench',
      meter_external_id: meter,
      sync_run_id: 'run-1',
      unit: 'kWh',
      canonical_unit: 'kWh',
      time_zone: 'Europe/Berlin',
      source_topic: 'raw.usage',
      source_partition: 0,
      source_offset: i,
      intervals,
    },
  };
}

async function main(): Promise<void> {
  const base = loadConfig();
  const name = `bench${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const config: Config = {
    ...base,
    kafka: { ...base.kafka, topicPrefix: `${name}.`, partitions: 6 },
    clickhouse: { ...base.clickhouse, database: `mf_${name}` },
  };
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn', 'bench');
  const kafka = createKafka(config, '-bench');
  const registry = AvroRegistry.fromConfig(config);
  const ch = createChClient(config.clickhouse, { requestTimeoutMs: 600_000 });
  const db = config.clickhouse.database;
  const topic = topicName(config.kafka.topicPrefix, 'usage');
  const messages = Math.ceil(N / PER_MESSAGE);
  const dir = mkdtempSync(join(tmpdir(), 'mf-bench-'));
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureCatalogueTopics(admin, config, ['usage', 'quarantine']);
    await migrate(ch, db);

    // 1. Produce.
    const serde = await registry.registerTopic(config.kafka.topicPrefix, 'usage');
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let t = Date.now();
    let rowsTotal = 0;
    for (let i = 0; i < messages; i += 200) {
      const out = [];
      for (let k = i; k < Math.min(messages, i + 200); k++) {
        const { key, batch } = batchFor(k);
        if (k === messages - 1) batch.intervals = batch.intervals.slice(0, N - k * PER_MESSAGE);
        rowsTotal += batch.intervals.length;
        out.push({ key, value: serde.encode(batch) });
      }
      await producer.send({ topic, compression: COMPRESSION, messages: out });
    }
    await producer.disconnect();
    console.log(
      `produced ${fmt(rowsTotal)} intervals in ${fmt(messages)} messages (${PER_MESSAGE}/message) in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );

    // 2. The sink.
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const sink = clickhouse.create({ families: ['usage'], migrate: false }, { config, log, kafka, registry });
    t = Date.now();
    await sink.start();
    let firstRowAt = 0;
    // The flush before the last one: the last batch is usually partial, reported apart below.
    let lastRows = 0;
    let lastRowsAt = 0;
    let prevRows = 0;
    let prevRowsAt = 0;
    for (;;) {
      const s = sink.stats()[0]!;
      if (!firstRowAt && s.recordsConsumed > 0) firstRowAt = Date.now();
      if (s.rowsInserted !== lastRows) {
        prevRows = lastRows;
        prevRowsAt = lastRowsAt;
        lastRows = s.rowsInserted;
        lastRowsAt = Date.now();
      }
      if (s.rowsInserted >= rowsTotal) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const done = Date.now();
    clearInterval(sampler);
    const stats = sink.stats()[0]!;
    await sink.stop();
    const sinkSeconds = (done - firstRowAt) / 1000;
    const sinkRate = rowsTotal / sinkSeconds;
    console.log(
      `sink:   ${fmt(rowsTotal)} rows in ${sinkSeconds.toFixed(2)} s from the first record (${((done - t) / 1000).toFixed(2)} s with start-up and group join) = ${fmt(sinkRate)} rows/s; ` +
        `${stats.inserts} inserts (defaults: ${fmt(BATCH_ROWS)} rows or ${DEFAULTS.batchMaxMs} ms per batch), peak RSS ${fmt(peakRss / 1024 / 1024)} MiB`,
    );
    if (prevRowsAt > firstRowAt) {
      console.log(
        `        of which ${((done - prevRowsAt) / 1000).toFixed(2)} s for the last insert (${fmt(rowsTotal - prevRows)} rows); ` +
          `before it ${fmt(prevRows)} rows in ${((prevRowsAt - firstRowAt) / 1000).toFixed(2)} s = ${fmt(prevRows / ((prevRowsAt - firstRowAt) / 1000))} rows/s`,
      );
    }

    // 3. The ceiling: the same rows from a file, same format (RowBinary, the sink's column list);
    // also cut into files of the sink's batch size.
    const file = join(dir, 'rows.bin');
    const ws = createWriteStream(file);
    const parts: Buffer[][] = [[]];
    let partRows = 0;
    let offset = 0;
    for (let k = 0; k < messages; k++) {
      const { batch } = batchFor(k);
      if (k === messages - 1) batch.intervals = batch.intervals.slice(0, N - k * PER_MESSAGE);
      const rows = usageRows(batch, {
        partition: 0,
        offset: String(offset++),
        timestamp: String(Date.now()),
      });
      for (const chunk of rows.chunks) {
        if (!ws.write(chunk)) await new Promise<void>((r) => ws.once('drain', () => r()));
        parts.at(-1)!.push(chunk);
      }
      partRows += rows.ends.length;
      if (partRows >= BATCH_ROWS) {
        parts.push([]);
        partRows = 0;
      }
    }
    await new Promise<void>((r) => ws.end(() => r()));
    parts.forEach((chunks, i) => {
      if (chunks.length > 0)
        writeFileSync(join(dir, `part.${String(i).padStart(4, '0')}`), Buffer.concat(chunks));
    });
    const size = statSync(file).size;
    await ch.command({ query: `CREATE TABLE ${db}.ceiling AS ${db}.usage_intervals` });
    const url = new URL(config.clickhouse.url);
    const format = `(${USAGE_COLUMNS.map(([c]) => c).join(', ')}) FORMAT RowBinary`;
    url.searchParams.set('query', `INSERT INTO ${db}.ceiling ${format}`);
    t = Date.now();
    execFileSync(
      'curl',
      [
        '-sS',
        '--fail-with-body',
        '-u',
        `${config.clickhouse.username}:${config.clickhouse.password}`,
        '--data-binary',
        `@${file}`,
        url.toString(),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const curlSeconds = (Date.now() - t) / 1000;
    const curlRate = rowsTotal / curlSeconds;
    console.log(
      `ceiling (curl HTTP, RowBinary file of ${fmt(size / 1024 / 1024)} MiB): ${curlSeconds.toFixed(2)} s = ${fmt(curlRate)} rows/s`,
    );
    console.log(`ratio sink / ceiling (HTTP): ${((sinkRate / curlRate) * 100).toFixed(0)}% (target >= 50%)`);

    // The same file in requests of the sink's batch size, one after the other: what ClickHouse
    // itself allows for 50,000-row inserts (every insert writes a part), without the sink's work.
    await ch.command({ query: `TRUNCATE TABLE ${db}.ceiling` }).catch(() => undefined);
    t = Date.now();
    execFileSync(
      'bash',
      [
        '-c',
        'for f in "$DIR"/part.*; do curl -sS --fail-with-body -u "$CH_AUTH" --data-binary "@$f" "$CH_URL" || exit 1; done',
      ],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: {
          ...process.env,
          DIR: dir,
          CH_AUTH: `${config.clickhouse.username}:${config.clickhouse.password}`,
          CH_URL: url.toString(),
        },
      },
    );
    const batchedSeconds = (Date.now() - t) / 1000;
    console.log(
      `ceiling (curl HTTP, same file in ${fmt(BATCH_ROWS)}-row requests, sequential): ${batchedSeconds.toFixed(2)} s = ${fmt(rowsTotal / batchedSeconds)} rows/s; ratio ${((sinkRate / (rowsTotal / batchedSeconds)) * 100).toFixed(0)}%`,
    );

    if (hasClickhouseClient()) {
      await ch.command({ query: `TRUNCATE TABLE ${db}.ceiling` }).catch(() => undefined);
      const r = clickhouseClientInsert(config, `${db}.ceiling`, file, format);
      if ('seconds' in r) {
        console.log(
          `ceiling (clickhouse-client native, same file): ${r.seconds.toFixed(2)} s = ${fmt(rowsTotal / r.seconds)} rows/s; ratio ${((sinkRate / (rowsTotal / r.seconds)) * 100).toFixed(0)}%`,
        );
      } else {
        console.log(`clickhouse-client failed: ${r.error}`);
      }
    }
    const loaded = Number(
      (
        await (
          await ch.query({ query: `SELECT count() AS c FROM ${db}.usage_intervals`, format: 'JSONEachRow' })
        ).json<{ c: string }>()
      )[0]!.c,
    );
    console.log(
      `check: usage_intervals holds ${fmt(loaded)} rows (expected ${fmt(rowsTotal)}, fewer only if merges already collapsed replays)`,
    );
  } finally {
    await admin
      .deleteTopics({ topics: [topic, topicName(config.kafka.topicPrefix, 'quarantine')] })
      .catch(() => undefined);
    await admin.deleteGroups([`${config.kafka.topicPrefix}clickhouse-sink.usage`]).catch(() => undefined);
    await admin.disconnect();
    await ch.command({ query: `DROP DATABASE IF EXISTS ${db}` }).catch(() => undefined);
    await ch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
