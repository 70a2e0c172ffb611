import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClient } from '../../../../producers/http/client.js';
import { checkContentType, parseBody, parseXmlSafe } from '../../../../producers/http/body.js';
import { conn, noSleep, rejection, serve, type TestServer } from '../server.js';

const CTX = { connection: 'c', endpoint: 'e', url: 'http://x/e' };
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

describe('XML safety', () => {
  it('refuses DOCTYPE and ENTITY declarations before parsing', () => {
    const xxe =
      '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<r><a>&xxe;</a></r>';
    expect(code(() => parseXmlSafe(xxe, CTX))).toBe('POLL_XML_UNSAFE');
    expect(code(() => parseXmlSafe('<r><!ENTITY x "y"></r>', CTX))).toBe('POLL_XML_UNSAFE');
    expect(code(() => parseXmlSafe('<r>< ! doctype x></r>'.replace('< ! ', '<!'), CTX))).toBe(
      'POLL_XML_UNSAFE',
    );
  });
  it('parses to objects of strings, attributes prefixed with @_', () => {
    expect(
      parseXmlSafe(
        '<?xml version="1.0"?><Meters><Meter id="7"><Unit>kWh</Unit><Value>001.50</Value></Meter></Meters>',
        CTX,
      ),
    ).toEqual({
      Meters: { Meter: { '@_id': '7', Unit: 'kWh', Value: '001.50' } },
    });
  });
});

describe('content types', () => {
  it('HTML (even labelled JSON) and wrong types are POLL_RESPONSE_CONTENT_TYPE', () => {
    expect(code(() => checkContentType('json', 'text/html; charset=utf-8', '<html></html>', CTX))).toBe(
      'POLL_RESPONSE_CONTENT_TYPE',
    );
    expect(code(() => checkContentType('json', 'application/json', '<!DOCTYPE html><html>', CTX))).toBe(
      'POLL_RESPONSE_CONTENT_TYPE',
    );
    expect(code(() => checkContentType('json', 'text/csv', 'a,b', CTX))).toBe('POLL_RESPONSE_CONTENT_TYPE');
    expect(code(() => checkContentType('xml', 'application/json', '{}', CTX))).toBe(
      'POLL_RESPONSE_CONTENT_TYPE',
    );
    expect(code(() => checkContentType('json', 'application/problem+json', '{}', CTX))).toBeUndefined();
    expect(code(() => checkContentType('csv', 'text/csv; charset=utf-8', 'a', CTX))).toBeUndefined();
  });
  it('malformed bodies are POLL_RESPONSE_MALFORMED naming connection and endpoint', () => {
    let msg = '';
    try {
      parseBody('json', 'application/json', '{"a":', { ...CTX, page: '4' });
    } catch (e) {
      msg = (e as Error).message;
      expect((e as { code: string }).code).toBe('POLL_RESPONSE_MALFORMED');
    }
    expect(msg).toContain('connection c, endpoint e, page 4');
    expect(code(() => parseBody('csv', 'text/csv', 'a,b\n"x', CTX))).toBe('POLL_RESPONSE_MALFORMED');
  });
});

describe('response size limit', () => {
  let servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  it('refuses a declared Content-Length over the limit', async () => {
    const s = await serve((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(5 * 1024 * 1024) });
      res.end('{}');
    });
    servers.push(s);
    const http = new HttpClient({ connection: conn({ baseUrl: s.url }), sleep: noSleep });
    const err = await rejection(http.send({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_RESPONSE_TOO_LARGE');
    await http.close();
  });

  it('enforces the limit while streaming a chunked body without Content-Length', async () => {
    let written = 0;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (written < 64 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('close', () => undefined);
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const http = new HttpClient({ connection: conn({ baseUrl: url }), sleep: noSleep });
    const err = await rejection(http.send({ url: '/x', endpoint: 'x' }));
    expect(err.code).toBe('POLL_RESPONSE_TOO_LARGE');
    expect(err.retriable).toBe(false);
    // The server stopped well before its 64 MiB: the body was not read to the end.
    expect(written).toBeLessThan(32 * 1024 * 1024);
    await http.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
});
