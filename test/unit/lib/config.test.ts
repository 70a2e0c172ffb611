import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, loadConfig, parseEnvFile } from '../../../lib/config.js';
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

  it('every variable fills its setting; SASL credentials count only with a mechanism', () => {
    const c = loadConfig({
      ...base,
      KAFKA_CLIENT_ID: 'cid',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'su',
      KAFKA_SASL_PASSWORD: 'sp',
      MF_TOPIC_PREFIX: 'p.',
      MF_TOPIC_PARTITIONS: '3',
      MF_TOPIC_REPLICATION: '2',
      SCHEMA_REGISTRY_USERNAME: 'ru',
      SCHEMA_REGISTRY_PASSWORD: 'rp',
      CLICKHOUSE_USER: 'cu',
      CLICKHOUSE_PASSWORD: 'cp',
      CLICKHOUSE_DATABASE: 'db',
      MF_CONNECTIONS_DIR: 'conns',
      LOG_LEVEL: 'warn',
      MF_METRICS_PORT: '0',
      MF_METRICS_HOST: '0.0.0.0',
      MF_MAX_TRANSACTION_BYTES: '1024',
    });
    expect(c).toEqual({
      kafka: {
        brokers: ['127.0.0.1:9092'],
        clientId: 'cid',
        ssl: true,
        sasl: { mechanism: 'plain', username: 'su', password: 'sp' },
        topicPrefix: 'p.',
        partitions: 3,
        replicationFactor: 2,
      },
      registry: { url: 'http://127.0.0.1:8081', username: 'ru', password: 'rp' },
      clickhouse: { url: 'http://127.0.0.1:8123', username: 'cu', password: 'cp', database: 'db' },
      connectionsDir: 'conns',
      logLevel: 'warn',
      metricsPort: 0,
      metricsHost: '0.0.0.0',
      processors: { maxTransactionBytes: 1024 },
    });
    expect(loadConfig({ ...base, KAFKA_SASL_USERNAME: 'su' }).kafka.sasl).toBeUndefined();
  });

  it('names the variable of every wrong setting, not only the endpoints', () => {
    const err = (() => {
      try {
        loadConfig({ ...base, KAFKA_SSL: 'maybe', MF_TOPIC_REPLICATION: '0', MF_METRICS_PORT: 'x' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: 'CFG_INVALID' });
    const m = (err as Error).message;
    expect(m).toContain('kafka.ssl (KAFKA_SSL)');
    expect(m).toContain('kafka.replicationFactor (MF_TOPIC_REPLICATION)');
    expect(m).toContain('metricsPort (MF_METRICS_PORT)');
  });

  it('the schema describes each setting by its variable', () => {
    const kafka = configSchema.shape.kafka.shape;
    expect(kafka.brokers.description).toBe('KAFKA_BROKERS: comma-separated host:port list');
    expect(kafka.sasl.description).toBe('KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD');
    expect(configSchema.shape.registry.shape.url.description).toBe('SCHEMA_REGISTRY_URL: Confluent API');
    expect(configSchema.shape.logLevel.description).toBe('LOG_LEVEL');
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

describe('parseEnvFile', () => {
  it('reads KEY=VALUE, export, quotes and comments, and skips anything else', () => {
    const text =
      '# endpoints\nKAFKA_BROKERS=127.0.0.1:19092\r\nexport A="x y"\nB=\'q\'\n  \nnot a line\nC=a=b\n';
    expect(parseEnvFile(text)).toEqual({ KAFKA_BROKERS: '127.0.0.1:19092', A: 'x y', B: 'q', C: 'a=b' });
  });
});
