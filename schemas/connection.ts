/**
 * A connection: one configured provider account. Files (YAML or JSON) are validated with this
 * schema; secrets appear only as the NAMES of environment variables (`...Env` fields), never as
 * values. The descriptions are the reference documentation of the connection file.
 */
import { z } from 'zod';
import { arcadiaOptionsSchema } from './providers/arcadia-options.js';
import { enerkeyOptionsSchema } from './providers/enerkey-options.js';
import { looksLikeSecret } from './secret-names.js';
import { classificationKey, subtypeProblem } from './taxonomy.js';
import { DAY_MS, HOUR_MS } from './time.js';
import { isValidTimeZone } from './time-zone.js';

/**
 * `z.object(...).apply(closed)`: a strict object whose unknown keys are named with the keys valid at
 * their place (zod's own message lists none).
 */
const closed = <S extends z.ZodRawShape>(o: z.ZodObject<S>) =>
  z
    .object(o.shape, {
      error: (iss) => {
        if (iss.code !== 'unrecognized_keys') return undefined;
        const keys = iss.keys.map((k) => `"${k}"`).join(', ');
        return `unknown key ${keys}; valid keys: ${Object.keys(o.shape).join(', ')}`;
      },
    })
    .strict();

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** Epoch ms of a YYYY-MM-DD calendar date (UTC midnight), or undefined (2024-02-30, 24-1-1). */
function calendarDate(text: string): number | undefined {
  const m = DATE.exec(text);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(0).setUTCFullYear(y, mo - 1, d);
  const back = new Date(t);
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d
    ? t
    : undefined;
}

/** Epoch ms of an ISO date or date-time with offset, or undefined. */
function isoInstant(text: string): number | undefined {
  if (DATE.test(text)) return calendarDate(text);
  if (!DATE_TIME.test(text) || calendarDate(text.slice(0, 10)) === undefined) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

const isoDateOrTime = z.string().refine((s) => isoInstant(s) !== undefined, {
  message: 'must be an ISO date (2025-01-31) or date-time with offset (2025-01-31T00:00:00Z)',
});

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable NAME (A-Z, 0-9, _), not a secret value')
  // zod's message never echoes the value, so a pasted secret stays out of the error.
  .refine(
    (n) => !looksLikeSecret(n),
    'looks like a secret value: give the NAME of the environment variable that holds it',
  );

export const ianaZone = z.string().refine(isValidTimeZone, {
  message:
    'not an IANA time zone: use a name such as "Europe/Helsinki" or "UTC" (a fixed offset such as "+02:00" is not a zone)',
});

export const authSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('apiKey'),
      in: z.enum(['header', 'query']).default('header').describe('where the key is sent'),
      name: z.string().describe('header or query parameter name, e.g. Authorization or api_key'),
      format: z.string().default('{key}').describe('value template; {key} is replaced by the key'),
      keys: z
        .array(
          z
            .object({
              valueEnv: envName,
              validFrom: isoDateOrTime
                .optional()
                .describe('ISO date or date-time; the key is not used before'),
              validTo: isoDateOrTime
                .optional()
                .describe('ISO date (the whole day) or date-time; the key is not used after'),
            })
            .apply(closed)
            .superRefine((k, ctx) => {
              const from = k.validFrom === undefined ? undefined : isoInstant(k.validFrom);
              const to = k.validTo === undefined ? undefined : isoInstant(k.validTo);
              // A date-only validTo covers that whole day (as the authenticator reads it).
              const toEnd = to !== undefined && DATE.test(k.validTo ?? '') ? to + DAY_MS : to;
              if (from !== undefined && toEnd !== undefined && toEnd <= from)
                ctx.addIssue({
                  code: 'custom',
                  path: ['validTo'],
                  message: `${k.validTo} is before validFrom ${k.validFrom}: the key would never be used`,
                });
            }),
        )
        .min(1)
        .describe(
          'one or more keys (EnerKey issues two per profile for rotation); first valid one is used, the next on 401',
        ),
    })
    .apply(closed),
  z.object({ type: z.literal('basic'), usernameEnv: envName, passwordEnv: envName }).apply(closed),
  z
    .object({
      type: z.literal('oauth2ClientCredentials'),
      tokenUrl: z.string().describe('absolute URL, or a path relative to the base URL'),
      clientIdEnv: envName,
      clientSecretEnv: envName,
      scope: z.string().optional(),
      refreshSkewSeconds: z.number().int().min(0).default(30).describe('refresh this long before expiry'),
    })
    .apply(closed),
  z
    .object({
      type: z.literal('oauth2Password'),
      tokenUrl: z.string(),
      clientIdEnv: envName,
      clientSecretEnv: envName.optional(),
      usernameEnv: envName,
      passwordEnv: envName,
      scope: z.string().optional(),
      refreshSkewSeconds: z.number().int().min(0).default(30),
    })
    .apply(closed),
  z
    .object({
      type: z.literal('bearer'),
      tokenEnv: envName,
      header: z.string().default('Authorization'),
      format: z.string().default('Bearer {token}'),
    })
    .apply(closed),
  z.object({ type: z.literal('none') }).apply(closed),
]);
export type AuthConfig = z.infer<typeof authSchema>;

