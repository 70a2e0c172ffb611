/**
 * Options of the ClickHouse sink: one zod schema, every default in one place with its unit. The
 * descriptions are the reference documentation. Parsed once by create() in index.ts.
 */
import { z } from 'zod';

export const FAMILIES = ['entities', 'usage', 'aggregates', 'quarantine', 'syncRuns', 'mappings'] as const;
export type FamilyName = (typeof FAMILIES)[number];

export const sinkOptionsSchema = z
  .object({
    families: z
      .array(z.enum(FAMILIES))
      .min(1)
      .default([...FAMILIES])
      .describe('table families to load; each runs its own consumer group'),
    groupIdPrefix: z
      .string()
      .min(1)
      .optional()
      .describe(
        'consumer group prefix; default `<topicPrefix>clickhouse-sink.`; the group is `<prefix><family>`',
      ),
    fromBeginning: z.boolean().default(true).describe('a new consumer group starts at the earliest offset'),
    batchMaxRows: z
      .number()
      .int()
      .min(1)
      // ClickHouse writes an insert of up to max_insert_block_size (1,048,576) rows as one block,
      // so a failed insert below that size leaves nothing behind.
      .max(1_000_000)
      // 100,000 rather than 50,000: every insert writes a part and ClickHouse parses each insert
      // on one thread, so on the 2-core bench machine 50,000-row inserts one after the other
      // ran at ~260k rows/s and 100,000-row inserts at ~375k (test/bench/sink-clickhouse.ts).
      .default(100_000)
      .describe('rows: flush when a family buffer holds this many rows'),
    batchMaxMs: z
      .number()
      .int()
      .min(1)
      .default(1_000)
      .describe('ms: flush when the oldest buffered row is this old'),
    flushWhenCaughtUp: z
      .boolean()
      .default(true)
      .describe(
        'flush a partial batch as soon as every assigned partition is read to its end, at most once per batchMaxMs (false: wait for batchMaxMs)',
      ),
    maxBufferedRows: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'rows: pause consumption above this (default batchMaxRows: one batch buffered while one is inserted); backpressure while inserts lag; below batchMaxRows a full buffer is flushed as a batch',
      ),
    batchMaxBytes: z
      .number()
      .int()
      .min(1024)
      // 100,000 usage rows are about 45 MB of JSON text: rows decide for them; bytes decide for
      // the few large records (a quarantine record carries a whole message, as hex).
      .default(64 * 1024 * 1024)
      .describe('bytes: flush when a family buffer holds this many bytes (record values and row text)'),
    maxBufferedBytes: z
      .number()
      .int()
      .min(1024)
      .optional()
      .describe(
        'bytes: pause consumption above this (default batchMaxBytes); bounds the memory of a family; below batchMaxBytes a full buffer is flushed as a batch',
      ),
    retryInitialMs: z.number().int().min(1).default(200).describe('ms: first backoff after a failed insert'),
    retryMaxMs: z.number().int().min(1).default(10_000).describe('ms: backoff cap'),
    retryFactor: z.number().min(1).default(2).describe('backoff multiplier per attempt'),
    requestTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(60_000)
      .describe('ms: ClickHouse HTTP request timeout'),
    drainTimeoutMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe(
        'ms: on stop, how long to keep trying to flush; what is not inserted is not committed and is read again',
      ),
    migrate: z.boolean().default(true).describe('apply pending migrations at start'),
    fetchMaxWaitMs: z
      .number()
      .int()
      .min(10)
      .default(500)
      // kafkajs also sleeps this long when every partition is paused, so it bounds how soon
      // consumption resumes after backpressure (its default, 5 s, stalled the sink visibly).
      .describe('ms: longest wait of a Kafka fetch for new data, and of a fetch while paused'),
    maxBytesPerPartition: z
      .number()
      .int()
      .min(1024)
      // 1 MiB, as the processors: kafkajs holds every partition's fetched batch (compressed and
      // decompressed) until it is consumed, which kept a sink near 512 MB with 4 MiB.
      .default(1024 * 1024)
      .describe('bytes: Kafka fetch size per partition'),
  })
  .strict();

export type SinkOptionsInput = z.input<typeof sinkOptionsSchema>;
export type SinkOptions = z.output<typeof sinkOptionsSchema>;
