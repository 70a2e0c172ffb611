/**
 * The entities stage never deactivates a kind of entity that the run's complete snapshot saw none
 * of: a marker counting 0 meters leaves every meter of the connection active.
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

async function send(run: string, ids: string[], at: number, marker?: Record<string, unknown>): Promise<void> {
  const serde = await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, 'rawEntities');
  const topic = topicName(ctx.config.kafka.topicPrefix, 'rawEntities');
  const producer = ctx.kafka.producer({ idempotent: true });
  await producer.connect();
  if (ids.length > 0)
    await producer.send({
      topic,
      messages: ids.map((id) => ({ key: `acme/${id}`, value: serde.encode(meter(run, id, at)) })),
    });
  if (marker) {
    const value: RawEnvelope = {
      ...meter(run, '*', at),
      entity_kind: 'snapshot_complete',
      format: 'snapshot_complete',
      payload: JSON.stringify(marker),
    };
    await producer.send({
      topic,
      messages: [0].map((partition) => ({ key: 'acme/*', value: serde.encode(value), partition })),
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
  ctx = createTestContext({ partitions: 1 });
  await ctx.createTopics();
  running = processors.create({ stages: ['entities'] }, ctx);
  await running.start();
  await running.ready;
});
afterAll(async () => {
  await running?.stop();
  await ctx.cleanup();
});

describe('entities stage and an empty snapshot', () => {
  it('a complete marker counting 0 meters deactivates no meter; a later real one still does', async () => {
    await send('run-1', ['m1', 'm2'], 1_000, { kinds: ['asset', 'meter'], meters: 2, assets: 1 });
    expect(await eventually(async () => (await latestMeters()).size === 2, 60_000, 500)).toBe(true);

    await send('run-2', [], 2_000, { kinds: ['asset', 'meter'], meters: 0, assets: 0 });
    // A later run makes the stage's progress past run-2's markers observable.
    await send('run-3', ['m1'], 3_000);
    expect(
      await eventually(async () => (await latestMeters()).get('m1')?.sync_run_id === 'run-3', 60_000, 500),
    ).toBe(true);
    expect([...(await latestMeters()).values()].every((m) => m.active)).toBe(true);

    await send('run-4', ['m1'], 4_000, { kinds: ['asset', 'meter'], meters: 1, assets: 1 });
    expect(
      await eventually(async () => (await latestMeters()).get('m2')?.active === false, 60_000, 500),
    ).toBe(true);
  });
});
