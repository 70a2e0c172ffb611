/**
 * Zod schemas of the EnerKey payloads we read. The EnerKey overview (seed 002) gives no JSON
 * shapes; these follow the shapes the EnerKey simulator serves (simulators/enerkey.ts header).
 * Ids are numbers there; strings are accepted too, since ids only ever become text.
 */
import { z } from 'zod';

const id = z.union([z.number().int(), z.string().min(1)]);
const optText = z.string().nullish();
const scalar = z.union([z.string(), z.number(), z.boolean()]).nullish();

/** GET /api/v1/quantities item. */
export const enerkeyQuantitySchema = z.looseObject({
  id,
  name: z.string().min(1),
  unit: z.string().min(1),
});
export type EnerkeyQuantity = z.infer<typeof enerkeyQuantitySchema>;

/** GET /api/v1/facilities item. */
export const enerkeyFacilitySchema = z.looseObject({
  id,
  name: optText,
  customerFacilityId: scalar,
  timeZone: optText,
  address: z
    .looseObject({
      streetAddress: optText,
      postalCode: scalar,
      city: optText,
      country: optText,
    })
    .nullish(),
  properties: z.record(z.string(), z.unknown()).nullish(),
});
export type EnerkeyFacility = z.infer<typeof enerkeyFacilitySchema>;

/** GET /api/v1/meters item. */
export const enerkeyMeterSchema = z.looseObject({
  id,
  facilityId: id,
  name: optText,
  quantityId: id.nullish(),
  unit: optText,
  meterType: optText,
  enegiaId: scalar,
});
export type EnerkeyMeter = z.infer<typeof enerkeyMeterSchema>;

/**
 * A values response (hourly or monthly) as the poller forwards it: the response shape holding only
 * this meter's part, `{ from, to, resolution, meters: [entry] }`.
 */
export const enerkeyValuesResponseSchema = z.looseObject({
  from: z.string().nullish(),
  to: z.string().nullish(),
  resolution: z.string().nullish(),
  meters: z.array(z.unknown()),
});

/** One meter's part of a values response; values are checked one by one. */
export const enerkeyMeterValuesSchema = z.looseObject({
  meterId: id,
  quantityId: id.nullish(),
  unit: optText,
  values: z.array(z.unknown()),
});

export const enerkeyValueSchema = z.looseObject({
  timestamp: z.string(),
  value: z.number(),
  flag: optText,
});
export type EnerkeyValue = z.infer<typeof enerkeyValueSchema>;
