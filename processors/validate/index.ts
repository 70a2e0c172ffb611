/**
 * validate: business rules on canonical records before they reach the canonical topics.
 * Pure. Each failing interval gives exactly one reject (the first rule it fails) and is left out
 * of the valid batch; nothing is dropped without a reject. Faults of the batch as a whole (unknown
 * meter, bad zone, unit not convertible) reject the batch once, with recordIndex null.
 */
import type { Asset, Meter, UsageBatch, UsageInterval } from '../../schemas/records.js';
import { canonicalSubtype, isMeterCategory } from '../../schemas/taxonomy.js';
import {
  convertUnit,
  lookupUnit,
  resolveUnit,
  toCanonical,
  unitsCompatible,
  type UnitInfo,
} from '../../schemas/units.js';
import { HOUR_MS } from '../../schemas/time.js';
import { isValidTimeZone } from '../aggregate/core/zone.js';
import type { Reject } from '../normalise/types.js';
import { futureEnd, resolveValidateOptions, type ValidateOptions } from './options.js';

export {
  DEFAULT_VALIDATE_OPTIONS,
  futureEnd,
  MAX_FUTURE_MS,
  resolveValidateOptions,
  type ValidateOptions,
} from './options.js';
export type { Reject } from '../normalise/types.js';

const CHANNELS = new Set(['consumption', 'redelivery', 'production', 'cost']);
const ISO_4217 = /^[A-Z]{3}$/;

function whole(code: Reject['code'], message: string): Reject {
  return { code, message, recordIndex: null, detail: null };
}

function isBlank(s: string | null | undefined): boolean {
  return s === undefined || s === null || s.trim() === '';
}

export interface ValidateBatchResult {
  /** The batch with only its valid intervals, values in the meter unit. */
  valid: UsageBatch;
  rejects: Reject[];
}

/**
 * The first rule an interval fails, or null. `unit` is the batch unit when the registry knows it;
 * `now` the clock read once per batch.
 */
function checkInterval(
  iv: UsageInterval,
  unit: UnitInfo | undefined,
  opts: ValidateOptions,
  now: number,
): Pick<Reject, 'code' | 'message'> | null {
  if (!CHANNELS.has(iv.channel))
    return {
      code: 'VAL_REQUIRED_FIELD',
      message: `channel "${String(iv.channel)}" is not one of ${[...CHANNELS].join(', ')}`,
    };
  for (const [name, v] of [
    ['start', iv.start],
    ['end', iv.end],
    ['value', iv.value],
  ] as const) {
    if (typeof v !== 'number') return { code: 'VAL_REQUIRED_FIELD', message: `${name} is missing` };
    if (!Number.isFinite(v)) return { code: 'VAL_NOT_FINITE', message: `${name} is ${String(v)}` };
  }
  if (!(iv.end > iv.start)) {
    return {
      code: 'VAL_END_NOT_AFTER_START',
      message: `end ${new Date(iv.end).toISOString()} is not after start ${new Date(iv.start).toISOString()}`,
    };
  }
  const future = futureEnd(iv.end, now, opts.maxFutureMs);
  if (future) return future;
  if (iv.channel === 'cost') {
    if (isBlank(iv.currency))
      return { code: 'VAL_CURRENCY_MISSING', message: `cost ${iv.value} has no currency` };
    if (!ISO_4217.test(iv.currency ?? ''))
      return {
        code: 'VAL_CURRENCY_INVALID',
        message: `currency "${iv.currency}" is not an ISO 4217 code (three capital letters)`,
      };
    // A negative cost is a credit: allowed.
    return null;
  }
  if (iv.value < 0)
    return { code: 'VAL_NEGATIVE_CONSUMPTION', message: `${iv.channel} ${iv.value} is negative` };
  // Unknown units have no scale, so no magnitude can be judged for them.
  if (unit?.dimension && unit.factor !== null) {
    const canonical = iv.value * unit.factor;
    const hours = (iv.end - iv.start) / HOUR_MS;
    const limit = opts.maxPerHour[unit.dimension] * Math.max(hours, opts.minPlausibilityHours);
    if (canonical > limit) {
      return {
        code: 'VAL_IMPLAUSIBLE_MAGNITUDE',
        message: `${iv.channel} ${iv.value} ${unit.symbol} over ${hours.toFixed(2)} h exceeds the plausible ${limit} ${unit.canonical}`,
      };
    }
  }
  return null;
}

