/** Validation of `connection.options` with a connector's zod schema (CFG_INVALID naming the field). */
import type { z } from 'zod';
import { parseOrThrow } from '../../lib/parse-or-throw.js';
import type { ConnectionConfig } from '../../schemas/connection.js';

export function parseOptions<S extends z.ZodType>(schema: S, connection: ConnectionConfig): z.infer<S> {
  return parseOrThrow(schema, connection.options, {
    what: `connection ${connection.id}`,
    prefix: 'options',
    context: { connection: connection.id },
  });
}
