/**
 * `meterflow` as a child process for the benchmarks, and its pino log lines. The tests' helpers
 * in test/support/pipeline.ts do the same, but that module imports vitest's `expect`, which only
 * loads inside vitest: benchmarks run under plain tsx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../../lib/config.js';
import type { TestContext } from '../support/context.js';

export interface CliProcess {
  child: ChildProcess;
  /** stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** Runs `meterflow <args>` with the context's prefix, database and endpoints. */
export function spawnCli(ctx: TestContext, args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [resolve(REPO_ROOT, 'bin/meterflow.js'), ...args], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      KAFKA_BROKERS: ctx.config.kafka.brokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.config.registry.url,
      CLICKHOUSE_URL: ctx.config.clickhouse.url,
      CLICKHOUSE_DATABASE: ctx.config.clickhouse.database,
      MF_TOPIC_PREFIX: ctx.config.kafka.topicPrefix,
      MF_TOPIC_PARTITIONS: String(ctx.config.kafka.partitions),
      MF_METRICS_PORT: '0',
      MF_CONNECTIONS_DIR: env.MF_CONNECTIONS_DIR ?? mkdtempSync(join(tmpdir(), 'mf-conn-')),
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((r) =>
    child.on('exit', (code, signal) => r(code ?? signal ?? -1)),
  );
  return { child, output: () => out, exited };
}

/** A process's pino log lines (JSON on stderr), skipping anything else it printed. */
export function logLines(output: string): { time: number; msg: string; [field: string]: unknown }[] {
  const lines: { time: number; msg: string; [field: string]: unknown }[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as { time?: unknown; msg?: unknown };
      if (typeof l.time === 'number' && typeof l.msg === 'string')
        lines.push(l as { time: number; msg: string });
    } catch {
      // a line cut by the kill, or not a log line
    }
  }
  return lines;
}
