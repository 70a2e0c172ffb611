import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../support/context.js';
import { startArcadiaSimulator, type ArcadiaSimulator } from '../../../simulators/arcadia.js';
import * as producers from '../../../producers/index.js';
import type { SyncEvent } from '../../../producers/index.js';
import { startScheduler } from '../../../producers/sync/scheduler.js';
import { arcadiaConnection, arcadiaEnv, readRuns, readStates, syncDeps } from './helpers.js';
import { runSync } from '../../../producers/sync/engine.js';

describe('schedules and run-once', () => {
  let ctx: TestContext;
  let sim: ArcadiaSimulator;
  beforeAll(async () => {
    ctx = createTestContext({ partitions: 1 });
    await ctx.createTopics();
    sim = await startArcadiaSimulator({
      credentials: 1,
      sites: 1,
      meters: 2,
      days: 10,
      intervalsActive: true,
    });
  });
  afterAll(async () => {
    await sim?.close();
    await ctx?.cleanup();
  });

  const conn = (id: string, schedule?: { cron: string }) =>
    arcadiaConnection(sim, id, { options: { intervals: 'normalized' }, ...(schedule ? { schedule } : {}) });
  const env = () => arcadiaEnv(sim);

  it('a schedule never overlaps runs of one connection: ticks during a run are skipped with POLL_RUN_OVERLAP', async () => {
    sim.setFaults({ slow: { delayMs: 1500, endpoints: ['meters.list'] } });
    const events: SyncEvent[] = [];
    const scheduler = startScheduler(
      [conn('sched', { cron: '* * * * * *' })],
      syncDeps(ctx, env(), { onEvent: (e) => events.push(e) }),
    );
    try {
      const deadline = Date.now() + 60_000;
      while (
        Date.now() < deadline &&
        !(
          events.some((e) => e.name === 'sync.run.skipped') &&
          events.some((e) => e.name === 'sync.run.finished')
        )
      ) {
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await scheduler.stop();
      sim.setFaults({});
    }
    expect(events.some((e) => e.name === 'sync.run.skipped' && e.data.code === 'POLL_RUN_OVERLAP')).toBe(
      true,
    );
    // Runs never interleave: every start is followed by its finish before the next start.
    let open = 0;
    for (const e of events) {
      if (e.name === 'sync.run.started') expect(++open).toBe(1);
      if (e.name === 'sync.run.finished') open--;
    }
  });

  it('producers.runOnce refuses a second run of a busy connection and reports runs', async () => {
    sim.setFaults({ slow: { delayMs: 1500, endpoints: ['meters.list'] } });
    const polling = producers.create({ connections: [conn('once')] }, { ...ctx, env: env() });
    try {
      const first = polling.runOnce('once', { to: '2024-01-05T00:00:00Z' });
      await expect(polling.runOnce('once')).rejects.toMatchObject({ code: 'POLL_RUN_OVERLAP' });
      await expect(polling.runOnce('nope')).rejects.toMatchObject({ code: 'CFG_INVALID' });
      const run = await first;
      expect(run.status).toBe('succeeded');
      expect(run.usage_chunks).toBe(2);
      const backfill = await polling.runOnce('once', { from: '2024-01-02', to: '2024-01-03' });
      expect(backfill.mode).toBe('backfill');
      expect(backfill.status).toBe('succeeded');
      const runs = (await readRuns(ctx)).filter((r) => r.value.connection_id === 'once');
      expect(runs.map((r) => r.value.status)).toEqual(['running', 'succeeded', 'running', 'succeeded']);
    } finally {
      await polling.stop();
      sim.setFaults({});
    }
  });

  it('a backfill detached from the watermark emits data but never moves the watermark over the gap', async () => {
    const run = await runSync(conn('detached'), syncDeps(ctx, env()), {
      mode: 'backfill',
      from: '2024-01-05',
      to: '2024-01-07T00:00:00Z',
    });
    expect(run.status).toBe('succeeded');
    expect(run.usage_chunks).toBe(2);
    const states = (await readStates(ctx)).filter(
      (s) => s.value.connection_id === 'detached' && s.value.scope.startsWith('usage:'),
    );
    expect(states).toEqual([]);
    // A contiguous one (from the first day to fetch) does move it.
    await runSync(conn('detached'), syncDeps(ctx, env()), {
      mode: 'backfill',
      from: '2024-01-01',
      to: '2024-01-03T00:00:00Z',
    });
    const after = (await readStates(ctx)).filter(
      (s) => s.value.connection_id === 'detached' && s.value.scope.startsWith('usage:'),
    );
    expect(new Set(after.map((s) => s.value.watermark))).toEqual(new Set(['2024-01-03T00:00:00.000Z']));
  });
});