/**
 * What is wrong with a dot path, or undefined. Paths are names separated by dots, array elements by
 * their index ("readings.0.value"); brackets are no path syntax (only a literal "[...]" after a
 * space, as in a CSV header "Energy [kWh]").
 */
export function pathProblem(path: string): string | undefined {
  if (path === '') return 'is empty: name the field, e.g. "location.id"';
  const index = path.replace(/\[\s*(\d+)\s*\]/g, '.$1');
  if (index !== path)
    return `"${path}": brackets are not path syntax; array elements are dot segments: "${index}"`;
  let depth = 0;
  for (let i = 0; i < path.length; i++) {
    const ch = path[i];
    if (ch === '[' && (depth > 0 || path[i - 1] !== ' ')) depth = -1;
    else if (ch === '[') depth = 1;
    else if (ch === ']') depth -= 1;
    if (depth < 0) break;
  }
  if (depth !== 0)
    return `"${path}": unbalanced or misplaced bracket; array elements are dot segments, e.g. "items.0.value"`;
  const segments = path.split('.');
  if (segments.includes(''))
    return `"${path}" has an empty segment (two dots, or a dot at the start or end); e.g. "location.id"`;
  const spaced = segments.find((seg) => seg.trim() !== seg);
  if (spaced !== undefined) return `"${path}": segment "${spaced}" starts or ends with a space`;
  return undefined;
}

const checkPath = (path: string, ctx: z.core.$RefinementCtx<string>): void => {
  const problem = pathProblem(path);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};

const fieldPath = z
  .string()
  .superRefine(checkPath)
  .describe(
    'dot path into one item: names separated by dots, array elements by index, e.g. "location.id", "readings.0.value", "@_id" for an XML attribute; a key containing dots (a CSV header "meter.id") is matched whole first',
  );

/** A path into a response body: the field-path syntax, or "" for the body itself. */
const bodyPath = z.string().superRefine((path, ctx) => {
  if (path !== '') checkPath(path, ctx);
});

