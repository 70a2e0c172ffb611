/**
 * Connection files: every *.yaml, *.yml and *.json in a folder, validated with
 * schemas/connection.ts. A bad file fails with CFG_INVALID naming the file and the field.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { parseFileText } from '../../lib/parse-file.js';
import { parseOrThrow } from '../../lib/parse-or-throw.js';
import { connectionSchema, type ConnectionConfig } from '../../schemas/connection.js';

const EXT = /\.(ya?ml|json)$/i;

/** Parses and validates one connection document; `source` names the file in errors. */
export function parseConnection(raw: unknown, source: string): ConnectionConfig {
  return parseOrThrow(connectionSchema, raw, {
    what: `connection file ${source}`,
    context: { file: source },
  });
}

/** Reads one connection file. A syntax error names the line and column, never the line's text. */
export async function loadConnectionFile(path: string): Promise<ConnectionConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new MeterflowError(
      'CFG_FILE_UNREADABLE',
      `connection file ${path} cannot be read: ${errorMessage(cause)}`,
      { cause, context: { file: path } },
    );
  }
  const parsed = parseFileText(text, path);
  if (!parsed.ok) {
    const { line, column, kind } = parsed.problem;
    throw new MeterflowError(
      'CFG_FILE_UNREADABLE',
      `connection file ${path} cannot be parsed: ${parsed.problem.text}`,
      { context: { file: path, line, column, kind } },
    );
  }
  return parseConnection(parsed.value, path);
}

/** Loads every connection file of a folder (sorted by name); duplicate ids are CFG_INVALID. */
export async function loadConnections(dir: string): Promise<ConnectionConfig[]> {
  return (await loadConnectionSources(dir)).map((s) => s.connection);
}

/** Every connection of a folder with the file it came from (sorted by file name). */
export async function loadConnectionSources(
  dir: string,
): Promise<{ connection: ConnectionConfig; file: string }[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => EXT.test(n)).sort();
  } catch (cause) {
    throw new MeterflowError(
      'CFG_FILE_UNREADABLE',
      `connections folder ${dir} cannot be read: ${errorMessage(cause)}`,
      { cause, context: { dir } },
    );
  }
  const out: { connection: ConnectionConfig; file: string }[] = [];
  const seen = new Map<string, string>();
  for (const n of names) {
    const path = join(dir, n);
    const c = await loadConnectionFile(path);
    const other = seen.get(c.id);
    if (other) {
      throw new MeterflowError(
        'CFG_INVALID',
        `connection file ${path}: id "${c.id}" is already used by ${other}`,
        { context: { file: path, fields: ['id'] } },
      );
    }
    seen.set(c.id, path);
    out.push({ connection: c, file: path });
  }
  return out;
}

/**
 * The connection `id` as its folder has it now: read again before each sync, so a fixed file
 * takes effect without a restart. CFG_INVALID when no file has that id any more.
 */
export async function reloadConnection(
  dir: string,
  id: string,
): Promise<{ connection: ConnectionConfig; source: string }> {
  const found = (await loadConnectionSources(dir)).find((s) => s.connection.id === id);
  if (!found) {
    throw new MeterflowError('CFG_INVALID', `no connection file in ${dir} has id "${id}" any more`, {
      context: { dir, connection: id },
    });
  }
  return { connection: found.connection, source: found.file };
}
