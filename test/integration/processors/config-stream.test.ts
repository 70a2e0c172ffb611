/**
 * Configuration as a stream, on the processors' side: processors started with NO connection
 * files apply the versions on the `connections` topic. A meter whose classification the
 * published connection does not map is quarantined under that version; once a fixed version is
 * published the same envelope (a re-snapshot, or the redriven original) lands in `meters` with
 * the new version, without a restart; usage carries the version too; and an envelope naming a
 * version the topic never had is quarantined with NORM_CONNECTION_VERSION_UNKNOWN, not dropped
 * and not applied from a guess.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as processors from '../../../processors/index.js';
import { RECHECK_MS } from '../../../processors/runtime/connections.js';
import { publishConnections } from '../../../producers/sync/publish.js';
import { parseConnection } from '../../../producers/sync/connections.js';
import type { ConnectionConfig } from '../../../schemas/connection.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually, produceRaw, readTopic } from '../../support/pipeline.js';

const ID = 'acme-stream';
const T = Date.UTC(2024, 5, 1);
const Q = 15 * 60_000;

/** A generic connection; `fixed` adds the meterTypes entry for the provider's "ww-07" code. */
function connection(fixed: boolean): ConnectionConfig {
  return parseConnection(
    {
      id: ID,
      provider: 'generic',
      baseUrls: { production: 'http://127.0.0.1:9' },
      auth: { type: 'apiKey', in: 'header', name: 'X-Key', keys: [{ valueEnv: 'ACME_STREAM_KEY' }] },
      timeZone: 'Europe/Helsinki',
      meterTypes: {
        el: { type: 'Energy', subtype: 'Off-site Electricity' },
        ...(fixed ? { 'ww-07': { type: 'Water', subtype: 'Grey' } } : {}),
      },
      generic: {
        format: 'json',
        meters: {
          path: '/meters',
          fields: { externalId: 'id', assetId: 'site', type: 'kind', unit: 'unit' },
        },
        usage: {
          path: '/usage/{meterId}',
          kind: 'consumption',
          fields: { start: 'from', end: 'to', value: 'value' },
        },
      },
    },
    `${ID}.yaml`,
  );
}

const meterPayload = JSON.stringify({ id: 'w1', site: 'site1', kind: 'ww-07', unit: 'm3' });

function envelope(over: Partial<RawEnvelope>): RawEnvelope {
  return {
    connection_id: ID,
    provider: 'generic',
    entity_kind: 'meter',
    format: 'generic.meter',
    external_id: 'w1',
    sync_run_id: 'run-1',
    request_url: 'http://127.0.0.1:9/meters',
    request_page: null,
    received_at: T,
    content_type: 'application/json',
    payload: meterPayload,
    meta: {},
    ...over,
  };
}

function usage(version: number, values: number[]): RawEnvelope {
  return envelope({
    entity_kind: 'usage',
    format: 'generic.usage',
    sync_run_id: 'run-2',
    request_url: 'http://127.0.0.1:9/usage/w1',
    payload: JSON.stringify(
      values.map((value, i) => ({
        from: new Date(T + i * Q).toISOString(),
        to: new Date(T + (i + 1) * Q).toISOString(),
        value,
      })),
    ),
    meta: { meter_format: 'generic.meter', meter_payload: meterPayload },
    connection_version: version,
  });
}

let ctx: TestContext;
let running: processors.Processors;

async function publish(fixed: boolean) {
  const r = await publishConnections(ctx, [{ connection: connection(fixed), source: `test/${ID}.yaml` }]);
  return r.published[0]!;
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 2 });
  await ctx.createTopics();
  // No connection files: the processors know the connection only through the topic.
  running = processors.create({ stages: ['entities', 'usage'] }, ctx);
  await running.start();
  await running.ready;
});
afterAll(async () => {
  await running?.stop();
  await ctx.cleanup();
});

