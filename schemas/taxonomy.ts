/**
 * The fixed meter-type taxonomy (seed 000, "Supported meter types") and the mapping of a provider
 * classification onto it.
 *
 * Order of decision in `mapMeterType`:
 *  1. the connection's `meterTypes` mapping (case-insensitive key match);
 *  2. provider defaults (e.g. Arcadia "electric"), same matching;
 *  3. an explicit inference from words in the classification or quantity name ("electricity",
 *     "water", "district heating"...), checked against the unit dimension when the unit is known;
 *  4. the unit dimension alone, only where it decides (an energy unit means Energy);
 *  otherwise undefined: the caller quarantines the meter (NORM_METER_TYPE_UNMAPPED), it never guesses.
 */
import type { MeterCategory } from './records.js';
import { lookupUnit, type UnitDimension } from './units.js';

export const METER_TAXONOMY = {
  Energy: [
    'Coal',
    'Coke',
    'Diesel',
    'District Chilled Water',
    'District Heating and Cooling',
    'District Hot Water',
    'District Steam',
    'EV Charging',
    'Fuel Oil',
    'Natural Gas',
    'Off-site Electricity',
    'On-site Renewable Electricity',
    'Propane',
    'Wood',
  ],
  Water: ['Potable', 'Reclaimed', 'Grey'],
  Waste: ['Hazardous', 'Non-hazardous'],
} as const satisfies Record<MeterCategory, readonly string[]>;

export const METER_CATEGORIES = Object.keys(METER_TAXONOMY) as MeterCategory[];

export type MeterSubtype = (typeof METER_TAXONOMY)[MeterCategory][number];

/** A classification as configured: category and optional sub-category (schemas/connection.ts). */
export interface MeterTypeTarget {
  type: MeterCategory;
  subtype?: string | undefined;
}

/** Provider classification (case-insensitive) to taxonomy entry. */
export type MeterTypeMapping = Record<string, MeterTypeTarget>;

export interface MeterTypeMatch {
  type: MeterCategory;
  subtype: MeterSubtype | null;
  /** How it was decided, recorded in meter metadata so an inference is never silent. */
  source: 'mapping' | 'default' | 'inferred-name' | 'inferred-unit';
}

export interface MeterTypeFallbacks {
  /** Provider defaults applied after the connection mapping (e.g. Arcadia serviceType "electric"). */
  defaults?: MeterTypeMapping;
  /** Unit symbol of the meter, used for the dimension check and the unit-only inference. */
  unit?: string | null;
  /** A further name to infer from (EnerKey quantity name, generic subtype field...). */
  quantityName?: string | null;
}

export function isMeterCategory(value: string): value is MeterCategory {
  return (METER_CATEGORIES as string[]).includes(value);
}

/** The taxonomy's spelling of a sub-category of `type`, matched case-insensitively; else undefined. */
export function canonicalSubtype(type: MeterCategory, subtype: string): MeterSubtype | undefined {
  const wanted = subtype.trim().toLowerCase();
  return (METER_TAXONOMY[type] as readonly MeterSubtype[]).find((s) => s.toLowerCase() === wanted);
}

/** Why `subtype` is no sub-category of `type`, listing the valid ones; undefined when it is one. */
export function subtypeProblem(type: MeterCategory, subtype: string): string | undefined {
  if (canonicalSubtype(type, subtype)) return undefined;
  return `"${subtype}" is not a sub-category of ${type}; valid: ${METER_TAXONOMY[type].join(', ')} (or no subtype)`;
}

/** How classifications and mapping keys are compared: case-insensitive, "_" and spaces alike. */
export function classificationKey(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/[_\s]+/g, ' ');
}

/** The mapping entry (its key as written, and its target) that matches a classification. */
export function mappingEntry(
  classification: string,
  mapping: MeterTypeMapping | undefined,
): [string, MeterTypeTarget] | undefined {
  if (!mapping) return undefined;
  const key = classificationKey(classification);
  for (const [k, v] of Object.entries(mapping)) if (classificationKey(k) === key) return [k, v];
  return undefined;
}

function fromMapping(
  classification: string,
  mapping: MeterTypeMapping | undefined,
): MeterTypeTarget | undefined {
  return mappingEntry(classification, mapping)?.[1];
}

/**
 * Apply a mapping entry. A mapped sub-category outside the taxonomy is a configuration mistake
 * (refused when the connection is loaded): it does not match (undefined) rather than emit a
 * subtype the platform does not know.
 */
