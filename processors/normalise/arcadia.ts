/**
 * Arcadia Plug normalisers (the Arcadia Plug intervals API guide):
 *  - arcadia.meter: one meter of "List Meters Response" → Meter (+ a derived Asset when the meter
 *    has no site);
 *  - arcadia.site: the `site` object of a meter → Asset;
 *  - arcadia.intervals: a whole GET /plug/intervals/meters/{id} response → UsageBatch;
 *  - arcadia.normalizedIntervals: a whole GET /plug/normalizedIntervals/meters/{id} response.
 * Intervals are always kWh (the endpoint serves electric meters only). import → consumption,
 * export → redelivery to the grid.
 */
import type { RawEnvelope, UsageBatch, UsageChannel } from '../../schemas/records.js';
import {
  arcadiaIntervalReadingSchema,
  arcadiaIntervalsSchema,
  arcadiaMeterSchema,
  arcadiaNormalizedIntervalsSchema,
  arcadiaSiteSchema,
  type ArcadiaAddress,
  type ArcadiaSite,
} from '../../schemas/providers/arcadia.js';
import type { MeterTypeMapping } from '../../schemas/taxonomy.js';
import { MINUTE_MS } from '../../schemas/time.js';
import { isValidTimeZone } from '../aggregate/core/zone.js';
import {
  batchZone,
  localZone,
  derivedAssetId,
  describeZodError,
  isReject,
  makeAsset,
  makeBatch,
  makeInterval,
  makeMeter,
  meterTypeOrReject,
} from './common.js';
import { asText, stringMap } from './fields.js';
import { parseTimestamp } from './time.js';
import {
  emptyResult,
  recordReject,
  rejectWhole,
  type NormaliseContext,
  type NormaliseResult,
} from './types.js';

/** Arcadia's serviceType values we can map without configuration; a connection's meterTypes wins. */
export const ARCADIA_DEFAULT_METER_TYPES: MeterTypeMapping = {
  electric: { type: 'Energy', subtype: 'Off-site Electricity' },
  electricity: { type: 'Energy', subtype: 'Off-site Electricity' },
};

const ARCADIA_UNIT = 'kWh';

/** The address as one line: fullAddress, else the parts that are present. */
export function addressLine(address: ArcadiaAddress | null | undefined): string | null {
  if (!address) return null;
  const full = asText(address.fullAddress);
  if (full) return full;
  const cityLine = [asText(address.city), asText(address.state), asText(address.postalCode)]
    .filter(Boolean)
    .join(' ');
  const parts = [
    asText(address.streetLine1),
    asText(address.streetLine2),
    cityLine,
    asText(address.country),
  ].filter((p): p is string => p !== undefined && p !== '');
  return parts.length > 0 ? parts.join(', ') : null;
}

function siteToAsset(env: RawEnvelope, site: ArcadiaSite): NormaliseResult {
  const address = addressLine(site.serviceAddress);
  // Name is required: the site name, else its address, else its code or number.
  const name = asText(site.siteName) ?? address ?? asText(site.siteCode) ?? asText(site.siteNumber);
  if (!name)
    return rejectWhole(
      'NORM_PAYLOAD_SCHEMA',
      `site ${site.id}: siteName, serviceAddress, siteCode and siteNumber are all missing`,
    );
  const metadata = stringMap({
    siteName: site.siteName,
    siteCode: site.siteCode,
    siteNumber: site.siteNumber,
    region: site.region,
    subRegion: site.subRegion,
    facilityType: site.facilityType,
    meterIds: site.meterIds?.join(','),
  });
  return {
    ...emptyResult(),
    assets: [makeAsset(env, { external_id: site.id, name, address, metadata, derived: false })],
  };
}

export function normaliseArcadiaSite(env: RawEnvelope, json: unknown): NormaliseResult {
  const parsed = arcadiaSiteSchema.safeParse(json);
  if (!parsed.success)
    return rejectWhole('NORM_PAYLOAD_SCHEMA', `arcadia site: ${describeZodError(parsed.error)}`);
  return siteToAsset(env, parsed.data);
}

export function normaliseArcadiaMeter(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  const parsed = arcadiaMeterSchema.safeParse(json);
  if (!parsed.success)
    return rejectWhole('NORM_PAYLOAD_SCHEMA', `arcadia meter: ${describeZodError(parsed.error)}`);
  const m = parsed.data;
  const result = emptyResult();

  let assetId = m.site?.id;
  if (!assetId) {
    // No site: the asset is derived from the meter's service address (seed 000, "derive assets").
    const address = addressLine(m.serviceAddress);
    if (!address)
      return rejectWhole(
        'NORM_PAYLOAD_SCHEMA',
        `arcadia meter ${m.id}: neither site.id nor serviceAddress is present`,
      );
    assetId = derivedAssetId(address);
    result.assets.push(
      makeAsset(env, {
        external_id: assetId,
        name: address,
        address,
        metadata: stringMap({
          derivedFrom: 'serviceAddress',
          city: m.serviceAddress?.city,
          country: m.serviceAddress?.country,
        }),
        derived: true,
      }),
    );
  }

  const type = meterTypeOrReject(
    m.serviceType,
    ctx.connection,
    { defaults: ARCADIA_DEFAULT_METER_TYPES, unit: ARCADIA_UNIT },
    m.id,
  );
  if (isReject(type)) return { ...emptyResult(), rejects: [type] };

  const metadata = stringMap({
    meterNumber: m.meterNumber,
    normalizedMeterNumber: m.normalizedMeterNumber,
    pointOfDeliveryNumber: m.pointOfDeliveryNumber,
    normalizedPointOfDeliveryNumber: m.normalizedPointOfDeliveryNumber,
    providerName: m.provider?.name,
    providerId: m.provider?.id,
    providerCountry: m.provider?.country,
    tariffName: m.currentTariff?.tariffName,
    status: m.status,
    statusDetail: m.statusDetail,
    serviceType: m.serviceType,
    serviceTypeClassification: m.serviceTypeClassification,
    meterConstantMultiplier: m.meterConstantMultiplier,
    accountNumbers: m.accounts
      ?.map((a) => asText(a.accountNumber))
      .filter(Boolean)
      .join(','),
    isIntervalsProductActive: m.isIntervalsProductActive,
    serviceAddress: addressLine(m.serviceAddress),
  });
  result.meters.push(
    makeMeter(env, {
      external_id: m.id,
      asset_external_id: assetId,
      type,
      unit: ARCADIA_UNIT,
      description: asText(m.generalDescriptionAsPrinted) ?? null,
      time_zone: ctx.connection?.timeZone ?? null,
      reading_type: 'consumption',
      rollover_value: null,
      metadata,
    }),
  );
  return result;
}

