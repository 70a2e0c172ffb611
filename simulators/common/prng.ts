/**
 * Deterministic pseudo-random numbers for the provider simulators.
 *
 * Everything a simulator generates is derived from one numeric seed plus a "key path"
 * (e.g. seed → meter id → local date), so any slice of data can be regenerated on demand
 * without generating what comes before it.
 */

/** A PRNG returning floats in [0, 1). */
export type Rng = () => number;

/** mulberry32: tiny, fast, good enough for test data. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a 32-bit hash of a string, mixed with a murmur3 finaliser. */
export function hashString(s: string, h = 0x811c9dc5): number {
  let x = h >>> 0;
  for (let i = 0; i < s.length; i++) {
    x ^= s.charCodeAt(i);
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** Derive a sub-seed from a seed and a key path. */
export function deriveSeed(seed: number, ...parts: Array<string | number>): number {
  let h = hashString(String(seed >>> 0));
  for (const p of parts) h = hashString(`\u0000${String(p)}`, h);
  return h;
}

/** A PRNG for (seed, ...key path). */
export function rngFor(seed: number, ...parts: Array<string | number>): Rng {
  return mulberry32(deriveSeed(seed, ...parts));
}

/** Helpers over an Rng. */
export function randInt(rng: Rng, minInclusive: number, maxInclusive: number): number {
  return minInclusive + Math.floor(rng() * (maxInclusive - minInclusive + 1));
}

export function randRange(rng: Rng, min: number, max: number): number {
  return min + rng() * (max - min);
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pick from empty list');
  return items[Math.floor(rng() * items.length)] as T;
}

/** Approximately normal(0, 1) (sum of uniforms). */
export function gaussian(rng: Rng): number {
  return rng() + rng() + rng() + rng() + rng() + rng() - 3;
}

/** Deterministic hex id of a given length. */
export function hexId(rng: Rng, length: number): string {
  let s = '';
  while (s.length < length)
    s += Math.floor(rng() * 0x100000000)
      .toString(16)
      .padStart(8, '0');
  return s.slice(0, length);
}
