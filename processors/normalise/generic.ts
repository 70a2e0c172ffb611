/**
 * Generic connector normalisers: every field comes from the connection's `generic.*.fields` dot
 * paths (schemas/connection.ts), so a new provider needs configuration, not code.
 *  - generic.asset: one item (a JSON object; XML/CSV items arrive as objects of strings);
 *  - generic.asset: one asset item; or, when the connection has no asset endpoint, the METER item
 *    (meta.derived = "true") from whose asset fields the asset is derived (derived: true);
 *  - generic.meter: one item;
 *  - generic.usage: a JSON array of items of one meter, read with the meter's own usage kind
 *    (reading_type: usage.kind, or its meters.fields.usageKind through meters.usageKinds).
 */
import {
  meterUsageKind,
  usageOfKind,
  type GenericConnectorConfig,
  type KindUsageConfig,
  type UsageKind,
} from '../../schemas/connection.js';
import type { RawEnvelope, UsageBatch } from '../../schemas/records.js';
import { canonicalSubtype } from '../../schemas/taxonomy.js';
import { convertUnit, resolveUnit, unitsCompatible } from '../../schemas/units.js';
import {
  batchZone,
  isReject,
  localZone,
  makeAsset,
  makeBatch,
  makeInterval,
  makeMeter,
  meterTypeOrReject,
  missingMeterReject,
  rolloverFor,
} from './common.js';
import { asBoolean, asNumber, asText, getPath, isAbsent } from './fields.js';
import { parseTimestamp } from './time.js';
import {
  emptyResult,
  recordReject,
  rejectWhole,
  type NormaliseContext,
  type NormaliseResult,
  type Reject,
} from './types.js';

function genericConfig(ctx: NormaliseContext): GenericConnectorConfig | Reject {
  const g = ctx.connection?.generic;
  if (g) return g;
  return {
    code: 'NORM_UNKNOWN_CONNECTION',
    message: `generic payload but the connection${ctx.connection ? ` ${ctx.connection.id}` : ''} has no "generic" configuration`,
    recordIndex: null,
    detail: null,
  };
}

function isConfigReject(v: GenericConnectorConfig | Reject): v is Reject {
  return 'code' in v && 'recordIndex' in v;
}

function asItem(json: unknown): Record<string, unknown> | undefined {
  return json !== null && typeof json === 'object' && !Array.isArray(json)
    ? (json as Record<string, unknown>)
    : undefined;
}

function requiredText(item: unknown, path: string, field: string): string | Reject {
  const text = asText(getPath(item, path));
  if (text !== undefined) return text;
  return {
    code: 'NORM_PAYLOAD_SCHEMA',
    message: `${path}: required ${field} is missing`,
    recordIndex: null,
    detail: null,
  };
}

function isTextReject(v: string | Reject): v is Reject {
  return typeof v !== 'string';
}

function metadataOf(item: unknown, paths: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, path] of Object.entries(paths)) {
    const text = asText(getPath(item, path));
    if (text !== undefined) out[name] = text;
  }
  return out;
}

function optionalText(item: unknown, path: string | undefined): string | null {
  return path === undefined ? null : (asText(getPath(item, path)) ?? null);
}

export function normaliseGenericAsset(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  const g = genericConfig(ctx);
  if (isConfigReject(g)) return { ...emptyResult(), rejects: [g] };
  const item = asItem(json);
  if (!item) return rejectWhole('NORM_PAYLOAD_SCHEMA', '(root): expected one item as an object');
  if (env.meta.derived === 'true' || !g.assets) return derivedAsset(env, item, g);
  const f = g.assets.fields;
  const id = requiredText(item, f.externalId, 'asset externalId');
  if (isTextReject(id)) return { ...emptyResult(), rejects: [id] };
  const address = optionalText(item, f.address);
  const name = asText(getPath(item, f.name)) ?? address;
  if (!name)
    return rejectWhole(
      'NORM_PAYLOAD_SCHEMA',
      `${f.name}: required asset name is missing (and no address to name it by)`,
    );
  return {
    ...emptyResult(),
    assets: [
      makeAsset(env, {
        external_id: id,
        name,
        address,
        metadata: metadataOf(item, f.metadata),
        derived: false,
      }),
    ],
  };
}

/**
 * No asset endpoint: the poller sends the METER item (meta.derived = "true") and the asset is
 * derived from its asset fields (seed 000, "derive assets from meter data"). Name: the asset name
 * field, else the address, else the asset id (the only label there is).
 */
