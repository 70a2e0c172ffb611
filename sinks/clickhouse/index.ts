/**
 * The ClickHouse sink: canonical topics into ClickHouse tables (DESIGN.md §6).
 *
 *   const sink = clickhouse.create({ batchMaxRows: 100_000, batchMaxMs: 1_000 }, runtime);
 *   await sink.start();   // migrates, then one consumer group per table family
 *   await sink.ready;     // every family's consumer joined its group
 *   ...
 *   await sink.stop();    // flush, commit, disconnect (`meterflow run sinks` calls it on SIGTERM)
 *
 * The configuration is validated by `configSchema` (./options.ts, defaults and units there);
 * `runtime` is the shared settings, logger, Kafka and registry (lib/component.ts).
 */
import type { Kafka, Producer } from 'kafkajs';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { lifecycle, readiness, type Component, type ComponentDeps } from '../../lib/component.js';
import { COMPRESSION, ensureCatalogueTopics } from '../../lib/kafka.js';
import { parseOrThrow } from '../../lib/parse-or-throw.js';
import { isRetriable, retry } from '../../lib/retry.js';
import type { AvroRegistry, Serde } from '../../lib/registry.js';
import type { QuarantineRecord } from '../../schemas/records.js';
import { topicName, type TopicId } from '../../schemas/topics.js';
import { createChClient, type ClickHouseClient } from './client.js';
import { FAMILY_BINDINGS } from './families.js';
import { clickhouseInsert, type InsertFn } from './insert.js';
import { FamilyLoader, type LoaderStats, type QuarantineWriter } from './loader.js';
import { migrate } from './migrate.js';
import { sinkOptionsSchema, type SinkOptions, type SinkOptionsInput } from './options.js';
import { quarantineMessage } from './quarantine.js';

export {
  sinkOptionsSchema as configSchema,
  FAMILIES,
  type FamilyName,
  type SinkOptions,
  type SinkOptionsInput,
} from './options.js';
export { migrate, type MigrationResult } from './migrate.js';
export { MIGRATIONS } from './migrations/index.js';
export { createChClient, classifyChError } from './client.js';
export type { LoaderStats } from './loader.js';

/** The sink's configuration: the input of `configSchema`. */
export type ClickHouseSinkConfig = SinkOptionsInput;

export interface ClickHouseSinkDeps extends ComponentDeps {
  /** Replaces the ClickHouse insert (tests that hold back or fail inserts). */
  insert?: InsertFn;
}

export interface ClickHouseSink extends Component {
  stats(): LoaderStats[];
  readonly options: SinkOptions;
}

/**
 * The sink's Kafka client with one change: the consumer it makes reports its group join. A loader
 * makes one consumer, so this is how the sink learns that a family is serving.
 */
function reportingJoin(kafka: Kafka, joined: () => void): Kafka {
  const wrapped = Object.create(kafka) as Kafka;
  wrapped.consumer = (config) => {
    const consumer = kafka.consumer(config);
    consumer.on(consumer.events.GROUP_JOIN, joined);
    return consumer;
  };
  return wrapped;
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

export function create(input: ClickHouseSinkConfig, deps: ClickHouseSinkDeps): ClickHouseSink {
  const { config, kafka, registry } = deps;
  const options: SinkOptions = parseOrThrow(sinkOptionsSchema, input, 'invalid ClickHouse sink options');
  const log = deps.log.child({ component: 'sink.clickhouse' });
  const prefix = config.kafka.topicPrefix;
  const groupIdPrefix = options.groupIdPrefix ?? `${prefix}clickhouse-sink.`;
  const { ready, markReady } = readiness();
  let client: ClickHouseClient | undefined;
  let producer: Producer | undefined;
  let loaders: FamilyLoader[] = [];

  /**
   * Migrates, waiting for ClickHouse if it is not up yet (a sink starting before its database).
   * A stop() during the wait ends it quietly: start() then sees the abort and returns.
   */
  async function migrateWhenReachable(c: ClickHouseClient, signal: AbortSignal): Promise<void> {
    await retry(() => migrate(c, config.clickhouse.database, log), {
      policy: { initialMs: options.retryInitialMs, maxMs: options.retryMaxMs, factor: options.retryFactor },
      classify: (err) => isRetriable(err) && !signal.aborted,
      signal,
      onRetry: ({ err, attempt, delayMs }) =>
        log.warn(
          { event: 'ch.sink.migrate.retry', attempt, delayMs, err: errorMessage(err) },
          'ClickHouse not reachable for migrations; retrying',
        ),
    }).catch((err: unknown) => {
      if (err !== signal.reason) throw err;
    });
  }

  async function start(signal: AbortSignal): Promise<void> {
    client = createChClient(config.clickhouse, { requestTimeoutMs: options.requestTimeoutMs });
    if (options.migrate) await migrateWhenReachable(client, signal);
    if (signal.aborted) return;
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
    const insert = deps.insert ?? clickhouseInsert(client);
    const quarantine = createQuarantineWriter(producer, registry, prefix);
    const joins = options.families.map(() => readiness());
    loaders = options.families.map(
      (family, i) =>
        new FamilyLoader({
          family,
          bindings: FAMILY_BINDINGS[family],
          topicPrefix: prefix,
          database: config.clickhouse.database,
          groupId: groupIdPrefix + family,
          kafka: reportingJoin(kafka, joins[i]!.markReady),
          registry,
          insert,
          quarantine,
          log,
          options,
        }),
    );
    await Promise.all(loaders.map((l) => l.start()));
    void Promise.all(joins.map((j) => j.ready)).then(markReady);
  }

  async function stop(): Promise<void> {
    await Promise.all(loaders.map((l) => l.stop()));
    await producer?.disconnect().catch(() => undefined);
    await client?.close().catch(() => undefined);
  }

  return {
    options,
    ready,
    ...lifecycle({ start, stop }),
    stats() {
      return loaders.map((l) => l.getStats());
    },
  };
}
