/**
 * Building blocks shared by the provider normalisers.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { ConnectionConfig } from '../../schemas/connection.js';
import type {
  Asset,
  Meter,
  RawEnvelope,
  UsageBatch,
  UsageChannel,
  UsageInterval,
} from '../../schemas/records.js';
import {
  isMeterCategory,
  mappingEntry,
  mapMeterType,
  subtypeProblem,
  type MeterTypeFallbacks,
  type MeterTypeMatch,
} from '../../schemas/taxonomy.js';
import { resolveUnit, toCanonical } from '../../schemas/units.js';
import { isValidTimeZone } from '../aggregate/core/zone.js';
import type { NormaliseContext, Reject } from './types.js';

/** "path.to.field: message" for the first few issues of a failed parse. */
export function describeZodError(error: z.ZodError, prefix = ''): string {
  const parts = error.issues.slice(0, 3).map((i) => {
    const path = [prefix, ...i.path.map(String)].filter((p) => p !== '').join('.');
    return `${path === '' ? '(root)' : path}: ${i.message}`;
  });
  if (error.issues.length > 3) parts.push(`and ${error.issues.length - 3} more`);
  return parts.join('; ');
}

/** Fields every entity takes from its envelope. */
export function entityStamp(env: RawEnvelope): {
  active: true;
  first_seen: number;
  last_seen: number;
  sync_run_id: string;
} {
  return {
    active: true,
    first_seen: env.received_at,
    last_seen: env.received_at,
    sync_run_id: env.sync_run_id,
  };
}

/**
 * A stable asset id derived from an address, for providers whose meters carry a location but no
 * asset: the same address (ignoring case, punctuation and spacing) always gives the same id.
 */
export function derivedAssetId(address: string): string {
  const folded = address
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
  return `addr-${createHash('sha256').update(folded).digest('hex').slice(0, 16)}`;
}

export function makeAsset(
  env: RawEnvelope,
  fields: {
    external_id: string;
    name: string;
    address: string | null;
    metadata: Record<string, string>;
    derived: boolean;
  },
): Asset {
  return { connection_id: env.connection_id, provider: env.provider, ...fields, ...entityStamp(env) };
}

export interface MeterFields {
  external_id: string;
  asset_external_id: string;
  type: MeterTypeMatch;
  unit: string;
  description: string | null;
  time_zone: string | null;
  reading_type: Meter['reading_type'];
  rollover_value: number | null;
  metadata: Record<string, string>;
}

export function makeMeter(env: RawEnvelope, f: MeterFields): Meter {
  const unit = resolveUnit(f.unit);
  return {
    connection_id: env.connection_id,
    provider: env.provider,
    external_id: f.external_id,
    asset_external_id: f.asset_external_id,
    meter_type: f.type.type,
    meter_subtype: f.type.subtype,
    unit: unit.symbol,
    canonical_unit: unit.canonical,
    description: f.description,
    time_zone: f.time_zone,
    reading_type: f.reading_type,
    rollover_value: f.rollover_value,
    // Record how the type was decided, so an inference is visible to whoever maps meters.
    metadata: { ...f.metadata, meter_type_source: f.type.source },
    ...entityStamp(env),
  };
}

/** Map a classification or explain why it cannot be (the meter is then quarantined). */
export function meterTypeOrReject(
  classification: string | null | undefined,
  connection: ConnectionConfig | undefined,
  fallbacks: MeterTypeFallbacks,
  meterId: string,
): MeterTypeMatch | Reject {
  const match = mapMeterType(classification, connection?.meterTypes, fallbacks);
  if (match) return match;
  // An entry that is there but names no taxonomy entry (the schema refuses it at load).
  for (const name of [classification, fallbacks.quantityName]) {
    const entry = name ? mappingEntry(name, connection?.meterTypes) : undefined;
    if (!entry) continue;
    const [key, target] = entry;
    const problem = isMeterCategory(target.type)
      ? target.subtype && subtypeProblem(target.type, target.subtype)
      : `type "${String(target.type)}" is not Energy, Water or Waste`;
    if (problem)
      return {
        code: 'NORM_METER_TYPE_UNMAPPED',
        message: `meter ${meterId}: the connection's meterTypes entry "${key}" does not map to the taxonomy: ${problem}`,
        recordIndex: null,
        detail: null,
      };
  }
  const what = [
    classification ? `classification "${classification}"` : 'no classification',
    fallbacks.quantityName ? `quantity "${fallbacks.quantityName}"` : null,
    fallbacks.unit ? `unit "${fallbacks.unit}"` : null,
  ]
    .filter((s) => s !== null)
    .join(', ');
  return {
    code: 'NORM_METER_TYPE_UNMAPPED',
    message: `meter ${meterId}: ${what} cannot be mapped to the meter-type taxonomy; add it to the connection's meterTypes`,
    recordIndex: null,
    detail: null,
  };
}

export function isReject(value: MeterTypeMatch | Reject): value is Reject {
  return 'code' in value;
}

export function rolloverFor(connection: ConnectionConfig | undefined, meterId: string): number | null {
  return connection?.rollover.meters[meterId] ?? connection?.rollover.default ?? null;
}

/** Zone of a usage chunk: the payload's own zone if valid, else the meter's, the connection's, UTC. */
export function batchZone(payloadZone: string | null | undefined, ctx: NormaliseContext): string {
  for (const z of [payloadZone, ctx.meter?.time_zone, ctx.connection?.timeZone]) {
    if (z && isValidTimeZone(z)) return z;
  }
  return 'UTC';
}

/**
 * Zone for local timestamps without offset: the connection's documented zone (seed 000: the
 * provider must document the assumed time zone), else the meter's; undefined when neither.
 */
export function localZone(ctx: NormaliseContext): string | undefined {
  return ctx.connection?.timeZone ?? ctx.meter?.time_zone ?? undefined;
}

export function makeBatch(env: RawEnvelope, unitText: string, zone: string): UsageBatch {
  const unit = resolveUnit(unitText);
  return {
    connection_id: env.connection_id,
    provider: env.provider,
    meter_external_id: env.external_id,
    sync_run_id: env.sync_run_id,
    unit: unit.symbol,
    canonical_unit: unit.canonical,
    time_zone: zone,
    // Filled in by the stage that writes the batch.
    source_topic: '',
    source_partition: -1,
    source_offset: -1,
    intervals: [],
  };
}

export function makeInterval(
  batch: UsageBatch,
  f: {
    start: number;
    end: number;
    channel: UsageChannel;
    value: number;
    estimated: boolean;
    currency?: string | null;
    metadata?: Record<string, string>;
  },
): UsageInterval {
  return {
    start: f.start,
    end: f.end,
    channel: f.channel,
    value: f.value,
    value_canonical: f.channel === 'cost' ? null : toCanonical(f.value, batch.unit),
    currency: f.currency ?? null,
    estimated: f.estimated,
    from_readings: false,
    metadata: f.metadata ?? {},
  };
}

/** Usage normalisers need the meter; without it the whole chunk is rejected. */
export function missingMeterReject(env: RawEnvelope): Reject {
  return {
    code: 'VAL_UNKNOWN_METER',
    message: `usage chunk for meter ${env.external_id} of connection ${env.connection_id} arrived without its meter`,
    recordIndex: null,
    detail: null,
  };
}
