import { describe, it, expect, afterEach } from 'vitest';
import { startEnerKeySimulator } from '../../../simulators/enerkey.js';
import type { EnerKeyOptions, EnerKeySimulator } from '../../../simulators/enerkey.js';

const started: EnerKeySimulator[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function start(o: EnerKeyOptions = {}): Promise<EnerKeySimulator> {
  const s = await startEnerKeySimulator({ facilities: 12, days: 366, ...o });
  started.push(s);
  return s;
}

/** The fields the tests read from EnerKey bodies (one view over every response kind). */
interface EkBody {
  detail: string;
  items: Array<{ id: number }>;
  continuationToken: string | null;
  meters: Array<{ meterId: number; values: Array<{ timestamp: string; value: number; flag: string }> }>;
}

async function get<T = EkBody>(
  sim: EnerKeySimulator,
  path: string,
  key: string | undefined,
): Promise<{ status: number; body: T; headers: Headers }> {
  const r = await fetch(sim.url + path, { headers: key === undefined ? {} : { authorization: key } });
  return { status: r.status, body: (await r.json()) as T, headers: r.headers };
}

const enc = encodeURIComponent;

describe('EnerKey simulator', () => {
  it('is deterministic from the seed', async () => {
    const a = await start({ seed: 3 });
    const b = await start({ seed: 3 });
    expect(a.truth().facilities).toEqual(b.truth().facilities);
    const id = a.truth().meters[0]!.id;
    expect([
      ...a.truth().hourly(id, Date.parse('2024-05-01T00:00:00Z'), Date.parse('2024-05-03T00:00:00Z')),
    ]).toEqual([
      ...b.truth().hourly(id, Date.parse('2024-05-01T00:00:00Z'), Date.parse('2024-05-03T00:00:00Z')),
    ]);
  });

  it('authenticates with either of two keys in the Authorization header and honours validity dates', async () => {
    let now = Date.parse('2024-06-01T00:00:00Z');
    const sim = await start({
      now: () => now,
      apiKeys: [
        { key: 'old-key', validFrom: '2023-01-01T00:00:00Z', validTo: '2024-07-01T00:00:00Z' },
        { key: 'new-key', validFrom: '2024-06-15T00:00:00Z', validTo: '2025-07-01T00:00:00Z' },
      ],
    });
    expect((await get(sim, '/api/v1/quantities', undefined)).status).toBe(401);
    expect((await get(sim, '/api/v1/quantities', 'wrong')).status).toBe(401);
    expect((await get(sim, '/api/v1/quantities', 'old-key')).status).toBe(200);
    expect((await get(sim, '/api/v1/quantities', 'new-key')).status).toBe(401); // not valid yet
    now = Date.parse('2024-06-20T00:00:00Z');
    expect((await get(sim, '/api/v1/quantities', 'new-key')).status).toBe(200);
    now = Date.parse('2024-07-01T00:00:00Z');
    const expired = await get(sim, '/api/v1/quantities', 'old-key');
    expect(expired.status).toBe(401);
    expect(expired.body.detail).toMatch(/expired/);
    expect((await get(sim, '/api/v1/quantities', 'new-key')).status).toBe(200);
  });

  it('counts the budget down in X-Rate-Limit and answers 429 when exhausted, per key, in a rolling 24 h', async () => {
    let now = Date.parse('2024-06-01T00:00:00Z');
    const sim = await start({ budget: 3, now: () => now });
    const [k1, k2] = sim.truth().apiKeys;
    const r1 = await get(sim, '/api/v1/quantities', k1!.key);
    expect(r1.headers.get('x-rate-limit')).toBe('2');
    await get(sim, '/api/v1/quantities', k1!.key);
    now += 60_000;
    expect((await get(sim, '/api/v1/quantities', k1!.key)).headers.get('x-rate-limit')).toBe('0');
    const limited = await get(sim, '/api/v1/quantities', k1!.key);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBe(24 * 3600 - 60);
    expect((await get(sim, '/api/v1/quantities', k2!.key)).status).toBe(200);
    now += 24 * 3600_000 - 60_000 + 1;
    expect((await get(sim, '/api/v1/quantities', k1!.key)).status).toBe(200);
  });

  it('lists quantities, facilities by continuation token and meters by facility', async () => {
    const sim = await start();
    const key = sim.truth().apiKeys[0]!.key;
    const q = await get(sim, '/api/v1/quantities', key);
    expect(q.body).toContainEqual({ id: 1, name: 'Electricity', unit: 'kWh' });
    const ids: number[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const r: { status: number; body: EkBody } = await get(
        sim,
        `/api/v1/facilities?pageSize=5${token ? `&continuationToken=${enc(token)}` : ''}`,
        key,
      );
      expect(r.status).toBe(200);
      ids.push(...r.body.items.map((f) => f.id));
      token = r.body.continuationToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(ids).toEqual(sim.truth().facilities.map((f) => f.id));
    expect((await get(sim, '/api/v1/facilities?continuationToken=garbage', key)).status).toBe(400);
    const ms = await get<Array<{ id: number; quantityId: number; unit: string }>>(
      sim,
      '/api/v1/meters?facilityId=1001,1002',
      key,
    );
    expect(ms.body.map((m) => m.id)).toEqual(
      sim
        .truth()
        .meters.filter((m) => m.facilityId === 1001 || m.facilityId === 1002)
        .map((m) => m.id),
    );
    for (const m of ms.body)
      expect(sim.truth().quantities.find((x) => x.id === m.quantityId)?.unit).toBe(m.unit);
  });

  it('returns hourly values for many meters in the requested timestamp format; DST day has 23 hours', async () => {
    const sim = await start({ gapRate: 0 });
    const key = sim.truth().apiKeys[0]!.key;
    const meters = sim
      .truth()
      .meters.filter((m) => m.timeZone === 'Europe/Helsinki')
      .slice(0, 5);
    const ids = meters.map((m) => m.id).join(',');
    const from = '2024-03-31T00:00:00+02:00';
    const to = '2024-04-01T00:00:00+03:00';
    const r = await get(sim, `/api/v1/values/hourly?meterIds=${ids}&from=${enc(from)}&to=${enc(to)}`, key);
    expect(r.status).toBe(200);
    expect(r.body.meters).toHaveLength(5);
    for (const m of r.body.meters) {
      expect(m.values).toHaveLength(23);
      expect(m.values[0]!.timestamp).toBe('2024-03-31T00:00:00+02:00');
      const truth = [...sim.truth().hourly(m.meterId, Date.parse(from), Date.parse(to))];
      expect(m.values.map((v) => v.value)).toEqual(truth.map((h) => h.value));
    }
    const z = await get(
      sim,
      `/api/v1/values/hourly?meterIds=${meters[0]!.id}&from=${enc('2024-01-01T00:00:00Z')}&to=${enc('2024-01-02T00:00:00Z')}`,
      key,
    );
    expect(z.body.meters[0]!.values[0]!.timestamp).toBe('2024-01-01T00:00:00Z');
  });

  it('validates value requests: offsets required, max range, max meters', async () => {
    const sim = await start();
    const key = sim.truth().apiKeys[0]!.key;
    const id = sim.truth().meters[0]!.id;
    const hourly = async (meterIds: string | number, from: string, to: string): Promise<number> =>
      (await get(sim, `/api/v1/values/hourly?meterIds=${meterIds}&from=${from}&to=${to}`, key)).status;
    const day = [enc('2024-01-01T00:00:00Z'), enc('2024-01-02T00:00:00Z')] as const;
    expect(await hourly(id, '2024-01-01T00:00:00', '2024-01-02T00:00:00')).toBe(400);
    expect(await hourly(id, enc('2024-01-01T00:00:00Z'), enc('2024-03-01T00:00:00Z'))).toBe(400);
    const many = Array.from({ length: 101 }, (_, i) => 20001 + (i % 20)).join(',');
    expect(await hourly(many, ...day)).toBe(400);
    expect(await hourly(99, ...day)).toBe(400);
  });

  it('returns monthly totals per local month that equal the sum of all hours', async () => {
    const sim = await start({ gapRate: 0.05 });
    const key = sim.truth().apiKeys[0]!.key;
    const m = sim.truth().meters.find((x) => x.timeZone === 'Europe/Helsinki' && x.unit === 'MWh')!;
    const r = await get(
      sim,
      `/api/v1/values/monthly?meterIds=${m.id}&from=${enc('2024-01-01T00:00:00+02:00')}&to=${enc('2025-01-01T00:00:00+02:00')}`,
      key,
    );
    expect(r.status).toBe(200);
    const values = r.body.meters[0]!.values;
    expect(values).toHaveLength(12);
    expect(values[0]!.timestamp).toBe('2024-01-01T00:00:00+02:00');
    expect(values[6]!.timestamp).toBe('2024-06-30T23:00:00+02:00'); // July 1st local, in the requested +02:00
    const truth = sim.truth().monthly(m.id);
    expect(values.map((v) => v.value)).toEqual(truth.map((x) => x.value));
    const julyHours = [...sim.truth().hourly(m.id, truth[6]!.start, truth[6]!.end)];
    const sum = julyHours.reduce((s, h) => s + h.value, 0);
    expect(truth[6]!.value).toBeGreaterThanOrEqual(Math.round(sum * 1e6) / 1e6 - 1e-6);
  });

  it('cursor faults: duplicates across pages and a repeated continuation token', async () => {
    const sim = await start();
    const key = sim.truth().apiKeys[0]!.key;
    const p0 = await get(sim, '/api/v1/facilities?pageSize=5', key);
    sim.setFaults({ duplicateAcrossPages: { count: 1 }, repeatedCursor: { count: 1 } });
    const t = p0.body.continuationToken!;
    const p1 = await get(sim, `/api/v1/facilities?pageSize=5&continuationToken=${enc(t)}`, key);
    expect(p1.body.items[0]!.id).toBe(p0.body.items[4]!.id);
    expect(p1.body.continuationToken).toBe(t);
    const p1b = await get(sim, `/api/v1/facilities?pageSize=5&continuationToken=${enc(t)}`, key);
    expect(p1b.body.continuationToken).not.toBe(t);
  });

  it('expires the first key mid-run while the second keeps working', async () => {
    const sim = await start();
    const [k1, k2] = sim.truth().apiKeys;
    sim.setFaults({ expireKey: { after: 2 } });
    expect((await get(sim, '/api/v1/quantities', k1!.key)).status).toBe(200);
    expect((await get(sim, '/api/v1/quantities', k1!.key)).status).toBe(200);
    const r = await get(sim, '/api/v1/quantities', k1!.key);
    expect(r.status).toBe(401);
    expect(r.body.detail).toMatch(/expired/);
    expect((await get(sim, '/api/v1/quantities', k2!.key)).status).toBe(200);
  });
});
