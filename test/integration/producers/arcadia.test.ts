import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../support/context.js';
import { startArcadiaSimulator, type ArcadiaSimulator } from '../../../simulators/arcadia.js';
import { runSync } from '../../../producers/sync/engine.js';
import type { ConnectionConfig } from '../../../schemas/connection.js';
import { arcadiaConnection, readEnvelopes, readRuns, readStates, syncDeps, type Read } from './helpers.js';
import type { RawEnvelope } from '../../../schemas/records.js';

const ENV = { ARC_ID: 'arc-client-id', ARC_SECRET: 'arc-client-secret' };
const TO = '2024-02-10T00:00:00Z';

function arcadiaTestConnection(
  sim: ArcadiaSimulator,
  options: Record<string, unknown> = {},
): ConnectionConfig {
  return arcadiaConnection(sim, 'arc-test', {
    options: {
      intervals: 'normalized',
      activationPollMs: 0,
      correlationId: ['customer-001', 'customer-002', 'customer-003'],
      ...options,
    },
    http: {
      timeoutMs: 10_000,
      maxResponseBytes: 8 * 1024 * 1024,
      maxRetries: 6,
      backoffBaseMs: 5,
      backoffMaxMs: 50,
    },
  });
}

/** Sum of non-null normalized importKwh per meter, and the number of such slots. */
function normalizedTotals(envs: Read<RawEnvelope>[]): Map<string, { n: number; kwh: number }> {
  const out = new Map<string, { n: number; kwh: number }>();
  const seen = new Set<string>();
  for (const e of envs) {
    if (e.value.format !== 'arcadia.normalizedIntervals') continue;
    const body = JSON.parse(e.value.payload) as {
      startAt: string;
      readings: { importKwh: (number | null)[] }[];
    };
    const start = Date.parse(body.startAt);
    const acc = out.get(e.value.external_id) ?? { n: 0, kwh: 0 };
    body.readings[0]!.importKwh.forEach((v, i) => {
      const k = `${e.value.external_id}|${start + i * 900_000}`;
      if (v === null || seen.has(k)) return;
      seen.add(k);
      acc.n++;
      acc.kwh += v;
    });
    out.set(e.value.external_id, acc);
  }
  return out;
}

