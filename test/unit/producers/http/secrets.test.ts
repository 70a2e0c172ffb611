import { describe, expect, it } from 'vitest';
import { MeterflowError } from '../../../../lib/errors.js';
import { looksLikeSecret, requireEnv, shownEnvName } from '../../../../producers/http/secrets.js';

/** Values people paste into `...Env` fields instead of a variable name. */
const SECRETS = [
  'AKIAIOSFODNN7EXAMPLE',
  'ASIAY34FZKBOKMUTVV7A',
  '9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08',
  'SK_LIVE_4EC39HQLYJWDARJTT1ZDP7DC',
  'sk_live_4eC39HqLyjWDarjtT1zdp7dc',
  'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
  'GHP_16C7E42F292C6912E7710C838347AE178B4A',
  'XOXB-17653672481-19874698323-PDSIB5CT2W4E3P',
  'ABCDEFQWERTYZXCVBNMLKJHG',
  'API_QK7DM2ZP9XW4RT8VN3LJ',
];
/** Ordinary variable names, including every one the shipped examples use. */
const NAMES = [
  'ARCADIA_CLIENT_ID',
  'ARCADIA_CLIENT_SECRET',
  'NORDIC_CLIENT_SECRET',
  'NORDIC_PASSWORD',
  'ACME_API_KEY',
  'ENERKEY_API_KEY_1',
  'PASS_X',
  'U',
  'MF_ACME_OAUTH2_CLIENT_SECRET_PRODUCTION',
  'SCHNEIDER_ECOSTRUXURE_TOKEN',
  'TOKEN2024',
];

describe('secret-looking names in ...Env fields', () => {
  it('tells secret values from variable names', () => {
    for (const s of SECRETS) expect(looksLikeSecret(s), s).toBe(true);
    for (const n of NAMES) expect(looksLikeSecret(n), n).toBe(false);
  });

  it('shows a secret-looking name only as a fingerprint', () => {
    expect(shownEnvName('AKIAIOSFODNN7EXAMPLE')).toBe('AKIA…(20 chars)');
    expect(shownEnvName('ACME_API_KEY')).toBe('ACME_API_KEY');
  });

  it('refuses a secret value given as a variable name, and never prints it', () => {
    for (const s of SECRETS) {
      // Refused even when a variable of that name happens to exist.
      const err = (() => {
        try {
          requireEnv({ [s]: 'x' }, s, 'acme');
        } catch (e) {
          return e;
        }
      })();
      expect(err, s).toBeInstanceOf(MeterflowError);
      const e = err as MeterflowError;
      expect(e.code, s).toBe('CFG_INVALID');
      expect(e.message, s).toContain('acme');
      expect(e.message, s).toMatch(/looks like a secret value/);
      expect(JSON.stringify({ m: e.message, j: e.toJSON() }), s).not.toContain(s.slice(4));
    }
  });

  it('a missing ordinary variable is CFG_SECRET_MISSING naming it', () => {
    const err = (() => {
      try {
        requireEnv({}, 'ACME_API_KEY', 'acme');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: 'CFG_SECRET_MISSING', context: { variable: 'ACME_API_KEY' } });
    expect((err as Error).message).toContain('ACME_API_KEY');
  });
});
