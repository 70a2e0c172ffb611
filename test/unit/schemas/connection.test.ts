/** Loading a connection checks everything that can be checked offline, naming the field and what is valid. */
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { MeterflowError } from '../../../lib/errors.js';
import { parseConnection } from '../../../producers/sync/connections.js';
import type { ConnectionInput } from '../../../schemas/connection.js';

type Generic = NonNullable<ConnectionInput['generic']>;
type Usage = Generic['usage'];

/** A valid generic connection; `patch` changes the raw input before it is parsed. */
function generic(patch: (c: ConnectionInput & { generic: Generic }) => void = () => {}): unknown {
  const c: ConnectionInput & { generic: Generic } = {
    id: 'g',
    provider: 'generic',
    baseUrls: { production: 'https://api.example.test' },
    auth: { type: 'none' },
    generic: {
      meters: {
        path: '/meters',
        itemsPath: 'data',
        fields: { externalId: 'id', assetId: 'site', unit: 'unit' },
      },
      usage: {
        path: '/meters/{meterId}/usage',
        kind: 'consumption',
        fields: { start: 'from', end: 'to', value: 'value' },
      },
    },
  };
  patch(c);
  return c;
}

/** The CFG_INVALID message of loading `raw`, or '' when it loads. */
function problem(raw: unknown): string {
  try {
    parseConnection(raw, 'conn.yaml');
    return '';
  } catch (e) {
    expect((e as MeterflowError).code).toBe('CFG_INVALID');
    return (e as MeterflowError).message;
  }
}

const usage = (over: Partial<Usage>) =>
  generic((c) => {
    c.generic.usage = { ...c.generic.usage, ...over };
  });

