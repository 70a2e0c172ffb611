/**
 * Benchmark: is kafkajs the ceiling of the processors' transactions? The same consume-transform-
 * produce work through kafkajs (as processors/runtime/run-stage.ts uses it) and through
 * @platformatic/kafka (a maintained pure-JavaScript client): read one input record, write its
 * outputs, commit the input offset with them in one transaction, then the next record.
 *
 *   npx tsx test/bench/kafka-clients.ts [--transactions 200]
 *
 * Two shapes of output per transaction: one 200 KiB record (a usage batch of one meter-month) and
 * 100 records of 150 bytes (aggregates). Uncompressed, one partition, one transaction at a time,
 * as run-stage commits each input partition. Prints transactions/s and CPU per transaction of
 * this process for each client; asserts nothing.
 *
 * @platformatic/kafka is not a dependency of meterflow: install it beside the repository
 * (`npm i --prefix /some/dir @platformatic/kafka@1` — 1.x runs on Node.js 20, 2.x needs 22) and
 * give the folder as MF_BENCH_ALT_KAFKA=/some/dir. Without it, kafkajs alone is measured.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Kafka } from 'kafkajs';
import { createTestContext, type TestContext } from '../support/context.js';
import { TRANSACTION_RETRY } from '../../lib/kafka.js';
import { fmt } from './common.js';

const { values } = parseArgs({ options: { transactions: { type: 'string', default: '200' } } });
const TRANSACTIONS = Number(values.transactions);

interface Shape {
  name: string;
  messages: number;
  bytes: number;
}
const SHAPES: Shape[] = [
  { name: '1 record of 200 KiB', messages: 1, bytes: 200 * 1024 },
  { name: '100 records of 150 B', messages: 100, bytes: 150 },
];

interface Result {
  seconds: number;
  cpuMs: number;
}

function outputs(shape: Shape): { key: Buffer; value: Buffer }[] {
  return Array.from({ length: shape.messages }, (_, i) => ({
    key: Buffer.from(`bench/mtr_${i}`),
    value: randomBytes(shape.bytes),
  }));
}

async function fillInput(ctx: TestContext, topic: string): Promise<void> {
  const producer = ctx.kafka.producer();
  await producer.connect();
  const messages = Array.from({ length: TRANSACTIONS }, (_, i) => ({
    key: `in/${i}`,
    value: Buffer.alloc(100, i),
    partition: 0,
  }));
  await producer.send({ topic, messages });
  await producer.disconnect();
}

/**
 * kafkajs as run-stage.ts uses it: transactional producer, read_committed consumer, eachBatch;
 * with the client's retry settings (first backoff 200 ms) or run-stage's TRANSACTION_RETRY.
 */
async function withKafkajs(
  kafka: Kafka,
  input: string,
  output: string,
  shape: Shape,
  id: string,
  retry: 'client' | 'transaction',
): Promise<Result> {
  const producer = kafka.producer({
    transactionalId: `${id}.kafkajs`,
    idempotent: true,
    maxInFlightRequests: 1,
    ...(retry === 'transaction' ? { retry: TRANSACTION_RETRY } : {}),
  });
  await producer.connect();
  const groupId = `${id}.kafkajs`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  const out = outputs(shape);
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let started = 0;
  let cpu = process.cpuUsage();
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async (payload) => {
      const { batch } = payload;
      if (done === 0) {
        started = performance.now();
        cpu = process.cpuUsage();
      }
      for (const m of batch.messages) {
        if (done >= TRANSACTIONS) break;
        const txn = await producer.transaction();
        await txn.send({ topic: output, messages: out.map((o) => ({ ...o, partition: 0 })) });
        await txn.sendOffsets({
          consumerGroupId: groupId,
          topics: [
            {
              topic: input,
              partitions: [{ partition: batch.partition, offset: String(Number(m.offset) + 1) }],
            },
          ],
        });
        await txn.commit();
        payload.resolveOffset(m.offset);
        if (++done === TRANSACTIONS) finish();
      }
    },
  });
  await finished;
  const used = process.cpuUsage(cpu);
  const result = { seconds: (performance.now() - started) / 1000, cpuMs: (used.user + used.system) / 1000 };
  await consumer.disconnect();
  await producer.disconnect();
  return result;
}

/** The minimal surface of @platformatic/kafka 1.x used here. */
interface PkMessage {
  topic: string;
  partition: number;
  offset: bigint;
}
interface PkTransaction {
  addConsumer(consumer: unknown): Promise<void>;
  send(o: { messages: { topic: string; key: Buffer; value: Buffer; partition: number }[] }): Promise<unknown>;
  addOffset(message: PkMessage): Promise<void>;
  commit(): Promise<void>;
}
interface PkModule {
  Producer: new (o: Record<string, unknown>) => {
    beginTransaction(): Promise<PkTransaction>;
    close(): Promise<void>;
  };
  Consumer: new (o: Record<string, unknown>) => {
    consume(o: Record<string, unknown>): Promise<AsyncIterable<PkMessage> & { close(): Promise<void> }>;
    close(force?: boolean): Promise<void>;
  };
}

