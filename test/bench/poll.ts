/**
 * Benchmark: one simulated year of usage for 200 meters, polled by each connector against its
 * simulator and written to real Kafka (transactional chunk checkpoints included). Prints requests,
 * wall time, envelopes, payload volume and peak RSS per connector, beside a ceiling measured in the
 * same run: a bare kafkajs producer sending the same number of messages of the same size
 * (no HTTP, no transactions).
 *
 *   npx tsx test/bench/poll.ts [--meters 200] [--days 365] [--only arcadia,enerkey,generic-a,generic-b]
 *
 * Data resolutions are the providers' own: Arcadia normalized 15-minute intervals, EnerKey hourly
 * values, generic A 15-minute register readings, generic B daily consumption.
 * Prints figures; asserts nothing. Uses a fresh topic prefix and deletes it afterwards.
 */
import { parseArgs } from 'node:util';
import { createTestContext, type TestContext } from '../support/context.js';
import { startArcadiaSimulator } from '../../simulators/arcadia.js';
import { startEnerKeySimulator } from '../../simulators/enerkey.js';
import { startGenericJsonSimulator } from '../../simulators/generic-json.js';
import { startGenericXmlCsvSimulator } from '../../simulators/generic-xml-csv.js';
import { runSync, type SyncDeps } from '../../producers/sync/engine.js';
import { connectionSchema, type ConnectionInput } from '../../schemas/connection.js';
import { COMPRESSION } from '../../lib/kafka.js';
import { topicName } from '../../schemas/topics.js';

const { values } = parseArgs({
  options: {
    meters: { type: 'string', default: '200' },
    days: { type: 'string', default: '365' },
    only: { type: 'string', default: 'arcadia,enerkey,generic-a,generic-b' },
  },
});
const METERS = Number(values.meters);
const DAYS = Number(values.days);
const ONLY = new Set(values.only.split(','));
const FROM = '2024-01-01';
const TO = new Date(Date.parse(`${FROM}T00:00:00Z`) + DAYS * 86_400_000).toISOString();
const HTTP = {
  timeoutMs: 60_000,
  maxResponseBytes: 64 * 1024 * 1024,
  maxRetries: 6,
  backoffBaseMs: 100,
  backoffMaxMs: 5_000,
};

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);

interface Row {
  connector: string;
  meters: number;
  requests: number;
  chunks: number;
  envelopes: number;
  payloadMb: string;
  wallS: string;
  peakRssMb: string;
  ceilingS: string;
}

async function measure(
  ctx: TestContext,
  name: string,
  meters: number,
  input: ConnectionInput,
  env: Record<string, string>,
  stats: () => { total: number },
): Promise<Row> {
  const conn = connectionSchema.parse({ ...input, usageStart: FROM, http: HTTP, sync: { concurrency: 4 } });
  let envelopes = 0;
  let bytes = 0;
  const deps: SyncDeps = {
    config: ctx.config,
    kafka: ctx.kafka,
    registry: ctx.registry,
    log: ctx.log,
    env,
    onEvent: (e) => {
      if (e.name === 'sync.chunk.committed') envelopes += Number(e.data.envelopes ?? 0);
      if (e.name === 'sync.chunk.committed') bytes += Number(e.data.bytes ?? 0);
    },
  };
  peakRss = process.memoryUsage().rss;
  const t0 = performance.now();
  const run = await runSync(conn, deps, { mode: 'incremental', to: TO });
  const wall = (performance.now() - t0) / 1000;
  if (run.status !== 'succeeded') console.error(`${name}: ${run.status}`, run.error_messages.slice(0, 3));

  // Ceiling: the same messages and bytes through a bare producer.
  const avg = envelopes > 0 ? Math.max(1, Math.round(bytes / envelopes)) : 1;
  const producer = ctx.kafka.producer();
  await producer.connect();
  const topic = topicName(ctx.config.kafka.topicPrefix, 'rawUsage');
  // Text shaped like the payloads (JSON numbers), so that gzip gains about what it gains on them.
  let text = '[';
  while (text.length < avg) text += `${(Math.random() * 100).toFixed(3)},`;
  const value = Buffer.from(text.slice(0, avg), 'utf8');
  const c0 = performance.now();
  for (let sent = 0; sent < envelopes; sent += 50) {
    const n = Math.min(50, envelopes - sent);
    await producer.send({
      topic,
      compression: COMPRESSION,
      messages: Array.from({ length: n }, (_, i) => ({ key: `ceiling/${sent + i}`, value })),
    });
  }
  const ceiling = (performance.now() - c0) / 1000;
  await producer.disconnect();
  const row = {
    connector: name,
    meters,
    requests: stats().total,
    chunks: run.usage_chunks,
    envelopes,
    payloadMb: mb(bytes),
    wallS: wall.toFixed(1),
    peakRssMb: mb(peakRss),
    ceilingS: ceiling.toFixed(1),
  };
  console.log(JSON.stringify(row));
  return row;
}

