/**
 * An authenticated schema registry: a loopback proxy that requires HTTP Basic auth in front of the
 * real local registry. Schema lookups and registrations must carry the configured credentials; a
 * refusal or a rate limit from the registry is a retriable error, never a decode failure.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeterflowError } from '../../lib/errors.js';
import { AvroRegistry, isRegistryUnavailable, isUndecodable } from '../../lib/registry.js';
import { decodeEnvelope, decodeValue } from '../../processors/runtime/envelope.js';
import type { InMessage } from '../../processors/runtime/stage.js';
import type { RawEnvelope } from '../../schemas/records.js';
import { TOPICS } from '../../schemas/topics.js';
import { createTestContext, type TestContext } from '../support/context.js';

const USER = 'mf-reader';
const PASSWORD = 'Reg1stry-Pa55-xK9q';
const EXPECTED = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

/** What the proxy answers: forward when authenticated, or a fixed status for every request. */
let mode: 'auth' | 429 | 503 | 403 = 'auth';
const seen: { path: string; authorized: boolean }[] = [];

let ctx: TestContext;
let server: Server;
let proxyUrl: string;

async function forward(req: IncomingMessage, res: ServerResponse, upstream: URL): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers: Record<string, string> = {};
  for (const h of ['content-type', 'accept']) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const answer = await fetch(new URL(req.url ?? '/', upstream.origin), {
    method: req.method ?? 'GET',
    headers,
    body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
  });
  res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
  res.end(Buffer.from(await answer.arrayBuffer()));
}

function message(value: Buffer): InMessage {
  return { topic: 't', partition: 0, offset: '0', key: 'c/x', value, headers: {}, timestamp: '0' };
}

const envelope: RawEnvelope = {
  connection_id: 'acme',
  connection_version: 3,
  provider: 'generic',
  entity_kind: 'meter',
  format: 'generic.meter',
  external_id: 'm-1',
  sync_run_id: 'run-1',
  request_url: 'http://127.0.0.1/meters',
  request_page: '0',
  received_at: 1_722_000_000_000,
  content_type: 'application/json',
  payload: '{"id":"m-1"}',
  meta: {},
};

beforeAll(async () => {
  ctx = createTestContext();
  const upstream = new URL(ctx.config.registry.url);
  server = createServer((req, res) => {
    const authorized = req.headers.authorization === EXPECTED;
    seen.push({ path: req.url ?? '', authorized });
    if (mode !== 'auth') {
      res.writeHead(mode, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error_code: mode, message: 'not now' }));
      return;
    }
    if (!authorized) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="registry"',
      });
      res.end(JSON.stringify({ error_code: 401, message: 'Unauthorized' }));
      return;
    }
    forward(req, res, upstream).catch(() => {
      res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  proxyUrl = `http://127.0.0.1:${port}${upstream.pathname}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await ctx.cleanup();
});

describe('a schema registry that requires Basic auth', () => {
  const subject = (): string => `${ctx.config.kafka.topicPrefix}raw-auth-value`;

  it('registers and resolves an uncached schema id with the configured credentials', async () => {
    mode = 'auth';
    const writer = new AvroRegistry(proxyUrl, { username: USER, password: PASSWORD });
    const serde = await writer.register<RawEnvelope>(subject(), TOPICS.rawEntities.schema);
    const framed = serde.encode(envelope);

    // A second client has nothing cached: it must look the writer schema up by id.
    seen.length = 0;
    const reader = new AvroRegistry(proxyUrl, { username: USER, password: PASSWORD });
    expect(await reader.decode<RawEnvelope>(framed)).toEqual(envelope);
    const lookups = seen.filter((s) => s.path.includes(`/schemas/ids/${serde.schemaId}`));
    expect(lookups.length).toBeGreaterThan(0);
    expect(lookups.every((s) => s.authorized)).toBe(true);
    const decoded = await decodeEnvelope(
      new AvroRegistry(proxyUrl, { username: USER, password: PASSWORD }),
      message(framed),
    );
    expect(decoded).toEqual({ ok: true, envelope });
  });

  it('without credentials a lookup is a retriable REG_AUTH, never a decode failure', async () => {
    mode = 'auth';
    const writer = new AvroRegistry(proxyUrl, { username: USER, password: PASSWORD });
    const serde = await writer.register<RawEnvelope>(subject(), TOPICS.rawEntities.schema);
    const framed = serde.encode(envelope);

    const anonymous = new AvroRegistry(proxyUrl);
    const err = await anonymous.decode(framed).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeterflowError);
    expect(err).toMatchObject({ code: 'REG_AUTH', retriable: true });
    expect(isRegistryUnavailable(err)).toBe(true);
    expect(isUndecodable(err)).toBe(false);
    // The stages retry it instead of quarantining the message.
    await expect(decodeEnvelope(anonymous, message(framed))).rejects.toMatchObject({ code: 'REG_AUTH' });
    await expect(decodeValue(anonymous, message(framed))).rejects.toMatchObject({ retriable: true });

    // A wrong password is the same, and the password is never printed.
    const wrong = new AvroRegistry(proxyUrl, { username: USER, password: `${PASSWORD}-old` });
    const err2 = await wrong.decode(framed).catch((e: unknown) => e);
    expect(err2).toMatchObject({ code: 'REG_AUTH', retriable: true });
    expect(
      JSON.stringify({ m: (err2 as Error).message, j: (err2 as MeterflowError).toJSON() }),
    ).not.toContain(PASSWORD);
  });

  it('a registration without credentials is a retriable REG_AUTH, not an incompatibility', async () => {
    mode = 'auth';
    const anonymous = new AvroRegistry(proxyUrl);
    const err = await anonymous
      .register(`${ctx.config.kafka.topicPrefix}anon-value`, { type: 'record', name: 'A', fields: [] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REG_AUTH', retriable: true });
  });

  it('429, 403 and 503 from the registry are retriable and never quarantined', async () => {
    mode = 'auth';
    const writer = new AvroRegistry(proxyUrl, { username: USER, password: PASSWORD });
    const serde = await writer.register<RawEnvelope>(subject(), TOPICS.rawEntities.schema);
    const framed = serde.encode(envelope);
    try {
      for (const status of [429, 403, 503] as const) {
        mode = status;
        const reader = new AvroRegistry(proxyUrl, { username: USER, password: PASSWORD });
        const err = await reader.decode(framed).catch((e: unknown) => e);
        expect(err, String(status)).toMatchObject({ retriable: true });
        expect(isRegistryUnavailable(err), String(status)).toBe(true);
        expect((err as MeterflowError).code, String(status)).not.toBe('REG_DECODE');
        await expect(decodeValue(reader, message(framed))).rejects.toMatchObject({ retriable: true });
      }
    } finally {
      mode = 'auth';
    }
  });

  it('a schema id the registry does not know is REG_DECODE, quarantined as NORM_DECODE_FAILED', async () => {
    mode = 'auth';
    const reader = new AvroRegistry(proxyUrl, { username: USER, password: PASSWORD });
    const unknown = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 2, 0x61]);
    const err = await reader.decode(unknown).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REG_DECODE', retriable: false });
    expect(isUndecodable(err)).toBe(true);
    const decoded = await decodeValue(reader, message(unknown));
    expect(decoded).toMatchObject({ ok: false, rejection: { code: 'NORM_DECODE_FAILED' } });
  });
});
