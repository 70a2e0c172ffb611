/**
 * Configuration input through its zod schema, or CFG_INVALID naming every bad setting: the one
 * place where zod's issues become meterflow's error. Messages carry paths and zod's messages,
 * never the input's values (a setting may be a secret).
 */
import type { z } from 'zod';
import { MeterflowError } from './errors.js';

export interface ParseWhere {
  /** Names the input at the start of the message: "connection file a.yaml", "ClickHouse sink options". */
  what: string;
  /** Path prefix of every setting, e.g. 'options' when the schema checks `connection.options`. */
  prefix?: string;
  /** How a setting is shown in the message (e.g. with the environment variable behind it). */
  label?: (setting: string, issue: z.core.$ZodIssue) => string;
  /** Extra error context; `settings` lists the bad settings' paths. */
  context?: Record<string, unknown>;
}

/** The setting path of an issue, with the prefix; '(root)' for the input as a whole. */
function settingOf(issue: z.core.$ZodIssue, prefix: string | undefined): string {
  const path = [...(prefix ? [prefix] : []), ...issue.path.map(String)].join('.');
  return path || '(root)';
}

export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: ParseWhere | string,
): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const w = typeof where === 'string' ? { what: where } : where;
  const settings = r.error.issues.map((i) => settingOf(i, w.prefix));
  const problems = r.error.issues.map(
    (i, n) => `${w.label ? w.label(settings[n]!, i) : settings[n]}: ${i.message}`,
  );
  throw new MeterflowError('CFG_INVALID', `${w.what}: ${problems.join('; ')}`, {
    context: { ...w.context, settings },
  });
}
