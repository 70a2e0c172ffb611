import { describe, expect, it } from 'vitest';
import { HttpClient } from '../../../../producers/http/client.js';
import { KEY_REJECTION_MS } from '../../../../producers/http/auth.js';
import { conn, noSleep, rejection, sendJson, type TestServer, serveEach } from '../server.js';

const server = serveEach();

describe('API key', () => {
  it('sends the key in a named header with a format', async () => {
    const s = await server((_q, res) => sendJson(res, 200, {}));
    const http = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          format: 'Key {key}',
          keys: [{ valueEnv: 'K1' }],
        },
      }),
      env: { K1: 'abc' },
      sleep: noSleep,
    });
    await http.send({ url: '/x', endpoint: 'x' });
    expect(s.seen[0]!.headers.authorization).toBe('Key abc');
    await http.close();
  });

  it('sends the key as a query parameter and strips it from every shown URL', async () => {
    const s = await server((_q, res) => sendJson(res, 404, { error: 'nope' }));
    const http = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: { type: 'apiKey', in: 'query', name: 'subscription', keys: [{ valueEnv: 'K1' }] },
      }),
      env: { K1: 'topsecret' },
      sleep: noSleep,
    });
    const err = await rejection(http.send({ url: '/x', query: { a: '1' }, endpoint: 'x', page: '3' }));
    expect(s.seen[0]!.url.searchParams.get('subscription')).toBe('topsecret');
    expect(err.code).toBe('POLL_HTTP_STATUS');
    expect(err.message).toContain('endpoint x, page 3');
    expect(err.message).not.toContain('topsecret');
    expect(JSON.stringify(err.context)).not.toContain('topsecret');
    expect(http.redact(s.seen[0]!.url)).toBe(`${s.url}/x?a=1`);
    await http.close();
  });

  it('uses the first key valid today and falls back to the next one on 401', async () => {
    const s = await server((q, res) =>
      q.headers.authorization === 'k3'
        ? sendJson(res, 200, { ok: true })
        : sendJson(res, 401, { error: 'invalid key' }),
    );
    const http = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: {
          type: 'apiKey',
          name: 'Authorization',
          keys: [
            { valueEnv: 'K1', validTo: '2020-01-01' },
            { valueEnv: 'K2', validFrom: '2020-01-01' },
            { valueEnv: 'K3' },
          ],
        },
      }),
      env: { K1: 'k1', K2: 'k2', K3: 'k3' },
      sleep: noSleep,
    });
    const res = await http.send({ url: '/x', endpoint: 'x' });
    expect(res.status).toBe(200);
    expect(s.seen.map((r) => r.headers.authorization)).toEqual(['k2', 'k3']);
    // The rejected key is not tried again.
    await http.send({ url: '/x', endpoint: 'x' });
    expect(s.seen.at(-1)!.headers.authorization).toBe('k3');
    await http.close();
  });

  it('fails with POLL_AUTH when every key is rejected', async () => {
    const s = await server((_q, res) => sendJson(res, 401, { error: 'invalid key' }));
    const http = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: { type: 'apiKey', name: 'Authorization', keys: [{ valueEnv: 'K1' }, { valueEnv: 'K2' }] },
      }),
      env: { K1: 'k1', K2: 'k2' },
      sleep: noSleep,
    });
    const err = await rejection(http.send({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_AUTH');
    expect(s.seen).toHaveLength(2);
    await http.close();
  });

  it('keys rejected by a burst of 401s are tried again after KEY_REJECTION_MS', async () => {
    let burst = true;
    const s = await server((_q, res) =>
      burst ? sendJson(res, 401, { error: 'invalid key' }) : sendJson(res, 200, { ok: true }),
    );
    let now = Date.parse('2026-06-01T00:00:00Z');
    const http = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: { type: 'apiKey', name: 'Authorization', keys: [{ valueEnv: 'K1' }, { valueEnv: 'K2' }] },
      }),
      env: { K1: 'k1', K2: 'k2' },
      sleep: noSleep,
      now: () => now,
    });
    for (let i = 0; i < 2; i++)
      expect((await rejection(http.send({ url: '/x', endpoint: 'x' }))).code).toBe('POLL_AUTH');
    expect(s.seen.map((r) => r.headers.authorization)).toEqual(['k1', 'k2', 'k2']);
    burst = false;
    // Both keys are passed over within the window, without a request...
    now += KEY_REJECTION_MS - 1;
    const err = await rejection(http.send({ url: '/x', endpoint: 'x' }));
    expect(err.message).toContain('no valid API key left');
    expect(s.seen).toHaveLength(3);
    // ...and used again once it is over: the burst does not end a long run for good.
    now += 1;
    expect((await http.send({ url: '/x', endpoint: 'x' })).status).toBe(200);
    expect(s.seen.at(-1)!.headers.authorization).toBe('k1');
    await http.close();
  });

  it('a missing variable is CFG_SECRET_MISSING naming the variable', () => {
    let err: { code?: string; message?: string } = {};
    try {
      new HttpClient({
        connection: conn({
          baseUrl: 'http://127.0.0.1:1',
          auth: { type: 'basic', usernameEnv: 'USER_X', passwordEnv: 'PASS_X' },
        }),
        env: { USER_X: 'u' },
      });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('CFG_SECRET_MISSING');
    expect(err.message).toContain('PASS_X');
  });
});

