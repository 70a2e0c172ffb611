/**
 * Decoding of raw envelopes at the stage edge: an undecodable or malformed message becomes a
 * rejection (quarantined with its original bytes); a registry that cannot answer now (outage,
 * 401/403, 429) stays a retriable error, so the runtime retries instead of quarantining.
 */
import type avro from 'avsc';
import { errorMessage } from '../../lib/errors.js';
import { isUndecodable, type AvroRegistry } from '../../lib/registry.js';
import type { RawEnvelope } from '../../schemas/records.js';
import type { InMessage, Rejection } from './stage.js';

export type Decoded<T> = { ok: true; value: T } | { ok: false; rejection: Omit<Rejection, 'connectionId'> };

/** Decodes any Avro value; only REG_DECODE failures become rejections, anything else is thrown. */
export async function decodeValue<T>(
  registry: AvroRegistry,
  msg: InMessage,
  reader?: avro.Type,
): Promise<Decoded<T>> {
  try {
    return { ok: true, value: await registry.decode<T>(msg.value, reader) };
  } catch (err) {
    if (!isUndecodable(err)) throw err;
    return {
      ok: false,
      rejection: {
        code: 'NORM_DECODE_FAILED',
        message: `cannot decode message: ${errorMessage(err)}`,
        recordIndex: null,
        detail: null,
      },
    };
  }
}

const KINDS = new Set(['asset', 'meter', 'reference', 'snapshot_complete', 'usage']);

export async function decodeEnvelope(
  registry: AvroRegistry,
  msg: InMessage,
): Promise<{ ok: true; envelope: RawEnvelope } | { ok: false; rejection: Omit<Rejection, 'connectionId'> }> {
  const decoded = await decodeValue<RawEnvelope>(registry, msg);
  if (!decoded.ok) return decoded;
  const env = decoded.value;
  // Usage rows that map to no meter travel with an empty external_id and the reason in
  // meta.unmatched: the usage stage quarantines them as VAL_UNKNOWN_METER, saying why.
  const required = ['connection_id', 'provider', 'format', 'sync_run_id'] as const;
  const missing = [
    ...required.filter((f) => !env[f]),
    ...(env.external_id || (env.entity_kind === 'usage' && env.meta.unmatched !== undefined)
      ? []
      : ['external_id']),
  ];
  if (missing.length > 0 || !KINDS.has(env.entity_kind)) {
    return {
      ok: false,
      rejection: {
        code: 'NORM_ENVELOPE_MALFORMED',
        message:
          missing.length > 0
            ? `envelope lacks ${missing.join(', ')}`
            : `unknown entity_kind "${env.entity_kind}"`,
        recordIndex: null,
        detail: null,
      },
    };
  }
  return { ok: true, envelope: env };
}
