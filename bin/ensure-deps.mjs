#!/usr/bin/env node
// First step of `npm run demo`, `npm test` and `npm run bench`, so that a fresh clone needs no
// `npm install` typed by hand: checks the Node.js version against package.json's engines, then
// installs the dependencies when node_modules is missing or older than package-lock.json. For
// `npm test` (or with --browser) it also makes Chromium available: the report's end-to-end test
// opens the HTML report in headless Chromium.
// Plain JavaScript with node:* imports only: it runs before anything is installed, and on a Node
// too old for the rest of meterflow, to say so.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
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

/** A Chromium binary: $MF_CHROMIUM, else chromium (Debian's package) or chromium-browser on PATH. */
function chromiumPath() {
  const given = process.env.MF_CHROMIUM?.trim();
  if (given) return existsSync(given) ? given : undefined;
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean))
    for (const name of ['chromium', 'chromium-browser'])
      if (existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

/**
 * Installs Debian's chromium package when it is missing and this process may (root, or sudo
 * without a password, and apt-get); otherwise names what to install and stops. Nothing is
 * downloaded from anywhere but the system's own package sources.
 */
function ensureChromium() {
  if (chromiumPath()) return;
  const given = process.env.MF_CHROMIUM?.trim();
  if (given) {
    say(`MF_CHROMIUM names ${given}, which does not exist: point it at a Chromium binary, or unset it.`);
    process.exit(1);
  }
  const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = !root && has('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (!has('apt-get') || (!root && !sudo)) {
    say(
      'Chromium is needed by the tests (the HTML report is checked in headless Chromium): ' +
        (has('apt-get') ? '`sudo apt-get install chromium`' : "install your system's chromium package") +
        ', or set MF_CHROMIUM to a Chromium binary, and run this again.',
    );
    process.exit(1);
  }
  const logDir = join(ROOT, '.local');
  mkdirSync(logDir, { recursive: true });
  const log = join(logDir, 'apt-chromium.log');
  say(`Chromium is missing: installing Debian's chromium package with apt-get (log: ${log}).`);
  const started = Date.now();
  const apt = (args) => {
    const argv = [
      'env',
      'DEBIAN_FRONTEND=noninteractive',
      'apt-get',
      '-o',
      'DPkg::Lock::Timeout=300',
      ...args,
    ];
    const r = spawnSync(
      'sh',
      ['-c', '"$@" >>"$LOG" 2>&1', 'sh', ...(sudo ? ['sudo', '-n', ...argv] : argv)],
      {
        stdio: 'ignore',
        env: { ...process.env, LOG: log },
      },
    );
    return r.status === 0;
  };
  apt(['update', '-q']); // a stale package list is the usual reason an install fails
  if (!apt(['install', '-y', '-q', 'chromium']) || !chromiumPath()) {
    say(
      `\`apt-get install chromium\` failed (log: ${log}): install Chromium, or set MF_CHROMIUM, and run this again.`,
    );
    process.exit(1);
  }
  say(`Chromium installed in ${Math.round((Date.now() - started) / 1000)} s.`);
}

const pkg = readJson(join(ROOT, 'package.json'));
checkNode(pkg);
const reason = installReason();
if (reason) install(reason);
// `npm test` runs the whole suite, the browser test included; demo, bench and test:unit do not.
if (process.argv.includes('--browser') || process.env.npm_lifecycle_event === 'test') ensureChromium();
