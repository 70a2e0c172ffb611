/**
 * "Respects checkpointed offsets": a run killed after N committed chunks and started again ends with
 * the same topic contents as an uninterrupted run, apart from duplicates; watermarks never pass data
 * that was not emitted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../support/context.js';
import { startArcadiaSimulator, type ArcadiaSimulator } from '../../../simulators/arcadia.js';
import { startEnerKeySimulator, type EnerKeySimulator } from '../../../simulators/enerkey.js';
import { runSync } from '../../../producers/sync/engine.js';
import type { ConnectionConfig } from '../../../schemas/connection.js';
import {
  arcadiaConnection,
  arcadiaEnv,
  connection,
  readEnvelopes,
  readStates,
  syncDeps,
  usageKeys,
} from './helpers.js';

const TO_ISO = '2024-03-31T00:00:00Z';
const HTTP = {
  timeoutMs: 10_000,
  maxResponseBytes: 8 * 1024 * 1024,
  maxRetries: 6,
  backoffBaseMs: 5,
  backoffMaxMs: 50,
};

describe('resume after a crash', () => {
  let ctx: TestContext;
  let arc: ArcadiaSimulator;
  let ek: EnerKeySimulator;
  beforeAll(async () => {
    ctx = createTestContext({ partitions: 3 });
    await ctx.createTopics();
    arc = await startArcadiaSimulator({
      credentials: 2,
      sites: 3,
      meters: 6,
      days: 90,
      intervalsActive: true,
    });
    ek = await startEnerKeySimulator({ facilities: 4, metersPerFacility: [2, 3], days: 90 });
  });
  afterAll(async () => {
    await arc?.close();
    await ek?.close();
    await ctx?.cleanup();
  });

  async function crashAndResume(
    make: (id: string) => ConnectionConfig,
    env: Record<string, string>,
    killAfter: number,
  ): Promise<void> {
    const full = make('full');
    const r1 = await runSync(full, syncDeps(ctx, env), { mode: 'incremental', to: TO_ISO });
    expect(r1.status).toBe('succeeded');

    const crash = make('crash');
    const abort = new AbortController();
    let committed = 0;
    const killed = await runSync(
      crash,
      syncDeps(ctx, env, {
        onEvent: (e) =>
          e.name === 'sync.chunk.committed' && ++committed === killAfter && abort.abort(new Error('killed')),
      }),
      {
        mode: 'incremental',
        to: TO_ISO,
        signal: abort.signal,
      },
    );
    expect(killed.status).toBe('failed');
    expect(killed.usage_chunks).toBeGreaterThanOrEqual(killAfter);
    expect(killed.usage_chunks).toBeLessThan(r1.usage_chunks);

    // The watermarks after the crash cover exactly what reached raw.usage.
    const usageAfterCrash = (await readEnvelopes(ctx, 'rawUsage')).filter(
      (u) => u.value.connection_id === crash.id,
    );
    const states = (await readStates(ctx)).filter(
      (s) => s.value.connection_id === crash.id && s.value.scope.startsWith('usage'),
    );
    for (const s of states) {
      const meter = s.value.scope.slice(s.value.scope.indexOf(':') + 1);
      const emittedTo = Math.max(
        ...usageAfterCrash
          .filter(
            (u) =>
              u.value.external_id === meter &&
              (s.value.scope.startsWith('usage-monthly')
                ? u.value.format.endsWith('monthly')
                : !u.value.format.endsWith('monthly')),
          )
          .map((u) => Date.parse(u.value.meta.range_to!)),
      );
      expect(Date.parse(s.value.watermark!)).toBeLessThanOrEqual(emittedTo);
    }

    const resumed = await runSync(crash, syncDeps(ctx, env), { mode: 'incremental', to: TO_ISO });
    expect(resumed.status).toBe('succeeded');
    // The resumed run starts where the crashed one stopped: together they fetch no more chunks than one full run.
    expect(killed.usage_chunks + resumed.usage_chunks).toBeLessThanOrEqual(r1.usage_chunks + 4);

    const usage = await readEnvelopes(ctx, 'rawUsage');
    const strip = (id: string) => new Set([...usageKeys(usage.filter((u) => u.value.connection_id === id))]);
    expect(strip(crash.id)).toEqual(strip(full.id));
    const entities = await readEnvelopes(ctx, 'rawEntities');
    const ent = (id: string) =>
      new Set(
        entities
          .filter((e) => e.value.connection_id === id && e.value.entity_kind !== 'snapshot_complete')
          .map((e) => `${e.value.format}|${e.value.external_id}|${e.value.payload}`),
      );
    expect(ent(crash.id)).toEqual(ent(full.id));
  }

  it('a backfill moves every meter through time together, chunk window by chunk window', async () => {
    const commits: { chunk: number; meters: string[] }[] = [];
    const conn = arcadiaConnection(arc, 'arc-windows', {
      sync: { concurrency: 3 },
      http: HTTP,
      options: { intervals: 'raw', maxRangeDays: 31 },
    });
    const r = await runSync(
      conn,
      syncDeps(ctx, arcadiaEnv(arc), {
        onEvent: (e) => {
          if (e.name === 'sync.chunk.committed')
            commits.push({ chunk: e.data.chunk as number, meters: e.data.meters as string[] });
        },
      }),
      { mode: 'incremental', to: TO_ISO },
    );
    expect(r.status).toBe('succeeded');
    const meters = new Set(commits.flatMap((c) => c.meters));
    const windows = new Set(commits.map((c) => c.chunk));
    expect(meters.size).toBeGreaterThan(3);
    expect(windows.size).toBeGreaterThanOrEqual(3);
    // Every meter's chunk i is committed before any meter's chunk i + 1 (ClickHouse inserts then
    // touch one month at a time); each meter gets every window.
    const order = commits.map((c) => c.chunk);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    for (const w of windows)
      expect(new Set(commits.filter((c) => c.chunk === w).flatMap((c) => c.meters))).toEqual(meters);
  });

  it('Arcadia: per-meter chunks', async () => {
    await crashAndResume(
      (id) =>
        arcadiaConnection(arc, `arc-${id}`, {
          sync: { concurrency: 3 },
          http: HTTP,
          options: { intervals: 'raw' },
        }),
      arcadiaEnv(arc),
      5,
    );
  });

  it('EnerKey: batches of meters (hourly values)', async () => {
    const keys = ek.truth().apiKeys;
    await crashAndResume(
      (id) =>
        connection({
          id: `ek-${id}`,
          provider: 'enerkey',
          baseUrls: { production: ek.url },
          auth: { type: 'apiKey', name: 'Authorization', keys: [{ valueEnv: 'K1' }, { valueEnv: 'K2' }] },
          usageStart: '2024-01-01',
          sync: { concurrency: 2 },
          http: HTTP,
          options: { batchSize: 4 },
        }),
      { K1: keys[0]!.key, K2: keys[1]!.key },
      3,
    );
  });
});
