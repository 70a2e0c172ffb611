/**
 * BACKWARD compatibility of every topic schema with every released version (schemas/history):
 * data written with an old schema must stay readable with the current one. An incompatible
 * change fails here, before any registry sees it. Record a release with
 * `npx tsx schemas/snapshot-history.ts`.
 */
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { TOPICS, type TopicId } from '../../../schemas/topics.js';
import { history } from '../../../schemas/snapshot-history.js';

const ids = Object.keys(TOPICS) as TopicId[];

function canRead(reader: unknown, writer: unknown): boolean {
  try {
    avro.Type.forSchema(reader as avro.Schema).createResolver(avro.Type.forSchema(writer as avro.Schema));
    return true;
  } catch {
    return false;
  }
}

describe('topic schemas stay BACKWARD compatible', () => {
  it.each(ids)('%s has a recorded history', (id) => {
    expect(history(id).length).toBeGreaterThan(0);
  });

  it.each(ids)('%s reads every recorded version', (id) => {
    for (const [version, old] of history(id))
      expect(canRead(TOPICS[id].schema, old), `${TOPICS[id].logical} v${version}`).toBe(true);
  });

  it('would catch a required field added without a default', () => {
    const current = TOPICS.usage.schema as { fields: unknown[] };
    const broken = { ...current, fields: [...current.fields, { name: 'tariff', type: 'string' }] };
    const [, v1] = history('usage')[0]!;
    expect(canRead(broken, v1)).toBe(false);
    const fine = {
      ...current,
      fields: [...current.fields, { name: 'tariff', type: ['null', 'string'], default: null }],
    };
    expect(canRead(fine, v1)).toBe(true);
  });
});
