/**
 * AggregateState: validated usage batches in, changed day and month aggregates out, with a
 * compact changelog so that a restarted instance continues exactly where the committed state was.
 * Pure (the clock is a parameter), no Kafka.
 *
 * Usage by the stage:
 *   const { aggregates, rejects } = state.apply(batch, now);   // per input message
 *   for (const e of state.snapshotDirty()) changelog(e.key, e.value);   // per transaction
 *   state.restore({ key, value })                               // per changelog record on start
 */
import type { UsageAggregate, UsageBatch, UsageChannel, UsageInterval } from '../../../schemas/records.js';
import { convertUnit, resolveUnit, unitsCompatible } from '../../../schemas/units.js';
import type { Reject } from '../../normalise/types.js';
import { futureEnd, MAX_FUTURE_MS } from '../../validate/options.js';
import { ChannelState, channelKey, type ChannelIdentity } from './channel.js';
import { decodeEntry, KIND_DAY } from './codec.js';
import { dateToDayNo, isValidTimeZone } from './zone.js';

export interface ChangelogEntry {
  /** `${connection_id}/${meter_external_id}|${channel}|D|YYYY-MM-DD` or `...|M|YYYY-MM`. */
  key: string;
  /** Binary state of the day or month (see codec.ts); null = tombstone. */
  value: Buffer | null;
}

export interface ApplyResult {
  /** Day and month aggregates that changed, each with a new version. */
  aggregates: UsageAggregate[];
  /** Intervals the state refused (should not happen after validate; never dropped silently). */
  rejects: Reject[];
}

export interface AggregateOptions {
  /**
   * Local months kept in memory before the month of a meter-channel's latest data (default 25:
   * two years of corrections and year-over-year bills). Older months are evicted and deleted from
   * the changelog; an interval starting before the kept range is refused with
   * AGG_LATE_BEYOND_RETENTION, since re-aggregating a month from part of its slots would emit a
   * wrong total. Infinity keeps everything (memory then grows with history).
   */
  retentionMonths: number;
  /**
   * Latest accepted interval end after `now`, in ms (default: validate's 2 days). Validate refuses
   * such intervals first; refusing them here too means no path can move a channel's retention
   * clock to a far-future date and evict its real months.
   */
  maxFutureMs: number;
}

export const DEFAULT_AGGREGATE_OPTIONS: AggregateOptions = {
  retentionMonths: 25,
  maxFutureMs: MAX_FUTURE_MS,
};

const CHANNELS: ReadonlySet<string> = new Set<UsageChannel>([
  'consumption',
  'redelivery',
  'production',
  'cost',
]);

export class AggregateState {
  private readonly options: AggregateOptions;
  private readonly channels = new Map<string, ChannelState>();
  /** Channels with changelog entries to write. */
  private readonly dirty = new Set<ChannelState>();
  /** Channels restored since the last refresh of their caches. */
  private readonly restored = new Set<ChannelState>();
  /** Keys to delete from the changelog (a channel rebuilt in a new zone). */
  private readonly tombstones = new Set<string>();

  constructor(options: Partial<AggregateOptions> = {}) {
    this.options = { ...DEFAULT_AGGREGATE_OPTIONS, ...options };
  }

  /** Number of meter-channels held. */
  get size(): number {
    return this.channels.size;
  }

  private finishRestore(): void {
    if (this.restored.size === 0) return;
    for (const ch of this.restored) {
      ch.refreshAfterRestore();
      for (const key of ch.evict(this.options.retentionMonths)) this.tombstones.add(key);
    }
    this.restored.clear();
  }

  private channelFor(batch: UsageBatch, channel: UsageChannel, unit: string): ChannelState {
    const id: ChannelIdentity = {
      connection_id: batch.connection_id,
      meter_external_id: batch.meter_external_id,
      channel,
    };
    const key = channelKey(id);
    let ch = this.channels.get(key);
    if (ch && ch.zone !== batch.time_zone) ch = this.rebuildInZone(ch, batch.time_zone);
    if (!ch) {
      ch = new ChannelState(id, batch.time_zone, unit);
      this.channels.set(key, ch);
    }
    return ch;
  }

  /**
   * The meter's zone changed: local days move, so rebuild the channel from its slots in the new
   * zone. Every day and month is emitted again with versions above all old ones, as zero where
   * the new zone puts no data (else the old zone's aggregate would stay the latest of its key);
   * old day keys the new zone does not rewrite are deleted from the changelog.
   */
  private rebuildInZone(old: ChannelState, zone: string): ChannelState {
    const fresh = new ChannelState(old.id, zone, old.unit);
    fresh.versionFloor = old.maxVersion();
    old.forEachSlot((start, end, value, estimated) => fresh.write(start, end, value, estimated));
    fresh.supersede(old);
    if (!Number.isNaN(old.days.first)) {
      for (let d = old.days.first; d <= old.days.last; d++) this.tombstones.add(old.dayKey(d));
    }
    for (const m of old.months.keys()) this.tombstones.add(old.monthKey(m));
    this.channels.set(old.key, fresh);
    this.dirty.delete(old);
    this.dirty.add(fresh);
    return fresh;
  }

