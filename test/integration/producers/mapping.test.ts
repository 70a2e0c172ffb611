import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../support/context.js';
import { exportMappings, importMappings } from '../../../producers/mapping/index.js';
import { parseCsv } from '../../../producers/http/csv.js';
import type { Meter, MeterMapping } from '../../../schemas/records.js';
import { entityKey, topicName } from '../../../schemas/topics.js';
import { readTopic } from './helpers.js';

function meter(connection_id: string, external_id: string): Meter {
  return {
    connection_id,
    provider: 'generic',
    external_id,
    asset_external_id: 'a1',
    meter_type: 'Energy',
    meter_subtype: null,
    unit: 'kWh',
    canonical_unit: 'kWh',
    description: null,
    time_zone: 'UTC',
    reading_type: 'consumption',
    rollover_value: null,
    metadata: {},
    active: true,
    first_seen: 0,
    last_seen: 0,
    sync_run_id: 'r',
  };
}

describe('meter mapping import/export', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = createTestContext({ partitions: 2 });
    await ctx.createTopics();
    const serde = await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, 'meters');
    const producer = ctx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topicName(ctx.config.kafka.topicPrefix, 'meters'),
      messages: [meter('c1', 'm1'), meter('c1', 'm2'), meter('c2', '=cmd|x')].map((m) => ({
        key: entityKey(m.connection_id, m.external_id),
        value: serde.encode(m),
      })),
    });
    await producer.disconnect();
  });
  afterAll(async () => ctx?.cleanup());

  const deps = () => ({
    config: ctx.config,
    kafka: ctx.kafka,
    registry: ctx.registry,
    now: () => 1_700_000_000_000,
  });
  const mappings = async () => (await readTopic<MeterMapping>(ctx, 'meterMappings')).map((r) => r.value);

  it('a file with an unknown or duplicate id applies nothing and names every problem', async () => {
    const r = await importMappings(
      deps(),
      'connection_id,external_id,internal_meter_id\nc1,m1,INT-1\nc1,ghost,INT-2\nc1,m1,INT-3\n',
    );
    expect(r.applied).toBe(false);
    expect(r.problems.map((p) => p.kind)).toEqual(['unknown_meter', 'duplicate_meter']);
    expect(await mappings()).toEqual([]);
  });

  it('a good file is written; export lists every meter with formulas escaped and round-trips', async () => {
    const r = await importMappings(
      deps(),
      'connection_id,external_id,internal_meter_id\nc1,m1,INT-1\nc2,=cmd|x,+INT-9\n',
      'test',
    );
    expect(r).toEqual({ applied: true, rows: 2, problems: [] });
    const written = await mappings();
    expect(written.map((m) => [m.connection_id, m.external_id, m.internal_meter_id, m.source])).toEqual(
      expect.arrayContaining([
        ['c1', 'm1', 'INT-1', 'test'],
        ['c2', '=cmd|x', '+INT-9', 'test'],
      ]),
    );
    const csv = await exportMappings(deps());
    expect(parseCsv(csv)).toEqual([
      { connection_id: 'c1', external_id: 'm1', internal_meter_id: 'INT-1' },
      { connection_id: 'c1', external_id: 'm2', internal_meter_id: '' },
      { connection_id: 'c2', external_id: "'=cmd|x", internal_meter_id: "'+INT-9" },
    ]);
    expect(parseCsv(await exportMappings(deps(), { connectionId: 'c1' }))).toHaveLength(2);
    // The export can be edited and imported again as it is.
    const again = await importMappings(deps(), csv);
    expect(again.applied).toBe(true);
  });
});