const ctx = createTestContext({ partitions: 6 });
const rows: Row[] = [];
try {
  await ctx.createTopics();
  if (ONLY.has('arcadia')) {
    const sim = await startArcadiaSimulator({
      credentials: 5,
      sites: 20,
      meters: METERS,
      days: DAYS,
      intervalsActive: true,
    });
    try {
      rows.push(
        await measure(
          ctx,
          'arcadia (normalized 15 min)',
          METERS,
          {
            id: 'bench-arcadia',
            provider: 'arcadia',
            baseUrls: { production: sim.url },
            auth: {
              type: 'oauth2ClientCredentials',
              tokenUrl: '/oauth2/token',
              clientIdEnv: 'ID',
              clientSecretEnv: 'SECRET',
            },
            options: { intervals: 'normalized' },
          },
          { ID: sim.options.clientId, SECRET: sim.options.clientSecret },
          () => sim.stats(),
        ),
      );
    } finally {
      await sim.close();
    }
  }
  if (ONLY.has('enerkey')) {
    const sim = await startEnerKeySimulator({
      facilities: Math.ceil(METERS / 4),
      metersPerFacility: [4, 4],
      days: DAYS,
    });
    try {
      const keys = sim.truth().apiKeys;
      rows.push(
        await measure(
          ctx,
          'enerkey (hourly)',
          sim.truth().meters.length,
          {
            id: 'bench-enerkey',
            provider: 'enerkey',
            baseUrls: { production: sim.url },
            auth: { type: 'apiKey', name: 'Authorization', keys: [{ valueEnv: 'K1' }, { valueEnv: 'K2' }] },
            budget: { perDay: 40_000 },
          },
          { K1: keys[0]!.key, K2: keys[1]!.key },
          () => sim.stats(),
        ),
      );
    } finally {
      await sim.close();
    }
  }
  if (ONLY.has('generic-a')) {
    const sites = Math.ceil(METERS / 2.5);
    const sim = await startGenericJsonSimulator({ sites, days: DAYS, readingIntervalMinutes: 15 });
    try {
      const { parse } = await import('yaml');
      const { readFile } = await import('node:fs/promises');
      const example = parse(
        await readFile(
          new URL('../../connections/examples/generic-json-readings.yaml', import.meta.url),
          'utf8',
        ),
      ) as ConnectionInput;
      rows.push(
        await measure(
          ctx,
          'generic A (JSON readings 15 min)',
          sim.truth().meters.length,
          { ...example, id: 'bench-gen-a', baseUrls: { production: sim.url } },
          { ACME_API_KEY: sim.apiKey },
          () => sim.stats(),
        ),
      );
    } finally {
      await sim.close();
    }
  }
  if (ONLY.has('generic-b')) {
    const sim = await startGenericXmlCsvSimulator({
      buildings: Math.ceil(METERS / 2.5),
      days: DAYS,
      format: 'xml',
      pagination: 'cursor',
      auth: 'oauth2-password',
    });
    try {
      const { parse } = await import('yaml');
      const { readFile } = await import('node:fs/promises');
      const example = parse(
        await readFile(
          new URL('../../connections/examples/generic-xml-consumption.yaml', import.meta.url),
          'utf8',
        ),
      ) as ConnectionInput;
      const c = sim.credentials;
      rows.push(
        await measure(
          ctx,
          'generic B (XML daily consumption)',
          sim.truth().meters.length,
          { ...example, id: 'bench-gen-b', baseUrls: { production: sim.url } },
          {
            NORDIC_CLIENT_ID: c.clientId,
            NORDIC_CLIENT_SECRET: c.clientSecret,
            NORDIC_USERNAME: c.username,
            NORDIC_PASSWORD: c.password,
          },
          () => sim.stats(),
        ),
      );
    } finally {
      await sim.close();
    }
  }
} finally {
  clearInterval(sampler);
  await ctx.cleanup();
}
console.log(`\npoll bench: ${DAYS} days from ${FROM}, Kafka ${ctx.config.kafka.brokers.join(',')}`);
console.table(rows);
console.log(
  'ceilingS = a bare kafkajs producer sending the same number of messages of the same average size (no HTTP, no transactions).',
);
process.exit(0);
