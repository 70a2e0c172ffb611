/**
 * A quarantine record carries its source message's original bytes, so a source message close to
 * the broker's default limit (1 MiB) makes a record above it. The quarantine topic accepts such
 * records (max.message.bytes), also when it was created before that setting existed: the
 * processors raise it at start. The source here is incompressible bytes that are not Avro.
 */
import { randomBytes } from 'node:crypto';
import { ConfigResourceTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics } from '../../../lib/kafka.js';
import * as processors from '../../../processors/index.js';
import { QUARANTINE_MAX_MESSAGE_BYTES, topicName } from '../../../schemas/topics.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually, produceBytes, readTopic } from '../../support/pipeline.js';

let ctx: TestContext;
let running: processors.Processors | undefined;

beforeAll(() => {
  ctx = createTestContext({ partitions: 1 });
});
afterAll(async () => {
  await running?.stop();
  await ctx.cleanup();
});

async function maxMessageBytes(topic: string): Promise<string | undefined> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    const r = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] }],
      includeSynonyms: false,
    });
    return r.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue;
  } finally {
    await admin.disconnect();
  }
}

describe('a quarantine record of a source message near 1 MiB', () => {
  it('is written, in a quarantine topic created before its size limit was set', async () => {
    const quarantine = topicName(ctx.config.kafka.topicPrefix, 'quarantine');
    // The topic as earlier versions created it: the broker's default message size.
    const admin = ctx.kafka.admin();
    await admin.connect();
    await ensureTopics(admin, ctx.config, [{ name: quarantine, cleanup: 'delete', retentionMs: 86_400_000 }]);
    await admin.disconnect();
    expect(Number(await maxMessageBytes(quarantine))).toBeLessThan(1_100_000);

    running = processors.create({ stages: ['usage'] }, ctx);
    await running.start();
    await running.ready;
    expect(Number(await maxMessageBytes(quarantine))).toBe(QUARANTINE_MAX_MESSAGE_BYTES);

    // Just below the broker's default limit, and incompressible: gzip cannot hide the size.
    const original = randomBytes(1_048_400);
    await produceBytes(ctx, 'rawUsage', [{ key: 'acme/big', value: original }]);
    await produceBytes(ctx, 'rawUsage', [{ key: 'acme/small', value: Buffer.from('not avro either') }]);

    let records: Awaited<ReturnType<typeof readTopic<'quarantine'>>> = [];
    const both = await eventually(
      async () => (records = await readTopic(ctx, 'quarantine')).length >= 2,
      90_000,
      1_000,
    );
    expect(both, records.map((r) => r.key).join(', ')).toBe(true);
    const big = records.find((r) => r.key === 'acme/big')!;
    expect(big.value.reason_code).toBe('NORM_DECODE_FAILED');
    // The original whole, byte for byte: nothing cut.
    expect(big.value.original.equals(original)).toBe(true);
    expect(records.find((r) => r.key === 'acme/small')!.value.original.toString()).toBe('not avro either');

    // The topic's retention set by its earlier creator is kept.
    const r = await (async () => {
      const a = ctx.kafka.admin();
      await a.connect();
      try {
        return await a.describeConfigs({
          resources: [{ type: ConfigResourceTypes.TOPIC, name: quarantine, configNames: ['retention.ms'] }],
          includeSynonyms: false,
        });
      } finally {
        await a.disconnect();
      }
    })();
    expect(r.resources[0]?.configEntries[0]?.configValue).toBe('86400000');
  });
});
