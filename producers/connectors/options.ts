/** Validation of `connection.options` with a connector's zod schema (CFG_INVALID naming the field). */
import type { z } from 'zod';
import { MeterflowError } from '../../lib/errors.js';
import type { ConnectionConfig } from '../../schemas/connection.js';

export function parseOptions<S extends z.ZodType>(schema: S, connection: ConnectionConfig): z.infer<S> {
  const r = schema.safeParse(connection.options);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `options.${i.path.join('.')}: ${i.message}`);
  throw new MeterflowError('CFG_INVALID', `connection ${connection.id}: ${problems.join('; ')}`, {
    context: { connection: connection.id, fields: r.error.issues.map((i) => `options.${i.path.join('.')}`) },
  });
}