describe('connection load checks', () => {
  it('the base connection loads', () => {
    expect(problem(generic())).toBe('');
  });

  it('a secret pasted into an ...Env field is refused at load and never printed (review L1)', () => {
    for (const secret of ['AKIAIOSFODNN7EXAMPLE', 'A3F9C2B7D1E8F4A6B0C5D9E2F7A1B4C8']) {
      const msg = problem(
        generic((c) => {
          c.auth = { type: 'apiKey', in: 'header', name: 'X-Key', keys: [{ valueEnv: secret }] };
        }),
      );
      expect(msg).toMatch(/auth.*looks like a secret value/);
      expect(msg).not.toContain(secret.slice(4));
    }
    expect(problem(generic((c) => (c.auth = { type: 'bearer', tokenEnv: 'ACME_API_TOKEN' })))).toBe('');
  });

  it('a meterTypes subtype outside the taxonomy names the entry and lists the valid subtypes (review L4)', () => {
    const msg = problem(
      generic((c) => {
        c.meterTypes = { electric: { type: 'Energy', subtype: 'Electricity' } };
      }),
    );
    expect(msg).toContain('meterTypes.electric.subtype');
    expect(msg).toContain('"Electricity" is not a sub-category of Energy');
    expect(msg).toContain('Off-site Electricity');
    expect(msg).toContain('On-site Renewable Electricity');
    expect(msg).not.toContain('Potable');
    // The taxonomy spelling is matched case-insensitively, as the normaliser matches it.
    expect(
      problem(
        generic((c) => {
          c.meterTypes = { water: { type: 'Water', subtype: 'potable' } };
        }),
      ),
    ).toBe('');
  });

  it('two meterTypes keys that match the same classification are refused', () => {
    const msg = problem(
      generic((c) => {
        c.meterTypes = {
          district_heat: { type: 'Energy', subtype: 'District Heating and Cooling' },
          'District Heat': { type: 'Energy', subtype: 'District Steam' },
        };
      }),
    );
    expect(msg).toContain('meterTypes.District Heat');
    expect(msg).toContain('"district_heat"');
  });

  it('unknown options of a generic connection name options.<key> (review L10)', () => {
    const msg = problem(
      generic((c) => {
        c.options = { maxRangeDays: 7 };
      }),
    );
    expect(msg).toContain('options.maxRangeDays');
    expect(msg).toContain('the generic connector has no options');
  });

  it('Arcadia and EnerKey options are checked at load, unknown keys with the valid ones', () => {
    const base = { baseUrls: { production: 'https://x.test' }, auth: { type: 'none' } };
    const arcadia = problem({ ...base, id: 'a', provider: 'arcadia', options: { interval: 'raw' } });
    expect(arcadia).toContain('options.interval');
    expect(arcadia).toMatch(/valid keys: .*intervals/);
    expect(problem({ ...base, id: 'a', provider: 'arcadia', options: { intervals: 'both' } })).toMatch(
      /options\.intervals.*not both/,
    );
    expect(
      problem({ ...base, id: 'e', provider: 'enerkey', options: { values: ['hourly', 'monthly'] } }),
    ).toContain('options.values');
    expect(problem({ ...base, id: 'e', provider: 'enerkey', options: { values: ['monthly'] } })).toBe('');
  });

  it.each([
    ['a..b', 'empty segment'],
    ['.a', 'empty segment'],
    ['a.', 'empty segment'],
    ['a[', 'bracket'],
    ['items[0].value', 'items.0.value'],
    ['', 'empty'],
  ])('a malformed field path %j is refused naming the field', (path, why) => {
    const msg = problem(usage({ fields: { start: 'from', end: 'to', value: path } }));
    expect(msg).toContain('generic.usage.fields.value');
    expect(msg).toContain(why);
  });

  it('body paths follow the same syntax; "" is still the body itself', () => {
    expect(problem(usage({ itemsPath: '' }))).toBe('');
    expect(problem(usage({ itemsPath: 'data..rows' }))).toContain('generic.usage.itemsPath');
    expect(
      problem(usage({ pagination: { type: 'cursor', cursorParam: 'c', nextPath: 'meta.[next]' } })),
    ).toContain('generic.usage.pagination.nextPath');
    // Well-formed paths, including XML attributes, CSV headers with spaces and array indexes.
    expect(
      problem(usage({ fields: { start: '@_from', end: 'period.0.to', value: 'Consumption kWh' } })),
    ).toBe('');
  });

  it('usage.fields.meterId is required when one request serves all meters (review M2)', () => {
    const allMeters = { path: '/usage', fields: { start: 'from', end: 'to', value: 'value' } };
    const msg = problem(usage(allMeters));
    expect(msg).toContain('generic.usage.fields.meterId');
    expect(msg).toContain('{meterId}');
    expect(msg).toContain('meterParam');
    expect(problem(usage({ ...allMeters, fields: { ...allMeters.fields, meterId: 'meter' } }))).toBe('');
    expect(problem(usage({ ...allMeters, meterParam: 'meter' }))).toBe('');
  });

  it('a path placeholder other than {meterId} in usage, or any in assets and meters, is refused', () => {
    expect(problem(usage({ path: '/meters/{meter_id}/usage' }))).toMatch(
      /generic\.usage\.path: .*\{meter_id\}.*\{meterId\}/,
    );
    expect(
      problem(
        generic((c) => {
          c.generic.meters.path = '/sites/{meterId}/meters';
        }),
      ),
    ).toContain('generic.meters.path');
  });

  it('the time fields the usage kind needs are required', () => {
    const noStart = problem(usage({ fields: { end: 'to', value: 'value' } }));
    expect(noStart).toContain('generic.usage.fields.start');
    expect(noStart).toContain('"consumption"');
    expect(problem(usage({ fields: { start: 'from', value: 'value' } }))).toContain(
      'generic.usage.fields.end',
    );
    const reading = problem(usage({ kind: 'reading', fields: { start: 'from', end: 'to', value: 'value' } }));
    expect(reading).toContain('generic.usage.fields.timestamp');
    expect(problem(usage({ kind: 'reading', fields: { timestamp: 'at', value: 'value' } }))).toBe('');
  });

  it('time zones must be IANA zones, with an example of a valid one', () => {
    for (const zone of ['Mars/Olympus', '+02:00', '']) {
      const msg = problem(
        generic((c) => {
          c.timeZone = zone;
        }),
      );
      expect(msg, zone).toContain('timeZone');
      expect(msg, zone).toContain('Europe/Helsinki');
    }
  });

  it('rollover values are positive finite numbers, named with their meter', () => {
    // YAML can spell infinity; JSON cannot.
    const full = generic((c) => {
      c.rollover = parseYaml('{ default: .inf, meters: { M-1: 0, M-2: 99999 } }') as NonNullable<
        ConnectionInput['rollover']
      >;
    });
    const err = problem(full);
    expect(err).toContain('rollover.default');
    expect(err).toContain('rollover.meters.M-1');
    expect(err).not.toContain('M-2');
    expect(err).toContain('positive finite number');
  });

  it('usageStart is a real date, not in the future', () => {
    for (const [date, why] of [
      ['2024-02-30', 'not a calendar date'],
      ['2024-13-01', 'not a calendar date'],
      ['2999-01-01', 'in the future'],
      ['24-01-01', 'YYYY-MM-DD'],
    ]) {
      const msg = problem(
        generic((c) => {
          c.usageStart = date;
        }),
      );
      expect(msg, date).toContain('usageStart');
      expect(msg, date).toContain(why);
    }
    expect(
      problem(
        generic((c) => {
          c.usageStart = '2024-02-29';
        }),
      ),
    ).toBe('');
  });

  it('API key validity dates are ISO dates, validFrom not after validTo', () => {
    const withKey = (key: Record<string, string>) =>
      generic((c) => {
        c.auth = { type: 'apiKey', name: 'X-Key', keys: [{ valueEnv: 'K', ...key }] };
      });
    expect(problem(withKey({ validFrom: 'yesterday' }))).toContain('auth.keys.0.validFrom');
    expect(problem(withKey({ validTo: '2024-02-30' }))).toContain('auth.keys.0.validTo');
    expect(problem(withKey({ validFrom: '2025-01-01', validTo: '2024-12-31' }))).toContain(
      'auth.keys.0.validTo',
    );
    expect(problem(withKey({ validFrom: '2024-01-01', validTo: '2024-12-31T23:00:00Z' }))).toBe('');
  });

  it('an unknown key anywhere is named with the keys that are valid there', () => {
    const msg = problem(usage({ fields: { start: 'from', end: 'to', valeu: 'value' } as never }));
    expect(msg).toContain('generic.usage.fields');
    expect(msg).toContain('"valeu"');
    expect(msg).toMatch(/valid keys: .*value/);
    const top = problem({ ...(generic() as object), pasword: 'x' });
    expect(top).toContain('"pasword"');
    expect(top).toMatch(/valid keys: .*auth/);
  });
});

