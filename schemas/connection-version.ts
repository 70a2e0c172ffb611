/**
 * Connection configuration as a stream (DESIGN.md §3, §5): what a version of a connection is on
 * the `connections` topic, how it is compared, and how a processor reads it back. Pure: the
 * Kafka side is in producers/sync/publish.ts (writing) and processors/runtime/connections.ts
 * (reading as a table).
 */
import { createHash } from 'node:crypto';
import { connectionSchema, type ConnectionConfig } from './connection.js';
import type { ConnectionVersion } from './records.js';
import { secretValueProblems, type SecretValueProblem } from './secret-names.js';

/**
 * JSON with object keys sorted at every level (arrays keep their order): one text per content,
 * whatever the order or formatting of the file, so an unchanged connection hashes the same.
 */
export function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sort(x);
    }
    return out;
  };
  return JSON.stringify(sort(value));
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The content of a connection as published: canonical JSON of the validated configuration. */
export function connectionContent(c: ConnectionConfig): { content: string; sha256: string } {
  const content = canonicalJson(c);
  return { content, sha256: sha256Hex(content) };
}

/** What in a connection would be a secret on the topic (nothing, for a valid file). */
export function publishProblems(c: ConnectionConfig): SecretValueProblem[] {
  return secretValueProblems(c);
}

export interface PublishMeta {
  source: string;
  host: string;
  now: number;
}

/**
 * The record that publishes `c` after `latest` (the topic's current version of it): version 1
 * for a new connection, latest + 1 for changed content, null when the content is unchanged.
 * `highest` is the highest version the topic still shows for the id, a removed one included, so
 * that a connection removed and added again does not reuse a number.
 */
export function nextConnectionVersion(
  latest: ConnectionVersion | undefined,
  c: ConnectionConfig,
  meta: PublishMeta,
  highest = 0,
): ConnectionVersion | null {
  const { content, sha256 } = connectionContent(c);
  if (latest && latest.content_sha256 === sha256) return null;
  return {
    connection_id: c.id,
    version: Math.max(latest?.version ?? 0, highest) + 1,
    provider: c.provider,
    content,
    content_sha256: sha256,
    published_at: meta.now,
    source: meta.source,
    host: meta.host,
  };
}

/**
 * A published version read back with this release's connection schema. A version that does not
 * read (content from a newer release with keys this one does not know, or altered by hand) is
 * a problem to report, never a connection to guess from.
 */
export function readConnectionVersion(
  v: ConnectionVersion,
): { ok: true; config: ConnectionConfig } | { ok: false; problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(v.content);
  } catch {
    return { ok: false, problem: 'its content is not JSON' };
  }
  const parsed = connectionSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    return { ok: false, problem: `its content does not validate: ${issues}` };
  }
  if (parsed.data.id !== v.connection_id)
    return { ok: false, problem: `its content has id "${parsed.data.id}", not "${v.connection_id}"` };
  return { ok: true, config: parsed.data };
}