function targetToMatch(
  target: MeterTypeTarget,
  source: MeterTypeMatch['source'],
): MeterTypeMatch | undefined {
  if (!isMeterCategory(target.type)) return undefined;
  if (target.subtype === undefined || target.subtype === '')
    return { type: target.type, subtype: null, source };
  const subtype = canonicalSubtype(target.type, target.subtype);
  return subtype ? { type: target.type, subtype, source } : undefined;
}

interface InferenceRule {
  /** Whole-word phrase (lowercase) searched in the name. */
  phrase: string;
  type: MeterCategory;
  subtype: MeterSubtype | null;
  /** Unit dimensions consistent with the rule; a known unit of another dimension vetoes it. */
  dimensions: UnitDimension[];
}

const E: UnitDimension[] = ['energy'];
const EV: UnitDimension[] = ['energy', 'volume'];
const EVM: UnitDimension[] = ['energy', 'volume', 'mass'];
const V: UnitDimension[] = ['volume'];
const VM: UnitDimension[] = ['volume', 'mass'];
const EM: UnitDimension[] = ['energy', 'mass'];

/**
 * Longest phrases first: the first rule whose phrase occurs decides. Phrases that are ambiguous
 * on their own ("hot water": district heat or tap water?) are only listed with the qualifier that
 * settles them.
 */
const RULES: InferenceRule[] = [
  {
    phrase: 'on-site renewable electricity',
    type: 'Energy',
    subtype: 'On-site Renewable Electricity',
    dimensions: E,
  },
  { phrase: 'off-site electricity', type: 'Energy', subtype: 'Off-site Electricity', dimensions: E },
  {
    phrase: 'district heating and cooling',
    type: 'Energy',
    subtype: 'District Heating and Cooling',
    dimensions: E,
  },
  { phrase: 'district chilled water', type: 'Energy', subtype: 'District Chilled Water', dimensions: E },
  { phrase: 'district hot water', type: 'Energy', subtype: 'District Hot Water', dimensions: E },
  { phrase: 'district heating', type: 'Energy', subtype: 'District Heating and Cooling', dimensions: E },
  { phrase: 'district cooling', type: 'Energy', subtype: 'District Heating and Cooling', dimensions: E },
  { phrase: 'district heat', type: 'Energy', subtype: 'District Heating and Cooling', dimensions: E },
  { phrase: 'district steam', type: 'Energy', subtype: 'District Steam', dimensions: EM },
  { phrase: 'chilled water', type: 'Energy', subtype: 'District Chilled Water', dimensions: E },
  { phrase: 'non-hazardous waste', type: 'Waste', subtype: 'Non-hazardous', dimensions: VM },
  { phrase: 'non hazardous waste', type: 'Waste', subtype: 'Non-hazardous', dimensions: VM },
  { phrase: 'nonhazardous waste', type: 'Waste', subtype: 'Non-hazardous', dimensions: VM },
  { phrase: 'hazardous waste', type: 'Waste', subtype: 'Hazardous', dimensions: VM },
  { phrase: 'non-hazardous', type: 'Waste', subtype: 'Non-hazardous', dimensions: VM },
  { phrase: 'hazardous', type: 'Waste', subtype: 'Hazardous', dimensions: VM },
  { phrase: 'waste', type: 'Waste', subtype: null, dimensions: VM },
  { phrase: 'ev charging', type: 'Energy', subtype: 'EV Charging', dimensions: E },
  { phrase: 'natural gas', type: 'Energy', subtype: 'Natural Gas', dimensions: EV },
  { phrase: 'fuel oil', type: 'Energy', subtype: 'Fuel Oil', dimensions: EVM },
  { phrase: 'heating oil', type: 'Energy', subtype: 'Fuel Oil', dimensions: EVM },
  { phrase: 'solar', type: 'Energy', subtype: 'On-site Renewable Electricity', dimensions: E },
  { phrase: 'photovoltaic', type: 'Energy', subtype: 'On-site Renewable Electricity', dimensions: E },
  { phrase: 'pv', type: 'Energy', subtype: 'On-site Renewable Electricity', dimensions: E },
  { phrase: 'electricity', type: 'Energy', subtype: 'Off-site Electricity', dimensions: E },
  { phrase: 'electric', type: 'Energy', subtype: 'Off-site Electricity', dimensions: E },
  { phrase: 'gas', type: 'Energy', subtype: 'Natural Gas', dimensions: EV },
  { phrase: 'diesel', type: 'Energy', subtype: 'Diesel', dimensions: EVM },
  { phrase: 'propane', type: 'Energy', subtype: 'Propane', dimensions: EVM },
  { phrase: 'lpg', type: 'Energy', subtype: 'Propane', dimensions: EVM },
  { phrase: 'coal', type: 'Energy', subtype: 'Coal', dimensions: EM },
  { phrase: 'coke', type: 'Energy', subtype: 'Coke', dimensions: EM },
  { phrase: 'wood', type: 'Energy', subtype: 'Wood', dimensions: EVM },
  { phrase: 'steam', type: 'Energy', subtype: 'District Steam', dimensions: EM },
  { phrase: 'heating', type: 'Energy', subtype: 'District Heating and Cooling', dimensions: E },
  { phrase: 'cooling', type: 'Energy', subtype: 'District Heating and Cooling', dimensions: E },
  { phrase: 'potable water', type: 'Water', subtype: 'Potable', dimensions: V },
  { phrase: 'drinking water', type: 'Water', subtype: 'Potable', dimensions: V },
  { phrase: 'potable', type: 'Water', subtype: 'Potable', dimensions: V },
  { phrase: 'reclaimed', type: 'Water', subtype: 'Reclaimed', dimensions: V },
  { phrase: 'recycled water', type: 'Water', subtype: 'Reclaimed', dimensions: V },
  { phrase: 'grey water', type: 'Water', subtype: 'Grey', dimensions: V },
  { phrase: 'gray water', type: 'Water', subtype: 'Grey', dimensions: V },
  { phrase: 'greywater', type: 'Water', subtype: 'Grey', dimensions: V },
  { phrase: 'water', type: 'Water', subtype: null, dimensions: V },
];

