import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../support/context.js';
import { startEnerKeySimulator, type EnerKeySimulator } from '../../../simulators/enerkey.js';
import { runSync } from '../../../producers/sync/engine.js';
import type { ConnectionConfig } from '../../../schemas/connection.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import { connection, readEnvelopes, syncDeps, type Read } from './helpers.js';

const FROM = Date.parse('2024-01-01T00:00:00Z');
const TO_ISO = '2024-02-20T00:00:00Z';
const TO = Date.parse(TO_ISO);

function enerkeyConnection(
  sim: EnerKeySimulator,
  extra: Partial<Parameters<typeof connection>[0]> = {},
  options: Record<string, unknown> = {},
): ConnectionConfig {
  return connection({
    id: 'ek-test',
    provider: 'enerkey',
    baseUrls: { production: sim.url },
    auth: {
      type: 'apiKey',
      name: 'Authorization',
      keys: [
        { valueEnv: 'EK_KEY_1', validFrom: '2020-01-01', validTo: '2099-12-31' },
        { valueEnv: 'EK_KEY_2', validFrom: '2020-01-01', validTo: '2099-12-31' },
      ],
    },
    usageStart: '2024-01-01',
    budget: { perDay: 40_000 },
    http: {
      timeoutMs: 10_000,
      maxResponseBytes: 8 * 1024 * 1024,
      maxRetries: 6,
      backoffBaseMs: 5,
      backoffMaxMs: 50,
    },
    options: { facilityPageSize: 4, batchSize: 7, ...options },
    ...extra,
  });
}

const env = (sim: EnerKeySimulator): Record<string, string> => ({
  EK_KEY_1: sim.truth().apiKeys[0]!.key,
  EK_KEY_2: sim.truth().apiKeys[1]!.key,
});

/** Hourly values per meter (by instant, duplicates collapse) from the envelopes. */
function hourlyByMeter(envs: Read<RawEnvelope>[]): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const e of envs) {
    if (e.value.format !== 'enerkey.hourly') continue;
    const body = JSON.parse(e.value.payload) as {
      meters: { meterId: number; values: { timestamp: string; value: number }[] }[];
    };
    expect(body.meters).toHaveLength(1);
    expect(String(body.meters[0]!.meterId)).toBe(e.value.external_id);
    const m = out.get(e.value.external_id) ?? new Map<number, number>();
    for (const v of body.meters[0]!.values) m.set(Date.parse(v.timestamp), v.value);
    out.set(e.value.external_id, m);
  }
  return out;
}

function expectComplete(
  sim: EnerKeySimulator,
  entities: Read<RawEnvelope>[],
  usage: Read<RawEnvelope>[],
  stream: 'hourly' | 'monthly' = 'hourly',
): void {
  const t = sim.truth();
  const fmt = (f: string): Set<string> =>
    new Set(entities.filter((e) => e.value.format === f).map((e) => e.value.external_id));
  expect(fmt('enerkey.facility')).toEqual(new Set(t.facilities.map((f) => String(f.id))));
  expect(fmt('enerkey.meter')).toEqual(new Set(t.meters.map((m) => String(m.id))));
  expect(fmt('enerkey.quantity')).toEqual(new Set(t.quantities.map((q) => String(q.id))));
  for (const e of entities.filter((x) => x.value.format === 'enerkey.meter')) {
    const m = t.meter(Number(e.value.external_id))!;
    const q = JSON.parse(e.value.meta.quantity!) as { id: number; name: string; unit: string };
    expect(q).toEqual(t.quantities.find((x) => x.id === m.quantityId));
  }
  if (stream === 'monthly') {
    const months = new Set(
      usage
        .filter((u) => u.value.format === 'enerkey.monthly')
        .flatMap((u) => {
          const b = JSON.parse(u.value.payload) as {
            meters: { meterId: number; values: { timestamp: string; value: number }[] }[];
          };
          return b.meters[0]!.values.map(
            (v) => `${u.value.external_id}|${Date.parse(v.timestamp)}|${v.value}`,
          );
        }),
    );
    for (const m of t.meters)
      for (const mo of t.monthly(m.id, FROM, TO))
        expect(months.has(`${m.id}|${mo.start}|${mo.value}`)).toBe(true);
    return;
  }
  expect(usage.some((u) => u.value.format === 'enerkey.monthly')).toBe(false);
  const hourly = hourlyByMeter(usage);
  for (const m of t.meters) {
    const truth = [...t.hourly(m.id, FROM, TO)];
    const got = hourly.get(String(m.id)) ?? new Map<number, number>();
    expect(got.size).toBe(truth.length);
    for (const h of truth) expect(got.get(h.start)).toBe(h.value);
  }
}

