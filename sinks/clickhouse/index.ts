/**
 * The ClickHouse sink: canonical topics into ClickHouse tables (DESIGN.md §6).
 *
 *   const sink = createClickHouseSink(config, { batchMaxRows: 100_000, batchMaxMs: 1_000 });
 *   await sink.start();   // migrates, then one consumer group per table family
 *   ...
 *   await sink.stop();    // flush, commit, disconnect (`meterflow run sinks` calls it on SIGTERM)
 *
 * Tuning options are validated by `sinkOptionsSchema` (./options.ts, defaults and units there);
 * `log`, `kafka` and `registry` may be passed in to share clients with other components.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { COMPRESSION, createKafka, ensureCatalogueTopics } from '../../lib/kafka.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { parseOrThrow } from '../../lib/parse-or-throw.js';
import { isRetriable, retry } from '../../lib/retry.js';
import { AvroRegistry, type Serde } from '../../lib/registry.js';
import type { QuarantineRecord } from '../../schemas/records.js';
import { topicName, type TopicId } from '../../schemas/topics.js';
import { createChClient, type ClickHouseClient } from './client.js';
import { FAMILY_BINDINGS } from './families.js';
import { jsonEachRowInsert, type InsertFn } from './insert.js';
import { FamilyLoader, type LoaderStats, type QuarantineWriter } from './loader.js';
import { migrate } from './migrate.js';
import { sinkOptionsSchema, type SinkOptions, type SinkOptionsInput } from './options.js';
import { quarantineMessage } from './quarantine.js';

export {
  sinkOptionsSchema,
  FAMILIES,
  type FamilyName,
  type SinkOptions,
  type SinkOptionsInput,
} from './options.js';
export { migrate, type MigrationResult } from './migrate.js';
export { MIGRATIONS } from './migrations/index.js';
export { createChClient, classifyChError } from './client.js';
export type { LoaderStats } from './loader.js';

export interface ClickHouseSinkDeps {
  log?: Logger;
  kafka?: Kafka;
  registry?: AvroRegistry;
  /** Replaces the JSONEachRow insert (benchmarks, other row formats). */
  insert?: InsertFn;
}

export type ClickHouseSinkOptions = SinkOptionsInput & ClickHouseSinkDeps;

export interface ClickHouseSink {
  start(): Promise<void>;
  stop(): Promise<void>;
  stats(): LoaderStats[];
  readonly options: SinkOptions;
}

function createQuarantineWriter(
  producer: Producer,
  registry: AvroRegistry,
  prefix: string,
): QuarantineWriter {
  const topic = topicName(prefix, 'quarantine');
  let serde: Promise<Serde<QuarantineRecord>> | null = null;
  return {
    async write(records) {
      // Registered on first use: a sink that never quarantines does not need the registry to write.
      serde ??= registry.registerTopic(prefix, 'quarantine');
      let s: Serde<QuarantineRecord>;
      try {
        s = await serde;
      } catch (err) {
        serde = null;
        throw err;
      }
      try {
        await producer.send({
          topic,
          acks: -1,
          compression: COMPRESSION,
          messages: records.map((r) => quarantineMessage(r, s.encode(r))),
        });
      } catch (cause) {
        throw new MeterflowError(
          'KAFKA_UNREACHABLE',
          `cannot write quarantine records to ${topic}: ${errorMessage(cause)}`,
          {
            cause,
            retriable: true,
            context: { topic },
          },
        );
      }
    },
  };
}

export function createClickHouseSink(config: Config, input: ClickHouseSinkOptions = {}): ClickHouseSink {
  const { log: givenLog, kafka: givenKafka, registry: givenRegistry, insert: givenInsert, ...tuning } = input;
  const options: SinkOptions = parseOrThrow(sinkOptionsSchema, tuning, 'invalid ClickHouse sink options');
  const log = (givenLog ?? createLogger(config.logLevel)).child({ component: 'sink.clickhouse' });
  const kafka = givenKafka ?? createKafka(config, '-sink-clickhouse');
  const registry = givenRegistry ?? AvroRegistry.fromConfig(config);
  const prefix = config.kafka.topicPrefix;
  const groupPrefix = options.groupIdPrefix ?? `${prefix}clickhouse-sink.`;
  let client: ClickHouseClient | undefined;
  let producer: Producer | undefined;
  let loaders: FamilyLoader[] = [];
  let stopped = false;
  const startAbort = new AbortController();

  /**
   * Migrates, waiting for ClickHouse if it is not up yet (a sink starting before its database).
   * A stop() during the wait ends it quietly: start() then sees `stopped` and returns.
   */
  async function migrateWhenReachable(c: ClickHouseClient): Promise<void> {
    await retry(() => migrate(c, config.clickhouse.database, log), {
      policy: { initialMs: options.retryInitialMs, maxMs: options.retryMaxMs, factor: options.retryFactor },
      classify: (err) => isRetriable(err) && !stopped,
      signal: startAbort.signal,
      onRetry: ({ err, attempt, delayMs }) =>
        log.warn(
          { event: 'ch.sink.migrate.retry', attempt, delayMs, err: errorMessage(err) },
          'ClickHouse not reachable for migrations; retrying',
        ),
    }).catch((err: unknown) => {
      if (err !== startAbort.signal.reason) throw err;
    });
  }

  return {
    options,
    async start() {
      client = createChClient(config.clickhouse, { requestTimeoutMs: options.requestTimeoutMs });
      if (options.migrate) await migrateWhenReachable(client);
      if (stopped) return;
      const topicIds = new Set<TopicId>(['quarantine']);
      for (const f of options.families) for (const b of FAMILY_BINDINGS[f]) topicIds.add(b.topic);
      const admin = kafka.admin();
      await admin.connect();
      try {
        await ensureCatalogueTopics(admin, config, [...topicIds]);
      } finally {
        await admin.disconnect();
      }
      producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      const insert = givenInsert ?? jsonEachRowInsert(client);
      const quarantine = createQuarantineWriter(producer, registry, prefix);
      loaders = options.families.map(
        (family) =>
          new FamilyLoader({
            family,
            bindings: FAMILY_BINDINGS[family],
            topicPrefix: prefix,
            database: config.clickhouse.database,
            groupId: groupPrefix + family,
            kafka,
            registry,
            insert,
            quarantine,
            log,
            options,
          }),
      );
      await Promise.all(loaders.map((l) => l.start()));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      startAbort.abort();
      await Promise.all(loaders.map((l) => l.stop()));
      await producer?.disconnect().catch(() => undefined);
      await client?.close().catch(() => undefined);
    },
    stats() {
      return loaders.map((l) => l.getStats());
    },
  };
}
