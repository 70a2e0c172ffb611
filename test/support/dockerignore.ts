/**
 * .dockerignore as Docker reads it: patterns are relative to the context root (not matched at any
 * depth as in .gitignore), `*` and `?` stay within one path segment, `**` spans segments, a
 * pattern that matches a directory excludes everything below it, and a later `!pattern`
 * re-includes. The last matching rule wins.
 */

export interface IgnoreRule {
  exclude: boolean;
  re: RegExp;
}

function toRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` spans zero or more directories; a trailing `**` anything below.
      if (pattern[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A match of a directory covers everything below it.
  return new RegExp(`^${re}(?:/.*)?$`);
}

export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const exclude = !line.startsWith('!');
    const pattern = (exclude ? line : line.slice(1)).trim().replace(/^\/+/, '').replace(/\/+$/, '');
    rules.push({ exclude, re: toRegExp(pattern) });
  }
  return rules;
}

/** Whether a path (relative to the context root, `/`-separated) is left out of the build context. */
export function dockerIgnored(rules: readonly IgnoreRule[], path: string): boolean {
  let ignored = false;
  for (const r of rules) if (r.re.test(path)) ignored = r.exclude;
  return ignored;
}
