/**
 * Publishing a connection as a version (producers/sync/publish.ts, schemas/connection-version.ts):
 * versions count up per change of content and never for an unchanged file, the content is
 * canonical and reads back as the same connection, and nothing that reads like a secret value is
 * ever published or printed.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../../lib/config.js';
import { MeterflowError } from '../../../../lib/errors.js';
import { loadConnections, parseConnection } from '../../../../producers/sync/connections.js';
import { planPublish, refuseSecrets, type ConnectionVersions } from '../../../../producers/sync/publish.js';
import type { ConnectionConfig } from '../../../../schemas/connection.js';
import {
  canonicalJson,
  connectionContent,
  readConnectionVersion,
} from '../../../../schemas/connection-version.js';
import type { ConnectionVersion } from '../../../../schemas/records.js';

const T = Date.UTC(2026, 0, 5, 9);

function generic(over: Record<string, unknown> = {}): ConnectionConfig {
  return parseConnection(
    {
      id: 'acme',
      provider: 'generic',
      baseUrls: { production: 'https://api.acme.example' },
      auth: { type: 'apiKey', in: 'query', name: 'api_key', keys: [{ valueEnv: 'ACME_API_KEY' }] },
      meterTypes: { electricity: { type: 'Energy', subtype: 'Off-site Electricity' } },
      generic: {
        format: 'json',
        meters: {
          path: '/meters',
          fields: { externalId: 'id', assetId: 'site', type: 'kind', unit: 'unit' },
        },
        usage: {
          path: '/meters/{meterId}/usage',
          kind: 'consumption',
          fields: { start: 'from', end: 'to', value: 'value' },
        },
      },
      ...over,
    },
    'acme.yaml',
  );
}

const empty = (): ConnectionVersions => ({ latest: new Map(), highest: new Map() });

function withLatest(v: ConnectionVersion, highest = v.version): ConnectionVersions {
  return { latest: new Map([[v.connection_id, v]]), highest: new Map([[v.connection_id, highest]]) };
}

function thrown(f: () => unknown): MeterflowError {
  try {
    f();
  } catch (e) {
    if (e instanceof MeterflowError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('connection versions', () => {
  it('a new connection is version 1; the same content again publishes nothing; a change is the next version', () => {
    const meta = { source: 'connections/acme.yaml', host: 'host-a', now: T };
    const first = planPublish(empty(), generic(), meta);
    expect(first).toMatchObject({ connectionId: 'acme', version: 1, changed: true });
    expect(first.record).toMatchObject({
      connection_id: 'acme',
      version: 1,
      provider: 'generic',
      published_at: T,
      source: 'connections/acme.yaml',
      host: 'host-a',
    });
    expect(first.record.content_sha256).toMatch(/^[0-9a-f]{64}$/);

    const again = planPublish(withLatest(first.record), generic(), { ...meta, now: T + 1 });
    expect(again).toMatchObject({ version: 1, changed: false });
    expect(again.record).toBe(first.record);

    const fixed = generic({
      meterTypes: {
        electricity: { type: 'Energy', subtype: 'Off-site Electricity' },
        'ww-07': { type: 'Water', subtype: 'Grey' },
      },
    });
    const second = planPublish(withLatest(first.record), fixed, { ...meta, now: T + 2 });
    expect(second).toMatchObject({ version: 2, changed: true });
    expect(second.record.content).toContain('ww-07');
    expect(second.record.content_sha256).not.toBe(first.record.content_sha256);
  });

  it('a connection removed and added again does not reuse a version number the topic still shows', () => {
    const meta = { source: 's', host: 'h', now: T };
    const removed: ConnectionVersions = { latest: new Map(), highest: new Map([['acme', 7]]) };
    expect(planPublish(removed, generic(), meta).version).toBe(8);
  });

  it('the content is canonical: key order and defaults written out do not make a new version', () => {
    const a = generic();
    const b = generic({ environment: 'production', timeZone: undefined });
    expect(connectionContent(a)).toEqual(connectionContent(b));
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('every shipped example publishes, and its content reads back as the same connection', async () => {
    for (const c of await loadConnections(join(REPO_ROOT, 'connections/examples'))) {
      const p = planPublish(empty(), c, { source: 'x', host: 'h', now: T });
      const back = readConnectionVersion(p.record);
      expect(back.ok, c.id).toBe(true);
      if (back.ok) expect(back.config).toEqual(c);
    }
  });

  it('a version whose content does not validate is a problem, never a connection', () => {
    const v = planPublish(empty(), generic(), { source: 's', host: 'h', now: T }).record;
    const unknownKey = { ...v, content: v.content.replace('{"auth"', '{"brandNewKey":1,"auth"') };
    const r = readConnectionVersion(unknownKey);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toContain('brandNewKey');
    expect(readConnectionVersion({ ...v, connection_id: 'other' })).toMatchObject({ ok: false });
    expect(readConnectionVersion({ ...v, content: '{' })).toMatchObject({ ok: false });
  });
});

describe('no secret is published', () => {
  const SECRETS = {
    stripe: 'sk_live_51Hx9aQ2eZvKYlo2C0ffee',
    random: '9f8e7d6c5b4a39281f0e',
    jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc',
  };

  it('a token in a query parameter, a random-looking literal under a credential name, a URL with user info', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [
        {
          generic: {
            ...generic().generic,
            meters: { ...generic().generic!.meters, query: { api_key: SECRETS.stripe } },
          },
        },
        'generic.meters.query.api_key',
        SECRETS.stripe,
      ],
      [
        {
          generic: {
            ...generic().generic,
            meters: { ...generic().generic!.meters, query: { token: SECRETS.random } },
          },
        },
        'generic.meters.query.token',
        SECRETS.random,
      ],
      [
        { options: {}, baseUrls: { production: `https://user:${SECRETS.random}@api.acme.example` } },
        'baseUrls.production',
        SECRETS.random,
      ],
    ];
    let published = 0;
    for (const [over, field, secret] of cases) {
      let c: ConnectionConfig;
      try {
        c = generic(over);
      } catch (e) {
        // The connection schema may refuse it at load already: then it never gets this far.
        expect(String(e)).not.toContain(secret);
        continue;
      }
      const err = thrown(() => refuseSecrets(c, 'connections/acme.yaml'));
      expect(err.code).toBe('CFG_INVALID');
      expect(err.message).toContain(field);
      expect(err.message).toContain('connections/acme.yaml');
      expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err.toJSON())).not.toContain(secret);
      expect(() => planPublish(empty(), c, { source: 's', host: 'h', now: T })).toThrow(MeterflowError);
      published++;
    }
    // The query parameters are free text to the connection schema: only the publish check stops them.
    expect(published).toBeGreaterThanOrEqual(2);
  });

  it('ordinary literals pass: paths, templates, short values, names of variables', () => {
    const c = generic({
      auth: { type: 'bearer', tokenEnv: 'ACME_API_TOKEN', format: 'Bearer {token}' },
      generic: {
        ...generic().generic,
        meters: { ...generic().generic!.meters, query: { limit: '50', token_type: 'bearer', key: '{key}' } },
      },
    });
    expect(() => refuseSecrets(c, 's')).not.toThrow();
  });
});