describe('enerkey connector against the simulator', () => {
  let ctx: TestContext;
  let sims: EnerKeySimulator[] = [];
  const sim = async (o: Parameters<typeof startEnerKeySimulator>[0] = {}): Promise<EnerKeySimulator> => {
    const s = await startEnerKeySimulator({ facilities: 6, metersPerFacility: [2, 3], days: 60, ...o });
    sims.push(s);
    return s;
  };
  beforeAll(async () => {
    ctx = createTestContext({ partitions: 2 });
    await ctx.createTopics();
  });
  afterEach(async () => {
    await Promise.all(sims.map((s) => s.close()));
    sims = [];
  });
  afterAll(async () => {
    await ctx?.cleanup();
  });

  it('emits facilities, meters with their quantity, quantities, hourly and monthly values split per meter, under faults', async () => {
    const s = await sim({
      faults: {
        rateLimit: { count: 3, retryAfterSeconds: 1 },
        serverError: { count: 3 },
        htmlError: { count: 2 },
        duplicateAcrossPages: true,
        slow: { delayMs: 30, count: 5 },
      },
    });
    const conn = enerkeyConnection(s, { id: 'ek-faults' });
    const run = await runSync(conn, syncDeps(ctx, env(s)), { mode: 'incremental', to: TO_ISO });
    expect(run.error_messages).toEqual([]);
    expect(run.status).toBe('succeeded');
    expect(run.retries).toBeGreaterThanOrEqual(8);
    const entities = (await readEnvelopes(ctx, 'rawEntities')).filter(
      (e) => e.value.connection_id === 'ek-faults',
    );
    const usage = (await readEnvelopes(ctx, 'rawUsage')).filter((e) => e.value.connection_id === 'ek-faults');
    expectComplete(s, entities, usage);
    // ISO timestamps with an offset, URL-encoded; no key in any URL.
    const hourlyUrl = usage.find((u) => u.value.format === 'enerkey.hourly')!.value.request_url;
    expect(hourlyUrl).toContain('from=2024-01-01T00%3A00%3A00%2B00%3A00');
    expect(JSON.stringify(usage.slice(0, 5))).not.toContain(env(s).EK_KEY_1);
    expect(s.stats().faults).toMatchObject({ rateLimit: 3, serverError: 3, htmlError: 2 });
  });

  it('monthly values instead of hourly (one of the two feeds the pipeline)', async () => {
    const s = await sim();
    const run = await runSync(
      enerkeyConnection(s, { id: 'ek-monthly' }, { values: ['monthly'] }),
      syncDeps(ctx, env(s)),
      { mode: 'incremental', to: TO_ISO },
    );
    expect(run.status).toBe('succeeded');
    expect(run.intervals).toBeGreaterThan(0);
    const entities = (await readEnvelopes(ctx, 'rawEntities')).filter(
      (e) => e.value.connection_id === 'ek-monthly',
    );
    const usage = (await readEnvelopes(ctx, 'rawUsage')).filter(
      (e) => e.value.connection_id === 'ek-monthly',
    );
    expectComplete(s, entities, usage, 'monthly');
  });

  it('a repeated cursor leaves the snapshot partial: no snapshot_complete marker, POLL_PAGINATION_LOOP reported', async () => {
    const s = await sim({ faults: { repeatedCursor: true } });
    const run = await runSync(
      enerkeyConnection(s, { id: 'ek-loop' }, { values: ['monthly'], facilityPageSize: 2 }),
      syncDeps(ctx, env(s)),
      { mode: 'entities' },
    );
    expect(run.status).toBe('partial');
    expect(run.snapshot_complete).toBe(false);
    expect(run.error_messages.join()).toContain('POLL_PAGINATION_LOOP');
    const markers = (await readEnvelopes(ctx, 'rawEntities')).filter(
      (e) => e.value.connection_id === 'ek-loop' && e.value.entity_kind === 'snapshot_complete',
    );
    expect(markers).toHaveLength(0);
  });

  it('a malformed body fails that chunk only; the next run resumes and completes the data', async () => {
    const s = await sim({ faults: { malformedJson: { count: 1, after: 1, endpoints: ['values.hourly'] } } });
    const conn = enerkeyConnection(s, { id: 'ek-malformed' });
    const first = await runSync(conn, syncDeps(ctx, env(s)), { mode: 'incremental', to: TO_ISO });
    expect(first.status).toBe('partial');
    expect(first.error_messages.join()).toContain('POLL_RESPONSE_MALFORMED');
    const second = await runSync(conn, syncDeps(ctx, env(s)), { mode: 'incremental', to: TO_ISO });
    expect(second.status).toBe('succeeded');
    const entities = (await readEnvelopes(ctx, 'rawEntities')).filter(
      (e) => e.value.connection_id === 'ek-malformed',
    );
    const usage = (await readEnvelopes(ctx, 'rawUsage')).filter(
      (e) => e.value.connection_id === 'ek-malformed',
    );
    expectComplete(s, entities, usage);
  });

  it('stays within the budget: our per-day limit and the X-Rate-Limit the provider reports', async () => {
    const s1 = await sim();
    const own = await runSync(
      enerkeyConnection(s1, { id: 'ek-budget', budget: { perDay: 6 } }),
      syncDeps(ctx, env(s1)),
      { mode: 'incremental', to: TO_ISO },
    );
    expect(own.status).toBe('partial');
    expect(own.error_messages.join()).toContain('POLL_BUDGET_EXHAUSTED');
    expect(s1.stats().total).toBeLessThanOrEqual(6);

    const s2 = await sim({ budget: 6 });
    const provider = await runSync(enerkeyConnection(s2, { id: 'ek-xrate' }), syncDeps(ctx, env(s2)), {
      mode: 'incremental',
      to: TO_ISO,
    });
    expect(provider.status).toBe('partial');
    expect(provider.error_messages.join()).toContain('POLL_BUDGET_EXHAUSTED');
    expect(s2.stats().byStatus['429']).toBeUndefined();
    expect(s2.stats().total).toBeLessThanOrEqual(6);
  });

  it('rotates to the second key when the first has expired (401)', async () => {
    const s = await sim({
      apiKeys: [
        { key: 'old-key', validFrom: '2020-01-01T00:00:00Z', validTo: '2021-01-01T00:00:00Z' },
        { key: 'new-key', validFrom: '2020-06-01T00:00:00Z', validTo: '2099-01-01T00:00:00Z' },
      ],
    });
    const run = await runSync(
      enerkeyConnection(s, { id: 'ek-rotate' }, { values: ['monthly'] }),
      syncDeps(ctx, { EK_KEY_1: 'old-key', EK_KEY_2: 'new-key' }),
      { mode: 'entities' },
    );
    expect(run.status).toBe('succeeded');
    expect(s.stats().byStatus['401']).toBe(1);
  });
});
