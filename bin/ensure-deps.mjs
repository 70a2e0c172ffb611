#!/usr/bin/env node
// First step of `npm run demo`, `npm test` and `npm run bench`, so that a fresh clone needs no
// `npm install` typed by hand: checks the Node.js version against package.json's engines, then
// installs the dependencies when node_modules is missing or older than package-lock.json.
// Plain JavaScript with node:* imports only: it runs before anything is installed, and on a Node
// too old for the rest of meterflow, to say so.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line) => process.stderr.write(`[meterflow] ${line}\n`);

/** "20.18.1" -> [20, 18, 1]; missing parts count as 0. */
function parseVersion(text) {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : undefined;
}
function compare(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * Whether `version` satisfies an engines range of the plain forms npm writes: comparators
 * (>=, >, <=, <, =, ^, ~ or none) joined by spaces, alternatives joined by ||. A range this
 * cannot read is treated as satisfied: npm itself reports engine mismatches too.
 */
function satisfies(version, range) {
  return range.split('||').some((alt) =>
    alt
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .every((part) => {
        const m = /^(>=|<=|>|<|=|\^|~)?\s*(.+)$/.exec(part);
        const want = m && parseVersion(m[2]);
        if (!want) return true;
        const c = compare(version, want);
        switch (m[1]) {
          case '>=':
            return c >= 0;
          case '>':
            return c > 0;
          case '<=':
            return c <= 0;
          case '<':
            return c < 0;
          case '^':
            return c >= 0 && version[0] === want[0];
          case '~':
            return c >= 0 && version[0] === want[0] && version[1] === want[1];
          default:
            return c === 0;
        }
      }),
  );
}

function checkNode(pkg) {
  const range = pkg.engines && pkg.engines.node;
  const current = parseVersion(process.versions.node);
  if (!range || !current || satisfies(current, range)) return;
  const wanted = parseVersion(range.replace(/^[^\d]*/, ''));
  const major = wanted ? wanted[0] : 20;
  say(
    `Node.js ${range} is needed, this is ${process.versions.node}: install Node.js ${major} or newer ` +
      `(e.g. \`nvm install ${major}\`, or NodeSource's nodejs package) and run this again.`,
  );
  process.exit(1);
}

const mtime = (path) => statSync(path).mtimeMs;

/** Why the dependencies must be installed, or undefined when node_modules is current. */
function installReason() {
  const modules = join(ROOT, 'node_modules');
  const hidden = join(modules, '.package-lock.json'); // npm writes it after every install
  const lock = join(ROOT, 'package-lock.json');
  if (!existsSync(modules)) return 'node_modules is missing';
  if (!existsSync(hidden)) return 'node_modules was not installed by npm';
  if (!existsSync(lock)) {
    return mtime(hidden) < mtime(join(ROOT, 'package.json'))
      ? 'node_modules is older than package.json'
      : undefined;
  }
  // A newer package-lock.json (a pull, a checkout) matters only when it names other packages.
  if (mtime(hidden) < mtime(lock) && !sameInstall(readJson(lock), readJson(hidden))) {
    return 'node_modules is older than package-lock.json';
  }
  return undefined;
}

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));

/** Every package the lockfile names is installed at its version (optional ones may be absent). */
function sameInstall(lock, installed) {
  const have = installed.packages ?? {};
  return Object.entries(lock.packages ?? {}).every(([path, entry]) => {
    if (path === '' || entry.link) return true;
    const got = have[path];
    return got ? got.version === entry.version : entry.optional === true;
  });
}

function install(reason) {
  const withLock = existsSync(join(ROOT, 'package-lock.json'));
  const command = withLock ? 'ci' : 'install';
  say(`${reason}: installing the dependencies with \`npm ${command}\` (a minute or so the first time).`);
  // Inside `npm run`, npm_execpath is the npm that runs us; otherwise the one on PATH.
  const npmCli = process.env.npm_execpath;
  const [bin, args] =
    npmCli && /\.[cm]?js$/.test(npmCli)
      ? [process.execPath, [npmCli, command]]
      : [process.platform === 'win32' ? 'npm.cmd' : 'npm', [command]];
  const started = Date.now();
  // --loglevel=error: npm's warnings (engines of transitive packages, install scripts) would bury
  // the one line that matters; its errors still show.
  const result = spawnSync(bin, [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.error) {
    say(
      `could not run npm (${result.error.message}): install npm (it comes with Node.js) and run this again.`,
    );
    process.exit(1);
  }
  if (result.status !== 0) {
    say(
      `\`npm ${command}\` failed (exit ${result.status}); the lines above say why. Fix that and run this again.`,
    );
    process.exit(result.status ?? 1);
  }
  say(`dependencies installed in ${Math.round((Date.now() - started) / 1000)} s.`);
}

const pkg = readJson(join(ROOT, 'package.json'));
checkNode(pkg);
const reason = installReason();
if (reason) install(reason);
