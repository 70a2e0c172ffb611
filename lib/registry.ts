/**
 * Avro serialisation through a Confluent-compatible schema registry (Confluent wire format:
 * magic byte 0, 4-byte schema id, Avro binary). Registration goes through
 * @kafkajs/confluent-schema-registry with BACKWARD compatibility; encoding and decoding use
 * cached avsc types directly, since they sit on every hot path.
 */
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import type { Config } from './config.js';
import { errorMessage, isMeterflowError, MeterflowError } from './errors.js';
import { redactUrl } from './redact-url.js';
import { sleep } from './retry.js';
import { TOPICS, topicName, type TopicId, type TopicRecords } from '../schemas/topics.js';
import type { AvroSchema } from '../schemas/avro.js';

const MAGIC = 0;
/** A schema lookup that takes longer is an outage (retried), not a hang of the stage. */
const LOOKUP_TIMEOUT_MS = 10_000;

/**
 * The registry could not give an answer now (network, timeout, 401/403, 408, 429, 5xx): the
 * message may be fine, so the caller retries it later and never quarantines it.
 */
export function isRegistryUnavailable(err: unknown): err is MeterflowError {
  return isMeterflowError(err) && (err.code === 'REG_UNREACHABLE' || err.code === 'REG_AUTH');
}

/**
 * The message itself cannot be decoded (not wire format, a schema id the registry does not know,
 * bytes that do not fit the schema): the caller quarantines it.
 */
export function isUndecodable(err: unknown): err is MeterflowError {
  return isMeterflowError(err) && err.code === 'REG_DECODE';
}

/** The error for a registry answer other than 200 to a lookup or a registration. */
function registryRefusal(status: number, url: string, what: string, cause?: unknown): MeterflowError {
  if (status === 401 || status === 403) {
    return new MeterflowError(
      'REG_AUTH',
      `schema registry ${url} refused ${what} with ${status}: check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD`,
      { cause, retriable: true, context: { url, status } },
    );
  }
  return new MeterflowError('REG_UNREACHABLE', `schema registry ${url} answered ${status} to ${what}`, {
    cause,
    retriable: true,
    context: { url, status },
  });
}

export interface Serde<T> {
  readonly schemaId: number;
  encode(value: T): Buffer;
}

/**
 * Scratch space for encoding, grown to the largest record seen. avsc's toBuffer encodes into a
 * shared 1 KiB buffer and, for anything larger (a usage batch is several KiB), encodes the whole
 * record a second time into a fresh buffer; encoding once here and copying out halves the work.
 */
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

/** Confluent wire format: magic byte, schema id, Avro body. */
function encodeFramed(type: avro.Type, schemaId: number, value: unknown): Buffer {
  let end = type.encode(value, scratch, 5);
  if (end < 0) {
    // encode() returns minus the missing bytes when the record does not fit.
    scratch = Buffer.allocUnsafeSlow(Math.max(scratch.length * 2, scratch.length - end));
    end = type.encode(value, scratch, 5);
  }
  const out = Buffer.allocUnsafe(end);
  scratch.copy(out, 0, 0, end);
  out[0] = MAGIC;
  out.writeInt32BE(schemaId, 1);
  return out;
}

export class AvroRegistry {
  readonly client: SchemaRegistry;
  private readonly typesById = new Map<number, avro.Type>();
  private readonly pending = new Map<number, Promise<avro.Type>>();
  private readonly registrations = new Map<string, Promise<Serde<unknown>>>();
  /** Resolvers are costly to build: one per (reader type, writer schema id). */
  private readonly resolvers = new WeakMap<avro.Type, Map<number, avro.Resolver>>();

  /** The registry URL without user info: the only form that is printed. */
  readonly url: string;
  /** Sent on schema lookups; registrations get the same credentials through the client. */
  private readonly authorization: string | undefined;