function containsPhrase(text: string, phrase: string): boolean {
  const escaped = phrase.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^a-z0-9])${escaped}($|[^a-z0-9])`).test(text);
}

const CATEGORY_DIMENSIONS: Record<MeterCategory, UnitDimension[]> = { Energy: EVM, Water: V, Waste: VM };

/** An inference, or 'conflict' when the name and a known unit disagree (then nothing is inferred). */
function inferFromName(
  name: string,
  dimension: UnitDimension | null,
): MeterTypeMatch | 'conflict' | undefined {
  const text = classificationKey(name);
  const check = (m: MeterTypeMatch, dims: UnitDimension[]): MeterTypeMatch | 'conflict' =>
    dimension !== null && !dims.includes(dimension) ? 'conflict' : m;
  // An exact taxonomy spelling wins ("Grey", "Wood", "District Steam", "Water").
  for (const type of METER_CATEGORIES) {
    const subtype = canonicalSubtype(type, text);
    if (subtype) return check({ type, subtype, source: 'inferred-name' }, CATEGORY_DIMENSIONS[type]);
    if (type.toLowerCase() === text)
      return check({ type, subtype: null, source: 'inferred-name' }, CATEGORY_DIMENSIONS[type]);
  }
  for (const rule of RULES) {
    if (containsPhrase(text, rule.phrase)) {
      return check({ type: rule.type, subtype: rule.subtype, source: 'inferred-name' }, rule.dimensions);
    }
  }
  return undefined;
}

/**
 * Map a provider classification to the taxonomy; undefined when it cannot be decided.
 * `classification` may be null/empty when the provider has none (inference only).
 */
export function mapMeterType(
  classification: string | null | undefined,
  mapping: MeterTypeMapping | undefined,
  fallbacks: MeterTypeFallbacks = {},
): MeterTypeMatch | undefined {
  const cls = classification?.trim() ?? '';
  if (cls !== '') {
    const configured = fromMapping(cls, mapping);
    if (configured) return targetToMatch(configured, 'mapping');
    const byDefault = fromMapping(cls, fallbacks.defaults);
    if (byDefault) return targetToMatch(byDefault, 'default');
  }
  const quantity = fallbacks.quantityName?.trim() ?? '';
  if (quantity !== '') {
    const configured = fromMapping(quantity, mapping);
    if (configured) return targetToMatch(configured, 'mapping');
  }
  const unit = fallbacks.unit ? lookupUnit(fallbacks.unit) : undefined;
  const dimension = unit?.dimension ?? null;
  for (const name of [cls, quantity]) {
    if (name === '') continue;
    const inferred = inferFromName(name, dimension);
    if (inferred === 'conflict') return undefined;
    if (inferred) return inferred;
  }
  // The unit alone decides only for energy: volume and mass are shared by water, gas, oil, waste...
  if (dimension === 'energy') return { type: 'Energy', subtype: null, source: 'inferred-unit' };
  return undefined;
}
