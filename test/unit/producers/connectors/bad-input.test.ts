/**
 * Connectors against loopback providers that answer wrongly: rows of no requested meter, usage
 * answers without their values, meter ids that would walk the URL path, and usage pages handed
 * over one by one rather than collected.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../../lib/log.js';
import { HttpClient } from '../../../../producers/http/client.js';
import { GenericConnector } from '../../../../producers/connectors/generic/index.js';
import { EnerKeyConnector } from '../../../../producers/connectors/enerkey/index.js';
import { ArcadiaConnector } from '../../../../producers/connectors/arcadia/index.js';
import type { Connector, ConnectorContext, UsageChunk } from '../../../../producers/connectors/types.js';
import type { RawEnvelope } from '../../../../schemas/records.js';
import type { ConnectionInput } from '../../../../schemas/connection.js';
import { conn, noSleep, rejection, sendJson, serve, type TestServer } from '../server.js';

let servers: TestServer[] = [];
let clients: HttpClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  clients = [];
});

const RANGE = { from: Date.UTC(2024, 0, 1), to: Date.UTC(2024, 0, 2) };

function context(server: TestServer, input: Partial<ConnectionInput>): ConnectorContext {
  const connection = conn({ baseUrl: server.url, ...input });
  const http = new HttpClient({ connection, sleep: noSleep, env: {} });
  clients.push(http);
  return {
    connection,
    http,
    log: createLogger('silent'),
    runId: 'run-1',
    signal: new AbortController().signal,
    now: () => Date.UTC(2024, 1, 1),
  };
}

const usageOf = (ctx: ConnectorContext, c: Connector) => c.usageStreams()[0]!;
const rowsOf = (e: RawEnvelope): unknown[] => JSON.parse(e.payload) as unknown[];

function generic(usage: Record<string, unknown>): Partial<ConnectionInput> {
  return {
    generic: {
      meters: { path: '/m', fields: { externalId: 'id', assetId: 'a', unit: 'u' } },
      usage: {
        kind: 'consumption',
        ...usage,
        fields: { start: 's', end: 'e', ...(usage.fields as object) },
      } as never,
    },
  };
}

describe('generic usage: rows of no requested meter are never dropped', () => {
  const rows = [
    { meter_id: 'm1', v: 1 },
    { meter_id: 'm2', v: 2 },
    { meter_id: 'x9', v: 3 }, // a meter the snapshot never listed
    { v: 4 }, // no meter id at all
    { meter_id: 'm3', v: 5 }, // listed, but fetched by another batch (another watermark)
    { meter_id: 'm1', v: 6 },
  ];

  it('one request for all meters: unknown and id-less rows travel in their own envelopes, in the same chunk', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { items: rows }));
    servers.push(s);
    const ctx = context(
      s,
      generic({ path: '/u', itemsPath: 'items', fields: { value: 'v', meterId: 'meter_id' } }),
    );
    const c = new GenericConnector(ctx.connection);
    const chunk = await usageOf(ctx, c).fetch(
      ctx,
      [{ externalId: 'm1' }, { externalId: 'm2' }],
      RANGE,
      0,
      undefined,
      new Set(['m1', 'm2', 'm3']),
    );
    const by = new Map(chunk.map((e) => [e.external_id, e]));
    expect(rowsOf(by.get('m1')!)).toEqual([rows[0], rows[5]]);
    expect(rowsOf(by.get('m2')!)).toEqual([rows[1]]);
    // The usage stage quarantines these as VAL_UNKNOWN_METER, with the rows as they came.
    expect(rowsOf(by.get('x9')!)).toEqual([rows[2]]);
    expect(by.get('x9')!.meta.unmatched).toMatch(/x9/);
    expect(rowsOf(by.get('')!)).toEqual([rows[3]]);
    expect(by.get('')!.meta.unmatched).toMatch(/meter_id/);
    // m3's rows belong to m3's own batch: not sent twice.
    expect(by.has('m3')).toBe(false);
    expect(chunk.items).toBe(5);
  });

  it('one request for all meters: a meterId field that matches no row is POLL_RESPONSE_SCHEMA with the counts', async () => {
    const s = await serve((_req, res) =>
      sendJson(res, 200, {
        items: [
          { meterId: 'm1', v: 1 },
          { meterId: 'm2', v: 2 },
        ],
      }),
    );
    servers.push(s);
    const ctx = context(
      s,
      generic({ path: '/u', itemsPath: 'items', fields: { value: 'v', meterId: 'meter_id' } }),
    );
    const c = new GenericConnector(ctx.connection);
    const err = await rejection(
      usageOf(ctx, c).fetch(ctx, [{ externalId: 'm1' }, { externalId: 'm2' }], RANGE, 0),
    );
    expect(err.code).toBe('POLL_RESPONSE_SCHEMA');
    expect(err.message).toContain('connection unit');
    expect(err.message).toContain('meter_id');
    expect(err.message).toMatch(/2 of 2 rows/);
  });

  it('per-meter requests: items carrying another meter id stay in the envelope for the normaliser to quarantine', async () => {
    const s = await serve((_req, res) =>
      sendJson(res, 200, {
        items: [
          { meter_id: 'm1', v: 1 },
          { meter_id: 'm7', v: 2 },
        ],
      }),
    );
    servers.push(s);
    const ctx = context(
      s,
      generic({
        path: '/meters/{meterId}/u',
        itemsPath: 'items',
        fields: { value: 'v', meterId: 'meter_id' },
      }),
    );
    const c = new GenericConnector(ctx.connection);
    const chunk = await usageOf(ctx, c).fetch(ctx, [{ externalId: 'm1' }], RANGE, 0);
    expect(chunk.flatMap(rowsOf)).toEqual([
      { meter_id: 'm1', v: 1 },
      { meter_id: 'm7', v: 2 },
    ]);
  });
});

describe('generic usage: pages are handed over as they arrive', () => {
  it('each page becomes envelopes before the next page is fetched', async () => {
    const s = await serve((req, res) => {
      const off = Number(req.url.searchParams.get('offset'));
      const items = off >= 50 ? [] : Array.from({ length: 10 }, (_, i) => ({ v: off + i }));
      sendJson(res, 200, { items });
    });
    servers.push(s);
    const ctx = context(
      s,
      generic({
        path: '/meters/{meterId}/u',
        itemsPath: 'items',
        fields: { value: 'v' },
        pagination: { type: 'offset', offsetParam: 'offset', limitParam: 'limit', limit: 10 },
      }),
    );
    const c = new GenericConnector(ctx.connection);
    const handed: { requests: number; rows: number }[] = [];
    const rest: UsageChunk = await usageOf(ctx, c).fetch(ctx, [{ externalId: 'm1' }], RANGE, 0, (envs) => {
      handed.push({ requests: s.seen.length, rows: envs.flatMap(rowsOf).length });
      return Promise.resolve();
    });
    const total = handed.reduce((n, h) => n + h.rows, 0) + rest.flatMap(rowsOf).length;
    expect(total).toBe(50);
    // Handed over page by page: at most one page of rows is ever held.
    expect(handed.length).toBeGreaterThanOrEqual(4);
    expect(handed.map((h) => h.requests)).toEqual([1, 2, 3, 4, 5].slice(0, handed.length));
    expect(Math.max(...handed.map((h) => h.rows), ...rest.map((e) => rowsOf(e).length))).toBe(10);
  });
});

describe('a meter id never changes the URL path', () => {
  it('generic: ids "." and ".." are refused before any request; "/" is encoded', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { items: [] }));
    servers.push(s);
    const ctx = context(
      s,
      generic({ path: '/meters/{meterId}/usage', itemsPath: 'items', fields: { value: 'v' } }),
    );
    const c = new GenericConnector(ctx.connection);
    for (const id of ['..', '.']) {
      const err = await rejection(usageOf(ctx, c).fetch(ctx, [{ externalId: id }], RANGE, 0));
      expect(err.code).toBe('POLL_RESPONSE_SCHEMA');
      expect(err.message).toContain(`"${id}"`);
    }
    expect(s.seen).toHaveLength(0);
    await usageOf(ctx, c).fetch(ctx, [{ externalId: 'a/../b' }], RANGE, 0);
    expect(s.seen.map((r) => r.url.pathname)).toEqual(['/meters/a%2F..%2Fb/usage']);
  });

  it('arcadia: an interval request for meter ".." is refused and reaches no other path', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { readings: [] }));
    servers.push(s);
    const ctx = context(s, {
      id: 'arc',
      provider: 'arcadia',
      generic: undefined,
      options: { intervals: 'raw' },
    });
    const c = new ArcadiaConnector(ctx.connection);
    const err = await rejection(usageOf(ctx, c).fetch(ctx, [{ externalId: '..' }], RANGE, 0));
    expect(err.code).toBe('POLL_RESPONSE_SCHEMA');
    expect(s.seen).toHaveLength(0);
  });
});

describe('a usage answer without its values is an error, never an empty chunk', () => {
  const enerkey = (s: TestServer): ConnectorContext =>
    context(s, { id: 'ek', provider: 'enerkey', generic: undefined, options: { values: ['hourly'] } });

  it('enerkey: values {} is POLL_RESPONSE_SCHEMA for the whole batch', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, {}));
    servers.push(s);
    const ctx = enerkey(s);
    const c = new EnerKeyConnector(ctx.connection);
    const err = await rejection(
      usageOf(ctx, c).fetch(ctx, [{ externalId: '1' }, { externalId: '2' }], RANGE, 0),
    );
    expect(err.code).toBe('POLL_RESPONSE_SCHEMA');
  });

  it('enerkey: a requested meter missing from the answer, or without a values array, fails for that meter only', async () => {
    const s = await serve((_req, res) =>
      sendJson(res, 200, {
        from: 'a',
        to: 'b',
        resolution: 'PT1H',
        meters: [
          { meterId: 1, values: [{ timestamp: '2024-01-01T00:00:00Z', value: 1, flag: 'Measured' }] },
          { meterId: 2 },
        ],
      }),
    );
    servers.push(s);
    const ctx = enerkey(s);
    const c = new EnerKeyConnector(ctx.connection);
    const chunk = await usageOf(ctx, c).fetch(
      ctx,
      [{ externalId: '1' }, { externalId: '2' }, { externalId: '3' }],
      RANGE,
      0,
    );
    expect(chunk.map((e) => e.external_id)).toEqual(['1']);
    expect([...(chunk.failed?.keys() ?? [])].sort()).toEqual(['2', '3']);
    for (const e of chunk.failed?.values() ?? []) expect(e.code).toBe('POLL_RESPONSE_SCHEMA');
  });

  it('enerkey: a meter listing that is not an array makes the snapshot partial', async () => {
    const s = await serve((req, res) => {
      if (req.url.pathname.endsWith('/quantities')) return sendJson(res, 200, []);
      if (req.url.pathname.endsWith('/facilities'))
        return sendJson(res, 200, { items: [{ id: 1 }], continuationToken: null });
      sendJson(res, 200, {});
    });
    servers.push(s);
    const ctx = enerkey(s);
    const c = new EnerKeyConnector(ctx.connection);
    const snap = await c.snapshot(ctx, () => Promise.resolve());
    expect(snap.complete).toBe(false);
    expect(snap.errors.map((e) => e.code)).toEqual(['POLL_RESPONSE_SCHEMA']);
  });

  it('arcadia: an intervals body without readings is POLL_RESPONSE_SCHEMA', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, {}));
    servers.push(s);
    const ctx = context(s, {
      id: 'arc',
      provider: 'arcadia',
      generic: undefined,
      options: { intervals: 'raw' },
    });
    const c = new ArcadiaConnector(ctx.connection);
    const err = await rejection(usageOf(ctx, c).fetch(ctx, [{ externalId: 'm1' }], RANGE, 0));
    expect(err.code).toBe('POLL_RESPONSE_SCHEMA');
  });
});
