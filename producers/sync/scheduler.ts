/**
 * Schedules: node-cron tasks per connection (hourly/daily/weekly/monthly presets or a cron
 * expression). A connection never runs twice at once: a tick that finds its previous run still
 * going is skipped and logged with POLL_RUN_OVERLAP.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import type { ConnectionConfig } from '../../schemas/connection.js';
import type { SyncRun } from '../../schemas/records.js';
import { runSync, type SyncDeps, type SyncOptions } from './engine.js';
import { SYNC_EVENTS } from './events.js';

/** Cron expressions of the presets (minute hour day-of-month month day-of-week), in the scheduler's zone. */
export const SCHEDULE_PRESETS = {
  hourly: '7 * * * *',
  daily: '17 2 * * *',
  weekly: '27 3 * * 1',
  monthly: '37 4 1 * *',
} as const;

export function cronOf(c: ConnectionConfig): string | undefined {
  if (!c.schedule) return undefined;
  const expr = 'preset' in c.schedule ? SCHEDULE_PRESETS[c.schedule.preset] : c.schedule.cron;
  if (!cron.validate(expr)) {
    throw new MeterflowError(
      'CFG_INVALID',
      `connection ${c.id}: schedule.cron "${expr}" is not a valid cron expression`,
      { context: { connection: c.id, fields: ['schedule.cron'] } },
    );
  }
  return expr;
}

/** One run per connection at a time, with a way to stop them all. */
export class RunGuard {
  private readonly running = new Map<string, { done: Promise<SyncRun>; abort: AbortController }>();

  isRunning(connectionId: string): boolean {
    return this.running.has(connectionId);
  }

  /** Starts a run, or throws POLL_RUN_OVERLAP when one of the connection is in progress. */
  start(connection: ConnectionConfig, deps: SyncDeps, opts: Omit<SyncOptions, 'signal'>): Promise<SyncRun> {
    if (this.running.has(connection.id)) {
      throw new MeterflowError(
        'POLL_RUN_OVERLAP',
        `connection ${connection.id}: a sync is already running; this run is skipped`,
        { context: { connection: connection.id } },
      );
    }
    const abort = new AbortController();
    const done = runSync(connection, deps, { ...opts, signal: abort.signal }).finally(() =>
      this.running.delete(connection.id),
    );
    this.running.set(connection.id, { done, abort });
    return done;
  }

  async stopAll(reason = 'stopping'): Promise<void> {
    const all = [...this.running.values()];
    for (const r of all) r.abort.abort(new Error(reason));
    await Promise.allSettled(all.map((r) => r.done));
  }
}

export interface Scheduler {
  guard: RunGuard;
  /** Connection ids with a schedule. */
  scheduled(): string[];
  stop(): Promise<void>;
}

export function startScheduler(
  connections: ConnectionConfig[],
  deps: SyncDeps,
  guard = new RunGuard(),
): Scheduler {
  const tasks: ScheduledTask[] = [];
  const ids: string[] = [];
  for (const c of connections) {
    const expr = cronOf(c);
    if (!expr) continue;
    const task = cron.schedule(
      expr,
      async () => {
        if (guard.isRunning(c.id)) {
          const err = new MeterflowError(
            'POLL_RUN_OVERLAP',
            `connection ${c.id}: previous sync still running; scheduled run skipped`,
            { context: { connection: c.id } },
          );
          deps.log.warn({ event: SYNC_EVENTS.runSkipped, code: err.code, connection: c.id }, err.message);
          deps.onEvent?.({
            name: SYNC_EVENTS.runSkipped,
            connectionId: c.id,
            runId: '',
            data: { code: err.code },
          });
          return;
        }
        try {
          await guard.start(c, deps, { mode: 'incremental' });
        } catch (e) {
          deps.log.error(
            { event: 'sync.run.crashed', connection: c.id, err: errorMessage(e) },
            'scheduled sync failed',
          );
        }
      },
      { name: `sync:${c.id}`, ...(c.timeZone ? { timezone: c.timeZone } : {}) },
    );
    tasks.push(task);
    ids.push(c.id);
    deps.log.info({ event: 'sync.scheduled', connection: c.id, cron: expr }, 'sync scheduled');
  }
  return {
    guard,
    scheduled: () => [...ids],
    async stop() {
      for (const t of tasks) await t.destroy();
      await guard.stopAll();
    },
  };
}
