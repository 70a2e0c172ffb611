/**
 * Sync runs against providers that answer wrongly, on the real Kafka: a snapshot that suddenly
 * finds nothing deactivates nothing; a usage answer without its values never moves a watermark;
 * a run that outlives its deadline is aborted as POLL_RUN_DEADLINE and the schedule goes on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../support/context.js';
import { startGenericJsonSimulator, type GenericJsonSimulator } from '../../../simulators/generic-json.js';
import { startEnerKeySimulator, type EnerKeySimulator } from '../../../simulators/enerkey.js';
import { startArcadiaSimulator, type ArcadiaSimulator } from '../../../simulators/arcadia.js';
import { runSync } from '../../../producers/sync/engine.js';
import { RunGuard, startScheduler } from '../../../producers/sync/scheduler.js';
import { SYNC_EVENTS, type SyncEvent } from '../../../producers/sync/events.js';
import { arcadiaConnection, arcadiaEnv, connection, readEnvelopes, readStates, syncDeps } from './helpers.js';

const HTTP = {
  timeoutMs: 10_000,
  maxResponseBytes: 4 * 1024 * 1024,
  maxRetries: 2,
  backoffBaseMs: 5,
  backoffMaxMs: 50,
};

let ctx: TestContext;
beforeAll(async () => {
  ctx = createTestContext({ partitions: 2 });
  await ctx.createTopics();
});
afterAll(async () => ctx?.cleanup());

describe('a snapshot that suddenly finds nothing', () => {
  let sim: GenericJsonSimulator;
  afterEach(async () => sim?.close());

  const genericA = (id: string) =>
    connection({
      id,
      provider: 'generic',
      baseUrls: { production: sim.url },
      auth: { type: 'apiKey', in: 'query', name: 'api_key', keys: [{ valueEnv: 'ACME_API_KEY' }] },
      http: HTTP,
      usageStart: '2024-01-01',
      generic: {
        format: 'json',
        assets: {
          path: '/api/sites',
          itemsPath: 'data',
          pagination: {
            type: 'offset',
            offsetParam: 'offset',
            limitParam: 'limit',
            limit: 100,
            totalPath: 'meta.total',
          },
          fields: { externalId: 'site_id', name: 'name' },
        },
        meters: {
          path: '/api/meters',
          itemsPath: 'data',
          pagination: {
            type: 'offset',
            offsetParam: 'offset',
            limitParam: 'limit',
            limit: 100,
            totalPath: 'meta.total',
          },
          fields: { externalId: 'meter_id', assetId: 'site_id', unit: 'unit' },
        },
        usage: {
          path: '/api/meters/{meterId}/readings',
          itemsPath: 'data',
          kind: 'reading',
          dateParams: { from: 'from', to: 'to', format: 'date', toInclusive: true },
          maxRangeDays: 31,
          fields: { timestamp: 'read_at', value: 'value', meterId: 'meter_id' },
        },
      },
    });

  it('an empty meter and site listing after a complete one is POLL_SNAPSHOT_EMPTY: no marker, nothing deactivated', async () => {
    sim = await startGenericJsonSimulator({ sites: 2, days: 5 });
    const conn = genericA('empty-snap');
    const deps = syncDeps(ctx, { ACME_API_KEY: sim.apiKey });
    const first = await runSync(conn, deps, { mode: 'entities' });
    expect(first.snapshot_complete).toBe(true);

    sim.setFaults({ emptyList: { endpoints: ['sites', 'meters'] } });
    const second = await runSync(conn, deps, { mode: 'entities' });
    expect(second.snapshot_complete).toBe(false);
    expect(second.status).not.toBe('succeeded');
    const msg = second.error_messages.join('\n');
    expect(msg).toContain('POLL_SNAPSHOT_EMPTY');
    expect(msg).toContain('connection empty-snap');
    expect(msg).toMatch(new RegExp(`0 meters .*previous complete snapshot had ${sim.truth().meters.length}`));

    const markers = (await readEnvelopes(ctx, 'rawEntities')).filter(
      (e) => e.value.connection_id === 'empty-snap' && e.value.entity_kind === 'snapshot_complete',
    );
    expect(new Set(markers.map((m) => m.value.sync_run_id))).toEqual(new Set([first.sync_run_id]));
  });
});

describe('a usage answer without its values', () => {
  let sim: EnerKeySimulator;
  afterEach(async () => sim?.close());

  it('enerkey values {} records POLL_RESPONSE_SCHEMA and moves no watermark', async () => {
    sim = await startEnerKeySimulator({ facilities: 2, metersPerFacility: [1, 2], days: 20 });
    const conn = connection({
      id: 'ek-empty',
      provider: 'enerkey',
      baseUrls: { production: sim.url },
      auth: {
        type: 'apiKey',
        name: 'Authorization',
        keys: [{ valueEnv: 'EK_KEY_1', validFrom: '2020-01-01', validTo: '2099-12-31' }],
      },
      usageStart: '2024-01-01',
      http: HTTP,
      options: { values: ['hourly'] },
    });
    sim.setFaults({ emptyObject: { endpoints: ['values.hourly'] } });
    const run = await runSync(conn, syncDeps(ctx, { EK_KEY_1: sim.truth().apiKeys[0]!.key }), {
      mode: 'incremental',
      to: '2024-01-10T00:00:00Z',
    });
    expect(run.status).toBe('partial');
    expect(run.error_messages.join('\n')).toContain('POLL_RESPONSE_SCHEMA');
    const states = (await readStates(ctx)).filter(
      (s) => s.value.connection_id === 'ek-empty' && s.value.scope !== 'snapshot',
    );
    expect(states).toEqual([]);
  });
});

describe('run deadline', () => {
  let sim: ArcadiaSimulator;
  afterEach(async () => {
    sim.setFaults({});
    await sim?.close();
  });

  const arcadia = (id: string, schedule?: { cron: string }) =>
    arcadiaConnection(sim, id, {
      options: { intervals: 'normalized' },
      http: { ...HTTP, timeoutMs: 60_000, runDeadlineMs: 1_500 },
      ...(schedule ? { schedule } : {}),
    });
  const env = () => arcadiaEnv(sim);
  /** One meter of five days: each run below fetches one chunk. */
  const oneMeter = () =>
    startArcadiaSimulator({ credentials: 1, sites: 1, meters: 1, days: 5, intervalsActive: true });

  it('a run past http.runDeadlineMs is aborted and recorded as failed with POLL_RUN_DEADLINE', async () => {
    sim = await oneMeter();
    sim.setFaults({ slow: { delayMs: 30_000, endpoints: ['normalizedIntervals'] } });
    const guard = new RunGuard();
    const t0 = Date.now();
    const run = await guard.start(arcadia('deadline'), syncDeps(ctx, env()), {
      mode: 'incremental',
      to: '2024-01-03',
    });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(run.status).toBe('failed');
    expect(run.error_messages.join('\n')).toMatch(/^POLL_RUN_DEADLINE: .*deadline/m);
    expect(run.error_messages.join('\n')).not.toContain('POLL_HTTP_NETWORK');
    // The connection is free again.
    expect(guard.isRunning('deadline')).toBe(false);
  });

  it('a run stopped by its caller is recorded as failed with POLL_RUN_STOPPED, not a network error', async () => {
    sim = await oneMeter();
    sim.setFaults({ slow: { delayMs: 30_000, endpoints: ['normalizedIntervals'] } });
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error('SIGTERM')), 500);
    const run = await runSync(
      { ...arcadia('stopped'), http: { ...arcadia('stopped').http, runDeadlineMs: 60_000 } },
      syncDeps(ctx, env()),
      { mode: 'incremental', to: '2024-01-03', signal: stop.signal },
    );
    expect(run.status).toBe('failed');
    expect(run.error_messages.join('\n')).toMatch(
      /^POLL_RUN_STOPPED: .*stopped before it finished: SIGTERM/m,
    );
    expect(run.error_messages.join('\n')).not.toContain('POLL_HTTP_NETWORK');
  });

  it('a run stopped between two requests is failed too, never a success', async () => {
    sim = await oneMeter();
    const stop = new AbortController();
    // Stopped right after the snapshot: the usage loop sees the abort before its first request.
    const onEvent = (e: SyncEvent) => {
      if (e.name === SYNC_EVENTS.snapshotComplete) stop.abort(new Error('SIGTERM'));
    };
    const run = await runSync(arcadia('stopped-between'), syncDeps(ctx, env(), { onEvent }), {
      mode: 'incremental',
      to: '2024-01-03',
      signal: stop.signal,
    });
    expect(run.usage_chunks).toBe(0);
    expect(run.status).toBe('failed');
    expect(run.error_messages.join('\n')).toMatch(/^POLL_RUN_STOPPED: .*SIGTERM/m);
  });

  it('a scheduled run that hangs is cut at its deadline, so the next tick runs again', async () => {
    sim = await oneMeter();
    sim.setFaults({ slow: { delayMs: 60_000, endpoints: ['normalizedIntervals'] } });
    const events: SyncEvent[] = [];
    const scheduler = startScheduler(
      [arcadia('deadline-sched', { cron: '* * * * * *' })],
      syncDeps(ctx, env(), { onEvent: (e) => events.push(e) }),
    );
    try {
      const until = Date.now() + 20_000;
      while (Date.now() < until && events.filter((e) => e.name === 'sync.run.started').length < 2) {
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await scheduler.stop();
    }
    expect(events.filter((e) => e.name === 'sync.run.started').length).toBeGreaterThanOrEqual(2);
    const finished = events.filter((e) => e.name === 'sync.run.finished');
    expect(finished[0]?.data.status).toBe('failed');
  });
});
