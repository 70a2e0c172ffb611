/**
 * Telling a variable NAME from a pasted secret VALUE in `...Env` fields, so that a connection file
 * holding a secret is refused at load and the value is never printed.
 */

/** Token formats that are never variable names (AWS, Stripe, GitHub, Slack, GitLab, JWT). */
const SECRET_PREFIXES = [
  /^(AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}$/i,
  /^(sk|rk|pk)_(live|test)_[A-Za-z0-9]{8,}/i,
  /^gh[pousr]_[A-Za-z0-9]{20,}/i,
  /^github_pat_/i,
  /^xox[abprs]-/i,
  /^glpat-/i,
  /^eyJ[A-Za-z0-9_-]{10,}/,
];

/** Shannon entropy in bits per character. */
function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / s.length) * Math.log2(n / s.length);
  return bits;
}

/**
 * Whether a string given as a variable NAME in an `...Env` field is more likely a pasted secret
 * value: a known token format; characters a name cannot have; longer than 64; more than 16
 * characters without an underscore; or a part (between underscores) of 16+ characters mixing
 * letters and digits, or of 20+ characters that look random. Real names are words joined by `_`.
 */
export function looksLikeSecret(name: string): boolean {
  if (SECRET_PREFIXES.some((p) => p.test(name))) return true;
  if (name.length > 64) return true;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && name.length >= 16) return true;
  if (!name.includes('_') && name.length > 16) return true;
  return name
    .split('_')
    .some(
      (part) =>
        (part.length >= 16 && /[0-9]/.test(part) && /[A-Za-z]/.test(part)) ||
        (part.length >= 20 && entropy(part) >= 3.5),
    );
}