describe('Basic and bearer', () => {
  it('Basic encodes user:password', async () => {
    const s = await server((_q, res) => sendJson(res, 200, {}));
    const http = new HttpClient({
      connection: conn({ baseUrl: s.url, auth: { type: 'basic', usernameEnv: 'U', passwordEnv: 'P' } }),
      env: { U: 'me', P: 'pw:1' },
    });
    await http.send({ url: '/x', endpoint: 'x' });
    expect(s.seen[0]!.headers.authorization).toBe('Basic ' + Buffer.from('me:pw:1').toString('base64'));
    await http.close();
  });

  it('static bearer with a header format', async () => {
    const s = await server((_q, res) => sendJson(res, 200, {}));
    const http = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: { type: 'bearer', tokenEnv: 'T', header: 'X-Auth', format: 'Token token={token}' },
      }),
      env: { T: 'tok' },
    });
    await http.send({ url: '/x', endpoint: 'x' });
    expect(s.seen[0]!.headers['x-auth']).toBe('Token token=tok');
    await http.close();
  });
});

describe('OAuth2', () => {
  function tokenServer(opts: { lifetime: number; reject?: (n: number) => boolean }): Promise<TestServer> {
    let issued = 0;
    const valid = new Set<string>();
    return server((q, res) => {
      if (q.url.pathname === '/oauth2/token') {
        const form = new URLSearchParams(q.body);
        if (form.get('client_secret') !== 'cs')
          return sendJson(res, 401, {
            error: 'invalid_client',
            error_description: 'Invalid client credentials',
          });
        issued++;
        const t = `t${issued}`;
        valid.add(t);
        return sendJson(res, 200, {
          access_token: t,
          expires_in: opts.lifetime,
          token_type: 'Bearer',
          ...(form.get('grant_type') === 'password' ? { refresh_token: `r${issued}` } : {}),
        });
      }
      const tok = (q.headers.authorization ?? '').replace('Bearer ', '');
      if (!valid.has(tok) || opts.reject?.(s0.seen.length))
        return sendJson(res, 401, { error: 'invalid_token' });
      sendJson(res, 200, { ok: tok });
    }).then((s) => (s0 = s));
  }
  let s0: TestServer;

  /** An OAuth2 client-credentials client of `s` (client id "ci"; the secret the server accepts is "cs"). */
  function clientCredentials(
    s: TestServer,
    opts: { auth?: Record<string, unknown>; secret?: string; now?: () => number } = {},
  ): HttpClient {
    return new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: {
          type: 'oauth2ClientCredentials',
          tokenUrl: '/oauth2/token',
          clientIdEnv: 'CI',
          clientSecretEnv: 'CS',
          ...opts.auth,
        },
      }),
      env: { CI: 'ci', CS: opts.secret ?? 'cs' },
      ...(opts.now ? { now: opts.now } : {}),
    });
  }

  it('client credentials: one token for many requests, form-encoded, secrets not in errors', async () => {
    const s = await tokenServer({ lifetime: 3600 });
    const http = clientCredentials(s, { auth: { scope: 'read' } });
    await http.send({ url: '/a', endpoint: 'a' });
    await http.send({ url: '/b', endpoint: 'b' });
    const tokenReqs = s.seen.filter((r) => r.url.pathname === '/oauth2/token');
    expect(tokenReqs).toHaveLength(1);
    expect(tokenReqs[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(tokenReqs[0]!.body))).toEqual({
      grant_type: 'client_credentials',
      client_id: 'ci',
      client_secret: 'cs',
      scope: 'read',
    });
    expect(
      s.seen.filter((r) => r.url.pathname !== '/oauth2/token').map((r) => r.headers.authorization),
    ).toEqual(['Bearer t1', 'Bearer t1']);
    await http.close();
  });

  it('refreshes the token before it expires', async () => {
    const s = await tokenServer({ lifetime: 300 });
    let now = 1_000_000;
    const http = clientCredentials(s, { auth: { refreshSkewSeconds: 30 }, now: () => now });
    await http.send({ url: '/a', endpoint: 'a' });
    now += 250_000; // 50 s left: still outside the 30 s skew
    await http.send({ url: '/a', endpoint: 'a' });
    now += 25_000; // 25 s left: inside the skew, refreshed before use
    await http.send({ url: '/a', endpoint: 'a' });
    const auths = s.seen.filter((r) => r.url.pathname === '/a').map((r) => r.headers.authorization);
    expect(auths).toEqual(['Bearer t1', 'Bearer t1', 'Bearer t2']);
    await http.close();
  });

  it('gets a new token once after a 401, then fails with POLL_AUTH if that is rejected too', async () => {
    let rejectAll = false;
    const s = await tokenServer({ lifetime: 3600, reject: () => rejectAll });
    const http = clientCredentials(s);
    await http.send({ url: '/a', endpoint: 'a' });
    rejectAll = true;
    const err = await rejection(http.send({ url: '/a', endpoint: 'a' }));
    expect(err.code).toBe('POLL_AUTH');
    expect(s.seen.filter((r) => r.url.pathname === '/oauth2/token')).toHaveLength(2);
    expect(http.stats.reauths).toBe(1);
    await http.close();
  });

  it('a token that expired server-side is replaced after the 401 and the request succeeds', async () => {
    let expireFirst = true;
    const s = await tokenServer({
      lifetime: 3600,
      reject: () => (expireFirst ? ((expireFirst = false), true) : false),
    });
    const http = clientCredentials(s);
    const res = await http.send({ url: '/a', endpoint: 'a' });
    expect(JSON.parse(res.text)).toEqual({ ok: 't2' });
    await http.close();
  });

  it('surfaces {error, error_description} of a failed token request', async () => {
    const s = await tokenServer({ lifetime: 3600 });
    const http = clientCredentials(s, { secret: 'wrong-secret' });
    const err = await rejection(http.send({ url: '/a', endpoint: 'a' }));
    expect(err.code).toBe('POLL_AUTH');
    expect(err.message).toContain('invalid_client: Invalid client credentials');
    expect(err.message).not.toContain('wrong-secret');
    await http.close();
  });

  it('password grant sends username and password and refreshes with the refresh token', async () => {
    const s = await tokenServer({ lifetime: 60 });
    let now = 0;
    const http = new HttpClient({
      connection: conn({
        baseUrl: s.url,
        auth: {
          type: 'oauth2Password',
          tokenUrl: `${'/oauth2/token'}`,
          clientIdEnv: 'CI',
          clientSecretEnv: 'CS',
          usernameEnv: 'U',
          passwordEnv: 'P',
        },
      }),
      env: { CI: 'ci', CS: 'cs', U: 'user', P: 'pass' },
      now: () => now,
    });
    await http.send({ url: '/a', endpoint: 'a' });
    now += 59_000;
    await http.send({ url: '/a', endpoint: 'a' });
    const forms = s.seen
      .filter((r) => r.url.pathname === '/oauth2/token')
      .map((r) => Object.fromEntries(new URLSearchParams(r.body)));
    expect(forms[0]).toMatchObject({
      grant_type: 'password',
      username: 'user',
      password: 'pass',
      client_id: 'ci',
    });
    expect(forms[1]).toMatchObject({ grant_type: 'refresh_token', refresh_token: 'r1' });
    await http.close();
  });
});
