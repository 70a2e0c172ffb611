/**
 * The generic connector: a provider described entirely by `connection.generic`
 * (schemas/connection.ts): asset and meter listings (assets derived from meter fields when there is
 * no asset endpoint), usage per meter and date chunk, any pagination style, JSON, XML or CSV.
 * Payloads are JSON: one item per entity envelope, an array of items per usage envelope.
 */
import { MeterflowError } from '../../../lib/errors.js';
import type { ConnectionConfig, GenericConnectorConfig } from '../../../schemas/connection.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import { DAY_MS, isoDate, isoInstant, type TimeRange } from '../../http/chunking.js';
import type { HttpResponse } from '../../http/client.js';
import { paginate, type Page } from '../../http/pagination.js';
import { getString } from '../../http/paths.js';
import { floorTo } from '../options.js';
import {
  asPollError,
  envelope,
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

type Endpoint =
  | GenericConnectorConfig['meters']
  | NonNullable<GenericConnectorConfig['assets']>
  | GenericConnectorConfig['usage'];

/** Items of XML and CSV bodies are already objects of strings; JSON items pass as they are. */
const itemJson = (item: unknown): string => JSON.stringify(item);

/** Extra passes over a listing whose size changed while paging. */
const RELIST_PASSES = 2;

export class GenericConnector implements Connector {
  readonly provider = 'generic' as const;
  readonly g: GenericConnectorConfig;

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
    const mf = this.g.meters.fields;
    try {
      stable &&= await this.list(ctx, this.g.meters, 'meters', async (page) => {
        const out: RawEnvelope[] = [];
        for (const item of page.items) {
          const id = getString(item, mf.externalId) ?? '';
          if (id !== '' && meters.has(id)) continue;
          if (id !== '') meters.set(id, { externalId: id });
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
    // A listing that kept changing may have hidden items: then nothing may be deactivated.
    return { meters: [...meters.values()], complete: errors.length === 0 && stable, errors };
  }

  usageStreams(): UsageStream[] {
    const u = this.g.usage;
    const perMeter = u.path.includes('{meterId}') || u.meterParam !== undefined;
    const dates = u.dateParams.format === 'date';
    const fmt = (t: number): string => (dates ? isoDate(t) : isoInstant(t));
    return [
      {
        id: 'usage',
        scopePrefix: 'usage',
        // Without a meter filter one request serves every meter (split by the item's meter id).
        batchSize: perMeter ? 1 : 100_000,
        maxRangeDays: u.maxRangeDays,
        settle: (to, now) => Math.min(to, dates ? floorTo(now, DAY_MS) : floorTo(now, 60_000)),
        fetch: async (
          ctx: ConnectorContext,
          meters: MeterRef[],
          range: TimeRange,
          chunk: number,
        ): Promise<UsageChunk> => {
          const from = dates ? floorTo(range.from, DAY_MS) : range.from;
          let to = dates ? Math.ceil(range.to / DAY_MS) * DAY_MS : range.to;
          if (u.dateParams.toInclusive) to -= dates ? DAY_MS : 1000;
          const query: Record<string, string> = {
            [u.dateParams.from]: fmt(from),
            [u.dateParams.to]: fmt(to),
          };
          const out: RawEnvelope[] = [];
          let count = 0;
          if (perMeter) {
            for (const m of meters) {
              const path = u.path.split('{meterId}').join(encodeURIComponent(m.externalId));
              const q = u.meterParam ? { ...query, [u.meterParam]: m.externalId } : query;
              const { items, first } = await this.collect(ctx, path, q, chunk);
              const mine = u.fields.meterId
                ? items.filter((it) => getString(it, u.fields.meterId) === m.externalId)
                : items;
              count += mine.length;
              out.push(
                envelope(ctx, {
                  kind: 'usage',
                  format: 'generic.usage',
                  externalId: m.externalId,
                  res: first,
                  payload: JSON.stringify(mine),
                  meta: rangeMeta(range, chunk, m.externalId),
                }),
              );
            }
            return usageChunk(out, count);
          }
          const { items, first } = await this.collect(ctx, u.path, query, chunk);
          const byMeter = new Map<string, unknown[]>(meters.map((m) => [m.externalId, []]));
          for (const it of items) {
            const id = u.fields.meterId ? getString(it, u.fields.meterId) : undefined;
            if (id !== undefined) byMeter.get(id)?.push(it);
          }
          for (const [id, list] of byMeter) {
            count += list.length;
            out.push(
              envelope(ctx, {
                kind: 'usage',
                format: 'generic.usage',
                externalId: id,
                res: first,
                payload: JSON.stringify(list),
                meta: rangeMeta(range, chunk, id),
              }),
            );
          }
          return usageChunk(out, count);
        },
      },
    ];
  }

  /** Every page of one usage request; the first response stands for the request in the envelope. */
  private async collect(
    ctx: ConnectorContext,
    path: string,
    query: Record<string, string>,
    chunk: number,
  ): Promise<{ items: unknown[]; first: HttpResponse }> {
    const items: unknown[] = [];
    let first: HttpResponse | undefined;
    for await (const page of this.pages(ctx, this.g.usage, 'usage', path, query)) {
      first ??= { ...page.res, page: String(chunk) };
      items.push(...page.items);
    }
    return { items, first: first! };
  }
}