export const paginationSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }).apply(closed),
  z
    .object({
      type: z.literal('offset'),
      offsetParam: z.string().default('offset'),
      limitParam: z.string().default('limit'),
      limit: z.number().int().positive().default(100),
      totalPath: fieldPath.optional().describe('field path of the total count, if the provider gives one'),
    })
    .apply(closed),
  z
    .object({
      type: z.literal('page'),
      pageParam: z.string().default('page'),
      sizeParam: z.string().default('size'),
      size: z.number().int().positive().default(100),
      firstPage: z.number().int().min(0).default(0),
      totalPagesPath: fieldPath.optional(),
    })
    .apply(closed),
  z
    .object({
      type: z.literal('cursor'),
      cursorParam: z.string().describe('query parameter that carries the cursor'),
      nextPath: fieldPath
        .optional()
        .describe(
          'field path of the next cursor/token (or next URL) in the body; absent or empty = last page',
        ),
      nextHeader: z
        .string()
        .optional()
        .describe('response header carrying the next cursor instead (e.g. X-Next-Page-Token for CSV bodies)'),
    })
    .apply(closed)
    .refine((p) => p.nextPath !== undefined || p.nextHeader !== undefined, {
      message: 'cursor pagination needs nextPath or nextHeader',
    }),
  z
    .object({ type: z.literal('link') })
    .apply(closed)
    .describe('RFC 8288 Link header with rel="next"'),
]);
export type PaginationConfig = z.infer<typeof paginationSchema>;

export const genericEndpointSchema = z
  .object({
    path: z.string().describe('path relative to the base URL; {meterId} is replaced for per-meter endpoints'),
    query: z.record(z.string(), z.string()).default({}),
    itemsPath: bodyPath
      .default('')
      .describe('dot path of the item array in the body ("" = the body is the array)'),
    pagination: paginationSchema.default({ type: 'none' }),
  })
  .apply(closed);

export const usageKindSchema = z
  .enum(['consumption', 'reading'])
  .describe('consumption: a value per period (start, end); reading: a register value at a time (timestamp)');
export type UsageKind = z.infer<typeof usageKindSchema>;

/** The time fields each usage kind reads (the normaliser quarantines every row without them). */
const KIND_FIELDS = { consumption: ['start', 'end'], reading: ['timestamp'] } as const;

const dateParamsSchema = z
  .object({
    from: z.string().default('from'),
    to: z.string().default('to'),
    format: z.enum(['date', 'datetime']).default('date').describe('YYYY-MM-DD or ISO 8601 with offset'),
    toInclusive: z.boolean().default(false),
  })
  .apply(closed);

const usageFieldsSchema = z
  .object({
    meterId: fieldPath.optional(),
    start: fieldPath.optional().describe('consumption start (inclusive)'),
    end: fieldPath.optional().describe('consumption end (exclusive)'),
    timestamp: fieldPath.optional().describe('reading timestamp'),
    value: fieldPath
      .optional()
      .describe('the consumption or register value; required for every kind used (here or in usageByKind)'),
    redelivery: fieldPath.optional(),
    production: fieldPath.optional(),
    cost: fieldPath.optional(),
    currency: fieldPath.optional(),
    estimated: fieldPath.optional(),
    unit: fieldPath.optional(),
  })
  .apply(closed);

/** What `usageByKind.<kind>` may change: the keys of `usage` it names (fields: field by field). */
const kindUsageSchema = z
  .object({
    path: z.string().optional().describe('the endpoint of this kind when it differs from usage.path'),
    query: z.record(z.string(), z.string()).optional(),
    itemsPath: bodyPath.optional(),
    pagination: paginationSchema.optional(),
    meterParam: z.string().optional(),
    dateParams: dateParamsSchema.optional(),
    maxRangeDays: z.number().int().positive().optional(),
    fields: usageFieldsSchema.optional().describe('merged field by field over usage.fields'),
  })
  .apply(closed);

/** Values of a meter filter: YAML may type 1 or true where the provider sends "1" or "true". */
const filterValues = z
  .array(z.union([z.string(), z.number(), z.boolean()]).transform(String))
  .min(1, 'list at least one value');

const meterFilterSchema = z
  .object({
    include: z
      .record(z.string(), filterValues)
      .optional()
      .describe('field path → values: a meter is kept only when each named field has one of its values'),
    exclude: z
      .record(z.string(), filterValues)
      .optional()
      .describe('field path → values: a meter with any named field at one of its values is left out'),
  })
  .apply(closed)
  .describe(
    'meters left out entirely (no meter record, no usage request), by field values compared like meterTypes keys (case-insensitive, "_" and spaces alike); e.g. exclude: { status: [retired] }',
  );

