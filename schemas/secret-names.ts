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

/** Whether a value has the format of a known access token or key (anywhere in a file). */
export function looksLikeToken(value: string): boolean {
  return SECRET_PREFIXES.some((p) => p.test(value));
}

/** Keys whose literal value would be a credential; `...Env`, `...Url` and the like name things instead. */
const SECRET_KEY =
  /(pass(word|wd)?|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|signature)/i;
const NAMING_SUFFIX = /(Env|Url|Path|Param|Header|Name|Format|Type|Seconds|Ms)$/;
const URL_USER_INFO = /^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]*@/i;

/** A literal that reads like a generated credential: long, mixing letters and digits, or random. */
function randomLooking(value: string): boolean {
  if (/^\{[^{}]*\}$/.test(value)) return false; // a template such as "{key}"
  return (
    (value.length >= 12 && /[A-Za-z]/.test(value) && /[0-9]/.test(value) && !/\s/.test(value)) ||
    (value.length >= 16 && entropy(value) >= 3.5)
  );
}

export interface SecretValueProblem {
  /** Dot path of the value in the document. */
  path: string;
  /** What is wrong, without the value (at most its length). */
  problem: string;
}

/**
 * Every string of a connection document that looks like a secret VALUE rather than the name of a
 * variable: an `...Env` field that is no variable name, a known token format anywhere, a URL with
 * user info, or a random-looking literal under a credential-like key (a query parameter
 * `api_key: 9f8e...`). Used before a connection is published to a topic, where a secret must
 * never go. The values themselves are never part of the answer.
 */
export function secretValueProblems(doc: unknown): SecretValueProblem[] {
  const out: SecretValueProblem[] = [];
  const walk = (v: unknown, path: string[]): void => {
    if (typeof v === 'string') {
      const key = path.at(-1) ?? '';
      const at = path.join('.');
      const size = `(${v.length} chars)`;
      if (key.endsWith('Env') && looksLikeSecret(v))
        out.push({ path: at, problem: `looks like a secret value ${size}, not a variable name` });
      else if (looksLikeToken(v))
        out.push({ path: at, problem: `has the format of an access token or key ${size}` });
      else if (URL_USER_INFO.test(v))
        out.push({ path: at, problem: 'is a URL with user:password@; give credentials through auth' });
      else if (SECRET_KEY.test(key) && !NAMING_SUFFIX.test(key) && randomLooking(v))
        out.push({
          path: at,
          problem: `is a literal credential-like value ${size}; give it through auth as an ...Env variable name`,
        });
      return;
    }
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, String(i)]));
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(x, [...path, k]);
  };
  walk(doc, []);
  return out;
}