async function withPlatformatic(
  pk: PkModule,
  brokers: string[],
  input: string,
  output: string,
  shape: Shape,
  id: string,
): Promise<Result> {
  const producer = new pk.Producer({
    clientId: `${id}.pk`,
    bootstrapBrokers: brokers,
    transactionalId: `${id}.pk`,
    idempotent: true,
    // Its first backoff is 1 s (CONCURRENT_TRANSACTIONS after every commit): as kafkajs above.
    retryDelay: TRANSACTION_RETRY.initialRetryTime,
  });
  const consumer = new pk.Consumer({
    clientId: `${id}.pk`,
    groupId: `${id}.pk`,
    bootstrapBrokers: brokers,
    // read_committed, as the processors read their inputs
    isolationLevel: 1,
  });
  const stream = await consumer.consume({ topics: [input], mode: 'earliest', autocommit: false });
  const out = outputs(shape).map((o) => ({ ...o, topic: output, partition: 0 }));
  let done = 0;
  let started = 0;
  let cpu = process.cpuUsage();
  for await (const message of stream) {
    if (done === 0) {
      started = performance.now();
      cpu = process.cpuUsage();
    }
    const txn = await producer.beginTransaction();
    await txn.addConsumer(consumer);
    await txn.send({ messages: out });
    await txn.addOffset(message);
    await txn.commit();
    if (++done === TRANSACTIONS) break;
  }
  const used = process.cpuUsage(cpu);
  const result = { seconds: (performance.now() - started) / 1000, cpuMs: (used.user + used.system) / 1000 };
  await stream.close().catch(() => undefined);
  await consumer.close(true).catch(() => undefined);
  await producer.close().catch(() => undefined);
  return result;
}

async function loadPlatformatic(): Promise<PkModule | string> {
  const dir = process.env.MF_BENCH_ALT_KAFKA;
  if (!dir) return 'MF_BENCH_ALT_KAFKA not set (see the header of this file)';
  try {
    const entry = join(dir, 'node_modules/@platformatic/kafka/dist/index.js');
    return (await import(pathToFileURL(entry).href)) as PkModule;
  } catch (err) {
    return `cannot load @platformatic/kafka from ${dir}: ${String(err)}`;
  }
}

const LABELS = {
  kafkajs: 'kafkajs, retry 200 ms',
  'kafkajs-fast-retry': 'kafkajs, retry 20 ms (run-stage)',
  '@platformatic/kafka': '@platformatic/kafka, retry 20 ms',
};

const ctx = createTestContext({ partitions: 1 });
try {
  const pk = await loadPlatformatic();
  const line = (client: string, r: Result) =>
    `  ${client.padEnd(34)} ${fmt(TRANSACTIONS / r.seconds).padStart(5)} transactions/s, ${(r.cpuMs / TRANSACTIONS).toFixed(2)} ms CPU each`;
  console.log(
    `${TRANSACTIONS} transactions one after the other, each: read one record, write its outputs, commit the offset`,
  );
  for (const [i, shape] of SHAPES.entries()) {
    console.log(`outputs: ${shape.name}`);
    const prefix = ctx.config.kafka.topicPrefix;
    const clients = ['kafkajs', 'kafkajs-fast-retry', '@platformatic/kafka'] as const;
    for (const client of clients) {
      if (client === '@platformatic/kafka' && typeof pk === 'string') {
        console.log(`  ${client}: ${pk}`);
        continue;
      }
      const c = clients.indexOf(client);
      const input = `${prefix}bench.${i}.${c}.in`;
      const output = `${prefix}bench.${i}.${c}.out`;
      const admin = ctx.kafka.admin();
      await admin.connect();
      await admin.createTopics({
        topics: [input, output].map((topic) => ({ topic, numPartitions: 1 })),
        waitForLeaders: true,
      });
      await admin.disconnect();
      await fillInput(ctx, input);
      // Groups and transactional ids under the prefix: the context's cleanup removes the groups.
      const id = `${prefix}bench.${i}.${c}`;
      const r =
        client === '@platformatic/kafka'
          ? await withPlatformatic(pk as PkModule, ctx.config.kafka.brokers, input, output, shape, id)
          : await withKafkajs(
              ctx.kafka,
              input,
              output,
              shape,
              id,
              client === 'kafkajs' ? 'client' : 'transaction',
            );
      console.log(line(LABELS[client], r));
    }
  }
} finally {
  await ctx.cleanup();
}
process.exit(0);
