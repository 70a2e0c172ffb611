/**
 * The generic connector: a provider described entirely by `connection.generic`
 * (schemas/connection.ts): asset and meter listings (assets derived from meter fields when there is
 * no asset endpoint), usage per meter and date chunk, any pagination style, JSON, XML or CSV.
 * Payloads are JSON: one item per entity envelope, an array of items per usage envelope.
 *
 * Meters may differ in usage kind (meters.fields.usageKind through meters.usageKinds): each meter
 * is requested with its own kind's endpoint and fields (usage, with usageByKind.<kind> over it), in
 * one usage stream so that watermarks keep their `usage:<meter>` scope. meters.filter leaves meters
 * out before anything is emitted or requested.
 */
import { MeterflowError } from '../../../lib/errors.js';
import {
  meterKept,
  meterUsageKind,
  usageKindsOf,
  usageOfKind,
  type ConnectionConfig,
  type GenericConnectorConfig,
  type KindUsageConfig,
  type UsageKind,
} from '../../../schemas/connection.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import { DAY_MS, floorTo, MINUTE_MS } from '../../../schemas/time.js';
import { isoDate, isoInstant, type TimeRange } from '../../http/chunking.js';
import type { HttpResponse } from '../../http/client.js';
import { paginate, type Page } from '../../http/pagination.js';
import { getString } from '../../http/paths.js';
import {
  asPollError,
  envelope,
  meterPathSegment,
  rangeMeta,
  type Connector,
  type ConnectorContext,
  type EmitEntities,
  type EmitUsage,
  type EntitySnapshot,
  type MeterRef,
  type UsageChunk,
  type UsageStream,
  usageChunk,
} from '../types.js';

type Endpoint =
  GenericConnectorConfig['meters'] | NonNullable<GenericConnectorConfig['assets']> | KindUsageConfig;

/** What the snapshot tells usage about a meter (MeterRef.data). */
interface GenericMeterData {
  usageKind: UsageKind;
}

const kindOfRef = (m: MeterRef): UsageKind | undefined => (m.data as GenericMeterData | undefined)?.usageKind;

/** Items of XML and CSV bodies are already objects of strings; JSON items pass as they are. */
const itemJson = (item: unknown): string => JSON.stringify(item);

/** Extra passes over a listing whose size changed while paging. */
const RELIST_PASSES = 2;

export class GenericConnector implements Connector {
  readonly provider = 'generic' as const;
  readonly g: GenericConnectorConfig;
  /** Meters meters.filter left out in this run's snapshot: their rows in a shared answer are not sent on. */
  private readonly excluded = new Set<string>();
  /** Meters of this run's snapshot whose usage kind has no mapping: named in their rows' reason. */
  private readonly unmapped = new Set<string>();

  constructor(readonly connection: ConnectionConfig) {
    if (!connection.generic) {
      throw new MeterflowError(
        'CFG_INVALID',
        `connection ${connection.id}: provider "generic" needs a "generic" block`,
        { context: { connection: connection.id, fields: ['generic'] } },
      );
    }
    this.g = connection.generic;
  }

  private pages(
    ctx: ConnectorContext,
    ep: Endpoint,
    endpoint: string,
    url: string,
    query: Record<string, string> = {},
  ) {
    return paginate(ctx.http, {
      url,
      query: { ...ep.query, ...query },
      endpoint,
      format: this.g.format,
      pagination: ep.pagination,
      itemsPath: ep.itemsPath,
      signal: ctx.signal,
    });
  }

  /**
   * One listing, walked again (up to RELIST_PASSES times) when the provider's total changed while
   * paging: an insertion or deletion shifts offsets and could hide an item. Items are handed over
   * per page; de-duplication is the caller's.
   */
  private async list(
    ctx: ConnectorContext,
    ep: Endpoint,
    endpoint: string,
    onPage: (page: Page) => Promise<void>,
  ): Promise<boolean> {
    for (let pass = 0; pass <= RELIST_PASSES; pass++) {
      let first: number | undefined;
      let changed = false;
      for await (const page of this.pages(ctx, ep, endpoint, ep.path)) {
        if (page.total !== undefined) {
          first ??= page.total;
          if (page.total !== first) changed = true;
        }
        await onPage(page);
      }
      if (!changed) return true;
      ctx.log.info(
        { event: 'generic.relist', endpoint, pass },
        'listing size changed while paging; listing again',
      );
    }
    return false;
  }

