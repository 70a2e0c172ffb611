/**
 * Records the current Avro schema of every topic as the next version under schemas/history/, so
 * that the compatibility test holds later schemas to it. Run it when a schema change is released:
 *
 *   npx tsx schemas/snapshot-history.ts
 *
 * A version identical to the latest recorded one is not written again.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOPICS, type TopicId } from './topics.js';

export const HISTORY_DIR = join(dirname(fileURLToPath(import.meta.url)), 'history');

/** Recorded versions of a topic's schema, oldest first: [version, schema]. */
export function history(id: TopicId): [number, unknown][] {
  if (!existsSync(HISTORY_DIR)) return [];
  const prefix = `${TOPICS[id].logical}.v`;
  return readdirSync(HISTORY_DIR)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.json'))
    .map((f): [number, unknown] => [
      Number(f.slice(prefix.length, -5)),
      JSON.parse(readFileSync(join(HISTORY_DIR, f), 'utf8')),
    ])
    .sort((a, b) => a[0] - b[0]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  mkdirSync(HISTORY_DIR, { recursive: true });
  for (const id of Object.keys(TOPICS) as TopicId[]) {
    const versions = history(id);
    const current = JSON.stringify(TOPICS[id].schema, null, 2);
    const last = versions.at(-1);
    if (last && JSON.stringify(last[1], null, 2) === current) continue;
    const version = (last?.[0] ?? 0) + 1;
    writeFileSync(join(HISTORY_DIR, `${TOPICS[id].logical}.v${version}.json`), `${current}\n`);
    process.stdout.write(`recorded ${TOPICS[id].logical} v${version}\n`);
  }
}
