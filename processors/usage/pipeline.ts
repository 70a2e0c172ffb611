/**
 * The usage stage's pure chain for one chunk of a known meter: normalise, difference register
 * readings against the meter's last reading (with its rollover value), validate. UsageStage runs
 * it per message; `meterflow reconcile` runs it over a provider's answers in memory
 * (usageMonthTotals), so the checker cannot drift from what it checks.
 *
 * Two steps, because the stage decides between them whether a chunk's readings were already
 * differenced (a replay) and then stops.
 */
import type { ConnectionConfig } from '../../schemas/connection.js';
import type { Meter, RawEnvelope, UsageAggregate, UsageBatch } from '../../schemas/records.js';
import { AggregateState } from '../aggregate/core/index.js';
import { normalise, type Reading, type Reject } from '../normalise/index.js';
import { differenceReadings, type LastReading } from '../readings/index.js';
import { validateBatch } from '../validate/index.js';

export interface NormalisedChunk {
  /** The chunk's header and intervals; null when it holds nothing to load. */
  batch: UsageBatch | null;
  /** Register readings, still to be differenced. */
  readings: Reading[];
  rejects: Reject[];
  /** The chunk's rows as normalised: each is an interval, a reading or a row-level reject. */
  rows: number;
}

export function normaliseChunk(
  env: RawEnvelope,
  connection: ConnectionConfig | undefined,
  meter: Meter,
): NormalisedChunk {
  const result = normalise(env, { connection, meter });
  const rows =
    (result.batch?.intervals.length ?? 0) +
    result.readings.length +
    result.rejects.filter((r) => r.recordIndex !== null).length;
  return { batch: result.batch, readings: result.readings, rejects: result.rejects, rows };
}

/** Where a cumulative meter wraps to zero: the connection's per-meter value, the meter's, the default. */
export function rolloverOf(connection: ConnectionConfig | undefined, meter: Meter): number | undefined {
  return (
    connection?.rollover.meters[meter.external_id] ?? meter.rollover_value ?? connection?.rollover.default
  );
}

export interface CompletedChunk {
  /** The batch with only its valid intervals (readings differenced into intervals first). */
  valid: UsageBatch;
  /** Reading events, then validation rejects. */
  rejects: Reject[];
  /** The meter's last reading after this chunk; undefined when none is left. */
  last: LastReading | undefined;
}

/** Differences the chunk's readings from `last` (when it has readings) and validates the batch. */
export function completeChunk(
  batch: UsageBatch,
  readings: Reading[],
  context: { connection: ConnectionConfig | undefined; meter: Meter; last: LastReading | undefined },
): CompletedChunk {
  const { connection, meter } = context;
  let last = context.last;
  let withReadings = batch;
  const rejects: Reject[] = [];
  if (readings.length > 0) {
    const rollover = rolloverOf(connection, meter);
    const diff = differenceReadings(
      last,
      readings,
      rollover === undefined ? {} : { rolloverValue: rollover },
    );
    rejects.push(...diff.events);
    last = diff.last;
    withReadings = { ...batch, intervals: [...batch.intervals, ...diff.intervals] };
  }
  const { valid, rejects: invalid } = validateBatch(withReadings, meter);
  rejects.push(...invalid);
  return { valid, rejects, last };
}

/**
 * Monthly consumption per meter (keyed `meter|YYYY-MM`) from raw provider envelopes, computed with
 * the stream's own code: meters normalised from the entity envelopes, each usage chunk (in time
 * order) through the chain above, then the aggregator. Rejected rows are left out, as the stream
 * quarantines them.
 */
export function usageMonthTotals(
  connection: ConnectionConfig,
  entities: RawEnvelope[],
  usage: RawEnvelope[],
  now: () => number = Date.now,
): Map<string, UsageAggregate> {
  const meters = new Map<string, Meter>();
  for (const e of entities) {
    if (e.entity_kind !== 'meter') continue;
    for (const m of normalise(e, { connection }).meters) meters.set(m.external_id, m);
  }
  const state = new AggregateState();
  const lastReadings = new Map<string, LastReading>();
  const totals = new Map<string, UsageAggregate>();
  const ordered = [...usage].sort((a, b) => (a.meta.range_from ?? '').localeCompare(b.meta.range_from ?? ''));
  for (const env of ordered) {
    const meter = meters.get(env.external_id);
    if (!meter) continue;
    const chunk = normaliseChunk(env, connection, meter);
    if (!chunk.batch) continue;
    const done = completeChunk(chunk.batch, chunk.readings, {
      connection,
      meter,
      last: lastReadings.get(meter.external_id),
    });
    if (chunk.readings.length > 0) {
      if (done.last) lastReadings.set(meter.external_id, done.last);
      else lastReadings.delete(meter.external_id);
    }
    for (const agg of state.apply(done.valid, now()).aggregates) {
      if (agg.granularity === 'month' && agg.channel === 'consumption')
        totals.set(`${agg.meter_external_id}|${agg.period}`, agg);
    }
  }
  return totals;
}