  constructor(url: string, auth?: { username: string; password: string }) {
    // Config refuses user info in the URL; a caller passing it anyway gets it used as the
    // credentials, never printed (and Node's fetch refuses such URLs).
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    const fromUrl =
      parsed && (parsed.username || parsed.password)
        ? { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) }
        : undefined;
    this.url = parsed && fromUrl ? redactUrl(parsed).replace(/\/$/, '') : url;
    const credentials = auth ?? fromUrl;
    this.authorization = credentials
      ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
      : undefined;
    this.client = new SchemaRegistry({
      host: this.url,
      ...(credentials ? { auth: credentials } : {}),
      retry: { retries: 2 },
    });
  }

  static fromConfig(config: Config): AvroRegistry {
    const { url, username, password } = config.registry;
    return new AvroRegistry(url, username && password ? { username, password } : undefined);
  }

  /**
   * Registers `schema` under `subject` with BACKWARD compatibility and returns an encoder.
   * An incompatible change is rejected by the registry: REG_INCOMPATIBLE.
   */
  register<T>(subject: string, schema: AvroSchema): Promise<Serde<T>> {
    // One registration per subject and schema per client: concurrent callers share it.
    const memoKey = `${subject}\n${JSON.stringify(schema)}`;
    let p = this.registrations.get(memoKey) as Promise<Serde<T>> | undefined;
    if (!p) {
      p = this.registerOnce<T>(subject, schema);
      this.registrations.set(memoKey, p);
      p.catch(() => this.registrations.delete(memoKey));
    }
    return p;
  }

  private async registerOnce<T>(subject: string, schema: AvroSchema): Promise<Serde<T>> {
    let id: number;
    try {
      const body = { type: SchemaType.AVRO, schema: JSON.stringify(schema) } as const;
      const opts = { subject, compatibility: COMPATIBILITY.BACKWARD };
      // Another process may be registering the subject's first version at the same moment: it
      // exists before its BACKWARD rule is set ("does not match the configuration"), or the
      // rule's creation collides ("already exists"). Both settle within moments.
      for (let attempt = 1; ; attempt++) {
        try {
          ({ id } = await this.client.register(body, opts));
          break;
        } catch (err) {
          const settling =
            (err as Error).name === 'ConfluentSchemaRegistryCompatibilityError' ||
            /already exists/i.test(errorMessage(err));
          if (attempt >= 5 || !settling) throw err;
          await sleep(100 * attempt);
        }
      }
    } catch (cause) {
      const msg = errorMessage(cause);
      const status = (cause as { status?: number }).status;
      if (status === 401 || status === 403)
        throw registryRefusal(status, this.url, `schema ${subject}`, cause);
      if (status === 409 || /incompatib/i.test(msg)) {
        throw new MeterflowError(
          'REG_INCOMPATIBLE',
          `schema for ${subject} is not BACKWARD compatible: ${msg}`,
          {
            cause,
            context: { subject },
          },
        );
      }
      throw new MeterflowError(
        'REG_UNREACHABLE',
        `cannot register schema ${subject} at ${this.url}: ${msg}`,
        {
          cause,
          retriable: true,
          context: { subject, url: this.url, ...(status ? { status } : {}) },
        },
      );
    }
    const type = avro.Type.forSchema(schema as avro.Schema);
    this.typesById.set(id, type);
    return {
      schemaId: id,
      encode: (value: T): Buffer => encodeFramed(type, id, value),
    };
  }

  /** Registers the value schema of a catalogue topic. */
  registerTopic<K extends TopicId>(prefix: string, id: K): Promise<Serde<TopicRecords[K]>> {
    return this.register<TopicRecords[K]>(`${topicName(prefix, id)}-value`, TOPICS[id].schema);
  }

  private async typeFor(id: number): Promise<avro.Type> {
    const known = this.typesById.get(id);
    if (known) return known;
    let p = this.pending.get(id);
    if (!p) {
      p = this.lookup(id).finally(() => this.pending.delete(id));
      this.pending.set(id, p);
    }
    return p;
  }

  /** Asks the registry for a writer schema, with the configured credentials. */
  private async lookup(id: number): Promise<avro.Type> {
    const what = `schema id ${id}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.url.replace(/\/$/, '')}/schemas/ids/${id}`, {
        headers: {
          accept: 'application/vnd.schemaregistry.v1+json, application/json',
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
        signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
      });
      text = await res.text();
    } catch (cause) {
      throw new MeterflowError(
        'REG_UNREACHABLE',
        `schema registry ${this.url} did not answer for ${what}: ${errorMessage(cause)}`,
        { cause, retriable: true, context: { url: this.url, schemaId: id } },
      );
    }
    // Only "no such schema" says something about the message; every other refusal is about now.
    if (res.status === 404) {
      throw new MeterflowError('REG_DECODE', `unknown schema id ${id}: the registry has no such schema`, {
        context: { schemaId: id },
      });
    }
    if (!res.ok) throw registryRefusal(res.status, this.url, what);
    let schema: unknown;
    try {
      schema = (JSON.parse(text) as { schema?: unknown }).schema;
    } catch (cause) {
      // Something in front of the registry (a proxy's HTML page): not an answer about the schema.
      throw new MeterflowError(
        'REG_UNREACHABLE',
        `schema registry ${this.url} answered ${what} with a body that is not JSON`,
        { cause, retriable: true, context: { url: this.url, schemaId: id } },
      );
    }
    try {
      if (typeof schema !== 'string') throw new Error('the answer has no schema');
      const type = avro.Type.forSchema(JSON.parse(schema) as avro.Schema);
      this.typesById.set(id, type);
      return type;
    } catch (cause) {
      throw new MeterflowError(
        'REG_DECODE',
        `schema id ${id} is not an Avro schema meterflow can read: ${errorMessage(cause)}`,
        { cause, context: { schemaId: id } },
      );
    }
  }

  /**
   * Decodes a Confluent-framed Avro message, resolving the writer schema to `readerSchema` when
   * given. Throws REG_DECODE for anything that is not a valid framed record (the caller
   * quarantines it, see isUndecodable) and REG_UNREACHABLE or REG_AUTH when the registry cannot
   * answer now (the caller retries, see isRegistryUnavailable).
   */
  async decode<T>(buf: Buffer | null, reader?: avro.Type): Promise<T> {
    if (!buf || buf.length < 6 || buf[0] !== MAGIC) {
      throw new MeterflowError(
        'REG_DECODE',
        'not a Confluent wire-format Avro message (bad magic byte or too short)',
      );
    }
    const id = buf.readInt32BE(1);
    const writer = await this.typeFor(id);
    try {
      const body = buf.subarray(5);
      if (reader && reader !== writer) {
        let resolver = this.resolvers.get(reader)?.get(id);
        if (!resolver) {
          resolver = reader.createResolver(writer);
          let byId = this.resolvers.get(reader);
          if (!byId) this.resolvers.set(reader, (byId = new Map<number, avro.Resolver>()));
          byId.set(id, resolver);
        }
        return reader.fromBuffer(body, resolver) as T;
      }
      return writer.fromBuffer(body) as T;
    } catch (cause) {
      throw new MeterflowError(
        'REG_DECODE',
        `Avro body does not decode with schema id ${id}: ${errorMessage(cause)}`,
        {
          cause,
          context: { schemaId: id },
        },
      );
    }
  }

  /** Synchronous decode when the writer schema is already cached (hot path); undefined otherwise. */
  decodeCached<T>(buf: Buffer): T | undefined {
    if (buf.length < 6 || buf[0] !== MAGIC) return undefined;
    const writer = this.typesById.get(buf.readInt32BE(1));
    if (!writer) return undefined;
    return writer.fromBuffer(buf.subarray(5)) as T;
  }
}

/** The reader type of a catalogue topic, for decoding older writer versions. */
export function readerType(id: TopicId): avro.Type {
  return avro.Type.forSchema(TOPICS[id].schema as avro.Schema);
}
