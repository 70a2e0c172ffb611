/**
 * Test factories that own their cleanup: a configuration with a random topic prefix and
 * ClickHouse database, real clients, and a `cleanup()` that deletes what the test created.
 * Endpoints come from the environment that test/support/global-setup.ts prepared.
 */
import { randomBytes } from 'node:crypto';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { loadConfig, type Config } from '../../lib/config.js';
import { createKafka, ensureCatalogueTopics } from '../../lib/kafka.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { AvroRegistry } from '../../lib/registry.js';

export function uniqueName(prefix = 't'): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export interface TestContext {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
  log: Logger;
  /** ClickHouse client on the server (no database selected). */
  clickhouse(): ClickHouseClient;
  /** Creates every catalogue topic under this test's prefix. */
  createTopics(): Promise<void>;
  cleanup(): Promise<void>;
}

export function createTestContext(overrides: { partitions?: number } = {}): TestContext {
  const name = uniqueName();
  const base = loadConfig(process.env);
  const config: Config = {
    ...base,
    kafka: { ...base.kafka, topicPrefix: `${name}.`, partitions: overrides.partitions ?? 3 },
    clickhouse: { ...base.clickhouse, database: `mf_${name}` },
    logLevel: 'silent',
    metricsPort: 0,
  };
  const kafka = createKafka(config, `-${name}`);
  const registry = AvroRegistry.fromConfig(config);
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', name);
  const clients: ClickHouseClient[] = [];
  const newClient = (): ClickHouseClient =>
    createClient({
      url: config.clickhouse.url,
      username: config.clickhouse.username,
      password: config.clickhouse.password,
      // ClickHouse 18.16 answers no compressed HTTP request bodies reliably.
      compression: { request: false, response: false },
      // Tests provoke failures on purpose; the assertions speak for them.
      log: { level: ClickHouseLogLevel.OFF },
      // The suite shares two cores with Kafka and ClickHouse: a DDL may wait its turn.
      request_timeout: 120_000,
    });
  return {
    config,
    kafka,
    registry,
    log,
    clickhouse() {
      const c = newClient();
      clients.push(c);
      return c;
    },
    async createTopics() {
      const admin = kafka.admin();
      await admin.connect();
      try {
        await ensureCatalogueTopics(admin, config);
      } finally {
        await admin.disconnect();
      }
    },
    async cleanup() {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const mine = (await admin.listTopics()).filter((t) => t.startsWith(config.kafka.topicPrefix));
        if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
        const groups = (await admin.listGroups()).groups.filter((g) =>
          g.groupId.startsWith(config.kafka.topicPrefix),
        );
        if (groups.length > 0) await admin.deleteGroups(groups.map((g) => g.groupId)).catch(() => undefined);
      } finally {
        await admin.disconnect();
      }
      const ch = newClient();
      // A database left behind only costs disk; it must not fail a test that passed.
      await ch
        .command({ query: `DROP DATABASE IF EXISTS ${config.clickhouse.database}` })
        .catch(() => undefined);
      await ch.close();
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    },
  };
}
