/**
 * The entities stage on real Kafka: canonical assets and meters keep first_seen across syncs;
 * after a complete snapshot (marker on every partition) entities the run did not see are
 * deactivated; a partial snapshot (no marker) deactivates nothing, and neither does a complete one
 * that saw no meters at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Meter, RawEnvelope } from '../../../schemas/records.js';
import { topicName } from '../../../schemas/topics.js';
import * as processors from '../../../processors/index.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually, readTopic } from '../../support/pipeline.js';

let ctx: TestContext;
let running: processors.Processors;

function meter(connection: string, run: string, id: string, at: number): RawEnvelope {
  return {
    connection_id: connection,
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

/** One sync run's meters; with a marker (its payload), the run declares a complete snapshot. */
async function sendRun(
  connection: string,
  run: string,
  ids: string[],
  at: number,
  marker?: Record<string, unknown>,
): Promise<void> {
  const serde = await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, 'rawEntities');
  const topic = topicName(ctx.config.kafka.topicPrefix, 'rawEntities');
  const producer = ctx.kafka.producer({ idempotent: true });
  await producer.connect();
  if (ids.length > 0)
    await producer.send({
      topic,
      messages: ids.map((id) => ({
        key: `${connection}/${id}`,
        value: serde.encode(meter(connection, run, id, at)),
      })),
    });
  if (marker) {
    const value: RawEnvelope = {
      ...meter(connection, run, '*', at),
      entity_kind: 'snapshot_complete',
      format: 'snapshot_complete',
      payload: JSON.stringify(marker),
    };
    await producer.send({
      topic,
      messages: [0, 1, 2].map((partition) => ({
        key: `${connection}/*`,
        value: serde.encode(value),
        partition,
      })),
    });
  }
  await producer.disconnect();
}

async function latestMeters(connection: string): Promise<Map<string, Meter>> {
  const latest = new Map<string, Meter>();
  for (const r of await readTopic(ctx, 'meters'))
    if (r.value.connection_id === connection) latest.set(r.value.external_id, r.value);
  return latest;
}

const COMPLETE = { kinds: ['asset', 'meter'] };

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
    const meters = () => latestMeters('acme');
    await sendRun('acme', 'run-1', ['m1', 'm2', 'm3'], 1_000, COMPLETE);
    expect(await eventually(async () => (await meters()).size === 3, 60_000, 500)).toBe(true);

    // A partial snapshot that saw only m1: nothing may be deactivated.
    await sendRun('acme', 'run-2', ['m1'], 2_000);
    expect(
      await eventually(async () => (await meters()).get('m1')?.sync_run_id === 'run-2', 60_000, 500),
    ).toBe(true);
    expect([...(await meters()).values()].every((m) => m.active)).toBe(true);

    // A complete snapshot without m3: m3 becomes inactive, the others stay active.
    await sendRun('acme', 'run-3', ['m1', 'm2'], 3_000, COMPLETE);
    expect(await eventually(async () => (await meters()).get('m3')?.active === false, 60_000, 500)).toBe(
      true,
    );
    const latest = await meters();
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

  it('a complete marker counting 0 meters deactivates no meter; a later real one still does', async () => {
    // A provider answering an empty list must never read as "every meter is gone".
    const meters = () => latestMeters('empty');
    await sendRun('empty', 'run-1', ['m1', 'm2'], 1_000, { ...COMPLETE, meters: 2, assets: 1 });
    expect(await eventually(async () => (await meters()).size === 2, 60_000, 500)).toBe(true);

    await sendRun('empty', 'run-2', [], 2_000, { ...COMPLETE, meters: 0, assets: 0 });
    // A later run makes the stage's progress past run-2's markers observable.
    await sendRun('empty', 'run-3', ['m1'], 3_000);
    expect(
      await eventually(async () => (await meters()).get('m1')?.sync_run_id === 'run-3', 60_000, 500),
    ).toBe(true);
    expect([...(await meters()).values()].every((m) => m.active)).toBe(true);

    await sendRun('empty', 'run-4', ['m1'], 4_000, { ...COMPLETE, meters: 1, assets: 1 });
    expect(await eventually(async () => (await meters()).get('m2')?.active === false, 60_000, 500)).toBe(
      true,
    );
  });
});
