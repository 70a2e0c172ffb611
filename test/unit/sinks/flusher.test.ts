/**
 * One flush (sinks/clickhouse/flusher.ts) with a stand-in insert, quarantine writer and commit: the
 * retry of ClickHouse outages with the topics paused, the bisection of refused rows into quarantine
 * records, commits of owned partitions only, and how the drain deadline and its abort end a flush
 * (DrainTimeout, never another try).
 */
import { describe, expect, it } from 'vitest';
import { MeterflowError } from '../../../lib/errors.js';
import { createLogger } from '../../../lib/log.js';
import { RejectedRows } from '../../../schemas/quarantine.js';
import type { QuarantineRecord } from '../../../schemas/records.js';
import type { Entry } from '../../../sinks/clickhouse/entry.js';
import { DrainTimeout, Flusher, type FlushStats } from '../../../sinks/clickhouse/flusher.js';
import type { TopicBinding } from '../../../sinks/clickhouse/families.js';
import { JSON_EACH_ROW, type InsertFn } from '../../../sinks/clickhouse/insert.js';
import { PartitionProgress } from '../../../sinks/clickhouse/partitions.js';
import { PauseGate } from '../../../sinks/clickhouse/pause-gate.js';
import { jsonRows } from '../../../sinks/clickhouse/rows.js';

const log = createLogger('silent');

/** usage_intervals rows as JSON lines here: the flusher only sees rows as bytes. */
const binding: TopicBinding = {
  topic: 'usage',
  table: 'usage_intervals',
  format: JSON_EACH_ROW,
  encode: () => jsonRows([]),
  describe: (row) => row.toString().trimEnd(),
};

function entry(offset: number, lines: string[], partition = 0): Entry {
  const rows = jsonRows(lines.map((line) => ({ ok: true, line })));
  return {
    topic: 't',
    partition,
    offset: String(offset),
    key: Buffer.from('c1/m1'),
    value: Buffer.from(`v${offset}`),
    table: 'usage_intervals',
    binding,
    body: lines.length > 0 ? rows.chunks : null,
    ends: lines.length > 0 ? rows.ends : null,
    rowCount: lines.length,
    rows: lines.length,
    bytes: 0,
    indexes: null,
    problems: null,
    connectionId: 'c1',
  };
}

const unreachable = (): MeterflowError =>
  new MeterflowError('CH_UNREACHABLE', 'connection refused', { retriable: true });

interface Setup {
  insert: InsertFn;
  commit?: (offsets: { topic: string; partition: number; offset: string }[]) => Promise<void>;
  deadline?: () => number;
  abort?: AbortController;
  partitions?: PartitionProgress;
  /** Backoff; a few ms unless a test needs a wait that only an abort ends. */
  waitMs?: number;
  write?: (records: QuarantineRecord[]) => Promise<void>;
}

function setup(s: Setup) {
  const stats: FlushStats = {
    rowsInserted: 0,
    inserts: 0,
    quarantined: 0,
    retries: 0,
    flushes: 0,
    commits: 0,
    lastError: null,
  };
  const gateCalls: string[] = [];
  const gate = new PauseGate({
    pause: (r) => gateCalls.push(`pause:${r}`),
    resume: (r) => gateCalls.push(`resume:${r}`),
  });
  const quarantined: QuarantineRecord[] = [];
  const committed: { topic: string; partition: number; offset: string }[][] = [];
  const abort = s.abort ?? new AbortController();
  const flusher = new Flusher({
    family: 'usage',
    database: 'db',
    insert: s.insert,
    quarantine: {
      write: (records) => {
        if (s.write) return s.write(records);
        quarantined.push(...records);
        return Promise.resolve();
      },
    },
    commitOffsets: async (offsets) => {
      committed.push(offsets);
      await s.commit?.(offsets);
    },
    partitions: s.partitions ?? new PartitionProgress(),
    gate,
    policy: { initialMs: s.waitMs ?? 2, maxMs: s.waitMs ?? 4 },
    signal: abort.signal,
    drainDeadline: s.deadline ?? (() => Infinity),
    stats,
    log,
  });
  return { flusher, stats, gate, gateCalls, quarantined, committed, abort };
}

