/**
 * Pause reasons of a sink family (sinks/clickhouse/pause-gate.ts) and what the loader tracks of
 * its partitions (partitions.ts): no Kafka needed.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PartitionProgress } from '../../../sinks/clickhouse/partitions.js';
import { PauseGate, type PauseReason } from '../../../sinks/clickhouse/pause-gate.js';

function gate(): { gate: PauseGate; calls: string[] } {
  const calls: string[] = [];
  const g = new PauseGate({
    pause: (r: PauseReason) => calls.push(`pause:${r}`),
    resume: (r: PauseReason) => calls.push(`resume:${r}`),
  });
  return { gate: g, calls };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('PauseGate', () => {
  it('pauses on the first reason and resumes when the last one goes', () => {
    const { gate: g, calls } = gate();
    expect(g.paused).toBe(false);
    g.pause('clickhouse');
    g.pause('buffer');
    g.pause('clickhouse');
    expect(calls).toEqual(['pause:clickhouse']);
    g.resume('clickhouse');
    expect(g.paused).toBe(true);
    expect(calls).toEqual(['pause:clickhouse']);
    g.resume('buffer');
    expect(g.paused).toBe(false);
    expect(calls).toEqual(['pause:clickhouse', 'resume:buffer']);
  });

  it('a reason that does not hold resumes nothing', () => {
    const { gate: g, calls } = gate();
    g.resume('registry');
    g.pause('kafka');
    g.resume('registry');
    expect(calls).toEqual(['pause:kafka']);
    expect(g.paused).toBe(true);
  });

  it('pauseFor lets its reason go after the time', () => {
    vi.useFakeTimers();
    const { gate: g, calls } = gate();
    g.pauseFor('registry', 1_000);
    vi.advanceTimersByTime(999);
    expect(g.paused).toBe(true);
    vi.advanceTimersByTime(1);
    expect(g.paused).toBe(false);
    expect(calls).toEqual(['pause:registry', 'resume:registry']);
  });

  it('once closed (stopping), reasons still go but the topics are never resumed', () => {
    vi.useFakeTimers();
    const { gate: g, calls } = gate();
    g.pauseFor('kafka', 100);
    g.close();
    vi.advanceTimersByTime(100);
    expect(g.paused).toBe(false);
    g.pause('buffer');
    g.resume('buffer');
    expect(calls).toEqual(['pause:kafka', 'pause:buffer']);
  });
});

describe('PartitionProgress', () => {
  it('is read to its end when every assigned partition has no lag left', () => {
    const p = new PartitionProgress();
    expect(p.allReadToEnd()).toBe(true);
    p.assign({ a: [0, 1], b: [3] });
    expect(p.allReadToEnd()).toBe(false);
    p.readTo('a', 0, '0');
    p.readTo('a', 1, '0');
    expect(p.allReadToEnd()).toBe(false);
    p.readTo('b', 3, '0');
    expect(p.allReadToEnd()).toBe(true);
    p.readTo('a', 1, '12');
    expect(p.allReadToEnd()).toBe(false);
  });

  it('a new assignment forgets the lags', () => {
    const p = new PartitionProgress();
    p.assign({ a: [0] });
    p.readTo('a', 0, '0');
    p.assign({ a: [0] });
    expect(p.allReadToEnd()).toBe(false);
  });

  it('learns lags at the join for assigned partitions only, a lag of one as none, never over a batch', () => {
    const p = new PartitionProgress();
    p.assign({ a: [0, 1, 2] });
    p.learnLag('a', 0, [0, 1, 2], 1);
    p.learnLag('a', 1, [0, 1, 2], 0);
    p.readTo('a', 2, '0');
    p.learnLag('a', 2, [0, 1, 2], 500);
    p.learnLag('a', 7, [0, 1, 2], 500);
    expect(p.allReadToEnd()).toBe(true);
    p.learnLag('a', 0, [0, 1, 2], 2);
    expect(p.allReadToEnd()).toBe(true);
    const q = new PartitionProgress();
    q.assign({ a: [0] });
    q.learnLag('a', 0, [0], 2);
    expect(q.allReadToEnd()).toBe(false);
  });

  it('owns its assigned partitions, or every partition before any assignment', () => {
    const p = new PartitionProgress();
    expect(p.owns('a', 5)).toBe(true);
    p.assign({ a: [0] });
    expect(p.owns('a', 0)).toBe(true);
    expect(p.owns('a', 5)).toBe(false);
    expect(p.owns('b', 0)).toBe(false);
  });
});
