import { z } from 'zod';

/** connection.options of an EnerKey connection. The descriptions are the reference. */
export const enerkeyOptionsSchema = z
  .object({
    values: z
      .array(z.enum(['hourly', 'monthly']))
      .length(1, {
        message:
          'choose one of hourly or monthly: both cover the same consumption, and aggregating both would count it twice (reconcile reads the monthly totals itself)',
      })
      .default(['hourly'])
      .describe(
        'which value endpoint feeds the pipeline: hourly, or monthly for meters that only have monthly data',
      ),
    batchSize: z.number().int().min(1).max(100).default(100).describe('meters per values request'),
    facilityPageSize: z
      .number()
      .int()
      .min(1)
      .max(200)
      .default(200)
      .describe('pageSize of the facilities listing'),
    facilitiesPerMeterRequest: z
      .number()
      .int()
      .min(1)
      .max(500)
      .default(50)
      .describe('facility ids per meters request'),
    hourlyMaxRangeDays: z
      .number()
      .int()
      .positive()
      .default(31)
      .describe('longest range of one hourly values request'),
    monthlyMaxRangeDays: z
      .number()
      .int()
      .positive()
      .default(366)
      .describe('longest range of one monthly values request'),
    utcOffset: z
      .string()
      .regex(/^(Z|[+-]\d{2}:\d{2})$/)
      .default('+00:00')
      .describe('offset of the from/to timestamps sent (responses come back in the same format)'),
  })
  .strict();

export type EnerKeyOptions = z.infer<typeof enerkeyOptionsSchema>;
