/**
 * The generic connector with meters of different usage kinds on one connection: each meter is
 * requested with its own kind's endpoint and parameters, meters.filter leaves meters out of the
 * snapshot and of usage, and a meter whose kind is not mapped is listed (for quarantine) but never
 * requested.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../../lib/log.js';
import { HttpClient } from '../../../../producers/http/client.js';
import { GenericConnector } from '../../../../producers/connectors/generic/index.js';
import type { ConnectorContext } from '../../../../producers/connectors/types.js';
import type { RawEnvelope } from '../../../../schemas/records.js';
import type { ConnectionInput } from '../../../../schemas/connection.js';
import { conn, noSleep, sendJson, serve, type TestServer } from '../server.js';

let servers: TestServer[] = [];
let clients: HttpClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  clients = [];
});

const METERS = [
  { id: 'E-1', site: 'S-1', kind: 'interval', u: 'kWh' },
  { id: 'W-1', site: 'S-1', kind: 'REGISTER', u: 'm3' },
  { id: 'V-1', site: 'S-V', kind: 'virtual', u: 'kWh' }, // left out by the filter
  { id: 'X-1', site: 'S-1', kind: 'pulse', u: 'kWh' }, // a kind with no mapping
];
const RANGE = { from: Date.UTC(2024, 0, 1), to: Date.UTC(2024, 0, 3) };

type Generic = NonNullable<ConnectionInput['generic']>;

function generic(usage: Partial<Generic['usage']> = {}, byKind: Generic['usageByKind'] = {}): Generic {
  return {
    meters: {
      path: '/m',
      itemsPath: 'items',
      fields: { externalId: 'id', assetId: 'site', unit: 'u', usageKind: 'kind' },
      usageKinds: { interval: 'consumption', register: 'reading' },
      filter: { exclude: { kind: ['virtual'] } },
    },
    usage: { path: '/u/{meterId}', itemsPath: 'rows', fields: { meterId: 'meter_id' }, ...usage },
    usageByKind: {
      consumption: { fields: { start: 's', end: 'e', value: 'v' } },
      reading: {
        path: '/r/{meterId}',
        dateParams: { from: 'since', to: 'until', format: 'datetime', toInclusive: false },
        maxRangeDays: 1,
        fields: { timestamp: 'at', value: 'stand' },
        ...byKind.reading,
      },
      ...(byKind.consumption ? { consumption: byKind.consumption } : {}),
    },
  };
}

async function setup(g: Generic, rows: (path: string) => unknown[]) {
  const s = await serve((req, res) => {
    if (req.url.pathname === '/m') sendJson(res, 200, { items: METERS });
    else sendJson(res, 200, { rows: rows(req.url.pathname) });
  });
  servers.push(s);
  const connection = conn({ baseUrl: s.url, generic: g });
  const http = new HttpClient({ connection, sleep: noSleep, env: {} });
  clients.push(http);
  const ctx: ConnectorContext = {
    connection,
    http,
    log: createLogger('silent'),
    runId: 'run-1',
    signal: new AbortController().signal,
    now: () => Date.UTC(2024, 1, 1),
  };
  const c = new GenericConnector(connection);
  const entities: RawEnvelope[] = [];
  const snap = await c.snapshot(ctx, (envs) => {
    entities.push(...envs);
    return Promise.resolve();
  });
  return { s, ctx, c, entities, snap };
}

const rowsOf = (e: RawEnvelope): unknown[] => JSON.parse(e.payload) as unknown[];

describe('generic: meters of several usage kinds on one connection', () => {
  it('the snapshot leaves filtered meters out entirely and lists unmapped ones without usage', async () => {
    const { snap, entities } = await setup(generic(), () => []);
    const meters = entities.filter((e) => e.entity_kind === 'meter').map((e) => e.external_id);
    // X-1 goes on as a meter record: the normaliser quarantines it (NORM_USAGE_KIND_UNMAPPED).
    expect(meters).toEqual(['E-1', 'W-1', 'X-1']);
    const assets = entities.filter((e) => e.entity_kind === 'asset').map((e) => e.external_id);
    expect(assets).toEqual(['S-1']); // no asset derived from the filtered meter's site
    expect(snap.meters).toEqual([
      { externalId: 'E-1', data: { usageKind: 'consumption' } },
      { externalId: 'W-1', data: { usageKind: 'reading' } },
    ]);
    expect(snap.complete).toBe(true);
  });

  it("each meter is requested on its own kind's endpoint, with its own date parameters", async () => {
    const { s, ctx, c, snap } = await setup(generic(), (path) =>
      path === '/u/E-1'
        ? [{ meter_id: 'E-1', s: '2024-01-01T00:00:00Z', e: '2024-01-01T00:15:00Z', v: 1 }]
        : [{ meter_id: 'W-1', at: '2024-01-01T00:00:00Z', stand: 5 }],
    );
    const [stream] = c.usageStreams();
    expect(stream!.scopePrefix).toBe('usage'); // watermarks keep their scope
    expect(stream!.maxRangeDays).toBe(1); // the smallest of the kinds
    const envs: RawEnvelope[] = [];
    for (const m of snap.meters) envs.push(...(await stream!.fetch(ctx, [m], RANGE, 0)));
    const usage = s.seen.filter((r) => r.url.pathname !== '/m');
    expect(usage.map((r) => `${r.url.pathname}?${r.url.searchParams.toString()}`)).toEqual([
      '/u/E-1?from=2024-01-01&to=2024-01-03',
      '/r/W-1?since=2024-01-01T00%3A00%3A00Z&until=2024-01-03T00%3A00%3A00Z',
    ]);
    expect(envs.map((e) => [e.external_id, rowsOf(e).length])).toEqual([
      ['E-1', 1],
      ['W-1', 1],
    ]);
  });

  it('one request for all meters of a kind: other kinds and filtered meters are neither sent twice nor quarantined', async () => {
    const all = [
      { meter_id: 'E-1', s: '2024-01-01T00:00:00Z', e: '2024-01-01T00:15:00Z', v: 1 },
      { meter_id: 'W-1', at: '2024-01-01T00:00:00Z', stand: 5 }, // fetched by its own kind
      { meter_id: 'V-1', s: '2024-01-01T00:00:00Z', e: '2024-01-01T00:15:00Z', v: 9 }, // filtered
      { meter_id: 'Z-9', s: '2024-01-01T00:00:00Z', e: '2024-01-01T00:15:00Z', v: 3 }, // unknown
      { meter_id: 'X-1', s: '2024-01-01T00:00:00Z', e: '2024-01-01T00:15:00Z', v: 4 }, // kind unmapped
    ];
    const { s, ctx, c, snap } = await setup(generic({ path: '/all' }), (path) =>
      path === '/all' ? all : [{ meter_id: 'W-1', at: '2024-01-01T00:00:00Z', stand: 5 }],
    );
    const [stream] = c.usageStreams();
    expect(stream!.batchSize).toBeGreaterThan(1);
    const known = new Set(snap.meters.map((m) => m.externalId));
    const envs = await stream!.fetch(ctx, snap.meters, RANGE, 0, undefined, known);
    expect(s.seen.filter((r) => r.url.pathname !== '/m').map((r) => r.url.pathname)).toEqual([
      '/all',
      '/r/W-1',
    ]);
    const by = envs.map((e) => [e.external_id, rowsOf(e), e.meta.unmatched] as const);
    expect(by).toEqual([
      ['E-1', [all[0]], undefined],
      ['Z-9', [all[3]], 'meter id "Z-9" is not in the snapshot'],
      ['X-1', [all[4]], 'meter "X-1" has a usage kind not in generic.meters.usageKinds'],
      ['W-1', [{ meter_id: 'W-1', at: '2024-01-01T00:00:00Z', stand: 5 }], undefined],
    ]);
  });

  it('a connection with one usage.kind requests and reads as before', async () => {
    const s = await serve((req, res) => {
      if (req.url.pathname === '/m') sendJson(res, 200, [{ id: 'm1', a: 's', u: 'kWh' }]);
      else sendJson(res, 200, [{ s: '2024-01-01T00:00:00Z', e: '2024-01-01T01:00:00Z', v: 2 }]);
    });
    servers.push(s);
    const connection = conn({ baseUrl: s.url });
    const http = new HttpClient({ connection, sleep: noSleep, env: {} });
    clients.push(http);
    const ctx: ConnectorContext = {
      connection,
      http,
      log: createLogger('silent'),
      runId: 'run-1',
      signal: new AbortController().signal,
      now: () => Date.UTC(2024, 1, 1),
    };
    const c = new GenericConnector(connection);
    const snap = await c.snapshot(ctx, () => Promise.resolve());
    expect(snap.meters.map((m) => m.externalId)).toEqual(['m1']);
    const envs = await c.usageStreams()[0]!.fetch(ctx, snap.meters, RANGE, 0);
    expect(envs.map((e) => [e.external_id, rowsOf(e).length])).toEqual([['m1', 1]]);
  });
});
