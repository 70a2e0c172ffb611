/**
 * Arcadia Plug intervals connector (the Arcadia Plug intervals API guide): OAuth2 client
 * credentials (connection.auth), credentials by correlationId, meters by credential ids with
 * page/size pagination, sites as assets, intervals activation with bounded polling, raw or
 * normalized intervals (one of them: they cover the same consumption) per meter and date chunk.
 */
import { MeterflowError } from '../../../lib/errors.js';
import { sleep as defaultSleep } from '../../../lib/retry.js';
import { isoInstant, type TimeRange } from '../../http/chunking.js';
import { paginate, type Page } from '../../http/pagination.js';
import type { ConnectionConfig } from '../../../schemas/connection.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import { floorTo, QUARTER_MS } from '../../../schemas/time.js';
import { parseOptions } from '../options.js';
import {
  asPollError,
  envelope,
  meterPathSegment,
  rangeMeta,
  type Connector,
  type ConnectorContext,
  type EmitEntities,
  type EntitySnapshot,
  type MeterRef,
  type UsageChunk,
  type UsageStream,
  usageChunk,
} from '../types.js';
import { runPool } from '../../http/pool.js';
import { arcadiaOptionsSchema, type ArcadiaOptions } from '../../../schemas/providers/arcadia-options.js';

interface ArcadiaMeter {
  id: string;
  status?: string;
  site?: { id?: string } & Record<string, unknown>;
}

/** Values in an intervals body: raw readings, or non-null normalized importKwh slots; undefined without a readings array. */
function countReadings(body: unknown, endpoint: string): number | undefined {
  const readings =
    body !== null && typeof body === 'object' ? (body as { readings?: unknown }).readings : undefined;
  if (!Array.isArray(readings)) return undefined;
  if (endpoint === 'intervals') return readings.length;
  return readings.reduce((n: number, r: unknown) => {
    const imp = (r as { importKwh?: unknown }).importKwh;
    return n + (Array.isArray(imp) ? imp.filter((v) => v !== null).length : 0);
  }, 0);
}

const asMeter = (v: unknown): ArcadiaMeter | undefined =>
  v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string'
    ? (v as ArcadiaMeter)
    : undefined;

export class ArcadiaConnector implements Connector {
  readonly provider = 'arcadia' as const;
  readonly options: ArcadiaOptions;

  constructor(
    readonly connection: ConnectionConfig,
    private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void> = defaultSleep,
  ) {
    this.options = parseOptions(arcadiaOptionsSchema, connection);
  }

  defaultHeaders(): Record<string, string> {
    return { 'Arc-Version': this.options.arcVersion, 'X-Sandbox-Mode': String(this.options.sandbox) };
  }

  private async credentialIds(ctx: ConnectorContext): Promise<string[]> {
    const cids = this.options.correlationId === undefined ? [] : [this.options.correlationId].flat();
    const ids: string[] = [];
    for await (const page of paginate(ctx.http, {
      url: '/plug/credentials',
      query: cids.length ? { search: `correlationId=${cids.join(',')}` } : {},
      endpoint: 'credentials.list',
      pagination: {
        type: 'page',
        pageParam: 'page',
        sizeParam: 'size',
        size: this.options.pageSize,
        firstPage: 0,
        totalPagesPath: 'page.totalPages',
      },
      itemsPath: 'credentials',
      signal: ctx.signal,
    })) {
      for (const c of page.items) {
        const id = (c as { id?: unknown }).id;
        if (typeof id === 'string' && !ids.includes(id)) ids.push(id);
      }
    }
    return ids;
  }