interface UsageShape {
  path?: string | undefined;
  meterParam?: string | undefined;
  fields?: Partial<Record<'meterId' | 'start' | 'end' | 'timestamp' | 'value', string | undefined>>;
}

interface GenericShape {
  assets?: { path: string } | undefined;
  meters: {
    path: string;
    fields: { usageKind?: string | undefined };
    usageKinds?: Record<string, UsageKind> | undefined;
    filter?: { include?: Record<string, string[]>; exclude?: Record<string, string[]> } | undefined;
  };
  usage: UsageShape & { path: string; kind?: UsageKind | undefined };
  usageByKind?: Partial<Record<UsageKind, UsageShape>> | undefined;
}

/** The kinds a connection's meters can have: every value of usageKinds, else usage.kind. */
function kindsOf(g: GenericShape): UsageKind[] {
  if (g.meters.fields.usageKind === undefined) return g.usage.kind ? [g.usage.kind] : [];
  return [...new Set(Object.values(g.meters.usageKinds ?? {}))].sort();
}

/** Placeholders in endpoint paths: only {meterId}, only in usage paths. */
function checkPlaceholders(g: GenericShape, ctx: z.core.$RefinementCtx<GenericShape>): void {
  const endpoints: [(string | number)[], string | undefined, boolean][] = [
    [['assets', 'path'], g.assets?.path, false],
    [['meters', 'path'], g.meters.path, false],
    [['usage', 'path'], g.usage.path, true],
    ...Object.entries(g.usageByKind ?? {}).map(
      ([k, u]): [(string | number)[], string | undefined, boolean] => [
        ['usageByKind', k, 'path'],
        u.path,
        true,
      ],
    ),
  ];
  for (const [at, path, usage] of endpoints) {
    for (const [placeholder] of (path ?? '').matchAll(/\{[^}]*\}/g)) {
      if (usage && placeholder === '{meterId}') continue;
      ctx.addIssue({
        code: 'custom',
        path: at,
        message: usage
          ? `unknown placeholder ${placeholder}: the only one is {meterId}, replaced by each meter's id`
          : `placeholder ${placeholder} is never replaced here ({meterId} exists only in usage paths)`,
      });
    }
  }
}

/** Where the meter's kind comes from: usage.kind for every meter, or a meter field mapped by usageKinds. */
function checkKindSource(g: GenericShape, ctx: z.core.$RefinementCtx<GenericShape>): void {
  const field = g.meters.fields.usageKind;
  if (field === undefined && g.usage.kind === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['usage', 'kind'],
      message:
        'required: "consumption" or "reading" for every meter, or give meters.fields.usageKind and meters.usageKinds to read each meter\'s kind from a meter field',
    });
  if (field !== undefined && g.usage.kind !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['usage', 'kind'],
      message:
        "not allowed with meters.fields.usageKind: each meter's kind comes from that field through meters.usageKinds; remove usage.kind",
    });
  if (field !== undefined && Object.keys(g.meters.usageKinds ?? {}).length === 0)
    ctx.addIssue({
      code: 'custom',
      path: ['meters', 'usageKinds'],
      message: `required with meters.fields.usageKind: map each value of "${field}" to consumption or reading, e.g. { interval: consumption, register: reading }`,
    });
  if (field === undefined && g.meters.usageKinds !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['meters', 'fields', 'usageKind'],
      message: 'required with meters.usageKinds: the meter field whose value the mapping reads',
    });
  const seen = new Map<string, string>();
  for (const key of Object.keys(g.meters.usageKinds ?? {})) {
    const other = seen.get(classificationKey(key));
    if (other !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['meters', 'usageKinds', key],
        message: `matches the same value as "${other}" (compared case-insensitively, "_" and spaces alike): keep one`,
      });
    seen.set(classificationKey(key), key);
  }
  for (const [mode, entries] of Object.entries(g.meters.filter ?? {}))
    for (const path of Object.keys(entries ?? {})) {
      const problem = pathProblem(path);
      if (problem) ctx.addIssue({ code: 'custom', path: ['meters', 'filter', mode, path], message: problem });
    }
}

