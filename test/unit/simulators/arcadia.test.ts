import { describe, it, expect, afterEach } from 'vitest';
import { startArcadiaSimulator } from '../../../simulators/arcadia.js';
import type { ArcadiaOptions, ArcadiaSimulator } from '../../../simulators/arcadia.js';

const started: ArcadiaSimulator[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function start(o: ArcadiaOptions = {}): Promise<ArcadiaSimulator> {
  const s = await startArcadiaSimulator({ meters: 30, sites: 6, credentials: 3, days: 120, ...o });
  started.push(s);
  return s;
}

async function token(sim: ArcadiaSimulator): Promise<string> {
  const r = await fetch(`${sim.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'arc-client-id',
      client_secret: 'arc-client-secret',
    }),
  });
  expect(r.status).toBe(200);
  const b = (await r.json()) as { access_token: string; token_type: string; expires_in: number };
  expect(b.token_type).toBe('Bearer');
  return b.access_token;
}

const hdr = (t: string, extra: Record<string, string> = {}): Record<string, string> => ({
  authorization: `Bearer ${t}`,
  'arc-version': '2024-02-21',
  accept: 'application/json',
  ...extra,
});

interface Page {
  number: number;
  size: number;
  totalElements: number;
  totalPages: number;
}

/** The fields the tests read from Arcadia bodies (one view over every response kind). */
interface ArcBody {
  credentials: Array<{ id: string; correlationId: string }>;
  meters: Array<{ id: string; status: string }>;
  page: Page;
  status: string;
  error: string;
  error_description: string;
  intervalDurationMinutes: number;
  localTimezone: string;
  startAt: string;
  endAt: string;
  readings: Array<{
    importKwh: Array<number | null>;
    exportKwh: Array<number | null>;
    netKwh: Array<number | null>;
    electricMeterMultiplier: number[];
    startAt: string;
    endAt: string;
    direction: string;
    kwh: number;
    kw: number;
  }>;
}

async function get(
  sim: ArcadiaSimulator,
  path: string,
  t: string,
  extra: Record<string, string> = {},
): Promise<{ status: number; body: ArcBody; headers: Headers }> {
  const r = await fetch(sim.url + path, { headers: hdr(t, extra) });
  const text = await r.text();
  return { status: r.status, body: JSON.parse(text) as ArcBody, headers: r.headers };
}

describe('Arcadia simulator', () => {
  it('is deterministic from the seed', async () => {
    const a = await start({ seed: 5 });
    const b = await start({ seed: 5 });
    const c = await start({ seed: 6 });
    expect(a.truth().meters.map((m) => m.id)).toEqual(b.truth().meters.map((m) => m.id));
    expect(a.truth().meters.map((m) => m.id)).not.toEqual(c.truth().meters.map((m) => m.id));
    const id = a.truth().meters[0]!.id;
    const from = Date.parse('2024-02-01T00:00:00Z');
    const to = Date.parse('2024-02-02T00:00:00Z');
    expect([...a.truth().intervals(id, from, to)]).toEqual([...b.truth().intervals(id, from, to)]);
  });

  it('issues tokens only for valid client credentials and needs Bearer + Arc-Version', async () => {
    const sim = await start();
    const bad = await fetch(`${sim.url}/oauth2/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: 'arc-client-id',
        client_secret: 'nope',
      }),
    });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: 'invalid_client' });
    const t = await token(sim);
    expect((await get(sim, '/plug/credentials', 'garbage')).status).toBe(401);
    const noVersion = await fetch(`${sim.url}/plug/credentials`, {
      headers: { authorization: `Bearer ${t}` },
    });
    expect(noVersion.status).toBe(400);
    expect(await noVersion.json()).toMatchObject({ error: 'invalid_request' });
    expect((await get(sim, '/plug/credentials', t)).status).toBe(200);
  });

  it('expires tokens after their lifetime and on demand', async () => {
    let now = Date.parse('2025-01-01T00:00:00Z');
    const sim = await start({ now: () => now, tokenLifetimeSeconds: 300 });
    const t = await token(sim);
    expect((await get(sim, '/plug/credentials', t)).status).toBe(200);
    now += 301_000;
    const r = await get(sim, '/plug/credentials', t);
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'invalid_token' });
    const t2 = await token(sim);
    expect((await get(sim, '/plug/credentials', t2)).status).toBe(200);
    sim.setFaults({ expireTokens: true });
    expect((await get(sim, '/plug/credentials', t2)).status).toBe(401);
    expect((await get(sim, '/plug/credentials', await token(sim))).status).toBe(200);
  });

  it('lists credentials by correlationId and meters by credential with consistent page totals', async () => {
    const sim = await start();
    const t = await token(sim);
    const cr = await get(sim, '/plug/credentials?search=correlationId%3Dcustomer-002&page=0&size=20', t);
    expect(cr.body.credentials).toHaveLength(1);
    const cred = cr.body.credentials[0]!;
    expect(cred).toMatchObject({
      correlationId: 'customer-002',
      status: 'CONNECTION_SUCCESS',
      statusDetail: 'LOGIN_AND_DATA_DISCOVERY_SUCCESS',
    });
    const expected = sim
      .truth()
      .meters.filter((m) => m.credentialId === cred.id)
      .map((m) => m.id);
    const seen: string[] = [];
    for (let page = 0; ; page++) {
      const r = await get(sim, `/plug/meters?search=credentialIds%3D${cred.id}&page=${page}&size=3`, t);
      expect(r.status).toBe(200);
      expect(r.body.page).toMatchObject({
        number: page,
        size: 3,
        totalElements: expected.length,
        totalPages: Math.ceil(expected.length / 3),
      });
      if (r.body.meters.length === 0) break;
      seen.push(...r.body.meters.map((m) => m.id));
    }
    expect(seen).toEqual(expected);
    expect((await get(sim, '/plug/meters?size=500', t)).status).toBe(400);
    expect((await get(sim, '/plug/meters?search=bogus%3D1', t)).status).toBe(400);
  });

  it('activates intervals: IN_PROGRESS then SUCCESS after N polls; intervals refused before', async () => {
    const sim = await start({ activationPolls: 2 });
    const t = await token(sim);
    const id = sim.truth().meters[0]!.id;
    expect((await get(sim, `/plug/normalizedIntervals/meters/${id}`, t)).status).toBe(400);
    const patch = await fetch(`${sim.url}/plug/meters/${id}`, {
      method: 'PATCH',
      headers: { ...hdr(t), 'content-type': 'application/json' },
      body: JSON.stringify({ isIntervalsProductActive: true }),
    });
    const pb = (await patch.json()) as ArcBody;
    expect(pb.meters[0]).toMatchObject({
      id,
      status: 'INTERVALS_IN_PROGRESS',
      isIntervalsProductActive: true,
    });
    expect((await get(sim, `/plug/meters/${id}`, t)).body.status).toBe('INTERVALS_IN_PROGRESS');
    expect((await get(sim, `/plug/meters/${id}`, t)).body.status).toBe('INTERVALS_SUCCESS');
    expect((await get(sim, `/plug/normalizedIntervals/meters/${id}`, t)).status).toBe(200);
    const badPatch = await fetch(`${sim.url}/plug/meters/mtr_nope`, {
      method: 'PATCH',
      headers: { ...hdr(t), 'content-type': 'application/json' },
      body: JSON.stringify({ isIntervalsProductActive: true }),
    });
    expect(badPatch.status).toBe(400);
    expect(await badPatch.json()).toEqual({
      error: 'invalid_meter_activation',
      error_description: 'Invalid meterId or meter not in appropriate state for activation',
    });
  });

  it('serves normalized 15-minute arrays equal to the truth, DST day in New York has 92 quarters', async () => {
    const sim = await start({ intervalsActive: true, timeZones: ['America/New_York'], gapRate: 0.2 });
    const t = await token(sim);
    const m = sim
      .truth()
      .meters.find(
        (x) => x.sourceIntervalMinutes === 15 && x.dataStart <= Date.parse('2024-03-01T00:00:00Z'),
      )!;
    const startAt = '2024-03-10T00:00:00-05:00';
    const endAt = '2024-03-11T00:00:00-04:00';
    const r = await get(
      sim,
      `/plug/normalizedIntervals/meters/${m.id}?startAt=${encodeURIComponent(startAt)}&endAt=${encodeURIComponent(endAt)}`,
      t,
    );
    expect(r.status).toBe(200);
    expect(r.body.intervalDurationMinutes).toBe(15);
    expect(r.body.localTimezone).toBe('America/New_York');
    expect(r.body.startAt).toBe('2024-03-10T05:00:00.000+00:00');
    expect(r.body.endAt).toBe('2024-03-11T04:00:00.000+00:00');
    const rd = r.body.readings[0]!;
    expect(rd.importKwh).toHaveLength(92);
    const truth = [...sim.truth().intervals(m.id, Date.parse(startAt), Date.parse(endAt))];
    expect(rd.importKwh).toEqual(truth.map((i) => (i.missing ? null : i.importKwh)));
    expect(rd.netKwh).toEqual(truth.map((i) => (i.missing ? null : i.netKwh)));
    expect(Object.keys(rd).sort()).toEqual(['electricMeterMultiplier', 'exportKwh', 'importKwh', 'netKwh']);
  });

  it('serves raw readings (15 or 60 minutes, import/export) that sum to the truth', async () => {
    const sim = await start({ intervalsActive: true, solarShare: 1, hourlyShare: 0.5, gapRate: 0 });
    const t = await token(sim);
    const from = '2024-02-01T00:00:00Z';
    const to = '2024-02-03T00:00:00Z';
    for (const minutes of [15, 60] as const) {
      const m = sim
        .truth()
        .meters.find((x) => x.sourceIntervalMinutes === minutes && x.dataStart <= Date.parse(from))!;
      const r = await get(sim, `/plug/intervals/meters/${m.id}?startAt=${from}&endAt=${to}`, t);
      expect(r.status).toBe(200);
      const readings = r.body.readings;
      const imports = readings.filter((x) => x.direction === 'import');
      expect(imports).toHaveLength((48 * 60) / minutes);
      expect(readings.filter((x) => x.direction === 'export')).toHaveLength(imports.length);
      expect(Date.parse(imports[0]!.endAt) - Date.parse(imports[0]!.startAt)).toBe(minutes * 60_000);
      const sum = imports.reduce((s, x) => s + x.kwh, 0);
      const truth = [...sim.truth().intervals(m.id, Date.parse(from), Date.parse(to))].reduce(
        (s, x) => s + x.importKwh,
        0,
      );
      expect(sum).toBeCloseTo(truth, 2);
    }
  });

  it('rejects ranges above the maximum and honours X-Sandbox-Mode', async () => {
    const sim = await start({ intervalsActive: true });
    const t = await token(sim);
    const id = sim.truth().meters[0]!.id;
    const r = await get(
      sim,
      `/plug/intervals/meters/${id}?startAt=2024-01-01T00:00:00Z&endAt=2024-03-01T00:00:00Z`,
      t,
    );
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: 'invalid_intervals_request' });
    expect(typeof r.body.error_description).toBe('string');
    const sb = await get(sim, '/plug/meters', t, { 'x-sandbox-mode': 'true' });
    expect(sb.body.meters.map((m) => m.id)).toEqual(sim.truth({ sandbox: true }).meters.map((m) => m.id));
    expect(sb.body.page.totalElements).toBe(4);
    expect((await get(sim, '/plug/meters', t, { 'x-sandbox-mode': 'false' })).body.page.totalElements).toBe(
      30,
    );
    expect((await get(sim, '/plug/meters', t, { 'x-sandbox-mode': 'maybe' })).status).toBe(400);
  });

  it('pagination faults: duplicates across pages and a meter inserted while paging', async () => {
    const sim = await start();
    const t = await token(sim);
    sim.setFaults({ duplicateAcrossPages: { count: 1 } });
    const p0 = await get(sim, '/plug/meters?page=0&size=5', t);
    const p1 = await get(sim, '/plug/meters?page=1&size=5', t);
    expect(p1.body.meters[0]!.id).toBe(p0.body.meters[4]!.id);
    sim.setFaults({ shiftDuringPaging: { count: 1 } });
    const before = sim.truth().meters.length;
    const q0 = await get(sim, '/plug/meters?page=0&size=5', t);
    const q1 = await get(sim, '/plug/meters?page=1&size=5', t);
    expect(sim.truth().meters.length).toBe(before + 1);
    expect(q1.body.page.totalElements).toBe(before + 1);
    expect(q1.body.meters[0]!.id).toBe(q0.body.meters[4]!.id); // shifted by one
    expect(sim.stats().faults).toMatchObject({ duplicateAcrossPages: 1, shiftDuringPaging: 1 });
  });

  it('invalid records in raw and normalized intervals', async () => {
    const sim = await start({ intervalsActive: true, gapRate: 0, solarShare: 0 });
    const t = await token(sim);
    const m = sim
      .truth()
      .meters.find(
        (x) => x.sourceIntervalMinutes === 15 && x.dataStart <= Date.parse('2024-02-01T00:00:00Z'),
      )!;
    const q = `startAt=2024-02-01T00:00:00Z&endAt=2024-02-02T00:00:00Z`;
    sim.setFaults({ invalidRecords: { every: 10 } });
    const raw = (await get(sim, `/plug/intervals/meters/${m.id}?${q}`, t)).body.readings as unknown as Array<
      Record<string, unknown>
    >;
    expect(raw[9]!.kwh).toBe('n/a');
    expect(Date.parse(String(raw[19]!.endAt))).toBeLessThan(Date.parse(String(raw[19]!.startAt)));
    expect(raw[29]!.kwh).toBeLessThan(0);
    expect(raw[39]!.startAt).toMatch(/T\d\d:\d\d:\d\d$/);
    expect(raw[49]).not.toHaveProperty('direction');
    const norm = (await get(sim, `/plug/normalizedIntervals/meters/${m.id}?${q}`, t)).body.readings[0]!
      .importKwh as unknown[];
    expect(norm[9]).toBe('NaN');
    expect(norm[19]).toBeLessThan(0);
    expect(typeof norm[0]).toBe('number');
  });
});
