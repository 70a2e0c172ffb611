/**
 * Producers: provider pollers that write raw envelopes, sync state and sync runs to Kafka.
 * `createProducers(config, connections, deps)` gives the CLI start/stop (schedules) and runOnce.
 */
import type { Kafka } from 'kafkajs';
import type { Config } from '../lib/config.js';
import { MeterflowError } from '../lib/errors.js';
import { createKafka } from '../lib/kafka.js';
import { createLogger, type Logger } from '../lib/log.js';
import { AvroRegistry } from '../lib/registry.js';
import type { ConnectionConfig } from '../schemas/connection.js';
import type { SyncRun } from '../schemas/records.js';
import type { RequestBudget } from './http/budget.js';
import type { SyncDeps, SyncMode } from './sync/engine.js';
import { RunGuard, startScheduler, type Scheduler } from './sync/scheduler.js';

export { runSync, type SyncDeps, type SyncOptions, type SyncMode } from './sync/engine.js';
export { startScheduler, RunGuard, SCHEDULE_PRESETS } from './sync/scheduler.js';
export { loadConnections, loadConnectionFile, parseConnection } from './sync/connections.js';
export { SYNC_EVENTS, type SyncEvent } from './sync/events.js';
export { createConnector } from './connectors/index.js';

export interface ProducersDeps {
  log?: Logger;
  kafka?: Kafka;
  registry?: AvroRegistry;
  env?: SyncDeps['env'];
  onEvent?: SyncDeps['onEvent'];
}

export interface RunRange {
  from?: string;
  to?: string;
  mode?: SyncMode;
}

export interface Producers {
  /** Starts the schedules of every connection that has one. */
  start(): Promise<void>;
  /** Stops schedules and running syncs (running chunks are not committed after the stop). */
  stop(): Promise<void>;
  /** One sync now: incremental, or a backfill when `from` is given. POLL_RUN_OVERLAP if one is running. */
  runOnce(connectionId: string, range?: RunRange): Promise<SyncRun>;
}

export function createProducers(
  config: Config,
  connections: ConnectionConfig[],
  deps: ProducersDeps = {},
): Producers {
  const byId = new Map(connections.map((c) => [c.id, c]));
  const budgets = new Map<string, RequestBudget>();
  const syncDeps: SyncDeps = {
    config,
    kafka: deps.kafka ?? createKafka(config),
    registry: deps.registry ?? AvroRegistry.fromConfig(config),
    log: (deps.log ?? createLogger(config.logLevel)).child({ component: 'producers' }),
    budgets,
    stateCache: new Map(),
    ...(deps.env ? { env: deps.env } : {}),
    ...(deps.onEvent ? { onEvent: deps.onEvent } : {}),
  };
  const guard = new RunGuard();
  let scheduler: Scheduler | undefined;
  return {
    start() {
      scheduler ??= startScheduler(connections, syncDeps, guard);
      return Promise.resolve();
    },
    async stop() {
      await scheduler?.stop();
      scheduler = undefined;
      await guard.stopAll();
    },
    runOnce(connectionId, range = {}) {
      const c = byId.get(connectionId);
      if (!c) {
        return Promise.reject(
          new MeterflowError(
            'CFG_INVALID',
            `no connection "${connectionId}" (known: ${[...byId.keys()].join(', ') || 'none'})`,
            { context: { connection: connectionId } },
          ),
        );
      }
      const mode: SyncMode = range.mode ?? (range.from ? 'backfill' : 'incremental');
      try {
        return guard.start(c, syncDeps, {
          mode,
          ...(range.from ? { from: range.from } : {}),
          ...(range.to ? { to: range.to } : {}),
        });
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    },
  };
}