function derivedAsset(
  env: RawEnvelope,
  item: Record<string, unknown>,
  g: GenericConnectorConfig,
): NormaliseResult {
  const f = g.meters.fields;
  const id = requiredText(item, f.assetId, 'asset id');
  if (isTextReject(id)) return { ...emptyResult(), rejects: [id] };
  const address = optionalText(item, f.assetAddress);
  const name = optionalText(item, f.assetName) ?? address ?? id;
  const metadata: Record<string, string> = { derivedFrom: 'meter' };
  const meterId = env.meta.meter_external_id ?? asText(getPath(item, f.externalId));
  if (meterId) metadata.meterExternalId = meterId;
  return {
    ...emptyResult(),
    assets: [makeAsset(env, { external_id: id, name, address, metadata, derived: true })],
  };
}

export function normaliseGenericMeter(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  const g = genericConfig(ctx);
  if (isConfigReject(g)) return { ...emptyResult(), rejects: [g] };
  const item = asItem(json);
  if (!item) return rejectWhole('NORM_PAYLOAD_SCHEMA', '(root): expected one item as an object');
  const f = g.meters.fields;
  const id = requiredText(item, f.externalId, 'meter externalId');
  if (isTextReject(id)) return { ...emptyResult(), rejects: [id] };
  const assetId = requiredText(item, f.assetId, 'asset id');
  if (isTextReject(assetId)) return { ...emptyResult(), rejects: [assetId] };
  const unit = requiredText(item, f.unit, 'unit');
  if (isTextReject(unit)) return { ...emptyResult(), rejects: [unit] };

  // Each meter's rows are read with its own kind: a kind value without a mapping is no guess.
  const kindText = optionalText(item, f.usageKind);
  const kind = meterUsageKind(g, kindText ?? undefined);
  if (kind === undefined) {
    const mapped = Object.keys(g.meters.usageKinds ?? {}).join(', ');
    return rejectWhole(
      'NORM_USAGE_KIND_UNMAPPED',
      `meter ${id}: ${f.usageKind ?? 'usageKind'} ${kindText === null ? 'is missing' : `"${kindText}" is not in generic.meters.usageKinds`} (mapped: ${mapped}); add it there, or leave such meters out with meters.filter`,
    );
  }

  const classification = optionalText(item, f.type);
  const providerSubtype = optionalText(item, f.subtype);
  const type = meterTypeOrReject(classification, ctx.connection, { unit, quantityName: providerSubtype }, id);
  if (isReject(type)) return { ...emptyResult(), rejects: [type] };
  // The provider's own subtype refines the type when it is a taxonomy sub-category of it.
  const refined =
    type.subtype ?? (providerSubtype ? (canonicalSubtype(type.type, providerSubtype) ?? null) : null);

  const zoneText = optionalText(item, f.timeZone);
  const metadata = metadataOf(item, f.metadata);
  if (classification) metadata.providerType = classification;
  if (providerSubtype) metadata.providerSubtype = providerSubtype;

  // Without an asset endpoint the poller sends the derived asset separately (generic.asset, meta.derived).
  const result = emptyResult();
  result.meters.push(
    makeMeter(env, {
      external_id: id,
      asset_external_id: assetId,
      type: { ...type, subtype: refined },
      unit,
      description: optionalText(item, f.description),
      time_zone: zoneText ?? ctx.connection?.timeZone ?? null,
      reading_type: kind,
      rollover_value: rolloverFor(ctx.connection, id),
      metadata,
    }),
  );
  return result;
}

type Fields = KindUsageConfig['fields'];

/** A numeric field of an item: undefined when absent, a Reject when present but not a number. */
function numberField(item: unknown, path: string | undefined, index: number): number | undefined | Reject {
  if (path === undefined) return undefined;
  const raw = getPath(item, path);
  if (isAbsent(raw)) return undefined;
  const n = asNumber(raw);
  return n === undefined
    ? recordReject(
        'NORM_PAYLOAD_SCHEMA',
        `${index}.${path}: "${asText(raw) ?? typeof raw}" is not a number`,
        index,
        item,
      )
    : n;
}

function isNumReject(v: number | undefined | Reject): v is Reject {
  return typeof v === 'object';
}

function timeField(
  item: unknown,
  path: string | undefined,
  what: 'start' | 'end' | 'timestamp',
  zone: string | undefined,
  index: number,
): number | Reject {
  if (path === undefined)
    return recordReject(
      'NORM_PAYLOAD_SCHEMA',
      `generic.usage.fields.${what} is not configured for the meter's usage kind`,
      index,
      item,
    );
  const raw = getPath(item, path);
  if (isAbsent(raw))
    return recordReject('NORM_PAYLOAD_SCHEMA', `${index}.${path}: required ${what} is missing`, index, item);
  const t = parseTimestamp(asText(raw) ?? raw, zone);
  return t.ok ? t.instant : recordReject(t.code, `${index}.${path}: ${t.message}`, index, item);
}