/** Rules across fields of `generic`: path placeholders, the kinds, each kind's meter id, value and time fields. */
function checkGeneric(g: GenericShape, ctx: z.core.$RefinementCtx<GenericShape>): void {
  checkPlaceholders(g, ctx);
  checkKindSource(g, ctx);
  const kinds = kindsOf(g);
  for (const k of Object.keys(g.usageByKind ?? {}) as UsageKind[]) {
    if (!kinds.includes(k))
      ctx.addIssue({
        code: 'custom',
        path: ['usageByKind', k],
        message:
          g.meters.fields.usageKind === undefined
            ? `never used: every meter is of kind "${g.usage.kind ?? ''}" (usage.kind); usageByKind needs meters.fields.usageKind`
            : `never used: no value of meters.usageKinds maps to "${k}"`,
      });
  }
  for (const kind of kinds) {
    const own = g.usageByKind?.[kind];
    const u = { ...g.usage, ...own, fields: { ...g.usage.fields, ...own?.fields } };
    // A missing field is named where it belongs: usage when the connection has one kind.
    const at = (field: string): (string | number)[] =>
      own || (g.meters.fields.usageKind !== undefined && kinds.length > 1)
        ? ['usageByKind', kind, 'fields', field]
        : ['usage', 'fields', field];
    const whose =
      g.meters.fields.usageKind === undefined
        ? `usage.kind is "${kind}"`
        : `meters have kind "${kind}" (meters.usageKinds)`;
    const path = u.path ?? g.usage.path;
    if (!path.includes('{meterId}') && u.meterParam === undefined && u.fields.meterId === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: own ? ['usageByKind', kind, 'fields', 'meterId'] : ['usage', 'fields', 'meterId'],
        message:
          'required when one request serves all meters (usage.path has no {meterId} and there is no meterParam): it attributes each row to its meter',
      });
    }
    for (const field of [...KIND_FIELDS[kind], 'value'] as const) {
      if (u.fields[field] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: at(field),
          message:
            field === 'value'
              ? `required when ${whose}: the value of each row (in usage.fields or usageByKind.${kind}.fields)`
              : `required when ${whose} (it reads ${KIND_FIELDS[kind].join(' and ')} of each row)`,
        });
    }
  }
}

