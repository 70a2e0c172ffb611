import { describe, expect, it } from 'vitest';
import { MeterflowError } from '../../../lib/errors.js';
import { AvroRegistry, isRegistryUnavailable, isUndecodable } from '../../../lib/registry.js';

/** A framed message naming schema id 7: the registry must be asked for it. */
const framed = Buffer.from([0, 0, 0, 0, 7, 2, 0x61]);

describe('AvroRegistry errors', () => {
  it('never prints user info of the registry URL', async () => {
    const registry = new AvroRegistry('http://reg-user:S3cr3t-Pw@127.0.0.1:1/apis/ccompat/v7');
    expect(registry.url).toBe('http://127.0.0.1:1/apis/ccompat/v7');
    const lookup = await registry.decode(framed).catch((e: unknown) => e);
    const register = await registry
      .register('x-value', { type: 'record', name: 'X', fields: [] })
      .catch((e: unknown) => e);
    for (const err of [lookup, register]) {
      expect(err).toMatchObject({ code: 'REG_UNREACHABLE', retriable: true });
      const shown = JSON.stringify({ m: (err as Error).message, j: (err as MeterflowError).toJSON() });
      expect(shown).toContain('127.0.0.1:1');
      expect(shown).not.toContain('S3cr3t');
      expect(shown).not.toContain('reg-user');
    }
  });

  it('classifies by code: an outage is retriable, only REG_DECODE is undecodable', async () => {
    const outage = await new AvroRegistry('http://127.0.0.1:1').decode(framed).catch((e: unknown) => e);
    expect(isRegistryUnavailable(outage)).toBe(true);
    expect(isUndecodable(outage)).toBe(false);
    const bad = await new AvroRegistry('http://127.0.0.1:1')
      .decode(Buffer.from('{}'))
      .catch((e: unknown) => e);
    expect(isUndecodable(bad)).toBe(true);
    expect(isRegistryUnavailable(bad)).toBe(false);
    // A plain error (a bug, not the registry) is neither: the caller must not quarantine it as bad data.
    expect(isUndecodable(new TypeError('x'))).toBe(false);
    expect(isRegistryUnavailable(new TypeError('fetch failed'))).toBe(false);
  });
});
