/**
 * normalise: a raw envelope → canonical records, by provider payload format. Pure: no Kafka, no
 * clock, no I/O; the stage decides where results and rejects go.
 *
 * Whole-message outcomes: invalid JSON → NORM_PAYLOAD_JSON; unknown format → NORM_UNKNOWN_FORMAT;
 * a payload not matching its schema → NORM_PAYLOAD_SCHEMA naming the field path. A bad record
 * inside a chunk is one reject with its index and JSON while the others go on.
 */
import type { RawEnvelope } from '../../schemas/records.js';
import {
  normaliseArcadiaIntervals,
  normaliseArcadiaMeter,
  normaliseArcadiaNormalizedIntervals,
  normaliseArcadiaSite,
} from './arcadia.js';
import {
  normaliseEnerkeyFacility,
  normaliseEnerkeyHourly,
  normaliseEnerkeyMeter,
  normaliseEnerkeyMonthly,
  normaliseEnerkeyQuantity,
} from './enerkey.js';
import { normaliseGenericAsset, normaliseGenericMeter, normaliseGenericUsage } from './generic.js';
import { rejectWhole, type NormaliseContext, type NormaliseResult } from './types.js';

export type { NormaliseContext, NormaliseResult, Reading, Reject } from './types.js';
export { ARCADIA_DEFAULT_METER_TYPES } from './arcadia.js';
export { parseTimestamp } from './time.js';

export type Normaliser = (envelope: RawEnvelope, payload: unknown, ctx: NormaliseContext) => NormaliseResult;

/** Every supported `envelope.format`. */
export const NORMALISERS: Readonly<Record<string, Normaliser>> = {
  'arcadia.meter': normaliseArcadiaMeter,
  'arcadia.site': normaliseArcadiaSite,
  'arcadia.intervals': normaliseArcadiaIntervals,
  'arcadia.normalizedIntervals': normaliseArcadiaNormalizedIntervals,
  'enerkey.facility': normaliseEnerkeyFacility,
  'enerkey.meter': normaliseEnerkeyMeter,
  'enerkey.quantity': normaliseEnerkeyQuantity,
  'enerkey.hourly': normaliseEnerkeyHourly,
  'enerkey.monthly': normaliseEnerkeyMonthly,
  'generic.asset': normaliseGenericAsset,
  'generic.meter': normaliseGenericMeter,
  'generic.usage': normaliseGenericUsage,
};

export function normalise(envelope: RawEnvelope, ctx: NormaliseContext = {}): NormaliseResult {
  const normaliser = Object.prototype.hasOwnProperty.call(NORMALISERS, envelope.format)
    ? NORMALISERS[envelope.format]
    : undefined;
  if (!normaliser) return rejectWhole('NORM_UNKNOWN_FORMAT', `no normaliser for format "${envelope.format}"`);
  let payload: unknown;
  try {
    payload = JSON.parse(envelope.payload);
  } catch (err) {
    return rejectWhole(
      'NORM_PAYLOAD_JSON',
      `payload of format ${envelope.format} is not valid JSON: ${(err as Error).message}`,
    );
  }
  return normaliser(envelope, payload, ctx);
}
