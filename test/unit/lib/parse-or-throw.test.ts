import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { MeterflowError } from '../../../lib/errors.js';
import { parseOrThrow } from '../../../lib/parse-or-throw.js';

const schema = z
  .object({ name: z.string(), tries: z.number().int().min(1), tags: z.array(z.string()) })
  .strict();

function failure(input: unknown, where: Parameters<typeof parseOrThrow>[2]): MeterflowError {
  try {
    parseOrThrow(schema, input, where);
  } catch (e) {
    return e as MeterflowError;
  }
  throw new Error('expected CFG_INVALID');
}

describe('parseOrThrow', () => {
  it('returns the parsed value', () => {
    expect(parseOrThrow(schema, { name: 'a', tries: 2, tags: [] }, 'x')).toEqual({
      name: 'a',
      tries: 2,
      tags: [],
    });
  });

  it('is CFG_INVALID naming the input and every bad setting with its path, never the values', () => {
    const e = failure({ name: 'S3cr3t', tries: 0, tags: ['ok', 7] }, 'widget file w.yaml');
    expect(e).toBeInstanceOf(MeterflowError);
    expect(e.code).toBe('CFG_INVALID');
    expect(e.retriable).toBe(false);
    expect(e.message).toMatch(/^widget file w\.yaml: tries: .+; tags\.1: /);
    expect(e.context).toEqual({ settings: ['tries', 'tags.1'] });
    expect(JSON.stringify({ m: e.message, j: e.toJSON() })).not.toContain('S3cr3t');
  });

  it('applies a path prefix, extra context and a label; the root is "(root)"', () => {
    const e = failure(
      { name: 'a', tries: 1, tags: [], extra: true },
      { what: 'connection c', prefix: 'options', context: { connection: 'c' }, label: (s) => `<${s}>` },
    );
    expect(e.message).toMatch(/^connection c: <options>: /);
    expect(e.context).toEqual({ connection: 'c', settings: ['options'] });
    expect(failure('nope', 'x').message).toMatch(/^x: \(root\): /);
  });
});
