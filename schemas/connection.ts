/**
 * A connection: one configured provider account. Files (YAML or JSON) are validated with this
 * schema; secrets appear only as the NAMES of environment variables (`...Env` fields), never as
 * values. The descriptions are the reference documentation of the connection file.
 */
import { z } from 'zod';

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable NAME (A-Z, 0-9, _), not a secret value');

const isIanaZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
};
export const ianaZone = z.string().refine(isIanaZone, { message: 'not a valid IANA time zone' });

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
              validFrom: z.string().optional().describe('ISO date; the key is not used before'),
              validTo: z.string().optional().describe('ISO date; the key is not used after'),
            })
            .strict(),
        )
        .min(1)
        .describe(
          'one or more keys (EnerKey issues two per profile for rotation); first valid one is used, the next on 401',
        ),
    })
    .strict(),
  z.object({ type: z.literal('basic'), usernameEnv: envName, passwordEnv: envName }).strict(),
  z
    .object({
      type: z.literal('oauth2ClientCredentials'),
      tokenUrl: z.string().describe('absolute URL, or a path relative to the base URL'),
      clientIdEnv: envName,
      clientSecretEnv: envName,
      scope: z.string().optional(),
      refreshSkewSeconds: z.number().int().min(0).default(30).describe('refresh this long before expiry'),
    })
    .strict(),
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
    .strict(),
  z
    .object({
      type: z.literal('bearer'),
      tokenEnv: envName,
      header: z.string().default('Authorization'),
      format: z.string().default('Bearer {token}'),
    })
    .strict(),
  z.object({ type: z.literal('none') }).strict(),
]);
export type AuthConfig = z.infer<typeof authSchema>;

export const paginationSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }).strict(),
  z
    .object({
      type: z.literal('offset'),
      offsetParam: z.string().default('offset'),
      limitParam: z.string().default('limit'),
      limit: z.number().int().positive().default(100),
      totalPath: z.string().optional().describe('field path of the total count, if the provider gives one'),
    })
    .strict(),
  z
    .object({
      type: z.literal('page'),
      pageParam: z.string().default('page'),
      sizeParam: z.string().default('size'),
      size: z.number().int().positive().default(100),
      firstPage: z.number().int().min(0).default(0),
      totalPagesPath: z.string().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('cursor'),
      cursorParam: z.string().describe('query parameter that carries the cursor'),
      nextPath: z
        .string()
        .optional()
        .describe(
          'field path of the next cursor/token (or next URL) in the body; absent or empty = last page',
        ),
      nextHeader: z
        .string()
        .optional()
        .describe('response header carrying the next cursor instead (e.g. X-Next-Page-Token for CSV bodies)'),
    })
    .strict()
    .refine((p) => p.nextPath !== undefined || p.nextHeader !== undefined, {
      message: 'cursor pagination needs nextPath or nextHeader',
    }),
  z
    .object({ type: z.literal('link') })
    .strict()
    .describe('RFC 8288 Link header with rel="next"'),
]);
export type PaginationConfig = z.infer<typeof paginationSchema>;

const fieldPath = z
  .string()
  .describe('dot path into one item, e.g. "location.id" or "@_id" for an XML attribute');

export const genericEndpointSchema = z
  .object({
    path: z.string().describe('path relative to the base URL; {meterId} is replaced for per-meter endpoints'),
    query: z.record(z.string(), z.string()).default({}),
    itemsPath: z
      .string()
      .default('')
      .describe('dot path of the item array in the body ("" = the body is the array)'),
    pagination: paginationSchema.default({ type: 'none' }),
  })
  .strict();

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
          .strict(),
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
          metadata: z.record(z.string(), fieldPath).default({}),
        })
        .strict(),
    }),
    usage: genericEndpointSchema.extend({
      kind: z
        .enum(['consumption', 'reading'])
        .describe('consumption: value per period; reading: register value'),
      meterParam: z
        .string()
        .optional()
        .describe('query parameter for the meter id when the path has no {meterId}'),
      dateParams: z
        .object({
          from: z.string().default('from'),
          to: z.string().default('to'),
          format: z.enum(['date', 'datetime']).default('date').describe('YYYY-MM-DD or ISO 8601 with offset'),
          toInclusive: z.boolean().default(false),
        })
        .strict()
        .default({ from: 'from', to: 'to', format: 'date', toInclusive: false }),
      maxRangeDays: z.number().int().positive().optional().describe('longest range one request may ask for'),
      fields: z
        .object({
          meterId: fieldPath.optional(),
          start: fieldPath.optional().describe('consumption start (inclusive)'),
          end: fieldPath.optional().describe('consumption end (exclusive)'),
          timestamp: fieldPath.optional().describe('reading timestamp'),
          value: fieldPath,
          redelivery: fieldPath.optional(),
          production: fieldPath.optional(),
          cost: fieldPath.optional(),
          currency: fieldPath.optional(),
          estimated: fieldPath.optional(),
          unit: fieldPath.optional(),
        })
        .strict(),
    }),
  })
  .strict();
export type GenericConnectorConfig = z.infer<typeof genericConnectorSchema>;

export const meterTypeMappingSchema = z.record(
  z.string().describe('provider classification (case-insensitive)'),
  z
    .object({
      type: z.enum(['Energy', 'Water', 'Waste']),
      subtype: z.string().optional(),
    })
    .strict(),
);

export const scheduleSchema = z.union([
  z.object({ preset: z.enum(['hourly', 'daily', 'weekly', 'monthly']) }).strict(),
  z.object({ cron: z.string().describe('node-cron expression') }).strict(),
]);

export const connectionSchema = z
  .object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, _ and -; at most 63 characters')
      .describe('stable connection_id chosen by the operator; part of every key'),
    provider: z.enum(['arcadia', 'enerkey', 'generic']),
    name: z.string().optional().describe('a human label for the generic provider'),
    environment: z.enum(['staging', 'production']).default('production'),
    baseUrls: z.object({ production: z.string().url(), staging: z.string().url().optional() }).strict(),
    auth: authSchema,
    schedule: scheduleSchema.optional(),
    timeZone: ianaZone.optional().describe('zone of local timestamps without offset, and default meter zone'),
    meterTypes: meterTypeMappingSchema.default({}),
    usageStart: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/)
      .optional()
      .describe('first day to fetch when a meter has no watermark yet'),
    rollover: z
      .object({
        default: z.number().positive().optional(),
        meters: z.record(z.string(), z.number().positive()).default({}),
      })
      .strict()
      .default({ meters: {} })
      .describe('register value at which cumulative meters wrap to zero'),
    budget: z
      .object({
        perMinute: z.number().int().positive().optional(),
        perDay: z.number().int().positive().optional(),
      })
      .strict()
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
          .default(6 * 3_600_000)
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
        runDeadlineMs: 6 * 3_600_000,
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
      .strict()
      .default({ concurrency: 4, lookbackHours: 0, historyDays: 30 })
      .describe('how the sync engine walks meters and date ranges'),
    /** Provider-specific options (Arcadia correlationId, Arc-Version...), validated by the connector. */
    options: z.record(z.string(), z.unknown()).default({}),
    generic: genericConnectorSchema.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.provider === 'generic' && !c.generic) {
      ctx.addIssue({ code: 'custom', path: ['generic'], message: 'required when provider is "generic"' });
    }
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
