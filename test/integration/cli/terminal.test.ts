/**
 * What a person sees from the CLI, run as the real process on real Kafka and the registry with
 * the Arcadia simulator: a backfill prints human lines and a progress line, no JSON, and names
 * the log file that holds its JSON lines; LOG_FORMAT=json puts them on the terminal instead;
 * `status` shows tables, with lag 0 for a group that consumed a transactional topic.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startArcadiaSimulator, type ArcadiaSimulator } from '../../../simulators/arcadia.js';
import { topicName } from '../../../schemas/topics.js';
import { arcadiaConnectionFile, arcadiaCredentials, quickArcadia } from '../../support/arcadia-connection.js';
import { createTestContext, type TestContext } from '../../support/context.js';
import { logLines, readTopic, spawnCli } from '../../support/pipeline.js';

let ctx: TestContext;
let sim: ArcadiaSimulator;
let dir: string;
const logFiles: string[] = [];

async function cli(args: string[], env: Record<string, string> = {}) {
  const p = spawnCli(ctx, args, {
    MF_CONNECTIONS_DIR: dir,
    ...arcadiaCredentials(sim, 'TERM_ARC'),
    LOG_LEVEL: 'info',
    ...env,
  });
  const code = await p.exited;
  return { code, out: p.output(), stdout: p.stdout() };
}

beforeAll(async () => {
  ctx = createTestContext({ partitions: 2 });
  await ctx.createTopics();
  sim = await startArcadiaSimulator({
    seed: 21,
    credentials: 1,
    sites: 1,
    meters: 2,
    from: '2024-03-01',
    days: 10,
    activationPolls: 1,
  });
  dir = mkdtempSync(join(tmpdir(), 'mf-term-'));
  writeFileSync(
    join(dir, 'term-arcadia.yaml'),
    stringify(arcadiaConnectionFile(sim, 'term-arcadia', 'TERM_ARC', quickArcadia(sim))),
  );
});

afterAll(async () => {
  for (const f of logFiles) rmSync(f, { force: true });
  await sim?.close();
  await ctx?.cleanup();
});

describe('a person at the terminal', () => {
  it('backfill: human lines and progress, no JSON; the JSON logs are in the file it names', async () => {
    const r = await cli([
      'backfill',
      '--connection',
      'term-arcadia',
      '--from',
      '2024-03-01',
      '--to',
      '2024-03-11',
    ]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^term-arcadia: succeeded in [\d.]+ s/m);
    expect(r.out).toMatch(/^\[#+\] 100% \d+ chunks, up to 2024-03-1\d$/m);
    expect(logLines(r.out)).toEqual([]);
    expect(r.out).not.toMatch(/[\r\x1b]/); // not a TTY: plain lines only
    const path = /^meterflow: logs in (.+\.log)$/m.exec(r.out)?.[1];
    expect(path, r.out).toMatch(/\.local\/logs\/meterflow-backfill-\d{8}-\d{6}-\d+\.log$/);
    logFiles.push(path!);
    expect(existsSync(path!)).toBe(true);
    const lines = readFileSync(path!, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines)
      expect(JSON.parse(line)).toMatchObject({ level: expect.any(Number), msg: expect.any(String) });
    expect(readFileSync(path!, 'utf8')).not.toContain(sim.options.clientSecret);
  });

  it('LOG_FORMAT=json: the JSON lines are on the terminal and no file is named', async () => {
    const file = join(dir, 'never.log');
    const r = await cli(['sync', '--connection', 'term-arcadia', '--to', '2024-03-11'], {
      LOG_FORMAT: 'json',
      MF_LOG_FILE: file,
    });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^term-arcadia: succeeded/m);
    expect(logLines(r.out).length).toBeGreaterThan(0);
    expect(r.out).not.toMatch(/logs in/);
    expect(existsSync(file)).toBe(false);
  });

  it('status: tables, the last success, and lag 0 on a transactional topic read to the end', async () => {
    // A consumer group of the test's prefix reads all of raw.usage (written in transactions) and
    // commits after its last record, the way a stage does: the commit markers stay behind it.
    const topic = topicName(ctx.config.kafka.topicPrefix, 'rawUsage');
    const expected = (await readTopic(ctx, 'rawUsage')).length;
    expect(expected).toBeGreaterThan(0);
    const group = `${ctx.config.kafka.topicPrefix}test.reader`;
    const consumer = ctx.kafka.consumer({ groupId: group, readUncommitted: false });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    const all = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: () => {
          if (++seen >= expected) resolve();
          return Promise.resolve();
        },
      });
    });
    await all;
    await consumer.disconnect();

    const r = await cli(['status']);
    expect(r.code, r.out).toBe(0);
    expect(logLines(r.out)).toEqual([]);
    expect(r.out).not.toMatch(/logs in/); // nothing was logged, so no file is named
    expect(r.out).toMatch(/^ {2}connection\s+last run\s+started \(UTC\)\s+last success/m);
    expect(r.out).toMatch(/^ {2}term-arcadia\s+succeeded \(\w+\)\s+\S+ \S+\s+\d+ s ago/m);
    expect(r.out).toMatch(
      new RegExp(`^ {2}${group.replace(/\./g, '\\.')}\\s+${topic.replace(/\./g, '\\.')}\\s+0\\s`, 'm'),
    );

    const json = await cli(['status', '--json']);
    const report = JSON.parse(json.stdout) as {
      connections: { connection_id: string; last_success_age_seconds: number | null }[];
      groups: { group: string; topic: string; lag: number }[];
    };
    expect(report.groups).toContainEqual(expect.objectContaining({ group, topic, lag: 0 }));
    expect(
      report.connections.find((c) => c.connection_id === 'term-arcadia')?.last_success_age_seconds,
    ).toBeLessThan(600);
  });
});
