import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../lib/config.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { startGenericJsonSimulator, type GenericJsonSimulator } from '../../../simulators/generic-json.js';
import {
  startGenericXmlCsvSimulator,
  type GenericFaults,
  type GenericXmlCsvSimulator,
} from '../../../simulators/generic-xml-csv.js';
import { runSync } from '../../../producers/sync/engine.js';
import type { ConnectionConfig, ConnectionInput } from '../../../schemas/connection.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import { connection, readEnvelopes, syncDeps, type Read } from './helpers.js';
import type { SyncDeps } from '../../../producers/sync/engine.js';

const TO_ISO = '2024-02-20T00:00:00Z';

async function example(file: string, patch: (c: Record<string, unknown>) => void): Promise<ConnectionConfig> {
  const raw = parseYaml(await readFile(join(REPO_ROOT, 'connections/examples', file), 'utf8')) as Record<
    string,
    unknown
  >;
  raw.http = {
    timeoutMs: 10_000,
    maxResponseBytes: 4 * 1024 * 1024,
    maxRetries: 6,
    backoffBaseMs: 5,
    backoffMaxMs: 50,
  };
  patch(raw);
  return connection(raw as ConnectionInput);
}

const byConn = (envs: Read<RawEnvelope>[], id: string): Read<RawEnvelope>[] =>
  envs.filter((e) => e.value.connection_id === id);
const ids = (envs: Read<RawEnvelope>[], format: string): Set<string> =>
  new Set(envs.filter((e) => e.value.format === format).map((e) => e.value.external_id));

describe('generic connector, provider A (JSON, offset pages, API key in the query, readings)', () => {
  let ctx: TestContext;
  let sims: GenericJsonSimulator[] = [];
  beforeAll(async () => {
    ctx = createTestContext({ partitions: 2 });
    await ctx.createTopics();
  });
  afterEach(async () => {
    await Promise.all(sims.map((s) => s.close()));
    sims = [];
  });
  afterAll(async () => ctx?.cleanup());

  const run = async (id: string, faults: GenericFaults = {}) => {
    const sim = await startGenericJsonSimulator({ sites: 4, days: 60, faults });
    sims.push(sim);
    const conn = await example('generic-json-readings.yaml', (c) => {
      c.id = id;
      c.baseUrls = { production: sim.url };
      // Small pages so that paging and its faults are exercised.
      const g = c.generic as {
        assets: { pagination: { limit: number } };
        meters: { pagination: { limit: number } };
      };
      g.assets.pagination.limit = 2;
      g.meters.pagination.limit = 3;
    });
    const result = await runSync(conn, syncDeps(ctx, { ACME_API_KEY: sim.apiKey }), {
      mode: 'incremental',
      to: TO_ISO,
    });
    return { sim, result };
  };

  function expectComplete(
    sim: GenericJsonSimulator,
    id: string,
    entities: Read<RawEnvelope>[],
    usage: Read<RawEnvelope>[],
  ): void {
    const t = sim.truth();
    expect(ids(byConn(entities, id), 'generic.asset')).toEqual(new Set(t.sites.map((s) => s.site_id)));
    expect(ids(byConn(entities, id), 'generic.meter')).toEqual(new Set(t.meters.map((m) => m.meter_id)));
    const got = new Map<string, Set<string>>();
    for (const u of byConn(usage, id)) {
      const items = JSON.parse(u.value.payload) as { meter_id: string; read_at: string; value: number }[];
      expect(Array.isArray(items)).toBe(true);
      const set = got.get(u.value.external_id) ?? new Set<string>();
      for (const it of items) {
        expect(it.meter_id).toBe(u.value.external_id);
        set.add(`${it.read_at}|${it.value}`);
      }
      got.set(u.value.external_id, set);
    }
    for (const m of t.meters) {
      const want = new Set(
        t.readings(m.meter_id, '2024-01-01', '2024-02-19').map((r) => `${r.read_at}|${r.value}`),
      );
      expect(got.get(m.meter_id) ?? new Set()).toEqual(want);
    }
  }

  it('the example connection file reads every site, meter and reading; the key never reaches a topic', async () => {
    const { sim, result } = await run('gen-a');
    expect(result.error_messages).toEqual([]);
    expect(result.status).toBe('succeeded');
    const entities = await readEnvelopes(ctx, 'rawEntities');
    const usage = await readEnvelopes(ctx, 'rawUsage');
    expectComplete(sim, 'gen-a', entities, usage);
    const u = byConn(usage, 'gen-a')[0]!.value;
    expect(u.request_url).toMatch(/from=2024-01-01&to=2024-01-31/);
    expect(u.content_type).toContain('application/json');
    expect(JSON.stringify(byConn(entities, 'gen-a')) + JSON.stringify(byConn(usage, 'gen-a'))).not.toContain(
      sim.apiKey,
    );
  });

  it('complete under duplicates across pages, an insertion while paging, 429 storms, 5xx and slow answers', async () => {
    const { sim, result } = await run('gen-a-faults', {
      duplicateAcrossPages: true,
      shiftDuringPaging: { count: 1 },
      rateLimit: { count: 4, retryAfterSeconds: 1 },
      serverError: { count: 3, status: 502 },
      slow: { delayMs: 20, count: 10 },
    });
    expect(result.error_messages).toEqual([]);
    expect(result.snapshot_complete).toBe(true);
    expectComplete(
      sim,
      'gen-a-faults',
      await readEnvelopes(ctx, 'rawEntities'),
      await readEnvelopes(ctx, 'rawUsage'),
    );
  });

  it('an oversized body is refused while streaming (POLL_RESPONSE_TOO_LARGE) and the run is partial', async () => {
    const { result } = await run('gen-a-big', {
      oversized: { count: 1, bytes: 6 * 1024 * 1024, endpoints: ['readings'] },
    });
    expect(result.status).toBe('partial');
    expect(result.error_messages.join()).toContain('POLL_RESPONSE_TOO_LARGE');
  });
});

