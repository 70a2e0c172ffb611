/**
 * The sync engine: one run of one connection. Entity snapshot → raw.entities (and, when complete,
 * a snapshot_complete marker on every partition); then usage per meter from its watermark, chunk by
 * chunk, each chunk's envelopes and the new watermark committed in ONE Kafka transaction, so a
 * crash resumes exactly after the last emitted chunk. A sync-run record marks start and end.
 */
import { pollMetrics } from '../../lib/metrics.js';
import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import { errorMessage, isMeterflowError, MeterflowError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { AvroRegistry } from '../../lib/registry.js';
import type { ConnectionConfig } from '../../schemas/connection.js';
import type { RawEnvelope, SyncRun, SyncState } from '../../schemas/records.js';
import { createConnector } from '../connectors/index.js';
import {
  asPollError,
  envelope,
  type ConnectorContext,
  type MeterRef,
  type UsageChunk,
  type UsageStream,
  usageChunk,
} from '../connectors/types.js';
import { DAY_MS, floorTo, HOUR_MS } from '../../schemas/time.js';
import { chunkRange, parseInstant, type TimeRange } from '../http/chunking.js';
import { HttpClient } from '../http/client.js';
import { RequestBudget } from '../http/budget.js';
import type { Env } from '../http/secrets.js';
import { SYNC_EVENTS, type SyncEvent, type SyncEventName } from './events.js';
import { runPool } from '../http/pool.js';
import { loadSyncState, watermarkOf, type SyncStateMap } from './state.js';
import { planPublish, readConnectionVersions } from './publish.js';
import { SyncWriter } from './writer.js';

export interface SyncDeps {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
  log: Logger;
  /** Where `...Env` secrets are read (default process.env). */
  env?: Env;
  /** Clock (default Date.now). */
  now?: () => number;
  /** Request budgets per connection; they outlive runs (created on first use). */
  budgets?: Map<string, RequestBudget>;
  /**
   * Last known sync state per connection, kept by a long-lived process: merged with what the
   * sync-state topic gives (transaction markers trail commit(), so a read right after a previous
   * run can miss its last checkpoint; the later watermark wins).
   */
  stateCache?: Map<string, SyncStateMap>;
  /** Observer of named sync events. */
  onEvent?: (e: SyncEvent) => void;
  /**
   * Reads the connection again before each run (its file, when the producers were given a
   * folder), so that a fixed file takes effect at the next sync without a restart; `source`
   * names where it came from on the version it publishes.
   */
  reloadConnection?: (id: string) => Promise<{ connection: ConnectionConfig; source: string }>;
  /** The `source` of a version published without a reload (default "producers"). */
  connectionSource?: string;
  /** Options for the HTTP core (tests inject fast backoff through `sleep`/`random`). */
  http?: Partial<
    Pick<import('../http/client.js').HttpClientOptions, 'sleep' | 'random' | 'limits' | 'dispatcher'>
  >;
}

export type SyncMode = 'incremental' | 'backfill' | 'entities';

export interface SyncOptions {
  mode: SyncMode;
  /** Backfill range start (YYYY-MM-DD or ISO instant); incremental: overrides watermarks when given. */
  from?: string;
  /** Range end (exclusive); default now. */
  to?: string;
  /** Stops the run (in-flight requests are cancelled; committed chunks stay committed). */
  signal?: AbortSignal;
  runId?: string;
}

export const SNAPSHOT_SCOPE = 'snapshot';

/** Usage envelopes handed over page by page are committed ahead of their chunk past this size. */
const EARLY_FLUSH_BYTES = 4 * 1024 * 1024;

function newRunId(connectionId: string, now: number): string {
  return `${connectionId}-${new Date(now).toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
}

function parseBound(s: string | undefined, name: string, connectionId: string): number | undefined {
  if (s === undefined) return undefined;
  const t = parseInstant(s);
  if (Number.isNaN(t)) {
    throw new MeterflowError(
      'CFG_INVALID',
      `connection ${connectionId}: ${name} "${s}" is not YYYY-MM-DD or an ISO 8601 instant`,
      { context: { connection: connectionId, field: name } },
    );
  }
  return t;
}

/** Runs one sync of one connection; resolves with the final sync-run record (never rejects for provider errors). */
export async function runSync(given: ConnectionConfig, deps: SyncDeps, opts: SyncOptions): Promise<SyncRun> {
  const now = deps.now ?? Date.now;
  // A file that no longer reads fails the run here (CFG_INVALID naming the file), before anything is written.
  const { connection, source } = deps.reloadConnection
    ? await deps.reloadConnection(given.id)
    : { connection: given, source: deps.connectionSource ?? 'producers' };
  const startedAt = now();
  const runId = opts.runId ?? newRunId(connection.id, startedAt);
  const log = deps.log.child({ connection: connection.id, run: runId });
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) ac.abort(opts.signal.reason);
  // A run never holds its connection for good: past its deadline everything in flight is cancelled.
  const deadlineMs = connection.http.runDeadlineMs;
  const deadlineError = new MeterflowError(
    'POLL_RUN_DEADLINE',
    `connection ${connection.id}: run ${runId} still going after its deadline of ${deadlineMs} ms (http.runDeadlineMs); aborted`,
    { retriable: true, context: { connection: connection.id, runDeadlineMs: deadlineMs } },
  );
  const deadline = setTimeout(() => ac.abort(deadlineError), deadlineMs);
  deadline.unref?.();
  const signal = ac.signal;
  const emit = (name: SyncEventName, data: Record<string, unknown> = {}): void => {
    log.debug({ event: name, ...data }, name);
    deps.onEvent?.({ name, connectionId: connection.id, runId, data });
  };

  const rangeFrom = parseBound(opts.from, 'from', connection.id);
  const rangeTo = parseBound(opts.to, 'to', connection.id);
  if (opts.mode === 'backfill' && rangeFrom === undefined) {
    throw new MeterflowError('CFG_INVALID', `connection ${connection.id}: a backfill needs a "from"`, {
      context: { connection: connection.id, field: 'from' },
    });
  }

  const run: SyncRun = {
    connection_id: connection.id,
    sync_run_id: runId,
    provider: connection.provider,
    mode: opts.mode,
    status: 'running',
    started_at: startedAt,
    finished_at: null,
    range_from: opts.from ?? null,
    range_to: opts.to ?? null,
    entities: 0,
    usage_chunks: 0,
    intervals: 0,
    requests: 0,
    retries: 0,
    errors: 0,
    error_messages: [],
    snapshot_complete: false,
  };
  const errors: MeterflowError[] = [];
  const record = (e: unknown): void => {
    const err = asPollError(e, connection.id);
    errors.push(err);
    log.warn({ event: 'sync.error', code: err.code, err: err.toJSON() }, err.message);
  };

  const connector = createConnector(connection);
  const budgets = deps.budgets ?? new Map<string, RequestBudget>();
  let budget = budgets.get(connection.id);
  if (!budget) {
    budget = new RequestBudget(connection.id, connection.budget, now);
    budgets.set(connection.id, budget);
  }
  // Secrets resolve here: a missing variable fails the run before anything is written.
  const http = new HttpClient({
    connection,
    env: deps.env ?? process.env,
    budget,
    log,
    now,
    defaultHeaders: connector.defaultHeaders?.() ?? {},
    ...(connector.onResponse ? { onResponse: connector.onResponse } : {}),
    ...deps.http,
  });
  let writer: SyncWriter;
  try {
    writer = await SyncWriter.open(deps, connection.id);
  } catch (e) {
    clearTimeout(deadline);
    await http.close();
    opts.signal?.removeEventListener('abort', onAbort);
    throw e;
  }
  emit(SYNC_EVENTS.runStarted, { mode: opts.mode });
  let fatal = false;
  try {
    await writer.run({ ...run });
    const [state, versions] = await Promise.all([
      loadSyncState(deps, connection.id),
      readConnectionVersions(deps, { signal }),
    ]);
    // The connection as this run uses it goes to the connections topic first (when it changed),
    // and every envelope names its version: processors on any host apply it without the file.
    const published = planPublish(versions, connection, { source, now: now() });
    if (published.changed) await writer.connection(published.record);
    writer.connectionVersion = published.version;
    emit(SYNC_EVENTS.connectionPublished, { version: published.version, changed: published.changed });
    if (published.changed)
      log.info(
        { event: SYNC_EVENTS.connectionPublished, version: published.version, source },
        `connection ${connection.id} published as version ${published.version}`,
      );
    const cached = deps.stateCache?.get(connection.id);
    if (cached) {
      for (const [scope, s] of cached) {
        const have = state.get(scope);
        if (!have || (s.watermark ?? '') > (have.watermark ?? '')) state.set(scope, s);
      }
    }
    deps.stateCache?.set(connection.id, state);
    emit(SYNC_EVENTS.stateLoaded, { scopes: state.size });
    const ctx: ConnectorContext = { connection, http, log, runId, signal, now };
    // The meters of this snapshot, attached to their usage chunks (see attachMeter).
    const meterEnvelopes = new Map<string, RawEnvelope>();

    // 1. Entity snapshot.
    let assetsSeen = 0;
    const snap = await connector.snapshot(ctx, async (envs) => {
      signal.throwIfAborted();
      for (const e of envs) {
        if (e.entity_kind === 'meter') meterEnvelopes.set(e.external_id, e);
        else if (e.entity_kind === 'asset') assetsSeen++;
      }
      await writer.entities(envs);
      run.entities += envs.length;
      emit(SYNC_EVENTS.entitiesEmitted, { count: envs.length });
    });
    for (const e of snap.errors) record(e);
    const counts = { meters: snap.meters.length, assets: assetsSeen };
    const emptied = snap.complete
      ? suddenlyEmpty(connection.id, state.get(SNAPSHOT_SCOPE), counts)
      : undefined;
    if (emptied) record(emptied);
    if (snap.complete && snap.errors.length === 0 && !emptied) {
      signal.throwIfAborted();
      const marker = envelope(ctx, {
        kind: 'snapshot_complete',
        format: 'snapshot_complete',
        externalId: '*',
        res: {
          url: http.redact(http.baseUrl),
          page: undefined,
          receivedAt: now(),
          contentType: 'application/json',
        },
        // The counts let the entities stage refuse to deactivate a kind this run saw none of.
        payload: JSON.stringify({ kinds: ['asset', 'meter'], ...counts }),
        meta: { meters: String(snap.meters.length), assets: String(assetsSeen) },
      });
      const partitions = await writer.snapshotComplete(marker);
      await writer.states([
        {
          connection_id: connection.id,
          scope: SNAPSHOT_SCOPE,
          watermark: new Date(now()).toISOString(),
          checkpoint: JSON.stringify(counts),
          sync_run_id: runId,
          updated_at: now(),
        },
      ]);
      run.snapshot_complete = true;
      emit(SYNC_EVENTS.snapshotComplete, { partitions, meters: snap.meters.length });
    } else {
      emit(SYNC_EVENTS.snapshotPartial, { errors: snap.errors.length + (emptied ? 1 : 0) });
    }

    // 2. Usage.
    if (opts.mode !== 'entities' && snap.meters.length > 0) {
      let meters = snap.meters;
      if (connector.prepareUsage) {
        const prep = await connector.prepareUsage(ctx, meters);
        for (const e of prep.errors) record(e);
        meters = prep.ready;
      }
      for (const stream of connector.usageStreams()) {
        if (signal.aborted) break;
        await syncStream({
          connection,
          deps,
          ctx,
          writer,
          state,
          stream,
          meters,
          opts,
          rangeFrom,
          rangeTo,
          run,
          record,
          emit,
          meterEnvelopes,
          known: new Set(snap.meters.map((m) => m.externalId)),
        });
      }
    }
    // Loops stop quietly on an abort between two requests; a run cut short is never a success.
    signal.throwIfAborted();
  } catch (e) {
    fatal = true;
    if (signal.reason === deadlineError) record(deadlineError);
    else if (signal.aborted)
      record(
        new MeterflowError(
          'POLL_RUN_STOPPED',
          `connection ${connection.id}: run stopped before it finished: ${errorMessage(signal.reason ?? e)}`,
          { cause: e, context: { connection: connection.id } },
        ),
      );
    else record(e);
  } finally {
    clearTimeout(deadline);
    opts.signal?.removeEventListener('abort', onAbort);
    run.requests = http.stats.requests;
    run.retries = http.stats.retries;
    run.errors = errors.length;
    run.error_messages = errors.slice(0, 50).map((e) => `${e.code}: ${e.message}`);
    run.finished_at = now();
    const productive = run.entities > 0 || run.usage_chunks > 0;
    run.status = errors.length === 0 ? 'succeeded' : fatal && !productive ? 'failed' : 'partial';
    if (fatal && signal.aborted) run.status = 'failed';
    try {
      await writer.run({ ...run });
    } catch (e) {
      log.error(
        { event: 'sync.run.record_failed', err: errorMessage(e) },
        'could not write the final sync-run record',
      );
    }
    await writer.close();
    await http.close();
    pollMetrics.syncRuns.inc({ connection: connection.id, status: run.status });
    emit(SYNC_EVENTS.runFinished, {
      status: run.status,
      requests: run.requests,
      retries: run.retries,
      chunks: run.usage_chunks,
      entities: run.entities,
      ms: run.finished_at - startedAt,
    });
    log.info(
      {
        event: SYNC_EVENTS.runFinished,
        status: run.status,
        entities: run.entities,
        chunks: run.usage_chunks,
        requests: run.requests,
        retries: run.retries,
        errors: run.errors,
        ms: run.finished_at - startedAt,
      },
      `sync ${run.status}`,
    );
  }
  return run;
}

interface StreamArgs {
  connection: ConnectionConfig;
  deps: SyncDeps;
  ctx: ConnectorContext;
  writer: SyncWriter;
  state: SyncStateMap;
  stream: UsageStream;
  meters: MeterRef[];
  opts: SyncOptions;
  rangeFrom: number | undefined;
  rangeTo: number | undefined;
  run: SyncRun;
  record: (e: unknown) => void;
  emit: (name: SyncEventName, data?: Record<string, unknown>) => void;
  meterEnvelopes: Map<string, RawEnvelope>;
  /** Every meter of the run's snapshot. */
  known: ReadonlySet<string>;
}

/**
 * A complete snapshot with no meters (or no assets) where the previous complete snapshot had some
 * is far more likely a provider or configuration fault than every entity gone at once: it is
 * refused (no marker, so nothing is deactivated) with the counts.
 */
function suddenlyEmpty(
  connectionId: string,
  previous: SyncState | undefined,
  now: { meters: number; assets: number },
): MeterflowError | undefined {
  let before: { meters?: unknown; assets?: unknown } = {};
  try {
    before = previous?.checkpoint ? (JSON.parse(previous.checkpoint) as typeof before) : {};
  } catch {
    return undefined; // an unreadable checkpoint says nothing about the previous counts
  }
  const had = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const lost = (['meters', 'assets'] as const).filter((k) => now[k] === 0 && had(before[k]) > 0);
  if (lost.length === 0) return undefined;
  const what = lost.map((k) => `0 ${k} (the previous complete snapshot had ${had(before[k])})`).join(' and ');
  return new MeterflowError(
    'POLL_SNAPSHOT_EMPTY',
    `connection ${connectionId}: the snapshot found ${what}; it is not marked complete and nothing is deactivated`,
    {
      context: {
        connection: connectionId,
        meters: now.meters,
        assets: now.assets,
        previousMeters: had(before.meters),
        previousAssets: had(before.assets),
      },
    },
  );
}

/**
 * A usage chunk carries the meter as this run saw it (format, payload and the meter's own meta,
 * such as EnerKey's quantity and facility zone). Meter and usage travel through different topics
 * and stages; with the meter attached, the usage stage never has to guess whether a meter it does
 * not know yet is unknown or merely still on its way.
 */
export function attachMeter(usage: RawEnvelope, meter: RawEnvelope | undefined): RawEnvelope {
  if (!meter || usage.entity_kind !== 'usage' || usage.meta.meter_payload !== undefined) return usage;
  return {
    ...usage,
    meta: { ...meter.meta, ...usage.meta, meter_format: meter.format, meter_payload: meter.payload },
  };
}

/** A batch of meters of one stream and its chunks; meters that lost a chunk stall, a batch that lost one stops. */
interface BatchPlan {
  meters: MeterRef[];
  chunks: TimeRange[];
  /** Meters that lost a chunk: no later chunk of this batch may move their watermark past the hole. */
  stalled: Set<string>;
  stopped: boolean;
}

/** Usage of one stream: meters grouped by start into batches, batches in parallel, window by window. */
async function syncStream(a: StreamArgs): Promise<void> {
  const { connection, ctx, stream, state, opts } = a;
  const now = ctx.now();
  const end = a.rangeTo ?? now;
  const lookback = connection.sync.lookbackHours * HOUR_MS;
  const defaultStart = connection.usageStart
    ? parseInstant(connection.usageStart)
    : floorTo(now - connection.sync.historyDays * DAY_MS, DAY_MS);
  const scope = (m: MeterRef): string => `${stream.scopePrefix}:${m.externalId}`;

  // Plan: start per meter.
  const byStart = new Map<number, MeterRef[]>();
  for (const m of a.meters) {
    const wm = watermarkOf(state, scope(m));
    let start: number;
    if (opts.mode === 'backfill') start = a.rangeFrom!;
    else if (a.rangeFrom !== undefined) start = a.rangeFrom;
    else start = wm !== undefined ? Math.max(defaultStart, wm - lookback) : defaultStart;
    if (!(start < end)) continue;
    const list = byStart.get(start) ?? [];
    list.push(m);
    byStart.set(start, list);
  }
  const plans: BatchPlan[] = [];
  for (const [start, ms] of [...byStart.entries()].sort((x, y) => x[0] - y[0])) {
    const chunks = chunkRange({ from: start, to: end }, stream.maxRangeDays);
    for (let i = 0; i < ms.length; i += stream.batchSize)
      plans.push({ meters: ms.slice(i, i + stream.batchSize), chunks, stalled: new Set(), stopped: false });
  }
  let stopAll = false;
  /** Fetches and commits chunk i of a batch; false when the batch cannot go on past it. */
  const syncChunk = async (batch: BatchPlan, i: number): Promise<boolean> => {
    const range: TimeRange = batch.chunks[i]!;
    let envs: UsageChunk;
    // Envelopes a connector hands over page by page wait here; past EARLY_FLUSH_BYTES they are
    // committed ahead of the chunk's watermark, so memory holds about one page. A crash before
    // the watermark commit re-fetches the chunk: re-delivery is safe downstream, a gap is not.
    let early: RawEnvelope[] = [];
    let earlyBytes = 0;
    let earlyItems = 0;
    let sentEarly = { envelopes: 0, items: 0, bytes: 0 };
    // Rows of no listed meter (meta.unmatched) get no meter: the usage stage quarantines them.
    const attach = (list: RawEnvelope[]): RawEnvelope[] =>
      list.map((e) =>
        e.meta.unmatched === undefined ? attachMeter(e, a.meterEnvelopes.get(e.external_id)) : e,
      );
    const take = async (list: RawEnvelope[], items: number): Promise<void> => {
      ctx.signal.throwIfAborted();
      for (const e of attach(list)) {
        early.push(e);
        earlyBytes += e.payload.length;
      }
      earlyItems += items;
      if (earlyBytes < EARLY_FLUSH_BYTES) return;
      await a.writer.usageChunk(early, []);
      sentEarly = {
        envelopes: sentEarly.envelopes + early.length,
        items: sentEarly.items + earlyItems,
        bytes: sentEarly.bytes + earlyBytes,
      };
      early = [];
      earlyBytes = 0;
      earlyItems = 0;
    };
    try {
      const fetched = await stream.fetch(ctx, batch.meters, range, i, take, a.known);
      // A new array: keep the chunk's value count and the meters that failed.
      envs = usageChunk([...early, ...attach(fetched)], earlyItems + (fetched.items ?? 0), fetched.failed);
    } catch (e) {
      if (ctx.signal.aborted) return false;
      a.record(e);
      a.emit(SYNC_EVENTS.batchFailed, {
        stream: stream.id,
        meters: batch.meters.length,
        chunk: i,
        code: isMeterflowError(e) ? e.code : undefined,
      });
      // Without this chunk the watermark cannot move on: the batch stops here.
      if (isMeterflowError(e) && (e.code === 'POLL_BUDGET_EXHAUSTED' || e.code === 'POLL_AUTH'))
        stopAll = true;
      return false;
    }
    // Meters whose part of the answer was unusable keep their watermark (the range is fetched again).
    for (const [meter, err] of envs.failed ?? []) {
      batch.stalled.add(meter);
      a.record(err);
      a.emit(SYNC_EVENTS.batchFailed, { stream: stream.id, meters: 1, meter, chunk: i, code: err.code });
    }
    const t = ctx.now();
    const states: SyncState[] = [];
    for (const m of batch.meters) {
      if (batch.stalled.has(m.externalId)) continue;
      const sc = scope(m);
      const prev = watermarkOf(state, sc);
      const settled = Math.min(range.to, stream.settle(range.to, t));
      // A range detached from the watermark (or, without one, from the first day to fetch) leaves
      // it alone: moving it would skip the gap in between.
      if (range.from > (prev ?? defaultStart)) continue;
      const wm = Math.max(prev ?? -Infinity, settled);
      if (prev !== undefined && wm <= prev) continue;
      const s: SyncState = {
        connection_id: connection.id,
        scope: sc,
        watermark: new Date(wm).toISOString(),
        checkpoint: JSON.stringify({ chunk: i, range_to: new Date(range.to).toISOString() }),
        sync_run_id: ctx.runId,
        updated_at: t,
      };
      states.push(s);
    }
    ctx.signal.throwIfAborted();
    await a.writer.usageChunk(envs, states);
    for (const s of states) state.set(s.scope, s);
    a.run.usage_chunks += 1;
    a.run.intervals += sentEarly.items + (envs.items ?? 0);
    a.emit(SYNC_EVENTS.chunkCommitted, {
      stream: stream.id,
      chunk: i,
      meters: batch.meters.map((m) => m.externalId),
      envelopes: sentEarly.envelopes + envs.length,
      bytes: sentEarly.bytes + envs.reduce((n, e) => n + e.payload.length, 0),
      from: range.from,
      to: range.to,
    });
    return true;
  };
  // Window by window: every batch commits its chunk i before any batch fetches chunk i + 1, so a
  // backfill moves all meters through time together. ClickHouse inserts then touch one or two
  // month partitions instead of every month of the year (test/bench/pipeline-e2e.ts: ClickHouse
  // CPU per row 4.3 -> 1.2 µs), and a month's aggregates are complete for every meter early.
  const windows = plans.reduce((n, p) => Math.max(n, p.chunks.length), 0);
  for (let i = 0; i < windows && !(stopAll || ctx.signal.aborted); i++) {
    await runPool(
      plans.filter((p) => !p.stopped && i < p.chunks.length),
      connection.sync.concurrency,
      async (batch) => {
        if (!(await syncChunk(batch, i))) batch.stopped = true;
      },
      () => stopAll || ctx.signal.aborted,
    );
  }
  if (ctx.signal.aborted) ctx.signal.throwIfAborted();
}