function usageItem(
  batch: UsageBatch,
  item: unknown,
  index: number,
  f: Fields,
  kind: UsageKind,
  zone: string | undefined,
  result: NormaliseResult,
  meterId: string,
): void {
  const fail = (r: Reject): void => {
    result.rejects.push(r);
  };
  if (f.meterId !== undefined) {
    const id = asText(getPath(item, f.meterId));
    if (id !== undefined && id !== meterId)
      return fail(
        recordReject(
          'NORM_PAYLOAD_SCHEMA',
          `${index}.${f.meterId}: "${id}" is not the chunk's meter "${meterId}"`,
          index,
          item,
        ),
      );
  }
  const value = numberField(item, f.value, index);
  if (isNumReject(value)) return fail(value);
  if (value === undefined)
    return fail(
      recordReject(
        'NORM_PAYLOAD_SCHEMA',
        `${index}.${f.value ?? ''}: usage.fields.value \`${f.value ?? ''}\` missing`,
        index,
        item,
      ),
    );

  let estimated = false;
  if (f.estimated !== undefined) {
    const raw = getPath(item, f.estimated);
    if (!isAbsent(raw)) {
      const b = asBoolean(raw);
      if (b === undefined)
        return fail(
          recordReject(
            'NORM_PAYLOAD_SCHEMA',
            `${index}.${f.estimated}: "${asText(raw)}" is not a boolean`,
            index,
            item,
          ),
        );
      estimated = b;
    }
  }

  // An item may state its own unit: convert to the chunk's unit when compatible, never guess.
  let factor = 1;
  const itemUnit = f.unit === undefined ? undefined : asText(getPath(item, f.unit));
  if (itemUnit !== undefined && resolveUnit(itemUnit).symbol !== batch.unit) {
    const converted = unitsCompatible(itemUnit, batch.unit) ? convertUnit(1, itemUnit, batch.unit) : null;
    if (converted === null) {
      return fail(
        recordReject(
          'VAL_UNIT_CONFLICT',
          `${index}.${f.unit}: unit "${itemUnit}" is not convertible to the meter unit "${batch.unit}"`,
          index,
          item,
        ),
      );
    }
    factor = converted;
  }

  if (kind === 'reading') {
    const ts = timeField(item, f.timestamp, 'timestamp', zone, index);
    if (typeof ts !== 'number') return fail(ts);
    result.readings.push({ timestamp: ts, value: value * factor, estimated, index });
    return;
  }

  const start = timeField(item, f.start, 'start', zone, index);
  if (typeof start !== 'number') return fail(start);
  const end = timeField(item, f.end, 'end', zone, index);
  if (typeof end !== 'number') return fail(end);
  const redelivery = numberField(item, f.redelivery, index);
  if (isNumReject(redelivery)) return fail(redelivery);
  const production = numberField(item, f.production, index);
  if (isNumReject(production)) return fail(production);
  const cost = numberField(item, f.cost, index);
  if (isNumReject(cost)) return fail(cost);
  const currency = f.currency === undefined ? null : (asText(getPath(item, f.currency)) ?? null);

  const base = { start, end, estimated };
  batch.intervals.push(makeInterval(batch, { ...base, channel: 'consumption', value: value * factor }));
  if (redelivery !== undefined)
    batch.intervals.push(makeInterval(batch, { ...base, channel: 'redelivery', value: redelivery * factor }));
  if (production !== undefined)
    batch.intervals.push(makeInterval(batch, { ...base, channel: 'production', value: production * factor }));
  // Currency is checked by validate (VAL_CURRENCY_MISSING / INVALID), where every stage sees it.
  if (cost !== undefined)
    batch.intervals.push(makeInterval(batch, { ...base, channel: 'cost', value: cost, currency }));
}

export function normaliseGenericUsage(
  env: RawEnvelope,
  json: unknown,
  ctx: NormaliseContext,
): NormaliseResult {
  const g = genericConfig(ctx);
  if (isConfigReject(g)) return { ...emptyResult(), rejects: [g] };
  if (!ctx.meter) return { ...emptyResult(), rejects: [missingMeterReject(env)] };
  // A single object is one item (XML with one element parses that way).
  const items = Array.isArray(json) ? json : asItem(json) ? [json] : undefined;
  if (!items) return rejectWhole('NORM_PAYLOAD_SCHEMA', '(root): expected an array of usage items');
  const result = emptyResult();
  const batch = makeBatch(env, ctx.meter.unit, batchZone(null, ctx));
  result.batch = batch;
  const zone = localZone(ctx);
  // One kind per connection (usage.kind), or the meter's own, as its meter record says.
  const kind =
    g.meters.fields.usageKind === undefined && g.usage.kind ? g.usage.kind : ctx.meter.reading_type;
  const fields = usageOfKind(g, kind).fields;
  items.forEach((item, index) => usageItem(batch, item, index, fields, kind, zone, result, env.external_id));
  return result;
}
