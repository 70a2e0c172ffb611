/**
 * The sink quarantines records whose originals are near the broker's default message size, many
 * in one flush: together they are far above what the quarantine topic accepts in one request, so
 * they are written in several. Every one arrives whole, and the sink commits after them.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupLag, readToEnd } from '../../../lib/kafka.js';
import type { QuarantineRecord } from '../../../schemas/records.js';
import { topicName } from '../../../schemas/topics.js';
import * as clickhouse from '../../../sinks/clickhouse/index.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually, produceBytes } from '../../support/pipeline.js';
import { createTopicsWithRetry } from './fixtures.js';

const RECORDS = 10;
const SIZE = 1_000_000;

let ctx: TestContext;
let sink: clickhouse.ClickHouseSink | undefined;

beforeAll(async () => {
  ctx = createTestContext({ partitions: 1 });
  await createTopicsWithRetry(ctx);
});
afterAll(async () => {
  await sink?.stop().catch(() => undefined);
  await ctx.clickhouse().command({ query: `DROP DATABASE IF EXISTS ${ctx.config.clickhouse.database}` });
  await ctx.cleanup();
});

async function sinkQuarantine(): Promise<QuarantineRecord[]> {
  const raw: Buffer[] = [];
  await readToEnd(ctx.kafka, topicName(ctx.config.kafka.topicPrefix, 'quarantine'), (m) => {
    if (m.value) raw.push(m.value);
  });
  return Promise.all(raw.map((v) => ctx.registry.decode<QuarantineRecord>(v)));
}

describe('sink quarantine of large records', () => {
  it('writes 10 records of about 1 MB each from one flush, each whole', async () => {
    // Not Avro: each is quarantined as NORM_DECODE_FAILED with its bytes. One send per record,
    // as any producer near the default limit must.
    const originals = Array.from({ length: RECORDS }, () => randomBytes(SIZE));
    for (const [i, value] of originals.entries())
      await produceBytes(ctx, 'usage', [{ key: `big/m${i}`, value }]);

    const group = `${ctx.config.kafka.topicPrefix}large.`;
    sink = clickhouse.create(
      {
        groupIdPrefix: group,
        families: ['usage'], // One flush once everything is read: all ten quarantine records go out together.
        batchMaxMs: 600_000,
        retryMaxMs: 500,
      },
      { ...ctx },
    );
    await sink.start();

    let records: QuarantineRecord[] = [];
    const all = await eventually(
      async () => (records = await sinkQuarantine()).length >= RECORDS,
      60_000,
      1_000,
    );
    expect(all, `${records.length} records; ${sink.stats()[0]!.lastError ?? ''}`).toBe(true);
    expect(records.map((r) => r.reason_code)).toEqual(Array(RECORDS).fill('NORM_DECODE_FAILED'));
    const bySource = new Map(records.map((r) => [r.source_key, r.original]));
    for (const [i, value] of originals.entries()) expect(bySource.get(`big/m${i}`)?.equals(value)).toBe(true);

    const admin = ctx.kafka.admin();
    await admin.connect();
    const committed = await eventually(
      async () =>
        (await groupLag(admin, `${group}usage`, topicName(ctx.config.kafka.topicPrefix, 'usage'))).every(
          (p) => p.lag === 0,
        ),
      30_000,
      500,
    ).finally(() => admin.disconnect());
    expect(committed).toBe(true);
  });
});
