/**
 * A schema registry that cannot answer for longer than the runtime's retry budget: the records
 * wait for it and are processed once it is back; nothing is quarantined for an outage that says
 * nothing about them. A loopback proxy in front of the real registry refuses lookups by id while
 * the outage lasts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AvroRegistry } from '../../../lib/registry.js';
import * as processors from '../../../processors/index.js';
import { connectionSchema } from '../../../schemas/connection.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import { TOPICS } from '../../../schemas/topics.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually, produceBytes, readTopic } from '../../support/pipeline.js';

const CONNECTION = connectionSchema.parse({
  id: 'acme',
  provider: 'generic',
  baseUrls: { production: 'http://127.0.0.1:9' },
  auth: { type: 'none' },
  meterTypes: { electricity: { type: 'Energy', subtype: 'Off-site Electricity' } },
  generic: {
    meters: { path: '/meters', fields: { externalId: 'id', assetId: 'site', type: 'kind', unit: 'unit' } },
    usage: {
      path: '/usage/{meterId}',
      kind: 'consumption',
      fields: { start: 'from', end: 'to', value: 'v' },
    },
  },
});

let ctx: TestContext;
let server: Server;
let running: processors.Processors | undefined;
let outage: 401 | 503 | null = null;
let refused = 0;

beforeAll(async () => {
  ctx = createTestContext({ partitions: 1 });
  await ctx.createTopics();
  const upstream = new URL(ctx.config.registry.url);
  server = createServer((req, res) => {
    if (outage !== null && (req.url ?? '').includes('/schemas/ids/')) {
      refused++;
      res.writeHead(outage, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error_code: outage, message: 'not now' }));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      fetch(new URL(req.url ?? '/', upstream.origin), {
        method: req.method ?? 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
      })
        .then(async (answer) => {
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const registry = new AvroRegistry(`http://127.0.0.1:${port}${upstream.pathname}`);
  running = processors.create({ stages: ['entities'], connections: [CONNECTION] }, { ...ctx, registry });
  await running.start();
  await running.ready;
});

afterAll(async () => {
  await running?.stop();
  await new Promise<void>((r) => server.close(() => r()));
  await ctx.cleanup();
});

describe('a registry outage longer than the retry budget', () => {
  it.each([503, 401] as const)('with %s: records wait, then flow; none is quarantined', async (status) => {
    // A writer schema the stage has never seen, so decoding must look it up by id.
    const subject = `${ctx.config.kafka.topicPrefix}outage-${status}-value`;
    // A field of its own makes it a new schema id for every case (the registry shares ids by content).
    const base = TOPICS.rawEntities.schema as { fields: unknown[] };
    const writer = {
      ...base,
      fields: [...base.fields, { name: `x${status}`, type: ['null', 'string'], default: null }],
    };
    const serde = await ctx.registry.register<RawEnvelope>(subject, writer);
    const id = `m-${status}`;
    const envelope: RawEnvelope = {
      connection_id: 'acme',
      provider: 'generic',
      entity_kind: 'meter',
      format: 'generic.meter',
      external_id: id,
      sync_run_id: 'run-1',
      request_url: 'http://127.0.0.1:9/meters',
      request_page: null,
      received_at: Date.UTC(2024, 0, 1),
      content_type: 'application/json',
      payload: JSON.stringify({ id, site: 's1', kind: 'electricity', unit: 'kWh' }),
      meta: {},
    };
    outage = status;
    refused = 0;
    await produceBytes(ctx, 'rawEntities', [{ key: `acme/${id}`, value: serde.encode(envelope) }]);
    // Well past the runtime's five attempts.
    expect(await eventually(() => Promise.resolve(refused >= 8), 120_000, 250)).toBe(true);
    outage = null;
    expect(
      await eventually(
        async () => (await readTopic(ctx, 'meters')).some((m) => m.value.external_id === id),
        120_000,
        500,
      ),
    ).toBe(true);
    expect((await readTopic(ctx, 'quarantine')).map((q) => q.value.reason_code)).toEqual([]);
  });
});