  async snapshot(ctx: ConnectorContext, emit: EmitEntities): Promise<EntitySnapshot> {
    const errors: MeterflowError[] = [];
    let stable = true;
    this.excluded.clear();
    this.unmapped.clear();
    const fail = (e: unknown): void => {
      if (ctx.signal.aborted) throw e;
      errors.push(asPollError(e, ctx.connection.id));
    };
    const assetsSeen = new Set<string>();
    const assets = this.g.assets;
    if (assets) {
      try {
        stable &&= await this.list(ctx, assets, 'assets', async (page) => {
          const out: RawEnvelope[] = [];
          for (const item of page.items) {
            // An item without an id still goes out: the normaliser quarantines it with a reason.
            const id = getString(item, assets.fields.externalId) ?? '';
            if (id !== '' && assetsSeen.has(id)) continue;
            if (id !== '') assetsSeen.add(id);
            out.push(
              envelope(ctx, {
                kind: 'asset',
                format: 'generic.asset',
                externalId: id,
                res: page.res,
                payload: itemJson(item),
              }),
            );
          }
          if (out.length) await emit(out);
        });
      } catch (e) {
        fail(e);
      }
    }
    const meters = new Map<string, MeterRef>();
    const unmapped = this.unmapped;
    const mf = this.g.meters.fields;
    try {
      stable &&= await this.list(ctx, this.g.meters, 'meters', async (page) => {
        const out: RawEnvelope[] = [];
        for (const item of page.items) {
          const id = getString(item, mf.externalId) ?? '';
          if (!meterKept(this.g, (path) => getString(item, path))) {
            if (id !== '') this.excluded.add(id);
            continue;
          }
          if (id !== '' && (meters.has(id) || unmapped.has(id))) continue;
          // A kind without a mapping: the meter record goes on (quarantined NORM_USAGE_KIND_UNMAPPED
          // with its bytes) but its usage is not requested, as no endpoint or field set is known for it.
          const usageKind = meterUsageKind(this.g, getString(item, mf.usageKind));
          if (id !== '' && usageKind === undefined) unmapped.add(id);
          else if (id !== '') meters.set(id, { externalId: id, data: { usageKind } });
          out.push(
            envelope(ctx, {
              kind: 'meter',
              format: 'generic.meter',
              externalId: id,
              res: page.res,
              payload: itemJson(item),
            }),
          );
          // No asset endpoint: the asset is derived from the meter's location fields, once per asset id.
          const assetId = getString(item, mf.assetId);
          if (!assets && assetId !== undefined && !assetsSeen.has(assetId)) {
            assetsSeen.add(assetId);
            out.push(
              envelope(ctx, {
                kind: 'asset',
                format: 'generic.asset',
                externalId: assetId,
                res: page.res,
                payload: itemJson(item),
                meta: { derived: 'true', meter_external_id: id },
              }),
            );
          }
        }
        if (out.length) await emit(out);
      });
    } catch (e) {
      fail(e);
    }
    if (this.excluded.size > 0)
      ctx.log.info(
        { event: 'generic.meters.filtered', meters: this.excluded.size },
        'meters left out by generic.meters.filter',
      );
    if (unmapped.size > 0)
      ctx.log.warn(
        { event: 'generic.meters.kind_unmapped', meters: [...unmapped].slice(0, 20), count: unmapped.size },
        'meters whose usage kind is not in generic.meters.usageKinds: quarantined, their usage not fetched',
      );
    // A listing that kept changing may have hidden items: then nothing may be deactivated.
    return { meters: [...meters.values()], complete: errors.length === 0 && stable, errors };
  }