  /** One listing pass over meters of the credential ids; returns whether totalElements stayed stable. */
  private async listMeters(
    ctx: ConnectorContext,
    credentialIds: string[],
    onPage: (meters: { meter: ArcadiaMeter; raw: unknown }[], page: Page) => Promise<void>,
  ): Promise<boolean> {
    let stable = true;
    for (let i = 0; i < credentialIds.length; i += this.options.credentialIdsPerRequest) {
      const group = credentialIds.slice(i, i + this.options.credentialIdsPerRequest);
      let total: number | undefined;
      for await (const page of paginate(ctx.http, {
        url: '/plug/meters',
        query: { search: `credentialIds=${group.join(',')}` },
        endpoint: 'meters.list',
        pagination: {
          type: 'page',
          pageParam: 'page',
          sizeParam: 'size',
          size: this.options.pageSize,
          firstPage: 0,
          totalPagesPath: 'page.totalPages',
        },
        itemsPath: 'meters',
        signal: ctx.signal,
      })) {
        const t = Number((page.body as { page?: { totalElements?: unknown } }).page?.totalElements);
        if (total !== undefined && Number.isFinite(t) && t !== total) stable = false;
        if (Number.isFinite(t)) total = t;
        const list = page.items.map((raw) => {
          const meter = asMeter(raw);
          if (!meter) {
            throw new MeterflowError(
              'POLL_RESPONSE_SCHEMA',
              `connection ${ctx.connection.id}, endpoint meters.list, page ${page.label}: a meter without an id`,
              {
                context: { connection: ctx.connection.id, endpoint: 'meters.list', page: page.label },
              },
            );
          }
          return { meter, raw };
        });
        await onPage(list, page);
      }
    }
    return stable;
  }

  async snapshot(ctx: ConnectorContext, emit: EmitEntities): Promise<EntitySnapshot> {
    const meters = new Map<string, MeterRef>();
    const sites = new Set<string>();
    const errors: MeterflowError[] = [];
    let stableOnce = false;
    try {
      const creds = await this.credentialIds(ctx);
      for (let pass = 0; pass <= this.options.relistOnChange; pass++) {
        const stable = await this.listMeters(ctx, creds, async (list, page) => {
          const out: RawEnvelope[] = [];
          for (const { meter: m, raw } of list) {
            if (!meters.has(m.id)) {
              out.push(
                envelope(ctx, {
                  kind: 'meter',
                  format: 'arcadia.meter',
                  externalId: m.id,
                  res: page.res,
                  payload: JSON.stringify(raw),
                }),
              );
            }
            meters.set(m.id, { externalId: m.id, data: { status: m.status } });
            const siteId = m.site?.id;
            if (typeof siteId === 'string' && !sites.has(siteId)) {
              sites.add(siteId);
              out.push(
                envelope(ctx, {
                  kind: 'asset',
                  format: 'arcadia.site',
                  externalId: siteId,
                  res: page.res,
                  payload: JSON.stringify(m.site),
                  meta: { meter_external_id: m.id },
                }),
              );
            }
          }
          if (out.length) await emit(out);
        });
        if (stable) {
          stableOnce = true;
          break;
        }
        ctx.log.info({ event: 'arcadia.relist', pass }, 'meter count changed while paging; listing again');
      }
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      errors.push(asPollError(e, ctx.connection.id));
    }
    // A listing that kept changing under us may have skipped meters: nothing gets deactivated.
    if (!stableOnce && errors.length === 0)
      ctx.log.warn(
        { event: 'arcadia.listing_unstable' },
        'meter listing kept changing; snapshot treated as partial',
      );
    return { meters: [...meters.values()], complete: errors.length === 0 && stableOnce, errors };
  }

