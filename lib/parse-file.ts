/**
 * Parsing of configuration and connection files (YAML or JSON by extension). A syntax error is
 * reported by line, column and kind only: the parsers' own messages quote the offending line,
 * and in these files that line may hold a password.
 */
import { parse as parseYaml, YAMLError } from 'yaml';

export interface SyntaxProblem {
  /** 1-based; null when the parser gives no position (e.g. an unresolved YAML alias). */
  line: number | null;
  column: number | null;
  /** e.g. "YAML syntax error (BAD_INDENT)", "JSON syntax error (unterminated string)". */
  kind: string;
  /** One line for an error message: kind and position, never the text. */
  text: string;
}

export type Parsed = { ok: true; value: unknown } | { ok: false; problem: SyntaxProblem };

/** 1-based line and column of a character offset. */
function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lastBreak = before.lastIndexOf('\n');
  return { line: before.split('\n').length, column: offset - lastBreak };
}

function problem(text: string, offset: number, kind: string): Parsed {
  const { line, column } = position(text, offset);
  return { ok: false, problem: { line, column, kind, text: `${kind} at line ${line}, column ${column}` } };
}

/** Parses a file's text; `.json` files as JSON, anything else as YAML. */
export function parseFileText(text: string, path: string): Parsed {
  if (/\.json$/i.test(path)) {
    try {
      return { ok: true, value: JSON.parse(text) as unknown };
    } catch {
      const at = jsonErrorAt(text);
      return problem(text, at.offset, `JSON syntax error (${at.kind})`);
    }
  }
  try {
    // logLevel 'error': yaml would otherwise print warnings, source line included, to stderr.
    return { ok: true, value: parseYaml(text, { prettyErrors: false, logLevel: 'error' }) as unknown };
  } catch (err) {
    if (err instanceof YAMLError) return problem(text, err.pos[0], `YAML syntax error (${err.code})`);
    const kind = `YAML error (${err instanceof Error ? err.name : 'unknown'})`;
    return { ok: false, problem: { line: null, column: null, kind, text: kind } };
  }
}

/** Ends the scan at the first error; never leaves jsonErrorAt. */
class JsonStop extends Error {
  constructor(readonly kind: string) {
    super(kind);
  }
}
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Where and why JSON.parse failed. V8's message carries no position for some errors (and a
 * snippet of the text for others), so the text is scanned once more by the JSON grammar.
 */
function jsonErrorAt(text: string): { offset: number; kind: string } {
  let i = 0;
  function fail(kind: string): never {
    throw new JsonStop(kind);
  }
  function ws(): void {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  }
  function string(): void {
    i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) fail('unterminated string');
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad unicode escape');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else {
          fail('bad escape');
        }
        continue;
      }
      if (c < ' ') fail('control character in a string');
      i++;
    }
  }
  function value(depth: number): void {
    if (depth > 1_000) fail('nested too deeply');
    ws();
    const c = text[i];
    if (c === undefined) fail('unexpected end of input');
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (c === '{') {
          if (text[i] !== '"') fail('expected a double-quoted property name');
          string();
          ws();
          if (text[i] !== ':') fail("expected ':' after a property name");
          i++;
        }
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return;
        }
        fail(text[i] === undefined ? 'unexpected end of input' : `expected ',' or '${close}'`);
      }
    }
    if (c === '"') return string();
    JSON_NUMBER.lastIndex = i;
    if (JSON_NUMBER.test(text)) {
      i = JSON_NUMBER.lastIndex;
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    fail('unexpected character');
  }
  try {
    value(0);
    ws();
    if (i < text.length) fail('unexpected text after the document');
    return { offset: i, kind: 'invalid JSON' };
  } catch (e) {
    if (e instanceof JsonStop) return { offset: i, kind: e.kind };
    return { offset: i, kind: 'invalid JSON' };
  }
}
