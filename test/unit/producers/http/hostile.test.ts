/**
 * A hostile or broken provider is contained by the HTTP core: retries have a floor and a count,
 * a request has a total deadline, echoed secrets are scrubbed, pagination has a page limit and
 * detects cycles, an absent item array is an error, compressed bodies are refused.
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HttpClient } from '../../../../producers/http/client.js';
import { parseXmlSafe } from '../../../../producers/http/body.js';
import { HTTP_DEFAULTS } from '../../../../producers/http/defaults.js';
import { paginate } from '../../../../producers/http/pagination.js';
import { redactUrl } from '../../../../lib/redact-url.js';
import type { ConnectionInput, PaginationConfig } from '../../../../schemas/connection.js';
import { conn, noSleep, rejection, sendJson, type TestServer, serveEach } from '../server.js';

const server = serveEach();

/** The connection's http block of conn() with some fields changed. */
function http(baseUrl: string, changes: Record<string, number>, rest: Partial<ConnectionInput> = {}) {
  const c = conn({ baseUrl, ...rest });
  return conn({ baseUrl, ...rest, http: { ...c.http, ...changes } });
}

describe('every retry has a floor and a count', () => {
  for (const [name, retryAfter] of [
    ['Retry-After: 0', '0'],
    ['a Retry-After date in the past', 'Wed, 21 Oct 2015 07:28:00 GMT'],
  ] as const) {
    it(`a 429 with ${name} forever: few requests, each wait at least 1 s, then retriable POLL_HTTP_STATUS`, async () => {
      const s = await server((_q, res) =>
        sendJson(res, 429, { error: 'slow down' }, { 'retry-after': retryAfter }),
      );
      const waits: number[] = [];
      const client = new HttpClient({
        connection: conn({ baseUrl: s.url }),
        sleep: (ms) => (waits.push(ms), Promise.resolve()),
      });
      // Before the fix this spun until the abort: about a thousand requests a second.
      const err = await rejection(
        client.send({ url: '/x', endpoint: 'x', signal: AbortSignal.timeout(3_000) }),
      );
      expect(err.code).toBe('POLL_HTTP_STATUS');
      expect(err.retriable).toBe(true);
      expect(err.message).toMatch(/rate limited \d+ times/);
      expect(s.seen.length).toBe(HTTP_DEFAULTS.maxRateLimitRetries + 1);
      expect(waits).toHaveLength(HTTP_DEFAULTS.maxRateLimitRetries);
      expect(Math.min(...waits)).toBeGreaterThanOrEqual(1_000);
      await client.close();
    });
  }

  it('a 503 with Retry-After: 0 waits the floor and counts against maxRetries', async () => {
    const s = await server((_q, res) => sendJson(res, 503, {}, { 'retry-after': '0' }));
    const waits: number[] = [];
    const client = new HttpClient({
      connection: conn({ baseUrl: s.url }),
      sleep: (ms) => (waits.push(ms), Promise.resolve()),
    });
    const err = await rejection(
      client.send({ url: '/x', endpoint: 'x', signal: AbortSignal.timeout(3_000) }),
    );
    expect(err.code).toBe('POLL_HTTP_STATUS');
    expect(err.retriable).toBe(true);
    expect(s.seen).toHaveLength(4); // 1 + maxRetries (3)
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(1_000);
    await client.close();
  });
});