describe('processors apply the connections topic', () => {
  it('a meter quarantined under version 1 lands with version 2 once the fix is published, no restart', async () => {
    const v1 = await publish(false);
    expect(v1).toMatchObject({ version: 1, changed: true });
    // The same content again is no new version.
    expect(await publish(false)).toMatchObject({ version: 1, changed: false });

    await produceRaw(ctx, 'rawEntities', [envelope({ connection_version: 1 })]);
    let quarantined: Awaited<ReturnType<typeof readTopic<'quarantine'>>> = [];
    expect(
      await eventually(
        async () => {
          quarantined = await readTopic(ctx, 'quarantine');
          return quarantined.length >= 1;
        },
        60_000,
        300,
      ),
    ).toBe(true);
    expect(quarantined.map((q) => [q.value.reason_code, q.value.connection_version])).toEqual([
      ['NORM_METER_TYPE_UNMAPPED', 1],
    ]);
    expect((await readTopic(ctx, 'meters')).length).toBe(0);

    // The fix: published as version 2 (as a producer does before its next sync).
    expect(await publish(true)).toMatchObject({ version: 2, changed: true });
    // The re-snapshot names version 2; the redriven original still names version 1 and gets
    // the later version too: a fix applies to what was quarantined under the old one.
    await produceRaw(ctx, 'rawEntities', [
      envelope({ connection_version: 2, sync_run_id: 'run-2' }),
      envelope({ connection_version: 1, external_id: 'w1', sync_run_id: 'run-1' }),
    ]);
    let meters: Awaited<ReturnType<typeof readTopic<'meters'>>> = [];
    expect(
      await eventually(
        async () => {
          meters = await readTopic(ctx, 'meters');
          return meters.length >= 2;
        },
        60_000,
        300,
      ),
    ).toBe(true);
    for (const m of meters) {
      expect(m.value).toMatchObject({
        external_id: 'w1',
        meter_type: 'Water',
        meter_subtype: 'Grey',
        connection_version: 2,
      });
    }
    expect((await readTopic(ctx, 'quarantine')).length).toBe(1);
  });

  it('usage carries the version it was processed with', async () => {
    await produceRaw(ctx, 'rawUsage', [usage(2, [1.5, 2.5])]);
    let batches: Awaited<ReturnType<typeof readTopic<'usage'>>> = [];
    expect(
      await eventually(
        async () => {
          batches = await readTopic(ctx, 'usage');
          return batches.length >= 1;
        },
        60_000,
        300,
      ),
    ).toBe(true);
    expect(batches.map((b) => [b.value.meter_external_id, b.value.connection_version])).toEqual([['w1', 2]]);
    expect(batches[0]!.value.intervals.map((i) => i.value)).toEqual([1.5, 2.5]);
  });

  it('an envelope naming a version the topic never had is quarantined with its reason, then passes once it exists', async () => {
    const before = (await readTopic(ctx, 'quarantine')).length;
    const started = Date.now();
    await produceRaw(ctx, 'rawUsage', [usage(3, [4])]);
    let records: Awaited<ReturnType<typeof readTopic<'quarantine'>>> = [];
    expect(
      await eventually(
        async () => {
          records = (await readTopic(ctx, 'quarantine')).slice(before);
          return records.length >= 1;
        },
        60_000,
        300,
      ),
    ).toBe(true);
    // One catch-up of the table (bounded), not a wait for ever.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(records.map((q) => [q.value.reason_code, q.value.stage, q.value.connection_version])).toEqual([
      ['NORM_CONNECTION_VERSION_UNKNOWN', 'usage', 3],
    ]);
    expect(records[0]!.value.message).toContain('version 3');
    expect(records[0]!.value.message).toContain('only version 2');

    // Version 3 published (a comment-only change would not be one: change the content), and the
    // same record again (a redrive) is processed under it.
    const c = connection(true);
    const v3 = await publishConnections(ctx, [
      { connection: { ...c, rollover: { ...c.rollover, default: 99_999 } }, source: 'test' },
    ]);
    expect(v3.published[0]).toMatchObject({ version: 3, changed: true });
    // A version found missing is looked for again after RECHECK_MS, not for every record.
    await new Promise((r) => setTimeout(r, RECHECK_MS + 200));
    await produceRaw(ctx, 'rawUsage', [usage(3, [4])]);
    expect(
      await eventually(
        async () => (await readTopic(ctx, 'usage')).some((b) => b.value.connection_version === 3),
        60_000,
        300,
      ),
    ).toBe(true);
  });
});
