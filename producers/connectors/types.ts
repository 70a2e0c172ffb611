/**
 * What a connector is to the sync engine: an entity snapshot that emits raw envelopes page by
 * page, and one or more usage streams fetched per meter (or per batch of meters) and per date chunk.
 * Connectors never touch Kafka; the engine writes what they return.
 */
import { errorMessage, isMeterflowError, MeterflowError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { ConnectionConfig } from '../../schemas/connection.js';
import type { RawEntityKind, RawEnvelope } from '../../schemas/records.js';
import type { HttpClient, HttpResponse } from '../http/client.js';
import type { TimeRange } from '../http/chunking.js';

export interface MeterRef {
  externalId: string;
  /** Connector-private data carried from the snapshot to usage (e.g. the facility time zone). */
  data?: unknown;
}

export interface ConnectorContext {
  connection: ConnectionConfig;
  http: HttpClient;
  log: Logger;
  runId: string;
  signal: AbortSignal;
  now(): number;
}

export interface EntitySnapshot {
  /** Meters to fetch usage for. */
  meters: MeterRef[];
  /** True only when every page of every entity endpoint was fetched without error. */
  complete: boolean;
  /** Errors that made the snapshot partial (entities already emitted stay emitted). */
  errors: MeterflowError[];
}

export type EmitEntities = (envelopes: RawEnvelope[]) => Promise<void>;

/**
 * The usage envelopes of one chunk (any number per meter), with how many values they hold, and the
 * meters of the batch whose part of the answer was unusable: their watermarks stay where they are.
 */
export type UsageChunk = RawEnvelope[] & { items?: number; failed?: Map<string, MeterflowError> };

/** Attaches the value count (and the meters that failed) to a chunk's envelopes. */
export function usageChunk(
  envelopes: RawEnvelope[],
  items: number,
  failed?: Map<string, MeterflowError>,
): UsageChunk {
  return Object.assign(envelopes, { items }, failed && failed.size > 0 ? { failed } : {});
}

/**
 * Hands envelopes of a chunk to the engine before the chunk is complete (one page at a time), so
 * a long answer is never held whole; `items` is how many values they carry.
 */
export type EmitUsage = (envelopes: RawEnvelope[], items: number) => Promise<void>;

export interface UsageStream {
  /** Stable name, part of the watermark scope: `${scopePrefix}:${meter}`. */
  id: string;
  scopePrefix: string;
  /** Meters per request (EnerKey takes many; others one). */
  batchSize: number;
  /** Longest range one request may cover, in days; undefined = no limit. */
  maxRangeDays: number | undefined;
  /**
   * The watermark a chunk ending at `to` may set, given the clock: data near "now" may still be
   * incomplete, so streams floor it to their granularity (hour, day, month).
   */
  settle(to: number, now: number): number;
  /**
   * Fetches one chunk for a batch of meters: the usage envelopes (any number per meter) and how
   * many values they hold. Envelopes given to `emit` (when the engine passes one) are part of the
   * chunk too. `known` holds every meter of the run's snapshot: rows of a known meter outside the
   * batch belong to that meter's own batch.
   */
  fetch(
    ctx: ConnectorContext,
    meters: MeterRef[],
    range: TimeRange,
    chunk: number,
    emit?: EmitUsage,
    known?: ReadonlySet<string>,
  ): Promise<UsageChunk>;
}

export interface Connector {
  readonly provider: ConnectionConfig['provider'];
  snapshot(ctx: ConnectorContext, emit: EmitEntities): Promise<EntitySnapshot>;
  /** Makes meters ready for usage (Arcadia: activation); returns the ones that are. */
  prepareUsage?(
    ctx: ConnectorContext,
    meters: MeterRef[],
  ): Promise<{ ready: MeterRef[]; errors: MeterflowError[] }>;
  usageStreams(): UsageStream[];
  /** Default headers of every request (Arc-Version...). */
  defaultHeaders?(): Record<string, string>;
  /** Reads provider headers after each response (EnerKey X-Rate-Limit). */
  onResponse?: NonNullable<import('../http/client.js').HttpClientOptions['onResponse']>;
}

export interface EnvelopeInput {
  kind: RawEntityKind;
  format: string;
  externalId: string;
  res: Pick<HttpResponse, 'url' | 'page' | 'receivedAt' | 'contentType'>;
  payload: string;
  meta?: Record<string, string | undefined>;
}

/**
 * Any failure as a MeterflowError. Errors the HTTP core did not classify come from handling an
 * unexpected provider response (a field of the wrong type...): POLL_RESPONSE_SCHEMA, not retriable.
 */
export function asPollError(e: unknown, connectionId: string): MeterflowError {
  if (isMeterflowError(e)) return e;
  return new MeterflowError(
    'POLL_RESPONSE_SCHEMA',
    `connection ${connectionId}: unexpected error while handling a provider response: ${errorMessage(e)}`,
    {
      cause: e,
      context: { connection: connectionId },
    },
  );
}

/** Builds a raw envelope with the run's identity and the request coordinates. */
export function envelope(ctx: ConnectorContext, e: EnvelopeInput): RawEnvelope {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.meta ?? {})) if (v !== undefined) meta[k] = v;
  return {
    connection_id: ctx.connection.id,
    provider: ctx.connection.provider,
    entity_kind: e.kind,
    format: e.format,
    external_id: e.externalId,
    sync_run_id: ctx.runId,
    request_url: e.res.url,
    request_page: e.res.page ?? null,
    received_at: e.res.receivedAt,
    content_type: e.res.contentType || 'application/octet-stream',
    payload: e.payload,
    meta,
  };
}

/**
 * A provider meter id as one URL path segment. encodeURIComponent keeps "." and "..", which URL
 * resolution (also in their %2E forms) turns into path steps: such an id is refused.
 */
export function meterPathSegment(connectionId: string, meterId: string): string {
  if (meterId === '.' || meterId === '..' || meterId === '') {
    throw new MeterflowError(
      'POLL_RESPONSE_SCHEMA',
      `connection ${connectionId}: meter id "${meterId}" cannot be used as a URL path segment; its usage is not fetched`,
      { context: { connection: connectionId, meter: meterId } },
    );
  }
  return encodeURIComponent(meterId);
}

/** Range metadata carried on usage envelopes. */
export function rangeMeta(range: TimeRange, chunk: number, meter: string): Record<string, string> {
  return {
    range_from: new Date(range.from).toISOString(),
    range_to: new Date(range.to).toISOString(),
    chunk: String(chunk),
    meter_external_id: meter,
  };
}