describe('a request has a total deadline', () => {
  it('a body trickled 1 byte per 400 ms fails with POLL_HTTP_TIMEOUT at the deadline', async () => {
    const s = await server((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      let n = 0;
      const t = setInterval(() => {
        if (res.destroyed || n++ > 40) {
          clearInterval(t);
          res.end();
          return;
        }
        res.write(' ');
      }, 400);
      res.on('close', () => clearInterval(t));
    });
    const client = new HttpClient({
      connection: http(s.url, { timeoutMs: 1_000, requestDeadlineMs: 1_500, maxRetries: 0 }),
      sleep: noSleep,
    });
    const started = Date.now();
    const err = await rejection(client.send({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_HTTP_TIMEOUT');
    expect(err.message).toMatch(/within 1\.5 s/);
    expect(Date.now() - started).toBeLessThan(3_000);
    await client.close();
  });

  it('the deadline defaults to 5 minutes and is a connection setting', () => {
    expect(HTTP_DEFAULTS.requestDeadlineMs).toBe(300_000);
    expect(conn({ baseUrl: 'http://127.0.0.1:1' }).http.requestDeadlineMs).toBe(300_000);
  });
});

describe('secrets echoed by a provider are scrubbed', () => {
  const expectClean = (err: { message: string; context: Record<string, unknown> }, secrets: string[]) => {
    const shown = `${err.message} ${JSON.stringify(err.context)}`;
    for (const secret of secrets) expect(shown).not.toContain(secret);
    expect(err.message).toContain('[redacted]');
  };

  it('a 403 body echoing the API key', async () => {
    const key = 'sk_live_TOPSECRET_123';
    const s = await server((_q, res) =>
      sendJson(res, 403, {
        error: 'invalid_key',
        message: `API key ${key} (${encodeURIComponent(key + '/x')}) is not valid for this tenant`,
      }),
    );
    const client = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: { type: 'apiKey', in: 'header', name: 'X-Key', keys: [{ valueEnv: 'K' }] },
      }),
      env: { K: key },
      sleep: noSleep,
    });
    const err = await rejection(client.send({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_AUTH');
    expect(err.message).toContain('invalid_key');
    expectClean(err, [key]);
    await client.close();
  });

  it('a token endpoint echoing the OAuth client secret, raw and form-encoded', async () => {
    const secret = 'cs+SECRET/999=';
    const s = await server((q, res) =>
      sendJson(res, 401, {
        error: 'invalid_client',
        error_description: `client_secret ${secret} rejected; you sent ${q.body}`,
      }),
    );
    const client = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: {
          type: 'oauth2ClientCredentials',
          tokenUrl: '/oauth2/token',
          clientIdEnv: 'CI',
          clientSecretEnv: 'CS',
        },
      }),
      env: { CI: 'client-1', CS: secret },
      sleep: noSleep,
    });
    const err = await rejection(client.send({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_AUTH');
    expect(err.message).toContain('invalid_client');
    expectClean(err, [
      secret,
      new URLSearchParams({ s: secret }).toString().slice(2),
      encodeURIComponent(secret),
    ]);
    await client.close();
  });

  it('a body echoing the Basic password and the Authorization header, also when it does not parse', async () => {
    const basic = Buffer.from('meter-user:Pa55w0rd!x').toString('base64');
    let n = 0;
    const s = await server((q, res) => {
      if (n++ === 0)
        return sendJson(res, 403, {
          title: 'Forbidden',
          detail: `header ${q.headers.authorization}, password Pa55w0rd!x`,
        });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`Pa55w0rd!x ${basic} is not JSON`);
    });
    const client = new HttpClient({
      connection: conn({ baseUrl: s.url, auth: { type: 'basic', usernameEnv: 'U', passwordEnv: 'P' } }),
      env: { U: 'meter-user', P: 'Pa55w0rd!x' },
      sleep: noSleep,
    });
    const forbidden = await rejection(client.send({ url: '/x', endpoint: 'x' }));
    expect(forbidden.code).toBe('POLL_AUTH');
    expectClean(forbidden, ['Pa55w0rd!x', basic, 'Pa55w0rd']);
    const malformed = await rejection(client.fetch({ url: '/x', endpoint: 'x' }));
    expect(malformed.code).toBe('POLL_RESPONSE_MALFORMED');
    for (const secret of ['Pa55w0rd', basic.slice(0, 8)]) expect(malformed.message).not.toContain(secret);
    await client.close();
  });
});

async function pages(
  s: TestServer,
  pagination: PaginationConfig,
  opts: { itemsPath?: string; maxPages?: number; format?: 'json' | 'xml' } = {},
): Promise<{ items: unknown[][] }> {
  const client = new HttpClient({
    connection: opts.maxPages ? http(s.url, { maxPages: opts.maxPages }) : conn({ baseUrl: s.url }),
    sleep: noSleep,
  });
  const items: unknown[][] = [];
  try {
    for await (const p of paginate(client, {
      url: '/items',
      endpoint: 'items',
      pagination,
      itemsPath: opts.itemsPath ?? 'items',
      ...(opts.format ? { format: opts.format } : {}),
    }))
      items.push(p.items);
  } finally {
    await client.close();
  }
  return { items };
}

describe('pagination is bounded', () => {
  it('an offset provider alternating between two pages (A,B,A,B) is a loop', async () => {
    const A = [{ id: 'a1' }, { id: 'a2' }];
    const B = [{ id: 'b1' }, { id: 'b2' }];
    let n = 0;
    const s = await server((_q, res) => sendJson(res, 200, { items: n++ % 2 === 0 ? A : B, page: n }));
    const err = await rejection(pages(s, { type: 'offset', offsetParam: 'o', limitParam: 'l', limit: 2 }));
    expect(err.code).toBe('POLL_PAGINATION_LOOP');
    expect(s.seen).toHaveLength(3);
  });

  it('ever-new cursors over the same pages (A,B,C,A) are a loop', async () => {
    let n = 0;
    const s = await server((_q, res) => {
      const i = n++;
      sendJson(res, 200, { items: [{ id: `p${i % 3}` }], next: `c${i}` });
    });
    const err = await rejection(pages(s, { type: 'cursor', cursorParam: 'c', nextPath: 'next' }));
    expect(err.code).toBe('POLL_PAGINATION_LOOP');
    expect(s.seen).toHaveLength(4);
  });

  it('ever-new cursors and items stop at the connection maxPages', async () => {
    let n = 0;
    const s = await server((_q, res) => {
      const i = n++;
      sendJson(res, 200, { items: [{ id: i }], next: `c${i}` });
    });
    const err = await rejection(
      pages(s, { type: 'cursor', cursorParam: 'c', nextPath: 'next' }, { maxPages: 25 }),
    );
    expect(err.code).toBe('POLL_PAGINATION_LOOP');
    expect(err.message).toContain('more than 25 pages');
    expect(s.seen).toHaveLength(25);
  });

  it('ever-new Link URLs stop at the connection maxPages; the default is 10,000', async () => {
    let n = 0;
    const s = await server((_q, res) => {
      const i = n++;
      sendJson(res, 200, { items: [{ id: i }] }, { link: `</items?after=${i}>; rel="next"` });
    });
    const err = await rejection(pages(s, { type: 'link' }, { maxPages: 10 }));
    expect(err.code).toBe('POLL_PAGINATION_LOOP');
    expect(s.seen).toHaveLength(10);
    expect(HTTP_DEFAULTS.maxPages).toBe(10_000);
    expect(conn({ baseUrl: s.url }).http.maxPages).toBe(10_000);
  });

  it('pages are yielded as they arrive', async () => {
    let n = 0;
    const s = await server((_q, res) => {
      const i = n++;
      sendJson(res, 200, { items: [{ id: i }], next: i < 4 ? `c${i}` : null });
    });
    const client = new HttpClient({ connection: conn({ baseUrl: s.url }), sleep: noSleep });
    const requestsAtYield: number[] = [];
    for await (const _p of paginate(client, {
      url: '/items',
      endpoint: 'items',
      pagination: { type: 'cursor', cursorParam: 'c', nextPath: 'next' },
      itemsPath: 'items',
    }))
      requestsAtYield.push(s.seen.length);
    expect(requestsAtYield).toEqual([1, 2, 3, 4, 5]);
    await client.close();
  });
});