  usageStreams(): UsageStream[] {
    const kinds = usageKindsOf(this.g).map((k) => usageOfKind(this.g, k));
    const shared = kinds.some((u) => !perMeter(u));
    const dates = kinds.some((u) => u.dateParams.format === 'date');
    const ranges = kinds.flatMap((u) => (u.maxRangeDays === undefined ? [] : [u.maxRangeDays]));
    return [
      {
        // One stream for every kind: a meter has one kind, and its watermark scope stays usage:<id>.
        id: 'usage',
        scopePrefix: 'usage',
        // Without a meter filter one request serves every meter (split by the item's meter id).
        batchSize: shared ? 100_000 : 1,
        maxRangeDays: ranges.length > 0 ? Math.min(...ranges) : undefined,
        // A day-granular kind settles every meter to whole days: re-fetching part of a day is safe.
        settle: (to, now) => Math.min(to, dates ? floorTo(now, DAY_MS) : floorTo(now, MINUTE_MS)),
        fetch: async (
          ctx: ConnectorContext,
          meters: MeterRef[],
          range: TimeRange,
          chunk: number,
          emit?: EmitUsage,
          known?: ReadonlySet<string>,
        ): Promise<UsageChunk> => {
          // Envelopes go to the engine page by page when it takes them, so memory holds one page.
          const out: RawEnvelope[] = [];
          let count = 0;
          const hand = async (envs: RawEnvelope[], items: number): Promise<void> => {
            if (envs.length === 0) return;
            if (emit) await emit(envs, items);
            else {
              out.push(...envs);
              count += items;
            }
          };
          const single = this.g.usage.kind;
          for (const u of kinds) {
            const own = meters.filter((m) => (kindOfRef(m) ?? single) === u.kind);
            if (own.length === 0) continue;
            const request = { range, chunk, hand, listed: known ?? new Set(meters.map((m) => m.externalId)) };
            if (perMeter(u)) await this.fetchPerMeter(ctx, u, own, request);
            else await this.fetchShared(ctx, u, own, request);
          }
          return usageChunk(out, count);
        },
      },
    ];
  }

  /** One request per meter: {meterId} in the path or the meterParam query parameter. */
  private async fetchPerMeter(
    ctx: ConnectorContext,
    u: KindUsageConfig,
    meters: MeterRef[],
    r: UsageRequest,
  ): Promise<void> {
    const query = dateQuery(u, r.range);
    for (const m of meters) {
      const path = u.path.includes('{meterId}')
        ? u.path.split('{meterId}').join(meterPathSegment(ctx.connection.id, m.externalId))
        : u.path;
      const q = u.meterParam ? { ...query, [u.meterParam]: m.externalId } : query;
      let sent = false;
      const first = await this.eachPage(ctx, u, path, q, r.chunk, async (items, res) => {
        if (items.length === 0) return;
        // Items naming another meter stay: the normaliser quarantines them with the reason.
        sent = true;
        await r.hand([usageEnvelope(ctx, r, m.externalId, res, items)], items.length);
      });
      if (!sent) await r.hand([usageEnvelope(ctx, r, m.externalId, first, [])], 0);
    }
  }

