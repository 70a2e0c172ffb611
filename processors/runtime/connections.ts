/**
 * The connections the stages apply, read as a table from the compacted `connections` topic
 * (DESIGN.md §5): a fixed connection file that the producers (or `meterflow connections publish`)
 * published takes effect in every processor on every host without a restart or a copy of the
 * file. Connection files given to the processors are a fallback for connections the topic does
 * not have (producers of releases before the topic, tests).
 *
 * Which version applies to an envelope: the one it names (the producers' version when they
 * fetched it) or a later one, the latest this process has read. A later one is what makes a
 * redrive after a fix work. When the table has not reached the named version yet, it catches up
 * (bounded); a version the topic still does not have is quarantined with
 * NORM_CONNECTION_VERSION_UNKNOWN, never applied from a guess. Every record a stage writes says
 * the version it applied.
 */
import type { Kafka } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { errorMessage } from '../../lib/errors.js';
import { catalogueTopic, ensureTopics } from '../../lib/kafka.js';
import type { Logger } from '../../lib/log.js';
import { readerType, type AvroRegistry } from '../../lib/registry.js';
import type { ConnectionConfig } from '../../schemas/connection.js';
import { readConnectionVersion } from '../../schemas/connection-version.js';
import type { ConnectionVersion } from '../../schemas/records.js';
import { topicName } from '../../schemas/topics.js';
import { TopicTable } from './topic-table.js';

/** Bound on one catch-up of the table for a version an envelope names. */
const CATCH_UP_MS = 10_000;
/**
 * A version found missing is looked for again (another catch-up) after this long, not once per
 * record: a burst of records naming a version the topic lacks costs one catch-up a second.
 */
export const RECHECK_MS = 1_000;
const MISSES_KEPT = 10_000;

export type ConnectionResolution =
  | { ok: true; connection: ConnectionConfig | undefined; version: number | null }
  | {
      ok: false;
      /** The version the envelope named, for the quarantine record. */
      version: number | null;
      rejection: {
        code: 'NORM_CONNECTION_VERSION_UNKNOWN';
        message: string;
        recordIndex: null;
        detail: string | null;
      };
    };

/** What a stage needs: the connection to apply to a record of `connectionId` naming `wanted`. */
export interface ConnectionResolver {
  resolve(connectionId: string, wanted: number | null | undefined): Promise<ConnectionResolution>;
}

interface Entry {
  record: ConnectionVersion;
  config?: ConnectionConfig;
  problem?: string;
}

export interface ConnectionSourceDeps {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
  log: Logger;
}

export class ConnectionSource implements ConnectionResolver {
  private table: TopicTable<Entry> | undefined;
  /** When a (connection, version) was last found missing after a catch-up. */
  private readonly missed = new Map<string, number>();

  constructor(
    private readonly deps: ConnectionSourceDeps,
    /** Connection files given to the process: used for connections the topic does not have. */
    private readonly files: ReadonlyMap<string, ConnectionConfig> = new Map(),
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    const { config, kafka, registry, log } = this.deps;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, config, [catalogueTopic(config, 'connections')]);
    } finally {
      await admin.disconnect();
    }
    const reader = readerType('connections');
    const table = new TopicTable<Entry>(
      kafka,
      topicName(config.kafka.topicPrefix, 'connections'),
      async (value) => {
        const record = await registry.decode<ConnectionVersion>(value, reader);
        const read = readConnectionVersion(record);
        if (read.ok) {
          log.info(
            { event: 'connections.version', connection: record.connection_id, version: record.version },
            `connection ${record.connection_id} version ${record.version} read`,
          );
          return { record, config: read.config };
        }
        log.warn(
          { event: 'connections.unreadable', connection: record.connection_id, version: record.version },
          `connection ${record.connection_id} version ${record.version} cannot be applied: ${read.problem}`,
        );
        return { record, problem: read.problem };
      },
      (err, offset) =>
        log.warn(
          { event: 'connections.undecodable', offset, err: errorMessage(err) },
          'a record of the connections topic does not decode; skipped',
        ),
    );
    this.table = table;
    await table.start();
  }

  async stop(): Promise<void> {
    await this.table?.stop();
    this.table = undefined;
  }

  /** The latest version this process has read of a connection (tests, logs). */
  version(connectionId: string): number | undefined {
    return this.table?.get(connectionId)?.record.version;
  }

  async resolve(connectionId: string, wanted: number | null | undefined): Promise<ConnectionResolution> {
    const want = wanted ?? null;
    let entry = this.table?.get(connectionId);
    const reached = (e: Entry | undefined): boolean => e !== undefined && e.record.version >= (want ?? 0);
    if (want !== null && !reached(entry)) {
      const key = `${connectionId}\u0000${want}`;
      const last = this.missed.get(key);
      if (this.table && (last === undefined || this.now() - last >= RECHECK_MS)) {
        // The producers publish a version before any envelope naming it: what the topic held
        // when this envelope was read is enough. A timeout here is retriable (RT_STATE_RESTORE).
        await this.table.catchUp(CATCH_UP_MS);
        entry = this.table.get(connectionId);
      }
      if (!reached(entry)) {
        if (this.missed.size >= MISSES_KEPT) this.missed.clear();
        this.missed.set(key, this.now());
        const have = entry ? `only version ${entry.record.version}` : 'no version of it';
        return {
          ok: false,
          version: want,
          rejection: {
            code: 'NORM_CONNECTION_VERSION_UNKNOWN',
            message: `connection ${connectionId}: the record was fetched with connection version ${want}, and the connections topic has ${have} (removed, or published to another cluster or topic prefix); publish the connection (meterflow connections publish) and redrive`,
            recordIndex: null,
            detail: JSON.stringify({
              connection: connectionId,
              wanted: want,
              available: entry?.record.version ?? null,
            }),
          },
        };
      }
      this.missed.delete(key);
    }
    if (entry) {
      if (entry.config) return { ok: true, connection: entry.config, version: entry.record.version };
      // A version this release cannot read: an unversioned record may still use a given file.
      const file = want === null ? this.files.get(connectionId) : undefined;
      if (file) return { ok: true, connection: file, version: null };
      return {
        ok: false,
        version: want,
        rejection: {
          code: 'NORM_CONNECTION_VERSION_UNKNOWN',
          message: `connection ${connectionId}: version ${entry.record.version} on the connections topic cannot be applied by this release: ${entry.problem ?? 'unreadable'}`,
          recordIndex: null,
          detail: JSON.stringify({
            connection: connectionId,
            wanted: want,
            available: entry.record.version,
          }),
        },
      };
    }
    return { ok: true, connection: this.files.get(connectionId), version: null };
  }
}
