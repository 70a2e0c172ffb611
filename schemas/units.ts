/**
 * The unit registry: every unit symbol we accept, its dimension and its factor to the canonical unit
 * of that dimension (kWh for energy, m3 for volume, kg for mass).
 *
 * A symbol we do not know is registered on first sight and kept exactly as the provider wrote it,
 * with no dimension and no factor: it is never converted by guess (DESIGN.md §4).
 */

export type UnitDimension = 'energy' | 'volume' | 'mass';

export const CANONICAL_UNITS = { energy: 'kWh', volume: 'm3', mass: 'kg' } as const satisfies Record<
  UnitDimension,
  string
>;
export type CanonicalUnit = (typeof CANONICAL_UNITS)[UnitDimension];

export interface UnitInfo {
  /** Registry symbol (e.g. 'kWh', 'm3'); for an unknown unit, the provider's text trimmed. */
  symbol: string;
  dimension: UnitDimension | null;
  /** Multiply a value in this unit by `factor` to get the canonical unit; null when unknown. */
  factor: number | null;
  canonical: CanonicalUnit | null;
  known: boolean;
}

interface UnitDef {
  symbol: string;
  dimension: UnitDimension;
  factor: number;
  aliases: string[];
}

const KWH_PER_MJ = 1 / 3.6;
/** International Table BTU in kWh (1055.05585262 J). */
const KWH_PER_BTU = 1055.05585262 / 3.6e6;
const M3_PER_US_GALLON = 0.003785411784;
const M3_PER_CUBIC_FOOT = 0.028316846592;

/** Every known unit. Aliases are matched case-insensitively after folding (see `foldUnit`). */
const UNIT_DEFS: UnitDef[] = [
  // Ambiguous texts are deliberately absent (they stay unknown): 'ton' (short, long or metric?),
  // 'MBtu' (thousand or million?), 'Mt', 'cf'.
  // Energy (canonical kWh)
  {
    symbol: 'Wh',
    dimension: 'energy',
    factor: 0.001,
    aliases: ['wh', 'watt hour', 'watt hours', 'watt-hour', 'watt-hours'],
  },
  {
    symbol: 'kWh',
    dimension: 'energy',
    factor: 1,
    aliases: ['kwh', 'kw h', 'kw-h', 'kilowatt hour', 'kilowatt hours', 'kilowatt-hour', 'kilowatt-hours'],
  },
  {
    symbol: 'MWh',
    dimension: 'energy',
    factor: 1_000,
    aliases: ['mwh', 'megawatt hour', 'megawatt hours', 'megawatt-hour', 'megawatt-hours'],
  },
  {
    symbol: 'GWh',
    dimension: 'energy',
    factor: 1_000_000,
    aliases: ['gwh', 'gigawatt hour', 'gigawatt hours', 'gigawatt-hour', 'gigawatt-hours'],
  },
  {
    symbol: 'kJ',
    dimension: 'energy',
    factor: KWH_PER_MJ / 1_000,
    aliases: ['kj', 'kilojoule', 'kilojoules'],
  },
  { symbol: 'MJ', dimension: 'energy', factor: KWH_PER_MJ, aliases: ['mj', 'megajoule', 'megajoules'] },
  {
    symbol: 'GJ',
    dimension: 'energy',
    factor: KWH_PER_MJ * 1_000,
    aliases: ['gj', 'gigajoule', 'gigajoules'],
  },
  {
    symbol: 'TJ',
    dimension: 'energy',
    factor: KWH_PER_MJ * 1_000_000,
    aliases: ['tj', 'terajoule', 'terajoules'],
  },
  // US therm = 100,000 BTU(IT) = 105.505585 MJ.
  {
    symbol: 'therm',
    dimension: 'energy',
    factor: KWH_PER_BTU * 100_000,
    aliases: ['therm', 'therms', 'thm'],
  },
  { symbol: 'Btu', dimension: 'energy', factor: KWH_PER_BTU, aliases: ['btu', 'btus'] },
  { symbol: 'kBtu', dimension: 'energy', factor: KWH_PER_BTU * 1_000, aliases: ['kbtu'] },
  { symbol: 'MMBtu', dimension: 'energy', factor: KWH_PER_BTU * 1_000_000, aliases: ['mmbtu'] },
  // Volume (canonical m3)
  {
    symbol: 'm3',
    dimension: 'volume',
    factor: 1,
    aliases: ['m3', 'cubic meter', 'cubic meters', 'cubic metre', 'cubic metres', 'cbm'],
  },
  {
    symbol: 'l',
    dimension: 'volume',
    factor: 0.001,
    aliases: ['l', 'litre', 'litres', 'liter', 'liters', 'ltr'],
  },
  {
    symbol: 'hl',
    dimension: 'volume',
    factor: 0.1,
    aliases: ['hl', 'hectolitre', 'hectolitres', 'hectoliter', 'hectoliters'],
  },
  {
    symbol: 'US gal',
    dimension: 'volume',
    factor: M3_PER_US_GALLON,
    aliases: ['us gal', 'gal', 'gallon', 'gallons', 'us gallon', 'us gallons', 'usg'],
  },
  {
    symbol: 'kgal',
    dimension: 'volume',
    factor: M3_PER_US_GALLON * 1_000,
    aliases: ['kgal', 'thousand gallons'],
  },
  {
    symbol: 'ft3',
    dimension: 'volume',
    factor: M3_PER_CUBIC_FOOT,
    aliases: ['ft3', 'cu ft', 'cubic foot', 'cubic feet'],
  },
  { symbol: 'ccf', dimension: 'volume', factor: M3_PER_CUBIC_FOOT * 100, aliases: ['ccf', 'hcf'] },
  { symbol: 'Mcf', dimension: 'volume', factor: M3_PER_CUBIC_FOOT * 1_000, aliases: ['mcf'] },
  // Mass (canonical kg)
  { symbol: 'g', dimension: 'mass', factor: 0.001, aliases: ['g', 'gram', 'grams'] },
  { symbol: 'kg', dimension: 'mass', factor: 1, aliases: ['kg', 'kilogram', 'kilograms', 'kgs'] },
  {
    symbol: 't',
    dimension: 'mass',
    factor: 1_000,
    aliases: ['t', 'tonne', 'tonnes', 'metric ton', 'metric tons'],
  },
  { symbol: 'lb', dimension: 'mass', factor: 0.45359237, aliases: ['lb', 'lbs', 'pound', 'pounds'] },
  {
    symbol: 'short ton',
    dimension: 'mass',
    factor: 907.18474,
    aliases: ['short ton', 'short tons', 'us ton', 'us tons'],
  },
];

