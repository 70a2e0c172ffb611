/**
 * EnerKey normalisers (the EnerKey API overview; JSON shapes as served by the EnerKey
 * simulator, see schemas/providers/enerkey.ts):
 *  - enerkey.facility → Asset;
 *  - enerkey.meter → Meter. `envelope.meta.quantity` carries the meter's quantity as JSON
 *    {id, name, unit}: the quantity name is the classification mapped to the taxonomy.
 *    `envelope.meta.time_zone` (optional) carries the facility's time zone, the meter's local zone;
 *  - enerkey.quantity → reference data, nothing emitted;
 *  - enerkey.hourly / enerkey.monthly → UsageBatch from one meter's part of a values response
 *    (the response shape with only that meter in `meters`, or the part alone).
 *    A timestamp is the START of the hour / of the local month (Z or an offset).
 */
import type { RawEnvelope } from '../../schemas/records.js';
import {
  enerkeyFacilitySchema,
  enerkeyMeterSchema,
  enerkeyMeterValuesSchema,
  enerkeyQuantitySchema,
  enerkeyValueSchema,
  enerkeyValuesResponseSchema,
  type EnerkeyQuantity,
} from '../../schemas/providers/enerkey.js';
import { HOUR_MS } from '../../schemas/time.js';
import { calendarFor, isValidTimeZone, monthOfDayNo, firstDayOfMonth } from '../aggregate/core/zone.js';
import {
  batchZone,
  localZone,
  describeZodError,
  isReject,
  makeAsset,
  makeBatch,
  makeInterval,
  makeMeter,
  meterTypeOrReject,
} from './common.js';
import { asText, stringMap } from './fields.js';
import { parseTimestamp } from './time.js';
import {
  emptyResult,
  recordReject,
  rejectWhole,
  type NormaliseContext,
  type NormaliseResult,
} from './types.js';

export function normaliseEnerkeyFacility(env: RawEnvelope, json: unknown): NormaliseResult {
  const parsed = enerkeyFacilitySchema.safeParse(json);
  if (!parsed.success)
    return rejectWhole('NORM_PAYLOAD_SCHEMA', `enerkey facility: ${describeZodError(parsed.error)}`);
  const f = parsed.data;
  const id = String(f.id);
  const a = f.address;
  const cityLine = [asText(a?.postalCode), asText(a?.city)].filter(Boolean).join(' ');
  const parts = [asText(a?.streetAddress), cityLine, asText(a?.country)].filter(
    (p): p is string => p !== undefined && p !== '',
  );
  const address = parts.length > 0 ? parts.join(', ') : null;
  const name = asText(f.name) ?? address ?? asText(f.customerFacilityId);
  if (!name)
    return rejectWhole(
      'NORM_PAYLOAD_SCHEMA',
      `enerkey facility ${id}: name, address and customerFacilityId are all missing`,
    );
  const properties: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f.properties ?? {})) properties[`property.${k}`] = v;
  const metadata = stringMap({
    customerFacilityId: f.customerFacilityId,
    timeZone: f.timeZone,
    ...properties,
  });
  return {
    ...emptyResult(),
    assets: [makeAsset(env, { external_id: id, name, address, metadata, derived: false })],
  };
}

function quantityOf(env: RawEnvelope): EnerkeyQuantity | string | undefined {
  const raw = env.meta.quantity;
  if (raw === undefined || raw === '') return undefined;
  try {
    const parsed = enerkeyQuantitySchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : `meta.quantity: ${describeZodError(parsed.error)}`;
  } catch {
    return 'meta.quantity: not valid JSON';
  }
}

export function normaliseEnerkeyMeter(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  const parsed = enerkeyMeterSchema.safeParse(json);
  if (!parsed.success)
    return rejectWhole('NORM_PAYLOAD_SCHEMA', `enerkey meter: ${describeZodError(parsed.error)}`);
  const m = parsed.data;
  const id = String(m.id);
  const quantity = quantityOf(env);
  if (typeof quantity === 'string')
    return rejectWhole('NORM_PAYLOAD_SCHEMA', `enerkey meter ${id}: ${quantity}`);
  const unit = asText(m.unit) ?? quantity?.unit;
  if (!unit)
    return rejectWhole(
      'NORM_PAYLOAD_SCHEMA',
      `enerkey meter ${id}: unit: missing on the meter and its quantity`,
    );
  // The quantity name is EnerKey's classification; the meter name only helps when it is missing.
  const type = meterTypeOrReject(
    quantity?.name ?? null,
    ctx.connection,
    { unit, quantityName: quantity ? null : asText(m.name) },
    id,
  );
  if (isReject(type)) return { ...emptyResult(), rejects: [type] };
  const zone = env.meta.time_zone;
  const metadata = stringMap({
    name: m.name,
    meterType: m.meterType,
    enegiaId: m.enegiaId,
    quantityId: m.quantityId ?? quantity?.id,
    quantityName: quantity?.name,
  });
  return {
    ...emptyResult(),
    meters: [
      makeMeter(env, {
        external_id: id,
        asset_external_id: String(m.facilityId),
        type,
        unit,
        description: asText(m.name) ?? null,
        time_zone: zone && isValidTimeZone(zone) ? zone : (ctx.connection?.timeZone ?? null),
        reading_type: 'consumption',
        rollover_value: null,
        metadata,
      }),
    ],
  };
}

