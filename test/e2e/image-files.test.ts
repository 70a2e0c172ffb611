/**
 * The container image runs what this test runs: the repository's files less what .dockerignore
 * leaves out of the build context, compiled with tsconfig.build.json as the build stage does, plus
 * `npm ci --omit=dev`, as the Dockerfile builds it. A command that imports a file the image does
 * not have (a test helper, a dev dependency) fails here at module resolution, as it would in every
 * container. No Docker engine is needed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { dockerIgnored, parseDockerignore } from '../support/dockerignore.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mf-image-'));
  const rules = parseDockerignore(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8'));
  // The build context of a clean checkout: tracked files and new files not ignored by git.
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => f !== '');
  for (const file of listed) {
    if (dockerIgnored(rules, file)) continue;
    const to = join(dir, file);
    mkdirSync(dirname(to), { recursive: true });
    try {
      cpSync(join(REPO_ROOT, file), to);
    } catch {
      // Listed by git but deleted in the work tree: not in the context either.
    }
  }
  execFileSync(
    'npm',
    ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'],
    {
      cwd: dir,
      stdio: 'pipe',
      env: { ...process.env, NODE_ENV: 'production' },
    },
  );
  // The build stage: the context's sources to dist/ (the type definitions of the dev install).
  execFileSync(
    process.execPath,
    [
      join(REPO_ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--typeRoots',
      join(REPO_ROOT, 'node_modules/@types'),
    ],
    { cwd: dir, stdio: 'pipe' },
  );
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function meterflow(
  args: string[],
  extra: Record<string, string> = {},
): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['dist/cli/main.js', ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: dir, NODE_ENV: 'production', LOG_LEVEL: 'silent', ...extra },
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the image file set', () => {
  it('leaves tests, local data and deployment files out', () => {
    const rules = parseDockerignore(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8'));
    expect(dockerIgnored(rules, 'test/e2e/image-files.test.ts')).toBe(true);
    expect(dockerIgnored(rules, '.local/endpoints.env')).toBe(true);
    expect(dockerIgnored(rules, 'deploy/local/services')).toBe(true);
    expect(dockerIgnored(rules, 'tsconfig.build.json')).toBe(false);
    expect(dockerIgnored(rules, 'dist/cli/main.js')).toBe(true);
  });

  it.each([['--help'], ['migrate', '--help'], ['run', '--help']])('runs meterflow %s', (...args) => {
    const r = meterflow(args);
    expect(r.out).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find module/);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/usage|Usage|meterflow/);
  });

  it('checks the shipped example connections with the compiled code', () => {
    // The services are never contacted without --probe; the configuration still needs them named.
    const r = meterflow(['check', '--connections', 'connections/examples', '--connection', 'arcadia-main'], {
      KAFKA_BROKERS: '127.0.0.1:9',
      SCHEMA_REGISTRY_URL: 'http://127.0.0.1:9',
      CLICKHOUSE_URL: 'http://127.0.0.1:9',
    });
    expect(r.out).toMatch(/1 valid, 0 with problems/);
    expect(r.out).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find module/);
    expect(r.status, r.out).toBe(0);
  });
});
