/**
 * `meterflow check` through the real CLI process, against the generic mixed-kinds simulator (provider
 * C) described by the shipped example: a subtype outside the taxonomy is found offline with the
 * valid list; a usage field path pointing at a key the provider does not send is found by --probe
 * as rows that would be quarantined, with the reason, before any sync; a correct file passes and
 * shows its mapped meters and usage. Nothing reaches Kafka and the API key is never printed.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startGenericMixedSimulator, type MixedSimulator } from '../../simulators/generic-mixed.js';
import { DAY_MS } from '../../schemas/time.js';
import { createTestContext, type TestContext } from '../support/context.js';
import { spawnCli, type CliProcess } from '../support/pipeline.js';

const EXAMPLE = join(import.meta.dirname, '../../connections/examples/generic-mixed-kinds.yaml');

let ctx: TestContext;
let sim: MixedSimulator;
let root: string;
const procs: CliProcess[] = [];

/** The parts of the example file the tests change. */
interface Example {
  id: string;
  meterTypes: Record<string, { type: string; subtype: string }>;
  generic: { usageByKind: { consumption: { fields: Record<string, string> } } };
  [key: string]: unknown;
}

/** The shipped example pointed at the simulator, with an id and a change. */
function connection(id: string, change: (c: Example) => void = () => {}): string {
  const c = parse(readFileSync(EXAMPLE, 'utf8')) as Example;
  c.id = id;
  c.baseUrls = { production: sim.url };
  c.auth = { type: 'apiKey', in: 'header', name: 'X-Api-Key', keys: [{ valueEnv: 'MIXED_API_KEY' }] };
  c.http = { timeoutMs: 10_000, maxRetries: 2, backoffBaseMs: 10, backoffMaxMs: 100 };
  change(c);
  return stringify(c);
}

function folder(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

async function check(dir: string, args: string[]): Promise<{ code: number | string; out: string }> {
  const p = spawnCli(ctx, ['check', ...args], { MF_CONNECTIONS_DIR: dir, MIXED_API_KEY: sim.apiKey });
  procs.push(p);
  const code = await p.exited;
  return { code, out: p.output() };
}

let mixedDir: string;
let goodDir: string;

beforeAll(async () => {
  ctx = createTestContext();
  // Data up to today, so the probe's default range (the last two days) has rows.
  const from = new Date(Date.now() - 20 * DAY_MS).toISOString().slice(0, 10);
  sim = await startGenericMixedSimulator({ sites: 2, from, days: 22, virtualMeters: true });
  root = mkdtempSync(join(tmpdir(), 'mf-check-'));
  const good = connection('provider-c');
  mixedDir = folder('mixed', {
    'a-good.yaml': good,
    'b-subtype.yaml': connection('provider-c-subtype', (c) => {
      c.meterTypes.gas = { type: 'Energy', subtype: 'Gas' };
    }),
    'c-field.yaml': connection('provider-c-field', (c) => {
      c.generic.usageByKind.consumption.fields.value = 'kwh'; // the provider sends "value"
    }),
  });
  goodDir = folder('good', { 'provider-c.yaml': good });
}, 60_000);

afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  await sim?.close();
  await ctx?.cleanup();
});