describe('an absent item array is an error, never an empty page', () => {
  const none: PaginationConfig = { type: 'none' };

  it('a body {} or an itemsPath typo is POLL_RESPONSE_SCHEMA naming the path', async () => {
    const s = await server((_q, res) => sendJson(res, 200, {}));
    const err = await rejection(pages(s, none, { itemsPath: 'items' }));
    expect(err.code).toBe('POLL_RESPONSE_SCHEMA');
    expect(err.message).toContain('"items"');
    expect(err.context).toMatchObject({ itemsPath: 'items' });

    const s2 = await server((_q, res) => sendJson(res, 200, { data: { meters: [{ id: 1 }, { id: 2 }] } }));
    const typo = await rejection(pages(s2, none, { itemsPath: 'meters' }));
    expect(typo.code).toBe('POLL_RESPONSE_SCHEMA');
    expect(typo.message).toContain('"meters"');
  });

  it('an explicit [] or null is an empty page; an empty XML list too', async () => {
    const s = await server((q, res) => {
      if (q.url.pathname === '/items' && q.url.searchParams.get('c') === 'n')
        return sendJson(res, 200, { items: null, next: null });
      sendJson(res, 200, { items: [], next: 'n' });
    });
    expect((await pages(s, { type: 'cursor', cursorParam: 'c', nextPath: 'next' })).items).toEqual([[], []]);

    const x = await server((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<r><list></list></r>');
    });
    expect((await pages(x, none, { itemsPath: 'r.list.item', format: 'xml' })).items).toEqual([[]]);
  });
});

describe('URLs as shown', () => {
  it('drop common credential parameters (x-amz-* by prefix) and the fragment', () => {
    const names = [
      'access-token',
      'auth',
      'auth_token',
      'jwt',
      'session',
      'sessionid',
      'private_token',
      'subscription-key',
      'X-Amz-Signature',
      'X-Amz-Credential',
      'X-Amz-Security-Token',
      'refresh_token',
      'id_token',
    ];
    const u = new URL('https://p.example/v1/x?from=2024-01-01');
    for (const n of names) u.searchParams.set(n, 'S3CRET');
    u.hash = 'access_token=S3CRET';
    const shown = redactUrl(u);
    expect(shown).toBe('https://p.example/v1/x?from=2024-01-01');
  });
});

describe('bodies', () => {
  it('XML predefined and numeric entities are decoded; DOCTYPE is still refused', () => {
    const ctx = { connection: 'c', endpoint: 'e', url: 'http://x/e' };
    expect(
      parseXmlSafe(
        '<r n="AT&amp;T"><a>AT&amp;T &lt;b&gt; &#x41;&#66; &quot;q&quot; &apos; &amp;lt; &xx;</a></r>',
        ctx,
      ),
    ).toEqual({ r: { '@_n': 'AT&T', a: 'AT&T <b> AB "q" \' &lt; &xx;' } });
    expect(() => parseXmlSafe('<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>', ctx)).toThrow(/DOCTYPE/);
  });

  it('a gzip-encoded body is POLL_RESPONSE_CONTENT_TYPE with a readable message', async () => {
    const s = await server((_q, res) => {
      const z = gzipSync(JSON.stringify({ items: Array.from({ length: 100 }, (_, i) => i) }));
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
        'content-length': z.length,
      });
      res.end(z);
    });
    const client = new HttpClient({ connection: conn({ baseUrl: s.url }), sleep: noSleep });
    const err = await rejection(client.fetch({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_RESPONSE_CONTENT_TYPE');
    expect(err.message).toContain('Content-Encoding gzip');
    expect(err.message).toMatch(/^[\x20-\x7e]*$/);
    await client.close();
  });
});
