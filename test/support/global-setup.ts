/**
 * Vitest globalSetup: makes sure the tests have real Kafka, schema registry and ClickHouse
 * endpoints in process.env (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, CLICKHOUSE_URL) before any test
 * worker starts (workers inherit the main process's environment).
 *
 * Order:
 *  1. All three variables already set: used as they are (CI, a user's own cluster or compose).
 *  2. `.local/endpoints.env` exists (from `deploy/local/services up`) and its services answer:
 *     loaded into process.env.
 *  3. Otherwise `bash deploy/local/services up` starts them (first time: downloads from Maven
 *     Central and apt, about half a minute to a few minutes), then the file is loaded.
 *
 * The teardown does nothing: the services stay up between runs for speed; `.ci/run` stops them
 * on exit, and `deploy/local/services down` stops them by hand.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnvFile } from '../../lib/config.js';

export const ENDPOINT_KEYS = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'CLICKHOUSE_URL'] as const;
export type EndpointKey = (typeof ENDPOINT_KEYS)[number];
export type Endpoints = Record<EndpointKey, string>;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVICES_SCRIPT = resolve(ROOT, 'deploy', 'local', 'services');
const ENDPOINTS_FILE = resolve(ROOT, '.local', 'endpoints.env');
const PROBE_TIMEOUT_MS = 3000;

function endpointsFrom(source: Record<string, string | undefined>): Endpoints | undefined {
  const values = ENDPOINT_KEYS.map((k) => source[k]);
  if (values.some((v) => !v)) return undefined;
  return Object.fromEntries(ENDPOINT_KEYS.map((k) => [k, source[k] as string])) as Endpoints;
}

function readEndpointsFile(): Endpoints | undefined {
  if (!existsSync(ENDPOINTS_FILE)) return undefined;
  return endpointsFrom(parseEnvFile(readFileSync(ENDPOINTS_FILE, 'utf8')));
}

function tcpAnswers(hostPort: string): Promise<boolean> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(hostPort.slice(i + 1));
  if (i < 0 || !Number.isInteger(port)) return Promise.resolve(false);
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

async function httpAnswers(url: string, expect?: RegExp): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const body = await res.text();
    return res.ok && (!expect || expect.test(body));
  } catch {
    return false;
  }
}

/** True when every service answers: a Kafka broker port, the registry's /subjects, ClickHouse's /ping. */
export async function servicesAnswer(e: Endpoints): Promise<boolean> {
  const firstBroker = e.KAFKA_BROKERS.split(',')[0]?.trim() ?? '';
  const results = await Promise.all([
    tcpAnswers(firstBroker),
    httpAnswers(`${e.SCHEMA_REGISTRY_URL.replace(/\/+$/, '')}/subjects`, /^\s*\[/),
    httpAnswers(`${e.CLICKHOUSE_URL.replace(/\/+$/, '')}/ping`, /^Ok/),
  ]);
  return results.every(Boolean);
}

function apply(e: Endpoints): void {
  for (const k of ENDPOINT_KEYS) process.env[k] = e[k];
}

function runServicesUp(): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn('bash', [SERVICES_SCRIPT, 'up'], { cwd: ROOT, stdio: 'inherit', env: process.env });
    child.once('error', fail);
    child.once('exit', (code, signal) =>
      code === 0
        ? done()
        : fail(
            new Error(`deploy/local/services up failed (${signal ?? `exit ${code}`}); see its output above`),
          ),
    );
  });
}

export default async function setup(): Promise<() => Promise<void>> {
  const teardown = async (): Promise<void> => {
    // Nothing: services stay up for the next run (.ci/run's trap stops them in CI).
  };

  // 1. Endpoints given in the environment are used as they are.
  const given = endpointsFrom(process.env);
  if (given) return teardown;

  // 2. Services started earlier by deploy/local/services and still answering.
  const fromFile = readEndpointsFile();
  if (fromFile && (await servicesAnswer(fromFile))) {
    apply(fromFile);
    return teardown;
  }

  // (Place for the testcontainers branch: e.g. when MF_TEST_SERVICES=testcontainers, start
  //  Kafka, the registry and ClickHouse with testcontainers here, apply() their endpoints and
  //  return a teardown that stops the containers.)

  // 3. Start the local services (idempotent) and load what they wrote.
  await runServicesUp();
  const started = readEndpointsFile();
  if (!started) throw new Error(`deploy/local/services up wrote no usable ${ENDPOINTS_FILE}`);
  apply(started);
  return teardown;
}
