/**
 * Plausibility limits of validation, all in one place with their units. A value above its limit is
 * VAL_IMPLAUSIBLE_MAGNITUDE: almost always a unit mix-up (Wh reported as kWh) or a corrupted
 * register, and far above any single building meter.
 */
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
}

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
};

export function resolveValidateOptions(partial: Partial<ValidateOptions> = {}): ValidateOptions {
  return {
    maxPerHour: { ...DEFAULT_VALIDATE_OPTIONS.maxPerHour, ...partial.maxPerHour },
    minPlausibilityHours: partial.minPlausibilityHours ?? DEFAULT_VALIDATE_OPTIONS.minPlausibilityHours,
  };
}