  /** One request for every meter of the kind, its rows split by usage.fields.meterId. */
  private async fetchShared(
    ctx: ConnectorContext,
    u: KindUsageConfig,
    meters: MeterRef[],
    r: UsageRequest,
  ): Promise<void> {
    const wanted = new Set(meters.map((m) => m.externalId));
    const field = u.fields.meterId;
    const withRows = new Set<string>();
    let matchedSoFar = false;
    const first = await this.eachPage(
      ctx,
      u,
      u.path,
      dateQuery(u, r.range),
      r.chunk,
      async (items, res, label) => {
        const byMeter = new Map<string, unknown[]>();
        // Rows of no listed meter, by the id they carry ('' = none): quarantined downstream
        // (VAL_UNKNOWN_METER) with the rows as they came, never dropped.
        const orphans = new Map<string, unknown[]>();
        let matched = 0;
        let idless = 0;
        let excluded = 0;
        for (const it of items) {
          const id = field ? getString(it, field) : undefined;
          if (id !== undefined && wanted.has(id)) {
            matched++;
            const list = byMeter.get(id) ?? [];
            list.push(it);
            byMeter.set(id, list);
          } else if (id !== undefined && r.listed.has(id)) {
            matched++; // another batch (another watermark, or another kind) fetches this meter's rows
          } else if (id !== undefined && this.excluded.has(id)) {
            matched++;
            excluded++; // a meter meters.filter leaves out: its rows are not wanted
          } else {
            if (id === undefined) idless++;
            const list = orphans.get(id ?? '') ?? [];
            list.push(it);
            orphans.set(id ?? '', list);
          }
        }
        if (items.length > 0 && matched === 0 && !matchedSoFar) {
          throw new MeterflowError(
            'POLL_RESPONSE_SCHEMA',
            `connection ${ctx.connection.id}, endpoint usage, chunk ${r.chunk}, page ${label}: ${items.length} of ${items.length} rows map to no meter of the connection (${idless} without usage.fields.meterId "${field ?? ''}", ${items.length - idless} with an id the snapshot did not list); the chunk is not committed`,
            {
              context: {
                connection: ctx.connection.id,
                endpoint: 'usage',
                page: label,
                url: res.url,
                rows: items.length,
                withoutMeterId: idless,
              },
            },
          );
        }
        matchedSoFar ||= matched > 0;
        const envs: RawEnvelope[] = [];
        let n = 0;
        for (const [id, rows] of byMeter) {
          withRows.add(id);
          n += rows.length;
          envs.push(usageEnvelope(ctx, r, id, res, rows));
        }
        let unmatched = 0;
        for (const [id, rows] of orphans) {
          unmatched += rows.length;
          const why =
            id === ''
              ? `no usage.fields.meterId "${field ?? ''}" in the rows`
              : this.unmapped.has(id)
                ? `meter "${id}" has a usage kind not in generic.meters.usageKinds`
                : `meter id "${id}" is not in the snapshot`;
          envs.push(usageEnvelope(ctx, r, id, res, rows, { unmatched: why }));
        }
        if (orphans.size > 0) {
          ctx.log.warn(
            { event: 'generic.usage.unmatched_rows', chunk: r.chunk, page: label, rows: unmatched, idless },
            'usage rows of no listed meter sent on for quarantine',
          );
        }
        if (excluded > 0)
          ctx.log.info(
            { event: 'generic.usage.filtered_rows', chunk: r.chunk, page: label, rows: excluded },
            'usage rows of meters left out by generic.meters.filter not sent on',
          );
        await r.hand(envs, n + unmatched);
      },
    );
    // A meter without rows in the range still gets its (empty) envelope for the chunk.
    const empty = meters.filter((m) => !withRows.has(m.externalId));
    await r.hand(
      empty.map((m) => usageEnvelope(ctx, r, m.externalId, first, [])),
      0,
    );
  }

  /**
   * Walks the pages of one usage request, handing each page's items over before the next page is
   * fetched; returns the first response, which stands for the request in envelopes without rows.
   */
  private async eachPage(
    ctx: ConnectorContext,
    u: KindUsageConfig,
    path: string,
    query: Record<string, string>,
    chunk: number,
    onPage: (items: unknown[], res: HttpResponse, label: string) => Promise<void>,
  ): Promise<HttpResponse> {
    let first: HttpResponse | undefined;
    for await (const page of this.pages(ctx, u, 'usage', path, query)) {
      const res = { ...page.res, page: page.index === 0 ? String(chunk) : `${chunk}.${page.index}` };
      first ??= res;
      await onPage(page.items, res, page.label);
    }
    return first!;
  }
}

/** One chunk's request for meters of one kind. */
interface UsageRequest {
  range: TimeRange;
  chunk: number;
  hand: (envs: RawEnvelope[], items: number) => Promise<void>;
  /** Every meter of the snapshot (or of the batch): rows of these are fetched by their own request. */
  listed: ReadonlySet<string>;
}

const perMeter = (u: KindUsageConfig): boolean => u.path.includes('{meterId}') || u.meterParam !== undefined;

/** The date range of a chunk as the kind's query parameters. */
function dateQuery(u: KindUsageConfig, range: TimeRange): Record<string, string> {
  const dates = u.dateParams.format === 'date';
  const fmt = (t: number): string => (dates ? isoDate(t) : isoInstant(t));
  const from = dates ? floorTo(range.from, DAY_MS) : range.from;
  let to = dates ? Math.ceil(range.to / DAY_MS) * DAY_MS : range.to;
  if (u.dateParams.toInclusive) to -= dates ? DAY_MS : 1000;
  return { [u.dateParams.from]: fmt(from), [u.dateParams.to]: fmt(to) };
}

function usageEnvelope(
  ctx: ConnectorContext,
  r: UsageRequest,
  id: string,
  res: HttpResponse,
  rows: unknown[],
  meta: Record<string, string> = {},
): RawEnvelope {
  return envelope(ctx, {
    kind: 'usage',
    format: 'generic.usage',
    externalId: id,
    res,
    payload: JSON.stringify(rows),
    meta: { ...rangeMeta(r.range, r.chunk, id), ...meta },
  });
}
