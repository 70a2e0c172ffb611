/**
 * The entities stage on real Kafka: canonical assets and meters keep first_seen across syncs;
 * after a complete snapshot (marker on every partition) entities the run did not see are
 * deactivated; a partial snapshot (no marker) deactivates nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Meter, RawEnvelope } from '../../../schemas/records.js';
import { topicName } from '../../../schemas/topics.js';
import * as processors from '../../../processors/index.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually, readTopic } from '../../support/pipeline.js';

let ctx: TestContext;
let running: processors.Processors;

function meter(run: string, id: string, at: number): RawEnvelope {
  return {
    connection_id: 'acme',
    provider: 'arcadia',
    entity_kind: 'meter',
    format: 'arcadia.meter',
    external_id: id,
    sync_run_id: run,
    request_url: 'http://127.0.0.1/plug/meters?page=0&size=20',
    request_page: '0',
    received_at: at,
    content_type: 'application/json',
    payload: JSON.stringify({ id, serviceType: 'electric', site: { id: 'site_1', siteName: 'Head office' } }),
    meta: {},
  };
}

async function sendRun(run: string, ids: string[], at: number, complete: boolean): Promise<void> {
  const serde = await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, 'rawEntities');
  const topic = topicName(ctx.config.kafka.topicPrefix, 'rawEntities');
  const producer = ctx.kafka.producer({ idempotent: true });
  await producer.connect();
  await producer.send({
    topic,
    messages: ids.map((id) => ({ key: `acme/${id}`, value: serde.encode(meter(run, id, at)) })),
  });
  if (complete) {
    const marker: RawEnvelope = {
      ...meter(run, '*', at),
      entity_kind: 'snapshot_complete',
      format: 'snapshot_complete',
      payload: '{"kinds":["asset","meter"]}',
    };
    await producer.send({
      topic,
      messages: [0, 1, 2].map((partition) => ({ key: 'acme/*', value: serde.encode(marker), partition })),
    });
  }
  await producer.disconnect();
}

async function latestMeters(): Promise<Map<string, Meter>> {
  const latest = new Map<string, Meter>();
  for (const r of await readTopic(ctx, 'meters')) latest.set(r.value.external_id, r.value);
  return latest;
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  await ctx.createTopics();
  running = processors.create({ stages: ['entities'] }, ctx);
  await running.start();
  await running.ready;
});
afterAll(async () => {
  await running?.stop();
  await ctx.cleanup();
});

describe('entities stage', () => {
  it('deactivates only after a complete snapshot, and keeps first_seen', async () => {
    await sendRun('run-1', ['m1', 'm2', 'm3'], 1_000, true);
    expect(await eventually(async () => (await latestMeters()).size === 3, 60_000, 500)).toBe(true);

    // A partial snapshot that saw only m1: nothing may be deactivated.
    await sendRun('run-2', ['m1'], 2_000, false);
    expect(
      await eventually(async () => (await latestMeters()).get('m1')?.sync_run_id === 'run-2', 60_000, 500),
    ).toBe(true);
    expect([...(await latestMeters()).values()].every((m) => m.active)).toBe(true);

    // A complete snapshot without m3: m3 becomes inactive, the others stay active.
    await sendRun('run-3', ['m1', 'm2'], 3_000, true);
    expect(
      await eventually(async () => (await latestMeters()).get('m3')?.active === false, 60_000, 500),
    ).toBe(true);
    const latest = await latestMeters();
    expect(latest.get('m1')).toMatchObject({ active: true, first_seen: 1_000, last_seen: 3_000 });
    expect(latest.get('m2')).toMatchObject({ active: true, first_seen: 1_000 });
    expect(latest.get('m3')).toMatchObject({
      active: false,
      first_seen: 1_000,
      last_seen: 1_000,
      sync_run_id: 'run-3',
    });
    expect(latest.get('m1')?.asset_external_id).toBe('site_1');
  });
});
