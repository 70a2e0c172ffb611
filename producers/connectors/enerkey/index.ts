/**
 * EnerKey connector (the EnerKey API overview): API key in Authorization (two keys
 * with validity dates, connection.auth), the 24 h budget tracked from X-Rate-Limit, quantities,
 * facilities (cursor pages), meters per facility, hourly and monthly values for many meters per
 * request, split into one envelope per meter.
 */
import { MeterflowError } from '../../../lib/errors.js';
import type { ConnectionConfig } from '../../../schemas/connection.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import type { TimeRange } from '../../http/chunking.js';
import type { HttpClientOptions } from '../../http/client.js';
import { paginate } from '../../http/pagination.js';
import { getArray } from '../../http/paths.js';
import { parseRetryAfter } from '../../http/policy.js';
import { floorTo, HOUR_MS, utcMonthStart } from '../../../schemas/time.js';
import { parseOptions } from '../options.js';
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
import { enerkeyOptionsSchema, type EnerKeyOptions } from '../../../schemas/providers/enerkey-options.js';

/** A number or non-empty string as a string. */
const scalar = (v: unknown): string | undefined =>
  typeof v === 'number' || (typeof v === 'string' && v !== '') ? String(v) : undefined;

const idOf = (v: unknown): string | undefined => {
  const id = v && typeof v === 'object' ? (v as { id?: unknown }).id : undefined;
  return typeof id === 'number' || (typeof id === 'string' && id !== '') ? String(id) : undefined;
};

/** ISO 8601 with the configured offset, e.g. 2024-01-01T02:00:00+02:00 for +02:00. */
export function formatWithOffset(t: number, offset: string): string {
  if (offset === 'Z') return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const sign = offset.startsWith('-') ? -1 : 1;
  const [h, m] = offset.slice(1).split(':').map(Number) as [number, number];
  const shifted = new Date(t + sign * (h * 60 + m) * 60_000).toISOString().slice(0, 19);
  return `${shifted}${offset}`;
}

export class EnerKeyConnector implements Connector {
  readonly provider = 'enerkey' as const;
  readonly options: EnerKeyOptions;

  constructor(readonly connection: ConnectionConfig) {
    this.options = parseOptions(enerkeyOptionsSchema, connection);
  }

  /** X-Rate-Limit = calls left in the 24 h window; with a 429, Retry-After says when calls free up. */
  onResponse: NonNullable<HttpClientOptions['onResponse']> = (res, budget) => {
    const v = res.headers['x-rate-limit'];
    if (v === undefined || !/^\d+$/.test(v.trim())) return;
    const retry = res.status === 429 ? parseRetryAfter(res.headers['retry-after'], Date.now()) : undefined;
    budget.observeProviderRemaining(Number(v), retry);
  };

  async snapshot(ctx: ConnectorContext, emit: EmitEntities): Promise<EntitySnapshot> {
    const errors: MeterflowError[] = [];
    const fail = (e: unknown): void => {
      if (ctx.signal.aborted) throw e;
      errors.push(asPollError(e, ctx.connection.id));
    };
    // Quantities: reference data, and the meters' type and unit.
    const quantities = new Map<string, string>();
    try {
      const { res, body } = await ctx.http.fetch({
        url: '/api/v1/quantities',
        endpoint: 'quantities',
        signal: ctx.signal,
      });
      const items = getArray(body, '') ?? [];
      const out: RawEnvelope[] = [];
      for (const q of items) {
        const id = idOf(q);
        if (id === undefined) continue;
        const { name, unit } = q as { name?: unknown; unit?: unknown };
        quantities.set(id, JSON.stringify({ id: (q as { id: unknown }).id, name, unit }));
        out.push(
          envelope(ctx, {
            kind: 'reference',
            format: 'enerkey.quantity',
            externalId: id,
            res,
            payload: JSON.stringify(q),
          }),
        );
      }
      if (out.length) await emit(out);
    } catch (e) {
      fail(e);
    }

    // Facilities (cursor pages), de-duplicated.
    const facilities = new Map<string, { timeZone?: string }>();
    try {
      for await (const page of paginate(ctx.http, {
        url: '/api/v1/facilities',
        query: { pageSize: this.options.facilityPageSize },
        endpoint: 'facilities.list',
        pagination: { type: 'cursor', cursorParam: 'continuationToken', nextPath: 'continuationToken' },
        itemsPath: 'items',
        signal: ctx.signal,
      })) {
        const out: RawEnvelope[] = [];
        for (const f of page.items) {
          const id = idOf(f);
          if (id === undefined || facilities.has(id)) continue;
          const tz = (f as { timeZone?: unknown }).timeZone;
          facilities.set(id, typeof tz === 'string' ? { timeZone: tz } : {});
          out.push(
            envelope(ctx, {
              kind: 'asset',
              format: 'enerkey.facility',
              externalId: id,
              res: page.res,
              payload: JSON.stringify(f),
            }),
          );
        }
        if (out.length) await emit(out);
      }
    } catch (e) {
      fail(e);
    }

    // Meters of the facilities seen.
    const meters = new Map<string, MeterRef>();
    const ids = [...facilities.keys()];
    for (let i = 0; i < ids.length; i += this.options.facilitiesPerMeterRequest) {
      const group = ids.slice(i, i + this.options.facilitiesPerMeterRequest);
      try {
        const { res, body } = await ctx.http.fetch({
          url: '/api/v1/meters',
          query: { facilityId: group.join(',') },
          endpoint: 'meters.list',
          page: String(i / this.options.facilitiesPerMeterRequest),
          signal: ctx.signal,
        });
        // The listing is an array (the API's shape); an object in its place is not "no meters".
        const items = Array.isArray(body) ? (body as unknown[]) : undefined;
        if (items === undefined)
          throw new MeterflowError(
            'POLL_RESPONSE_SCHEMA',
            `connection ${ctx.connection.id}, endpoint meters.list: the body is not an array (${res.url})`,
            { context: { connection: ctx.connection.id, endpoint: 'meters.list', url: res.url } },
          );
        const out: RawEnvelope[] = [];
        for (const m of items) {
          const id = idOf(m);
          if (id === undefined || meters.has(id)) continue;
          const { quantityId, facilityId } = m as { quantityId?: unknown; facilityId?: unknown };
          const qid = scalar(quantityId);
          const quantity = qid === undefined ? undefined : quantities.get(qid);
          const fid = scalar(facilityId) ?? '';
          meters.set(id, {
            externalId: id,
            data: { facilityId: fid, timeZone: facilities.get(fid)?.timeZone },
          });
          // The facility's zone travels with the meter: monthly values are local months.
          const timeZone = facilities.get(fid)?.timeZone;
          out.push(
            envelope(ctx, {
              kind: 'meter',
              format: 'enerkey.meter',
              externalId: id,
              res,
              payload: JSON.stringify(m),
              meta: { quantity, time_zone: timeZone },
            }),
          );
        }
        if (out.length) await emit(out);
      } catch (e) {
        fail(e);
      }
    }
    return { meters: [...meters.values()], complete: errors.length === 0, errors };
  }