describe('Flusher', () => {
  it('inserts, then commits the next offset of each partition', async () => {
    const bodies: string[] = [];
    const t = setup({
      insert: (table, body) => {
        bodies.push(`${table}:${Buffer.concat(body).toString()}`);
        return Promise.resolve();
      },
    });
    await t.flusher.flush([entry(4, ['{"a":1}']), entry(9, ['{"a":2}', '{"a":3}']), entry(2, [], 1)]);
    expect(bodies).toEqual(['`db`.usage_intervals:{"a":1}\n{"a":2}\n{"a":3}\n']);
    expect(t.committed).toEqual([
      [
        { topic: 't', partition: 0, offset: '10' },
        { topic: 't', partition: 1, offset: '3' },
      ],
    ]);
    expect(t.stats).toMatchObject({ rowsInserted: 3, inserts: 1, flushes: 1, commits: 1, retries: 0 });
  });

  it('while ClickHouse is unreachable: pauses, retries the same rows, resumes once it answers', async () => {
    let calls = 0;
    const t = setup({
      insert: () => (++calls <= 3 ? Promise.reject(unreachable()) : Promise.resolve()),
    });
    await t.flusher.flush([entry(0, ['{"a":1}'])]);
    expect(calls).toBe(4);
    expect(t.gateCalls).toEqual(['pause:clickhouse', 'resume:clickhouse']);
    expect(t.stats).toMatchObject({
      retries: 3,
      rowsInserted: 1,
      commits: 1,
      lastError: expect.any(String) as unknown,
    });
  });

  it('quarantines each refused row by its record, and stores the rest', async () => {
    const t = setup({
      insert: (_table, body) => {
        const text = Buffer.concat(body).toString();
        return text.includes('bad')
          ? Promise.reject(new Error('Code: 27. DB::Exception: Cannot parse input'))
          : Promise.resolve();
      },
    });
    const refusedEarly = entry(7, []);
    refusedEarly.problems = new Map([['NORM_DECODE_FAILED', new RejectedRows('NORM_DECODE_FAILED')]]);
    refusedEarly.problems.get('NORM_DECODE_FAILED')!.add(null, 'cannot decode', null);
    await t.flusher.flush([
      entry(5, ['{"ok":1}', '{"bad":1}', '{"ok":2}']),
      entry(6, ['{"ok":3}']),
      refusedEarly,
    ]);
    expect(t.quarantined.map((q) => [q.source_offset, q.reason_code, q.record_index])).toEqual([
      [7, 'NORM_DECODE_FAILED', null],
      [5, 'SINK_INSERT_REJECTED', 1],
    ]);
    expect(t.stats).toMatchObject({ rowsInserted: 3, quarantined: 2, commits: 1 });
  });

  it('commits only partitions this member owns', async () => {
    const partitions = new PartitionProgress();
    partitions.assign({ t: [1] });
    const t = setup({ insert: () => Promise.resolve(), partitions });
    await t.flusher.flush([entry(3, ['{}'], 0), entry(8, ['{}'], 1)]);
    expect(t.committed).toEqual([[{ topic: 't', partition: 1, offset: '9' }]]);
  });

  it('a commit that keeps failing is given up after 5 tries: the flush still ends', async () => {
    const t = setup({
      insert: () => Promise.resolve(),
      commit: () => Promise.reject(new Error('rebalancing')),
    });
    await t.flusher.flush([entry(0, ['{}'])]);
    expect(t.committed).toHaveLength(5);
    expect(t.stats).toMatchObject({ commits: 0, flushes: 1 });
  });

  it('a failure that is not retriable ends the flush as it is, uncommitted', async () => {
    const boom = new MeterflowError('CFG_INVALID', 'no quarantine topic');
    const t = setup({ insert: () => Promise.resolve(), write: () => Promise.reject(boom) });
    const refused = entry(0, []);
    refused.problems = new Map([['NORM_DECODE_FAILED', new RejectedRows('NORM_DECODE_FAILED')]]);
    refused.problems.get('NORM_DECODE_FAILED')!.add(null, 'cannot decode', null);
    await expect(t.flusher.flush([refused])).rejects.toBe(boom);
    expect(t.committed).toEqual([]);
  });

  it('past the drain deadline, a retriable failure is a DrainTimeout, without another try', async () => {
    let calls = 0;
    const t = setup({
      insert: () => {
        calls++;
        return Promise.reject(unreachable());
      },
      deadline: () => Date.now() - 1,
    });
    const err = await t.flusher.flush([entry(0, ['{}'])]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DrainTimeout);
    expect((err as Error).message).toMatch(/connection refused$/);
    expect(calls).toBe(1);
    expect(t.committed).toEqual([]);
  });

  it('the drain abort ends a backoff wait at once with DrainTimeout, without another try', async () => {
    let calls = 0;
    const abort = new AbortController();
    const t = setup({
      abort,
      // A long wait: only the abort can end it within the test.
      waitMs: 60_000,
      insert: () => {
        calls++;
        return Promise.reject(unreachable());
      },
    });
    const started = Date.now();
    const p = t.flusher.flush([entry(0, ['{}'])]).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    abort.abort(new DrainTimeout('not drained within 20 ms'));
    const err = await p;
    expect(err).toBeInstanceOf(DrainTimeout);
    expect((err as Error).message).toBe('not drained within 20 ms');
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
