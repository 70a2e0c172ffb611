import { z } from 'zod';

/** connection.options of an EnerKey connection. The descriptions are the reference. */
export const enerkeyOptionsSchema = z
  .object({
    values: z
      .array(z.enum(['hourly', 'monthly']))
      .min(1)
      .default(['hourly', 'monthly'])
      .describe('which value endpoints to read'),
    batchSize: z.number().int().min(1).max(100).default(100).describe('meters per values request'),
    facilityPageSize: z.number().int().min(1).max(200).default(200).describe('pageSize of the facilities listing'),
    facilitiesPerMeterRequest: z.number().int().min(1).max(500).default(50).describe('facility ids per meters request'),
    hourlyMaxRangeDays: z.number().int().positive().default(31).describe('longest range of one hourly values request'),
    monthlyMaxRangeDays: z.number().int().positive().default(366).describe('longest range of one monthly values request'),
    utcOffset: z
      .string()
      .regex(/^(Z|[+-]\d{2}:\d{2})$/)
      .default('+00:00')
      .describe('offset of the from/to timestamps sent (responses come back in the same format)'),
  })
  .strict();

export type EnerKeyOptions = z.infer<typeof enerkeyOptionsSchema>;
