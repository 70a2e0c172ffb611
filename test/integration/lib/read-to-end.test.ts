/**
 * Reading topics to their end and measuring lag on the real Kafka: a read stops at each
 * partition's last stable offset as soon as the position reached it (transaction markers and
 * aborted records included), its deadline covers connecting and joining, and lag does not count
 * the commit markers a transactional reader leaves behind its committed offset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { createKafka, committedLag, ensureTopics, groupLag, readToEnd } from '../../../lib/kafka.js';
import { MeterflowError } from '../../../lib/errors.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';

let ctx: TestContext;
const t = (name: string): string => `${ctx.config.kafka.topicPrefix}${name}`;

async function transaction(
  kafka: Kafka,
  topic: string,
  records: { partition: number; key: string }[],
  end: 'commit' | 'abort' | 'open',
): Promise<() => Promise<void>> {
  const producer = kafka.producer({
    transactionalId: `${topic}-${Math.random().toString(36).slice(2)}`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const trx = await producer.transaction();
  await trx.send({ topic, messages: records.map((r) => ({ ...r, value: `{"k":"${r.key}"}` })) });
  if (end === 'commit') await trx.commit();
  if (end === 'abort') await trx.abort();
  const close = async (): Promise<void> => {
    if (end === 'open') await trx.abort().catch(() => undefined);
    await producer.disconnect();
  };
  if (end !== 'open') await close();
  return close;
}

async function timedRead(
  topic: string,
  partitions?: number[],
): Promise<{ n: number; ms: number; keys: string[] }> {
  const keys: string[] = [];
  const started = Date.now();
  const n = await readToEnd(ctx.kafka, topic, (m) => void keys.push(m.key!.toString()), {
    ...(partitions ? { partitions } : {}),
  });
  return { n, ms: Date.now() - started, keys };
}

/** A commit returns before its markers are written: waits until the topic's ends are these. */
async function settled(topic: string, highs: Record<number, number>): Promise<void> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    for (let i = 0; i < 100; i++) {
      const ends = await admin.fetchTopicOffsets(topic);
      if (ends.every((e) => Number(e.high) === (highs[e.partition] ?? 0))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${topic} did not reach ${JSON.stringify(highs)}`);
  } finally {
    await admin.disconnect();
  }
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 3 });
  const admin = ctx.kafka.admin();
  await admin.connect();
  await ensureTopics(
    admin,
    ctx.config,
    ['empty', 'small', 'markers', 'open', 'lag'].map((name) => ({ name: t(name), cleanup: 'compact' })),
  );
  await admin.disconnect();
});
afterAll(async () => {
  await ctx.cleanup();
});

describe('readToEnd', () => {
  it('finishes an empty, a small transactional and a markers-only changelog in well under 2 s', async () => {
    // small: 4 committed transactions of 3 records on partition 0, partitions 1 and 2 empty.
    for (let i = 0; i < 4; i++)
      await transaction(
        ctx.kafka,
        t('small'),
        [0, 1, 2].map((j) => ({ partition: 0, key: `k${i}${j}` })),
        'commit',
      );
    // markers: partition 0 holds only aborted records and their marker; partition 1 one record.
    await transaction(
      ctx.kafka,
      t('markers'),
      [
        { partition: 0, key: 'x' },
        { partition: 0, key: 'y' },
      ],
      'abort',
    );
    await transaction(ctx.kafka, t('markers'), [{ partition: 1, key: 'z' }], 'commit');

    await settled(t('small'), { 0: 16 });
    await settled(t('markers'), { 0: 3, 1: 2 });
    const timings: Record<string, number> = {};
    const empty = await timedRead(t('empty'));
    expect(empty.n).toBe(0);
    timings.empty = empty.ms;
    const small = await timedRead(t('small'));
    expect(small.keys).toEqual([
      'k00',
      'k01',
      'k02',
      'k10',
      'k11',
      'k12',
      'k20',
      'k21',
      'k22',
      'k30',
      'k31',
      'k32',
    ]);
    timings.small = small.ms;
    const smallP2 = await timedRead(t('small'), [2]);
    expect(smallP2.n).toBe(0);
    timings['small partition 2'] = smallP2.ms;
    const markersP0 = await timedRead(t('markers'), [0]);
    expect(markersP0.n).toBe(0);
    timings['aborted+marker only'] = markersP0.ms;
    const markers = await timedRead(t('markers'));
    expect(markers.keys).toEqual(['z']);
    timings.markers = markers.ms;
    console.log(`readToEnd timings (ms): ${JSON.stringify(timings)}`);
    for (const [name, ms] of Object.entries(timings)) expect(ms, name).toBeLessThan(2_000);
  });

  it('reads to the last stable offset while a transaction is open, and stops there promptly', async () => {
    await transaction(
      ctx.kafka,
      t('open'),
      [
        { partition: 0, key: 'a' },
        { partition: 0, key: 'b' },
      ],
      'commit',
    );
    const closeOpen = await transaction(ctx.kafka, t('open'), [{ partition: 0, key: 'pending' }], 'open');
    try {
      const read = await timedRead(t('open'));
      expect(read.keys).toEqual(['a', 'b']);
      expect(read.ms).toBeLessThan(2_000);
    } finally {
      await closeOpen();
    }
  });

  it('its deadline covers connecting: a broker that accepts and never answers fails in time', async () => {
    const [host, port] = ctx.config.kafka.brokers[0]!.split(':');
    const proxy: TcpProxy = await startTcpProxy({ host: host!, port: Number(port) });
    try {
      await proxy.cut('blackhole');
      const kafka = createKafka(
        { ...ctx.config, kafka: { ...ctx.config.kafka, brokers: [`127.0.0.1:${proxy.port}`] } },
        '-blackhole',
      );
      let started = Date.now();
      const timedOut = await readToEnd(kafka, t('small'), () => undefined, { timeoutMs: 1_500 }).catch(
        (e: unknown) => e,
      );
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(timedOut).toBeInstanceOf(MeterflowError);
      expect((timedOut as MeterflowError).code).toBe('RT_STATE_RESTORE');

      // A caller's signal (a command's deadline) ends it with the caller's reason.
      const reason = new MeterflowError('CLI_TIMEOUT', 'command deadline');
      started = Date.now();
      const aborted = await readToEnd(kafka, t('small'), () => undefined, {
        signal: AbortSignal.timeout(1_000),
      }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(3_500);
      expect((aborted as Error).name).toBe('TimeoutError');
      const controller = new AbortController();
      setTimeout(() => controller.abort(reason), 500);
      await expect(readToEnd(kafka, t('small'), () => undefined, { signal: controller.signal })).rejects.toBe(
        reason,
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('committedLag', () => {
  it('is 0 for a group that read all of a transactional topic, where offsets alone say 1 per partition', async () => {
    const topic = t('lag');
    for (let i = 0; i < 3; i++)
      await transaction(
        ctx.kafka,
        topic,
        [0, 1].map((p) => ({ partition: p, key: `r${i}${p}` })),
        'commit',
      );
    await settled(topic, { 0: 6, 1: 6 });
    // The group commits the offset after the last record it read, as the stages do.
    const groupId = `${ctx.config.kafka.topicPrefix}lag-reader`;
    const last = new Map<number, bigint>();
    await readToEnd(ctx.kafka, topic, (m) => void last.set(m.partition, BigInt(m.offset)));
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      await admin.setOffsets({
        groupId,
        topic,
        partitions: [...last].map(([partition, o]) => ({ partition, offset: String(o + 1n) })),
      });
      expect((await groupLag(admin, groupId, topic)).reduce((n, p) => n + p.lag, 0)).toBe(2);
      const lag = await committedLag(ctx.kafka, admin, groupId, topic);
      expect(lag.map((p) => p.lag)).toEqual([0, 0, 0]);

      // Two more committed records on partition 1 are lag again: 2 records (and their marker).
      await transaction(
        ctx.kafka,
        topic,
        [
          { partition: 1, key: 'n1' },
          { partition: 1, key: 'n2' },
        ],
        'commit',
      );
      await settled(topic, { 0: 6, 1: 9 });
      const behind = await committedLag(ctx.kafka, admin, groupId, topic);
      expect(behind.find((p) => p.partition === 1)!.lag).toBe(3);
      expect(behind.filter((p) => p.partition !== 1).map((p) => p.lag)).toEqual([0, 0]);
    } finally {
      await admin.disconnect();
    }
  });
});