export const genericConnectorSchema = z
  .object({
    format: z.enum(['json', 'xml', 'csv']).default('json'),
    assets: genericEndpointSchema
      .extend({
        fields: z
          .object({
            externalId: fieldPath,
            name: fieldPath,
            address: fieldPath.optional(),
            metadata: z.record(z.string(), fieldPath).default({}),
          })
          .apply(closed),
      })
      .optional()
      .describe('omit when the provider has no asset endpoint: assets are then derived from meter fields'),
    meters: genericEndpointSchema.extend({
      fields: z
        .object({
          externalId: fieldPath,
          assetId: fieldPath,
          assetName: fieldPath.optional().describe('used to derive assets when there is no asset endpoint'),
          assetAddress: fieldPath.optional(),
          type: fieldPath.optional().describe('provider classification, mapped through meterTypes'),
          subtype: fieldPath.optional(),
          unit: fieldPath,
          description: fieldPath.optional(),
          timeZone: fieldPath.optional(),
          usageKind: fieldPath
            .optional()
            .describe(
              'the meter field that tells how its usage is read, mapped through meters.usageKinds (instead of one usage.kind for every meter); a meter whose value is not mapped is quarantined as NORM_USAGE_KIND_UNMAPPED and its usage is not fetched',
            ),
          metadata: z.record(z.string(), fieldPath).default({}),
        })
        .apply(closed),
      usageKinds: z
        .record(
          z.string().describe('a value of meters.fields.usageKind (case-insensitive, "_" and spaces alike)'),
          usageKindSchema,
        )
        .optional()
        .describe(
          'value of meters.fields.usageKind → consumption | reading, e.g. { interval: consumption, register: reading }',
        ),
      filter: meterFilterSchema.optional(),
    }),
    usage: genericEndpointSchema.extend({
      kind: usageKindSchema
        .optional()
        .describe(
          'the kind of every meter: consumption (value per period) or reading (register value); omit when meters.fields.usageKind gives each meter its own',
        ),
      meterParam: z
        .string()
        .optional()
        .describe('query parameter for the meter id when the path has no {meterId}'),
      dateParams: dateParamsSchema.default({ from: 'from', to: 'to', format: 'date', toInclusive: false }),
      maxRangeDays: z.number().int().positive().optional().describe('longest range one request may ask for'),
      fields: usageFieldsSchema,
    }),
    usageByKind: z
      .object({ consumption: kindUsageSchema.optional(), reading: kindUsageSchema.optional() })
      .apply(closed)
      .optional()
      .describe(
        "what differs for meters of one kind (with meters.fields.usageKind): each key given replaces usage's (path, query, itemsPath, pagination, meterParam, dateParams, maxRangeDays); fields are merged over usage.fields field by field. A meter's rows are requested and read with its own kind only",
      ),
  })
  .apply(closed)
  .superRefine(checkGeneric);
export type GenericConnectorConfig = z.infer<typeof genericConnectorSchema>;

/** How the meters of one kind are requested and read: usage, with usageByKind.<kind> over it. */
export type KindUsageConfig = Omit<GenericConnectorConfig['usage'], 'kind'> & { kind: UsageKind };

/** The kinds the meters of a generic connection can have (one when usage.kind is set). */
export function usageKindsOf(g: GenericConnectorConfig): UsageKind[] {
  return kindsOf(g);
}

export function usageOfKind(g: GenericConnectorConfig, kind: UsageKind): KindUsageConfig {
  const { kind: _single, ...base } = g.usage;
  const own = g.usageByKind?.[kind];
  const merged: KindUsageConfig = { ...base, kind, fields: { ...base.fields, ...own?.fields } };
  for (const [key, value] of Object.entries(own ?? {}))
    if (key !== 'fields' && value !== undefined) Object.assign(merged, { [key]: value });
  return merged;
}

/**
 * A meter's usage kind from the text of its meters.fields.usageKind field (usage.kind when the
 * connection has one kind); undefined when the value is absent or not in meters.usageKinds.
 */
export function meterUsageKind(g: GenericConnectorConfig, value: string | undefined): UsageKind | undefined {
  if (g.meters.fields.usageKind === undefined) return g.usage.kind;
  if (value === undefined) return undefined;
  const key = classificationKey(value);
  for (const [k, kind] of Object.entries(g.meters.usageKinds ?? {}))
    if (classificationKey(k) === key) return kind;
  return undefined;
}

/**
 * Whether meters.filter keeps a meter, given how to read a field's text from it (the poller and
 * the normaliser each read items their own way).
 */
export function meterKept(g: GenericConnectorConfig, read: (path: string) => string | undefined): boolean {
  const f = g.meters.filter;
  if (!f) return true;
  const has = (path: string, values: string[]): boolean => {
    const text = read(path);
    return text !== undefined && values.some((v) => classificationKey(v) === classificationKey(text));
  };
  for (const [path, values] of Object.entries(f.include ?? {})) if (!has(path, values)) return false;
  for (const [path, values] of Object.entries(f.exclude ?? {})) if (has(path, values)) return false;
  return true;
}

