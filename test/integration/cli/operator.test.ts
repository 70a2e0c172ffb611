/**
 * The operator's commands that read topics, run as the real CLI against the real Kafka and
 * registry: `status` lag without transaction markers, `quarantine` streaming with the filter on
 * the dead-letter headers before decoding and a cap on what is shown, one overall deadline that
 * covers connecting, and the quarantine topic's finite retention.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigResourceTypes } from 'kafkajs';
import { QUARANTINE_HEADERS, QUARANTINE_RETENTION_MS, topicName } from '../../../schemas/topics.js';
import type { QuarantineRecord } from '../../../schemas/records.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { spawnCli } from '../../support/pipeline.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';

let ctx: TestContext;

async function cli(args: string[], env: Record<string, string> = {}) {
  const p = spawnCli(ctx, args, env);
  const started = Date.now();
  const code = await p.exited;
  return { code, out: p.output(), stdout: p.stdout(), ms: Date.now() - started };
}

function record(n: number, reason: string, connection: string | null): QuarantineRecord {
  return {
    id: `${reason.toLowerCase()}-${String(n).padStart(4, '0')}-0123456789abcdef`,
    connection_id: connection,
    stage: 'usage',
    reason_code: reason,
    message: `row ${n} rejected`,
    source_topic: topicName(ctx.config.kafka.topicPrefix, 'rawUsage'),
    source_partition: 0,
    source_offset: n,
    record_index: null,
    source_key: `${connection ?? '-'}/m${n}`,
    original: Buffer.from(`{"n":${n}}`),
    detail: null,
    quarantined_at: Date.UTC(2026, 11, 1) + n,
  };
}

function headers(q: QuarantineRecord): Record<string, string> {
  return {
    [QUARANTINE_HEADERS.reason]: q.reason_code,
    [QUARANTINE_HEADERS.stage]: q.stage,
    [QUARANTINE_HEADERS.message]: q.message,
    [QUARANTINE_HEADERS.topic]: q.source_topic,
    [QUARANTINE_HEADERS.partition]: String(q.source_partition),
    [QUARANTINE_HEADERS.offset]: String(q.source_offset),
    ...(q.connection_id ? { [QUARANTINE_HEADERS.connection]: q.connection_id } : {}),
  };
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 2 });
  await ctx.createTopics();
  // Quarantine: 3 unknown-meter records of c1, 1 payload record of c2, and one whose value is
  // not Avro at all but whose headers say what it is.
  const serde = await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, 'quarantine');
  const records = [1, 2, 3].map((n) => record(n, 'VAL_UNKNOWN_METER', 'c1'));
  records.push(record(4, 'NORM_PAYLOAD_JSON', 'c2'));
  const producer = ctx.kafka.producer({ idempotent: true });
  await producer.connect();
  await producer.send({
    topic: topicName(ctx.config.kafka.topicPrefix, 'quarantine'),
    messages: [
      ...records.map((q) => ({
        key: q.source_key,
        value: serde.encode(q),
        headers: headers(q),
        partition: 0,
      })),
      {
        key: 'c3/garbage',
        value: Buffer.from('not avro at all'),
        headers: headers(record(5, 'NORM_DECODE_FAILED', 'c3')),
        partition: 0,
      },
    ],
  });
  await producer.disconnect();
});
afterAll(async () => {
  await ctx?.cleanup();
});

describe('quarantine topic', () => {
  it('is created with a finite retention', async () => {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: topicName(ctx.config.kafka.topicPrefix, 'quarantine'),
            configNames: ['retention.ms'],
          },
        ],
      });
      expect(resources[0]!.configEntries[0]!.configValue).toBe(String(30 * 24 * 3_600_000));
      expect(QUARANTINE_RETENTION_MS).toBe(30 * 24 * 3_600_000);
    } finally {
      await admin.disconnect();
    }
  });
});

describe('meterflow quarantine', () => {
  it('filters on the headers before decoding: an undecodable record of another reason is never read', async () => {
    const r = await cli(['quarantine', 'list', '--reason', 'NORM_PAYLOAD_JSON']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^1 quarantined record\(s\)$/m);
    expect(r.out).toMatch(/NORM_PAYLOAD_JSON .* row 4 rejected/);
    expect(r.out).not.toMatch(/cannot decode|REG_DECODE/);
    const c = await cli(['quarantine', 'list', '--connection', 'c1']);
    expect(c.code, c.out).toBe(0);
    expect(c.out).toMatch(/^3 quarantined record\(s\)$/m);
  });

  it('streams at most --limit lines and counts the rest; an undecodable match is reported, not fatal', async () => {
    const r = await cli(['quarantine', 'list', '--reason', 'VAL_UNKNOWN_METER', '--limit', '2']);
    expect(r.code, r.out).toBe(0);
    expect(r.out.match(/row \d rejected/g)).toEqual(['row 1 rejected', 'row 2 rejected']);
    expect(r.out).toMatch(/^3 quarantined record\(s\)$/m);
    expect(r.out).toMatch(/1 more record\(s\) not shown/);

    const all = await cli(['quarantine', 'list']);
    expect(all.code, all.out).toBe(0);
    expect(all.out).toMatch(/^5 quarantined record\(s\)$/m);
    expect(all.out).toMatch(/quarantine:0:4: cannot decode/);
    expect(all.out).toMatch(/NORM_DECODE_FAILED\s+1/);
  });

  it('inspect finds a record by id prefix; redrive --dry-run counts source messages', async () => {
    const r = await cli(['quarantine', 'inspect', 'norm_payload_json-0004']);
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ reason_code: 'NORM_PAYLOAD_JSON', original: '{"n":4}' });
    const d = await cli(['quarantine', 'redrive', '--reason', 'VAL_UNKNOWN_METER', '--dry-run']);
    expect(d.code, d.out).toBe(0);
    expect(d.out).toMatch(/would redrive 3 message\(s\)/);
  });
});

describe('meterflow status', () => {
  it('shows lag 0 for a group that read all of a transactional topic, and quarantine by reason', async () => {
    const topic = topicName(ctx.config.kafka.topicPrefix, 'usage');
    const producer = ctx.kafka.producer({
      transactionalId: `${ctx.config.kafka.topicPrefix}status-tx`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    for (let i = 0; i < 2; i++) {
      const trx = await producer.transaction();
      await trx.send({
        topic,
        messages: [0, 1].map((partition) => ({ partition, key: `k${i}`, value: 'v' })),
      });
      await trx.commit();
    }
    await producer.disconnect();
    // A stage commits the offset after the last record it processed: the commit marker's.
    const group = `${ctx.config.kafka.topicPrefix}processors.aggregate`;
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      // A commit returns before its markers are written: wait until the end is stable (2 records
      // and 2 markers per partition).
      let ends = await admin.fetchTopicOffsets(topic);
      for (let i = 0; i < 100 && ends.some((e) => e.high !== '4'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        ends = await admin.fetchTopicOffsets(topic);
      }
      expect(ends.map((e) => e.high)).toEqual(['4', '4']);
      await admin.setOffsets({
        groupId: group,
        topic,
        partitions: ends.map((e) => ({ partition: e.partition, offset: String(Number(e.high) - 1) })),
      });
    } finally {
      await admin.disconnect();
    }
    const r = await cli(['status', '--json']);
    expect(r.code, r.out).toBe(0);
    const report = JSON.parse(r.stdout) as {
      groups: { group: string; topic: string; lag: number }[];
      quarantine: Record<string, number>;
    };
    expect(report.groups).toContainEqual(expect.objectContaining({ group, topic, lag: 0 }));
    expect(report.quarantine).toEqual({ VAL_UNKNOWN_METER: 3, NORM_PAYLOAD_JSON: 1, NORM_DECODE_FAILED: 1 });
  });
});

describe('quarantine lifecycle', () => {
  it('a redrive marks what it re-sent: list --open and status leave it out, a second redrive re-sends nothing', async () => {
    const serde = await ctx.registry.registerTopic(ctx.config.kafka.topicPrefix, 'quarantine');
    const quarantineTopic = topicName(ctx.config.kafka.topicPrefix, 'quarantine');
    const send = async (records: QuarantineRecord[]): Promise<void> => {
      const producer = ctx.kafka.producer({ idempotent: true });
      await producer.connect();
      await producer.send({
        topic: quarantineTopic,
        messages: records.map((q) => ({
          key: q.source_key,
          value: serde.encode(q),
          headers: headers(q),
          partition: 1,
        })),
      });
      await producer.disconnect();
    };
    const future = [11, 12].map((n) => record(n, 'VAL_TIMESTAMP_FUTURE', 'c9'));
    await send(future);
    const open = await cli(['quarantine', 'list', '--open', '--connection', 'c9']);
    expect(open.code, open.out).toBe(0);
    expect(open.out).toMatch(/^2 open quarantined record\(s\)$/m);

    const r = await cli(['quarantine', 'redrive', '--connection', 'c9']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(
      /redrove 2 message\(s\) to their source topics; marked 2 quarantine record\(s\) redriven by redrive [0-9a-f-]{36}/,
    );
    const redriveId = /redrive ([0-9a-f-]{36})/.exec(r.out)![1]!;

    const after = await cli(['quarantine', 'list', '--open', '--connection', 'c9']);
    expect(after.out).toMatch(/^0 open quarantined record\(s\)$/m);
    const all = await cli(['quarantine', 'list', '--connection', 'c9', '--json']);
    const lines = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(4);
    const marks = lines.filter((l) => l.status === 'redriven');
    expect(marks.map((m) => m.id).sort()).toEqual(future.map((q) => q.id).sort());
    for (const m of marks) {
      expect(m).toMatchObject({ redrive_id: redriveId, source_offset: expect.any(Number) });
      expect(typeof m.redriven_at).toBe('number');
      // The mark keeps the original bytes: ClickHouse keeps only the latest row of an id.
      expect(Buffer.from(m.original as string, 'base64').toString()).toMatch(/^\{"n":1[12]\}$/);
    }
    const inspect = await cli(['quarantine', 'inspect', future[0]!.id]);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ status: 'redriven', redrive_id: redriveId });

    // Nothing is re-sent twice.
    const again = await cli(['quarantine', 'redrive', '--connection', 'c9']);
    expect(again.out).toMatch(/redrove 0 message\(s\).*marked 0/);

    // status counts open records only.
    const status = JSON.parse((await cli(['status', '--json'])).stdout) as {
      quarantine: Record<string, number>;
    };
    expect(status.quarantine.VAL_TIMESTAMP_FUTURE).toBeUndefined();

    // The same record quarantined again after its mark (a replay of the same source offset) is
    // open again.
    await send([future[0]!]);
    const reopened = await cli(['quarantine', 'list', '--open', '--connection', 'c9']);
    expect(reopened.out).toMatch(/^1 open quarantined record\(s\)$/m);
    expect(reopened.out).toContain('row 11 rejected');
    const status2 = JSON.parse((await cli(['status', '--json'])).stdout) as {
      quarantine: Record<string, number>;
    };
    expect(status2.quarantine.VAL_TIMESTAMP_FUTURE).toBe(1);
  });
});

describe('one overall deadline', () => {
  it('status, quarantine and replay end with CLI_TIMEOUT when the broker accepts and never answers', async () => {
    const [host, port] = ctx.config.kafka.brokers[0]!.split(':');
    const proxy: TcpProxy = await startTcpProxy({ host: host!, port: Number(port) });
    try {
      await proxy.cut('blackhole');
      const env = { KAFKA_BROKERS: `127.0.0.1:${proxy.port}` };
      const runs = await Promise.all([
        cli(['status', '--timeout', '2'], env),
        cli(['quarantine', 'list', '--timeout', '2'], env),
        cli(['quarantine', 'inspect', 'abc', '--timeout', '2'], env),
        cli(['replay', '--topic', 'raw.usage', '--group', 'g', '--timeout', '2'], env),
      ]);
      for (const r of runs) {
        expect(r.code, r.out).toBe(1);
        expect(r.out).toMatch(/CLI_TIMEOUT: meterflow \w+.* did not finish within 2 s/);
        // Four processes start at once (tsx, on two loaded cores): seconds before the 2 s deadline
        // even starts. Without it the kafkajs retries keep them for minutes.
        expect(r.ms, r.out).toBeLessThan(30_000);
      }
    } finally {
      await proxy.close();
    }
  });
});