function checkMeterId(env: RawEnvelope, meterId: string): NormaliseResult | null {
  return meterId === env.external_id
    ? null
    : rejectWhole(
        'NORM_PAYLOAD_SCHEMA',
        `meterId: "${meterId}" does not match the chunk's meter "${env.external_id}"`,
      );
}

/** Zone for local timestamps: Arcadia's localTimezone when it is a real zone, else the configured one. */
function localZoneOf(localTimezone: string | null | undefined, ctx: NormaliseContext): string | undefined {
  return localTimezone && isValidTimeZone(localTimezone) ? localTimezone : localZone(ctx);
}

const CHANNEL: Record<'import' | 'export', UsageChannel> = { import: 'consumption', export: 'redelivery' };

export function normaliseArcadiaIntervals(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  const parsed = arcadiaIntervalsSchema.safeParse(json);
  if (!parsed.success)
    return rejectWhole('NORM_PAYLOAD_SCHEMA', `arcadia intervals: ${describeZodError(parsed.error)}`);
  const p = parsed.data;
  const mismatch = checkMeterId(env, p.meterId);
  if (mismatch) return mismatch;
  const result = emptyResult();
  const batch: UsageBatch = makeBatch(env, ARCADIA_UNIT, batchZone(p.localTimezone, ctx));
  result.batch = batch;
  const parseZone = localZoneOf(p.localTimezone, ctx);
  p.readings.forEach((raw, index) => {
    const r = arcadiaIntervalReadingSchema.safeParse(raw);
    if (!r.success) {
      result.rejects.push(
        recordReject('NORM_PAYLOAD_SCHEMA', describeZodError(r.error, `readings.${index}`), index, raw),
      );
      return;
    }
    // Arcadia timestamps carry an offset; a local one is placed in the meter's stated zone.
    const start = parseTimestamp(r.data.startAt, parseZone);
    const end = parseTimestamp(r.data.endAt, parseZone);
    for (const t of [start, end]) {
      if (!t.ok) {
        result.rejects.push(recordReject(t.code, `readings.${index}: ${t.message}`, index, raw));
        return;
      }
    }
    if (!start.ok || !end.ok) return;
    batch.intervals.push(
      makeInterval(batch, {
        start: start.instant,
        end: end.instant,
        channel: CHANNEL[r.data.direction],
        value: r.data.kwh,
        estimated: false,
      }),
    );
  });
  return result;
}

export function normaliseArcadiaNormalizedIntervals(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  const parsed = arcadiaNormalizedIntervalsSchema.safeParse(json);
  if (!parsed.success)
    return rejectWhole(
      'NORM_PAYLOAD_SCHEMA',
      `arcadia normalizedIntervals: ${describeZodError(parsed.error)}`,
    );
  const p = parsed.data;
  const mismatch = checkMeterId(env, p.meterId);
  if (mismatch) return mismatch;
  const zone = batchZone(p.localTimezone, ctx);
  const origin = parseTimestamp(p.startAt, localZoneOf(p.localTimezone, ctx));
  if (!origin.ok) return rejectWhole(origin.code, `startAt: ${origin.message}`);
  const step = p.intervalDurationMinutes * MINUTE_MS;
  const result = emptyResult();
  const batch = makeBatch(env, ARCADIA_UNIT, zone);
  result.batch = batch;
  // The reading objects continue one another: element i of the concatenated arrays covers
  // [startAt + i * step, startAt + (i + 1) * step).
  let base = 0;
  for (const reading of p.readings) {
    const imports = reading.importKwh ?? [];
    const exports = reading.exportKwh ?? [];
    const length = Math.max(imports.length, exports.length, reading.netKwh?.length ?? 0);
    for (let i = 0; i < length; i++) {
      const index = base + i;
      const start = origin.instant + index * step;
      const multiplier = reading.electricMeterMultiplier?.[i];
      const metadata: Record<string, string> =
        multiplier !== undefined && multiplier !== null && multiplier !== 1
          ? { electricMeterMultiplier: String(multiplier) }
          : {};
      for (const [values, channel] of [
        [imports, 'consumption'],
        [exports, 'redelivery'],
      ] as const) {
        const value = values[i];
        // null: the utility published nothing for that quarter-hour, which is a gap, not a record.
        if (value === undefined || value === null) continue;
        batch.intervals.push(
          makeInterval(batch, { start, end: start + step, channel, value, estimated: false, metadata }),
        );
      }
    }
    base += length;
  }
  return result;
}
