/**
 * Helpers shared by the benchmarks: the consumer references over a topic, clickhouse-client as
 * the insert reference, peak RSS of a child process, and number formatting.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Kafka } from 'kafkajs';
import type { Config } from '../../lib/config.js';
import type { AvroRegistry } from '../../lib/registry.js';
import type { RawEnvelope } from '../../schemas/records.js';

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/**
 * Reads `messages` messages of a topic from the beginning with a bare kafkajs consumer (a fresh
 * group), handing each value to `work`; returns the seconds it took from the first poll.
 */
export async function consumeAll(
  kafka: Kafka,
  topic: string,
  groupId: string,
  messages: number,
  work: (value: Buffer) => void,
): Promise<number> {
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  const started = Date.now();
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) if (m.value) work(m.value);
        seen += batch.messages.length;
        if (seen >= messages) resolve();
        await Promise.resolve();
      },
    });
  });
  const seconds = (Date.now() - started) / 1000;
  await consumer.disconnect();
  return seconds;
}

/** The least work any normaliser does: decode the Avro envelope and parse its JSON payload. */
export function decodeAndParse(registry: AvroRegistry): (value: Buffer) => void {
  return (v) => {
    const env = registry.decodeCached<RawEnvelope>(v);
    if (env) JSON.parse(env.payload);
  };
}

/** Whether clickhouse-client is installed (the native-protocol insert reference). */
export function hasClickhouseClient(): boolean {
  return spawnSync('clickhouse-client', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Inserts a JSONEachRow file into `table` with clickhouse-client (native protocol); returns the
 * seconds it took, or the client's error.
 */
export function clickhouseClientInsert(
  config: Config,
  table: string,
  file: string,
  /** What follows the table in the INSERT: a column list and the file's FORMAT. */
  format = 'FORMAT JSONEachRow',
): { seconds: number } | { error: string } {
  const url = new URL(config.clickhouse.url);
  const nativePort = process.env.CLICKHOUSE_NATIVE_PORT ?? (url.port === '18123' ? '19000' : '9000');
  const t = Date.now();
  const r = spawnSync(
    'bash',
    [
      '-c',
      'clickhouse-client --host "$CH_HOST" --port "$CH_PORT" --user "$CH_USER" ${CH_PASSWORD:+--password "$CH_PASSWORD"} -q "INSERT INTO $CH_TABLE $CH_FORMAT" < "$CH_FILE"',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        CH_HOST: url.hostname,
        CH_PORT: nativePort,
        CH_USER: config.clickhouse.username,
        CH_PASSWORD: config.clickhouse.password ?? '',
        CH_TABLE: table,
        CH_FORMAT: format,
        CH_FILE: file,
      },
    },
  );
  const seconds = (Date.now() - t) / 1000;
  return r.status === 0 ? { seconds } : { error: r.stderr.toString().slice(0, 300) };
}

/** Peak resident set size of a process in bytes (VmHWM), or undefined once it has gone. */
export function peakRssOf(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far, or undefined once it has gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
