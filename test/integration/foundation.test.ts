import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '@clickhouse/client';
import { MeterflowError } from '../../lib/errors.js';
import { createKafka, ensureCatalogueTopics, readToEnd } from '../../lib/kafka.js';
import { AvroRegistry } from '../../lib/registry.js';
import { topicName } from '../../schemas/topics.js';
import type { RawEnvelope } from '../../schemas/records.js';
import { createTestContext, type TestContext } from '../support/context.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = createTestContext();
  await ctx.createTopics();
});
afterAll(async () => {
  await ctx.cleanup();
});

const envelope: RawEnvelope = {
  connection_id: 'acme-arcadia',
  connection_version: 3,
  provider: 'arcadia',
  entity_kind: 'meter',
  format: 'arcadia.meter',
  external_id: 'mtr_1234',
  sync_run_id: 'run-1',
  request_url: 'http://127.0.0.1/plug/meters?page=0&size=20',
  request_page: '0',
  received_at: 1_722_000_000_123,
  content_type: 'application/json',
  payload: '{"id":"mtr_1234","meterNumber":"23220"}',
  meta: { range_from: '2024-01-01' },
};

describe('Kafka and the schema registry', () => {
  it('round-trips an Avro record through the registry on real Kafka', async () => {
    const serde = await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, 'rawEntities');
    const topic = topicName(ctx.config.kafka.topicPrefix, 'rawEntities');
    const producer = ctx.kafka.producer({ idempotent: true });
    await producer.connect();
    await producer.send({
      topic,
      messages: [{ key: 'acme-arcadia/mtr_1234', value: serde.encode(envelope) }],
    });
    await producer.disconnect();

    const received: RawEnvelope[] = [];
    const keys: string[] = [];
    await readToEnd(ctx.kafka, topic, async (m) => {
      keys.push(m.key!.toString());
      received.push(await ctx.registry.decode<RawEnvelope>(m.value));
    });
    expect(keys).toEqual(['acme-arcadia/mtr_1234']);
    expect(received).toEqual([envelope]);
    // A fresh client resolves the writer schema by id from the registry, not from its cache.
    const fresh = AvroRegistry.fromConfig(ctx.config);
    const framed = serde.encode(envelope);
    expect(await fresh.decode<RawEnvelope>(framed)).toEqual(envelope);
  });

  it('rejects a schema change that breaks BACKWARD compatibility', async () => {
    const subject = `${ctx.config.kafka.topicPrefix}compat-value`;
    const v1 = {
      type: 'record',
      name: 'Thing',
      namespace: 'io.meterflow.test',
      fields: [{ name: 'a', type: 'string' }],
    };
    await ctx.registry.register(subject, v1);
    // Adding a field with a default is compatible...
    const v2 = { ...v1, fields: [...v1.fields, { name: 'b', type: 'int', default: 0 }] };
    await expect(ctx.registry.register(subject, v2)).resolves.toMatchObject({ schemaId: expect.any(Number) });
    // ...adding a required field is not: old records could not be read with it.
    const v3 = { ...v1, fields: [...v2.fields, { name: 'c', type: 'string' }] };
    const err = await ctx.registry.register(subject, v3).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeterflowError);
    expect((err as MeterflowError).code).toBe('REG_INCOMPATIBLE');
  });

  it('several processes registering a new subject at once all succeed, with one id', async () => {
    // Processes starting together race for a subject's first version: the loser used to see the
    // subject before its BACKWARD rule was set and failed its start-up.
    for (let round = 0; round < 3; round++) {
      const subject = `${ctx.config.kafka.topicPrefix}race-${round}-value`;
      const schema = {
        type: 'record',
        name: 'Race',
        namespace: 'io.meterflow.test',
        fields: [{ name: 'a', type: 'string' }],
      };
      const clients = Array.from({ length: 4 }, () => AvroRegistry.fromConfig(ctx.config));
      const serdes = await Promise.all(clients.map((c) => c.register(subject, schema)));
      expect(new Set(serdes.map((s) => s.schemaId)).size).toBe(1);
    }
  });

  it('quarantine-worthy bytes are reported as REG_DECODE, not as a crash', async () => {
    await expect(ctx.registry.decode(Buffer.from('{"not":"avro"}'))).rejects.toMatchObject({
      code: 'REG_DECODE',
    });
    await expect(ctx.registry.decode(Buffer.from([0, 0x7f, 0xff, 0xff, 0xff, 1, 2]))).rejects.toMatchObject({
      code: 'REG_DECODE',
    });
  });
});

describe('ClickHouse', () => {
  it('inserts rows in a row format and reads them back', async () => {
    const ch = ctx.clickhouse();
    const db = ctx.config.clickhouse.database;
    await ch.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
    await ch.command({
      query: `CREATE TABLE ${db}.smoke (meter String, day Date, kwh Float64) ENGINE = MergeTree() ORDER BY (meter, day)`,
    });
    const rows = [
      { meter: "m'1", day: '2024-03-31', kwh: 12.5 },
      { meter: 'm2; DROP TABLE x', day: '2024-10-27', kwh: 0.25 },
    ];
    await ch.insert({ table: `${db}.smoke`, values: rows, format: 'JSONEachRow' });
    const result = await ch.query({
      query: `SELECT meter, toString(day) AS day, kwh FROM ${db}.smoke ORDER BY meter`,
      format: 'JSONEachRow',
    });
    expect(await result.json()).toEqual(rows);
  });
});

describe('unreachable services', () => {
  it('names Kafka when the brokers do not answer', async () => {
    const config = { ...ctx.config, kafka: { ...ctx.config.kafka, brokers: ['127.0.0.1:1'] } };
    const admin = createKafka(config, '-unreachable', 0).admin();
    const err = await (async () => {
      await admin.connect();
      await ensureCatalogueTopics(admin, config);
    })().catch((e: unknown) => e);
    await admin.disconnect().catch(() => undefined);
    expect(err).toBeDefined();
    expect(String((err as Error).message)).toMatch(/127\.0\.0\.1:1|ECONNREFUSED|Connection error/);
  });

  it('names the registry when it does not answer', async () => {
    const registry = new AvroRegistry('http://127.0.0.1:1/apis/ccompat/v7');
    const err = await registry
      .register('x-value', { type: 'record', name: 'X', fields: [] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REG_UNREACHABLE', retriable: true });
    expect((err as Error).message).toContain('http://127.0.0.1:1/apis/ccompat/v7');
  });

  it('reports ClickHouse as not answering', async () => {
    const ch = createClient({ url: 'http://127.0.0.1:1', request_timeout: 2_000 });
    const ping = await ch.ping();
    expect(ping.success).toBe(false);
    await ch.close();
  });
});