describe('generic connector, provider B (XML/CSV, cursor or Link pages, OAuth2 password or Basic, consumption)', () => {
  let ctx: TestContext;
  let sims: GenericXmlCsvSimulator[] = [];
  beforeAll(async () => {
    ctx = createTestContext({ partitions: 2 });
    await ctx.createTopics();
  });
  afterEach(async () => {
    await Promise.all(sims.map((s) => s.close()));
    sims = [];
  });
  afterAll(async () => ctx?.cleanup());

  type BOpts = NonNullable<Parameters<typeof startGenericXmlCsvSimulator>[0]>;
  const run = async (
    id: string,
    simOpts: BOpts,
    patch: (c: Record<string, unknown>) => void = () => undefined,
    extra: (sim: GenericXmlCsvSimulator) => Partial<SyncDeps> = () => ({}),
  ) => {
    const sim = await startGenericXmlCsvSimulator({ buildings: 6, days: 60, ...simOpts });
    sims.push(sim);
    const conn = await example('generic-xml-consumption.yaml', (c) => {
      c.id = id;
      c.baseUrls = { production: sim.url };
      const g = c.generic as Record<string, { query: Record<string, string> }>;
      g.assets!.query.page_size = '2';
      g.meters!.query.page_size = '3';
      g.usage!.query.page_size = '20';
      patch(c);
    });
    const creds = sim.credentials;
    const env = {
      NORDIC_CLIENT_ID: creds.clientId,
      NORDIC_CLIENT_SECRET: creds.clientSecret,
      NORDIC_USERNAME: creds.username,
      NORDIC_PASSWORD: creds.password,
    };
    const result = await runSync(conn, syncDeps(ctx, env, extra(sim)), { mode: 'incremental', to: TO_ISO });
    return { sim, result };
  };

  function expectComplete(
    sim: GenericXmlCsvSimulator,
    id: string,
    entities: Read<RawEnvelope>[],
    usage: Read<RawEnvelope>[],
    col: { meter: string; start: string; value: string },
  ): void {
    const t = sim.truth();
    expect(ids(byConn(entities, id), 'generic.asset')).toEqual(new Set(t.buildings.map((b) => b.id)));
    expect(ids(byConn(entities, id), 'generic.meter')).toEqual(new Set(t.meters.map((m) => m.id)));
    const got = new Map<string, Set<string>>();
    for (const u of byConn(usage, id)) {
      const items = JSON.parse(u.value.payload) as Record<string, string>[];
      const set = got.get(u.value.external_id) ?? new Set<string>();
      for (const it of items) {
        expect(typeof it[col.value]).toBe('string');
        set.add(`${it[col.start]}|${Number(it[col.value])}`);
      }
      got.set(u.value.external_id, set);
    }
    for (const m of t.meters) {
      const want = new Set(
        t
          .consumption(m.id, 'daily', '2024-01-01', '2024-02-20')
          .map((r) => `${r.period_start}|${r.consumption}`),
      );
      expect(got.get(m.id) ?? new Set()).toEqual(want);
    }
  }

  it('XML with cursor pages and OAuth2 password grant (token expiry mid-run): everything arrives as JSON objects of strings', async () => {
    let expired = 0;
    const { sim, result } = await run(
      'gen-b-xml',
      {
        format: 'xml',
        pagination: 'cursor',
        auth: 'oauth2-password',
        tokenLifetimeSeconds: 900,
        faults: { duplicateAcrossPages: true, serverError: { count: 2 } },
      },
      undefined,
      (s) => ({
        onEvent: (e) => {
          if (e.name === 'sync.chunk.committed' && expired++ === 2) s.expireTokens();
        },
      }),
    );
    expect(result.error_messages).toEqual([]);
    expect(sim.stats().byStatus['401']).toBeGreaterThanOrEqual(1);
    const entities = await readEnvelopes(ctx, 'rawEntities');
    const usage = await readEnvelopes(ctx, 'rawUsage');
    expectComplete(sim, 'gen-b-xml', entities, usage, {
      meter: 'MeterId',
      start: 'PeriodStart',
      value: 'Consumption',
    });
    const meter = byConn(entities, 'gen-b-xml').find((e) => e.value.format === 'generic.meter')!.value;
    expect(meter.content_type).toContain('application/xml');
    expect(
      Object.values(JSON.parse(meter.payload) as Record<string, unknown>).every((v) => typeof v === 'string'),
    ).toBe(true);
  });

  it('CSV with the cursor in a response header and Basic auth', async () => {
    const { sim, result } = await run(
      'gen-b-csv',
      { format: 'csv', pagination: 'cursor', auth: 'basic' },
      (c) => {
        c.auth = { type: 'basic', usernameEnv: 'NORDIC_USERNAME', passwordEnv: 'NORDIC_PASSWORD' };
        const g = c.generic as Record<string, Record<string, unknown>>;
        g.format = 'csv' as never;
        const cursor = { type: 'cursor', cursorParam: 'page_token', nextHeader: 'X-Next-Page-Token' };
        g.assets = {
          ...g.assets,
          itemsPath: '',
          pagination: cursor,
          fields: { externalId: 'id', name: 'name', address: 'street', metadata: {} },
        };
        g.meters = {
          ...g.meters,
          itemsPath: '',
          pagination: cursor,
          fields: {
            externalId: 'id',
            assetId: 'building_id',
            type: 'medium',
            unit: 'unit',
            timeZone: 'time_zone',
            metadata: {},
          },
        };
        g.usage = {
          ...g.usage,
          itemsPath: '',
          pagination: cursor,
          fields: {
            meterId: 'meter_id',
            start: 'period_start',
            end: 'period_end',
            value: 'consumption',
            unit: 'unit',
            metadata: undefined,
          },
        };
        delete (g.usage.fields as Record<string, unknown>).metadata;
      },
    );
    expect(result.error_messages).toEqual([]);
    expectComplete(
      sim,
      'gen-b-csv',
      await readEnvelopes(ctx, 'rawEntities'),
      await readEnvelopes(ctx, 'rawUsage'),
      { meter: 'meter_id', start: 'period_start', value: 'consumption' },
    );
  });

  it('Link-header pages; a next link on a foreign origin is refused (POLL_FOREIGN_ORIGIN) and the snapshot stays partial', async () => {
    const ok = await run(
      'gen-b-link',
      { format: 'xml', pagination: 'link', auth: 'oauth2-password' },
      (c) => {
        const g = c.generic as Record<string, { pagination: unknown }>;
        for (const k of ['assets', 'meters', 'usage']) g[k]!.pagination = { type: 'link' };
      },
    );
    expect(ok.result.error_messages).toEqual([]);
    expectComplete(
      ok.sim,
      'gen-b-link',
      await readEnvelopes(ctx, 'rawEntities'),
      await readEnvelopes(ctx, 'rawUsage'),
      { meter: 'MeterId', start: 'PeriodStart', value: 'Consumption' },
    );

    const bad = await run(
      'gen-b-foreign',
      {
        format: 'xml',
        pagination: 'link',
        auth: 'oauth2-password',
        faults: { foreignNextLink: { count: 1, endpoints: ['buildings'] } },
      },
      (c) => {
        const g = c.generic as Record<string, { pagination: unknown }>;
        for (const k of ['assets', 'meters', 'usage']) g[k]!.pagination = { type: 'link' };
      },
    );
    expect(bad.result.snapshot_complete).toBe(false);
    expect(bad.result.error_messages.join()).toContain('POLL_FOREIGN_ORIGIN');
  });

  it('an XML body with a DOCTYPE/ENTITY is refused before parsing (POLL_XML_UNSAFE); a repeated cursor stops (POLL_PAGINATION_LOOP)', async () => {
    const x = await run('gen-b-xxe', {
      format: 'xml',
      pagination: 'cursor',
      auth: 'oauth2-password',
      faults: { xmlDoctype: { count: 1, endpoints: ['meters'] } },
    });
    expect(x.result.error_messages.join()).toContain('POLL_XML_UNSAFE');
    expect(x.result.snapshot_complete).toBe(false);
    const entities = byConn(await readEnvelopes(ctx, 'rawEntities'), 'gen-b-xxe');
    expect(JSON.stringify(entities)).not.toContain('root:');
    const loop = await run('gen-b-loop', {
      format: 'xml',
      pagination: 'cursor',
      auth: 'oauth2-password',
      faults: { repeatedCursor: { endpoints: ['buildings'] } },
    });
    expect(loop.result.error_messages.join()).toContain('POLL_PAGINATION_LOOP');
    expect(loop.result.snapshot_complete).toBe(false);
  });
});