export const meterTypeMappingSchema = z
  .record(
    z.string().describe('provider classification (case-insensitive; "_" and spaces alike)'),
    z
      .object({
        type: z.enum(['Energy', 'Water', 'Waste']),
        subtype: z.string().optional().describe('a sub-category of the type in schemas/taxonomy.ts'),
      })
      .apply(closed),
  )
  .superRefine((mapping, ctx) => {
    const seen = new Map<string, string>();
    for (const [key, target] of Object.entries(mapping)) {
      const other = seen.get(classificationKey(key));
      if (other !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `matches the same classification as "${other}" (keys are compared case-insensitively, "_" and spaces alike): keep one`,
        });
      seen.set(classificationKey(key), key);
      const problem = target.subtype ? subtypeProblem(target.type, target.subtype) : undefined;
      if (problem) ctx.addIssue({ code: 'custom', path: [key, 'subtype'], message: problem });
    }
  });

export const scheduleSchema = z.union([
  z.object({ preset: z.enum(['hourly', 'daily', 'weekly', 'monthly']) }).apply(closed),
  z.object({ cron: z.string().describe('node-cron expression') }).apply(closed),
]);

/** Earliest first day to fetch; also rejects a year typed with two digits. */
const MIN_USAGE_START = '1900-01-01';

function checkUsageStart(date: string, ctx: z.core.$RefinementCtx<string>): void {
  const t = calendarDate(date);
  const why = !DATE.test(date)
    ? 'must be a date YYYY-MM-DD'
    : t === undefined
      ? `"${date}" is not a calendar date`
      : date < MIN_USAGE_START
        ? `"${date}" is before ${MIN_USAGE_START}`
        : // One day of slack: the day may already have begun in a zone east of UTC.
          t > Date.now() + DAY_MS
          ? `"${date}" is in the future: it is the first day fetched, so it must have begun`
          : undefined;
  if (why) ctx.addIssue({ code: 'custom', message: why });
}

const rolloverValue = z.number().refine((v) => Number.isFinite(v) && v > 0, {
  error: 'must be a positive finite number: the register value at which the meter wraps to zero',
});

/**
 * Each provider's `options` schema: the connectors parse them again for their defaults, but a
 * mistake is found here, when the file is loaded, not at the first sync.
 */
const OPTION_SCHEMAS = {
  arcadia: arcadiaOptionsSchema,
  enerkey: enerkeyOptionsSchema,
  generic: z.object({}).strict(),
} satisfies Record<string, z.ZodObject>;

function checkOptions(
  provider: keyof typeof OPTION_SCHEMAS,
  options: Record<string, unknown>,
  ctx: z.core.$RefinementCtx<unknown>,
): void {
  const schema = OPTION_SCHEMAS[provider];
  const r = schema.safeParse(options);
  if (r.success) return;
  const valid = Object.keys(schema.shape);
  for (const issue of r.error.issues) {
    if (issue.code !== 'unrecognized_keys') {
      ctx.addIssue({ code: 'custom', path: ['options', ...issue.path], message: issue.message });
      continue;
    }
    for (const key of issue.keys)
      ctx.addIssue({
        code: 'custom',
        path: ['options', ...issue.path, key],
        message:
          valid.length === 0
            ? `unknown option: the ${provider} connector has no options (everything is configured under "${provider}")`
            : `unknown option; valid keys: ${valid.join(', ')}`,
      });
  }
}

