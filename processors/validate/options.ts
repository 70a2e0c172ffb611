/**
 * Plausibility limits of validation, all in one place with their units. A value above its limit is
 * VAL_IMPLAUSIBLE_MAGNITUDE: almost always a unit mix-up (Wh reported as kWh) or a corrupted
 * register, and far above any single building meter. An interval ending too far after now is
 * VAL_TIMESTAMP_FUTURE.
 */
import type { Reject } from '../normalise/types.js';
import { DAY_MS, HOUR_MS } from '../../schemas/time.js';
import type { UnitDimension } from '../../schemas/units.js';

export interface ValidateOptions {
  /**
   * Largest plausible value per hour of interval, in the canonical unit of the dimension
   * (kWh/h, m3/h, kg/h), for one meter. Intervals shorter than `minPlausibilityHours` are judged
   * as if they lasted that long, so a one-second interval does not get a one-second allowance.
   */
  maxPerHour: Record<UnitDimension, number>;
  /** Shortest interval duration used for the per-hour limit, in hours (default 0.25 = 15 min). */
  minPlausibilityHours: number;
  /**
   * How far past `now` an interval may end, in ms (default 2 days: a provider clock a little ahead,
   * a day-ahead schedule). Later ends are VAL_TIMESTAMP_FUTURE: a 2099 typo would otherwise move the
   * aggregation clock and evict the meter's real state.
   */
  maxFutureMs: number;
  /** The clock, epoch ms (injected by tests). */
  now: () => number;
}

/** Default of `maxFutureMs`; the aggregator applies the same bound (processors/aggregate). */
export const MAX_FUTURE_MS = 2 * DAY_MS;

export const DEFAULT_VALIDATE_OPTIONS: ValidateOptions = {
  maxPerHour: {
    // 1 GWh per hour = a 1 GW continuous load; the largest sites draw a few hundred MW.
    energy: 1_000_000,
    // 100,000 m3 per hour of water or gas.
    volume: 100_000,
    // 1,000 t per hour of waste or fuel.
    mass: 1_000_000,
  },
  minPlausibilityHours: 0.25,
  maxFutureMs: MAX_FUTURE_MS,
  now: Date.now,
};

export function resolveValidateOptions(partial: Partial<ValidateOptions> = {}): ValidateOptions {
  return {
    maxPerHour: { ...DEFAULT_VALIDATE_OPTIONS.maxPerHour, ...partial.maxPerHour },
    minPlausibilityHours: partial.minPlausibilityHours ?? DEFAULT_VALIDATE_OPTIONS.minPlausibilityHours,
    maxFutureMs: partial.maxFutureMs ?? DEFAULT_VALIDATE_OPTIONS.maxFutureMs,
    now: partial.now ?? DEFAULT_VALIDATE_OPTIONS.now,
  };
}

/**
 * VAL_TIMESTAMP_FUTURE when `end` is more than `maxFutureMs` after `now`, else null. Validate and
 * the aggregator (which must never let such an end move its retention clock) both use it.
 */
export function futureEnd(
  end: number,
  now: number,
  maxFutureMs: number,
): Pick<Reject, 'code' | 'message'> | null {
  if (end <= now + maxFutureMs) return null;
  return {
    code: 'VAL_TIMESTAMP_FUTURE',
    message: `end ${new Date(end).toISOString()} is more than ${maxFutureMs / HOUR_MS} h after now (${new Date(now).toISOString()}): a wrong year or clock at the provider?`,
  };
}