export function validateBatch(
  batch: UsageBatch,
  meter: Meter | undefined,
  options: Partial<ValidateOptions> = {},
): ValidateBatchResult {
  const opts = resolveValidateOptions(options);
  const none = (reject: Reject): ValidateBatchResult => ({
    valid: { ...batch, intervals: [] },
    rejects: [reject],
  });
  if (!meter)
    return none(
      whole(
        'VAL_UNKNOWN_METER',
        `meter ${batch.meter_external_id} of connection ${batch.connection_id} is not known`,
      ),
    );
  for (const [name, v] of [
    ['connection_id', batch.connection_id],
    ['meter_external_id', batch.meter_external_id],
    ['unit', batch.unit],
  ] as const) {
    if (isBlank(v)) return none(whole('VAL_REQUIRED_FIELD', `batch ${name} is missing`));
  }
  if (!isValidTimeZone(batch.time_zone))
    return none(whole('VAL_INVALID_TIME_ZONE', `time zone "${batch.time_zone}" is not a valid IANA zone`));
  if (!unitsCompatible(batch.unit, meter.unit)) {
    return none(
      whole(
        'VAL_UNIT_CONFLICT',
        `usage unit "${batch.unit}" is not convertible to the unit "${meter.unit}" of meter ${meter.external_id}`,
      ),
    );
  }
  const factor = convertUnit(1, batch.unit, meter.unit) ?? 1;
  const sameUnit = resolveUnit(batch.unit).symbol === resolveUnit(meter.unit).symbol;
  const unitInfo = lookupUnit(batch.unit);
  const meterUnit = resolveUnit(meter.unit);

  const rejects: Reject[] = [];
  const intervals: UsageInterval[] = [];
  const now = opts.now();
  batch.intervals.forEach((iv, index) => {
    const failure = checkInterval(iv, unitInfo, opts, now);
    if (failure) {
      rejects.push({ ...failure, recordIndex: index, detail: JSON.stringify(iv) });
      return;
    }
    if (iv.channel === 'cost') {
      intervals.push({ ...iv, value_canonical: null });
      return;
    }
    // Values travel in the meter's unit from here on, so aggregates never mix units.
    const value = sameUnit ? iv.value : iv.value * factor;
    intervals.push({ ...iv, value, value_canonical: toCanonical(value, meterUnit.symbol) });
  });
  return {
    valid: { ...batch, unit: meterUnit.symbol, canonical_unit: meterUnit.canonical, intervals },
    rejects,
  };
}

export function validateMeter(meter: Meter): Reject[] {
  const rejects: Reject[] = [];
  for (const [name, v] of [
    ['connection_id', meter.connection_id],
    ['external_id', meter.external_id],
    ['asset_external_id', meter.asset_external_id],
    ['unit', meter.unit],
  ] as const) {
    if (isBlank(v))
      rejects.push(
        whole('VAL_REQUIRED_FIELD', `meter ${meter.external_id || '(no id)'}: ${name} is missing`),
      );
  }
  if (!isMeterCategory(meter.meter_type)) {
    rejects.push(
      whole(
        'NORM_METER_TYPE_UNMAPPED',
        `meter ${meter.external_id}: meter type "${String(meter.meter_type)}" is not Energy, Water or Waste`,
      ),
    );
  } else if (
    meter.meter_subtype !== null &&
    canonicalSubtype(meter.meter_type, meter.meter_subtype) !== meter.meter_subtype
  ) {
    rejects.push(
      whole(
        'NORM_METER_TYPE_UNMAPPED',
        `meter ${meter.external_id}: "${meter.meter_subtype}" is not a ${meter.meter_type} sub-category of the taxonomy`,
      ),
    );
  }
  if (meter.time_zone !== null && !isValidTimeZone(meter.time_zone)) {
    rejects.push(
      whole(
        'VAL_INVALID_TIME_ZONE',
        `meter ${meter.external_id}: time zone "${meter.time_zone}" is not a valid IANA zone`,
      ),
    );
  }
  if (meter.rollover_value !== null && !(Number.isFinite(meter.rollover_value) && meter.rollover_value > 0)) {
    rejects.push(
      whole(
        'VAL_NOT_FINITE',
        `meter ${meter.external_id}: rollover value ${meter.rollover_value} is not a positive finite number`,
      ),
    );
  }
  return rejects;
}

export function validateAsset(asset: Asset): Reject[] {
  const rejects: Reject[] = [];
  for (const [name, v] of [
    ['connection_id', asset.connection_id],
    ['external_id', asset.external_id],
    ['name', asset.name],
  ] as const) {
    if (isBlank(v))
      rejects.push(
        whole('VAL_REQUIRED_FIELD', `asset ${asset.external_id || '(no id)'}: ${name} is missing`),
      );
  }
  return rejects;
}
