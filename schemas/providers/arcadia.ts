/**
 * Zod schemas of the Arcadia Plug payloads we read (the Arcadia Plug intervals API guide).
 * Loose objects: Arcadia adds fields over API versions, and we keep what we do not read out of the
 * way. Strict on the fields we read. The document's examples show placeholders like "null" and
 * "false" as strings and meterNumber both as a string and as a number, so those accept both.
 */
import { z } from 'zod';

const text = z.string();
const optText = z.string().nullish();
/** A scalar we only copy into metadata. */
const scalar = z.union([z.string(), z.number(), z.boolean()]).nullish();

export const arcadiaAddressSchema = z.looseObject({
  addressType: optText,
  city: optText,
  country: optText,
  fullAddress: optText,
  postalCode: optText,
  recipient: optText,
  state: optText,
  streetLine1: optText,
  streetLine2: optText,
});
export type ArcadiaAddress = z.infer<typeof arcadiaAddressSchema>;

export const arcadiaProviderSchema = z.looseObject({
  country: optText,
  id: optText,
  name: optText,
});

export const arcadiaSiteSchema = z.looseObject({
  id: text.min(1),
  siteName: optText,
  siteCode: optText,
  siteNumber: optText,
  region: optText,
  subRegion: optText,
  facilityType: optText,
  serviceAddress: arcadiaAddressSchema.nullish(),
  meterIds: z.array(z.string()).nullish(),
  createdAt: optText,
  lastModifiedAt: optText,
});
export type ArcadiaSite = z.infer<typeof arcadiaSiteSchema>;

/** One meter as in "List Meters Response". */
export const arcadiaMeterSchema = z.looseObject({
  id: text.min(1),
  accounts: z.array(z.looseObject({ accountNumber: optText, id: optText })).nullish(),
  bulbType: optText,
  currentTariff: z.looseObject({ provider: arcadiaProviderSchema.nullish(), tariffName: optText }).nullish(),
  generalDescriptionAsPrinted: optText,
  isIntervalsProductActive: scalar,
  intervalsLatestDateTime: scalar,
  latestIntervalAt: scalar,
  meterConstantMultiplier: scalar,
  meterNumber: scalar,
  normalizedMeterNumber: scalar,
  normalizedPointOfDeliveryNumber: scalar,
  pipeType: optText,
  pointOfDeliveryNumber: scalar,
  provider: arcadiaProviderSchema.nullish(),
  serviceAddress: arcadiaAddressSchema.nullish(),
  serviceType: optText,
  serviceTypeClassification: optText,
  status: optText,
  statusDetail: optText,
  site: arcadiaSiteSchema.nullish(),
});
export type ArcadiaMeter = z.infer<typeof arcadiaMeterSchema>;

/** Envelope fields of both interval responses; readings are checked one by one. */
const intervalsCommon = {
  meterId: text.min(1),
  meterNumber: scalar,
  providerName: optText,
  providerId: optText,
  serviceType: optText,
  electricMeterMultiplier: scalar,
  readType: optText,
  localTimezone: optText,
  intervalsCreatedAt: optText,
  intervalsUpdatedAt: optText,
};

/** GET /plug/intervals/meters/{id}. */
export const arcadiaIntervalsSchema = z.looseObject({
  ...intervalsCommon,
  readings: z.array(z.unknown()),
});

export const arcadiaIntervalReadingSchema = z.looseObject({
  startAt: text,
  endAt: text,
  direction: z.enum(['import', 'export']),
  kwh: z.number(),
  kw: z.number().nullish(),
});
export type ArcadiaIntervalReading = z.infer<typeof arcadiaIntervalReadingSchema>;

const kwhArray = z.array(z.number().nullable()).nullish();

/** GET /plug/normalizedIntervals/meters/{id}. */
export const arcadiaNormalizedIntervalsSchema = z.looseObject({
  ...intervalsCommon,
  intervalDurationMinutes: z.number().int().positive().default(15),
  sourceIntervalDurationMinutes: z.array(z.number()).nullish(),
  startAt: text,
  endAt: optText,
  readings: z.array(
    z.looseObject({
      electricMeterMultiplier: z.array(z.number().nullable()).nullish(),
      importKwh: kwhArray,
      exportKwh: kwhArray,
      netKwh: kwhArray,
    }),
  ),
});
export type ArcadiaNormalizedIntervals = z.infer<typeof arcadiaNormalizedIntervalsSchema>;