  private valuesStream(kind: 'hourly' | 'monthly'): UsageStream {
    const hourly = kind === 'hourly';
    return {
      id: kind,
      scopePrefix: hourly ? 'usage' : 'usage-monthly',
      batchSize: this.options.batchSize,
      maxRangeDays: hourly ? this.options.hourlyMaxRangeDays : this.options.monthlyMaxRangeDays,
      // Hourly: whole hours; monthly: the current month is re-read until it is over.
      settle: (to, now) => (hourly ? Math.min(to, floorTo(now, HOUR_MS)) : Math.min(to, utcMonthStart(now))),
      fetch: async (
        ctx: ConnectorContext,
        meters: MeterRef[],
        range: TimeRange,
        chunk: number,
      ): Promise<UsageChunk> => {
        const { res, body } = await ctx.http.fetch({
          url: `/api/v1/values/${kind}`,
          query: {
            meterIds: meters.map((m) => m.externalId).join(','),
            from: formatWithOffset(range.from, this.options.utcOffset),
            to: formatWithOffset(range.to, this.options.utcOffset),
          },
          endpoint: `values.${kind}`,
          page: String(chunk),
          signal: ctx.signal,
        });
        const b = body as { from?: unknown; to?: unknown; resolution?: unknown; meters?: unknown };
        // An answer without its "meters" array (e.g. {}) is not an empty range: nothing is committed.
        const entries = b !== null && typeof b === 'object' ? b.meters : undefined;
        if (!Array.isArray(entries)) {
          throw new MeterflowError(
            'POLL_RESPONSE_SCHEMA',
            `connection ${ctx.connection.id}, endpoint values.${kind}, chunk ${chunk}: no "meters" array (${res.url})`,
            {
              context: {
                connection: ctx.connection.id,
                endpoint: `values.${kind}`,
                page: String(chunk),
                url: res.url,
              },
            },
          );
        }
        const wanted = new Set(meters.map((m) => m.externalId));
        const out: RawEnvelope[] = [];
        const answered = new Set<string>();
        const failed = new Map<string, MeterflowError>();
        const unusable = (id: string, what: string): MeterflowError =>
          new MeterflowError(
            'POLL_RESPONSE_SCHEMA',
            `connection ${ctx.connection.id}, endpoint values.${kind}, chunk ${chunk}: meter ${id} ${what}; its range ${new Date(range.from).toISOString()}..${new Date(range.to).toISOString()} is fetched again next time (${res.url})`,
            {
              context: {
                connection: ctx.connection.id,
                endpoint: `values.${kind}`,
                page: String(chunk),
                meter: id,
                url: res.url,
              },
            },
          );
        let items = 0;
        for (const entry of entries) {
          const id = scalar((entry as { meterId?: unknown }).meterId) ?? '';
          if (!wanted.has(id) || answered.has(id)) continue;
          answered.add(id);
          const values = (entry as { values?: unknown }).values;
          if (!Array.isArray(values)) {
            failed.set(id, unusable(id, 'has no "values" array in the answer'));
            continue;
          }
          items += values.length;
          // The response shape, holding only this meter's part.
          const payload = JSON.stringify({
            from: b.from,
            to: b.to,
            resolution: b.resolution,
            meters: [entry],
          });
          out.push(
            envelope(ctx, {
              kind: 'usage',
              format: `enerkey.${kind}`,
              externalId: id,
              res,
              payload,
              meta: rangeMeta(range, chunk, id),
            }),
          );
        }
        // Every requested meter gets an entry (an empty "values" array when it has no data).
        for (const id of wanted)
          if (!answered.has(id)) failed.set(id, unusable(id, 'is missing from the answer'));
        return usageChunk(out, items, failed);
      },
    };
  }

  usageStreams(): UsageStream[] {
    return this.options.values.map((k) => this.valuesStream(k));
  }
}
