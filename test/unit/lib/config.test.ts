import { describe, expect, it } from 'vitest';
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
    try {
      loadConfig({
        ...base,
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD: '',
        LOG_LEVEL: 'loud',
      });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toContain('LOG_LEVEL');
      expect((e as Error).message).toContain('kafka.sasl.password');
    }
  });
});