/** Quantities are reference data: they travel with the meters (meta.quantity), nothing to emit. */
export function normaliseEnerkeyQuantity(_env: RawEnvelope, json: unknown): NormaliseResult {
  const list = Array.isArray(json) ? json : [json];
  const result = emptyResult();
  list.forEach((q, i) => {
    const parsed = enerkeyQuantitySchema.safeParse(q);
    if (!parsed.success)
      result.rejects.push(
        recordReject('NORM_PAYLOAD_SCHEMA', describeZodError(parsed.error, String(i)), i, q),
      );
  });
  return result;
}

type Resolution = 'hourly' | 'monthly';

/** End of a monthly value: the start of the next local month; null when `start` is not a month start. */
function nextMonthStart(start: number, zone: string): number | null {
  const cal = calendarFor(zone);
  const day = cal.dayOf(start);
  const month = monthOfDayNo(day);
  if (cal.dayStart(firstDayOfMonth(month)) !== start) return null;
  return cal.dayStart(firstDayOfMonth(month + 1));
}

/**
 * The meter's entry: the payload is either the response shape with this meter's part in `meters`
 * (what the poller sends) or that part alone.
 */
function meterEntry(env: RawEnvelope, json: unknown): unknown {
  const wrapped = enerkeyValuesResponseSchema.safeParse(json);
  if (!wrapped.success) return json;
  const mine = wrapped.data.meters.filter(
    (m) => String((m as { meterId?: unknown } | null)?.meterId) === env.external_id,
  );
  // Zero or several entries for the meter: let the entry schema / id check explain it.
  return mine.length === 1
    ? mine[0]
    : wrapped.data.meters.length === 1
      ? wrapped.data.meters[0]
      : { meters: wrapped.data.meters.length };
}

function normaliseEnerkeyValues(
  resolution: Resolution,
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  const parsed = enerkeyMeterValuesSchema.safeParse(meterEntry(env, json));
  if (!parsed.success)
    return rejectWhole(
      'NORM_PAYLOAD_SCHEMA',
      `enerkey ${resolution} values: ${describeZodError(parsed.error)}`,
    );
  const p = parsed.data;
  if (String(p.meterId) !== env.external_id) {
    return rejectWhole(
      'NORM_PAYLOAD_SCHEMA',
      `meterId: "${p.meterId}" does not match the chunk's meter "${env.external_id}"`,
    );
  }
  // Values are in the unit the response states, else in the meter's default unit.
  const unit = asText(p.unit) ?? ctx.meter?.unit;
  if (!unit)
    return rejectWhole(
      'NORM_PAYLOAD_SCHEMA',
      `enerkey ${resolution} values: unit: missing and the meter is not known`,
    );
  const zone = batchZone(null, ctx);
  // EnerKey sends Z or an offset; a local timestamp is placed only in a configured zone.
  const parseZone = localZone(ctx);
  const result = emptyResult();
  const batch = makeBatch(env, unit, zone);
  result.batch = batch;
  p.values.forEach((raw, index) => {
    const v = enerkeyValueSchema.safeParse(raw);
    if (!v.success) {
      result.rejects.push(
        recordReject('NORM_PAYLOAD_SCHEMA', describeZodError(v.error, `values.${index}`), index, raw),
      );
      return;
    }
    const t = parseTimestamp(v.data.timestamp, parseZone);
    if (!t.ok) {
      result.rejects.push(recordReject(t.code, `values.${index}: ${t.message}`, index, raw));
      return;
    }
    let end = t.instant + HOUR_MS;
    if (resolution === 'monthly') {
      const next = nextMonthStart(t.instant, zone);
      if (next === null) {
        result.rejects.push(
          recordReject(
            'NORM_TIMESTAMP_INVALID',
            `values.${index}: ${v.data.timestamp} is not the start of a month in ${zone}`,
            index,
            raw,
          ),
        );
        return;
      }
      end = next;
    }
    const flag = asText(v.data.flag);
    const estimated = flag !== undefined && /estimat/i.test(flag);
    // Keep flags other than the two documented ones visible rather than fold them away.
    const metadata: Record<string, string> =
      flag !== undefined && !/^(measured|estimated)$/i.test(flag) ? { flag } : {};
    batch.intervals.push(
      makeInterval(batch, {
        start: t.instant,
        end,
        channel: 'consumption',
        value: v.data.value,
        estimated,
        metadata,
      }),
    );
  });
  return result;
}

export function normaliseEnerkeyHourly(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  return normaliseEnerkeyValues('hourly', env, json, ctx);
}

export function normaliseEnerkeyMonthly(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  return normaliseEnerkeyValues('monthly', env, json, ctx);
}