export const connectionSchema = z
  .object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, _ and -; at most 63 characters')
      .describe('stable connection_id chosen by the operator; part of every key'),
    provider: z.enum(['arcadia', 'enerkey', 'generic']),
    name: z.string().optional().describe('a human label for the generic provider'),
    environment: z.enum(['staging', 'production']).default('production'),
    baseUrls: z.object({ production: z.string().url(), staging: z.string().url().optional() }).apply(closed),
    auth: authSchema,
    schedule: scheduleSchema.optional(),
    timeZone: ianaZone.optional().describe('zone of local timestamps without offset, and default meter zone'),
    meterTypes: meterTypeMappingSchema.default({}),
    usageStart: z
      .string()
      .superRefine(checkUsageStart)
      .optional()
      .describe('first day to fetch when a meter has no watermark yet'),
    rollover: z
      .object({
        default: rolloverValue.optional(),
        meters: z.record(z.string().describe('meter external id'), rolloverValue).default({}),
      })
      .apply(closed)
      .default({ meters: {} })
      .describe('register value at which cumulative meters wrap to zero'),
    budget: z
      .object({
        perMinute: z.number().int().positive().optional(),
        perDay: z.number().int().positive().optional(),
      })
      .apply(closed)
      .default({}),
    http: z
      .object({
        timeoutMs: z.number().int().positive().default(30_000),
        maxResponseBytes: z
          .number()
          .int()
          .positive()
          .default(50 * 1024 * 1024),
        maxRetries: z.number().int().min(0).default(6),
        backoffBaseMs: z.number().int().positive().default(500),
        backoffMaxMs: z.number().int().positive().default(60_000),
        runDeadlineMs: z
          .number()
          .int()
          .positive()
          .default(6 * HOUR_MS)
          .describe('a sync run still going after this long is aborted and recorded as POLL_RUN_DEADLINE'),
        requestDeadlineMs: z
          .number()
          .int()
          .positive()
          .default(5 * 60_000)
          .describe('total time of one request attempt, headers and whole body; timeoutMs is idle time'),
        maxPages: z
          .number()
          .int()
          .positive()
          .default(10_000)
          .describe('pages one listing may have before it fails with POLL_PAGINATION_LOOP'),
      })
      .strict()
      .default({
        timeoutMs: 30_000,
        maxResponseBytes: 50 * 1024 * 1024,
        maxRetries: 6,
        backoffBaseMs: 500,
        backoffMaxMs: 60_000,
        runDeadlineMs: 6 * HOUR_MS,
        requestDeadlineMs: 5 * 60_000,
        maxPages: 10_000,
      }),
    sync: z
      .object({
        concurrency: z.number().int().min(1).max(64).default(4).describe('meter batches fetched in parallel'),
        lookbackHours: z
          .number()
          .min(0)
          .default(0)
          .describe('re-fetch this long before each watermark (late provider data); duplicates are safe'),
        historyDays: z
          .number()
          .int()
          .positive()
          .default(30)
          .describe('days fetched for a meter with no watermark when usageStart is not set'),
      })
      .apply(closed)
      .default({ concurrency: 4, lookbackHours: 0, historyDays: 30 })
      .describe('how the sync engine walks meters and date ranges'),
    /** Provider-specific options (Arcadia correlationId, Arc-Version...): see OPTION_SCHEMAS. */
    options: z.record(z.string(), z.unknown()).default({}),
    generic: genericConnectorSchema.optional(),
  })
  .apply(closed)
  .superRefine((c, ctx) => {
    if (c.provider === 'generic' && !c.generic) {
      ctx.addIssue({ code: 'custom', path: ['generic'], message: 'required when provider is "generic"' });
    }
    checkOptions(c.provider, c.options, ctx);
    if (c.environment === 'staging' && !c.baseUrls.staging) {
      ctx.addIssue({
        code: 'custom',
        path: ['baseUrls', 'staging'],
        message: 'required when environment is "staging"',
      });
    }
  });

export type ConnectionConfig = z.infer<typeof connectionSchema>;
export type ConnectionInput = z.input<typeof connectionSchema>;

export function baseUrlOf(c: ConnectionConfig): string {
  return c.environment === 'staging' && c.baseUrls.staging ? c.baseUrls.staging : c.baseUrls.production;
}
