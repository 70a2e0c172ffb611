import { describe, it, expect, afterEach } from 'vitest';
import { startEnerKeySimulator } from '../../../simulators/enerkey.js';
import type { EnerKeySimulator } from '../../../simulators/enerkey.js';

// The generic fault layer is shared by all simulators; exercised here through EnerKey.
const started: EnerKeySimulator[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function start(): Promise<{ sim: EnerKeySimulator; get: (path?: string) => Promise<Response> }> {
  const sim = await startEnerKeySimulator({ facilities: 4, days: 40 });
  started.push(sim);
  const key = sim.truth().apiKeys[0]!.key;
  return {
    sim,
    get: (path = '/api/v1/quantities') => fetch(sim.url + path, { headers: { authorization: key } }),
  };
}

describe('generic faults', () => {
  it('429 storm with Retry-After for `count` requests, then normal', async () => {
    const { sim, get } = await start();
    sim.setFaults({ rateLimit: { count: 3, retryAfterSeconds: 7 } });
    for (let i = 0; i < 3; i++) {
      const r = await get();
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toBe('7');
      await r.arrayBuffer();
    }
    expect((await get()).status).toBe(200);
    expect(sim.stats().byStatus).toMatchObject({ '429': 3, '200': 1 });
    expect(sim.stats().faults.rateLimit).toBe(3);
  });

  it('5xx burst after some good requests, limited to endpoints', async () => {
    const { sim, get } = await start();
    sim.setFaults({ serverError: { count: 2, after: 1, status: 502, endpoints: ['quantities'] } });
    expect((await get()).status).toBe(200);
    expect((await get('/api/v1/meters')).status).toBe(200);
    expect((await get()).status).toBe(502);
    expect((await get()).status).toBe(502);
    expect((await get()).status).toBe(200);
  });

  it('slow responses', async () => {
    const { sim, get } = await start();
    sim.setFaults({ slow: { delayMs: 150 } });
    const t0 = Date.now();
    await (await get()).arrayBuffer();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('HTML error pages with 200 and 502', async () => {
    const { sim, get } = await start();
    sim.setFaults({ htmlError: { count: 1, status: 200 } });
    const r = await get();
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(await r.text()).toMatch(/<html>/);
    sim.setFaults({ htmlError: { count: 1 } });
    expect((await get()).status).toBe(502);
  });

  it('malformed JSON bodies', async () => {
    const { sim, get } = await start();
    sim.setFaults({ malformedJson: { count: 1 } });
    const r = await get();
    expect(r.status).toBe(200);
    const body = await r.text();
    expect(() => JSON.parse(body) as unknown).toThrow();
    expect(Array.isArray(await (await get()).json())).toBe(true);
  });

  it('oversized responses declare their length and stream it', async () => {
    const { sim, get } = await start();
    sim.setFaults({ oversized: { count: 1, bytes: 5_000_000 } });
    const r = await get();
    expect(r.headers.get('content-length')).toBe('5000000');
    const buf = Buffer.from(await r.arrayBuffer());
    expect(buf.length).toBe(5_000_000);
    expect(JSON.parse(buf.toString('utf8'))).toContainEqual({ id: 1, name: 'Electricity', unit: 'kWh' });
  });

  it('setFaults({}) turns everything off and stats count per endpoint', async () => {
    const { sim, get } = await start();
    sim.setFaults({ serverError: true });
    expect((await get()).status).toBe(503);
    sim.setFaults({});
    expect((await get()).status).toBe(200);
    await get('/api/v1/meters');
    await get('/nowhere');
    const s = sim.stats();
    expect(s.total).toBe(4);
    expect(s.byEndpoint).toEqual({ quantities: 2, 'meters.list': 1, unmatched: 1 });
    sim.resetStats();
    expect(sim.stats().total).toBe(0);
  });

  it('invalid and duplicate records in usage responses', async () => {
    const { sim, get } = await start();
    const m = sim.truth().meters[0]!;
    const path = `/api/v1/values/hourly?meterIds=${m.id}&from=2024-01-10T00:00:00Z&to=2024-01-11T00:00:00Z`;
    type Values = { meters: Array<{ values: Array<{ timestamp: string; value: unknown }> }> };
    const clean = ((await (await get(path)).json()) as Values).meters[0]!.values;
    sim.setFaults({ invalidRecords: { count: 1, every: 5 } });
    const bad = ((await (await get(path)).json()) as Values).meters[0]!.values;
    expect(bad).toHaveLength(clean.length);
    expect(bad[4]!.value).toBe('NaN');
    expect(bad[9]!.timestamp).toBe(clean[9]!.timestamp.replace(/Z$/, ''));
    expect(bad[14]!.value).toBeNull();
    expect(bad[19]!.value).toBeLessThan(0);
    expect(bad[0]).toEqual(clean[0]);
    sim.setFaults({ duplicateRecords: { count: 1, every: 6 } });
    const dup = ((await (await get(path)).json()) as Values).meters[0]!.values;
    expect(dup).toHaveLength(clean.length + Math.floor(clean.length / 6));
    expect(dup[6]).toEqual(dup[5]);
  });
});