  apply(batch: UsageBatch, now: number): ApplyResult {
    this.finishRestore();
    const rejects: Reject[] = [];
    if (!isValidTimeZone(batch.time_zone)) {
      rejects.push({
        code: 'VAL_INVALID_TIME_ZONE',
        message: `time zone "${batch.time_zone}" is not a valid IANA zone`,
        recordIndex: null,
        detail: null,
      });
      return { aggregates: [], rejects };
    }
    const touched = new Set<ChannelState>();
    // Resolved once per batch: the unit fold and the channel lookup are too slow per interval.
    const energyUnit = resolveUnit(batch.unit).symbol;
    const byChannel = new Map<string, ChannelState>();
    const intervals = batch.intervals;
    for (let index = 0; index < intervals.length; index++) {
      const iv = intervals[index]!;
      const problem = this.check(iv) ?? futureEnd(iv.end, now, this.options.maxFutureMs);
      if (problem) {
        rejects.push({ ...problem, recordIndex: index, detail: JSON.stringify(iv) });
        continue;
      }
      const unit = iv.channel === 'cost' ? (iv.currency ?? '') : energyUnit;
      const cacheKey = iv.channel === 'cost' ? `cost|${unit}` : iv.channel;
      let ch = byChannel.get(cacheKey);
      if (!ch) {
        ch = this.channelFor(batch, iv.channel, unit);
        byChannel.set(cacheKey, ch);
      }
      if (iv.start < ch.evictedBefore) {
        rejects.push({
          code: 'AGG_LATE_BEYOND_RETENTION',
          message: `interval starting ${new Date(iv.start).toISOString()} is before the kept aggregation state (from ${new Date(ch.evictedBefore).toISOString()})`,
          recordIndex: index,
          detail: JSON.stringify(iv),
        });
        continue;
      }
      let value = iv.value;
      if (unit !== ch.unit) {
        // The meter's unit changed between batches: convert when possible, never mix units.
        const converted =
          iv.channel === 'cost' || !unitsCompatible(unit, ch.unit) ? null : convertUnit(value, unit, ch.unit);
        if (converted === null) {
          rejects.push({
            code: 'VAL_UNIT_CONFLICT',
            message: `${iv.channel} in "${unit}" cannot be added to aggregates kept in "${ch.unit}"`,
            recordIndex: index,
            detail: JSON.stringify(iv),
          });
          continue;
        }
        value = converted;
      }
      ch.write(iv.start, iv.end, value, iv.estimated);
      touched.add(ch);
    }
    const aggregates: UsageAggregate[] = [];
    for (const ch of touched) {
      for (const agg of ch.collect(now)) aggregates.push(agg);
      for (const key of ch.evict(this.options.retentionMonths)) this.tombstones.add(key);
      this.dirty.add(ch);
    }
    return { aggregates, rejects };
  }

  private check(iv: UsageInterval): Pick<Reject, 'code' | 'message'> | null {
    if (!CHANNELS.has(iv.channel))
      return { code: 'VAL_REQUIRED_FIELD', message: `unknown channel "${String(iv.channel)}"` };
    if (!Number.isFinite(iv.start) || !Number.isFinite(iv.end) || !Number.isFinite(iv.value)) {
      return { code: 'VAL_NOT_FINITE', message: `interval has a non-finite start, end or value` };
    }
    if (!(iv.end > iv.start))
      return { code: 'VAL_END_NOT_AFTER_START', message: 'interval end is not after its start' };
    if (iv.channel === 'cost' && !iv.currency)
      return { code: 'VAL_CURRENCY_MISSING', message: 'cost without currency' };
    return null;
  }

  /** Changelog entries for everything changed since the last call (days, months, deletions). */
  snapshotDirty(): ChangelogEntry[] {
    this.finishRestore();
    const written: ChangelogEntry[] = [];
    for (const ch of this.dirty) {
      for (const d of [...ch.dirtyDays].sort((a, b) => a - b))
        written.push({ key: ch.dayKey(d), value: ch.encodeDay(d) });
      for (const m of [...ch.dirtyMonths].sort((a, b) => a - b))
        written.push({ key: ch.monthKey(m), value: ch.encodeMonth(m) });
      ch.dirtyDays.clear();
      ch.dirtyMonths.clear();
    }
    // Keys of a rebuilt channel that the new zone does not rewrite are deleted first.
    const rewritten = new Set(written.map((e) => e.key));
    const deletions = [...this.tombstones]
      .filter((k) => !rewritten.has(k))
      .map((key) => ({ key, value: null }));
    this.dirty.clear();
    this.tombstones.clear();
    return [...deletions, ...written];
  }

  /** Apply one changelog record (in offset order). Caches are refreshed on the next use. */
  restore(entry: ChangelogEntry): void {
    if (entry.value === null) {
      this.restoreTombstone(entry.key);
      return;
    }
    const e = decodeEntry(entry.value);
    const id: ChannelIdentity = {
      connection_id: e.connection_id,
      meter_external_id: e.meter_external_id,
      channel: e.channel,
    };
    const key = channelKey(id);
    let ch = this.channels.get(key);
    if (!ch || ch.zone !== e.zone) {
      // A zone rebuild rewrote every day: the newest entries carry the current zone.
      ch = new ChannelState(id, e.zone, e.unit);
      this.channels.set(key, ch);
    }
    if (e.kind === KIND_DAY) ch.restoreDay(e);
    else ch.restoreMonth(e.monthNo, e.version);
    this.restored.add(ch);
  }

  private restoreTombstone(key: string): void {
    // key = <channel key>|D|YYYY-MM-DD or <channel key>|M|YYYY-MM; the channel key may contain '|'.
    const m = /^(.*)\|([DM])\|([0-9-]+)$/.exec(key);
    if (!m) return;
    const ch = this.channels.get(m[1]!);
    if (!ch) return;
    if (m[2] === 'D') {
      const day = dateToDayNo(m[3]!);
      if (!Number.isNaN(day)) ch.clearDay(day);
    } else {
      const [y, mo] = m[3]!.split('-').map(Number);
      if (y !== undefined && mo !== undefined) ch.months.delete(y * 12 + mo - 1);
    }
    this.restored.add(ch);
  }

  /** Forget everything (the partition was revoked). */
  clear(): void {
    this.channels.clear();
    this.dirty.clear();
    this.restored.clear();
    this.tombstones.clear();
  }
}
