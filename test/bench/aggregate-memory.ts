/**
 * Memory and throughput of the aggregation core: 1,000 meters × 365 days × 96 quarter-hours
 * (~35M slots) through one AggregateState, in one process.
 *
 *   npx tsx test/bench/aggregate-memory.ts [meters=1000] [days=365] [--zone=Europe/Helsinki] [--snapshot-every=1]
 *
 * Feeds one batch per meter-day (one provider chunk), day by day across all meters like a daily
 * sync, takes a changelog snapshot after every `snapshot-every` batches per meter round (as the
 * stage does per transaction; the entries are dropped here), and samples RSS after every day.
 * Prints intervals/s, aggregates emitted, changelog bytes and peak RSS against the 400 MB target.
 * A benchmark, not a timed test: it reports, it does not assert.
 */
import { AggregateState } from '../../processors/aggregate/core/index.js';
import type { UsageBatch, UsageInterval } from '../../schemas/records.js';
import { calendarFor } from '../../processors/aggregate/core/zone.js';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const flag = (name: string, dflt: string): string =>
  args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const METERS = Number(positional[0] ?? 1000);
const DAYS = Number(positional[1] ?? 365);
const ZONE = flag('zone', 'Europe/Helsinki');
const SNAPSHOT_EVERY = Number(flag('snapshot-every', '1'));
const QUARTER = 15 * 60_000;
const RSS_TARGET_MB = 400;

const cal = calendarFor(ZONE);
const firstDay = Date.UTC(2024, 0, 1) / 86_400_000;
const state = new AggregateState();

let peakRss = process.memoryUsage().rss;
const sample = (): void => {
  const rss = process.memoryUsage().rss;
  if (rss > peakRss) peakRss = rss;
};

function batchFor(meter: number, day: number): UsageBatch {
  const start = cal.dayStart(day);
  const end = cal.dayStart(day + 1);
  const intervals: UsageInterval[] = [];
  // Deterministic kWh values with 3 decimals (as providers send them) and some variety.
  for (let t = start, k = 0; t < end; t += QUARTER, k++) {
    const value = ((meter * 7919 + day * 104_729 + k * 1_299_709) % 100_000) / 1000;
    intervals.push({
      start: t,
      end: t + QUARTER,
      channel: 'consumption',
      value,
      value_canonical: value,
      currency: null,
      estimated: k % 97 === 0,
      from_readings: false,
      metadata: {},
    });
  }
  return {
    connection_id: 'bench',
    provider: 'generic',
    meter_external_id: `m${meter}`,
    sync_run_id: 'bench',
    unit: 'kWh',
    canonical_unit: 'kWh',
    time_zone: ZONE,
    source_topic: '',
    source_partition: -1,
    source_offset: -1,
    intervals,
  };
}

const baseline = process.memoryUsage().rss;
let intervals = 0;
let aggregates = 0;
let changelogBytes = 0;
let changelogEntries = 0;
let busyMs = 0;
const t0 = performance.now();
for (let d = 0; d < DAYS; d++) {
  for (let m = 0; m < METERS; m++) {
    const batch = batchFor(m, firstDay + d);
    const s = performance.now();
    const result = state.apply(batch, Date.now());
    if ((m + 1) % SNAPSHOT_EVERY === 0 || m === METERS - 1) {
      for (const e of state.snapshotDirty()) {
        changelogEntries++;
        changelogBytes += e.value?.length ?? 0;
      }
    }
    busyMs += performance.now() - s;
    intervals += batch.intervals.length;
    aggregates += result.aggregates.length;
    if (result.rejects.length > 0)
      throw new Error(`unexpected rejects: ${JSON.stringify(result.rejects[0])}`);
  }
  sample();
  if ((d + 1) % 73 === 0) {
    console.log(
      `day ${d + 1}/${DAYS}: ${(intervals / 1e6).toFixed(1)}M intervals, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
    );
  }
}
const wallMs = performance.now() - t0;
sample();
if (typeof global.gc === 'function') global.gc();
const settled = process.memoryUsage();

const mb = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MB`;
console.log('--- aggregate-memory ---');
console.log(`meters × days × slots      ${METERS} × ${DAYS} × 96 (${ZONE})`);
console.log(`intervals                  ${intervals.toLocaleString('en-US')}`);
console.log(
  `throughput (apply+snapshot) ${Math.round(intervals / (busyMs / 1000)).toLocaleString('en-US')} intervals/s`,
);
console.log(
  `throughput (incl. batch gen) ${Math.round(intervals / (wallMs / 1000)).toLocaleString('en-US')} intervals/s`,
);
console.log(`aggregates emitted         ${aggregates.toLocaleString('en-US')}`);
console.log(
  `changelog                  ${changelogEntries.toLocaleString('en-US')} entries, ${mb(changelogBytes)}`,
);
console.log(`rss at start               ${mb(baseline)}`);
console.log(
  `peak rss (sampled daily)   ${mb(peakRss)}   target < ${RSS_TARGET_MB} MB: ${peakRss < RSS_TARGET_MB * 2 ** 20 ? 'OK' : 'OVER'}`,
);
console.log(
  `at end                     heap used ${mb(settled.heapUsed)} of ${mb(settled.heapTotal)}, array buffers ${mb(settled.arrayBuffers)}, rss ${mb(settled.rss)}`,
);
console.log(`state                      ${state.size} meter-channels`);