/**
 * Fold a unit text for lookup: case, surrounding and repeated spaces, superscript ³ and a caret
 * ("m^3"), and a trailing dot ("gal.") do not matter.
 */
const folded = new Map<string, string>();

/** Case, superscript and spacing folded: the registry's lookup key (memoised: it runs per interval). */
export function foldUnit(text: string): string {
  let f = folded.get(text);
  if (f === undefined) {
    f = foldUnitUncached(text);
    if (folded.size < 10_000) folded.set(text, f);
  }
  return f;
}

function foldUnitUncached(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/³/g, '3')
    .replace(/\^/g, '')
    .replace(/\.$/, '')
    .replace(/\s+/g, ' ');
}

const KNOWN = new Map<string, UnitInfo>();
for (const def of UNIT_DEFS) {
  const info: UnitInfo = {
    symbol: def.symbol,
    dimension: def.dimension,
    factor: def.factor,
    canonical: CANONICAL_UNITS[def.dimension],
    known: true,
  };
  for (const alias of [def.symbol, ...def.aliases]) {
    const key = foldUnit(alias);
    const clash = KNOWN.get(key);
    if (clash && clash.symbol !== def.symbol) throw new Error(`unit alias "${alias}" is defined twice`);
    KNOWN.set(key, info);
  }
}

/** Units seen but not known, by folded text. Process-wide, like the platform's unit table. */
const UNKNOWN = new Map<string, UnitInfo>();

/** The known unit for a text, or undefined (unknown units are NOT returned here). */
export function lookupUnit(text: string): UnitInfo | undefined {
  return KNOWN.get(foldUnit(text));
}

/**
 * Register a unit that is not in the registry and return its entry: kept as written, with no
 * dimension and no factor. Registering the same text twice returns the first registration.
 */
export function registerUnknownUnit(text: string): UnitInfo {
  const key = foldUnit(text);
  const known = KNOWN.get(key);
  if (known) return known;
  let info = UNKNOWN.get(key);
  if (!info) {
    info = { symbol: text.trim(), dimension: null, factor: null, canonical: null, known: false };
    UNKNOWN.set(key, info);
  }
  return info;
}

/** The known unit, or the unknown unit registered on first sight. */
export function resolveUnit(text: string): UnitInfo {
  return lookupUnit(text) ?? registerUnknownUnit(text);
}

/** Unknown units registered so far (for reporting and the unit dimension table). */
export function unknownUnits(): UnitInfo[] {
  return [...UNKNOWN.values()];
}

/** A value in its canonical unit; null when the unit is unknown (never converted by guess). */
export function toCanonical(value: number, unit: string): number | null {
  const info = lookupUnit(unit);
  if (!info || info.factor === null) return null;
  return value * info.factor;
}

/**
 * Whether values in `a` can be expressed in `b`: both known with the same dimension, or the same
 * text (an unknown unit is compatible with itself only).
 */
export function unitsCompatible(a: string, b: string): boolean {
  const ua = lookupUnit(a);
  const ub = lookupUnit(b);
  if (ua && ub) return ua.dimension === ub.dimension;
  if (!ua && !ub) return foldUnit(a) === foldUnit(b);
  return false;
}

/** Convert between compatible units; null when they are not compatible. */
export function convertUnit(value: number, from: string, to: string): number | null {
  const uf = lookupUnit(from);
  const ut = lookupUnit(to);
  if (uf && ut) {
    if (uf.dimension !== ut.dimension || uf.factor === null || ut.factor === null) return null;
    // Same symbol: return the value untouched so no rounding is introduced.
    return uf.symbol === ut.symbol ? value : (value * uf.factor) / ut.factor;
  }
  if (!uf && !ut && foldUnit(from) === foldUnit(to)) return value;
  return null;
}