/** A valid connection whose meters say their kind in "kind"; `patch` changes it before parsing. */
function mixed(patch: (g: Generic) => void = () => {}): unknown {
  return generic((c) => {
    const { kind: _single, ...shared } = c.generic.usage;
    c.generic.meters.fields.usageKind = 'kind';
    c.generic.meters.usageKinds = { interval: 'consumption', register: 'reading' };
    c.generic.usage = { ...shared, fields: { meterId: 'meter' } };
    c.generic.usageByKind = {
      consumption: { fields: { start: 'from', end: 'to', value: 'value' } },
      reading: { fields: { timestamp: 'at', value: 'reading' } },
    };
    patch(c.generic);
  });
}

describe('per-meter usage kind', () => {
  it('the mixed connection loads; a usageKinds value must be consumption or reading', () => {
    expect(problem(mixed())).toBe('');
    const msg = problem(
      mixed((g) => {
        g.meters.usageKinds = { interval: 'consumption', register: 'register' as never };
      }),
    );
    expect(msg).toContain('generic.meters.usageKinds.register');
    expect(msg).toContain('consumption');
    expect(msg).toContain('reading');
    expect(msg).not.toContain('usageKinds.interval');
  });

  it('usage.kind together with meters.fields.usageKind is refused, and so is neither', () => {
    const both = problem(
      mixed((g) => {
        g.usage.kind = 'consumption';
      }),
    );
    expect(both).toContain('generic.usage.kind');
    expect(both).toContain('not allowed with meters.fields.usageKind');
    const neither = problem(usage({ kind: undefined }));
    expect(neither).toContain('generic.usage.kind');
    expect(neither).toMatch(/required: "consumption" or "reading".*meters\.fields\.usageKind/);
  });

  it('meters.usageKinds and meters.fields.usageKind need each other', () => {
    const noMapping = problem(
      mixed((g) => {
        delete g.meters.usageKinds;
      }),
    );
    expect(noMapping).toContain('generic.meters.usageKinds');
    expect(noMapping).toContain('map each value of "kind" to consumption or reading');
    const empty = problem(
      mixed((g) => {
        g.meters.usageKinds = {};
      }),
    );
    expect(empty).toContain('generic.meters.usageKinds');
    const noField = problem(
      generic((c) => {
        c.generic.meters.usageKinds = { interval: 'consumption' };
      }),
    );
    expect(noField).toContain('generic.meters.fields.usageKind');
    expect(noField).toContain('the meter field whose value the mapping reads');
  });

  it('two usageKinds keys that match the same meter value are refused', () => {
    const msg = problem(
      mixed((g) => {
        g.meters.usageKinds = { half_hourly: 'consumption', register: 'reading', 'Half Hourly': 'reading' };
      }),
    );
    expect(msg).toContain('generic.meters.usageKinds.Half Hourly');
    expect(msg).toContain('"half_hourly"');
    expect(msg).toContain('keep one');
    // Different values are fine even when they map to the same kind.
    expect(
      problem(
        mixed((g) => {
          g.meters.usageKinds = { interval: 'consumption', hourly: 'consumption', register: 'reading' };
        }),
      ),
    ).toBe('');
  });

  it('every kind used needs its time fields and a value, named under usageByKind.<kind>; an entry no meter uses is refused', () => {
    const noEnd = problem(
      mixed((g) => {
        g.usageByKind = { ...g.usageByKind, consumption: { fields: { start: 'from', value: 'value' } } };
      }),
    );
    expect(noEnd).toContain('generic.usageByKind.consumption.fields.end');
    expect(noEnd).toContain('kind "consumption"');
    expect(noEnd).not.toContain('reading.fields');
    const noReading = problem(
      mixed((g) => {
        g.usageByKind = { ...g.usageByKind, reading: { fields: { value: 'reading' } } };
      }),
    );
    expect(noReading).toContain('generic.usageByKind.reading.fields.timestamp');
    const noValue = problem(
      mixed((g) => {
        g.usageByKind = { ...g.usageByKind, reading: { fields: { timestamp: 'at' } } };
      }),
    );
    expect(noValue).toContain('generic.usageByKind.reading.fields.value');
    // A field shared in usage.fields serves every kind.
    expect(
      problem(
        mixed((g) => {
          g.usage.fields = { meterId: 'meter', value: 'value' };
          g.usageByKind = {
            consumption: { fields: { start: 'from', end: 'to' } },
            reading: { fields: { timestamp: 'at' } },
          };
        }),
      ),
    ).toBe('');
    const unused = problem(
      mixed((g) => {
        g.meters.usageKinds = { interval: 'consumption', hourly: 'consumption' };
      }),
    );
    expect(unused).toContain('generic.usageByKind.reading');
    expect(unused).toContain('never used: no value of meters.usageKinds maps to "reading"');
    expect(problem(usage({ kind: 'consumption' }))).toBe('');
    const singleWithByKind = problem(
      generic((c) => {
        c.generic.usageByKind = { reading: { fields: { timestamp: 'at' } } };
      }),
    );
    expect(singleWithByKind).toContain('generic.usageByKind.reading');
    expect(singleWithByKind).toContain('usageByKind needs meters.fields.usageKind');
  });

  it('meters.filter keys must be valid field paths', () => {
    expect(
      problem(
        mixed((g) => {
          g.meters.filter = {
            exclude: { kind: ['virtual'] },
            include: { 'status.code': ['active', 1, true] },
          };
        }),
      ),
    ).toBe('');
    const msg = problem(
      mixed((g) => {
        g.meters.filter = {
          exclude: { 'status..code': ['retired'], kind: ['virtual'] },
          include: { 'tags[0]': ['a'] },
        };
      }),
    );
    expect(msg).toContain('generic.meters.filter.exclude.status..code');
    expect(msg).toContain('empty segment');
    expect(msg).toContain('generic.meters.filter.include.tags[0]');
    expect(msg).toContain('"tags.0"');
    expect(msg).not.toContain('filter.exclude.kind');
  });
});
