import { z } from 'zod';

/** connection.options of an Arcadia Plug connection. The descriptions are the reference. */
export const arcadiaOptionsSchema = z
  .object({
    correlationId: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe('correlationId(s) whose credentials are synced; absent = every credential of the account'),
    arcVersion: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/)
      .default('2024-02-01')
      .describe('Arc-Version header'),
    sandbox: z.boolean().default(false).describe('X-Sandbox-Mode header'),
    intervals: z
      .enum(['raw', 'normalized'], {
        // Both endpoints describe the same consumption (normalized is the raw data cut into
        // quarter-hours): feeding both into the pipeline would count it twice.
        message: 'intervals must be "raw" or "normalized" (not both: they cover the same consumption)',
      })
      .default('normalized')
      .describe(
        'which interval endpoint feeds the pipeline: normalized (15-minute) or raw (the utility resolution); one only, both would count the same consumption twice',
      ),
    maxRangeDays: z.number().int().positive().default(31).describe('longest range of one intervals request'),
    pageSize: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(100)
      .describe('page size of credential and meter listings'),
    credentialIdsPerRequest: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(20)
      .describe('credential ids per List Meters search'),
    activate: z
      .boolean()
      .default(true)
      .describe('activate intervals (PATCH) for meters in INTERVALS_NOT_REQUESTED'),
    activationPollMs: z
      .number()
      .int()
      .min(0)
      .default(5_000)
      .describe('pause between activation status polls (ms)'),
    activationMaxPolls: z.number().int().min(1).default(60).describe('polls before POLL_ACTIVATION_TIMEOUT'),
    relistOnChange: z
      .number()
      .int()
      .min(0)
      .max(5)
      .default(2)
      .describe('extra listing passes when totalElements changes while paging'),
  })
  .strict();

export type ArcadiaOptions = z.infer<typeof arcadiaOptionsSchema>;
