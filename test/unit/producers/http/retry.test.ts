import { describe, expect, it } from 'vitest';
import { HttpClient } from '../../../../producers/http/client.js';
import { classify, DEFAULT_ERROR_POLICY, parseRetryAfter } from '../../../../producers/http/policy.js';
import { conn, noSleep, rejection, sendJson, serveEach } from '../server.js';

const server = serveEach();

describe('the error policy table', () => {
  it('maps statuses and transport failures to actions', () => {
    const action = (o: Parameters<typeof classify>[0]) => classify(o).action;
    expect(action({ status: 200 })).toBe('success');
    expect(action({ status: 204 })).toBe('success');
    expect(action({ status: 401 })).toBe('reauth');
    expect(action({ status: 429 })).toBe('rateLimited');
    expect(action({ status: 500 })).toBe('retry');
    expect(action({ status: 503 })).toBe('retry');
    expect(action({ status: 408 })).toBe('retry');
    expect(action({ failure: 'network' })).toBe('retry');
    expect(action({ failure: 'timeout' })).toBe('retry');
    expect(action({ status: 400 })).toBe('fail');
    expect(action({ status: 403 })).toBe('fail');
    expect(action({ status: 404 })).toBe('fail');
    expect(classify({ status: 403 }).code).toBe('POLL_AUTH');
    expect(DEFAULT_ERROR_POLICY.every((r) => r.description.length > 0)).toBe(true);
  });

  it('Retry-After in seconds or as an HTTP date', () => {
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(10_000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });
});

describe('retries in the HTTP core', () => {
  it('honours Retry-After on 429 and retries 5xx, then succeeds', async () => {
    let n = 0;
    const s = await server((_q, res) => {
      n++;
      if (n === 1) return sendJson(res, 429, { error: 'slow down' }, { 'retry-after': '2' });
      if (n === 2) return sendJson(res, 503, { error: 'busy' });
      sendJson(res, 200, { ok: true });
    });
    const waits: number[] = [];
    const http = new HttpClient({
      connection: conn({ baseUrl: s.url }),
      sleep: (ms) => (waits.push(ms), Promise.resolve()),
      random: () => 0.5,
    });
    const res = await http.send({ url: '/x', endpoint: 'x' });
    expect(res.status).toBe(200);
    expect(waits[0]).toBe(2000);
    expect(waits).toHaveLength(2);
    expect(http.stats).toMatchObject({ requests: 3, retries: 2, rateLimited: 1 });
    await http.close();
  });

  it('5xx retries back off exponentially from the base (lib/retry.ts), never below it', async () => {
    const s = await server((_q, res) => sendJson(res, 503, {}));
    for (const [random, first] of [
      [() => 1, 1],
      [() => 0, 0.5],
    ] as const) {
      const waits: number[] = [];
      const base = 100;
      const http = new HttpClient({
        connection: conn({
          baseUrl: s.url,
          http: {
            timeoutMs: 2_000,
            maxResponseBytes: 1 << 20,
            maxRetries: 4,
            backoffBaseMs: base,
            backoffMaxMs: 350,
          },
        }),
        sleep: (ms) => (waits.push(ms), Promise.resolve()),
        random,
      });
      await rejection(http.send({ url: '/x', endpoint: 'x' }));
      const cap = (i: number) => Math.min(350, base * 2 ** i);
      expect(waits).toEqual([0, 1, 2, 3].map((i) => Math.max(base, Math.round(first * cap(i)))));
      await http.close();
    }
  });

  it('never retries other 4xx', async () => {
    const s = await server((_q, res) =>
      sendJson(res, 400, { error: 'invalid_request', error_description: 'bad range' }),
    );
    const http = new HttpClient({ connection: conn({ baseUrl: s.url }), sleep: noSleep });
    const err = await rejection(http.send({ url: '/x', endpoint: 'values', page: '2' }));
    expect(err.code).toBe('POLL_HTTP_STATUS');
    expect(err.retriable).toBe(false);
    expect(err.message).toContain('invalid_request: bad range');
    expect(err.context).toMatchObject({ connection: 'unit', endpoint: 'values', page: '2', status: 400 });
    expect(s.seen).toHaveLength(1);
    await http.close();
  });

  it('gives up after maxRetries with a retriable error', async () => {
    const s = await server((_q, res) => sendJson(res, 502, {}));
    const http = new HttpClient({ connection: conn({ baseUrl: s.url }), sleep: noSleep });
    const err = await rejection(http.send({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_HTTP_STATUS');
    expect(err.retriable).toBe(true);
    expect(s.seen).toHaveLength(4); // 1 + maxRetries (3)
    await http.close();
  });

  it('retries a connection reset, and a header timeout', async () => {
    let n = 0;
    const s = await server((_q, res) => {
      n++;
      if (n === 1) {
        res.socket?.destroy();
        return;
      }
      if (n === 2) return; // never answers: header timeout
      sendJson(res, 200, { ok: true });
    });
    const c = conn({ baseUrl: s.url });
    const http = new HttpClient({
      connection: { ...c, http: { ...c.http, timeoutMs: 300 } },
      sleep: noSleep,
    });
    const res = await http.send({ url: '/x', endpoint: 'x' });
    expect(res.status).toBe(200);
    expect(http.stats.retries).toBe(2);
    await http.close();
  });

  it('a Retry-After beyond the limit fails instead of waiting', async () => {
    const s = await server((_q, res) => sendJson(res, 429, {}, { 'retry-after': '86400' }));
    const http = new HttpClient({ connection: conn({ baseUrl: s.url }), sleep: noSleep });
    const err = await rejection(http.send({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_HTTP_STATUS');
    expect(err.message).toMatch(/Retry-After 86400 s/);
    expect(s.seen).toHaveLength(1);
    await http.close();
  });

  it('follows same-origin redirects only', async () => {
    const s = await server((q, res) => {
      if (q.url.pathname === '/old') {
        res.writeHead(301, { location: '/new' });
        res.end();
        return;
      }
      if (q.url.pathname === '/away') {
        res.writeHead(302, { location: 'http://other.example/steal' });
        res.end();
        return;
      }
      sendJson(res, 200, { at: q.url.pathname });
    });
    const http = new HttpClient({
      connection: conn({ baseUrl: s.url, auth: { type: 'bearer', tokenEnv: 'T' } }),
      env: { T: 'tok' },
      sleep: noSleep,
    });
    expect(JSON.parse((await http.send({ url: '/old', endpoint: 'x' })).text)).toEqual({ at: '/new' });
    const err = await rejection(http.send({ url: '/away', endpoint: 'x' }));
    expect(err.code).toBe('POLL_FOREIGN_ORIGIN');
    await http.close();
  });
});
