/**
 * Producers: provider pollers that write raw envelopes, sync state and sync runs to Kafka.
 *
 *   const p = producers.create({ connections }, runtime);
 *   await p.start();   // the schedules of every connection that has one are armed
 *   await p.runOnce('acme', { from: '2024-01-01' });   // one sync now (needs no start)
 *   await p.stop();    // schedules end, running syncs stop (their running chunks are not committed)
 */
import { z } from 'zod';
import { lifecycle, readiness, type Component, type ComponentDeps } from '../lib/component.js';
import { MeterflowError } from '../lib/errors.js';
import { parseOrThrow } from '../lib/parse-or-throw.js';
import { connectionSchema } from '../schemas/connection.js';
import type { SyncRun } from '../schemas/records.js';
import type { RequestBudget } from './http/budget.js';
import type { SyncDeps, SyncMode } from './sync/engine.js';
import { RunGuard, startScheduler, type Scheduler } from './sync/scheduler.js';
import { reloadConnection } from './sync/connections.js';

export { runSync, type SyncDeps, type SyncOptions, type SyncMode } from './sync/engine.js';
export { startScheduler, RunGuard, SCHEDULE_PRESETS } from './sync/scheduler.js';
export {
  loadConnections,
  loadConnectionFile,
  loadConnectionSources,
  parseConnection,
} from './sync/connections.js';
export {
  publishConnections,
  readConnectionVersions,
  refuseSecrets,
  type ConnectionVersions,
  type Published,
} from './sync/publish.js';
export { SYNC_EVENTS, type SyncEvent } from './sync/events.js';
export { createConnector } from './connectors/index.js';
export { fetchSourceUsage, type SourceUsage } from './reconcile/source.js';
// The connector's own HTTP core and context, for `meterflow check --probe` (one page per endpoint).
export { HttpClient } from './http/client.js';
export { chunkRange } from './http/chunking.js';
export type { ConnectorContext, MeterRef } from './connectors/types.js';

export const configSchema = z
  .object({
    connections: z
      .array(connectionSchema)
      .default([])
      .describe('the connections to poll: on their schedules after start(), or now with runOnce()'),
    connectionsDir: z
      .string()
      .optional()
      .describe(
        'folder the connections were loaded from: each sync reads its file again, so a fixed file takes effect without a restart',
      ),
  })
  .strict();

export type ProducersConfig = z.input<typeof configSchema>;

export interface ProducersDeps extends ComponentDeps {
  /** Where credentials are read (default process.env). */
  env?: SyncDeps['env'];
  onEvent?: SyncDeps['onEvent'];
}

export interface RunRange {
  from?: string;
  to?: string;
  mode?: SyncMode;
}

export interface Producers extends Component {
  /** One sync now: incremental, or a backfill when `from` is given. POLL_RUN_OVERLAP if one is running. */
  runOnce(connectionId: string, range?: RunRange): Promise<SyncRun>;
}

export function create(input: ProducersConfig, deps: ProducersDeps): Producers {
  const { connections, connectionsDir } = parseOrThrow(
    configSchema,
    input,
    'invalid producers configuration',
  );
  const byId = new Map(connections.map((c) => [c.id, c]));
  const budgets = new Map<string, RequestBudget>();
  const syncDeps: SyncDeps = {
    config: deps.config,
    kafka: deps.kafka,
    registry: deps.registry,
    log: deps.log.child({ component: 'producers' }),
    budgets,
    stateCache: new Map(),
    ...(deps.env ? { env: deps.env } : {}),
    ...(deps.onEvent ? { onEvent: deps.onEvent } : {}),
    ...(connectionsDir !== undefined
      ? { reloadConnection: (id: string) => reloadConnection(connectionsDir, id) }
      : {}),
  };
  const guard = new RunGuard();
  const { ready, markReady } = readiness();
  let scheduler: Scheduler | undefined;
  return {
    ready,
    ...lifecycle({
      start() {
        // Serving as soon as the schedules are armed: a scheduler joins no group.
        scheduler = startScheduler(connections, syncDeps, guard);
        markReady();
        return Promise.resolve();
      },
      async stop() {
        await scheduler?.stop();
        scheduler = undefined;
        await guard.stopAll();
      },
    }),
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
