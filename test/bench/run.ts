/**
 * Runs every benchmark in test/bench, one after another, each in its own process with small
 * sizes, and prints their output: a quick check that all of them still run, with figures.
 *
 *   npm run bench                                  every benchmark, small sizes (a few minutes)
 *   npm run bench -- processors poll               only these (file names without .ts)
 *   npm run bench -- --full                        each at its own default sizes (long)
 *
 * A benchmark file without an entry in SMALL runs at its own defaults, so a new one is never
 * skipped. Endpoints come the way the tests get them (test/support/global-setup.ts: the
 * environment, .local/endpoints.env, or `deploy/local/services up`). Exits non-zero when a
 * benchmark fails; asserts nothing about the figures.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ensureServices from '../support/global-setup.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const HELPERS = new Set(['common.ts', 'cli.ts']);

/** Small sizes per benchmark: seconds to a minute each on a laptop. */
const SMALL: Record<string, string[]> = {
  'aggregate-memory': ['50', '30'],
  processors: ['--meters', '10', '--days', '7'],
  'sink-clickhouse': ['20000', '96'],
  poll: ['--meters', '5', '--days', '7'],
  'bad-input-memory': ['--messages', '5', '--rows', '300'],
  'pipeline-e2e': ['--meters', '5', '--days', '30'],
  'kafka-clients': ['--transactions', '20'],
};

const { values, positionals } = parseArgs({
  options: { full: { type: 'boolean', default: false } },
  allowPositionals: true,
});

const all = readdirSync(HERE)
  // common.ts and cli.ts hold the benchmarks' shared helpers; they are not benchmarks.
  .filter((f) => f.endsWith('.ts') && f !== basename(fileURLToPath(import.meta.url)) && !HELPERS.has(f))
  .map((f) => f.slice(0, -'.ts'.length))
  .sort();
const unknown = positionals.filter((p) => !all.includes(p));
if (unknown.length > 0) {
  console.error(`no such benchmark: ${unknown.join(', ')} (there are: ${all.join(', ')})`);
  process.exit(2);
}
const chosen = positionals.length > 0 ? all.filter((b) => positionals.includes(b)) : all;

await ensureServices();

const results: { bench: string; seconds: number; status: string }[] = [];
for (const bench of chosen) {
  const args = values.full ? [] : (SMALL[bench] ?? []);
  const note = !values.full && !SMALL[bench] ? '  (no small sizes known: its defaults)' : '';
  console.log(`\n=== ${bench}.ts ${args.join(' ')}${note}`);
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(HERE, `${bench}.ts`), ...args], {
    stdio: 'inherit',
    env: process.env,
  });
  const status = run.error
    ? run.error.message
    : run.signal
      ? `killed by ${run.signal}`
      : `exit ${run.status}`;
  results.push({ bench, seconds: Math.round((Date.now() - started) / 1000), status });
}

console.log('\n=== summary');
for (const r of results) console.log(`${r.bench.padEnd(20)} ${String(r.seconds).padStart(5)} s  ${r.status}`);
process.exit(results.every((r) => r.status === 'exit 0') ? 0 : 1);
