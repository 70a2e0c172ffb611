/**
 * readings: cumulative register readings → consumption intervals, by differencing consecutive
 * readings (the platform requirements' "Reading format"; DESIGN.md §4).
 *
 * A decrease is never summed as negative consumption. It is either
 *  - a rollover: the register wrapped at `rolloverValue` and the wrap gives a plausible delta
 *    (rolloverValue - prev + cur, at most `maxRolloverFraction` of the register range) → the
 *    consumption is emitted with metadata {rollover: "true"}; or
 *  - a reset (meter replaced or zeroed): no interval for that span, one VAL_METER_RESET event for
 *    quarantine, and the baseline restarts at the new reading.
 * Pure; the stage keeps `LastReading` per meter in its changelog (it is plain JSON).
 */
import type { UsageInterval } from '../../schemas/records.js';
import type { Reading, Reject } from '../normalise/types.js';

export type { Reading } from '../normalise/types.js';

/** The baseline for the next chunk: the latest reading differenced so far. */
export interface LastReading {
  timestamp: number;
  value: number;
  estimated: boolean;
  /** Time of the earliest reading ever applied: everything from it to `timestamp` is accounted for. */
  first?: number;
}

export interface DifferenceOptions {
  /** Register value at which the meter wraps to zero; without it every decrease is a reset. */
  rolloverValue?: number | undefined;
  /**
   * Largest wrap delta accepted as a rollover, as a fraction of the register range (default 0.5).
   * A register that "wrapped" by more than half its range between two readings is far more likely
   * to have been reset or replaced.
   */
  maxRolloverFraction?: number;
}

export interface DifferenceResult {
  intervals: UsageInterval[];
  last: LastReading | undefined;
  /** Quarantine events: resets and readings that cannot be differenced. */
  events: Reject[];
  /** Older readings consistent with the last one, already accounted for (re-deliveries). */
  covered: number;
}

const DEFAULT_MAX_ROLLOVER_FRACTION = 0.5;

function interval(prev: LastReading, cur: Reading, value: number, rollover: boolean): UsageInterval {
  return {
    start: prev.timestamp,
    end: cur.timestamp,
    channel: 'consumption',
    value,
    // The unit is the batch's; validate fills the canonical value.
    value_canonical: null,
    currency: null,
    estimated: prev.estimated || cur.estimated,
    from_readings: true,
    metadata: rollover ? { rollover: 'true' } : {},
  };
}

function event(code: Reject['code'], message: string, prev: LastReading | undefined, cur: Reading): Reject {
  return {
    code,
    message,
    recordIndex: cur.index,
    detail: JSON.stringify({ previous: prev ?? null, reading: cur }),
  };
}

const iso = (t: number): string => new Date(t).toISOString();

export function differenceReadings(
  prev: LastReading | undefined,
  readings: Reading[],
  opts: DifferenceOptions = {},
): DifferenceResult {
  const rollover =
    opts.rolloverValue !== undefined && Number.isFinite(opts.rolloverValue) && opts.rolloverValue > 0
      ? opts.rolloverValue
      : undefined;
  const maxFraction = opts.maxRolloverFraction ?? DEFAULT_MAX_ROLLOVER_FRACTION;
  // Time order; for equal times, payload order, so the outcome does not depend on the sort.
  const sorted = [...readings].sort((a, b) => a.timestamp - b.timestamp || a.index - b.index);
  const intervals: UsageInterval[] = [];
  const events: Reject[] = [];
  let last = prev ? { ...prev } : undefined;
  let covered = 0;

  for (const cur of sorted) {
    if (!Number.isFinite(cur.value) || !Number.isFinite(cur.timestamp)) {
      events.push(event('VAL_NOT_FINITE', `reading at ${cur.timestamp} has value ${cur.value}`, last, cur));
      continue;
    }
    if (!last) {
      last = { timestamp: cur.timestamp, value: cur.value, estimated: cur.estimated, first: cur.timestamp };
      continue;
    }
    if (cur.timestamp === last.timestamp && cur.value === last.value) continue; // exact duplicate (replay)
    const first = last.first ?? last.timestamp;
    if (cur.timestamp < last.timestamp && cur.timestamp >= first) {
      // Inside the span already differenced: a re-delivery (a backfill or a re-poll), also of
      // readings from before a reset. That consumption is already emitted; differencing it again
      // would put a second, differently bounded interval over the same time.
      covered++;
      continue;
    }
    if (cur.timestamp <= last.timestamp) {
      // Only the last reading is kept, so an older or conflicting one cannot be placed: quarantine it.
      events.push(
        event(
          'VAL_READING_OUT_OF_ORDER',
          cur.timestamp < first
            ? `reading ${cur.value} at ${iso(cur.timestamp)} is older than the first reading applied for this meter (${iso(first)}): history before it cannot be differenced onto the running baseline`
            : `reading ${cur.value} at ${iso(cur.timestamp)} conflicts with the last differenced reading ${last.value} at the same time`,
          last,
          cur,
        ),
      );
      continue;
    }
    if (cur.value >= last.value) {
      intervals.push(interval(last, cur, cur.value - last.value, false));
    } else {
      const wrapped =
        rollover !== undefined && last.value <= rollover ? rollover - last.value + cur.value : undefined;
      if (wrapped !== undefined && rollover !== undefined && wrapped <= rollover * maxFraction) {
        intervals.push(interval(last, cur, wrapped, true));
      } else {
        events.push(
          event(
            'VAL_METER_RESET',
            `register fell from ${last.value} at ${iso(last.timestamp)} to ${cur.value} at ${iso(cur.timestamp)}: meter reset` +
              (rollover === undefined
                ? ' (no rollover value configured)'
                : ` (a rollover at ${rollover} would mean ${wrapped ?? 'n/a'})`) +
              '; no consumption emitted for this span, baseline restarts',
            last,
            cur,
          ),
        );
      }
    }
    last = { timestamp: cur.timestamp, value: cur.value, estimated: cur.estimated, first };
  }
  return { intervals, last, events, covered };
}
