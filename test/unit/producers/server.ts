/** A tiny node:http server for unit tests: records requests, answers with a handler. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach } from 'vitest';
import type { AddressInfo } from 'node:net';
import {
  connectionSchema,
  type ConnectionConfig,
  type ConnectionInput,
} from '../../../schemas/connection.js';

export interface Seen {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface TestServer {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

export type Handler = (req: Seen, res: ServerResponse) => void | Promise<void>;

export async function serve(handler: Handler): Promise<TestServer> {
  const seen: Seen[] = [];
  let base = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? 'GET',
        url: new URL(req.url ?? '/', base),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      Promise.resolve(handler(s, res)).catch((e: unknown) => {
        res.writeHead(500);
        res.end(String(e));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function conn(input: Partial<ConnectionInput> & { baseUrl: string }): ConnectionConfig {
  const { baseUrl, ...rest } = input;
  return connectionSchema.parse({
    id: 'unit',
    provider: 'generic',
    baseUrls: { production: baseUrl },
    auth: { type: 'none' },
    generic: {
      meters: { path: '/m', fields: { externalId: 'id', assetId: 'a', unit: 'u' } },
      usage: { path: '/u/{meterId}', kind: 'consumption', fields: { start: 's', end: 'e', value: 'v' } },
    },
    http: {
      timeoutMs: 2_000,
      maxResponseBytes: 1024 * 1024,
      maxRetries: 3,
      backoffBaseMs: 1,
      backoffMaxMs: 5,
    },
    ...rest,
  });
}

export const noSleep = (): Promise<void> => Promise.resolve();

export async function rejection(
  p: Promise<unknown>,
): Promise<{ code: string; message: string; retriable: boolean; context: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string; retriable: boolean; context: Record<string, unknown> };
  }
  throw new Error('expected a rejection');
}

/** `serve` for one test file: every server started through it is closed after each test. */
export function serveEach(): (handler: Handler) => Promise<TestServer> {
  let servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });
  return async (handler) => {
    const s = await serve(handler);
    servers.push(s);
    return s;
  };
}