describe('meterflow check', () => {
  it('offline: the subtype outside the taxonomy is reported with its file, field and the valid list (exit 1)', async () => {
    const before = sim.stats().total;
    const { code, out } = await check(mixedDir, []);
    expect(code, out).toBe(1);
    expect(out).toMatch(/b-subtype\.yaml: meterTypes\.gas\.subtype: .*"Gas" is not a sub-category of Energy/);
    expect(out).toContain('Natural Gas');
    expect(out).toContain('3 connection file(s)');
    expect(out).toContain('2 valid, 1 with problems');
    // The wrong field path cannot be seen offline: only the provider's rows show it.
    expect(out).not.toContain('c-field.yaml');
    expect(sim.stats().total).toBe(before);
    const json = await check(mixedDir, ['--json']);
    const doc = JSON.parse(json.out.slice(json.out.indexOf('{'))) as {
      problems: { file: string; field: string }[];
    };
    expect(doc.problems.map((p) => p.field)).toEqual(['meterTypes.gas.subtype']);
  });

  it('--probe: the wrong field path shows as rows that would be quarantined, with the reason, before any sync (exit 1)', async () => {
    const { code, out } = await check(mixedDir, ['--probe', '--json']);
    expect(code, out).toBe(1);
    const doc = JSON.parse(out.slice(out.indexOf('{'))) as {
      problems: { file: string; field: string }[];
      probes: {
        connection: string;
        quarantined: { code: string; reason: string; endpoint: string }[];
        usage: unknown[];
      }[];
    };
    expect(doc.problems.map((p) => p.field)).toEqual(['meterTypes.gas.subtype']);
    expect(doc.probes.map((p) => p.connection)).toEqual(['provider-c', 'provider-c-field']);
    const [good, bad] = doc.probes;
    expect(good!.quarantined).toEqual([]);
    expect(bad!.quarantined.length).toBeGreaterThan(10);
    expect(bad!.quarantined.every((q) => q.endpoint === 'usage')).toBe(true);
    expect(bad!.quarantined.map((q) => q.reason).join('\n')).toContain('kwh');
    // Register meters read "reading", which is right: their rows still map.
    expect(bad!.usage.length).toBeGreaterThan(0);
    expect(out).not.toContain(sim.apiKey);
    // Text output names the reason code and the field path too.
    const text = await check(mixedDir, ['--probe', '--connection', 'provider-c-field']);
    expect(text.code, text.out).toBe(1);
    expect(text.out).toMatch(/would be quarantined \(\d+\)/);
    expect(text.out).toMatch(/NORM_\w+ \(usage, \d+ row\(s\)\): .*kwh/);
    expect(text.out).not.toContain(sim.apiKey);
    // Nothing was written to Kafka: the run has no topics of its own.
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      expect(topics.filter((t) => t.startsWith(ctx.config.kafka.topicPrefix))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });

  it('--probe on a correct file passes (exit 0) and prints the mapped asset, meters and usage', async () => {
    const before = sim.stats().total;
    const { code, out } = await check(goodDir, ['--probe']);
    expect(code, out).toBe(0);
    // The first page of meters, then usage of two meters per kind (one request each): nothing more.
    const requests = sim.stats().total - before;
    expect(out).toContain(`with ${requests} request(s)`);
    expect(requests).toBe(5);
    expect(out).toContain('1 connection file(s)');
    expect(out).toMatch(/assets \([1-9]\d*\):\n\s+S-\d+/);
    expect(out).toMatch(
      /E-\d+ +asset S-\d+ +Energy\/Off-site Electricity +unit kWh +zone Europe\/Berlin +kind consumption/,
    );
    expect(out).toMatch(/W-\d+ +asset S-\d+ +Water\/Potable +unit m3 +zone Europe\/Berlin +kind reading/);
    expect(out).toMatch(/E-\d+ \(consumption\) +\d{4}-\d{2}-\d{2} .* consumption \d+(\.\d+)? kWh/);
    expect(out).toMatch(/W-\d+ \(reading\) +\d{4}-\d{2}-\d{2} .* consumption \d+(\.\d+)? m3/);
    expect(out).toContain('would be quarantined: none');
    // Virtual meters are left out by the filter; no request beyond the first pages and 2 meters per kind.
    expect(out).not.toContain('V-0');
    expect(out).not.toContain(sim.apiKey);
    expect(out).toMatch(/with \d+ request\(s\)/);
  });

  it('usage errors exit 2', async () => {
    expect((await check(goodDir, ['--days', '0', '--probe'])).code).toBe(2);
    expect((await check(goodDir, ['--connection', 'nope'])).code).toBe(2);
    expect((await check(goodDir, ['--days', '3'])).code).toBe(2);
  });
});
