import { afterEach, describe, expect, it } from 'vitest';
import { HttpClient } from '../../../../producers/http/client.js';
import { paginate, parseLinkHeader } from '../../../../producers/http/pagination.js';
import type { PaginationConfig } from '../../../../schemas/connection.js';
import { conn, noSleep, rejection, sendJson, serve, type TestServer } from '../server.js';

const ITEMS = Array.from({ length: 23 }, (_, i) => ({ id: `m${i}` }));
let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function collect(
  server: TestServer,
  pagination: PaginationConfig,
  itemsPath = 'items',
  auth?: Parameters<typeof conn>[0]['auth'],
): Promise<{ ids: string[]; labels: string[] }> {
  const http = new HttpClient({
    connection: conn({ baseUrl: server.url, ...(auth ? { auth } : {}) }),
    sleep: noSleep,
    env: { KEY: 'sekret' },
  });
  const ids: string[] = [];
  const labels: string[] = [];
  try {
    for await (const p of paginate(http, { url: '/items', endpoint: 'items', pagination, itemsPath })) {
      labels.push(p.label);
      for (const it of p.items) ids.push((it as { id: string }).id);
    }
  } finally {
    await http.close();
  }
  return { ids, labels };
}

describe('pagination styles', () => {
  it('offset/limit with a total', async () => {
    const s = await serve((req, res) => {
      const off = Number(req.url.searchParams.get('offset'));
      const lim = Number(req.url.searchParams.get('limit'));
      sendJson(res, 200, { total: ITEMS.length, items: ITEMS.slice(off, off + lim) });
    });
    servers.push(s);
    const r = await collect(s, {
      type: 'offset',
      offsetParam: 'offset',
      limitParam: 'limit',
      limit: 10,
      totalPath: 'total',
    });
    expect(r.ids).toEqual(ITEMS.map((i) => i.id));
    expect(r.labels).toEqual(['0', '10', '20']);
    expect(s.seen).toHaveLength(3);
  });

  it('offset/limit without a total stops at a short page', async () => {
    const s = await serve((req, res) => {
      const off = Number(req.url.searchParams.get('offset'));
      sendJson(res, 200, ITEMS.slice(off, off + 5));
    });
    servers.push(s);
    const r = await collect(s, { type: 'offset', offsetParam: 'offset', limitParam: 'limit', limit: 5 }, '');
    expect(r.ids).toHaveLength(23);
    expect(s.seen).toHaveLength(5);
  });

  it('page/size with totalPages, 1-based', async () => {
    const s = await serve((req, res) => {
      const page = Number(req.url.searchParams.get('p'));
      const size = Number(req.url.searchParams.get('n'));
      sendJson(res, 200, {
        data: { rows: ITEMS.slice((page - 1) * size, page * size) },
        meta: { pages: Math.ceil(ITEMS.length / size) },
      });
    });
    servers.push(s);
    const r = await collect(
      s,
      { type: 'page', pageParam: 'p', sizeParam: 'n', size: 8, firstPage: 1, totalPagesPath: 'meta.pages' },
      'data.rows',
    );
    expect(r.ids).toEqual(ITEMS.map((i) => i.id));
    expect(r.labels).toEqual(['1', '2', '3']);
  });

  it('a provider that ignores the page parameter is a loop', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { items: ITEMS.slice(0, 5) }));
    servers.push(s);
    const err = await rejection(
      collect(s, { type: 'page', pageParam: 'page', sizeParam: 'size', size: 5, firstPage: 0 }),
    );
    expect(err.code).toBe('POLL_PAGINATION_LOOP');
  });

  it('cursor / next token', async () => {
    const s = await serve((req, res) => {
      const c = Number(req.url.searchParams.get('cursor') ?? '0');
      sendJson(res, 200, {
        items: ITEMS.slice(c, c + 10),
        next: c + 10 < ITEMS.length ? String(c + 10) : null,
      });
    });
    servers.push(s);
    const r = await collect(s, { type: 'cursor', cursorParam: 'cursor', nextPath: 'next' });
    expect(r.ids).toEqual(ITEMS.map((i) => i.id));
    expect(s.seen.map((x) => x.url.searchParams.get('cursor'))).toEqual([null, '10', '20']);
  });

  it('a repeated cursor stops with POLL_PAGINATION_LOOP', async () => {
    // Distinct items on every page: the repeated cursor, not a repeated page, stops it.
    const s = await serve((req, res) =>
      sendJson(res, 200, {
        items: [{ id: req.url.searchParams.get('cursor') ?? 'first' }],
        next: req.url.searchParams.get('cursor') === 'a' ? 'b' : 'a',
      }),
    );
    servers.push(s);
    const err = await rejection(collect(s, { type: 'cursor', cursorParam: 'cursor', nextPath: 'next' }));
    expect(err.code).toBe('POLL_PAGINATION_LOOP');
    expect(err.message).toContain('endpoint items');
    expect(s.seen).toHaveLength(3);
  });

  it('RFC 8288 Link header, relative and absolute', async () => {
    const s = await serve((req, res) => {
      const c = Number(req.url.searchParams.get('from') ?? '0');
      const links: string[] = [];
      if (c + 10 < ITEMS.length)
        links.push(
          c === 0
            ? `</items?from=${c + 10}>; rel="next"`
            : `<${req.url.origin}/items?from=${c + 10}>; rel="next last"`,
        );
      links.push('</items?from=0>; rel="first"');
      sendJson(res, 200, ITEMS.slice(c, c + 10), { link: links.join(', ') });
    });
    servers.push(s);
    const r = await collect(s, { type: 'link' }, '');
    expect(r.ids).toEqual(ITEMS.map((i) => i.id));
  });

  it('parses Link headers with several relations', () => {
    const m = parseLinkHeader(
      '<https://a/x?p=2>; rel="next", <https://a/x?p=9>; rel=last, <https://a/x?p=1>; title="x"; rel="prev first"',
    );
    expect(m.get('next')).toBe('https://a/x?p=2');
    expect(m.get('last')).toBe('https://a/x?p=9');
    expect(m.get('first')).toBe('https://a/x?p=1');
  });

  it('a repeated Link URL stops with POLL_PAGINATION_LOOP', async () => {
    const s = await serve((req, res) =>
      sendJson(res, 200, [{ id: 'x' }], {
        link: `</items?p=${req.url.searchParams.get('p') === '1' ? '2' : '1'}>; rel="next"`,
      }),
    );
    servers.push(s);
    const err = await rejection(collect(s, { type: 'link' }, ''));
    expect(err.code).toBe('POLL_PAGINATION_LOOP');
  });

  it('a next link on another origin is refused and receives nothing, not even credentials', async () => {
    const foreign = await serve((_req, res) => sendJson(res, 200, []));
    servers.push(foreign);
    const s = await serve((_req, res) =>
      sendJson(res, 200, [{ id: 'x' }], {
        link: `<${foreign.url.replace('127.0.0.1', 'localhost')}/steal>; rel="next"`,
      }),
    );
    servers.push(s);
    const err = await rejection(
      collect(s, { type: 'link' }, '', {
        type: 'apiKey',
        in: 'header',
        name: 'X-Key',
        keys: [{ valueEnv: 'KEY' }],
      }),
    );
    expect(err.code).toBe('POLL_FOREIGN_ORIGIN');
    expect(foreign.seen).toHaveLength(0);
    expect(s.seen[0]!.headers['x-key']).toBe('sekret');
    expect(err.message).not.toContain('sekret');
  });

  it('a next URL in a cursor field on another origin is refused', async () => {
    const s = await serve((_req, res) =>
      sendJson(res, 200, { items: [{ id: 'x' }], next: 'https://evil.example.com/items?page=2' }),
    );
    servers.push(s);
    const err = await rejection(collect(s, { type: 'cursor', cursorParam: 'cursor', nextPath: 'next' }));
    expect(err.code).toBe('POLL_FOREIGN_ORIGIN');
    expect(s.seen).toHaveLength(1);
  });
});
