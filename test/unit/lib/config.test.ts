import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config.js';
import { MeterflowError } from '../../../lib/errors.js';

const base = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081',
  CLICKHOUSE_URL: 'http://127.0.0.1:8123',
};

describe('loadConfig', () => {
  it('takes endpoints from the environment before anything else', () => {
    const c = loadConfig({ ...base, KAFKA_BROKERS: 'a:1, b:2', MF_TOPIC_PREFIX: 'x.' });
    expect(c.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(c.kafka.topicPrefix).toBe('x.');
    expect(c.registry.url).toBe('http://127.0.0.1:8081');
    expect(c.clickhouse.database).toBe('meterflow');
  });

  it('names the setting and the variable when a value is wrong', () => {
    const err = (() => {
      try {
        loadConfig({ ...base, KAFKA_BROKERS: 'no-port', CLICKHOUSE_URL: 'not a url' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MeterflowError);
    expect((err as MeterflowError).code).toBe('CFG_INVALID');
    expect((err as Error).message).toContain('KAFKA_BROKERS');
    expect((err as Error).message).toContain('CLICKHOUSE_URL');
  });

  it('never echoes a secret in its error', () => {
    const secret = 'Kf9-sasl-S3cr3t-v4lue';
    const err = (() => {
      try {
        loadConfig({
          ...base,
          // The secret sits in the very settings that are wrong.
          KAFKA_SASL_MECHANISM: 'plain-ish',
          KAFKA_SASL_USERNAME: 'u',
          KAFKA_SASL_PASSWORD: secret,
          CLICKHOUSE_PASSWORD: secret,
          SCHEMA_REGISTRY_PASSWORD: secret,
          CLICKHOUSE_DATABASE: `db-${secret}`,
          LOG_LEVEL: 'loud',
        });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MeterflowError);
    const e = err as MeterflowError;
    expect(e.message).toContain('LOG_LEVEL');
    expect(e.message).toContain('kafka.sasl.mechanism');
    expect(e.message).toContain('CLICKHOUSE_DATABASE');
    expect(JSON.stringify({ m: e.message, j: e.toJSON() })).not.toContain(secret);
  });

  it('refuses a registry or ClickHouse URL with user:password@, naming the variables to use instead', () => {
    const err = (() => {
      try {
        loadConfig({
          ...base,
          SCHEMA_REGISTRY_URL: 'http://reg:Reg-S3cr3t@127.0.0.1:8081',
          CLICKHOUSE_URL: 'http://default:Ch-S3cr3t@127.0.0.1:8123',
        });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: 'CFG_INVALID' });
    const e = err as MeterflowError;
    expect(e.message).toContain('SCHEMA_REGISTRY_URL');
    expect(e.message).toContain('SCHEMA_REGISTRY_USERNAME');
    expect(e.message).toContain('SCHEMA_REGISTRY_PASSWORD');
    expect(e.message).toContain('CLICKHOUSE_URL');
    expect(e.message).toContain('CLICKHOUSE_PASSWORD');
    const shown = JSON.stringify({ m: e.message, j: e.toJSON() });
    expect(shown).not.toContain('S3cr3t');
  });

  describe('a configuration file that does not parse', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'mf-config-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const cases = [
      ['YAML', 'config.yaml', 'logLevel: info\nclickhouse:\n  password: S3cr3t: Passw0rd\n', 3],
      ['JSON', 'config.json', '{\n  "logLevel": "info",\n  "clickhouse": {"password": S3cr3tPass"}\n}\n', 3],
    ] as const;
    it.each(cases)('%s: names the file, line, column and kind, never the text', (_kind, name, text, line) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      const err = (() => {
        try {
          loadConfig({ ...base, MF_CONFIG_FILE: path });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toMatchObject({ code: 'CFG_FILE_UNREADABLE', context: { path, line } });
      const e = err as MeterflowError;
      expect(e.message).toContain(path);
      expect(e.message).toMatch(new RegExp(`line ${line}, column \\d+`));
      expect(e.message).toMatch(/syntax error/);
      const shown = JSON.stringify({ m: e.message, j: e.toJSON() });
      expect(shown).not.toContain('S3cr3t');
      expect(shown).not.toContain('password');
    });
  });
});
