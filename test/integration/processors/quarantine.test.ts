/**
 * Every kind of bad input yields exactly one quarantine record with its own reason code, the
 * original bytes and its source coordinates (also as headers), and the stream goes on. A message
 * whose rows all fail one rule yields one record, not one per row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionSchema } from '../../../schemas/connection.js';
import { QUARANTINE_HEADERS, topicName } from '../../../schemas/topics.js';
import type { RawEnvelope } from '../../../schemas/records.js';
import * as processors from '../../../processors/index.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { eventually, produceBytes, produceRaw, readTopic } from '../../support/pipeline.js';

const GENERIC = connectionSchema.parse({
  id: 'acme-generic',
  provider: 'generic',
  baseUrls: { production: 'http://127.0.0.1:9' },
  auth: { type: 'none' },
  // No timeZone: local timestamps without offset cannot be placed.
  meterTypes: { electricity: { type: 'Energy', subtype: 'Off-site Electricity' } },
  generic: {
    format: 'json',
    meters: {
      path: '/meters',
      fields: { externalId: 'id', assetId: 'site', type: 'kind', unit: 'unit', timeZone: 'tz' },
    },
    usage: {
      path: '/usage/{meterId}',
      kind: 'consumption',
      fields: { start: 'from', end: 'to', value: 'value', unit: 'unit' },
    },
  },
});

const iso = (ms: number) => new Date(ms).toISOString();
const T = Date.UTC(2024, 5, 1);
const Q = 15 * 60_000;

function env(over: Partial<RawEnvelope>): RawEnvelope {
  return {
    connection_id: 'acme-generic',
    provider: 'generic',
    entity_kind: 'usage',
    format: 'generic.usage',
    external_id: 'm1',
    sync_run_id: 'run-q',
    request_url: 'http://127.0.0.1:9/usage/m1',
    request_page: null,
    received_at: T,
    content_type: 'application/json',
    payload: '[]',
    meta: {},
    ...over,
  };
}

const arcadiaMeter = JSON.stringify({
  id: 'mtr_a',
  serviceType: 'electric',
  site: { id: 's1', siteName: 'Site 1' },
});
function arcadia(readings: unknown, over: Partial<RawEnvelope> = {}): RawEnvelope {
  return env({
    connection_id: 'acme-arcadia',
    provider: 'arcadia',
    format: 'arcadia.intervals',
    external_id: 'mtr_a',
    payload: JSON.stringify({ meterId: 'mtr_a', localTimezone: 'Europe/Helsinki', readings }),
    meta: { meter_format: 'arcadia.meter', meter_payload: arcadiaMeter },
    ...over,
  });
}
const reading = (i: number, kwh: unknown, len = Q) => ({
  startAt: iso(T + i * Q),
  endAt: iso(T + i * Q + len),
  direction: 'import',
  kwh,
  kw: 1,
});

let ctx: TestContext;
let running: processors.Processors;

beforeAll(async () => {
  ctx = createTestContext({ partitions: 2 });
  await ctx.createTopics();
  running = processors.create({ connections: [GENERIC] }, ctx);
  await running.start();
  await running.ready;
});
afterAll(async () => {
  await running?.stop();
  await ctx.cleanup();
});

describe('bad input is quarantined, once, with its reason', () => {
  it('routes each case to quarantine and keeps processing good data', async () => {
    // Entities: one mappable generic meter (kWh, no zone), one whose type neither maps nor can be
    // inferred from its unit.
    await produceRaw(ctx, 'rawEntities', [
      env({
        entity_kind: 'meter',
        format: 'generic.meter',
        external_id: 'm1',
        payload: JSON.stringify({ id: 'm1', site: 'site1', kind: 'electricity', unit: 'kWh' }),
      }),
      env({
        entity_kind: 'meter',
        format: 'generic.meter',
        external_id: 'm2',
        payload: JSON.stringify({ id: 'm2', site: 'site1', kind: 'plasma', unit: 'zorkmids', tz: 'UTC' }),
      }),
    ]);
    await eventually(async () => (await readTopic(ctx, 'meters')).length >= 1, 60_000, 500);

    await produceBytes(ctx, 'rawUsage', [
      { key: 'acme-arcadia/mtr_a', value: Buffer.from('not avro at all') },
    ]);
    await produceRaw(ctx, 'rawUsage', [
      arcadia([reading(0, 1)], { entity_kind: 'banana' as RawEnvelope['entity_kind'] }), // NORM_ENVELOPE_MALFORMED
      arcadia('not an array'), // NORM_PAYLOAD_SCHEMA
      arcadia([reading(0, 1)], { external_id: 'mtr_ghost', meta: {} }), // VAL_UNKNOWN_METER
      env({
        payload: JSON.stringify([
          { from: '2024-06-01T00:00:00', to: '2024-06-01T00:15:00', value: 1, unit: 'kWh' },
        ]),
      }), // NORM_TIMESTAMP_NO_ZONE
      arcadia([reading(1, 1, 0)]), // VAL_END_NOT_AFTER_START
      env({ payload: `[{"from":"${iso(T)}","to":"${iso(T + Q)}","value":1e999,"unit":"kWh"}]` }), // VAL_NOT_FINITE
      env({ payload: JSON.stringify([{ from: iso(T + Q), to: iso(T + 2 * Q), value: 3, unit: 'm3' }]) }), // VAL_UNIT_CONFLICT
      arcadia([reading(2, 1.5), reading(3, 2.5)]), // good data after all of that
    ]);

    const expected = [
      'NORM_DECODE_FAILED',
      'NORM_ENVELOPE_MALFORMED',
      'NORM_PAYLOAD_SCHEMA',
      'VAL_UNKNOWN_METER',
      'NORM_TIMESTAMP_NO_ZONE',
      'VAL_END_NOT_AFTER_START',
      'VAL_NOT_FINITE',
      'VAL_UNIT_CONFLICT',
      'NORM_METER_TYPE_UNMAPPED',
    ];
    let quarantined: Awaited<ReturnType<typeof readTopic<'quarantine'>>> = [];
    const ok = await eventually(
      async () => (quarantined = await readTopic(ctx, 'quarantine')).length >= expected.length,
      90_000,
      1_000,
    );
    expect(ok, JSON.stringify(quarantined.map((q) => q.value.reason_code))).toBe(true);
    expect(quarantined.map((q) => q.value.reason_code).sort()).toEqual([...expected].sort());

    const decode = quarantined.find((q) => q.value.reason_code === 'NORM_DECODE_FAILED')!;
    expect(decode.value.original.toString()).toBe('not avro at all');
    expect(decode.value.source_topic).toBe(topicName(ctx.config.kafka.topicPrefix, 'rawUsage'));
    expect(decode.headers[QUARANTINE_HEADERS.reason]).toBe('NORM_DECODE_FAILED');
    expect(decode.headers[QUARANTINE_HEADERS.offset]).toBe(String(decode.value.source_offset));
    for (const q of quarantined) {
      expect(q.value.message.length).toBeGreaterThan(10);
      expect(q.value.original.length).toBeGreaterThan(0);
      expect(q.headers[QUARANTINE_HEADERS.stage]).toBe(q.value.stage);
    }
    const conflict = quarantined.find((q) => q.value.reason_code === 'VAL_UNIT_CONFLICT')!;
    expect(conflict.value.record_index).toBe(0);
    // detail: the rows counted, then the first ones with index, message and record.
    expect(JSON.parse(conflict.value.detail!)).toMatchObject({
      rows: 1,
      rejected: 1,
      first: [{ index: 0, record: { value: 3 } }],
    });

    // The good chunk after the bad ones went through to the daily aggregate.
    const done = await eventually(
      async () => (await readTopic(ctx, 'usageDaily')).some((d) => d.value.meter_external_id === 'mtr_a'),
      60_000,
      1_000,
    );
    expect(done).toBe(true);
    const daily = (await readTopic(ctx, 'usageDaily'))
      .filter((d) => d.value.meter_external_id === 'mtr_a')
      .map((d) => d.value);
    expect(daily.at(-1)).toMatchObject({ period: '2024-06-01', value: 4, interval_count: 2 });
  });

  it('usage rows of no meter (generic, one request for all meters) say what happened', async () => {
    const row = (v: number) => ({ from: iso(T), to: iso(T + Q), value: v, unit: 'kWh' });
    // As the generic connector hands them on: empty id (no meter id in the rows) or an id the
    // meter listing did not have, with the reason in meta.unmatched and no meter attached.
    await produceRaw(ctx, 'rawUsage', [
      env({
        external_id: '',
        payload: JSON.stringify([row(1), row(2), row(3)]),
        meta: { unmatched: 'no usage.fields.meterId "meter_id" in the rows' },
      }),
      env({
        external_id: 'x9',
        payload: JSON.stringify([row(4), row(5)]),
        meta: { unmatched: 'meter id "x9" is not in the snapshot' },
      }),
    ]);
    const unknown = async () =>
      (await readTopic(ctx, 'quarantine')).filter(
        (q) => q.value.reason_code === 'VAL_UNKNOWN_METER' && q.value.connection_id === 'acme-generic',
      );
    let records: Awaited<ReturnType<typeof unknown>> = [];
    expect(
      await eventually(async () => (records = await unknown()).length >= 2, 90_000, 1_000),
      JSON.stringify(
        (await readTopic(ctx, 'quarantine')).map((q) => [q.key, q.value.reason_code, q.value.message]),
      ),
    ).toBe(true);
    const bySource = new Map(records.map((r) => [r.value.source_key, r.value]));
    const idless = bySource.get('acme-generic/')!;
    expect(idless.message).toBe(
      '3 usage rows of connection acme-generic carry no meter id: no usage.fields.meterId "meter_id" in the rows',
    );
    expect(JSON.parse(idless.detail!)).toEqual({
      rows: 3,
      unmatched: 'no usage.fields.meterId "meter_id" in the rows',
    });
    expect(bySource.get('acme-generic/x9')!.message).toBe(
      '2 usage rows of connection acme-generic are of meter x9, which the meter listing does not have: meter id "x9" is not in the snapshot',
    );
    for (const r of records) expect(r.value.message).not.toMatch(/meter {2}/);
  });

  it('an envelope of 3,000 rows that all fail one rule is one record of about its size', async () => {
    const rows = Array.from({ length: 3_000 }, (_, i) => ({
      from: iso(T + i * Q),
      to: iso(T + (i + 1) * Q),
      reading: i, // fields.value is `value`: never matches
      unit: 'kWh',
    }));
    const meter = { id: 'm3', site: 'site1', kind: 'electricity', unit: 'kWh', tz: 'UTC' };
    const envelope = env({
      external_id: 'm3',
      payload: JSON.stringify(rows),
      meta: { meter_format: 'generic.meter', meter_payload: JSON.stringify(meter) },
    });
    const size = (await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, 'rawUsage')).encode(
      envelope,
    ).length;
    await produceRaw(ctx, 'rawUsage', [envelope]);

    const ofM3 = async () =>
      (await readTopic(ctx, 'quarantine')).filter((q) => q.value.source_key === 'acme-generic/m3');
    let records: Awaited<ReturnType<typeof ofM3>> = [];
    expect(await eventually(async () => (records = await ofM3()).length > 0, 90_000, 1_000)).toBe(true);
    // One transaction holds all of a message's records: once one is visible, all are.
    expect(records.length).toBe(1);
    const q = records[0]!.value;
    expect(q.reason_code).toBe('NORM_PAYLOAD_SCHEMA');
    expect(q.original.length).toBe(size);
    const bytes = records.reduce((s, r) => s + r.value.original.length + (r.value.detail?.length ?? 0), 0);
    expect(bytes).toBeLessThan(size + 20_000);
    expect(q.record_index).toBe(0);
    expect(q.message).toMatch(/in 3,000 of 3,000 rows/);
    expect(q.message).toContain('usage.fields.value `value`');
    const detail = JSON.parse(q.detail!) as {
      rows: number;
      rejected: number;
      first: { index: number; message: string; record: unknown }[];
    };
    expect(detail).toMatchObject({ rows: 3_000, rejected: 3_000 });
    expect(detail.first.length).toBe(20);
    expect(detail.first[0]).toMatchObject({ index: 0, record: { reading: 0 } });
    expect(q.detail!.length).toBeLessThanOrEqual(10_000);
  });
});