describe('arcadia connector against the simulator', () => {
  let sim: ArcadiaSimulator;
  let ctx: TestContext;
  beforeAll(async () => {
    sim = await startArcadiaSimulator({ credentials: 3, sites: 5, meters: 12, days: 40, activationPolls: 2 });
    ctx = createTestContext({ partitions: 3 });
    await ctx.createTopics();
  });
  afterAll(async () => {
    await sim?.close();
    await ctx?.cleanup();
  });

  it('emits every meter, site and interval, activates meters, and checkpoints per chunk', async () => {
    const conn = arcadiaTestConnection(sim);
    const run = await runSync(conn, syncDeps(ctx, ENV), { mode: 'incremental', to: TO });
    expect(run.error_messages).toEqual([]);
    expect(run.status).toBe('succeeded');
    expect(run.snapshot_complete).toBe(true);

    const truth = sim.truth();
    const entities = await readEnvelopes(ctx, 'rawEntities');
    const meterIds = new Set(
      entities.filter((e) => e.value.format === 'arcadia.meter').map((e) => e.value.external_id),
    );
    expect(meterIds).toEqual(new Set(truth.meters.map((m) => m.id)));
    const siteIds = new Set(
      entities.filter((e) => e.value.format === 'arcadia.site').map((e) => e.value.external_id),
    );
    expect(siteIds).toEqual(new Set(truth.meters.map((m) => m.siteId)));
    for (const e of entities) expect(e.value.request_url).not.toMatch(/secret|token/i);
    // snapshot_complete on every partition
    const markers = entities.filter((e) => e.value.entity_kind === 'snapshot_complete');
    expect(new Set(markers.map((m) => m.partition))).toEqual(new Set([0, 1, 2]));
    // The counts let the entities stage refuse to deactivate a kind the run saw none of.
    expect(JSON.parse(markers[0]!.value.payload)).toEqual({
      kinds: ['asset', 'meter'],
      meters: sim.truth().meters.length,
      assets: new Set(sim.truth().meters.map((m) => m.siteId)).size,
    });

    const usage = await readEnvelopes(ctx, 'rawUsage');
    expect(usage.every((u) => u.value.format === 'arcadia.normalizedIntervals')).toBe(true);
    const totals = normalizedTotals(usage);
    for (const m of truth.meters) {
      let n = 0;
      let kwh = 0;
      for (const iv of truth.intervals(m.id, Date.parse('2024-01-01T00:00:00Z'), Date.parse(TO))) {
        if (iv.missing) continue;
        n++;
        kwh += iv.importKwh;
      }
      expect(totals.get(m.id)?.n ?? 0).toBe(n);
      expect(totals.get(m.id)?.kwh ?? 0).toBeCloseTo(kwh, 6);
    }
    const states = await readStates(ctx);
    const wm = new Map(states.map((s) => [s.value.scope, s.value.watermark]));
    for (const m of truth.meters) expect(wm.get(`usage:${m.id}`)).toBe(new Date(TO).toISOString());
    const runs = await readRuns(ctx);
    expect(runs.filter((r) => r.value.sync_run_id === run.sync_run_id).map((r) => r.value.status)).toEqual([
      'running',
      'succeeded',
    ]);
  });

  it('is complete under paging faults, 429 storms, 5xx, HTML error pages and tokens expiring mid-run', async () => {
    const faulty = await startArcadiaSimulator({
      seed: 7,
      credentials: 2,
      sites: 4,
      meters: 45,
      days: 35,
      intervalsActive: true,
      faults: {
        duplicateAcrossPages: true,
        shiftDuringPaging: { count: 1 },
        rateLimit: { count: 4, retryAfterSeconds: 1 },
        serverError: { count: 3 },
        htmlError: { count: 2, status: 502 },
      },
    });
    try {
      const conn = arcadiaTestConnection(faulty, {
        pageSize: 10,
        // The other interval endpoint than the first test's.
        intervals: 'raw',
        correlationId: ['customer-001', 'customer-002'],
      });
      let chunks = 0;
      const run = await runSync(
        { ...conn, id: 'arc-faults' },
        syncDeps(ctx, ENV, {
          onEvent: (e) => e.name === 'sync.chunk.committed' && ++chunks === 10 && faulty.expireTokens(),
        }),
        {
          mode: 'incremental',
          to: '2024-02-05T00:00:00Z',
        },
      );
      expect(run.error_messages).toEqual([]);
      expect(run.snapshot_complete).toBe(true);
      const truth = faulty.truth();
      const entities = (await readEnvelopes(ctx, 'rawEntities')).filter(
        (e) => e.value.connection_id === 'arc-faults',
      );
      const meterIds = new Set(
        entities.filter((e) => e.value.format === 'arcadia.meter').map((e) => e.value.external_id),
      );
      expect(meterIds).toEqual(new Set(truth.meters.map((m) => m.id)));
      const usage = (await readEnvelopes(ctx, 'rawUsage')).filter(
        (e) => e.value.connection_id === 'arc-faults',
      );
      expect(new Set(usage.map((u) => u.value.external_id))).toEqual(meterIds);
      expect(usage.every((u) => u.value.format === 'arcadia.intervals')).toBe(true);
      expect(faulty.stats().byStatus['401']).toBeGreaterThanOrEqual(1);
      expect(faulty.stats().faults).toMatchObject({
        rateLimit: 4,
        serverError: 3,
        htmlError: 2,
        shiftDuringPaging: 1,
      });
    } finally {
      await faulty.close();
    }
  });

  it('sandbox mode sends X-Sandbox-Mode: true and reads the sandbox data set; error bodies are surfaced', async () => {
    const run = await runSync(
      { ...arcadiaTestConnection(sim, { sandbox: true, correlationId: 'sandbox-001' }), id: 'arc-sandbox' },
      syncDeps(ctx, ENV),
      { mode: 'entities' },
    );
    expect(run.status).toBe('succeeded');
    const entities = (await readEnvelopes(ctx, 'rawEntities')).filter(
      (e) => e.value.connection_id === 'arc-sandbox',
    );
    expect(
      new Set(entities.filter((e) => e.value.format === 'arcadia.meter').map((e) => e.value.external_id)),
    ).toEqual(new Set(sim.truth({ sandbox: true }).meters.map((m) => m.id)));

    const bad = await runSync(
      { ...arcadiaTestConnection(sim), id: 'arc-badsecret' },
      syncDeps(ctx, { ...ENV, ARC_SECRET: 'wrong' }),
      { mode: 'entities' },
    );
    expect(bad.status).not.toBe('succeeded');
    expect(bad.error_messages.join()).toContain('invalid_client: Invalid client credentials');
    expect(bad.error_messages.join()).not.toContain('wrong');
  });
});
