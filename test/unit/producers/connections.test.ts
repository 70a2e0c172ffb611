import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConnections, parseConnection } from '../../../producers/sync/connections.js';
import { createConnector } from '../../../producers/connectors/index.js';
import { cronOf } from '../../../producers/sync/scheduler.js';
import { REPO_ROOT } from '../../../lib/config.js';
import { rejection } from './server.js';

let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});
async function dirWith(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'mf-conn-'));
  dirs.push(d);
  for (const [n, t] of Object.entries(files)) await writeFile(join(d, n), t);
  return d;
}

describe('connection files', () => {
  it('the shipped examples validate, build connectors and schedules', async () => {
    const cs = await loadConnections(join(REPO_ROOT, 'connections/examples'));
    expect(cs.map((c) => c.provider).sort()).toEqual(['arcadia', 'enerkey', 'generic', 'generic', 'generic']);
    for (const c of cs) {
      expect(() => createConnector(c)).not.toThrow();
      expect(cronOf(c)).toBeTruthy();
    }
  });

  it('the deploy examples (compose .example files, the k8s ConfigMap) load and build connectors', async () => {
    const compose = join(REPO_ROOT, 'deploy/compose/connections');
    const docs: [string, unknown][] = [];
    for (const n of (await readdir(compose)).filter((f) => f.endsWith('.example')))
      docs.push([n, parseYaml(await readFile(join(compose, n), 'utf8'))]);
    const map = parseYaml(
      await readFile(join(REPO_ROOT, 'deploy/k8s/configmap-connections.yaml'), 'utf8'),
    ) as {
      data: Record<string, string>;
    };
    for (const [n, text] of Object.entries(map.data)) docs.push([`configmap ${n}`, parseYaml(text)]);
    expect(docs.length).toBeGreaterThanOrEqual(2);
    for (const [n, raw] of docs) {
      const c = parseConnection(raw, n);
      expect(() => createConnector(c), n).not.toThrow();
    }
  });

  it('a bad file is CFG_INVALID naming the file and the field', async () => {
    const d = await dirWith({
      'ok.json': JSON.stringify({
        id: 'ok',
        provider: 'generic',
        baseUrls: { production: 'http://x' },
        auth: { type: 'none' },
      }),
      'bad.yaml':
        'id: bad\nprovider: arcadia\nbaseUrls: { production: http://x }\nauth: { type: basic, usernameEnv: lower_case, passwordEnv: P }\n',
    });
    const err = await rejection(loadConnections(d));
    expect(err.code).toBe('CFG_INVALID');
    expect(err.message).toContain('bad.yaml');
    expect(err.message).toContain('auth.usernameEnv');
  });

  it('a generic connection without a generic block is refused with the field name', async () => {
    const d = await dirWith({
      'g.json': JSON.stringify({
        id: 'g',
        provider: 'generic',
        baseUrls: { production: 'http://x' },
        auth: { type: 'none' },
      }),
    });
    const err = await rejection(loadConnections(d));
    expect(err.code).toBe('CFG_INVALID');
    expect(err.message).toMatch(/g\.json: generic/);
  });

  it('duplicate ids and unparseable files are refused', async () => {
    const one = JSON.stringify({
      id: 'same',
      provider: 'enerkey',
      baseUrls: { production: 'http://x' },
      auth: { type: 'none' },
    });
    const err = await rejection(loadConnections(await dirWith({ 'a.json': one, 'b.json': one })));
    expect(err.code).toBe('CFG_INVALID');
    expect(err.message).toContain('b.json');
    const err2 = await rejection(loadConnections(await dirWith({ 'x.yaml': 'id: [unclosed' })));
    expect(err2.code).toBe('CFG_FILE_UNREADABLE');
  });

  it('a file that does not parse is named with line, column and kind, never its text', async () => {
    const files = {
      'a.yaml': 'id: a\nprovider: generic\nauth:\n  password: S3cr3t: Passw0rd\n',
      'b.json': '{\n  "id": "b",\n  "auth": {"password": S3cr3tPass"}\n}\n',
    };
    for (const [name, text] of Object.entries(files)) {
      const d = await dirWith({ [name]: text });
      const err = await rejection(loadConnections(d));
      expect(err.code, name).toBe('CFG_FILE_UNREADABLE');
      expect(err.message, name).toContain(join(d, name));
      expect(err.message, name).toMatch(/syntax error .*at line \d+, column \d+/);
      expect(err.message, name).toContain(name.endsWith('.json') ? 'line 3' : 'line 4');
      const shown = JSON.stringify({ m: err.message, c: err.context });
      expect(shown, name).not.toContain('S3cr3t');
      expect(shown, name).not.toContain('password');
    }
  });

  /** The error of building an Arcadia connector with these options (none: undefined). */
  async function arcadiaOptionsError(
    options: Record<string, unknown>,
  ): Promise<{ code?: string; message?: string }> {
    const d = await dirWith({
      'a.json': JSON.stringify({
        id: 'a',
        provider: 'arcadia',
        baseUrls: { production: 'http://x' },
        auth: { type: 'none' },
        options,
      }),
    });
    try {
      // Options are checked when the file is loaded; the connector checks them again.
      const [c] = await loadConnections(d);
      createConnector(c!);
      return {};
    } catch (e) {
      return e as { code?: string; message?: string };
    }
  }

  it('invalid connector options are CFG_INVALID naming options.<field>', async () => {
    const err = await arcadiaOptionsError({ intervals: 'sometimes' });
    expect(err.code).toBe('CFG_INVALID');
    expect(err.message).toContain('options.intervals');
  });

  it('an Arcadia connection reads one interval endpoint, never both (they would count the same consumption twice)', async () => {
    const err = await arcadiaOptionsError({ intervals: 'both' });
    expect(err.code).toBe('CFG_INVALID');
    expect(err.message).toMatch(/options\.intervals.*not both/);
  });
});