  async prepareUsage(
    ctx: ConnectorContext,
    meters: MeterRef[],
  ): Promise<{ ready: MeterRef[]; errors: MeterflowError[] }> {
    const errors: MeterflowError[] = [];
    const ready: MeterRef[] = [];
    const pending = new Map<string, MeterRef>();
    const statusOf = (m: MeterRef): string | undefined => (m.data as { status?: string } | undefined)?.status;
    for (const m of meters) {
      const st = statusOf(m);
      if (st === 'INTERVALS_SUCCESS') ready.push(m);
      else if (st === 'INTERVALS_NOT_REQUESTED' || st === 'INTERVALS_IN_PROGRESS')
        pending.set(m.externalId, m);
      else
        errors.push(
          new MeterflowError(
            'POLL_ACTIVATION_TIMEOUT',
            `connection ${ctx.connection.id}: meter ${m.externalId} has status ${st ?? 'unknown'}; intervals skipped`,
            { context: { connection: ctx.connection.id, meter: m.externalId, status: st } },
          ),
        );
    }
    if (pending.size === 0) return { ready, errors };
    const toActivate = [...pending.values()].filter((m) => statusOf(m) === 'INTERVALS_NOT_REQUESTED');
    if (toActivate.length && !this.options.activate) {
      for (const m of toActivate) pending.delete(m.externalId);
      ctx.log.info(
        { event: 'arcadia.activation.disabled', meters: toActivate.length },
        'meters without intervals activation skipped',
      );
    }
    await runPool(this.options.activate ? toActivate : [], ctx.connection.sync.concurrency, async (m) => {
      try {
        await ctx.http.send({
          method: 'PATCH',
          url: `/plug/meters/${meterPathSegment(ctx.connection.id, m.externalId)}`,
          json: { isIntervalsProductActive: true },
          endpoint: 'meters.activate',
          signal: ctx.signal,
        });
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        pending.delete(m.externalId);
        errors.push(asPollError(e, ctx.connection.id));
      }
    });
    for (let poll = 0; poll < this.options.activationMaxPolls && pending.size > 0; poll++) {
      if (poll > 0) await this.sleep(this.options.activationPollMs, ctx.signal);
      await runPool([...pending.values()], ctx.connection.sync.concurrency, async (m) => {
        try {
          const { body } = await ctx.http.fetch({
            url: `/plug/meters/${meterPathSegment(ctx.connection.id, m.externalId)}`,
            endpoint: 'meters.get',
            signal: ctx.signal,
          });
          if ((body as { status?: unknown }).status === 'INTERVALS_SUCCESS') {
            pending.delete(m.externalId);
            ready.push({ ...m, data: { status: 'INTERVALS_SUCCESS' } });
          }
        } catch (e) {
          if (ctx.signal.aborted) throw e;
          pending.delete(m.externalId);
          errors.push(asPollError(e, ctx.connection.id));
        }
      });
    }
    if (pending.size > 0) {
      errors.push(
        new MeterflowError(
          'POLL_ACTIVATION_TIMEOUT',
          `connection ${ctx.connection.id}: ${pending.size} meter(s) did not reach INTERVALS_SUCCESS after ${this.options.activationMaxPolls} polls (${[...pending.keys()].slice(0, 5).join(', ')}${pending.size > 5 ? ', ...' : ''})`,
          { context: { connection: ctx.connection.id, meters: [...pending.keys()] } },
        ),
      );
    }
    return { ready, errors };
  }

  usageStreams(): UsageStream[] {
    const k =
      this.options.intervals === 'raw'
        ? { path: 'intervals', format: 'arcadia.intervals', endpoint: 'intervals' }
        : {
            path: 'normalizedIntervals',
            format: 'arcadia.normalizedIntervals',
            endpoint: 'normalizedIntervals',
          };
    return [
      {
        id: 'intervals',
        scopePrefix: 'usage',
        batchSize: 1,
        maxRangeDays: this.options.maxRangeDays,
        settle: (to, now) => Math.min(to, floorTo(now, QUARTER_MS)),
        fetch: async (
          ctx: ConnectorContext,
          meters: MeterRef[],
          range: TimeRange,
          chunk: number,
        ): Promise<UsageChunk> => {
          const out: RawEnvelope[] = [];
          let items = 0;
          for (const m of meters) {
            const { res, body } = await ctx.http.fetch({
              url: `/plug/${k.path}/meters/${meterPathSegment(ctx.connection.id, m.externalId)}`,
              query: { startAt: isoInstant(range.from), endAt: isoInstant(range.to) },
              endpoint: k.endpoint,
              page: String(chunk),
              signal: ctx.signal,
            });
            const n = countReadings(body, k.endpoint);
            // No "readings" array is not an empty range (a meter without data answers readings: []).
            if (n === undefined) {
              throw new MeterflowError(
                'POLL_RESPONSE_SCHEMA',
                `connection ${ctx.connection.id}, endpoint ${k.endpoint}, chunk ${chunk}: meter ${m.externalId}: the answer has no "readings" array (${res.url})`,
                {
                  context: {
                    connection: ctx.connection.id,
                    endpoint: k.endpoint,
                    page: String(chunk),
                    meter: m.externalId,
                    url: res.url,
                  },
                },
              );
            }
            items += n;
            out.push(
              envelope(ctx, {
                kind: 'usage',
                format: k.format,
                externalId: m.externalId,
                res,
                payload: res.text,
                meta: rangeMeta(range, chunk, m.externalId),
              }),
            );
          }
          return usageChunk(out, items);
        },
      },
    ];
  }
}
